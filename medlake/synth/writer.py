"""Writing one batch folder the way a front-end machine does: one file per table, then ``manifest.json``.

CSV files carry a header row and are encoded UTF-8 or GBK; JSON Lines files are UTF-8 with every value as text.
Line-level defects are made here, on the encoded bytes of CSV files: a line with an extra or a missing field, and
(rarely) a byte sequence the file's encoding cannot decode. The manifest states what the front-end machine meant
to send: row count, SHA-256 of the bytes written, and sums of the spec's amount columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from medlake.lake.manifest import Manifest, ManifestFile, file_sha256, write_manifest
from medlake.reference import Institution
from medlake.sources import source
from medlake.synth.config import DefectRates
from medlake.synth.defects import DEFECT_TRUTH_SCHEMA, truth_frame

__all__ = ["WrittenBatch", "write_batch"]

_UNDECODABLE = b"\xff\xfe"


@dataclass(frozen=True)
class WrittenBatch:
    manifest: Manifest
    truth: pl.DataFrame  # line-level defects


def _amount_sums(frame: pl.DataFrame, table: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for col in source(table).amount_columns:
        total = frame[col].cast(pl.Decimal(18, 2), strict=False).sum()
        sums[col] = str(Decimal(total if total is not None else 0).quantize(Decimal("0.01")))
    return sums


def _csv_bytes(
    frame: pl.DataFrame,
    table: str,
    inst: Institution,
    rates: DefectRates,
    rng: np.random.Generator,
    business_date: date,
) -> tuple[bytes, list[pl.DataFrame]]:
    data = frame.drop("_inst").write_csv(null_value="", line_terminator="\n").encode(inst.encoding)
    n = frame.height
    u = rng.random(n)
    malformed = u < rates.malformed_line
    undecodable = (u >= rates.malformed_line) & (u < rates.malformed_line + rates.undecodable)
    truth: list[pl.DataFrame] = []
    if not (malformed.any() or undecodable.any()):
        return data, truth
    lines = data.split(b"\n")  # lines[0] is the header; row i is lines[i + 1]
    second_column = source(table).column_names[1]
    for i in np.flatnonzero(malformed):
        line = lines[i + 1]
        lines[i + 1] = line + b",EXTRA" if i % 2 == 0 else line.rsplit(b",", 1)[0]
    for i in np.flatnonzero(undecodable):
        lines[i + 1] = lines[i + 1].replace(b",", b"," + _UNDECODABLE, 1)
    if malformed.any():
        truth.append(truth_frame(frame.filter(pl.Series(malformed)), table, "", "malformed_line", business_date))
    if undecodable.any():
        truth.append(
            truth_frame(frame.filter(pl.Series(undecodable)), table, second_column, "undecodable", business_date)
        )
    return b"\n".join(lines), truth


def write_batch(
    folder: Path,
    inst: Institution,
    business_date: date,
    tables: dict[str, pl.DataFrame],
    rates: DefectRates,
    rng: np.random.Generator,
) -> WrittenBatch:
    """Write every table file of one institution's batch, then its manifest (last)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[ManifestFile] = []
    truths: list[pl.DataFrame] = []
    for table, frame in tables.items():
        columns = [*source(table).column_names, "_inst"]
        frame = frame.select(columns)
        if inst.delivery_format == "jsonl":
            name = f"{table}.jsonl"
            data = frame.drop("_inst").write_ndjson().encode("utf-8")
        else:
            name = f"{table}.csv"
            data, line_truth = _csv_bytes(frame, table, inst, rates, rng, business_date)
            truths.extend(line_truth)
        path = folder / name
        path.write_bytes(data)
        files.append(
            ManifestFile(
                table=table,
                file=name,
                format=inst.delivery_format,
                encoding=inst.encoding,
                rows=frame.height,
                sha256=file_sha256(path),
                sums=_amount_sums(frame, table),
            )
        )
    manifest = Manifest(
        institution=inst.code,
        batch_id=f"{inst.code}-{business_date:%Y%m%d}",
        business_date=business_date.isoformat(),
        created_at=f"{business_date.isoformat()}T23:30:00+08:00",
        files=tuple(files),
    )
    write_manifest(folder, manifest)
    truth = pl.concat(truths).cast(DEFECT_TRUTH_SCHEMA) if truths else pl.DataFrame(schema=DEFECT_TRUTH_SCHEMA)
    return WrittenBatch(manifest=manifest, truth=truth)

"""One table file a person hands to a command (``medlake empi link|evaluate|decide``, ``medlake classify``): a CSV
with a header row (UTF-8 or GBK/GB 18030, every column read as text), JSON Lines, or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from medlake.errors import IngestError

if TYPE_CHECKING:  # polars loads when a file is read, not for `medlake --help`
    import polars as pl

__all__ = ["read_table_file"]

_PARQUET = (".parquet", ".pq")
_JSON_LINES = (".jsonl", ".ndjson")


def _decoded(path: Path, raw: bytes, lenient: bool) -> str:
    if lenient:  # bad bytes become U+FFFD: the encoding that needs the fewest replacements wins
        return min((raw.decode(e, errors="replace") for e in ("utf-8-sig", "gb18030")), key=lambda t: t.count("\ufffd"))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise IngestError(f"byte {exc.start} is neither UTF-8 nor GBK", file=str(path)) from None


def read_table_file(path: Path, rows: int | None = None, *, lenient: bool = False) -> pl.DataFrame:
    """The file's rows (the first ``rows`` when given); any other suffix is read as CSV. A CSV with bytes that are
    neither UTF-8 nor GBK is refused, naming the byte, unless ``lenient`` (sampling values, e.g. to classify them)."""
    import polars as pl

    if not path.is_file():
        raise IngestError("no such file", file=str(path))
    suffix = path.suffix.lower()
    try:
        if suffix in _PARQUET:
            return pl.read_parquet(path, n_rows=rows)
        if suffix in _JSON_LINES:
            return pl.read_ndjson(path, n_rows=rows, infer_schema_length=None)
        text = _decoded(path, path.read_bytes(), lenient)
        return pl.read_csv(text.encode(), infer_schema=False, n_rows=rows, truncate_ragged_lines=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise IngestError(f"cannot read: {exc}", file=str(path)) from None

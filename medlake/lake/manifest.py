"""Batch manifests written by front-end machines beside each delivery.

A batch folder ``landing/<institution>/<YYYY-MM-DD>/`` is complete once its ``manifest.json`` exists
(front-end machines write it last). The manifest lists every file with its table, format, encoding, row count,
SHA-256 and the sums of the table's amount columns, for reconciliation after loading.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from medlake.errors import IngestError

__all__ = ["MANIFEST_NAME", "Manifest", "ManifestFile", "file_sha256", "read_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"
Format = Literal["csv", "jsonl"]


@dataclass(frozen=True)
class ManifestFile:
    table: str
    file: str  # relative to the batch folder
    format: Format
    encoding: str  # "utf-8" or "gbk"
    rows: int
    sha256: str
    sums: dict[str, str] = field(default_factory=dict)  # amount column → decimal sum as text


@dataclass(frozen=True)
class Manifest:
    institution: str
    batch_id: str
    business_date: str  # YYYY-MM-DD
    created_at: str
    files: tuple[ManifestFile, ...]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically (temp file + rename), so a reader never sees half of it."""
    target = folder / MANIFEST_NAME
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    payload = asdict(manifest)
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(target)
    return target


def _is_sum(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        return Decimal(str(value)).is_finite()
    except InvalidOperation:
        return False


def _checked(manifest: Manifest, path: Path) -> Manifest:
    """Field types checked here, so a wrong one refuses its own batch instead of failing the load of every batch."""
    def refuse(where: str, expected: str) -> IngestError:
        return IngestError(f"manifest field {where} must be {expected}", file=str(path), field=where)

    for name in ("institution", "batch_id", "business_date", "created_at"):
        if not isinstance(getattr(manifest, name), str):
            raise refuse(name, "text")
    for i, entry in enumerate(manifest.files):
        for name in ("table", "file", "format", "encoding", "sha256"):
            if not isinstance(getattr(entry, name), str):
                raise refuse(f"files[{i}].{name}", "text")
        if isinstance(entry.rows, bool) or not isinstance(entry.rows, int) or entry.rows < 0:
            raise refuse(f"files[{i}].rows", "a whole number of rows")
        sums = entry.sums
        if not isinstance(sums, dict) or not all(isinstance(k, str) and _is_sum(v) for k, v in sums.items()):
            raise refuse(f"files[{i}].sums", "an object of amount column → decimal sum")
    return manifest


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IngestError("batch has no manifest.json (incomplete delivery)", file=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(f"manifest is not valid UTF-8 JSON ({exc})", file=str(path)) from None
    try:
        files = tuple(ManifestFile(**f) for f in raw["files"])
        return _checked(Manifest(
            institution=raw["institution"],
            batch_id=raw["batch_id"],
            business_date=raw["business_date"],
            created_at=raw["created_at"],
            files=files,
        ), path)
    except (KeyError, TypeError) as exc:
        raise IngestError(f"manifest is missing or has unexpected fields ({exc})", file=str(path)) from None

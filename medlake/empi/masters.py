"""Master IDs: deterministic, derived from the record that founded the master."""

from __future__ import annotations

import hashlib

from medlake.empi.errors import EmpiError

__all__ = ["master_id"]


def master_id(record_id: str, taken: set[str]) -> str:
    """Deterministic: derived from the founding record; salted only if that ID was ever used."""
    for salt in range(1000):
        text = record_id if salt == 0 else f"{record_id}#{salt}"
        candidate = "MP" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest().upper()
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    raise EmpiError(f"record {record_id}: no free master ID after 1000 salts")

"""Lookup tables some checks join against, registered in the engine's check session beside the checked table.

``code_mapped`` checks ask whether a local item code is listed in its institution's mapping table; the runner
registers ``medlake_code_map`` (map_institution, map_category, map_local_code) built from the standards registry
for every hospital present in the data, before Soda and the quarantine queries run.
"""

from __future__ import annotations

import pyarrow as pa

from medlake.engine.base import SqlSession
from medlake.standards.model import StandardNotFoundError
from medlake.standards.registry import MAPPING_CATEGORIES, Registry
from medlake.standards.rules import CODE_MAP_VIEW, Rule

__all__ = ["CODE_MAP_SCHEMA", "code_map", "register_lookups"]

CODE_MAP_SCHEMA = pa.schema([("map_institution", pa.string()), ("map_category", pa.string()),
                             ("map_local_code", pa.string())])


def code_map(institutions: list[str], version: str | None = None) -> pa.Table:
    """Every local code of the institutions' mapping tables (all categories); institutions without one are skipped."""
    registry = Registry.load(version)
    columns: dict[str, list[str]] = {name: [] for name in CODE_MAP_SCHEMA.names}
    for institution in sorted(set(institutions)):
        for category in MAPPING_CATEGORIES:
            try:
                codes = registry.mapping_table(institution, category)["local_code"].drop_nulls().to_list()
            except StandardNotFoundError:
                continue
            columns["map_institution"] += [institution] * len(codes)
            columns["map_category"] += [category] * len(codes)
            columns["map_local_code"] += codes
    return pa.table(columns, schema=CODE_MAP_SCHEMA)


def register_lookups(con: SqlSession, table: str, rules: list[Rule]) -> None:
    """Register the lookups ``rules`` need in check session ``con`` where ``main.<table>`` is the data."""
    mapped = [r for r in rules if r.check_type == "code_mapped"]
    if not mapped:
        return
    version = str(mapped[0].extra.get("standard_version") or "") or None
    institutions = [str(row[0]) for row in con.execute(
        f'SELECT DISTINCT institution_code FROM main."{table}" WHERE institution_code IS NOT NULL')]
    con.register(CODE_MAP_VIEW, code_map(institutions, version))

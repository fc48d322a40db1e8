"""Where the generated checks' row-level rules fail, row by row: for tests that compare each failing row with the
defect the synthetic generator injected there (the library only needs the first failing rule, ``flag_rows``)."""

from __future__ import annotations

import pyarrow as pa

from medlake.engine.polars_engine import PolarsEngine
from medlake.quality.lookups import register_lookups
from medlake.standards.rules import Rule

__all__ = ["failing_rows"]

_ROW = "__test_row"
_PARTITION_COLUMN = "load_date"


def failing_rows(data: pa.Table, table: str, rules: list[Rule]) -> dict[str, list[int]]:
    """Row positions of ``data`` failing each row-level rule (every rule a row fails), selected with the rules' SQL
    predicates in a DuckDB check session over ``data`` registered as ``main.<table>``."""
    row_rules = [r for r in rules if r.predicate]
    if not row_rules:
        return {}
    numbered = data.append_column(_ROW, pa.array(range(data.num_rows), pa.int64()))
    con = PolarsEngine().check_session(table, numbered, drop=(_PARTITION_COLUMN,))
    try:
        register_lookups(con, table, row_rules)
        out: dict[str, list[int]] = {}
        for rule in row_rules:
            # predicates may be window functions (duplicates), which a WHERE clause cannot hold: flag, then filter
            sql = (f'SELECT {_ROW} FROM (SELECT {_ROW}, ({rule.predicate}) AS _failed FROM main."{table}") '
                   f"WHERE _failed ORDER BY {_ROW}")
            out[rule.rule_id] = [int(r[0]) for r in con.execute(sql)]
        return out
    finally:
        con.close()

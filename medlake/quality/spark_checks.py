"""Soda checks on Spark: the table as a temp view of a SparkSession, the rules' DuckDB SQL transpiled to Spark SQL.

The generated contracts and the rules' predicates are written in DuckDB's dialect. On Spark the runner keeps the
contract files as they are and rewrites an in-memory copy: every SQL snippet (Soda ``failed_rows`` expressions and
queries, predicates for the per-institution counts and quarantine) goes through sqlglot (duckdb → spark), with
two rewrites sqlglot does not do itself:

- ``try_strptime(text, '%Y%m%d')`` (DuckDB only) → ``try_to_timestamp(text, 'yyyyMMdd')``;
- ``localtimestamp`` → ``localtimestamp()``;
- ``date_diff('day', a, b)`` counts day boundaries in DuckDB, Spark's ``datediff(DAY, a, b)`` full 24-hour
  periods: both sides are cast to DATE so the counts agree;

and the ``main`` schema is dropped from table names: the table is a session-local temp view, the Soda dataset is
``medlake/<table>``. A Delta table or Arrow data is checked in a per-run ``SparkSession.newSession()``, so
concurrent runs never see each other's views; a workflow step's DataFrame can only be seen by its own session, so
that connection holds a lock on it until it closes.
"""

from __future__ import annotations

import copy
import threading
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from medlake.engine.spark_engine import java_datetime_pattern
from medlake.lake.dwd import PARTITION_COLUMN
from medlake.standards.contracts import DATA_SOURCE_NAME

__all__ = ["SparkCheckConnection", "spark_contract", "spark_sql"]

_SQL_KEYS = ("expression", "query")
_SHARED_SESSION_LOCK = threading.RLock()
# the contracts' DuckDB column types as Spark reports them (medlake's Spark session stores TIMESTAMP_NTZ)
_SPARK_TYPES = {"VARCHAR": "string", "BIGINT": "bigint", "DECIMAL": "decimal", "DATE": "date",
                "TIMESTAMP": "timestamp_ntz"}


def _rewrite(node: Any) -> Any:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime":
        text, fmt = node.expressions
        return exp.Anonymous(this="try_to_timestamp",
                             expressions=[text, exp.Literal.string(java_datetime_pattern(fmt.name))])
    if isinstance(node, exp.DateDiff) and (node.unit is None or node.unit.name.lower() == "day"):
        return exp.Anonymous(this="datediff", expressions=[
            exp.cast(node.this.copy(), "DATE"), exp.cast(node.expression.copy(), "DATE")])
    if isinstance(node, exp.Localtimestamp):  # Spark knows only the function form
        return exp.Anonymous(this="localtimestamp", expressions=[])
    if isinstance(node, exp.Table) and node.db.lower() == "main":
        node.set("db", None)
    return node


@cache
def spark_sql(sql: str) -> str:
    """A DuckDB-dialect SQL expression or query of the generated rules as Spark SQL (see the module doc)."""
    import sqlglot

    return sqlglot.parse_one(sql, read="duckdb").transform(_rewrite).sql(dialect="spark")


def _spark_check(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: spark_sql(v) if k in _SQL_KEYS and isinstance(v, str) else v if k == "attributes"
                else _spark_check(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_spark_check(v) for v in body]
    return body


def spark_contract(contract: dict[str, Any]) -> dict[str, Any]:
    """A copy of a generated contract for the Spark data source: dataset without schema, SQL in Spark's dialect
    (the ``predicate`` attributes are left alone: the runner transpiles those where it runs them)."""
    out = copy.deepcopy(contract)
    out["dataset"] = f"{DATA_SOURCE_NAME}/{str(contract['dataset']).rsplit('/', 1)[-1]}"
    for column in out.get("columns", []):
        if "data_type" in column:
            column["data_type"] = _SPARK_TYPES.get(str(column["data_type"]).upper(), column["data_type"])
    for section in [out, *out.get("columns", [])]:
        if "checks" in section:
            section["checks"] = _spark_check(section["checks"])
    return out


class _Result:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows


class SparkCheckConnection:
    """The DuckDB-connection surface the runner uses (``execute(sql).fetchall()``, ``register``, ``frame``,
    ``close``) over a Spark session (see the module doc); SQL is transpiled with :func:`spark_sql` before it runs."""

    def __init__(self, table: str, data: Any, batch_id: str | None) -> None:
        from medlake.engine.spark_session import get_spark

        self._lock: Any = None
        if _is_spark_frame(data):
            # A DataFrame belongs to its session: its views are registered there, so the connection holds that
            # session's lock until close (temp view names are per table, not per run).
            self._lock = _SHARED_SESSION_LOCK
            self._lock.acquire()
            self.session = data.sparkSession
        else:
            self.session = get_spark().newSession()
        frame = self._frame(data)
        if PARTITION_COLUMN in frame.columns:  # the physical partition column is layout, not a governed column
            frame = frame.drop(PARTITION_COLUMN)
        if batch_id is not None:
            frame = frame.where(frame["_batch_id"] == batch_id)
        self._cached = frame.cache()
        self._cached.createOrReplaceTempView(table)

    def _frame(self, data: Any) -> Any:
        import pyarrow.dataset as ds

        if _is_spark_frame(data):
            return data
        if isinstance(data, Path):
            return self.session.read.format("delta").load(str(data))
        if isinstance(data, ds.Dataset):
            data = data.to_table()
        return self.session.createDataFrame(data if isinstance(data, pa.Table) else pa.table(data))

    def execute(self, sql: str) -> _Result:
        return _Result([tuple(row) for row in self.session.sql(spark_sql(sql)).collect()])

    def register(self, name: str, table: pa.Table) -> None:
        self.session.createDataFrame(table).createOrReplaceTempView(name)

    def data_source(self) -> Any:
        import soda_core  # noqa: F401  (first, as in medlake.quality.runner: no circular-import error logged)
        from soda_sparkdf.common.data_sources.sparkdf_data_source import SparkDataFrameDataSourceImpl

        return SparkDataFrameDataSourceImpl.from_existing_session(self.session, DATA_SOURCE_NAME)

    def frame(self, sql: str) -> Any:
        """The result of a query as a (lazy) Spark DataFrame of this session."""
        return self.session.sql(spark_sql(sql))

    def close(self) -> None:
        try:
            self._cached.unpersist()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def _is_spark_frame(data: Any) -> bool:
    return type(data).__module__.startswith("pyspark.") and hasattr(data, "sparkSession")

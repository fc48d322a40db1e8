"""The Spark engine's SQL: DuckDB-dialect SQL transpiled to Spark SQL, and Soda checks on a Spark session.

medlake writes SQL in DuckDB's dialect (the generated contracts and the rules' predicates). On Spark every SQL
snippet (Soda ``failed_rows`` expressions and queries, predicates for the per-institution counts and quarantine,
ad-hoc :meth:`SparkEngine.sql` queries) goes through sqlglot (duckdb → spark), with rewrites sqlglot does not do
itself:

- ``try_strptime(text, '%Y%m%d')`` (DuckDB only) → ``try_to_timestamp(text, 'yyyyMMdd')``;
- ``localtimestamp`` → ``localtimestamp()``;
- ``date_diff('day', a, b)`` counts day boundaries in DuckDB, Spark's ``datediff(DAY, a, b)`` full 24-hour
  periods: both sides are cast to DATE so the counts agree;

and the ``main`` schema is dropped from table names: the table is a session-local temp view, the Soda dataset is
``<data source>/<table>``. A Delta table or Arrow data is checked in a per-run ``SparkSession.newSession()``, so
concurrent runs never see each other's views; a workflow step's DataFrame can only be seen by its own session, so
that session holds a lock on it until it closes.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

import narwhals as nw
import pyarrow as pa

from medlake.engine.base import LOCATION_TYPES
from medlake.engine.spark_engine import java_datetime_pattern

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkCheckSession", "is_spark_frame", "shared_views", "spark_contract", "spark_sql"]

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
    """A DuckDB-dialect SQL expression or query as Spark SQL (see the module doc)."""
    import sqlglot

    return sqlglot.parse_one(sql, read="duckdb").transform(_rewrite).sql(dialect="spark")


def _spark_check(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: spark_sql(v) if k in _SQL_KEYS and isinstance(v, str) else v if k == "attributes"
                else _spark_check(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_spark_check(v) for v in body]
    return body


def spark_contract(contract: dict[str, Any], data_source: str) -> dict[str, Any]:
    """A copy of a generated contract for the Spark data source ``data_source``: dataset without schema, SQL in
    Spark's dialect (the ``predicate`` attributes are left alone: they are transpiled where they run)."""
    out = copy.deepcopy(contract)
    out["dataset"] = f"{data_source}/{str(contract['dataset']).rsplit('/', 1)[-1]}"
    for column in out.get("columns", []):
        if "data_type" in column:
            column["data_type"] = _SPARK_TYPES.get(str(column["data_type"]).upper(), column["data_type"])
    for section in [out, *out.get("columns", [])]:
        if "checks" in section:
            section["checks"] = _spark_check(section["checks"])
    return out


def is_spark_frame(data: Any) -> bool:
    """Whether ``data`` is a PySpark DataFrame (classic or Connect)."""
    return type(data).__module__.startswith("pyspark.") and hasattr(data, "sparkSession")


@contextmanager
def shared_views(session: SparkSession, frames: Mapping[str, DataFrame]) -> Iterator[None]:
    """``frames`` as temp views of ``session`` (a session other runs may use) while the block runs: the views are
    per name, not per run, so the block holds the session's lock, and the views are dropped afterwards (a query
    built inside keeps its resolved plan)."""
    with _SHARED_SESSION_LOCK:
        for name, frame in frames.items():
            frame.createOrReplaceTempView(name)
        try:
            yield
        finally:
            for name in frames:
                session.catalog.dropTempView(name)


class SparkCheckSession:
    """A :class:`medlake.engine.base.SqlSession` over a Spark session (see the module doc)."""

    def __init__(
        self, spark: SparkSession, table: str, data: Any, batch_id: str | None, drop: Sequence[str]
    ) -> None:
        self._lock: Any = None
        if is_spark_frame(data):
            # A DataFrame belongs to its session: its views are registered there, so the session is locked until
            # close (temp view names are per table, not per run).
            self._lock = _SHARED_SESSION_LOCK
            self._lock.acquire()
            self.session = data.sparkSession
        else:
            self.session = spark.newSession()
        frame = self._frame(data)
        present = [c for c in drop if c in frame.columns]
        if present:  # e.g. the physical partition column: layout, not a governed column
            frame = frame.drop(*present)
        if batch_id is not None:
            frame = frame.where(frame["_batch_id"] == batch_id)
        self._cached = frame.cache()
        self._cached.createOrReplaceTempView(table)

    def _frame(self, data: Any) -> Any:
        import pyarrow.dataset as ds

        if is_spark_frame(data):
            return data
        if isinstance(data, LOCATION_TYPES):
            return self.session.read.format("delta").load(str(data))
        if isinstance(data, ds.Dataset):
            data = data.to_table()
        return self.session.createDataFrame(data if isinstance(data, pa.Table) else pa.table(data))

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.session.sql(spark_sql(sql)).collect()]

    def register(self, name: str, table: pa.Table) -> None:
        self.session.createDataFrame(table).createOrReplaceTempView(name)

    def soda_data_source(self, name: str) -> Any:
        import soda_core  # noqa: F401  (first, as in medlake.engine.duckdb_sql: no circular-import error logged)
        from soda_sparkdf.common.data_sources.sparkdf_data_source import SparkDataFrameDataSourceImpl

        return SparkDataFrameDataSourceImpl.from_existing_session(self.session, name)

    def soda_contract(self, contract: dict[str, Any], data_source: str) -> dict[str, Any]:
        return spark_contract(contract, data_source)

    def frame(self, sql: str) -> nw.LazyFrame:
        """The result of a query as a (lazy) Spark DataFrame of this session."""
        return nw.from_native(self.session.sql(spark_sql(sql)))

    def close(self) -> None:
        try:
            self._cached.unpersist()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

"""Splink on the Spark engine's SparkSession (``SparkAPI``), with DuckDB's string distances.

Both linkage backends evaluate the same comparison levels: on Spark, ``jaro_winkler`` and ``damerau_levenshtein``
are Arrow UDFs on rapidfuzz, the algorithms DuckDB implements (character-based; Splink's bundled Scala jar loads on
Spark 4 but its commons-text Jaro–Winkler differs from DuckDB's by up to 0.12 on some pairs, so it is not
registered).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from medlake.engine.base import SplinkOptions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkSplink"]


def _register_functions(spark: SparkSession) -> None:
    """``jaro_winkler`` and ``damerau_levenshtein`` as Splink's Spark dialect calls them, with DuckDB's results:
    rapidfuzz implements the algorithms DuckDB uses (character-based Jaro–Winkler, unrestricted Damerau–Levenshtein).

    The UDFs are closures (cloudpickle ships them by value): a Python worker needs numpy, pyarrow and rapidfuzz,
    not medlake.
    """
    from pyspark.sql.functions import arrow_udf

    def pairwise(left: pa.Array, right: pa.Array, scorer: str) -> pa.Array:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        from rapidfuzz import process
        from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

        valid = pc.and_(pc.is_valid(left), pc.is_valid(right))
        mask = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
        a, b = pc.filter(left, valid).to_pylist(), pc.filter(right, valid).to_pylist()
        if scorer == "jaro_winkler":
            out = np.zeros(len(mask), dtype=np.float64)
            if a:
                found = process.cpdist(a, b, scorer=JaroWinkler.similarity, dtype=np.float64, workers=1)
                # DuckDB: similarity 0 when a side is empty, even against another empty string
                out[mask] = np.where([not x or not y for x, y in zip(a, b, strict=True)], 0.0, found)
            return pa.array(out, type=pa.float64(), mask=~mask)
        out = np.zeros(len(mask), dtype=np.int64)
        if a:
            out[mask] = process.cpdist(a, b, scorer=DamerauLevenshtein.distance, workers=1)
        return pa.array(out, type=pa.int64(), mask=~mask)

    def jaro_winkler(left: pa.Array, right: pa.Array) -> pa.Array:
        return pairwise(left, right, "jaro_winkler")

    def damerau_levenshtein(left: pa.Array, right: pa.Array) -> pa.Array:
        return pairwise(left, right, "damerau_levenshtein")

    spark.udf.register("jaro_winkler", arrow_udf(jaro_winkler, "double"))
    spark.udf.register("damerau_levenshtein", arrow_udf(damerau_levenshtein, "bigint"))


def _double_literal(node: Any) -> Any:
    """``CAST(0.25 AS DOUBLE)`` → ``0.25D``: what Splink's ``customspark`` sqlglot dialect does (a long decimal
    literal would otherwise be parsed as DECIMAL, limited to 38 digits)."""
    from sqlglot import exp

    if (isinstance(node, exp.Cast) and node.to.is_type("double") and isinstance(node.this, exp.Literal)
            and node.this.is_number and node.name != "Infinity"):
        return exp.Literal.number(f"{node.this.name}D")
    return node


@cache
def _spark_api_class() -> type:
    """SparkAPI that remembers the temp views it creates, so a model can drop them (and their caches) on close,
    and that renders its SQL without Splink's ``customspark`` dialect: that dialect subclasses sqlglot's Spark
    generator, which the compiled sqlglot build (sqlglotc, in requirements.lock) refuses to instantiate
    ("TypeError: interpreted classes cannot inherit from compiled", tobymao/sqlglot#7923)."""
    import sqlglot
    from splink import SparkAPI

    class TrackedSparkAPI(SparkAPI):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            self.created: list[str] = []
            super().__init__(**kwargs)

        def _setup_for_execute_sql(self, sql: str, physical_name: str) -> str:
            tree = sqlglot.parse_one(sql, read="spark").transform(_double_literal)
            return tree.sql(dialect="spark", pretty=True)

        def _table_registration(self, input: Any, table_name: str) -> None:
            super()._table_registration(input, table_name)
            self.created.append(table_name)

        def _cleanup_for_execute_sql(self, table: Any, templated_name: str, physical_name: str) -> Any:
            self.created.append(physical_name)
            return super()._cleanup_for_execute_sql(table, templated_name, physical_name)

    return TrackedSparkAPI


class SparkSplink:
    """A :class:`medlake.engine.base.SplinkBackend` on the engine's SparkSession."""

    dialect = "spark"

    def __init__(self, spark: SparkSession, options: SplinkOptions) -> None:
        self.spark = spark
        _register_functions(spark)
        self.db_api = _spark_api_class()(
            spark_session=spark,
            break_lineage_method=options.break_lineage,
            num_partitions_on_repartition=options.partitions,
            register_udfs_automatically=False,
        )

    def to_arrow(self, result: Any, columns: Sequence[str]) -> pa.Table:
        return self.spark.table(result.physical_name).select(*columns).toArrow()

    def close(self) -> None:
        for name in dict.fromkeys(reversed(self.db_api.created)):
            try:
                self.spark.catalog.dropTempView(name)  # also uncaches a persisted view
            except Exception:  # already dropped by Splink, or never created: nothing to release
                continue
        self.db_api.created.clear()

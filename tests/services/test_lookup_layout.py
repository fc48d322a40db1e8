"""The lookup layout of patient-keyed tables: Z-ordered on the lookup key, small row groups, watermark kept."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from deltalake import DeltaTable

from medlake.config import Settings
from medlake.engine import get_engine
from medlake.lake.maintenance import layout_for_lookups


def test_layout_sorts_into_small_row_groups_and_keeps_the_watermark(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    engine = get_engine("polars")
    path = str(settings.lake / "dwd" / "encounter")
    rows = 20_000
    frame = pl.DataFrame({"patient_id": [f"P{(i * 7919) % rows:06d}" for i in range(rows)],
                          "encounter_id": [f"E{i:06d}" for i in range(rows)]})
    engine.overwrite(engine.from_arrow(frame.to_arrow()), path, metadata={"medlake.ods_seq": "41"})
    reader_before = engine.point_reader(path)
    assert reader_before.rows({"patient_id": ["P000123"]}).num_rows == 1

    done = layout_for_lookups(engine, settings, row_group_rows=1000, keys={"dwd/encounter": ("patient_id",),
                                                                          "dwd/absent": ("x",)})
    assert done == {"dwd/encounter": ("patient_id",)}
    assert engine.commit_metadata(path)["medlake.ods_seq"] == "41"
    live = DeltaTable(path).file_uris()
    assert len(live) == 1
    metadata = pq.ParquetFile(live[0].removeprefix("file://")).metadata
    assert metadata.num_row_groups >= rows // 1000
    assert max(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) <= 1000
    # sorted on the key: each row group covers a narrow, non-overlapping range of patient IDs
    ranges = [(metadata.row_group(i).column(0).statistics.min, metadata.row_group(i).column(0).statistics.max)
              for i in range(metadata.num_row_groups)]
    assert all(a[1] <= b[0] for a, b in pairwise(ranges))
    assert pl.read_delta(path).sort("encounter_id").equals(frame.sort("encounter_id"))

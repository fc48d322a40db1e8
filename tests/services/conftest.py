"""A tiny lake (two institutions, two master patients), classified columns, one user per role, and the app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import polars as pl
import pytest
from fastapi.testclient import TestClient

from medlake.config import ServeSettings, Settings
from medlake.engine import get_engine
from medlake.engine.base import Engine
from medlake.lineage.derivation import metric_lineage_spec
from medlake.lineage.graph import LineageGraph, graph_path
from medlake.metrics import metric
from medlake.security import ClassificationCatalog
from medlake.services.app import create_app
from medlake.services.users import ROLES, UserStore

MASTER = "MP0000000000000001"
OTHER_MASTER = "MP0000000000000002"
PASSWORD = "correct-horse-battery"
STORED_NAME = "张伟"
STORED_ID_NUMBER = "110101199003074514"
STORED_BIRTH = "1990-03-07"

_TS = pl.Datetime("us")


def _dec(values: list[str]) -> pl.Series:
    return pl.Series([Decimal(v) for v in values], dtype=pl.Decimal(18, 4))


def _tables() -> dict[tuple[str, str], pl.DataFrame]:
    golden = pl.DataFrame({
        "master_id": [MASTER, OTHER_MASTER], "name": [STORED_NAME, "李秀英"],
        "id_number": [STORED_ID_NUMBER, "440304197701010021"], "birth_date": [STORED_BIRTH, "1977-01-01"],
        "sex": ["1", "2"], "phone": ["13812345678", "15011112222"], "region": ["110101", "440304"],
        "record_count": [2, 1],
    })
    index = pl.DataFrame({
        "record_id": ["H1:P1", "H2:Q7", "H1:P2"], "master_id": [MASTER, MASTER, OTHER_MASTER],
        "source": ["H1", "H2", "H1"], "name": [STORED_NAME, STORED_NAME, "李秀英"],
        "id_number": [STORED_ID_NUMBER, STORED_ID_NUMBER, "440304197701010021"],
        "birth_date": [STORED_BIRTH, STORED_BIRTH, "1977-01-01"], "sex": ["1", "1", "2"],
        "phone": ["13812345678", "13812345678", "15011112222"], "match_score": [None, 0.97, None],
        "match_rule": ["new_master", "model", "new_master"],
    })
    encounter = pl.DataFrame({
        "institution_code": ["H1", "H2", "H1"], "encounter_id": ["E1", "E9", "E2"], "patient_id": ["P1", "Q7", "P2"],
        "encounter_type": ["outpatient", "inpatient", "outpatient"], "dept_code": ["5001", "0313", "5001"],
        "dept_name": ["中医科", "消化内科病区", "中医科"],
        "admit_time": pl.Series([datetime(2026, 1, 2, 9), datetime(2026, 1, 1, 8), datetime(2026, 1, 3, 10)], dtype=_TS),
        "discharge_time": pl.Series([None, datetime(2026, 1, 4, 8), None], dtype=_TS),
        "_batch_id": ["b", "b", "b"],
    })
    diagnosis = pl.DataFrame({
        "institution_code": ["H1", "H2", "H1"], "encounter_id": ["E1", "E9", "E2"], "diag_seq": [1, 1, 1],
        "diag_code": ["E11.9", "K29.7", "J06.9"], "diag_name": ["2型糖尿病", "胃炎", "上呼吸道感染"],
        "diag_type": ["1", "1", "1"],
        "diag_time": pl.Series([datetime(2026, 1, 2, 9, 30), datetime(2026, 1, 1, 9), datetime(2026, 1, 3, 11)],
                               dtype=_TS),
    })
    orders = pl.DataFrame({
        "institution_code": ["H1", "H1", "H2"], "order_id": ["E1-1", "E1-2", "E9-1"], "encounter_id": ["E1", "E1", "E9"],
        "item_category": ["drug", "service", "drug"], "item_name": ["二甲双胍", "诊查费", "奥美拉唑"],
        "amount": _dec(["12.5", "20", "33"]),
        "order_time": pl.Series([datetime(2026, 1, 2, 9, 40), datetime(2026, 1, 2, 9, 5), datetime(2026, 1, 1, 12)],
                                dtype=_TS),
    })
    labs = pl.DataFrame({
        "institution_code": ["H2"], "result_id": ["E9L1"], "encounter_id": ["E9"], "test_code": ["770-8"],
        "result_value": _dec(["53.9"]), "report_time": pl.Series([datetime(2026, 1, 1, 10)], dtype=_TS),
    })
    settlement = pl.DataFrame({
        "institution_code": ["YB1", "YB1"], "setl_id": ["S1", "S2"], "psn_no": ["N1", "N2"],
        "psn_name": [STORED_NAME, "李秀英"], "setl_status": ["1", "1"],
        "medins_code": ["H1", "H1"], "encounter_id": ["E1", "E2"], "setl_type": ["outpatient", "outpatient"],
        "setl_time": pl.Series([datetime(2026, 1, 2, 10), datetime(2026, 1, 3, 12)], dtype=_TS),
        "total_amount": _dec(["32.5", "50"]), "fund_paid": _dec(["20", "30"]), "self_paid": _dec(["12.5", "20"]),
    })
    visits = pl.DataFrame({
        "institution_code": ["H1", "H1", "H2"], "visit_date": [date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 1)],
        "encounter_type": ["outpatient", "outpatient", "inpatient"], "visits": [1, 1, 1],
    })
    return {("dwd", "golden_record"): golden, ("dwd", "master_patient_index"): index, ("dwd", "encounter"): encounter,
            ("dwd", "diagnosis"): diagnosis, ("dwd", "order_item"): orders, ("dwd", "lab_result"): labs,
            ("dwd", "settlement"): settlement, ("metric", "visits_daily"): visits}


# steward classes: (table, column) -> (category, grade); every other column is unclassified (grade 4 by policy)
CLASSES = {
    ("dwd.golden_record", "name"): ("personal attributes", 4),
    ("dwd.golden_record", "id_number"): ("personal attributes", 5),
    ("dwd.golden_record", "birth_date"): ("personal attributes", 3),
    ("dwd.golden_record", "phone"): ("personal attributes", 4),
    ("dwd.golden_record", "sex"): ("personal attributes", 1),
    ("dwd.golden_record", "region"): ("personal attributes", 2),
    ("dwd.golden_record", "record_count"): ("medical application", 1),
    ("dwd.diagnosis", "diag_code"): ("health status", 3),
    ("metric.visits_daily", "institution_code"): ("health resources", 1),
    ("metric.visits_daily", "visit_date"): ("medical application", 1),
    ("metric.visits_daily", "encounter_type"): ("medical application", 1),
    ("metric.visits_daily", "visits"): ("medical application", 1),
}


def build_lake(home: Path) -> tuple[Engine, Settings]:
    serve = ServeSettings(token_secret="test-secret-0123456789abcdef-0123456789", mask_salt="test-salt",
                          audit_flush_seconds=0.2, rate_per_minute=100_000)
    settings = Settings(home=home, serve=serve)
    engine = get_engine("polars")
    for (layer, name), frame in _tables().items():
        engine.overwrite(engine.from_arrow(frame.to_arrow()), str(settings.table_path(layer, name)))
    catalog = ClassificationCatalog(engine, settings)
    for (table, column), (category, grade) in CLASSES.items():
        catalog.set(table, column, category=category, grade=grade, by="steward-fixture")
    graph = LineageGraph(lake=settings.lake)
    graph.add_binding("dwd.encounter", "dept_code", "DE08.10.025.00")
    graph.add_metric(metric_lineage_spec(metric("visits_daily")))
    graph.save(graph_path(settings))
    users = UserStore(settings)
    for role in ROLES:
        users.add(f"{role}-user", role, PASSWORD)
    return engine, settings


@dataclass
class Recorder:
    """Every request a test sends through the client, by its X-Request-ID (the audit's key)."""

    ids: list[str] = field(default_factory=list)
    without_id: list[str] = field(default_factory=list)

    def __call__(self, response: httpx.Response) -> None:
        request_id = response.headers.get("x-request-id")
        if request_id:
            self.ids.append(request_id)
        else:
            self.without_id.append(f"{response.request.method} {response.request.url} -> {response.status_code}")


@dataclass
class Service:
    client: TestClient
    settings: Settings
    engine: Engine
    recorder: Recorder
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, role: str) -> str:
        if role in self.tokens:
            return self.tokens[role]
        response = self.client.post("/token", data={"username": f"{role}-user", "password": PASSWORD})
        assert response.status_code == 200, response.text
        self.tokens[role] = str(response.json()["access_token"])
        return self.tokens[role]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Settings]:
    return build_lake(tmp_path_factory.mktemp("serve-lake"))


def start(engine: Engine, settings: Settings) -> Iterator[Service]:
    recorder = Recorder()
    with TestClient(create_app(settings, engine=engine)) as client:
        client.event_hooks["response"].append(recorder)
        yield Service(client, settings, engine, recorder)


@pytest.fixture(scope="module")
def service(lake: tuple[Engine, Settings]) -> Iterator[Service]:
    yield from start(*lake)


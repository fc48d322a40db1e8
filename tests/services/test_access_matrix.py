"""Role × endpoint × grade: 401 without a valid token, 403 without the role, masking by grade, grants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from medlake.security import GrantStore
from medlake.services.users import ROLES
from tests.services.conftest import MASTER, STORED_BIRTH, STORED_ID_NUMBER, STORED_NAME, Service

# (method, path, body) of one call per service
ENDPOINTS = {
    "patient360": ("GET", f"/patients/{MASTER}", None),
    "metrics": ("POST", "/metrics/visits_daily/query", {"filters": {"institution_code": ["H1"]}}),
    "catalog": ("GET", "/catalog?q=golden", None),
    "lineage": ("GET", "/lineage/upstream?ref=metric:visits_daily", None),
    "service/encounters_by_department": ("POST", "/services/encounters_by_department",
                                         {"institution_code": "H1", "dept_code": "5001"}),
    "service/settlements_of_institution": ("POST", "/services/settlements_of_institution", {"medins_code": "H1"}),
}
# written out by hand (not read from policy.csv / services.yaml) so that a policy change is caught here
ALLOWED = {
    "clinician": {"patient360", "catalog", "service/encounters_by_department"},
    "analyst": {"metrics", "catalog", "lineage", "service/encounters_by_department"},
    "fund_supervisor": {"metrics", "catalog", "service/settlements_of_institution"},
    "cdc_officer": {"metrics", "catalog"},
    "data_steward": {"patient360", "catalog", "lineage"},
    "admin": set(ENDPOINTS),
}


def _call(service: Service, name: str, headers: dict[str, str] | None = None) -> httpx.Response:
    method, path, body = ENDPOINTS[name]
    return service.client.request(method, path, json=body, headers=headers or {})


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_no_token_no_answer(service: Service, name: str) -> None:
    response = _call(service, name)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    garbage = _call(service, name, {"Authorization": "Bearer not.a.token"})
    assert garbage.status_code == 401


def test_expired_or_forged_tokens_are_refused(service: Service) -> None:
    now = datetime.now(UTC)
    claims = {"sub": "clinician-user", "role": "clinician", "iss": "medlake", "aud": "medlake"}
    expired = jwt.encode({**claims, "exp": now - timedelta(minutes=5)}, service.settings.serve.token_secret,
                         algorithm="HS256")
    forged = jwt.encode({**claims, "exp": now + timedelta(minutes=5)}, "someone-elses-secret-0123456789-0123456789",
                        algorithm="HS256")
    unsigned = jwt.encode({**claims, "exp": now + timedelta(minutes=5)}, None, algorithm="none")
    for token in (expired, forged, unsigned):
        response = _call(service, "patient360", {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text
    assert "expired" in _call(service, "patient360", {"Authorization": f"Bearer {expired}"}).json()["detail"]


def test_wrong_password_gets_no_token(service: Service) -> None:
    response = service.client.post("/token", data={"username": "clinician-user", "password": "wrong-password"})
    assert response.status_code == 401
    assert service.client.post("/token", data={"username": "nobody", "password": "whatever-1"}).status_code == 401


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(service: Service, role: str) -> None:
    headers = service.headers(role)
    for name in sorted(ENDPOINTS):
        response = _call(service, name, headers)
        if name in ALLOWED[role]:
            assert response.status_code == 200, (role, name, response.text)
        else:
            assert response.status_code == 403, (role, name, response.text)
            assert response.json()["title"] == "Forbidden"


def _golden(service: Service, role: str) -> dict[str, object]:
    response = service.client.get(f"/patients/{MASTER}", headers=service.headers(role))
    assert response.status_code == 200, response.text
    return response.json()


def test_masked_by_grade_for_each_role(service: Service) -> None:
    clinician = _golden(service, "clinician")  # clearance 4
    record = clinician["golden_record"]
    assert record["name"] == STORED_NAME and record["birth_date"] == STORED_BIRTH  # grades 4, 3
    assert record["id_number"] is None  # grade 5: suppressed
    assert "dwd.golden_record.name" in clinician["columns_unmasked"]
    assert "dwd.golden_record.id_number" not in clinician["columns_unmasked"]

    steward = _golden(service, "data_steward")["golden_record"]  # clearance 5
    assert steward["id_number"] == STORED_ID_NUMBER

    admin = _golden(service, "admin")  # clearance 1
    masked = admin["golden_record"]
    assert masked["sex"] == "1"  # grade 1: as stored
    assert masked["name"] != STORED_NAME and masked["name"]  # grade 4: salted hash
    assert masked["birth_date"] != STORED_BIRTH  # grade 3: partial / generalised
    assert masked["id_number"] is None
    assert all(STORED_NAME not in str(identity.values()) for identity in admin["identities"])
    assert admin["columns_unmasked"] == ["dwd.golden_record.sex", "dwd.golden_record.record_count"] or set(
        admin["columns_unmasked"]) >= {"dwd.golden_record.sex"}


def test_patient_360_joins_institutions_in_time_order(service: Service) -> None:
    view = _golden(service, "data_steward")
    assert [i["record_id"] for i in view["identities"]] == ["H1:P1", "H2:Q7"]
    kinds = [(e["kind"], e["record"].get("encounter_id")) for e in view["events"]]
    # H2's inpatient stay (1 Jan) comes before H1's visit (2 Jan); the other patient's E2 never appears
    assert kinds == [("encounter", "E9"), ("diagnosis", "E9"), ("lab_result", "E9"), ("medication", "E9"),
                     ("encounter", "E1"), ("diagnosis", "E1"), ("medication", "E1"), ("settlement", "E1")]
    times = [e["time"] for e in view["events"]]
    assert times == sorted(times)
    page = service.client.get(f"/patients/{MASTER}?limit=3&offset=3", headers=service.headers("data_steward"))
    assert page.json()["page"] == {"total": 8, "limit": 3, "offset": 3, "next_offset": 6}
    assert [e["record"]["encounter_id"] for e in page.json()["events"]] == ["E9", "E1", "E1"]
    missing = service.client.get("/patients/MP_NOBODY", headers=service.headers("clinician"))
    assert missing.status_code == 404


def test_grant_unmasks_until_it_expires(service: Service) -> None:
    grants = GrantStore(service.engine, service.settings)
    now = datetime.now(UTC)
    expired = grants.request("clinician-user", "dwd.golden_record", 5, "follow-up",
                             now - timedelta(hours=1), valid_from=now - timedelta(days=2))
    grants.approve(expired, "data_steward-user")
    assert _golden(service, "clinician")["golden_record"]["id_number"] is None  # expired grant: still suppressed

    active = grants.request("clinician-user", "dwd.golden_record", 5, "transfer of care", now + timedelta(days=1))
    grants.approve(active, "data_steward-user")
    service.client.app.state.service.protection._grants._values.clear()  # don't wait out the 5 s grant cache
    view = _golden(service, "clinician")
    assert view["golden_record"]["id_number"] == STORED_ID_NUMBER
    assert "dwd.golden_record.id_number" in view["columns_unmasked"]
    service.client.app.state.service.audit.flush()
    from medlake.services.audit import read_audit

    rows = read_audit(service.engine, service.settings, user="clinician-user", service="patient360").to_pylist()
    assert rows[0]["grant_id"] == active
    assert "dwd.golden_record.id_number" in rows[0]["columns_unmasked"]


def test_metric_filters_and_masking(service: Service) -> None:
    headers = service.headers("analyst")
    body = {"filters": {"institution_code": ["H1"], "encounter_type": ["outpatient"]}, "limit": 1}
    response = service.client.post("/metrics/visits_daily/query", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["page"] == {"total": 2, "limit": 1, "offset": 0, "next_offset": 1}
    assert response.json()["rows"] == [{"institution_code": "H1", "visit_date": "2026-01-02",
                                        "encounter_type": "outpatient", "visits": 1}]
    bad = service.client.post("/metrics/visits_daily/query", json={"filters": {"name": ["x"]}}, headers=headers)
    assert bad.status_code == 422 and "no dimension" in bad.json()["detail"]
    assert service.client.post("/metrics/nope/query", json={}, headers=headers).status_code == 404


def test_catalog_columns_carry_classification_and_impact_follows_the_graph(service: Service) -> None:
    headers = service.headers("analyst")
    columns = service.client.get("/catalog/dwd.golden_record/columns", headers=headers)
    assert columns.status_code == 200, columns.text
    by_name = {c["column"]: c for c in columns.json()}
    assert by_name["id_number"]["grade"] == 5 and by_name["id_number"]["category"] == "personal attributes"
    assert by_name["master_id"]["grade"] is None  # never classified
    assert service.client.get("/catalog/dwd.nothing/columns", headers=headers).status_code == 404
    impact = service.client.get("/impact?element=DE08.10.025.00", headers=headers)
    assert impact.status_code == 200, impact.text
    assert any("dept_code" in str(item) for item in impact.json()["items"])
    assert service.client.get("/impact", headers=headers).status_code == 422

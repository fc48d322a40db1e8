"""Identity-provider tokens (RS256 via a JWKS), rate limits, the user store and CLI, configured services from YAML,
and refused input (unknown fields and query parameters, out-of-range values)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from typer.testing import CliRunner

from medlake.config import Settings
from medlake.errors import ConfigurationError
from medlake.services.configured import load_services
from medlake.services.users import UserStore
from tests.services.conftest import MASTER, Service, build_lake, start


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextmanager
def _jwks_endpoint(folder: Path, key: rsa.RSAPrivateKey, kid: str) -> Iterator[str]:
    """The public key as a JWKS document served on loopback, standing in for the identity provider's endpoint."""
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    (folder / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def _idp_token(key: rsa.RSAPrivateKey, kid: str, **claims: object) -> str:
    now = datetime.now(UTC)
    body = {"sub": "dr.li@hospital", "iss": "https://idp.example", "aud": "medlake", "exp": now + timedelta(minutes=5),
            "roles": ["staff", "clinician"], **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def _serve(tmp_path: Path, **serve: object) -> tuple[object, Settings]:
    engine, settings = build_lake(tmp_path)
    return engine, replace(settings, serve=replace(settings.serve, **serve))


def test_identity_provider_tokens_checked_against_jwks(tmp_path: Path) -> None:
    key, stranger = _key(), _key()
    keys = tmp_path / "idp"
    keys.mkdir()
    with _jwks_endpoint(keys, key, "k1") as url:
        engine, settings = _serve(tmp_path, jwks_url=url, jwt_issuer="https://idp.example")
        _check_idp_tokens(engine, settings, key, stranger)


def _check_idp_tokens(engine: object, settings: Settings, key: rsa.RSAPrivateKey, stranger: rsa.RSAPrivateKey) -> None:
    for service in start(engine, settings):
        get = service.client.get
        good = get(f"/patients/{MASTER}", headers={"Authorization": f"Bearer {_idp_token(key, 'k1')}"})
        assert good.status_code == 200, good.text
        assert good.json()["golden_record"]["name"] == "张伟"  # clinician clearance
        for token in (_idp_token(stranger, "k1"),  # signed by another key
                      _idp_token(key, "k1", iss="https://evil.example"),  # wrong issuer
                      _idp_token(key, "k1", aud="other-app"),  # wrong audience
                      _idp_token(key, "k1", roles=["staff"]),  # no medlake role
                      _idp_token(key, "k1", exp=datetime.now(UTC) - timedelta(minutes=1)),  # expired
                      _idp_token(key, "unknown-kid")):  # key not in the JWKS
            refused = get(f"/patients/{MASTER}", headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 401, refused.text
        analyst = _idp_token(key, "k1", roles="analyst")
        assert get(f"/patients/{MASTER}", headers={"Authorization": f"Bearer {analyst}"}).status_code == 403


def test_rate_limit_per_user(tmp_path: Path) -> None:
    engine, settings = _serve(tmp_path, rate_per_minute=3)
    for service in start(engine, settings):
        clinician, steward = service.headers("clinician"), service.headers("data_steward")
        statuses = [service.client.get("/catalog", headers=clinician).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = service.client.get("/catalog", headers=clinician)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert service.client.get("/catalog", headers=steward).status_code == 200  # another user's own budget


def test_unknown_fields_parameters_and_ranges_are_refused(service: Service) -> None:
    headers = service.headers("clinician")
    cases = [
        service.client.get(f"/patients/{MASTER}?limit=501", headers=headers),
        service.client.get(f"/patients/{MASTER}?offset=-1", headers=headers),
        service.client.get(f"/patients/{MASTER}?debug=1", headers=headers),
        service.client.get("/patients/" + "x" * 65, headers=headers),
        service.client.get("/patients/a;drop table", headers=headers),
        service.client.post("/services/encounters_by_department", headers=headers,
                            json={"institution_code": "H1", "dept_code": "5001", "sql": "1=1"}),
        service.client.post("/services/encounters_by_department", headers=headers,
                            json={"institution_code": "H1", "dept_code": "5001", "limit": 1001}),
        service.client.post("/services/encounters_by_department", headers=headers,
                            json={"institution_code": "H1", "dept_code": "5001", "admit_from": "yesterday"}),
        service.client.post("/services/encounters_by_department", headers=headers,
                            json={"institution_code": "H1" * 40, "dept_code": "5001"}),
    ]
    for response in cases:
        assert response.status_code in (404, 422), response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code


def test_configured_service_filters_with_bound_values(service: Service) -> None:
    headers = service.headers("clinician")
    body = {"institution_code": "H1", "dept_code": "5001", "admit_from": "2026-01-03T00:00:00", "limit": 5}
    response = service.client.post("/services/encounters_by_department", headers=headers, json=body)
    assert response.status_code == 200, response.text
    assert [r["encounter_id"] for r in response.json()["rows"]] == ["E2"]
    injected = {"institution_code": "H1' OR '1'='1", "dept_code": "5001"}
    assert service.client.post("/services/encounters_by_department", headers=headers,
                               json=injected).json()["rows"] == []
    paged = service.client.post("/services/encounters_by_department", headers=headers,
                                json={"institution_code": "H1", "dept_code": "5001", "limit": 1})
    assert paged.json()["page"]["next_offset"] == 1
    schema = service.client.get("/openapi.json").json()
    request = schema["components"]["schemas"]["EncountersByDepartmentRequest"]
    assert request["additionalProperties"] is False
    assert set(request["required"]) == {"institution_code", "dept_code"}


def test_services_yaml_errors_name_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    settings = Settings(home=tmp_path)
    settings = replace(settings, serve=replace(settings.serve, services_file=str(path)))
    path.write_text("services:\n  bad_one:\n    table: dwd.encounter\n    roles: [nurse]\n")
    with pytest.raises(ConfigurationError, match=r"services.yaml: services.bad_one: roles.0"):
        load_services(settings)
    path.write_text("services:\n  ok:\n    table: dwd.encounter\n    roles: [analyst]\n"
                    "    parameters: {dept_code: {type: text}}\n")
    with pytest.raises(ConfigurationError, match=r"services.ok: parameters.dept_code.type"):
        load_services(settings)
    path.write_text("services:\n  ok:\n    table: dwd.encounter\n    roles: [analyst]\n    limit: 5\n")
    with pytest.raises(ConfigurationError, match=r"services.ok: limit: Extra inputs"):
        load_services(settings)


def test_users_command_reads_password_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medlake.cli import _register, app

    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path))
    _register()
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "wang.fang", "--role", "cdc_officer"], input="s3cret-passphrase\n")
    assert added.exit_code == 0, added.output
    store = UserStore(Settings(home=tmp_path))
    assert store.authenticate("wang.fang", "s3cret-passphrase").role == "cdc_officer"
    assert store.authenticate("wang.fang", "wrong-passphrase") is None
    assert "s3cret" not in (tmp_path / "services" / "users.sqlite").read_bytes().decode("latin-1")
    bad = runner.invoke(app, ["users", "add", "x", "--role", "nurse"], input="long-enough-pass\n")
    assert bad.exit_code == 2 and "role 'nurse'" in bad.output


def test_serving_without_a_mask_salt_is_refused(tmp_path: Path) -> None:
    from medlake.engine import get_engine
    from medlake.services.app import create_app

    with pytest.raises(ConfigurationError, match="MEDLAKE_MASK_SALT"):
        create_app(Settings(home=tmp_path), engine=get_engine("polars"))

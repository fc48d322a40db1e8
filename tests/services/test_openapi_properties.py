"""Property-based tests of the whole OpenAPI document with schemathesis, in process: no server error, and every
response's status code, content type, headers and body conform to what the document declares."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi import checks as openapi_checks

from tests.services.conftest import Service, build_lake, start

CHECKS = [checks.not_a_server_error, openapi_checks.status_code_conformance,
          openapi_checks.content_type_conformance, openapi_checks.response_headers_conformance,
          openapi_checks.response_schema_conformance]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from start(*build_lake(tmp_path_factory.mktemp("openapi-lake")))


def test_every_operation_conforms(running: Service) -> None:
    """Each operation of the document, with generated valid and invalid parameters and bodies, called as admin (who may call every
    service, with everything above grade 1 masked)."""
    headers = running.headers("admin")
    api = schemathesis.openapi.from_asgi("/openapi.json", running.client.app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10

    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        if mode is GenerationMode.NEGATIVE and not (len(operation.query) + len(operation.path_parameters)
                                                    + len(operation.body)):
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        conforms()


def test_every_response_code_is_declared(running: Service) -> None:
    document = running.client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            assert {"401", "403", "422", "429", "503"} <= declared, (method, path, sorted(declared))

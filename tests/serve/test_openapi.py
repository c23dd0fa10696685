"""The checked-in OpenAPI document is current, and a property-based fuzz run of it finds no 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wsi_ssl.serve.app import OPENAPI_PATH, openapi_document

# Few examples per operation and mode keep the fuzz run to a few seconds on a shared 2-core box.
EXAMPLES_PER_OPERATION = 8


def test_checked_in_openapi_is_current(client: Any) -> None:
    """Regenerate with `wsi-ssl serve --write-openapi wsi_ssl/serve/openapi.json` when this fails."""
    checked_in = json.loads(OPENAPI_PATH.read_text())
    assert checked_in == openapi_document(), "wsi_ssl/serve/openapi.json is stale: regenerate it"
    served = client.get("/v1/openapi.json")
    assert served.status_code == 200 and served.json() == checked_in


def test_every_operation_is_documented_with_its_errors() -> None:
    doc = json.loads(OPENAPI_PATH.read_text())
    ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert ops == {
        ("GET", "/v1/health"),
        ("GET", "/v1/cohorts"),
        ("GET", "/v1/models"),
        ("GET", "/v1/cohorts/{cohort}/slides"),
        ("GET", "/v1/cohorts/{cohort}/slides/{slide_id}"),
        ("GET", "/v1/cohorts/{cohort}/slides/{slide_id}/embedding"),
        ("GET", "/v1/cohorts/{cohort}/slides/{slide_id}/tiles"),
        ("POST", "/v1/embed"),
        ("POST", "/v1/cohorts/{cohort}/slides/{slide_id}/predict"),
    }
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path != "/v1/health":
                assert "401" in op["responses"], (method, path)
                assert op.get("security") == [{"APIKeyHeader": []}], (method, path)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzz_finds_no_server_errors(app: Any, keys: dict[str, Any], mode: str) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    headers = {"X-API-Key": keys["all"]}
    failures: list[str] = []
    n_calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies = [operation.as_strategy(generation, headers=headers)]
        params = {p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "path"}
        if params:  # also aim at a real slide, so generated queries and bodies reach the deep code paths
            real = {"cohort": "A", "slide_id": "a1"}
            strategies.append(
                operation.as_strategy(generation, headers=headers, path_parameters={k: real[k] for k in params})
            )

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategies))
        def run(case: Any) -> None:
            nonlocal n_calls
            response = case.call()
            n_calls += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")
                return
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error", "detail"}, body
            # Every answer, error or not, has a documented status, content type and body shape.
            case.validate_response(
                response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
            )

        try:
            run()
        except Unsatisfiable:
            # Negative mode on an operation with nothing to get wrong (no parameters, no body).
            assert mode == "negative" and not operation.definition.raw.get("parameters"), operation.label
    assert n_calls >= 9 * 5
    assert not failures, "\n".join(failures[:10])

"""Schemathesis against the OpenAPI schema: whatever it sends, no server error and no traceback.

Bounded (a few examples per operation) so the suite stays fast; runs on SQLite only, the
store does not change what a malformed request gets.
"""
from __future__ import annotations

import json
import warnings

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from _api_helpers import copy_tree, start

warnings.filterwarnings("ignore", category=DeprecationWarning)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    """NDJSON bodies are text in the schema; send generated text as it is."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else json.dumps(value).encode()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    a = start(f"sqlite:///{tmp / 'fuzz.db'}", copy_tree(tmp / "policies"))
    yield a
    a.client.__exit__(None, None, None)


def _schema():
    return schemathesis.pytest.from_fixture("fuzz_schema")


@pytest.fixture(scope="module")
def fuzz_schema(running):
    return schemathesis.openapi.from_asgi("/v1/openapi.json", running.client.app)


schema = _schema()


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_request_makes_the_service_fail(case, running):
    response = case.call(headers={"Authorization": f"Bearer {running.key('admin', '*')}"})
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), f"{case.method} {case.path}: {response.text[:200]}"
        assert "Traceback" not in response.text

"""The evaluation routes are answered before FastAPI's router (api/routing.HotPaths), and the
router, given the same requests, answers them the same way."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from _api_helpers import DAIRY_B, WEIHAI, XINYU
from api.main import create_app
from api.routes.evaluations import hot as hot_routes
from api.routing import HotPaths
from api.settings import Settings


@pytest.fixture(scope="module")
def router_only(api):
    """A second worker on the same store and tree, without HotPaths: FastAPI routes everything."""
    app = create_app(Settings(database_url=api.url, policies=(str(api.tree),), watch_seconds=0,
                              key_cache_seconds=0))
    app.user_middleware = [m for m in app.user_middleware if m.cls is not HotPaths]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_the_evaluation_routes_are_answered_before_the_router(api):
    def router(scope, receive, send):
        raise AssertionError(f"{scope['method']} {scope['path']} reached the router")

    hot = HotPaths(router, router=hot_routes, prefix="/v1")

    async def app(scope, receive, send):
        scope["app"] = api.client.app       # as the application sets it before its middleware
        await hot(scope, receive, send)

    client = TestClient(app)
    h = dict(api.as_("system", "weihai"))
    assert client.post(f"/v1/policies/{WEIHAI}/evaluations", json={"inputs": DAIRY_B}, headers=h).status_code == 201
    batch = client.post(f"/v1/policies/{WEIHAI}/evaluations/batch", json=[{"inputs": DAIRY_B}], headers=h)
    assert batch.status_code == 200 and batch.json()["summary"]["evaluated"] == 1
    assert client.post(f"/v1/policies/{XINYU}/evaluations", json={"inputs": {}}, headers=h).status_code == 403
    with pytest.raises(AssertionError, match="reached the router"):
        client.get(f"/v1/policies/{WEIHAI}/evaluations", headers=h)     # not a hot route: passed on


def test_the_service_as_started_answers_evaluations_without_its_router(fresh, monkeypatch):
    """Guards the wiring: were HotPaths left out of create_app, or given no routes, the router
    would answer and every other test here would still pass."""
    from fastapi.routing import APIRoute

    async def refuse(self, scope, receive, send):
        raise RuntimeError(f"{scope['path']} went through the router")

    api = fresh()
    h = api.as_("system", "weihai")
    monkeypatch.setattr(APIRoute, "handle", refuse)
    assert api.evaluate(WEIHAI, DAIRY_B, h).status_code == 201
    batch = api.client.post(f"/v1/policies/{WEIHAI}/evaluations/batch", json=[{"inputs": DAIRY_B}], headers=h)
    assert batch.status_code == 200
    assert api.client.get("/v1/policies", headers=h).status_code == 500     # the spy does catch routed requests


def _comparable(response) -> tuple:
    body = response.json()
    if isinstance(body, dict):
        body.pop("evaluation_id", None)
        body.pop("instance", None)
    return response.status_code, response.headers["content-type"], body


@pytest.mark.parametrize("case", [
    "graded", "explained", "as of a date", "unknown policy", "policy id too long", "no key", "no key, id too long",
    "other jurisdiction",
    "not json", "wrong content type", "inputs missing", "bad input value", "bad query"])
def test_the_router_answers_an_evaluation_as_hot_paths_do(api, router_only, case):
    h = api.as_("system", "weihai")
    json_h = dict(h, **{"Content-Type": "application/json"})
    url = f"/v1/policies/{WEIHAI}/evaluations"
    request = {
        "graded": dict(url=url, json={"enterprise_id": "e1", "inputs": DAIRY_B}, headers=h),
        "explained": dict(url=url, params={"explain": "true"}, json={"inputs": DAIRY_B}, headers=h),
        "as of a date": dict(url=url, params={"as_of": "2024-06-30"}, json={"inputs": DAIRY_B}, headers=h),
        "unknown policy": dict(url="/v1/policies/weihai.nothing/evaluations", json={"inputs": DAIRY_B}, headers=h),
        "policy id too long": dict(url=f"/v1/policies/weihai.{'x' * 130}/evaluations", json={"inputs": {}},
                                   headers=h),
        "no key": dict(url=url, json={"inputs": DAIRY_B}),
        "no key, id too long": dict(url=f"/v1/policies/weihai.{'x' * 130}/evaluations", json={"inputs": {}}),
        "other jurisdiction": dict(url=f"/v1/policies/{XINYU}/evaluations", json={"inputs": {}}, headers=h),
        "not json": dict(url=url, content=b"{not json", headers=json_h),
        "wrong content type": dict(url=url, content=b"inputs", headers=dict(h, **{"Content-Type": "text/plain"})),
        "inputs missing": dict(url=url, json={"enterprise_id": "e1"}, headers=h),
        "bad input value": dict(url=url, json={"inputs": dict(DAIRY_B, penalties="two")}, headers=h),
        "bad query": dict(url=url, params={"as_of": "yesterday"}, json={"inputs": DAIRY_B}, headers=h),
    }[case]
    hot, routed = api.client.post(**request), router_only.post(**request)
    assert _comparable(hot) == _comparable(routed)


def _without_ids(value):
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("evaluation_id", "batch_id", "instance")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


@pytest.mark.parametrize("case", ["array", "ndjson", "not an array", "a bad record among good ones"])
def test_the_router_answers_a_batch_as_hot_paths_do(api, router_only, case):
    h = api.as_("system", "weihai")
    url = f"/v1/policies/{WEIHAI}/evaluations/batch"
    good, bad = {"inputs": DAIRY_B}, {"inputs": dict(DAIRY_B, penalties="two")}
    request = {
        "array": dict(url=url, json=[good, good], headers=h),
        "ndjson": dict(url=url, content=b'{"inputs": {}}\n{oops\n',
                       headers=dict(h, **{"Content-Type": "application/x-ndjson"})),
        "not an array": dict(url=url, json={"inputs": DAIRY_B}, headers=h),
        "a bad record among good ones": dict(url=url, json=[good, bad, good], headers=h),
    }[case]
    hot, routed = api.client.post(**request), router_only.post(**request)
    assert (hot.status_code, hot.headers["content-type"]) == (routed.status_code, routed.headers["content-type"])
    if case == "ndjson":
        lines = [[_without_ids(json.loads(line)) for line in r.text.splitlines()] for r in (hot, routed)]
        assert lines[0] == lines[1] and len(lines[0]) == 2
    else:
        assert _without_ids(hot.json()) == _without_ids(routed.json())


def test_fastapis_opentelemetry_is_off_unless_the_operator_turns_it_on(monkeypatch, tmp_path):
    monkeypatch.setenv("RISKRULES_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.delenv("RISKRULES_TELEMETRY", raising=False)
    off = Settings.from_env()
    assert off.telemetry is False
    assert create_app(off)._telemetry["tracing"] is False      # no provider lookup per request
    monkeypatch.setenv("RISKRULES_TELEMETRY", "1")
    on = Settings.from_env()
    assert on.telemetry is True and create_app(on)._telemetry["tracing"] is True

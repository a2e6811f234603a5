"""Who may ask what: keys, roles and jurisdictions."""
from __future__ import annotations

import pytest

from api.keys import revoke_key

from _api_helpers import DAIRY_B, TEST_ACTOR, WEIHAI, XINYU, problem_of


def test_health_needs_no_key(api):
    r = api.client.get("/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer "},
                                     {"Authorization": "Bearer rrk_not-a-key-that-exists"},
                                     {"Authorization": "Bearer nonsense"}])
def test_a_request_without_a_valid_key_is_401_with_a_bearer_challenge(api, headers):
    for method, path in [("GET", "/v1/policies"), ("GET", "/v1/ready"), ("POST", f"/v1/policies/{WEIHAI}/evaluations"),
                         ("GET", "/v1/audit"), ("POST", "/v1/validate"), ("POST", "/v1/reload")]:
        r = api.client.request(method, path, headers=headers)
        problem_of(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_key_stops_working(api):
    key = api.key("system", "weihai", name="soon revoked")
    h = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/v1/policies", headers=h).status_code == 200
    key_id = next(r["id"] for r in api.service.store.keys() if r["name"] == "soon revoked")
    revoke_key(api.service.store, key_id, actor=TEST_ACTOR)
    problem_of(api.client.get("/v1/policies", headers=h), 401, "unauthenticated")


def test_the_store_keeps_only_the_hash_of_a_key(api):
    key = api.key("system", "weihai", name="hashed")
    row = next(r for r in api.service.store.keys() if r["name"] == "hashed")
    assert key not in row.values()
    assert len(row["key_hash"]) == 64 and row["prefix"] == key[:12]


def test_readiness_needs_a_key_and_reports_the_store_and_policies(api):
    r = api.client.get("/v1/ready", headers=api.as_("system", "weihai"))
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["database"] == "ok" and body["policies"] == 2


@pytest.mark.parametrize("role, method, path, body", [
    ("system", "POST", "/v1/validate", "policy x.y {}"),
    ("system", "POST", f"/v1/policies/{WEIHAI}/versions", "policy x.y {}"),
    ("system", "POST", "/v1/reload", None),
    ("system", "GET", "/v1/audit", None),
    ("officer", "GET", "/v1/audit", None),
    ("auditor", "POST", f"/v1/policies/{WEIHAI}/evaluations", None),
    ("auditor", "POST", f"/v1/policies/{WEIHAI}/versions", "policy x.y {}"),
])
def test_a_role_without_the_permission_gets_403(api, role, method, path, body):
    headers = dict(api.as_(role, "weihai"), **{"Content-Type": "text/plain"})
    r = api.client.request(method, path, content=body.encode() if body else None, headers=headers)
    assert f"role `{role}`" in problem_of(r, 403, "forbidden")["detail"]


def test_a_weihai_system_sees_only_weihai_policies(api):
    r = api.client.get("/v1/policies", headers=api.as_("system", "weihai"))
    assert [p["id"] for p in r.json()["policies"]] == [WEIHAI]


def test_a_provincial_key_sees_every_jurisdiction(api):
    r = api.client.get("/v1/policies", headers=api.as_("auditor", "*"))
    assert [p["id"] for p in r.json()["policies"]] == [WEIHAI, XINYU]


@pytest.mark.parametrize("method, path", [
    ("GET", f"/v1/policies/{XINYU}"),
    ("GET", f"/v1/policies/{XINYU}/versions/2022.05"),
    ("POST", f"/v1/policies/{XINYU}/evaluations"),
    ("POST", f"/v1/policies/{XINYU}/evaluations/batch"),
    ("GET", "/v1/policies/xinyu.does_not_exist"),
])
def test_a_weihai_key_gets_403_on_xinyu_policies_even_unknown_ones(api, method, path):
    r = api.client.request(method, path, json={"inputs": {"penalties": 0}}, headers=api.as_("system", "weihai"))
    assert "`weihai`" in problem_of(r, 403, "forbidden")["detail"]


def test_a_weihai_key_cannot_read_a_xinyu_evaluation(api):
    made = api.evaluate(XINYU, {"penalties": 0}, api.as_("system", "xinyu"))
    assert made.status_code == 201
    r = api.client.get(made.headers["location"], headers=api.as_("system", "weihai"))
    problem_of(r, 403, "forbidden")
    assert api.client.get(made.headers["location"], headers=api.as_("system", "xinyu")).status_code == 200


def test_a_weihai_evaluation_with_a_weihai_key_works(api):
    assert api.evaluate(WEIHAI, DAIRY_B, api.as_("system", "weihai")).status_code == 201

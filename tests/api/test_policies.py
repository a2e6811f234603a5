"""Reading policies: the list with versions and effective dates, one version's text and check."""
from __future__ import annotations

import hashlib

from _api_helpers import WEIHAI, problem_of


def test_the_list_shows_each_version_with_its_effective_date_and_which_is_in_force(api):
    r = api.client.get("/v1/policies", headers=api.as_("system", "weihai"))
    assert r.status_code == 200
    (policy,) = r.json()["policies"]
    assert policy["id"] == WEIHAI and policy["jurisdiction"] == "weihai" and policy["in_force"] == "2021.09"
    (version,) = policy["versions"]
    assert version["effective"] == "2021-09-16" and version["origin"] == "file" and version["in_force"] is True
    assert version["title"] == "威海市食品生产企业信用风险分级"


def test_one_policy_lists_its_versions(api):
    r = api.client.get(f"/v1/policies/{WEIHAI}", headers=api.as_("officer", "weihai"))
    assert r.status_code == 200 and [v["version"] for v in r.json()["versions"]] == ["2021.09"]


def test_a_version_gives_its_exact_text_and_its_check_report(api):
    text = (api.tree / "weihai" / "food_production.rules").read_text(encoding="utf-8")
    r = api.client.get(f"/v1/policies/{WEIHAI}/versions/2021.09", headers=api.as_("system", "weihai"))
    assert r.status_code == 200
    body = r.json()
    assert body["text"] == text
    assert body["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert body["grades"] == ["A", "B", "C", "D"] and "penalties" in body["inputs"]
    check = body["check"]
    assert check["ok"] is True and check["errors"] == 0 and check["assumptions"] > 0
    assumption = next(d for d in check["diagnostics"] if d["code"] == "assumption")
    assert assumption["line"] > 0 and assumption["column"] > 0 and assumption["severity"] == "info"


def test_a_version_can_be_named_by_its_sha256(api):
    h = api.as_("system", "weihai")
    sha = api.client.get(f"/v1/policies/{WEIHAI}/versions/2021.09", headers=h).json()["sha256"]
    r = api.client.get(f"/v1/policies/{WEIHAI}/versions/{sha}", headers=h)
    assert r.status_code == 200 and r.json()["version"] == "2021.09"


def test_an_unknown_policy_or_version_is_404(api):
    h = api.as_("system", "weihai")
    assert "weihai.nothing" in problem_of(api.client.get("/v1/policies/weihai.nothing", headers=h), 404,
                                          "not-found")["detail"]
    problem_of(api.client.get(f"/v1/policies/{WEIHAI}/versions/1999.01", headers=h), 404, "not-found")
    problem_of(api.client.get("/v1/policies/weihai.nothing/versions/1", headers=h), 404, "not-found")


def test_an_unknown_path_or_method_is_a_problem_too(api):
    h = api.as_("system", "weihai")
    problem_of(api.client.get("/v1/nothing-here", headers=h), 404, "not-found")
    problem_of(api.client.delete(f"/v1/policies/{WEIHAI}", headers=h), 405, "method-not-allowed")


def test_openapi_documents_every_endpoint_with_an_example(api):
    spec = api.client.get("/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, item in spec["paths"].items():
        for method, op in item.items():
            examples = []
            body = op.get("requestBody", {}).get("content", {})
            examples += [c for c in body.values() if "example" in c or "examples" in c.get("schema", {})]
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
            ref = schema.get("$ref", "").rsplit("/", 1)[-1]
            component = spec["components"]["schemas"].get(ref, {})
            examples += component.get("examples", [])
            assert examples, f"{method.upper()} {path} has no example"

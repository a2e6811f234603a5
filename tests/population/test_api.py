"""POST /v1/policies/{policy_id}/draws: officers only, the same answer for the same seed, and
every draw in the audit log (run on SQLite; the store tests run both stores)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from _api_helpers import problem_of, start  # noqa: E402

REPO_POLICIES = Path(__file__).resolve().parents[2] / "policies"
PDS = "pingdingshan.general"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("draws")
    tree = tmp / "policies"
    shutil.copytree(REPO_POLICIES / "pingdingshan", tree / "pingdingshan")
    a = start(f"sqlite:///{tmp / 'store.db'}", tree)
    yield a
    a.client.__exit__(None, None, None)


def body(n=400, **extra):
    grades = "AAAAABBBCD"
    tags = ["食品经营", "餐饮服务;企业", "特种设备使用", "个体"]
    population = [{"id": f"914104{k:012d}", "provincial_grade": grades[k % 10], "tags": tags[k % 4]} for k in range(n)]
    officers = [{"id": f"ZH{k:03d}", "district": "湛河区", "conflicts": [population[0]["id"]] if k == 0 else []}
                for k in range(12)]
    return dict({"seed": 20211227, "as_of": "2024-06-30", "population": population, "officers": officers}, **extra)


def test_an_officer_draws_and_the_same_seed_gives_the_same_sample(api):
    h = api.as_("officer", "pingdingshan")
    r1 = api.client.post(f"/v1/policies/{PDS}/draws", json=body(), headers=h)
    assert r1.status_code == 200, r1.text
    r2 = api.client.post(f"/v1/policies/{PDS}/draws", json=body(), headers=h)
    a, b = r1.json(), r2.json()
    assert a["sample"] == b["sample"] and a["draw_id"] != b["draw_id"]
    s = a["summary"]
    assert s["seed"] == "20211227" and s["population"]["fingerprint"].startswith("sha256:")
    assert s["policy"]["id"] == PDS and [d["mode"] for d in s["draws"]] == ["combined", "per_grade", "batches"]
    assert all(len(row["officers"]) == 2 for row in a["sample"])
    assert all(row["items"] for row in a["sample"])
    other = api.client.post(f"/v1/policies/{PDS}/draws", json=body(seed=7), headers=h).json()
    assert other["sample"] != a["sample"]


def test_every_draw_is_in_the_audit_log(api):
    h = api.as_("officer", "pingdingshan")
    r = api.client.post(f"/v1/policies/{PDS}/draws", json=body(plans=["多等级分批派发"]), headers=h)
    assert r.status_code == 200, r.text
    answer = r.json()
    log = api.client.get("/v1/audit", params={"action": "draw"}, headers=api.as_("auditor", "*")).json()["entries"]
    entry = next(e for e in log if e["detail"]["draw_id"] == answer["draw_id"])
    d = entry["detail"]
    assert entry["policy_id"] == PDS and entry["role"] == "officer"
    assert d["seed"] == "20211227" and d["population_fingerprint"] == answer["summary"]["population"]["fingerprint"]
    assert d["sample_sha256"] == answer["summary"]["sample_sha256"] and d["plans"] == ["多等级分批派发"]
    assert d["drawn"] == {"多等级分批派发": len(answer["sample"])}


def test_only_officers_of_the_jurisdiction_may_draw(api):
    for role in ("system", "auditor"):
        problem_of(api.client.post(f"/v1/policies/{PDS}/draws", json=body(), headers=api.as_(role, "pingdingshan")),
                   403, "forbidden")
    problem_of(api.client.post(f"/v1/policies/{PDS}/draws", json=body(), headers=api.as_("officer", "weihai")),
               403, "forbidden")
    problem_of(api.client.post(f"/v1/policies/{PDS}/draws", json=body()), 401, "unauthenticated")


def test_bad_requests_are_problems(api):
    h = api.as_("officer", "pingdingshan")
    p = problem_of(api.client.post(f"/v1/policies/{PDS}/draws", json=body(max_load=1), headers=h), 422, "invalid-input")
    assert p["constraint"] == "load_cap" and "load cap of 1" in p["detail"]
    dup = body()
    dup["population"].append(dict(dup["population"][0]))
    p = problem_of(api.client.post(f"/v1/policies/{PDS}/draws", json=dup, headers=h), 422, "invalid-input")
    assert p["code"] == "duplicate_id"
    p = problem_of(api.client.post(f"/v1/policies/{PDS}/draws", json=body(seed="-3"), headers=h), 422, "invalid-request")
    assert p["errors"][0]["loc"][0] == "seed"
    problem_of(api.client.post(f"/v1/policies/{PDS}/draws", json=body(plans=["nope"]), headers=h), 422, "invalid-input")
    problem_of(api.client.post("/v1/policies/pingdingshan.nope/draws", json=body(), headers=h), 404, "not-found")
    problem_of(api.client.post(f"/v1/policies/{PDS}/draws", content=b"x", headers=dict(h, **{"Content-Type": "text/plain"})),
               415, "unsupported-media-type")

"""Reloading the policy tree: all or nothing, and no request in flight notices."""
from __future__ import annotations

import threading

from _api_helpers import DAIRY_B, WEIHAI, problem_of

WEIHAI_GENERAL = """policy weihai.general {
  title     "威海通用型（测试）"
  version   "1"
  effective 2021-01-01
  grades A "低风险", B "高风险"
  input provincial_grade : grade "省级结果"
  grade = provincial_grade
  measures {
    sampling_ratio : ratio "双随机抽查比例"
    A: sampling_ratio = 2%  assumed "test"
    B: sampling_ratio = 100% assumed "test"
  }
}
"""


def test_a_reload_picks_up_a_new_policy_file(fresh):
    api = fresh()
    (api.tree / "weihai" / "general.rules").write_text(WEIHAI_GENERAL, encoding="utf-8")
    h = api.as_("officer", "weihai")
    r = api.client.post("/v1/reload", headers=h)
    assert r.status_code == 200 and r.json()["reloaded"] is True and r.json()["policies"] == 3
    assert api.evaluate("weihai.general", {"provincial_grade": "B"}, h).json()["result"]["grade"] == "B"
    entries = api.client.get("/v1/audit", params={"action": "reload"}, headers=api.as_("auditor", "*")).json()
    assert "weihai.general@1" in entries["entries"][0]["detail"]["versions"]


def test_a_reload_with_a_broken_file_changes_nothing_and_says_why(fresh):
    api = fresh()
    (api.tree / "weihai" / "general.rules").write_text(WEIHAI_GENERAL.replace("100%", "true"), encoding="utf-8")
    before = api.service.policies.current
    body = problem_of(api.client.post("/v1/reload", headers=api.as_("officer", "weihai")), 422, "invalid-policy")
    (d,) = body["diagnostics"]
    assert d["code"] == "measure_type" and d["file"].endswith("general.rules") and d["line"] == 11
    assert api.service.policies.current is before
    problem_of(api.evaluate("weihai.general", {"provincial_grade": "B"}, api.as_("system", "weihai")), 404, "not-found")


def test_requests_in_flight_during_reloads_all_succeed(fresh):
    api = fresh()
    h = api.as_("system", "weihai")
    statuses, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            statuses.append(api.evaluate(WEIHAI, DAIRY_B, h).status_code)

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        for _ in range(5):
            assert api.client.post("/v1/reload", headers=api.as_("officer", "weihai")).status_code == 200
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert statuses and set(statuses) == {201}


def test_another_worker_follows_a_reload(fresh):
    from _api_helpers import start
    api = fresh()
    other = start(api.url, api.tree)
    try:
        (api.tree / "weihai" / "general.rules").write_text(WEIHAI_GENERAL, encoding="utf-8")
        assert api.client.post("/v1/reload", headers=api.as_("officer", "weihai")).status_code == 200
        assert "weihai.general" not in other.service.policies.current.ids()
        other.service.policies.follow()
        assert "weihai.general" in other.service.policies.current.ids()
    finally:
        other.client.__exit__(None, None, None)


def test_sighup_reloads_like_the_endpoint_and_is_on_the_trail(fresh):
    from api.main import _reload           # what the SIGHUP handler runs
    api = fresh()
    (api.tree / "weihai" / "general.rules").write_text(WEIHAI_GENERAL, encoding="utf-8")
    _reload(api.service)
    assert "weihai.general" in api.service.policies.current.ids()
    entry = api.client.get("/v1/audit", params={"action": "reload"}, headers=api.as_("auditor", "*")).json()["entries"][0]
    assert entry["actor_name"] == "SIGHUP"


def test_a_file_that_is_not_utf8_fails_the_reload_with_its_own_diagnostic(fresh):
    api = fresh()
    (api.tree / "weihai" / "general.rules").write_bytes("policy weihai.general {".encode("gbk") + "标题".encode("gbk"))
    body = problem_of(api.client.post("/v1/reload", headers=api.as_("officer", "weihai")), 422, "invalid-policy")
    assert [d["message"] for d in body["diagnostics"]] == ["the file is not UTF-8 text"]

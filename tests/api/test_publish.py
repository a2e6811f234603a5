"""Checking and publishing policy texts: officers of the jurisdiction only, immutable versions."""
from __future__ import annotations

import datetime as dt

from _api_helpers import DAIRY_B, WEIHAI, XINYU, problem_of, start


def weihai_text(api, version: str, effective: dt.date, a_below: int = 35) -> str:
    """The weihai policy as a new version; a higher A cutoff turns the dairy firm (38.9) into an A."""
    text = (api.tree / "weihai" / "food_production.rules").read_text(encoding="utf-8")
    return (text.replace('version   "2021.09"', f'version   "{version}"')
                .replace("effective 2021-09-16", f"effective {effective.isoformat()}")
                .replace("A below 35", f"A below {a_below}"))


def broken_text(api) -> str:
    return weihai_text(api, "2099.01", dt.date(2099, 1, 1)).replace("weight 40%", "weight 30%", 1)


def test_an_officer_checks_a_text_without_publishing_it(api):
    h = dict(api.as_("officer", "weihai"), **{"Content-Type": "text/plain"})
    r = api.client.post("/v1/validate", content=weihai_text(api, "2030.01", dt.date(2030, 1, 1)).encode(), headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["policy"]["version"] == "2030.01" and body["errors"] == 0
    versions = api.client.get(f"/v1/policies/{WEIHAI}", headers=h).json()["versions"]
    assert "2030.01" not in [v["version"] for v in versions]


def test_checking_a_broken_text_gives_its_diagnostics_with_line_column_and_help(api):
    r = api.client.post("/v1/validate", json={"text": broken_text(api), "file": "weihai/new.rules"},
                        headers=api.as_("officer", "weihai"))
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is False and body["policy"] is None and body["errors"] == 1
    (d,) = [d for d in body["diagnostics"] if d["severity"] == "error"]
    assert d["code"] == "weights_sum" and d["file"] == "weihai/new.rules"
    assert d["line"] > 0 and d["column"] > 0 and d["message"]


def test_a_text_that_does_not_parse_is_reported_not_a_500(api):
    r = api.client.post("/v1/validate", content="policy weihai.x {".encode(),
                        headers=dict(api.as_("officer", "weihai"), **{"Content-Type": "text/plain"}))
    assert r.status_code == 200 and r.json()["diagnostics"][0]["code"] == "syntax_error"


def test_a_weihai_officer_cannot_check_or_publish_a_xinyu_policy(api):
    text = (api.tree / "xinyu" / "general.rules").read_text(encoding="utf-8").replace('"2022.05"', '"2023.01"')
    h = api.as_("officer", "weihai")
    problem_of(api.client.post("/v1/validate", json={"text": text}, headers=h), 403, "forbidden")
    problem_of(api.publish(XINYU, text, h), 403, "forbidden")
    assert api.publish(XINYU, text, api.as_("officer", "xinyu")).status_code == 201


def test_a_text_published_under_another_policy_id_is_refused(api):
    text = weihai_text(api, "2031.01", dt.date(2031, 1, 1)).replace("policy weihai.food_production",
                                                                    "policy weihai.catering")
    body = problem_of(api.publish(WEIHAI, text, api.as_("officer", "weihai")), 422, "invalid-policy")
    assert "weihai.catering" in body["detail"]


def test_a_broken_version_is_refused_with_its_diagnostics(api):
    body = problem_of(api.publish(WEIHAI, broken_text(api), api.as_("officer", "weihai")), 422, "invalid-policy")
    (d,) = [d for d in body["diagnostics"] if d["severity"] == "error"]
    assert d["code"] == "weights_sum" and d["line"] > 0 and d["column"] > 0
    versions = api.client.get(f"/v1/policies/{WEIHAI}", headers=api.as_("officer", "weihai")).json()["versions"]
    assert "2099.01" not in [v["version"] for v in versions]


def test_a_published_version_is_immutable(api):
    h = api.as_("officer", "weihai")
    text = weihai_text(api, "2040.01", dt.date(2040, 1, 1))
    first = api.publish(WEIHAI, text, h)
    assert first.status_code == 201 and first.json()["origin"] == "published"
    assert first.headers["location"].endswith(first.json()["sha256"])
    again = problem_of(api.publish(WEIHAI, text, h), 409, "conflict")
    assert again["sha256"] == first.json()["sha256"]
    other_text_same_version = problem_of(api.publish(WEIHAI, weihai_text(api, "2040.01", dt.date(2040, 1, 1), 36), h),
                                         409, "conflict")
    assert "never overwritten" in other_text_same_version["detail"]
    file_version_again = problem_of(api.publish(WEIHAI, weihai_text(api, "2021.09", dt.date(2021, 9, 16)), h),
                                    409, "conflict")
    assert "2021.09" in file_version_again["detail"]


def test_the_previous_version_keeps_deciding_until_the_new_one_takes_effect(api):
    h = api.as_("officer", "weihai")
    starts = dt.date.today() + dt.timedelta(days=30)
    published = api.publish(WEIHAI, weihai_text(api, "next", starts, a_below=40), h)
    assert published.status_code == 201 and published.json()["in_force"] is False
    today = api.evaluate(WEIHAI, DAIRY_B, h).json()["result"]
    assert today["policy"]["version"] == "2021.09" and today["grade"] == "B"
    later = api.evaluate(WEIHAI, DAIRY_B, h, as_of=starts.isoformat()).json()["result"]
    assert later["policy"]["version"] == "next" and later["grade"] == "A"
    by_name = api.evaluate(WEIHAI, DAIRY_B, h, version="next").json()["result"]
    assert by_name["policy"]["sha256"] == published.json()["sha256"]


def test_a_version_effective_today_decides_at_once(api):
    h = api.as_("officer", "weihai")
    assert api.publish(WEIHAI, weihai_text(api, "today", dt.date.today(), a_below=40), h).status_code == 201
    assert api.evaluate(WEIHAI, DAIRY_B, h).json()["result"]["policy"]["version"] == "today"
    listed = api.client.get(f"/v1/policies/{WEIHAI}", headers=h).json()
    assert listed["in_force"] == "today"


def test_publishing_is_audited(api):
    h = api.as_("officer", "weihai")
    sha = api.publish(WEIHAI, weihai_text(api, "audited", dt.date(2050, 1, 1)), h).json()["sha256"]
    entries = api.client.get("/v1/audit", params={"action": "publish", "limit": 1000},
                             headers=api.as_("auditor", "*")).json()["entries"]
    entry = next(e for e in entries if e["policy_sha256"] == sha)
    assert entry["policy_version"] == "audited" and entry["role"] == "officer" and entry["jurisdiction"] == "weihai"


def test_published_versions_survive_a_restart_and_reach_the_other_workers(api):
    h = api.as_("officer", "weihai")
    other = start(api.url, api.tree)          # a second worker on the same store
    try:
        sha = api.publish(WEIHAI, weihai_text(api, "shared", dt.date(2060, 1, 1)), h).json()["sha256"]
        assert other.service.policies.current.find_sha256(sha) is None
        other.service.policies.follow()       # what its watcher does every second
        r = other.client.get(f"/v1/policies/{WEIHAI}/versions/{sha}", headers={"Authorization": h["Authorization"]})
        assert r.status_code == 200 and r.json()["origin"] == "published"
    finally:
        other.client.__exit__(None, None, None)
    restarted = start(api.url, api.tree)
    try:
        assert restarted.service.policies.current.find_sha256(sha) is not None
    finally:
        restarted.client.__exit__(None, None, None)


def test_a_policy_text_must_come_as_text_or_json(api):
    h = api.as_("officer", "weihai")
    problem_of(api.client.post("/v1/validate", content=b"<policy/>", headers=dict(h, **{"Content-Type": "text/xml"})),
               415, "unsupported-media-type")
    problem_of(api.client.post("/v1/validate", json={"txt": "policy"}, headers=h), 422, "invalid-request")
    problem_of(api.client.post("/v1/validate", content=b'{"text": ', headers=dict(h, **{"Content-Type":
                                                                                          "application/json"})),
               400, "malformed-request")
    problem_of(api.client.post("/v1/validate", content=b"\xff\xfe", headers=dict(h, **{"Content-Type": "text/plain"})),
               400, "malformed-request")

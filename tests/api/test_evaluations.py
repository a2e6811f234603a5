"""Evaluating one enterprise: which version decides, the answer, every way a request can be wrong."""
from __future__ import annotations

import hashlib
import json

import orjson
import pytest

from _api_helpers import DAIRY_B, WEIHAI, XINYU, problem_of


def test_a_dairy_firm_with_one_penalty_is_graded_b_with_its_measures(api):
    r = api.evaluate(WEIHAI, DAIRY_B, api.as_("system", "weihai"), as_of="2024-06-30")
    assert r.status_code == 201
    body = r.json()
    result = body["result"]
    assert result["grade"] == "B" and result["grade_label"] == "中低风险"
    assert result["policy"]["id"] == WEIHAI and result["policy"]["version"] == "2021.09"
    assert result["as_of"] == "2024-06-30"
    assert isinstance(result["score"], str) and result["decided_by"][0].startswith(f"score {result['score']} → B")
    measures = {m["name"]: m for m in result["measures"]}
    assert measures["routine_checks"]["op"] == "min" and measures["routine_checks"]["value"] == 2
    assert measures["flight_checks"]["per"] == {"n": 3, "unit": "year"}
    assert "explanation" not in result
    assert body["enterprise_id"] == "91371000MA3C000001"
    assert body["input_sha256"] == hashlib.sha256(orjson.dumps(DAIRY_B, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert r.headers["location"] == f"/v1/evaluations/{body['evaluation_id']}"


def test_explain_says_why_each_indicator_scored_what_it_did(api):
    r = api.evaluate(WEIHAI, DAIRY_B, api.as_("system", "weihai"), explain="true")
    explanation = r.json()["result"]["explanation"]
    penalties = next(i for i in explanation["indicators"] if i["indicator"] == "行政处罚")
    assert penalties["value"] == 1 and penalties["bin"] == "1" and penalties["points"] == "70"
    assert explanation["assumptions"]


def test_a_named_version_or_its_sha256_decides_instead_of_the_one_in_force(api):
    h = api.as_("system", "weihai")
    sha = api.client.get(f"/v1/policies/{WEIHAI}", headers=h).json()["versions"][0]["sha256"]
    for ref in ("2021.09", sha):
        r = api.evaluate(WEIHAI, DAIRY_B, h, version=ref)
        assert r.status_code == 201 and r.json()["result"]["policy"]["sha256"] == sha


def test_before_the_first_version_took_effect_there_is_nothing_to_evaluate_with(api):
    r = api.evaluate(WEIHAI, DAIRY_B, api.as_("system", "weihai"), as_of="2020-01-01")
    assert "no version in force on 2020-01-01" in problem_of(r, 404, "not-found")["detail"]


def test_an_unknown_version_or_policy_is_404(api):
    h = api.as_("system", "weihai")
    problem_of(api.evaluate(WEIHAI, DAIRY_B, h, version="1999.01"), 404, "not-found")
    problem_of(api.evaluate("weihai.catering", DAIRY_B, h), 404, "not-found")


def test_a_record_with_several_problems_gets_all_of_them_with_their_paths(api):
    inputs = dict(DAIRY_B, penalties="two", consumers="外星人", unknown_field=1)
    del inputs["self_discipline"]      # missing worst: allowed, not a problem
    body = problem_of(api.evaluate(WEIHAI, inputs, api.as_("system", "weihai")), 422, "invalid-input")
    problems = {tuple(p["loc"]): p for p in body["errors"]}
    assert problems[("inputs", "penalties")]["type"] == "wrong_type"
    assert problems[("inputs", "penalties")]["input"] == "two"
    assert problems[("inputs", "consumers")]["type"] == "not_a_member"
    assert problems[("inputs", "unknown_field")]["type"] == "unknown_field"
    assert len(problems) == 3


@pytest.mark.parametrize("body, loc, kind", [
    ({"inputs": DAIRY_B, "enterprise": "x"}, ["enterprise"], "unknown_field"),
    ({"enterprise_id": "x"}, ["inputs"], "missing_required"),
    ({"inputs": [1, 2]}, ["inputs"], "wrong_type"),
    ({"inputs": DAIRY_B, "enterprise_id": 42}, ["enterprise_id"], "wrong_type"),
    ([DAIRY_B], [], "wrong_type"),
])
def test_a_body_that_is_not_an_evaluation_request_is_422(api, body, loc, kind):
    r = api.client.post(f"/v1/policies/{WEIHAI}/evaluations", json=body, headers=api.as_("system", "weihai"))
    errors = problem_of(r, 422, "invalid-request")["errors"]
    assert {"loc": loc, "type": kind} == {k: errors[0][k] for k in ("loc", "type")}


def test_malformed_json_is_400_and_a_wrong_content_type_is_415(api):
    h = api.as_("system", "weihai")
    url = f"/v1/policies/{WEIHAI}/evaluations"
    problem_of(api.client.post(url, content=b'{"inputs": {', headers=dict(h, **{"Content-Type": "application/json"})),
               400, "malformed-request")
    problem_of(api.client.post(url, content=b"penalties=1", headers=dict(h, **{"Content-Type": "text/plain"})),
               415, "unsupported-media-type")
    problem_of(api.client.post(url, content=b"{}", headers=h), 415, "unsupported-media-type")


def test_a_query_parameter_of_the_wrong_form_is_422(api):
    h = api.as_("system", "weihai")
    body = problem_of(api.evaluate(WEIHAI, DAIRY_B, h, as_of="yesterday"), 422, "invalid-request")
    assert body["errors"][0]["loc"] == ["query", "as_of"]
    problem_of(api.evaluate(WEIHAI, DAIRY_B, h, explain="perhaps"), 422, "invalid-request")


def test_a_body_over_the_limit_is_413_before_it_is_read(fresh):
    api = fresh(max_body_bytes=2048)
    big = {"enterprise_id": "x" * 4000, "inputs": DAIRY_B}
    r = api.client.post(f"/v1/policies/{WEIHAI}/evaluations", content=json.dumps(big).encode(),
                        headers=dict(api.as_("system", "weihai"), **{"Content-Type": "application/json"}))
    problem_of(r, 413, "too-large")


def test_a_chunked_body_over_the_limit_is_413_too(fresh):
    api = fresh(max_body_bytes=2048)

    def chunks():
        yield b'{"inputs": {}, "enterprise_id": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'
    r = api.client.post(f"/v1/policies/{WEIHAI}/evaluations", content=chunks(),
                        headers=dict(api.as_("system", "weihai"), **{"Content-Type": "application/json"}))
    problem_of(r, 413, "too-large")


def test_a_stored_evaluation_can_be_read_back_and_the_read_is_audited(api):
    h = api.as_("system", "weihai")
    made = api.evaluate(WEIHAI, DAIRY_B, h).json()
    r = api.client.get(f"/v1/evaluations/{made['evaluation_id']}", headers=h)
    assert r.status_code == 200
    stored = r.json()
    assert stored["result"] == made["result"] and stored["input_sha256"] == made["input_sha256"]
    assert stored["grade"] == "B" and stored["policy_version"] == "2021.09"
    reads = api.client.get("/v1/audit", params={"action": "read_evaluation", "limit": 1000},
                           headers=api.as_("auditor", "weihai")).json()["entries"]
    assert any(e["detail"]["evaluation_id"] == made["evaluation_id"] for e in reads)
    problem_of(api.client.get("/v1/evaluations/nope", headers=h), 404, "not-found")


def test_every_evaluation_is_recorded_and_audited_before_the_answer(api):
    h = api.as_("system", "xinyu")
    made = api.evaluate(XINYU, {"penalties": 1, "abnormal_list": True}, h).json()
    assert made["result"]["grade"] == "C" and made["result"]["overrides"][0]["name"] == "异常名录"
    row = api.service.store.evaluation(made["evaluation_id"])
    assert row["input_sha256"] == made["input_sha256"] and row["grade"] == "C" and row["caller_id"] is not None
    assert json.loads(row["result"]) == made["result"]
    entries = api.client.get("/v1/audit", params={"action": "evaluate", "limit": 1000},
                             headers=api.as_("auditor", "xinyu")).json()["entries"]
    entry = next(e for e in entries if e["detail"]["evaluation_id"] == made["evaluation_id"])
    assert entry["policy_id"] == XINYU and entry["detail"]["result_sha256"] == row["result_sha256"]
    assert entry["actor_name"] == "xinyu system"


def test_a_result_that_cannot_be_recorded_is_not_sent(fresh):
    api = fresh()
    h = api.as_("system", "weihai")
    with api.service.store.write() as conn:
        conn.exec_driver_sql("DROP TABLE evaluations")
    r = api.evaluate(WEIHAI, DAIRY_B, h)
    body = problem_of(r, 503, "unavailable")
    assert "result" not in body and "not sent" in body["detail"] and r.headers["retry-after"] == "5"
    problem_of(api.client.post(f"/v1/policies/{WEIHAI}/evaluations/batch", json=[{"inputs": DAIRY_B}], headers=h),
               503, "unavailable")


def _cut_the_recorders_connection(api, kind: str) -> None:
    """As a restarted database or a network cut leaves it: the recorder's session is gone."""
    if kind == "sqlite":
        api.service.recorder._connection._fairy.driver_connection.close()
        return
    pid = api.service.recorder._connection._fairy.driver_connection.info.backend_pid
    with api.service.store.write() as conn:
        assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar() is True


def test_when_the_recorders_connection_is_lost_the_next_answer_is_recorded_on_a_new_one(fresh, databases):
    api = fresh()
    h = api.as_("system", "weihai")
    assert api.evaluate(WEIHAI, DAIRY_B, h).status_code == 201
    _cut_the_recorders_connection(api, databases.kind)
    r = api.evaluate(WEIHAI, DAIRY_B, h)
    assert r.status_code == 201
    assert api.service.store.evaluation(r.json()["evaluation_id"]) is not None
    assert api.client.get("/v1/audit/verify", headers=api.as_("auditor", "*")).json()["ok"] is True

"""Batches: one answer per record, in order; a bad record gets its own error and the rest go on."""
from __future__ import annotations

import json

from _api_helpers import DAIRY_B, WEIHAI, problem_of

URL = f"/v1/policies/{WEIHAI}/evaluations/batch"
GOOD = {"enterprise_id": "e0", "inputs": DAIRY_B}
BAD_VALUE = {"enterprise_id": "e1", "inputs": dict(DAIRY_B, penalties=-1)}
NOT_A_REQUEST = {"enterprise_id": "e2", "input": DAIRY_B}


def _ndjson(lines) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def test_a_json_batch_answers_every_record_and_refuses_only_the_bad_ones(api):
    r = api.client.post(URL, json=[GOOD, BAD_VALUE, NOT_A_REQUEST, GOOD], headers=api.as_("system", "weihai"))
    assert r.status_code == 200
    body = r.json()
    assert body["summary"] == {"records": 4, "evaluated": 2, "refused": 2}
    results = body["results"]
    assert [a["index"] for a in results] == [0, 1, 2, 3]
    assert results[0]["result"]["grade"] == "B" and results[3]["result"]["grade"] == "B"
    assert results[1]["error"]["type"].endswith("/invalid-input")
    assert results[1]["error"]["errors"][0]["loc"] == ["inputs", "penalties"]
    assert results[1]["enterprise_id"] == "e1"
    assert results[2]["error"]["errors"][0] == {"loc": ["input"], "type": "unknown_field",
                                                "msg": "`input` is not a field; the inputs go in `inputs`"}
    stored = api.service.store.evaluation(results[0]["evaluation_id"])
    assert stored["batch_id"] == body["batch_id"] and stored["batch_index"] == 0


def test_an_ndjson_batch_streams_one_line_per_record(api):
    lines = [GOOD, b"{not json", BAD_VALUE, b"", GOOD]
    r = api.client.post(URL, content=_ndjson(lines),
                        headers=dict(api.as_("system", "weihai"), **{"Content-Type": "application/x-ndjson"}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    answers = [json.loads(line) for line in r.text.splitlines()]
    assert [a["index"] for a in answers] == [0, 1, 2, 3]        # the empty line is not a record
    assert answers[0]["result"]["grade"] == "B" and answers[3]["result"]["grade"] == "B"
    assert answers[1]["error"]["type"].endswith("/malformed-request")
    assert answers[2]["error"]["type"].endswith("/invalid-input")
    stored = api.service.store.evaluation(answers[3]["evaluation_id"])
    assert stored["batch_id"] == r.headers["batch-id"]


def test_a_batch_is_audited_with_a_digest_of_what_was_released(api):
    r = api.client.post(URL, json=[GOOD, BAD_VALUE], headers=api.as_("system", "weihai")).json()
    entries = api.client.get("/v1/audit", params={"action": "evaluate_batch", "limit": 1000},
                             headers=api.as_("auditor", "weihai")).json()["entries"]
    entry = next(e for e in entries if e["detail"]["batch_id"] == r["batch_id"])
    assert entry["detail"]["records"] == 2 and entry["detail"]["evaluated"] == 1
    assert len(entry["detail"]["digest"]) == 64


def test_a_json_batch_over_the_record_limit_is_413(fresh):
    api = fresh(max_batch_records=3)
    r = api.client.post(URL, json=[GOOD] * 4, headers=api.as_("system", "weihai"))
    assert "4 records" in problem_of(r, 413, "too-large")["detail"]


def test_an_ndjson_batch_over_the_record_limit_ends_with_an_error_line(fresh):
    api = fresh(max_batch_records=3)
    r = api.client.post(URL, content=_ndjson([GOOD] * 5),
                        headers=dict(api.as_("system", "weihai"), **{"Content-Type": "application/x-ndjson"}))
    answers = [json.loads(line) for line in r.text.splitlines()]
    assert [a["index"] for a in answers] == [0, 1, 2, None]
    assert answers[-1]["error"]["status"] == 413


def test_a_batch_body_over_the_byte_limit_is_413(fresh):
    api = fresh(max_batch_bytes=1000)
    problem_of(api.client.post(URL, json=[GOOD] * 20, headers=api.as_("system", "weihai")), 413, "too-large")


def test_a_batch_must_be_an_array_sent_as_json_or_ndjson(api):
    h = api.as_("system", "weihai")
    problem_of(api.client.post(URL, json=GOOD, headers=h), 422, "invalid-request")
    problem_of(api.client.post(URL, content=b"[", headers=dict(h, **{"Content-Type": "application/json"})),
               400, "malformed-request")
    problem_of(api.client.post(URL, content=b"a,b", headers=dict(h, **{"Content-Type": "text/csv"})),
               415, "unsupported-media-type")


def test_an_empty_batch_has_no_answers(api):
    r = api.client.post(URL, json=[], headers=api.as_("system", "weihai"))
    assert r.status_code == 200 and r.json()["results"] == [] and r.json()["summary"]["records"] == 0


def test_an_ndjson_batch_that_cannot_be_recorded_ends_with_an_error_line_and_no_results(fresh):
    api = fresh()
    with api.service.store.write() as conn:
        conn.exec_driver_sql("DROP TABLE evaluations")
    r = api.client.post(URL, content=_ndjson([GOOD] * 3),
                        headers=dict(api.as_("system", "weihai"), **{"Content-Type": "application/x-ndjson"}))
    answers = [json.loads(line) for line in r.text.splitlines()]
    assert answers == [{"index": None, "error": answers[0]["error"]}]
    assert answers[0]["error"]["status"] == 503

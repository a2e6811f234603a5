"""Large batch chunks go through the columnar plan (api/columnar.py); every answer is the
per-record path's, byte for byte: the shipped policies' synthetic populations and the reference
scorecard, with bad records mixed in (they get the per-record errors, and the rest go on)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import polars as pl
import pytest

from api.columnar import MIN_RECORDS, columnar_run
from api.evaluations import Batch
from api.keys import Caller
from engine import compile_text
from engine.batch_plan import Unsupported
from engine.compiler import Evaluator
from engine.loader import load_paths
from engine.synth import population

from _api_helpers import DAIRY_B, WEIHAI

AS_OF = dt.date(2024, 6, 30)
ROOT = Path(__file__).resolve().parents[2]
SIZE = 1200
URL = f"/v1/policies/{WEIHAI}/evaluations/batch"


def _records(checked, frame: pl.DataFrame, events) -> list[dict]:
    """The population as request inputs: nulls left out, dates as text, every events input a
    list, a used policy's columns `alias.input` nested under `alias`."""
    dates: dict = {}
    if events is not None:
        for row in events.sort("date").iter_rows(named=True):
            if row["date"] is not None:
                dates.setdefault(row["id"], {}).setdefault(row["input"], []).append(row["date"].isoformat())
    names = [] if events is None else \
        [k for k, i in checked.inputs.items() if i.type.kind == "events"] + \
        [f"{a}.{k}" for a, u in checked.used.items() for k, i in u.inputs.items() if i.type.kind == "events"]
    out = []
    for row in frame.iter_rows(named=True):
        rec = {alias: {} for alias in checked.used}
        values = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items() if k != "id" and v is not None}
        values.update({name: dates.get(row["id"], {}).get(name, []) for name in names})
        for k, v in values.items():
            alias, _, name = k.rpartition(".")
            (rec[alias] if alias else rec)[name] = v
        out.append(rec)
    return out


def _spoil(checked, recs: list[dict]) -> list:
    """Requests with bad ones among them: wrong types, out of domain, unknown inputs and fields,
    values the frame cannot hold as they are, events as objects, items that are not requests."""
    items = [{"enterprise_id": f"e{k}", "inputs": r} for k, r in enumerate(recs)]
    items[0]["enterprise_id"] = None
    k = 1
    for name, decl in checked.inputs.items():
        kind = decl.type.kind
        bad = {"count": [-1, "two", 2.0, 2 ** 62, True], "number": ["x", True, 2 ** 60], "ratio": [1.5, "x", 1],
               "bool": [1, "yes"], "enum": ["不存在", 3], "grade": ["Z"], "date": ["2024-02-30", 20240101],
               "events": [["2024-01-01", {"date": "2024-02-01"}], ["nope"], None]}[kind]
        for v in bad:
            if k + 7 >= len(items):
                break
            items[k]["inputs"] = dict(items[k]["inputs"], **{name: v})
            k += 7
    items[3] = {"enterprise_id": "e3", "input": recs[3]}
    items[5] = {"enterprise_id": "e5", "inputs": dict(recs[5], 未知=1)}
    items[9] = ["not", "an", "object"]
    items[11] = {"enterprise_id": 12, "inputs": recs[11]}
    items[21]["inputs"] = dict(items[21]["inputs"], **{next(iter(checked.inputs)): None})    # a null written out
    items[23] = {"inputs": recs[23], "enterprise_id": "e" * 65}
    for alias, used in checked.used.items():            # a used policy's inputs: not an object,
        first = next(iter(used.inputs))                  # an unknown input, a wrong value
        items[15]["inputs"] = dict(items[15]["inputs"], **{alias: "x"})
        items[17]["inputs"] = dict(items[17]["inputs"], **{alias: dict(recs[17][alias], 未知=1)})
        items[19]["inputs"] = dict(items[19]["inputs"], **{alias: dict(recs[19][alias], **{first: [1]})})
    return items


def _batch(ev) -> Batch:
    b = Batch.__new__(Batch)
    b.ev, b.caller, b.as_of, b.explain = ev, Caller(1, "test", "system", "*"), AS_OF, False
    b.id, b.records, b.evaluated = "b0", 0, 0
    return b


def _same_as_per_record(checked, size=SIZE, seed=3, as_bytes=False):
    try:
        frame, events = population(checked, size, seed=seed, as_of=AS_OF)
    except Unsupported as exc:
        pytest.skip(str(exc))
    ev = Evaluator(checked)
    run = columnar_run(ev, AS_OF)
    if run is None:
        pytest.skip("the plan does not take this policy (uses another, or a lasting override)")
    items = [(k, orjson.dumps(obj) if as_bytes else obj, None)
             for k, obj in enumerate(_spoil(checked, _records(checked, frame, events)))]
    items[13] = (13, None, {"type": "…/malformed-request", "errors": []})
    b = _batch(ev)
    done, _, fallback = run.answer(items, b.id)
    assert len(done) > 0.6 * size                    # the columnar path did the bulk of the work
    got, rows, evaluated = b._columnar(run, items, "now")
    want, want_rows = [], []
    for item in items:
        b._one(item, "now", want, want_rows)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g == w, (k, orjson.loads(g), orjson.loads(w))
    assert evaluated == len(want_rows)
    chunk = rows[-1]
    assert chunk["id"] == f"b0.0-{items[-1][0]}" and chunk["grade"] is None
    assert orjson.loads(chunk["result"]) == [orjson.loads(got[r]) for r in sorted(done)]
    return fallback


def reference_scorecard(tmp_path, monkeypatch):
    """The 89-indicator reference scorecard (bench/scorecard.py), checked; skipped where the
    peers' workload is not on the machine."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import scorecard
    try:
        path = scorecard.write(tmp_path / "scorecard.rules")
    except SystemExit as why:
        pytest.skip(str(why))
    checked, diags = compile_text(path.read_text(encoding="utf-8"), str(path))
    assert checked is not None, diags
    return checked


def shipped():
    return [s.checked for s in load_paths([ROOT / "policies"]) if s.checked is not None]


@pytest.mark.parametrize("as_bytes", [False, True], ids=["parsed", "as sent"])
@pytest.mark.parametrize("checked", shipped(), ids=lambda c: c.id + "@" + c.version)
def test_shipped_policies_answer_as_the_per_record_path(checked, as_bytes):
    _same_as_per_record(checked, as_bytes=as_bytes)


def test_the_reference_scorecard_answers_as_the_per_record_path(tmp_path, monkeypatch):
    checked = reference_scorecard(tmp_path, monkeypatch)
    _same_as_per_record(checked, seed=5)
    _same_as_per_record(checked, seed=6, as_bytes=True)


def test_a_large_batch_is_recorded_per_chunk_and_audited(api):
    items = [{"enterprise_id": f"e{k}", "inputs": DAIRY_B} for k in range(MIN_RECORDS + 1)]
    items[7] = {"enterprise_id": "e7", "inputs": dict(DAIRY_B, penalties=-1)}
    r = api.client.post(URL, json=items, headers=api.as_("system", "weihai"))
    assert r.status_code == 200
    body = r.json()
    assert body["summary"] == {"records": MIN_RECORDS + 1, "evaluated": MIN_RECORDS, "refused": 1}
    results = body["results"]
    assert results[7]["error"]["errors"][0]["loc"] == ["inputs", "penalties"]
    assert results[0]["result"]["grade"] == "B" and results[-1]["evaluation_id"] == f"{body['batch_id']}.{MIN_RECORDS}"
    stored = api.service.store.evaluation(f"{body['batch_id']}.0-{MIN_RECORDS}")
    assert stored["batch_id"] == body["batch_id"] and stored["batch_index"] == 0
    assert orjson.loads(stored["result"]) == [a for a in results if "result" in a]
    entries = api.client.get("/v1/audit", params={"action": "evaluate_batch", "limit": 1000},
                             headers=api.as_("auditor", "weihai")).json()["entries"]
    entry = next(e for e in entries if e["detail"]["batch_id"] == body["batch_id"])
    assert entry["detail"]["records"] == MIN_RECORDS + 1 and entry["detail"]["evaluated"] == MIN_RECORDS
    verify = api.client.get("/v1/audit/verify", headers=api.as_("auditor", "*"))
    assert verify.status_code == 200 and verify.json()["ok"] is True


def test_a_large_ndjson_batch_streams_the_columnar_answers_in_order(api):
    lines = [orjson.dumps({"enterprise_id": f"e{k}", "inputs": DAIRY_B}) for k in range(MIN_RECORDS + 2)]
    lines[4] = b"{not json"
    r = api.client.post(URL, content=b"\n".join(lines) + b"\n",
                        headers=dict(api.as_("system", "weihai"), **{"Content-Type": "application/x-ndjson"}))
    answers = [orjson.loads(line) for line in r.text.splitlines()]
    assert [a["index"] for a in answers] == list(range(MIN_RECORDS + 2))
    assert answers[4]["error"]["type"].endswith("/malformed-request")
    assert all(a["result"]["grade"] == "B" for k, a in enumerate(answers) if k != 4)


def test_each_answer_of_a_large_batch_reads_back_by_its_evaluation_id(api):
    items = [{"enterprise_id": f"e{k}", "inputs": DAIRY_B} for k in range(MIN_RECORDS + 1)]
    items[7] = {"enterprise_id": "e7", "inputs": dict(DAIRY_B, penalties=-1)}
    body = api.client.post(URL, json=items, headers=api.as_("system", "weihai")).json()
    chunk = f"{body['batch_id']}.0-{MIN_RECORDS}"
    for k in (0, 8, MIN_RECORDS):
        answer = body["results"][k]
        r = api.client.get(f"/v1/evaluations/{answer['evaluation_id']}", headers=api.as_("auditor", "weihai"))
        assert r.status_code == 200, r.text
        stored = r.json()
        assert stored["evaluation_id"] == answer["evaluation_id"] and stored["record_id"] == chunk
        assert stored["result"] == answer["result"] and stored["input_sha256"] == answer["input_sha256"]
        assert (stored["enterprise_id"], stored["grade"]) == (f"e{k}", answer["result"]["grade"])
    refused = f"{body['batch_id']}.7"
    assert api.client.get(f"/v1/evaluations/{refused}", headers=api.as_("auditor", "weihai")).status_code == 404
    past_the_end = f"{body['batch_id']}.{MIN_RECORDS + 1}"
    assert api.client.get(f"/v1/evaluations/{past_the_end}", headers=api.as_("auditor", "weihai")).status_code == 404
    assert api.client.get(f"/v1/evaluations/{body['batch_id']}.0",
                          headers=api.as_("auditor", "xinyu")).status_code == 403
    entries = api.client.get("/v1/audit", params={"action": "read_evaluation", "limit": 1000},
                             headers=api.as_("auditor", "weihai")).json()["entries"]
    read = next(e for e in entries if e["detail"]["evaluation_id"] == f"{body['batch_id']}.8")
    assert read["detail"]["record_id"] == chunk

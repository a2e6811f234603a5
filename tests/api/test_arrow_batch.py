"""Batches as Arrow IPC streams (api/arrow_batches.py): every answer is the per-record path's —
the shipped policies' synthetic populations and the reference scorecard, with refused values
mixed in — and the service takes, records and refuses streams as it does JSON batches."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
from pathlib import Path

import orjson
import polars as pl
import pytest

from api.arrow_batches import ArrowBatch
from api.arrow_stream import MEDIA_TYPE
from engine.batch_plan import Unsupported
from engine.compiler import Evaluator
from engine.loader import load_paths
from engine.synth import population

from _api_helpers import DAIRY_B, WEIHAI
from test_columnar_batch import _batch, reference_scorecard

AS_OF = dt.date(2024, 6, 30)
ROOT = Path(__file__).resolve().parents[2]
URL = f"/v1/policies/{WEIHAI}/evaluations/batch"


def stream(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_ipc_stream(out)
    return out.getvalue()


def read(body: bytes) -> pl.DataFrame:
    return pl.read_ipc_stream(io.BytesIO(body))


def _as_stream_frame(checked, frame: pl.DataFrame, events) -> pl.DataFrame:
    """The synthetic population as a caller would send it: the input columns as they are (dates
    as Date), an events input as a List of Date, and an enterprise id."""
    out = frame.sort("id")
    if events is not None:
        for name in events["input"].unique().to_list():
            lists = (events.filter(pl.col("input") == name).sort("date").group_by("id")
                     .agg(pl.col("date").drop_nulls().alias(name)))
            out = out.join(lists, on="id", how="left").with_columns(pl.col(name).fill_null(pl.lit([], pl.List(pl.Date))))
    return out.with_columns(pl.format("e{}", pl.col("id")).alias("enterprise_id")).drop("id")


def _spoil(checked, frame: pl.DataFrame) -> pl.DataFrame:
    """Values a record must be refused for, in rows 1, 8, 15, …: out of domain, not finite, a
    date that is no date, an events list left out, an enterprise id too long."""
    rows = iter(range(1, frame.height, 7))
    for name, decl in checked.inputs.items():
        kind = decl.type.kind
        bad = {"count": [-1], "number": [math.nan, math.inf], "ratio": [1.5, math.nan], "bool": [],
               "enum": ["不存在"], "grade": ["Z"], "date": ["2024-02-30"], "events": [None]}[kind]
        if name not in frame.columns:
            continue
        for v in bad:
            r = next(rows, None)
            if r is None:
                break
            col = frame[name]
            if kind == "date":
                col = col.cast(pl.String)
            elif kind in ("number", "ratio"):
                col = col.cast(pl.Float64)
            values = col.to_list()
            values[r] = v
            frame = frame.with_columns(pl.Series(name, values, dtype=col.dtype))
    ids = frame["enterprise_id"].to_list()
    ids[4] = "e" * 65
    return frame.with_columns(pl.Series("enterprise_id", ids))


def _as_request(row: dict, used: dict) -> dict:
    """A stream row as a JSON request, written out independently of the code under test."""
    inputs: dict = {alias: {} for alias in used}
    for k, v in row.items():
        if k == "enterprise_id" or v is None:
            continue
        if isinstance(v, list):
            v = [d.isoformat() for d in v]
        elif isinstance(v, dt.date):
            v = v.isoformat()
        alias, _, name = k.rpartition(".")
        (inputs[alias] if alias else inputs)[name] = v
    return {"enterprise_id": row["enterprise_id"], "inputs": {k: v for k, v in inputs.items() if v != {}}}


def _expected(answer: dict, used: list) -> dict:
    """A per-record JSON answer as the row an Arrow answer gives for it."""
    r = answer.get("result")
    if r is None:
        return {"index": answer["index"], "enterprise_id": answer.get("enterprise_id"), "error": answer["error"]}
    c = r["completeness"]
    out = {"index": answer["index"], "enterprise_id": answer["enterprise_id"], "score": r["score"],
           "grade": r["grade"], "grade_label": r["grade_label"], "base_grade": r["base_grade"],
           "overrides": [o["name"] for o in r["overrides"]], "alerts": [a["name"] for a in r["alerts"]],
           "measures": r["measures"], "collected": c["collected"], "completeness": c["ratio"],
           "completeness_met": c.get("met"), "error": None}
    for alias in used:
        out[f"{alias}.grade"] = r["used"][alias]["grade"]
        out[f"{alias}.score"] = r["used"][alias]["score"]
    return out


def _got(row: dict) -> dict:
    if row["error"] is not None:
        return {"index": row["index"], "enterprise_id": row["enterprise_id"], "error": orjson.loads(row["error"])}
    row = dict(row, measures=orjson.loads(row["measures"]))
    del row["evaluation_id"]
    return row


def _population(checked, size: int, seed: int, spoiled: bool = True) -> pl.DataFrame:
    try:
        frame, events = population(checked, size, seed=seed, as_of=AS_OF)
    except Unsupported as exc:
        pytest.skip(str(exc))
    sent = _as_stream_frame(checked, frame, events)
    return _spoil(checked, sent) if spoiled else sent


def _same_as_per_record(checked, size=1200, seed=3, sent=None):
    """The Arrow answers to `sent` (by default the policy's spoiled population) against the
    per-record path's, row by row."""
    sent = _population(checked, size, seed) if sent is None else sent
    size = sent.height
    ev = Evaluator(checked)
    b = _batch(ev)
    run = ArrowBatch(b, sent.schema, "sha-of-the-body")
    got, rows, event = run.run_chunk(sent, 0)
    assert got.height == sent.height
    want_b = _batch(ev)
    want, want_rows = [], []
    for k, row in enumerate(sent.iter_rows(named=True)):
        want_b._one((k, _as_request(row, checked.used), None), "now", want, want_rows)
    used = list(checked.used)
    for k, (g, w) in enumerate(zip(got.iter_rows(named=True), want)):
        assert _got(g) == _expected(orjson.loads(w), used), k
    refused = sum(1 for w in want if "error" in orjson.loads(w))
    assert event.detail["records"] == size and event.detail["evaluated"] == size - refused
    return run, got, rows


def _stored_answers(text: str) -> list[dict]:
    """The answers an Arrow chunk's evaluation record keeps, each with its measures in place."""
    stored = orjson.loads(text)
    return [dict(row, measures=stored["measures"][row["measures"]]) for row in stored["answers"]]


def shipped():
    return [s.checked for s in load_paths([ROOT / "policies"]) if s.checked is not None]


@pytest.mark.parametrize("checked", shipped(), ids=lambda c: c.id + "@" + c.version)
def test_shipped_policies_answer_as_the_per_record_path(checked):
    run, got, rows = _same_as_per_record(checked)
    assert got["error"].is_not_null().sum() >= 2, "the refused values were refused"


def test_the_reference_scorecard_answers_as_the_per_record_path(tmp_path, monkeypatch):
    checked = reference_scorecard(tmp_path, monkeypatch)
    run, got, rows = _same_as_per_record(checked, size=3000, seed=5)
    planned = [r for r in rows if r["grade"] is None]
    assert len(planned) == 1, "the plan answered the chunk's bulk in one record"
    assert planned[0]["input_sha256"] == "sha-of-the-body"
    stored = _stored_answers(planned[0]["result"])
    assert len(stored) > 2900
    answered = {row["index"]: row for row in got.iter_rows(named=True)}
    for row in stored:
        want = answered[row["index"]]
        assert row == {k: orjson.loads(v) if k == "measures" else v for k, v in want.items()
                       if k not in ("evaluation_id", "error", "grade_label")}


def test_integers_the_plan_cannot_carry_go_per_record_and_answer_the_same(tmp_path, monkeypatch):
    """A count column of UInt64 holding 2**64 - 1 (beyond the plan's Int64) and a number column of
    Int64 holding 2**60 + 1 (beyond what a double holds exactly) are Arrow types the inputs take; those
    rows are evaluated per record, exactly, and the rest by the plan."""
    checked = reference_scorecard(tmp_path, monkeypatch)
    count = next(k for k, i in checked.inputs.items() if i.type.kind == "count")
    number = next(k for k, i in checked.inputs.items() if i.type.kind == "number")
    sent = _population(checked, 1500, seed=8, spoiled=False)
    counts, numbers = sent[count].cast(pl.UInt64).to_list(), sent[number].round().cast(pl.Int64).to_list()
    counts[3], numbers[5] = 2 ** 64 - 1, 2 ** 60 + 1
    sent = sent.with_columns(pl.Series(count, counts, dtype=pl.UInt64), pl.Series(number, numbers, dtype=pl.Int64))
    run, got, rows = _same_as_per_record(checked, sent=sent)
    own_records = {r["id"] for r in rows if r["grade"] is not None}
    assert own_records >= {f"{run.batch.id}.3", f"{run.batch.id}.5"}, "the two rows went per record"
    assert got["evaluation_id"].str.contains("-").sum() > 1400, "the plan took the rest"


# ---- through the service -------------------------------------------------------------------

def _dairy(n: int, **changes) -> pl.DataFrame:
    rows = [dict(DAIRY_B, enterprise_id=f"e{k}") for k in range(n)]
    for k, change in changes.items():
        rows[int(k[1:])].update(change)
    return pl.DataFrame(rows)


def post(api, body: bytes, role="system", jurisdiction="weihai", url=URL, **params):
    headers = dict(api.as_(role, jurisdiction), **{"Content-Type": MEDIA_TYPE})
    return api.client.post(url, content=body, headers=headers, params=params)


def test_an_arrow_batch_is_answered_as_columns_recorded_and_audited(api):
    body = stream(_dairy(1500, r7={"penalties": -1}))
    r = post(api, body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MEDIA_TYPE
    assert r.headers["Input-Sha256"] == hashlib.sha256(body).hexdigest()
    assert (r.headers["Batch-Records"], r.headers["Batch-Evaluated"], r.headers["Batch-Refused"]) == \
        ("1500", "1499", "1")
    got = read(r.content)
    assert got["index"].to_list() == list(range(1500))
    assert got["grade"].to_list()[:3] == ["B", "B", "B"] and got["enterprise_id"][1499] == "e1499"
    error = orjson.loads(got["error"][7])
    assert error["errors"][0]["loc"] == ["inputs", "penalties"] and got["grade"][7] is None
    batch = r.headers["Batch-Id"]
    stored = api.service.store.evaluation(got["evaluation_id"][0])
    assert stored["batch_id"] == batch and stored["input_sha256"] == hashlib.sha256(body).hexdigest()
    assert [row["index"] for row in _stored_answers(stored["result"])] == [k for k in range(1500) if k != 7]
    entries = api.client.get("/v1/audit", params={"action": "evaluate_batch", "limit": 1000},
                             headers=api.as_("auditor", "weihai")).json()["entries"]
    entry = next(e for e in entries if e["detail"]["batch_id"] == batch)
    assert entry["detail"]["records"] == 1500 and entry["detail"]["evaluated"] == 1499
    assert api.client.get("/v1/audit/verify", headers=api.as_("auditor", "*")).json()["ok"] is True


def test_a_small_arrow_batch_answers_each_record_per_record(api):
    got = read(post(api, stream(_dairy(3, r1={"penalties": 40}))).content)
    assert got["grade"].to_list()[0] == "B" and got["error"].null_count() == 3
    assert got["evaluation_id"][0].endswith(".0")


def test_columns_the_policy_cannot_take_refuse_the_stream_one_error_per_column(api):
    frame = _dairy(2).with_columns(pl.col("penalties").cast(pl.String), pl.lit(1).alias("未知"))
    r = post(api, stream(frame))
    assert r.status_code == 422
    errors = {e["loc"][1]: e for e in r.json()["errors"]}
    assert errors["penalties"]["type"] == "wrong_type" and "integer" in errors["penalties"]["msg"]
    assert errors["未知"]["type"] == "unknown_field"


@pytest.mark.parametrize("body", [b"", b"not arrow", b"\xff\xff\xff\xff" + b"\x00" * 64,
                                  stream(pl.DataFrame({"penalties": [1, 2]}))[:-40]],
                         ids=["empty", "text", "a broken message", "cut short"])
def test_a_body_that_is_no_arrow_stream_is_a_400(api, body):
    r = post(api, body)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert "Arrow" in r.json()["detail"]


def test_arrow_batches_are_scoped_and_bounded(api, fresh):
    assert post(api, stream(_dairy(2)), jurisdiction="xinyu").status_code == 403
    assert post(api, stream(_dairy(2)), explain="true").status_code == 422
    small = fresh(max_batch_records=5)
    assert post(small, stream(_dairy(6))).status_code == 413


def test_an_empty_stream_is_an_empty_answer(api):
    r = post(api, stream(_dairy(0)))
    assert r.status_code == 200 and read(r.content).height == 0 and r.headers["Batch-Records"] == "0"


def test_a_stream_broken_anywhere_is_refused_or_answered_never_a_server_error(api):
    """Bytes of a good stream flipped at random (seeded): Arrow's reader or the column checks
    refuse the stream, or its records are answered; the service never fails and never dies."""
    import random
    good = stream(_dairy(40))
    rng = random.Random(11)
    seen = set()
    for _ in range(150):
        body = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            body[rng.randrange(len(body) - 8)] = rng.randrange(256)
        r = post(api, bytes(body))
        assert r.status_code in (200, 400, 422), r.text
        seen.add(r.status_code)
    assert 400 in seen


# ---- streams that would cost more than their size --------------------------------------------

def _pa_stream(table, **options) -> bytes:
    import pyarrow as pa
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(**options)) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_a_compressed_stream_is_refused_before_it_is_decompressed(api):
    import numpy as np
    import pyarrow as pa
    bomb = _pa_stream(pa.table({"penalties": pa.array(np.zeros(50_000_000, dtype=np.int64))}), compression="zstd")
    assert len(bomb) < 100_000                  # 400 MB of columns in a few KB
    r = post(api, bomb)
    assert r.status_code == 415 and "uncompressed" in r.json()["detail"]


def test_the_records_a_stream_declares_are_counted_before_it_is_read(fresh):
    small = fresh(max_batch_records=5)
    r = post(small, stream(_dairy(6)))
    assert r.status_code == 413 and "6 records" in r.json()["detail"]


def test_views_that_point_every_row_at_one_long_text_are_refused(api):
    import pyarrow as pa
    long_id = "9" * 5000
    ids = pa.array([long_id] * 1000, type=pa.string_view())
    r = post(api, _pa_stream(pa.table({"enterprise_id": ids})))
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "too_long"


@pytest.mark.parametrize("column", [
    lambda pa: pa.array([{"a": 1}]),                                   # a struct
    lambda pa: pa.array([[1, 2]], type=pa.list_view(pa.int64())),     # a list view
    lambda pa: pa.array([b"\x01"], type=pa.binary()),
], ids=["struct", "list view", "binary"])
def test_arrow_types_no_input_takes_are_refused_by_column(api, column):
    import pyarrow as pa
    r = post(api, _pa_stream(pa.table({"penalties": column(pa)})))
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["columns", "penalties"] and "Arrow type" in r.json()["errors"][0]["msg"]


def test_a_stream_written_by_pyarrow_with_dictionaries_is_answered(api):
    import pyarrow as pa
    table = pa.Table.from_pylist([dict(DAIRY_B, enterprise_id=f"e{k}") for k in range(3)])
    table = table.set_column(table.schema.get_field_index("self_discipline"), "self_discipline",
                             table["self_discipline"].dictionary_encode())
    r = post(api, _pa_stream(table))
    assert r.status_code == 200, r.text
    assert read(r.content)["grade"].to_list() == ["B", "B", "B"]

"""Batches as Arrow IPC streams: typed columns in, typed columns out.

A JSON batch costs the service about 40 µs a record, nearly all of it text: parsing each record,
checking each value, writing each answer (bench/README.md). An Arrow stream arrives as the typed
columns the batch plan (engine/batch.py) evaluates, so a record costs a few µs: the stream is read
without a copy, each column's type is checked once, and the answers leave as columns.

    POST /v1/policies/{id}/evaluations/batch
    Content-Type: application/vnd.apache.arrow.stream        (the answer is one too)

In: `enterprise_id` (text, optional) and a column per input, named as the policy names it (a used
policy's as `alias.input`). A null is an absent input; an input with no column is absent from
every record. A column the policy does not know, or whose type cannot hold its input's values
(text for a count, …), refuses the request (422, an error per column): the type belongs to the
column, not to a record. Values are checked per record, as in JSON: a record with a refused value
gets its own `error`, and the others are evaluated.

Out, a row per record in order: see `OUT_SCHEMA`. Explanations come with JSON batches only.

Recorded, as for JSON batches: per chunk, one evaluation record holding the answers of the records
the plan evaluated, and one audit event. The record's input fingerprint is the sha256 of the
request body as received (also the `Input-Sha256` header), not a hash per record: hashing each
record's canonical JSON, as JSON batches do, costs more than evaluating it (~6 µs a record of the
89-input scorecard against ~1). A record the plan does not take — a value it refuses, a policy it
does not run (api/columnar.py) — is evaluated and recorded on its own, as in JSON, with its own
evaluation id and fingerprint.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Optional

import orjson
import polars as pl

from engine.batch_plan import Unsupported

from .arrow_stream import columns_refused
from .columnar import MIN_RECORDS, PLAN_DTYPES, columnar_run
from .schemas import MAX_ENTERPRISE_ID
from .store import utcnow

_EXACT = 2 ** 53                  # an integer beyond this does not convert to a double exactly
_WANTED = {"count": "an integer type", "number": "an integer or floating type",
           "ratio": "an integer or floating type", "bool": "Boolean", "enum": "String (or Categorical)",
           "grade": "String (or Categorical)", "date": "Date or String (YYYY-MM-DD)",
           "events": "a List of Date or of String"}

_DICTIONARY = ["evaluation_id", "grade_label", "measures"]
OUT_SCHEMA = {
    "index": pl.Int64,                 # the record's position in the stream
    "enterprise_id": pl.String,
    "evaluation_id": pl.String,        # the stored record that holds this answer (GET /v1/evaluations/…)
    "score": pl.String,                # decimal text, as in JSON
    "grade": pl.String,
    "grade_label": pl.String,
    "base_grade": pl.String,           # before overrides
    "overrides": pl.List(pl.String),   # the names of the overrides that fired
    "alerts": pl.List(pl.String),
    "measures": pl.String,             # JSON text: the measures of the grade, as in JSON
    "collected": pl.Int64,
    "completeness": pl.String,         # collected / total, decimal text
    "completeness_met": pl.Boolean,    # null when the policy requires no completeness
    "error": pl.String,                # problem+json text; null when evaluated
}


def write_stream(frames: list[pl.DataFrame], schema: dict) -> bytes:
    """The answers as an Arrow IPC stream; the columns that repeat a few long texts (the measures,
    the evaluation id of a chunk, the grade label) dictionary-encoded, which Arrow readers decode."""
    out = io.BytesIO()
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
    frame.with_columns(pl.col(_DICTIONARY).cast(pl.Categorical)).write_ipc_stream(out)
    return out.getvalue()


def _stored(answers: pl.DataFrame) -> bytes:
    """A chunk's answers as its evaluation record keeps them: `{"measures": [each distinct list of
    measures], "answers": [a row per record, its `measures` a position in that list]}`; the grade
    label is the policy's. (Each row's own measures text would be most of the record.)"""
    distinct = answers["measures"].unique(maintain_order=True).to_list()
    rows = answers.select(pl.all().exclude("evaluation_id", "error", "grade_label", "measures"),
                          pl.col("measures").replace_strict({m: k for k, m in enumerate(distinct)},
                                                            return_dtype=pl.UInt32))
    out = io.BytesIO()
    rows.select(answers.drop("evaluation_id", "error", "grade_label").columns).write_json(out)
    # (each measures text is JSON that orjson wrote: _answers)
    return b'{"measures":[' + ",".join(distinct).encode() + b'],"answers":' + out.getvalue() + b"}"


@dataclass(frozen=True)
class Column:
    name: str                 # in the stream
    alias: Optional[str]      # the used policy it belongs to
    input: str
    kind: str
    plan: str                 # the plan's column


def _accepts(kind: str, dtype) -> bool:
    if dtype == pl.Null:
        return True
    if kind == "count":
        return dtype.is_integer()
    if kind in ("number", "ratio"):
        return dtype.is_integer() or dtype.is_float()
    if kind == "bool":
        return dtype == pl.Boolean
    if kind in ("enum", "grade"):
        return dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))
    if kind == "date":
        return dtype in (pl.Date, pl.String)
    if kind == "events":
        return isinstance(dtype, pl.List) and dtype.inner in (pl.Date, pl.String, pl.Null)
    return False


class ArrowBatch:
    """One Arrow request's batch: its columns checked against the policy once, then evaluated a
    chunk at a time (`run_chunk`)."""

    def __init__(self, batch, schema: dict, body_sha256: str):
        self.batch = batch
        self.body_sha256 = body_sha256
        self.run = None if batch.explain else columnar_run(batch.ev, batch.as_of)
        self.columns = self._columns()
        problems = self._problems(schema)
        if problems:
            raise columns_refused(problems)
        self.has_id = "enterprise_id" in schema
        c = batch.ev.checked
        self.labels = {g: c.grade_labels.get(g) for g in c.grades}
        self.used = list(self.run.plan.used) if self.run is not None else list(c.used)
        self.out_schema = dict(OUT_SCHEMA)
        for alias in self.used:
            self.out_schema[f"{alias}.grade"] = self.out_schema[f"{alias}.score"] = pl.String

    def _columns(self) -> dict[str, Column]:
        """The stream's columns the policy reads: its inputs, and its used policies' (those in
        force on the batch's date, as the plan and the evaluator take them)."""
        if self.run is not None:
            p = self.run.plan
            inputs = {None: (p, p.inputs)} | {alias: (sub, sub.inputs) for alias, sub in p.used.items()}
        else:
            c = self.batch.ev.checked
            inputs = {None: (None, c.inputs)} | {alias: (None, sub.inputs) for alias, sub in c.used.items()}
        out = {}
        for alias, (plan, decls) in inputs.items():
            for name, decl in decls.items():
                full = name if alias is None else f"{alias}.{name}"
                out[full] = Column(full, alias, name, decl.type.kind, plan.column(name) if plan is not None else full)
        return out

    def _problems(self, schema: dict) -> list[dict]:
        out = []
        for name, dtype in schema.items():
            if name == "enterprise_id":
                if not (dtype in (pl.String, pl.Null) or isinstance(dtype, (pl.Categorical, pl.Enum))):
                    out.append({"loc": ["columns", name], "type": "wrong_type",
                                "msg": f"`enterprise_id` must be a String column, not {dtype}"})
                continue
            col = self.columns.get(name)
            if col is None:
                out.append({"loc": ["columns", name], "type": "unknown_field",
                            "msg": f"`{name}` is not an input of `{self.batch.ev.checked.id}`"})
            elif not _accepts(col.kind, dtype):
                out.append({"loc": ["columns", name], "type": "wrong_type",
                            "msg": f"`{name}` is a {col.kind} input: its column must be {_WANTED[col.kind]}, "
                                   f"not {dtype}"})
        return out

    # ---- one chunk ---------------------------------------------------------------------
    def run_chunk(self, chunk: pl.DataFrame, first: int) -> tuple[pl.DataFrame, list, object]:
        """Rows [first, first + height) of the stream → (their answers, evaluation records, audit
        event): the plan for the records it takes, the per-record path for the rest."""
        now = utcnow()
        size = chunk.height
        answered, rows = [], []
        # (a small chunk is quicker per record: the plan costs milliseconds a chunk, as in JSON)
        planned = self._planned(chunk, first, now, rows) if self.run is not None and size >= MIN_RECORDS else None
        done = set() if planned is None else set(planned["index"].to_list())
        if planned is not None and planned.height:
            answered.append(planned)
        rest = [k for k in range(size) if first + k not in done]
        if rest:
            answered.append(self._per_record(chunk, first, rest, now, rows))
        out = pl.concat(answered, how="vertical").sort("index") if answered else pl.DataFrame(schema=self.out_schema)
        evaluated = out.height - out["error"].is_not_null().sum()
        return out, rows, self.batch.chunk_done(first, size, evaluated, rows)

    def _plan_frame(self, chunk: pl.DataFrame) -> tuple[pl.DataFrame, Optional[pl.DataFrame]]:
        """(the plan's frame, its events counts): the rows in the plan's types, `id` their position
        in the chunk; a row holding a value those types cannot carry as it is is left out (per record)."""
        size, schema = chunk.height, chunk.schema      # (a frame's schema is made anew at each call)
        plan_cols = [pl.int_range(size, dtype=pl.Int64).alias("id")]
        takes = [pl.lit(True)]
        events = []
        for col in self.columns.values():
            if col.name not in schema:
                if col.kind == "events":
                    takes.append(pl.lit(False))          # absent: the missing rule decides, per record
                else:
                    plan_cols.append(pl.lit(None, dtype=PLAN_DTYPES[col.kind]).alias(col.plan))
                continue
            x, dtype = pl.col(col.name), schema[col.name]
            if col.kind == "events":
                takes.append(x.is_not_null())
                events.append(col)
                continue
            value, carried = _as_plan_value(x, dtype, col.kind)
            plan_cols.append(value.alias(col.plan))
            if carried is not None:
                takes.append(x.is_null() | carried)
        if self.has_id:
            takes.append(pl.col("enterprise_id").cast(pl.String).str.len_chars().fill_null(0) <= MAX_ENTERPRISE_ID)
        prepared = chunk.select(*plan_cols, pl.all_horizontal(takes).alias("__takes"))
        frame = prepared.filter(pl.col("__takes")).drop("__takes")
        counts = None
        if self.run.plan.events_inputs():
            ev = [chunk.select(pl.int_range(size, dtype=pl.Int64).alias("id"), pl.lit(col.plan).alias("input"),
                               pl.col(col.name).cast(pl.List(pl.String)).alias("date")).explode("date")
                  for col in events]
            dates = pl.concat(ev) if ev else pl.DataFrame(schema={"id": pl.Int64, "input": pl.String, "date": pl.String})
            counts = self.run.batch.event_counts(dates.filter(pl.col("date").is_not_null()))
        return frame, counts

    def _planned(self, chunk: pl.DataFrame, first: int, now: str, rows: list) -> Optional[pl.DataFrame]:
        """The answers of the rows the plan evaluated, recorded as one evaluation record; None
        when the plan refuses the chunk as a whole."""
        frame, events = self._plan_frame(chunk)
        try:
            results, _ = self.run.batch.evaluate(frame, events)
        except Unsupported:
            return None
        if self.run.templates.by_score:
            results = results.filter(pl.col("score").is_not_null())   # (none: left to the per-record path)
        if self.has_id:
            ids = chunk["enterprise_id"].cast(pl.String).gather(results["id"])
        else:
            ids = pl.Series("enterprise_id", [None] * results.height, dtype=pl.String)
        answers = self._answers(results.with_columns(ids.alias("enterprise_id")), first)
        if answers.height == 0:
            return answers
        lo, hi = answers["index"].min(), answers["index"].max()
        record_id = f"{self.batch.id}.{lo}-{hi}"
        rows.append(self.batch.chunk_record(record_id, lo, self.body_sha256, _stored(answers), now))
        return answers.with_columns(pl.lit(record_id).alias("evaluation_id"))

    def _answers(self, results: pl.DataFrame, first: int) -> pl.DataFrame:
        """The plan's result columns → the answer columns (OUT_SCHEMA, then the used policies')."""
        t = self.run.templates
        measures = {m: orjson.dumps(orjson.loads(m)).decode()
                    for m in results["measures"].cast(pl.String).unique().to_list() if m is not None}
        counts = results["collected"].unique().to_list()
        ratio = {k: t.completeness(k)["ratio"] for k in counts if k is not None}
        met = {k: t.completeness(k).get("met") for k in counts if k is not None}
        cols = [
            (pl.col("id") + first).alias("index"),
            pl.col("enterprise_id"),
            pl.lit(None, dtype=pl.String).alias("evaluation_id"),
            pl.col("score").cast(pl.String),
            pl.col("grade").cast(pl.String),
            pl.col("grade").cast(pl.String).replace_strict(self.labels, default=None, return_dtype=pl.String)
            .alias("grade_label"),
            pl.col("base_grade").cast(pl.String),
            pl.col("overrides").cast(pl.List(pl.String)),
            pl.col("alerts").cast(pl.List(pl.String)),
            pl.col("measures").cast(pl.String).replace_strict(measures, default=None, return_dtype=pl.String),
            pl.col("collected").cast(pl.Int64),
            pl.col("collected").replace_strict(ratio, default=None, return_dtype=pl.String).alias("completeness"),
            pl.col("collected").replace_strict(met, default=None, return_dtype=pl.Boolean).alias("completeness_met"),
            pl.lit(None, dtype=pl.String).alias("error"),
        ]
        for alias in self.used:
            cols.append(pl.col(f"{alias}.grade").cast(pl.String))
            score = f"{alias}.score"
            cols.append((pl.col(score).cast(pl.String) if score in results.columns
                         else pl.lit(None, dtype=pl.String)).alias(score))
        return results.select(cols)

    def _per_record(self, chunk: pl.DataFrame, first: int, rest: list, now: str, rows: list) -> pl.DataFrame:
        """Rows `rest` of the chunk on the per-record path: its answer, its error, its record."""
        picked = chunk[rest]
        out = []
        for k, row in zip(rest, picked.iter_rows(named=True)):
            answers: list = []
            self.batch._one((first + k, self._request(row), None), now, answers, rows)
            out.append(self._row(orjson.loads(answers[0])))
        return pl.DataFrame(out, schema=self.out_schema, orient="row")

    def _request(self, row: dict) -> dict:
        """A stream row as the JSON request it stands for: nulls left out, dates as text."""
        inputs: dict = {}
        for name, v in row.items():
            col = self.columns.get(name)
            if col is None or v is None:
                continue
            if col.kind == "events":
                v = [d.isoformat() if hasattr(d, "isoformat") else d for d in v]
            elif hasattr(v, "isoformat"):
                v = v.isoformat()
            (inputs.setdefault(col.alias, {}) if col.alias else inputs)[col.input] = v
        return {"enterprise_id": row.get("enterprise_id"), "inputs": inputs}

    def _row(self, answer: dict) -> tuple:
        """A per-record answer (JSON) → its row of the answer columns."""
        r = answer.get("result")
        used = [None, None] * len(self.used)
        if r is None:
            return (answer["index"], answer.get("enterprise_id"), None, None, None, None, None, None, None, None,
                    None, None, None, orjson.dumps(answer["error"]).decode(), *used)
        comp = r["completeness"]
        for k, alias in enumerate(self.used):
            u = r.get("used", {}).get(alias, {})
            used[2 * k], used[2 * k + 1] = u.get("grade"), u.get("score")
        return (answer["index"], answer["enterprise_id"], answer["evaluation_id"], r["score"], r["grade"],
                r["grade_label"], r["base_grade"], [o["name"] for o in r["overrides"]],
                [a["name"] for a in r["alerts"]], orjson.dumps(r["measures"]).decode(), comp["collected"],
                comp["ratio"], comp.get("met"), None, *used)


def _as_plan_value(x: pl.Expr, dtype, kind: str) -> tuple[pl.Expr, Optional[pl.Expr]]:
    """(the column in the plan's type, which values it carries unchanged — None: all)."""
    want = PLAN_DTYPES[kind]
    if dtype == pl.Null:
        return pl.lit(None, dtype=want), None
    if kind == "count":
        value = x.cast(pl.Int64, strict=False)            # (a UInt64 beyond Int64: per record)
        return value, value.is_not_null()
    if kind in ("number", "ratio"):
        if dtype.is_float():
            return x.cast(pl.Float64), x.is_finite()      # NaN and infinities: refused per record
        wide = x.cast(pl.Int128, strict=False)
        return x.cast(pl.Float64), wide.is_not_null() & (wide.abs() < _EXACT)
    if kind == "date" and dtype == pl.Date:
        return x.dt.to_string("%Y-%m-%d"), None
    return x.cast(want), None


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()

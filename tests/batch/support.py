"""The differential harness: every batch backend's rows against Evaluator.evaluate, field by field."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import polars as pl

from engine.batch import PolarsBatch
from engine.batch_plan import plan as make_plan
from engine.batch_sql import DuckDBBatch
from engine.compiler import Evaluator
from engine.semantics import round_half_up
from engine.validate import InputError


def records(checked, frame: pl.DataFrame, events: pl.DataFrame | None, id_column: str = "id") -> dict:
    """The evaluator's JSON records of a population: id → record (used inputs nested)."""
    by_id: dict = {}
    if events is not None:
        for row in events.sort("date").iter_rows(named=True):
            if row["date"] is not None:
                by_id.setdefault(row[id_column], {}).setdefault(row["input"], []).append(row["date"].isoformat())
    ev_inputs = _event_inputs(checked, "")
    out = {}
    for row in frame.iter_rows(named=True):
        rec: dict = {}
        for col, v in row.items():
            if col == id_column or v is None:
                continue
            _put(rec, col, v.isoformat() if isinstance(v, dt.date) else v)
        if events is not None:
            for col in ev_inputs:
                _put(rec, col, by_id.get(row[id_column], {}).get(col, []))
        for alias in checked.used:
            rec.setdefault(alias, {})
        out[row[id_column]] = rec
    return out


def _event_inputs(checked, prefix):
    out = [prefix + k for k, i in checked.inputs.items() if i.type.kind == "events"]
    for alias, sub in checked.used.items():
        out += _event_inputs(sub, prefix + alias + ".")
    return out


def _put(rec, col, v):
    parts = col.split(".")
    for p in parts[:-1]:
        rec = rec.setdefault(p, {})
    rec[parts[-1]] = v


def expected(checked, recs: dict, as_of: dt.date) -> dict:
    ev = Evaluator(checked)
    out = {}
    for i, rec in recs.items():
        try:
            r = ev.evaluate(rec, as_of, explain=True)
        except InputError as exc:
            out[i] = ("reject", frozenset(".".join(map(str, p["loc"])) + ":" + p["type"] if p["loc"] else p["type"]
                                          for p in exc.problems))
            continue
        c = r.completeness
        row = {"score": None if r.score is None else str(r.score), "grade": r.grade, "base_grade": r.base_grade,
               "overrides": [o.name for o in r.overrides], "alerts": [a.name for a in r.alerts],
               "collected": r.collected, "completeness": c["ratio"], "measures": list(r.measures)}
        if "met" in c:
            row["completeness_met"] = c["met"]
        for o in checked.policy.overrides:
            if o.duration is not None:   # an override that lasts: set off on `since`, holds until `until`
                held = r.periods.get(o.name)
                row[f"override.{o.name}"] = None if held is None else (held[0].isoformat(), held[1].isoformat())
        for alias, u in r.used.items():
            row[f"{alias}.grade"] = u.grade
            if u.score is not None:
                row[f"{alias}.score"] = str(u.score)
        row["contributions"] = {}
        for spec, e in zip(checked.indicators, r.explanation()["indicators"]):
            c = e.get("contribution") if "points" in e else None
            if c is not None and e.get("bin") == "points = …":
                # the score adds weight × points rounded to the precision; the explanation shows
                # the unrounded points (reported: docs/batch.md §Ambiguities)
                pts = round_half_up(Decimal(e["points"]), checked.precision)
                c = f"{(spec.weight * pts).normalize():f}"
            row["contributions"][e["indicator"]] = c
        out[i] = ("ok", row)
    return out


def actual(results: pl.DataFrame, rejects: pl.DataFrame, checked, id_column: str = "id") -> dict:
    out = {}
    for row in rejects.iter_rows(named=True):
        out[row[id_column]] = ("reject", frozenset(row["problems"]))
    for row in results.iter_rows(named=True):
        r = {"score": None if row["score"] is None else str(row["score"]), "grade": row["grade"],
             "base_grade": row["base_grade"], "overrides": list(row["overrides"]), "alerts": list(row["alerts"]),
             "collected": row["collected"], "completeness": str(row["completeness"]),
             "measures": json.loads(row["measures"])}
        if "completeness_met" in row:
            r["completeness_met"] = row["completeness_met"]
        for o in checked.policy.overrides:
            if o.duration is not None:
                since, until = row[f"override.{o.name}.since"], row[f"override.{o.name}.until"]
                r[f"override.{o.name}"] = None if since is None else (since.isoformat(), until.isoformat())
        for alias in checked.used:
            r[f"{alias}.grade"] = row[f"{alias}.grade"]
            if f"{alias}.score" in row:
                r[f"{alias}.score"] = str(row[f"{alias}.score"])
        r["contributions"] = {ip.name: _num(row.get(f"contribution.{ip.name}")) for ip in checked.indicators}
        out[row[id_column]] = ("ok", r)
    return out


def _num(d):
    return None if d is None else f"{Decimal(d).normalize():f}"


def backend(checked, as_of, events_given: bool, name: str):
    p = make_plan(checked, as_of, events_given=events_given)
    return PolarsBatch(p, contributions=True) if name == "polars" else DuckDBBatch(p, contributions=True, threads=1)



def run(backend, frame, events, chunk: int | None = None):
    ev = backend.event_counts(events)
    if chunk is None:
        return backend.evaluate(frame, ev)
    parts = [backend.evaluate(frame.slice(s, chunk), ev) for s in range(0, frame.height, chunk)]
    return pl.concat([a for a, _ in parts], how="vertical_relaxed"), pl.concat([b for _, b in parts],
                                                                                how="vertical_relaxed")


def differences(checked, frame, events, as_of, chunks=None) -> list:
    """Every (backend, id, field, want, got) where a backend differs from the evaluator."""
    if chunks is None:
        # the whole frame, and the frame in 3–5 chunks (16 rows at least): chunks with and without nulls
        chunks = (None, max(16, frame.height // 4))
    want = expected(checked, records(checked, frame, events), as_of)
    diffs = []
    for name in ("polars", "duckdb"):
        for chunk in (chunks if name == "polars" else (None,)):
            # a fresh backend per run: a plan cached for one run must not hide another's needs
            b = backend(checked, as_of, events is not None, name)
            got = actual(*run(b, frame, events, chunk), checked)
            for i, w in want.items():
                g = got.get(i)
                if g is None:
                    diffs.append((name, chunk, i, "row", w, None))
                elif w[0] != g[0] or w[0] == "reject" and w[1] != g[1]:
                    diffs.append((name, chunk, i, "status", w, g))
                elif w[0] == "ok":
                    for k, v in w[1].items():
                        if g[1].get(k) != v:
                            diffs.append((name, chunk, i, k, v, g[1].get(k)))
    return diffs

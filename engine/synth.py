"""Synthetic populations for any policy: deterministic enterprises (and events) for tests,
benchmarks and examples.

Values are drawn from each input's domain; the bin boundaries of every indicator that reads
the input are drawn often (the value on a boundary, and just beside it), inputs whose missing
rule allows it are missing now and then, and event dates fall on the edges of every window
the policy counts. The same policy, size, seed and as-of date give the same rows.

    frame, events = population(checked, 10_000, seed=1, as_of=date(2024, 6, 30))
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

import numpy as np
import polars as pl

from . import nodes as n
from .batch_plan import BatchPlan, plan as make_plan
from .checker.context import CheckedPolicy

MISSING_SHARE = 0.05


def population(checked: CheckedPolicy, size: int, *, seed: int = 0, as_of: Optional[dt.date] = None,
               id_column: str = "id", resolve_used=None, with_events: bool = True):
    """(enterprises, events or None): `size` enterprises with ids 1..size."""
    as_of = as_of or dt.date.today()
    p = make_plan(checked, as_of, resolve_used)
    rng = np.random.default_rng([seed, size])
    cols = {id_column: pl.Series(id_column, np.arange(1, size + 1, dtype=np.int64))}
    events = []
    _columns(p, rng, size, cols, events, as_of, with_events)
    frame = pl.DataFrame(list(cols.values()))
    ev = None
    if with_events and p.events_inputs():
        ev = pl.concat(events) if events else pl.DataFrame(
            schema={id_column: pl.Int64, "input": pl.String, "date": pl.Date})
        ev = ev.rename({"id": id_column}) if id_column != "id" else ev
    return frame, ev


def _columns(p: BatchPlan, rng, size, cols, events, as_of, with_events):
    boundaries = _boundaries(p)
    for name, decl in p.inputs.items():
        col = p.column(name)
        k = decl.type.kind
        if k == "events":
            if with_events:
                events.append(_events(p, name, rng, size, as_of))
            continue
        values = _values(decl, boundaries.get(name, []), rng, size, p, as_of)
        may_miss = decl.missing.kind != "required" or name in p.defaults
        if may_miss and not (isinstance(p.grade_input, n.InputRef) and p.grade_input.name == name):
            values = values.scatter(np.nonzero(rng.random(size) < MISSING_SHARE)[0], None)
        cols[col] = values.alias(col)
    for sub in p.used.values():
        _columns(sub, rng, size, cols, events, as_of, with_events)


def _boundaries(p: BatchPlan) -> dict:
    """Input → the lower bounds of its bins (numeric inputs binned directly)."""
    out: dict = {}
    for ip in p.indicators:
        if ip.direct is not None and ip.lows:
            out.setdefault(ip.direct, []).extend(lo for lo, _ in ip.lows)
    return out


def _values(decl: n.Input, bounds: list, rng, size: int, p: BatchPlan, as_of: dt.date) -> pl.Series:
    t = decl.type
    k = t.kind
    if k == "count":
        top = int(max([Decimal(3)] + bounds)) + 3
        base = rng.integers(0, top + 1, size)
        edges = np.array(sorted({max(0, int(b) + d) for b in bounds for d in (-1, 0, 1)}) or [0], dtype=np.int64)
        pick = rng.random(size) < 0.5
        return pl.Series(np.where(pick, edges[rng.integers(0, len(edges), size)], base).astype(np.int64))
    if k in ("number", "ratio"):
        lo, hi = (0.0, 1.0) if k == "ratio" else (float(t.low) if t.low is not None else None,
                                                   float(t.high) if t.high is not None else None)
        bvals = [float(b) for b in bounds]
        a = lo if lo is not None else min(bvals + [0.0]) - 10
        b = hi if hi is not None else max(bvals + [1.0]) + 10
        base = np.round(a + (b - a) * rng.random(size), 3)
        edges = sorted({round(x + d, 6) for x in bvals for d in (-0.001, 0.0, 0.001)
                        if (lo is None or x + d >= lo) and (hi is None or x + d <= hi)} or [a])
        pick = rng.random(size) < 0.5
        return pl.Series(np.where(pick, np.array(edges)[rng.integers(0, len(edges), size)], base), dtype=pl.Float64)
    if k == "bool":
        return pl.Series(rng.random(size) < 0.5, dtype=pl.Boolean)
    if k in ("enum", "grade"):
        members = list(t.members) if k == "enum" else list(p.grades)
        return pl.Series(np.array(members, dtype=object)[rng.integers(0, len(members), size)], dtype=pl.String)
    if k == "date":
        days = rng.integers(0, 365 * 12, size)
        # anniversaries of the as-of date (years_since/months_since boundaries) now and then
        anniv = [as_of.replace(year=as_of.year - y) if not (as_of.month == 2 and as_of.day == 29)
                 else as_of.replace(year=as_of.year - y, day=28) for y in range(0, 12)]
        base = [as_of - dt.timedelta(days=int(d)) for d in days]
        pick = rng.random(size) < 0.3
        choice = rng.integers(0, len(anniv), size)
        return pl.Series([anniv[c] if pk else b for b, pk, c in zip(base, pick, choice)], dtype=pl.Date)
    raise ValueError(k)


def _events(p: BatchPlan, name: str, rng, size: int, as_of: dt.date) -> pl.DataFrame:
    col = p.column(name)
    edges = []
    for w in p.all_windows():
        if w.input == col:
            edges += [w.start, w.start + dt.timedelta(days=1), w.end, w.end + dt.timedelta(days=1)]
    edges = edges or [as_of]
    counts = rng.poisson(1.5, size)
    ids = np.repeat(np.arange(1, size + 1, dtype=np.int64), counts)
    m = len(ids)
    on_edge = rng.random(m) < 0.5
    spread = [as_of - dt.timedelta(days=int(d)) for d in rng.integers(0, 800, m)]
    pick = rng.integers(0, len(edges), m)
    dates = [edges[k] if e else s for k, e, s in zip(pick, on_edge, spread)]
    # an override that lasts (docs/semantics.md §10): pairs of events on a candidate day t and on
    # the edge of its window as of t (just out, or just in), and on the first candidate day
    for L in p.lasting:
        for j, (w, _) in enumerate(L.windows):
            if w != col or not L.bounds:
                continue
            who = np.nonzero(rng.random(size) < 0.3)[0] + 1
            at = rng.integers(0, len(L.bounds), len(who))
            inside = rng.random(len(who)) < 0.5
            for i, k, a in zip(who.tolist(), at.tolist(), inside.tolist()):
                t, _, bounds = L.bounds[k]
                lo = bounds[j][0]
                first = L.start + dt.timedelta(days=1)
                ids = np.append(ids, [i, i])
                dates += [t, lo + dt.timedelta(days=1) if a else lo]
                if k % 4 == 0:
                    ids = np.append(ids, i)
                    dates.append(first if a else L.start)
    return pl.DataFrame({"id": ids.astype(np.int64), "input": [col] * len(dates), "date": pl.Series(dates, dtype=pl.Date)})

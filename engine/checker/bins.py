"""Pass `bins`: every indicator's bins cover its input's whole domain, without gaps or overlaps,
and are normalised into a BinTable that every backend compiles from.

Must run after `types`. Also flattens the indicators (with their effective weights) into
ctx.indicators for the `weights` and `grading` passes."""
from __future__ import annotations

import math
from decimal import Decimal

from .. import nodes as n
from .context import BinTable, Context, IndicatorSpec, Interval
from .expr_types import type_of

INF = Decimal("Infinity")


def check(ctx: Context) -> None:
    p = ctx.policy
    ctx.indicators = []
    if p.indicators is None:
        return
    for item in p.indicators.items:
        if isinstance(item, n.Group):
            for ind in item.indicators:
                _indicator(ctx, ind, item, item.weight * ind.weight)
        else:
            _indicator(ctx, item, None, item.weight)


def _indicator(ctx: Context, ind: n.Indicator, group, weight: Decimal) -> None:
    s = ind.scoring
    inputs = tuple(sorted(_inputs_of(s.operand if isinstance(s, n.Bins) else s.expr)))
    table = None
    if isinstance(s, n.Bins):
        t = type_of(s.operand, ctx.inputs, ctx.grade_names, ctx.used)
        if t.kind in ("bool", "enum", "grade"):
            table = _categorical(ctx, ind, t)
        elif t.kind == "number":
            table = _numeric(ctx, ind, _domain(ctx, s.operand, t.integer), t.integer)
        lo_hi = [b.points for b in s.bins]
        lo, hi = (min(lo_hi), max(lo_hi)) if lo_hi else (Decimal(0), Decimal(0))
    else:
        lo, hi = Decimal(0), Decimal(100)   # arithmetic points: range not derived; 0..100 by convention
    for name in inputs:
        i = ctx.inputs.get(name)
        if i is not None and i.missing.kind == "points" and not (lo <= i.missing.points <= hi):
            ctx.diags.warning("missing_points_range",
                              f"`{name}` gives {i.missing.points} points when missing, outside the {lo}..{hi} "
                              f"that `{ind.name}` gives otherwise", i.missing.span,
                              "a missing value usually scores like the worst bin: `missing worst`")
    ctx.indicators.append(IndicatorSpec(ind, group, weight, inputs, table, lo, hi))
    if table is not None:
        ctx.tables[ind.name] = table


def _inputs_of(e) -> set:
    return {x.name if isinstance(x, n.InputRef) else x.alias
            for x in n.walk(e) if isinstance(x, (n.InputRef, n.UsedRef))}


def _domain(ctx: Context, operand, integer: bool) -> Interval:
    if isinstance(operand, n.InputRef):
        i = ctx.inputs.get(operand.name)
        if i is not None:
            if i.type.kind == "count":
                return Interval(Decimal(0), True, None, False)
            if i.type.kind == "ratio":
                return Interval(Decimal(0), True, Decimal(1), True)
            if i.type.kind == "number" and i.type.low is not None:
                return Interval(i.type.low, True, i.type.high, True)
    if isinstance(operand, n.CountEvents):
        return Interval(Decimal(0), True, None, False)
    return Interval(None, False, None, False)


# ---- numeric bins -------------------------------------------------------------------------
# An interval becomes a half-open range of "keys" (value, side): a closed low end a starts at
# (a, 0), an open one at (a, 1); a closed high end b stops before (b, 1), an open one before (b, 0).
# Then coverage and overlap are plain half-open range arithmetic on keys.

def _keys(iv: Interval) -> tuple:
    lo = (-INF, 0) if iv.low is None else (iv.low, 0 if iv.low_closed else 1)
    hi = (INF, 0) if iv.high is None else (iv.high, 1 if iv.high_closed else 0)
    return lo, hi


def _from_keys(lo, hi) -> Interval:
    low = None if lo[0] == -INF else lo[0]
    high = None if hi[0] == INF else hi[0]
    return Interval(low, lo[1] == 0 and low is not None, high, hi[1] == 1 and high is not None)


def _integer_keys(iv: Interval) -> tuple:
    """Whole numbers in iv as a half-open key range [(a,0), (b+1,0))."""
    if iv.low is None:
        lo = -INF
    else:
        lo = Decimal(math.ceil(iv.low)) if iv.low_closed else Decimal(math.floor(iv.low) + 1)
    if iv.high is None:
        hi = INF
    else:
        hi = Decimal(math.floor(iv.high) + 1) if iv.high_closed else Decimal(math.ceil(iv.high))
    return (lo, 0), (hi, 0)


def _bin_interval(ctx: Context, ind: n.Indicator, b: n.Bin):
    m = b.match
    if isinstance(m, n.MatchValue):
        if isinstance(m.value, (n.Number, n.Percent)):
            v = m.value.value
            return Interval(v, True, v, True)
        ctx.diags.error("type_mismatch", f"a bin of `{ind.name}` matches a number, not `{_lit(m.value)}`",
                        m.span, "numeric bins are written `0`, `1..2`, `0.5..<0.75` or `>= 3`")
        return None
    if isinstance(m, n.MatchRange):
        if m.low > m.high or (m.low == m.high and not m.high_closed):
            ctx.diags.error("bin_empty", f"the range {m.low}..{'' if m.high_closed else '<'}{m.high} holds no value",
                            m.span, "write the smaller number first")
            return None
        return Interval(m.low, True, m.high, m.high_closed)
    if isinstance(m, n.MatchCompare):
        v = m.value
        return {"<": Interval(None, False, v, False), "<=": Interval(None, False, v, True),
                ">": Interval(v, False, None, False), ">=": Interval(v, True, None, False),
                "=": Interval(v, True, v, True)}[m.op]
    return None


def _numeric(ctx: Context, ind: n.Indicator, domain: Interval, integer: bool):
    bins = ind.scoring.bins
    to_keys = _integer_keys if integer else _keys
    d_lo, d_hi = to_keys(domain)
    written = []   # (lo, hi, bin index)
    otherwise = None
    ok = True
    for idx, b in enumerate(bins):
        if isinstance(b.match, n.MatchOtherwise):
            if idx != len(bins) - 1:
                ctx.diags.error("bins_overlap", "`otherwise` must be the last bin", b.span,
                                "move it to the end: it takes every value no other bin matches")
                ok = False
            otherwise = idx
            continue
        iv = _bin_interval(ctx, ind, b)
        if iv is None:
            ok = False
            continue
        lo, hi = to_keys(iv)
        lo, hi = max(lo, d_lo), min(hi, d_hi)
        if lo >= hi:
            ctx.diags.error("bin_empty", f"bin `{_match_text(b.match)}` of `{ind.name}` can never match: "
                            f"{_operand_text(ind)} is always in {domain}", b.span,
                            "remove the bin, or correct its bounds")
            ok = False
            continue
        written.append((lo, hi, idx))
    if not ok:
        return None
    written.sort()
    pieces, cursor = [], d_lo
    gaps = []
    for lo, hi, idx in written:
        if lo < cursor:
            prev = next(w for w in written if w[0] < cursor and w[2] != idx and w[1] > lo)
            where = _describe(max(lo, prev[0]), min(hi, prev[1]), integer)
            ctx.diags.error("bins_overlap", f"bins of `{ind.name}` overlap: {where} matches both "
                            f"`{_match_text(bins[prev[2]].match)}` and `{_match_text(bins[idx].match)}`",
                            bins[idx].span, "make each value fall in exactly one bin")
            return None
        if lo > cursor:
            gaps.append((cursor, lo))
        pieces.append((lo, hi, idx))
        cursor = hi
    if cursor < d_hi:
        gaps.append((cursor, d_hi))
    if gaps and otherwise is None:
        where = "; ".join(_describe(a, b, integer) for a, b in gaps[:3])
        ctx.diags.error("bins_gap", f"bins of `{ind.name}` leave {where} without points",
                        ind.scoring.span, "add a bin for those values, or end with `otherwise -> N`")
        return None
    if otherwise is not None:
        if not gaps:
            ctx.diags.warning("bin_empty", f"`otherwise` of `{ind.name}` never applies: the other bins cover "
                              "every value", bins[otherwise].span, "remove it")
        pieces += [(a, b, otherwise) for a, b in gaps]
        pieces.sort()
    intervals = tuple(_integer_interval(lo, hi) if integer else _from_keys(lo, hi) for lo, hi, _ in pieces)
    return BinTable("numeric", intervals=intervals, points=tuple(bins[i].points for _, _, i in pieces),
                    source=tuple(i for _, _, i in pieces), integer=integer)


def _integer_interval(lo, hi) -> Interval:
    low = None if lo[0] == -INF else lo[0]
    high = None if hi[0] == INF else hi[0] - 1
    return Interval(low, low is not None, high, high is not None)


def _describe(lo, hi, integer: bool) -> str:
    if integer:
        a, b = lo[0], hi[0] - 1 if hi[0] != INF else INF
        if a == b:
            return f"the value {a}"
        if a == -INF:
            return f"the values <= {b}" if b != INF else "every value"
        return f"the values {a}..{b}" if b != INF else f"the values >= {a}"
    iv = _from_keys(lo, hi)
    if iv.low is not None and iv.low == iv.high:
        return f"the value {iv.low}"
    return f"the values in {iv}"


# ---- categorical bins ---------------------------------------------------------------------

def _categorical(ctx: Context, ind: n.Indicator, t) -> BinTable | None:
    bins = ind.scoring.bins
    if t.kind == "bool":
        universe = [True, False]
    else:
        universe = list(t.members)
    seen: dict = {}
    otherwise = None
    ok = True
    for idx, b in enumerate(bins):
        m = b.match
        if isinstance(m, n.MatchOtherwise):
            if idx != len(bins) - 1:
                ctx.diags.error("bins_overlap", "`otherwise` must be the last bin", b.span,
                                "move it to the end: it takes every value no other bin matches")
                ok = False
            otherwise = idx
            continue
        value = _categorical_value(m, t)
        if value is None:
            expected = "`true` or `false`" if t.kind == "bool" else ", ".join(f"`{x}`" for x in universe)
            ctx.diags.error("type_mismatch", f"a bin of `{ind.name}` must match one of {expected}", m.span,
                            _suggest(m, universe))
            ok = False
            continue
        if value in seen:
            ctx.diags.error("bins_overlap", f"`{_lit(m.value)}` has two bins in `{ind.name}`", b.span,
                            f"the first is at column {bins[seen[value]].span.column}; keep one")
            ok = False
            continue
        seen[value] = idx
    if not ok:
        return None
    uncovered = [v for v in universe if v not in seen]
    if uncovered and otherwise is None:
        names = ", ".join(f"`{str(v).lower() if isinstance(v, bool) else v}`" for v in uncovered)
        ctx.diags.error("enum_not_covered", f"`{ind.name}` gives no points for {names}", ind.scoring.span,
                        "add a bin for each, or end with `otherwise -> N`")
        return None
    mapping = tuple((v, bins[seen[v]].points, seen[v]) if v in seen else (v, bins[otherwise].points, otherwise)
                    for v in universe)
    return BinTable("categorical", mapping=mapping)


def _categorical_value(m, t):
    if isinstance(m, n.MatchValue):
        v = m.value
        if t.kind == "bool" and isinstance(v, n.BoolLit):
            return v.value
        if t.kind in ("enum", "grade") and isinstance(v, n.Symbol) and v.name in t.members:
            return v.name
    return None


def _suggest(m, universe) -> str:
    from ..diagnostics import did_you_mean
    if isinstance(m, n.MatchValue) and isinstance(m.value, n.Symbol):
        return did_you_mean(m.value.name, [str(u) for u in universe])
    return ""


def _lit(v) -> str:
    for attr in ("name", "value"):
        if hasattr(v, attr):
            x = getattr(v, attr)
            return str(x).lower() if isinstance(x, bool) else str(x)
    return "?"


def _match_text(m) -> str:
    if isinstance(m, n.MatchValue):
        return _lit(m.value)
    if isinstance(m, n.MatchRange):
        return f"{m.low}..{'' if m.high_closed else '<'}{m.high}"
    if isinstance(m, n.MatchCompare):
        return f"{m.op} {m.value}"
    return "otherwise"


def _operand_text(ind: n.Indicator) -> str:
    op = ind.scoring.operand
    if isinstance(op, n.InputRef):
        return f"`{op.name}`"
    return "its value"

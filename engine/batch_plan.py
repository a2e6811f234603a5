"""Checked policy → the constants of a batch plan, shared by every columnar backend.

A batch backend (the Polars plan in engine/batch.py, the SQL of engine/sqlgen.py) computes for
a whole table what the per-record evaluator (engine/compiler.py) computes for one record. Both
backends read their numbers from here, so they cannot drift from each other; this module
mirrors `Evaluator.__init__` and `_indicator_code` (scales, contributions per bin, missing
rules, thresholds), and tests/batch/ holds all three to the same answers.

Everything is an integer: a contribution is `weight × points × 10^scale`, a score is
`units × 10^-precision`, exactly as docs/semantics.md §2 says.

Column names: an input is the column of its name; an input of a used policy
(`use weihai.general as general`) is the column `general.<input>`.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional

from . import nodes as n
from .compiler import default_value as _evaluator_default
from .semantics import score_scales
from .checker.context import CheckedPolicy, IndicatorSpec
from .result import measure_json
from .semantics import decimal_places, last_day_held, scaled, window_bounds

STRICTNESS = {"required": 3, "worst": 2, "points": 1, "exclude": 0, "default": -1}

# Inputs that go through arithmetic are read as exact scaled integers. A number or ratio is
# read with FLOAT_SCALE decimals; a value that is not exactly such a decimal, or larger than
# the limits below, is reported per record (`out_of_batch_range`), never rounded.
FLOAT_SCALE = 6
FLOAT_LIMIT = 10 ** 9
COUNT_LIMIT = 10 ** 15
INT64_LIMIT = 2 ** 62          # below this a value (and twice it) fits a signed 64-bit integer
INT128_LIMIT = 2 ** 125


class Unsupported(Exception):
    """A construct a batch backend cannot compute exactly; names the construct and its line."""

    def __init__(self, construct: str, span=None, backend: str = "batch", help: str = ""):
        self.construct = construct
        self.span = span
        self.backend = backend
        self.help = help
        where = f" ({span})" if span is not None and getattr(span, "line", 0) else ""
        super().__init__(f"{backend}: {construct} is not supported{where}" + (f"; {help}" if help else ""))


@dataclass(frozen=True)
class Num:
    """How a numeric expression is carried: `int` (an integer of 10^-scale units, magnitude at
    most `bound`) or `float` (a double input column, compared as the decimal it was written)."""
    kind: str
    scale: int = 0
    bound: int = 0

    @property
    def wide(self) -> bool:
        return self.bound > INT64_LIMIT


@dataclass(frozen=True)
class Window:
    """One distinct (events input, window) pair: events e with start < e <= end are counted."""
    input: str
    start: dt.date
    end: dt.date
    index: int


@dataclass(frozen=True)
class Lasting:
    """An override that lasts (`-> G for <duration>`, docs/semantics.md §10). Its candidate days
    are the entity's events of `inputs` dated t with start < t <= end (the as-of date); as of
    each candidate t its condition counts events in windows of its own: `bounds` holds, per
    possible candidate day, the (lo, hi] of each of `windows` as of that day, from the
    evaluator's own calendar arithmetic (semantics.window_bounds), and the last day an override
    set off on t holds (semantics.last_day_held). The override fires when the condition holds
    as of some candidate; `since` is the latest such day, `until` its last day held."""
    override: int                      # index among the policy's overrides
    name: str
    inputs: tuple                      # counted events input columns (pooled candidates)
    start: dt.date
    end: dt.date
    windows: tuple                     # (events input column, (n, unit, offset_n, offset_unit)), in order
    bounds: tuple                      # ((t, until, ((lo, hi), …)), …) for every day t in (start, end]

    def window_index(self, name: str, w: n.Window) -> int:
        return self.windows.index((name, (w.n, w.unit, w.offset_n, w.offset_unit)))


MAX_CANDIDATE_DAYS = 40_000


def _lasting(p: "BatchPlan", k: int, o: n.Override) -> Lasting:
    counts = [x for x in _walk(o.condition) if isinstance(x, n.CountEvents)]
    inputs = tuple(sorted({x.events.name for x in counts}))
    missing = [x for x in inputs if x in p.defaults and not p.events_given]
    if missing:
        raise Unsupported(f"override `{o.name}` that lasts, over the default events of `{missing[0]}` "
                          "(no events table)", o.span, help="pass the events (--events)")
    windows = tuple(dict.fromkeys((x.events.name, (x.window.n, x.window.unit, x.window.offset_n, x.window.offset_unit))
                                  for x in counts))
    start, end = window_bounds(p.as_of, o.duration.n, o.duration.unit)
    days = (end - start).days
    if days > MAX_CANDIDATE_DAYS:
        raise Unsupported(f"override `{o.name}` that lasts more than {MAX_CANDIDATE_DAYS:,} days", o.span)
    bounds = []
    for d in range(1, days + 1):
        t = start + dt.timedelta(days=d)
        bounds.append((t, last_day_held(t, o.duration.n, o.duration.unit), tuple(window_bounds(t, *w) for _, w in windows)))
    return Lasting(k, o.name, tuple(p.column(x) for x in inputs), start, end,
                   tuple((p.column(x), w) for x, w in windows), tuple(bounds))


@dataclass(frozen=True)
class IndicatorPlan:
    spec: IndicatorSpec
    index: int
    weight_units: int                  # weight × 10^weight_scale
    direct: Optional[str]              # the input its bins read directly, if so
    rule: n.Missing                    # the strictest missing rule of the inputs it reads
    missing: str                       # add (missing_contrib) | exclude | none
    missing_contrib: int
    defaulted: tuple                   # inputs with a default it reads: collected only if none defaulted
    # numeric bins: lower bounds of intervals 1.. (value, closed), contribution and source per interval
    lows: tuple = ()
    contribs: tuple = ()
    sources: tuple = ()
    # categorical bins: (value, contribution, source)
    mapping: tuple = ()
    max_points: Decimal = Decimal(0)
    # an indicator computed from inputs with different missing rules: the rule is the strictest
    # among the inputs missing in the row (docs/semantics.md §1, Evaluator's missing_rule), so
    # per row: ((input, contribution), …) worst first, then `points` in the order read; none
    # of them missing → the indicator is left out
    by_missing: tuple = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def scoring(self):
        return self.spec.indicator.scoring


@dataclass
class BatchPlan:
    checked: CheckedPolicy
    as_of: dt.date
    prefix: str                        # "" for the policy itself, "general." for a used one
    weight_scale: int
    scale: int
    weight_total: int
    indicators: tuple
    thresholds: Optional[tuple]        # score units: base grade = first cutoff with units < threshold
    cutoff_grades: Optional[tuple]
    grade_input: object                # the ref of `grade = …`, or None
    defaults: dict                     # input → default (Python value: int, float, bool, str, date, tuple of dates)
    windows: tuple
    used: dict                         # alias → BatchPlan (the version in force on as_of)
    required: Optional[Decimal]
    measures_json: dict                # grade → the JSON text of its measures (the evaluator's dicts)
    conditional_measures: dict         # grade → ((key, JSON text of the item, condition or None), …)
    guarded: frozenset                 # inputs read as exact scaled integers (arithmetic)
    wide_total: bool                   # the score arithmetic needs 128-bit integers
    score_bound: int                   # |score units| at most
    events_given: bool = True
    lasting: tuple = ()                # Lasting, one per override that lasts (docs/semantics.md §10)
    total_bound: int = 0               # |Σ contributions| at most (the integer width of the sum)
    nonnegative: bool = False          # every contribution is >= 0 (the sum needs no sign branch)
    _window_index: dict = field(default_factory=dict)

    # ---- names ------------------------------------------------------------------------
    @property
    def grades(self) -> tuple:
        return self.checked.grades

    @property
    def precision(self) -> int:
        return self.checked.precision

    @property
    def inputs(self) -> dict:
        return self.checked.inputs

    def column(self, name: str) -> str:
        return self.prefix + name

    def columns(self) -> list[tuple[str, n.Input]]:
        """Every input column the plan reads (events inputs excluded), used policies' included."""
        out = [(self.column(k), i) for k, i in self.inputs.items() if i.type.kind != "events"]
        for sub in self.used.values():
            out += sub.columns()
        return out

    def events_inputs(self) -> list[str]:
        out = [self.column(k) for k, i in self.inputs.items() if i.type.kind == "events"]
        for sub in self.used.values():
            out += sub.events_inputs()
        return out

    def all_windows(self) -> list:
        out = list(self.windows)
        for sub in self.used.values():
            out += sub.all_windows()
        return out

    def window(self, name: str, w: n.Window) -> Window:
        return self._window_index[(name, w.n, w.unit, w.offset_n, w.offset_unit)]

    # ---- numbers ----------------------------------------------------------------------
    def score_decimal(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.precision)

    def completeness_units(self) -> tuple[int, int]:
        """`require completeness >= X`: met when collected × den >= num × total."""
        x = self.required
        places = decimal_places(x)
        return scaled(x, places), 10 ** places

    @property
    def total_indicators(self) -> int:
        return len(self.indicators)

    def num(self, e) -> Num:
        return numeric(self, e)


def plan(checked: CheckedPolicy, as_of: dt.date, resolve_used=None, events_given: bool = True,
         prefix: str = "") -> BatchPlan:
    """The batch plan of `checked` as of `as_of`. `resolve_used(policy_id, as_of)` returns the
    CheckedPolicy of a used policy in force on that date (default: the one it was checked with)."""
    inputs = checked.inputs
    specs = checked.indicators
    precision = checked.precision

    # --- scales: exactly as Evaluator.__init__ -----------------------------------------
    weight_scale, scale = score_scales(specs, inputs, precision)
    weight_total = sum(scaled(s.weight, weight_scale) for s in specs)

    used = {}
    for alias, c in checked.used.items():
        c2 = (resolve_used(c.id, as_of) if resolve_used is not None else None) or c
        used[alias] = plan(c2, as_of, resolve_used, events_given, prefix + alias + ".")

    defaults = {name: default_value(i) for name, i in inputs.items()
                if i.default is not None and not isinstance(i.default, n.MissingLit)}

    g = checked.policy.grading
    if isinstance(g, n.GradeByScore):
        thresholds = tuple(math.ceil(c.below.scaleb(precision)) for c in g.cutoffs if c.below is not None)
        cutoff_grades = tuple(checked.grades.index(c.grade) for c in g.cutoffs)
        grade_input = None
    else:
        thresholds = cutoff_grades = None
        grade_input = g.ref

    required = next((r.minimum for r in checked.policy.requires if r.kind == "completeness"), None)
    measures = {gr: json.dumps([measure_json(checked, it) for it in items], ensure_ascii=False)
                for gr, items in checked.measures_by_grade.items()}
    # grades with `when` items (docs/semantics.md §9): item k is returned when it applies and no
    # earlier item of the same measure or action applied
    conditional = {gr: tuple((_measure_key(it), json.dumps(measure_json(checked, it), ensure_ascii=False),
                              getattr(it, "condition", None)) for it in items)
                   for gr, items in checked.measures_by_grade.items()
                   if any(getattr(it, "condition", None) is not None for it in items)}
    for o in checked.policy.overrides:
        if getattr(o, "duration", None) is not None and prefix:
            raise Unsupported(f"override `{o.name}` that lasts (`-> {o.effect.grade} for …`, docs/semantics.md §10) "
                              "in a used policy", o.span,
                              help="evaluate this policy per record (`riskrules eval`, the service)")

    p = BatchPlan(checked=checked, as_of=as_of, prefix=prefix, weight_scale=weight_scale, scale=scale,
                  weight_total=weight_total, indicators=(), thresholds=thresholds, cutoff_grades=cutoff_grades,
                  grade_input=grade_input, defaults=defaults, windows=(), used=used, required=required,
                  measures_json=measures, conditional_measures=conditional, guarded=frozenset(), wide_total=False, score_bound=0,
                  events_given=events_given)

    # --- windows: every distinct (events input, window) -------------------------------
    windows = []
    for e in _walk_all(checked):
        if isinstance(e, n.CountEvents):
            key = (e.events.name, e.window.n, e.window.unit, e.window.offset_n, e.window.offset_unit)
            if key not in p._window_index:
                start, end = window_bounds(as_of, e.window.n, e.window.unit, e.window.offset_n, e.window.offset_unit)
                w = Window(p.column(e.events.name), start, end, len(windows))
                p._window_index[key] = w
                windows.append(w)
    p.windows = tuple(windows)
    p.lasting = tuple(_lasting(p, k, o) for k, o in enumerate(checked.policy.overrides)
                      if getattr(o, "duration", None) is not None)
    p.guarded = frozenset(_guarded_inputs(checked))
    p.indicators = tuple(_indicator_plan(p, k, s) for k, s in enumerate(specs))

    # --- magnitudes: choose 64- or 128-bit integers, or report -------------------------
    total_bound = sum(max(max((abs(c) for c in ip.contribs), default=0),
                          max((abs(c) for _, c, _ in ip.mapping), default=0),
                          max((abs(c) for _, c in ip.by_missing), default=0),
                          abs(ip.missing_contrib), _arith_contrib_bound(p, ip)) for ip in p.indicators)
    renorm = 2 * total_bound * 10 ** (weight_scale + precision) + 2 * weight_total * 10 ** scale
    p.wide_total = renorm > INT64_LIMIT
    p.total_bound = total_bound
    p.nonnegative = all(ip.spec.table is not None and ip.missing_contrib >= 0 and
                        all(c >= 0 for c in ip.contribs) and all(c >= 0 for _, c, _ in ip.mapping) and
                        all(c >= 0 for _, c in ip.by_missing)
                        for ip in p.indicators)
    if renorm > INT128_LIMIT:
        raise Unsupported("a score whose exact arithmetic needs more than 128-bit integers",
                          checked.policy.indicators.span if checked.policy.indicators else None)
    max_pts = max([_points_bound(p, ip) for ip in p.indicators] + [Decimal(0)])
    p.score_bound = int(max_pts.scaleb(precision)) + 1
    return p


def _measure_key(item) -> tuple:
    return ("measure", item.measure) if isinstance(item, n.MeasureValue) else ("action", item.name)


def default_value(i: n.Input):
    """The default as the evaluator holds it."""
    return _evaluator_default(i)


def _indicator_plan(p: BatchPlan, k: int, spec: IndicatorSpec) -> IndicatorPlan:
    inputs = p.inputs
    s = spec.indicator.scoring
    direct = s.operand.name if isinstance(s, n.Bins) and isinstance(s.operand, n.InputRef) else None

    def contrib(points: Decimal) -> int:
        return scaled(spec.weight * points, p.scale)

    rules = [inputs[x].missing for x in spec.inputs if x in inputs]
    rule = max(rules, key=lambda m: STRICTNESS[m.kind]) if rules else n.Missing("required")
    if rule.kind == "worst":
        missing, mc = "add", contrib(spec.max_points)
    elif rule.kind == "points":
        missing, mc = "add", contrib(rule.points)
    elif rule.kind == "exclude" or direct is None:
        missing, mc = "exclude", 0
    else:
        missing, mc = "none", 0     # a required input: the record was rejected before scoring
    defaulted = tuple(x for x in spec.inputs if x in p.defaults)
    ip = dict(spec=spec, index=k, weight_units=scaled(spec.weight, p.weight_scale), direct=direct, rule=rule,
              missing=missing, missing_contrib=mc, defaulted=defaulted, max_points=spec.max_points)
    if direct is None and len(spec.inputs) > 1 and len({m.kind for m in rules}) > 1:
        can_miss = [x for x in spec.inputs if x in inputs and inputs[x].default is None]
        worst = [(x, contrib(spec.max_points)) for x in can_miss if inputs[x].missing.kind == "worst"]
        points = [(x, contrib(inputs[x].missing.points)) for x in can_miss if inputs[x].missing.kind == "points"]
        ip.update(missing="dynamic", missing_contrib=0, by_missing=tuple(worst + points))
    t = spec.table
    if t is not None and t.kind == "numeric":
        ip["lows"] = tuple((iv.low, iv.low_closed) for iv in t.intervals[1:])
        ip["contribs"] = tuple(contrib(pt) for pt in t.points)
        ip["sources"] = tuple(t.source)
        if any(lo is None for lo, _ in ip["lows"]):
            raise Unsupported("a bin table with an unbounded interval after the first", spec.indicator.span)
    elif t is not None:
        ip["mapping"] = tuple((v, contrib(pt), src) for v, pt, src in t.mapping)
    return IndicatorPlan(**ip)


def _points_bound(p: BatchPlan, ip: IndicatorPlan) -> Decimal:
    pts = [abs(ip.max_points)]
    t = ip.spec.table
    if t is not None:
        pts += [abs(x) for x in (t.points if t.kind == "numeric" else [m[1] for m in t.mapping])]
    if ip.rule.kind == "points":
        pts.append(abs(ip.rule.points))
    if t is None:
        v = p.num(ip.scoring.expr)
        pts.append(Decimal(v.bound).scaleb(-v.scale) + 1)
    return max(pts)


def _arith_contrib_bound(p: BatchPlan, ip: IndicatorPlan) -> int:
    if ip.spec.table is not None:
        return 0
    v = p.num(ip.scoring.expr)
    pts = Decimal(v.bound).scaleb(-v.scale) + 1
    return int((ip.spec.weight * pts).scaleb(p.scale)) + 1


# ---- expressions -----------------------------------------------------------------------

def _walk(e):
    yield e
    if isinstance(e, tuple):
        for x in e:
            yield from _walk(x)
    elif hasattr(e, "__dataclass_fields__") and not isinstance(e, (n.Window, n.Type)):
        for f in e.__dataclass_fields__:
            if f != "span":
                v = getattr(e, f)
                if isinstance(v, (tuple,)) or hasattr(v, "__dataclass_fields__"):
                    yield from _walk(v)


def expressions(checked: CheckedPolicy):
    """Every expression of the policy: indicator operands, `points =`, overrides, alerts."""
    p = checked.policy
    for spec in checked.indicators:
        s = spec.indicator.scoring
        yield s.operand if isinstance(s, n.Bins) else s.expr
    if isinstance(p.grading, n.GradeFromInput):
        yield p.grading.ref
    for o in p.overrides:
        yield o.condition
    for a in p.alerts:
        yield a.condition
    for items in checked.measures_by_grade.values():
        for it in items:
            if getattr(it, "condition", None) is not None:
                yield it.condition


def _walk_all(checked: CheckedPolicy):
    for e in expressions(checked):
        yield from _walk(e)


def _guarded_inputs(checked: CheckedPolicy) -> set:
    """Inputs that are read as exact scaled integers: anything under arithmetic, `min`/`max`,
    or compared with something other than a literal (docs/batch.md §Exactness)."""
    out = set()
    literal = (n.Number, n.Percent)

    def refs(e):
        return {x.name for x in _walk(e) if isinstance(x, n.InputRef)}

    for spec in checked.indicators:
        s = spec.indicator.scoring
        if isinstance(s, n.Arithmetic):
            out |= _numeric_refs(checked, s.expr)
        elif isinstance(s.operand, n.Call) and s.operand.function in ("min", "max"):
            out |= _numeric_refs(checked, s.operand)
    for e in list(_walk_all(checked)):
        if isinstance(e, (n.Arith, n.Neg)) or (isinstance(e, n.Call) and e.function in ("min", "max")):
            out |= _numeric_refs(checked, e)
        elif isinstance(e, n.Compare) and _is_numeric(checked, e.left):
            if not isinstance(e.left, literal) and not isinstance(e.right, literal):
                out |= _numeric_refs(checked, e.left) | _numeric_refs(checked, e.right)
    del refs
    return out


def _numeric_refs(checked, e) -> set:
    return {x.name for x in _walk(e) if isinstance(x, n.InputRef)
            and checked.inputs.get(x.name) is not None
            and checked.inputs[x.name].type.kind in ("count", "number", "ratio")}


def _is_numeric(checked, e) -> bool:
    from .checker.expr_types import type_of
    return type_of(e, checked.inputs, checked.grades, checked.used).kind == "number"


def numeric(p: BatchPlan, e) -> Num:
    """The representation of a numeric expression (see Num)."""
    if isinstance(e, (n.Number, n.Percent)):
        places = decimal_places(e.value)
        return Num("int", places, abs(scaled(e.value, places)))
    if isinstance(e, n.InputRef):
        kind = p.inputs[e.name].type.kind
        if kind == "count":
            return Num("int", 0, COUNT_LIMIT)
        if e.name in p.guarded:
            return Num("int", FLOAT_SCALE, FLOAT_LIMIT * 10 ** FLOAT_SCALE)
        return Num("float")
    if isinstance(e, n.ScoreRef):
        return Num("int", p.precision, max(p.score_bound, 1))
    if isinstance(e, n.UsedRef):
        sub = p.used[e.alias]
        return Num("int", sub.precision, max(sub.score_bound, 1))
    if isinstance(e, n.CountEvents):
        return Num("int", 0, 10 ** 12)
    if isinstance(e, n.Call) and e.function in ("years_since", "months_since", "days_since"):
        return Num("int", 0, 10 ** 7)
    if isinstance(e, n.Neg):
        return as_int(numeric(p, e.operand))
    if isinstance(e, n.Arith):
        a, b = as_int(numeric(p, e.left)), as_int(numeric(p, e.right))
        if e.op == "*":
            r = Num("int", a.scale + b.scale, a.bound * b.bound)
        elif e.op in ("+", "-"):
            s = max(a.scale, b.scale)
            r = Num("int", s, a.bound * 10 ** (s - a.scale) + b.bound * 10 ** (s - b.scale))
        else:
            raise Unsupported("division", e.span)
        return _checked_bound(r, e)
    if isinstance(e, n.Call) and e.function in ("min", "max"):
        vs = [as_int(numeric(p, a)) for a in e.args]
        s = max(v.scale for v in vs)
        return _checked_bound(Num("int", s, max(v.bound * 10 ** (s - v.scale) for v in vs)), e)
    raise Unsupported(f"the expression `{type(e).__name__}` as a number", getattr(e, "span", None))


def as_int(v: Num) -> Num:
    return v if v.kind == "int" else Num("int", FLOAT_SCALE, FLOAT_LIMIT * 10 ** FLOAT_SCALE)


def _checked_bound(v: Num, e) -> Num:
    if v.bound > INT128_LIMIT:
        raise Unsupported("arithmetic whose exact value may need more than 128-bit integers", e.span,
                          help="split the expression, or bound its inputs")
    return v


def common_scale(a: Num, b: Num, e=None) -> tuple[int, bool]:
    """The scale two integer values are compared at, and whether 128-bit integers are needed."""
    s = max(a.scale, b.scale)
    bound = max(a.bound * 10 ** (s - a.scale), b.bound * 10 ** (s - b.scale))
    if bound > INT128_LIMIT:
        raise Unsupported("a comparison whose exact value may need more than 128-bit integers",
                          getattr(e, "span", None))
    return s, bound > INT64_LIMIT


def half_up_div(num: int, den: int) -> int:
    """The same rule as semantics.div_round_half_up, kept here for constant folding."""
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return q if num >= 0 else -q

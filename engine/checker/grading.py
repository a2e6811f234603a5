"""Pass `grading`: cutoffs rise with risk, name known grades in order, and every grade can be
reached (by a score or by an override). Also checks overrides' target grades.

Must run after `bins` and `weights` (it needs each indicator's point range)."""
from __future__ import annotations

from decimal import Decimal

from .. import nodes as n
from ..diagnostics import did_you_mean
from .context import Context


def check(ctx: Context) -> None:
    grades = ctx.grade_names
    _check_overrides(ctx, grades)
    g = ctx.policy.grading
    if not isinstance(g, n.GradeByScore) or not grades:
        return
    cutoffs = g.cutoffs
    known = [c for c in cutoffs if c.grade in grades]
    for c in cutoffs:
        if c.grade not in grades:
            ctx.diags.error("unknown_grade", f"`{c.grade}` is not a grade of this policy", c.span,
                            did_you_mean(c.grade, grades) or "grades: " + ", ".join(grades))
    seen = set()
    for c in known:
        if c.grade in seen:
            ctx.diags.error("duplicate_name", f"grade `{c.grade}` has two cutoffs", c.span, "keep one")
        seen.add(c.grade)
    order = [grades.index(c.grade) for c in known]
    if order != sorted(order):
        bad = next(c for c, a, b in zip(known[1:], order, order[1:]) if b < a)
        ctx.diags.error("cutoff_order", f"cutoffs must list the grades in their order ({', '.join(grades)})",
                        bad.span, "lowest risk first: the lowest score gets the first grade")
    if not cutoffs or cutoffs[-1].below is not None:
        span = cutoffs[-1].span if cutoffs else g.span
        ctx.diags.error("cutoffs_not_monotone", "the last cutoff must be `<grade> otherwise`", span,
                        "the highest-risk grade takes every score above the last cutoff")
    for c in cutoffs[:-1]:
        if c.below is None:
            ctx.diags.error("cutoffs_not_monotone", "`otherwise` must be the last cutoff", c.span,
                            "cutoffs run from the lowest score up")
    values = [c for c in cutoffs if c.below is not None]
    for a, b in zip(values, values[1:]):
        if b.below <= a.below:
            ctx.diags.error("cutoffs_not_monotone", f"cutoff {b.below} of `{b.grade}` is not above {a.below} of "
                            f"`{a.grade}`", b.span, "each cutoff must be higher than the one before it")
    if ctx.diags.has_errors:
        return
    _check_reachable(ctx, grades, cutoffs)


def _score_range(ctx: Context):
    if not ctx.indicators:
        return None
    lo = sum((s.weight * s.min_points for s in ctx.indicators), Decimal(0))
    hi = sum((s.weight * s.max_points for s in ctx.indicators), Decimal(0))
    if any(ctx.inputs.get(i) is not None and ctx.inputs[i].missing.kind == "exclude"
           for s in ctx.indicators for i in s.inputs):
        lo = min(lo, min(s.min_points for s in ctx.indicators))
        hi = max(hi, max(s.max_points for s in ctx.indicators))
    return lo, hi


def _check_reachable(ctx: Context, grades, cutoffs) -> None:
    rng = _score_range(ctx)
    ctx.score_range = rng
    by_override = {o.effect.grade for o in ctx.policy.overrides if o.effect.kind in ("set", "at_least", "at_most")}
    moves = any(o.effect.kind in ("raise", "lower") for o in ctx.policy.overrides)
    scored = set()
    lower = None
    for c in cutoffs:
        upper = c.below
        reachable = rng is None or ((lower is None or lower <= rng[1]) and (upper is None or upper > rng[0]))
        if reachable:
            scored.add(c.grade)
        elif c.grade not in by_override and not moves:
            ctx.diags.warning("grade_unreachable", f"no score reaches grade `{c.grade}`: scores run from "
                              f"{rng[0].normalize():f} to {rng[1].normalize():f}", c.span,
                              "move the cutoffs into the range the indicators can produce")
        lower = upper
    for g in grades:
        if g not in {c.grade for c in cutoffs} and g not in by_override and not moves:
            ctx.diags.warning("grade_unreachable", f"grade `{g}` has no cutoff and no override sets it",
                              ctx.policy.grading.span, f"give `{g}` a cutoff, or an override that sets it")


def _check_overrides(ctx: Context, grades) -> None:
    for o in ctx.policy.overrides:
        e = o.effect
        if o.duration is not None:
            _check_lasting(ctx, o)
        if e.kind in ("set", "at_least", "at_most") and e.grade not in grades and grades:
            ctx.diags.error("unknown_grade", f"override `{o.name}` sets unknown grade `{e.grade}`", e.span,
                            did_you_mean(e.grade, grades) or "grades: " + ", ".join(grades))
        if e.kind in ("raise", "lower") and e.steps == 0:
            ctx.diags.warning("override_no_effect", f"override `{o.name}` moves the grade by 0 steps", e.span,
                              "raise or lower by at least 1")
        if e.kind in ("raise", "lower") and grades and e.steps >= len(grades):
            ctx.diags.warning("override_no_effect", f"`{e.kind} {e.steps}` always lands on the last grade",
                              e.span, f"say it directly: `-> {grades[-1] if e.kind == 'raise' else grades[0]}`")


# ---- overrides that last (`-> G for 1 quarter`) ------------------------------------------
# Such an override is checked as of each day in the last <duration> on which an event it counts
# occurred (docs/semantics.md §10). That is exact when the condition can only become true on such
# a day: every `or` branch needs `count(<events>, last N unit) >= k` (or `> k`), and nothing in it
# may change with the date by itself (`not` over a count, `*_since`, offset windows, grade, score).

def _check_lasting(ctx: Context, o: n.Override) -> None:
    problem = _not_event_triggered(o.condition)
    if o.duration.n <= 0:
        problem = (o.duration.span, "a duration of zero never holds", "give it a length, e.g. `for 1 quarter`")
    if problem is not None:
        span, message, help_ = problem
        ctx.diags.error("override_duration", f"override `{o.name}` lasts `for {o.duration.n} {o.duration.unit}`, "
                        f"but {message}", span, help_)


_HELP = "write the trigger as `count(<events>, last N unit) >= k`, joined with `and`/`or` to conditions " \
        "on inputs that do not change with the date"


def _not_event_triggered(e):
    """None when the condition can only become true on the day of a counted event, else
    (span, what is wrong, help)."""
    if isinstance(e, n.Or):
        for x in e.items:
            p = _not_event_triggered(x)
            if p is not None:
                return p
        return None
    if isinstance(e, n.And):
        triggers = 0
        for x in e.items:
            if _not_event_triggered(x) is None:
                triggers += 1
                continue
            p = _time_dependent(x)
            if p is not None:
                return p
        if triggers == 0:
            return (e.span, "no part of its condition counts events", _HELP)
        return None
    if _is_trigger(e):
        return None
    p = _time_dependent(e)
    if p is not None:
        return p
    return (e.span, "its condition counts no events, so no event can set it off", _HELP)


def _is_trigger(e) -> bool:
    return (isinstance(e, n.Compare) and e.op in (">=", ">") and isinstance(e.left, n.CountEvents)
            and e.left.window.offset_n == 0 and isinstance(e.right, n.Number))


def _time_dependent(e):
    """(span, message, help) if e changes with the as-of date, else None."""
    if isinstance(e, n.CountEvents):
        return (e.span, "it counts events other than as `count(…, last N unit) >= k`", _HELP)
    if isinstance(e, n.Call) and e.function.endswith("_since"):
        return (e.span, f"`{e.function}` changes with the date, not with an event", _HELP)
    if isinstance(e, (n.GradeRef, n.ScoreRef)):
        return (e.span, "`grade` and `score` are not known on the day of an earlier event", _HELP)
    if isinstance(e, tuple):
        for x in e:
            p = _time_dependent(x)
            if p is not None:
                return p
        return None
    if hasattr(e, "__dataclass_fields__"):
        for f in e.__dataclass_fields__:
            if f != "span":
                p = _time_dependent(getattr(e, f))
                if p is not None:
                    return p
    return None

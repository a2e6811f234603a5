"""Pass `traceability`: every number traces to its document (`basis`) or says it is an
assumption (`assumed`). Each `assumed` is listed, so a reader can tell a published rule from a
placeholder. A number is traced by provenance on its own item or on an enclosing block."""
from __future__ import annotations

from .. import nodes as n
from .context import Context


def check(ctx: Context) -> None:
    p = ctx.policy
    _list_assumptions(ctx, p)
    if p.indicators is not None:
        block = p.indicators.provenance
        for item in p.indicators.items:
            if isinstance(item, n.Group):
                for ind in item.indicators:
                    _need(ctx, ind.span, f"indicator `{ind.name}`", ind.provenance, item.provenance, block)
                if not item.indicators:
                    _need(ctx, item.span, f"group `{item.name}`", item.provenance, block)
            else:
                _need(ctx, item.span, f"indicator `{item.name}`", item.provenance, block)
    if isinstance(p.grading, n.GradeByScore):
        for c in p.grading.cutoffs:
            if c.below is not None:
                _need(ctx, c.span, f"cutoff of `{c.grade}`", c.provenance, p.grading.provenance)
    for o in p.overrides:
        if o.effect.kind in ("raise", "lower") or o.duration is not None or _has_number(o.condition):
            _need(ctx, o.span, f"override `{o.name}`", o.provenance)
    if p.measures is not None:
        for rule in p.measures.rules:
            for item in rule.items:
                if isinstance(item, n.MeasureValue) and _requirement_has_number(item.requirement):
                    _need(ctx, item.span, f"measure `{item.measure}`", item.provenance, p.measures.provenance)
                elif item.condition is not None and _has_number(item.condition):
                    what = f"measure `{item.measure}`" if isinstance(item, n.MeasureValue) else \
                        f"action `{item.name}`"
                    _need(ctx, item.span, f"the `when` condition of {what}", item.provenance,
                          p.measures.provenance)
    for a in p.alerts:
        if _has_number(a.condition):
            _need(ctx, a.span, f"alert `{a.name}`", a.provenance)
    for r in p.requires:
        _need(ctx, r.span, "the completeness requirement", r.provenance)
    for i in p.inputs:
        if i.missing.kind == "points":
            _need(ctx, i.span, f"the missing-value points of `{i.name}`", i.provenance)
    for plan in p.plans:    # the other numbers of plans, draws and group rules: checker/population.py
        for q in plan.items:
            if isinstance(q, n.PlanQuota):
                _need(ctx, q.span, f"the quota of plan `{plan.name}`", q.provenance, plan.provenance)


def _need(ctx: Context, span, what: str, *provenances) -> None:
    if any(provenances):
        return
    ctx.diags.warning("untraced_number", f"{what} has a number with neither `basis` nor `assumed`", span,
                      'add `basis "<document section>"`, or `assumed "<why this value>"` if no document states it')


def _has_number(e) -> bool:
    # a count's window length is a number too
    return any(isinstance(x, (n.Number, n.Percent, n.Duration, n.CountEvents)) for x in n.walk(e))


def _requirement_has_number(r: n.Requirement) -> bool:
    return isinstance(r.value, (n.Number, n.Percent, n.Duration)) or r.period is not None


def _list_assumptions(ctx: Context, p: n.Policy) -> None:
    for x in n.walk(p):
        if isinstance(x, n.Provenance) and x.kind == "assumed":
            ctx.diags.info("assumption", x.text, x.span)

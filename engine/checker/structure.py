"""Pass `structure`: the parts every policy needs, and names that are declared twice."""
from __future__ import annotations

from .. import nodes as n
from .context import Context


def check(ctx: Context) -> None:
    p = ctx.policy
    span = p.span
    if p.version is None:
        ctx.diags.error("missing_header", "the policy has no `version`", span,
                        'add `version "2024.1"` to the header, so results name the version they came from')
    if p.effective is None:
        ctx.diags.error("missing_header", "the policy has no `effective` date", span,
                        "add `effective YYYY-MM-DD` to the header; it decides which version applies on a date")
    if not p.grades:
        ctx.diags.error("no_grades", "the policy declares no grades", span,
                        'add a line like `grades A "低风险", B "中风险", C "中高风险", D "高风险"`')
    if p.grading is None:
        ctx.diags.error("no_grading", "the policy does not say how a grade is decided", span,
                        "add `grade by score { … }` or `grade = <input of type grade>`")
    if isinstance(p.grading, n.GradeByScore) and p.indicators is None:
        ctx.diags.error("no_grading", "`grade by score` needs an `indicators` block to compute a score",
                        p.grading.span, "add indicators, or take the grade from an input: `grade = <input>`")

    _unique(ctx, [(g.name, g.span) for g in p.grades], "grade")
    _unique(ctx, [(i.name, i.span) for i in p.inputs], "input")
    _unique(ctx, [(u.alias, u.span) for u in p.uses], "used policy alias")
    if p.indicators is not None:
        groups = [i for i in p.indicators.items if isinstance(i, n.Group)]
        inds = [i for i in p.indicators.items if isinstance(i, n.Indicator)]
        inds += [i for g in groups for i in g.indicators]
        _unique(ctx, [(g.name, g.span) for g in groups] + [(i.name, i.span) for i in inds], "indicator or group")
    _unique(ctx, [(o.name, o.span) for o in p.overrides if o.named], "override")
    _unique(ctx, [(a.name, a.span) for a in p.alerts], "alert")
    _unique(ctx, [(t.name, t.span) for t in p.tests], "test")
    if p.measures is not None:
        _unique(ctx, [(d.name, d.span) for d in p.measures.decls], "measure")

    ctx.grade_names = tuple(g.name for g in p.grades)
    ctx.inputs = {}
    for i in p.inputs:
        ctx.inputs.setdefault(i.name, i)
    aliases = {u.alias for u in p.uses}
    for i in p.inputs:
        if i.name in aliases:
            ctx.diags.error("duplicate_name", f"`{i.name}` is both an input and a used policy's alias", i.span,
                            "rename one of them")


def _unique(ctx: Context, named: list, what: str) -> None:
    first: dict = {}
    for name, span in named:
        if name in first:
            ctx.diags.error("duplicate_name", f"{what} `{name}` is declared twice", span,
                            f"the first `{name}` is on line {first[name].line}; rename or remove one")
        else:
            first[name] = span

"""Pass `measures`: every grade has its measures, each measure is declared, and each value has
the measure's type. Builds the per-grade measure table the backends return."""
from __future__ import annotations

from .. import nodes as n
from ..diagnostics import did_you_mean
from .context import Context
from .expr_types import a_


def check(ctx: Context) -> None:
    m = ctx.policy.measures
    grades = ctx.grade_names
    ctx.measures_by_grade = {g: [] for g in grades}
    ctx.measure_decls = {}
    if m is None:
        if grades and not ctx.policy.plans:
            # a grade alone tells the caller nothing to do; allowed (a grade-only policy may feed
            # others through `use`), but worth a reviewer's look
            ctx.diags.warning("grade_without_measures", "the policy declares no measures for its grades",
                              ctx.policy.span, "add `measures { … }` with what each grade means for supervision")
        return
    decls = {}
    for d in m.decls:
        decls.setdefault(d.name, d)
    ctx.measure_decls = decls
    written = set()   # grades with a measures line, even one that names an unknown measure
    for rule in m.rules:
        targets = rule.grades or grades
        written.update(targets)
        for g in rule.grades:
            if g not in grades:
                ctx.diags.error("unknown_grade", f"measures for unknown grade `{g}`", rule.span,
                                did_you_mean(g, grades) or "grades: " + ", ".join(grades))
        for item in rule.items:
            if isinstance(item, n.MeasureValue):
                decl = decls.get(item.measure)
                if decl is None:
                    ctx.diags.error("unknown_measure", f"unknown measure `{item.measure}`", item.span,
                                    did_you_mean(item.measure, decls) or
                                    f"declare it first: `{item.measure} : count \"…\"`")
                    continue
                check_requirement(ctx, decl, item.requirement, item.span)
            for g in targets:
                if g in ctx.measures_by_grade:
                    ctx.measures_by_grade[g].append(item)
    for g, items in ctx.measures_by_grade.items():
        # Items for one measure are tried in the order written and the first that applies wins
        # (docs/semantics.md §Conditional measures): an item after one without `when` never applies.
        names = {}
        for it in items:
            key = ("measure", it.measure) if isinstance(it, n.MeasureValue) else ("action", it.name)
            first = names.get(key)
            if first is not None and first.condition is None:
                ctx.diags.error("measure_duplicate", f"grade `{g}` sets `{key[1]}` twice", it.span,
                                f"the first is on line {first.span.line}; to choose between values, "
                                "give every one but the last a `when <condition>`")
            if first is None or first.condition is not None:
                names[key] = it
    for g in grades:
        if not ctx.measures_by_grade[g] and g not in written:   # not a cascade of unknown_measure
            ctx.diags.error("grade_without_measures", f"grade `{g}` has no measures", m.span,
                            f"add a line `{g}: …`; a grade without special treatment can say so: "
                            f"`{g}: action 常规监管 \"…\"`")
    ctx.measures_by_grade = {g: tuple(v) for g, v in ctx.measures_by_grade.items()}


def check_requirement(ctx: Context, decl: n.MeasureDecl, req: n.Requirement, span) -> None:
    values = [req.value] + ([req.high] if req.high is not None else [])
    for v in values:
        if not value_fits(v, decl.type):
            ctx.diags.error("measure_type", f"`{decl.name}` is {a_(decl.type)} measure; `{_text(v)}` is not",
                            v.span if v.span.line else span, _example(decl.type))
    if req.op in ("min", "soft_min", "max", "range") and decl.type.kind in ("bool", "enum"):
        ctx.diags.error("measure_type", f"`{decl.name}` is {a_(decl.type)} measure: it can only be `= value`",
                        req.span if req.span.line else span, "bounds apply to numbers")
    if req.op == "range" and req.high is not None and all(hasattr(v, "value") for v in values):
        if isinstance(req.value.value, type(req.high.value)) and req.value.value > req.high.value:
            ctx.diags.error("measure_type", f"the range {_text(req.value)}..{_text(req.high)} runs backwards",
                            span, "write the smaller value first")
    if req.period is not None and req.period.low > req.period.high:
        ctx.diags.error("measure_type", "the period range runs backwards", req.period.span,
                        "write the shorter period first, e.g. `per 2..3 years`")
    if req.period is not None and decl.type.kind not in ("count", "number"):
        ctx.diags.error("measure_type", f"only counts happen `per` a period; `{decl.name}` is {a_(decl.type)}",
                        req.period.span, "remove the period")


def value_fits(v, t: n.Type) -> bool:
    k = t.kind
    if k == "count":
        return isinstance(v, n.Number) and v.value >= 0 and v.value == v.value.to_integral_value()
    if k == "number":
        return isinstance(v, n.Number)
    if k == "ratio":
        return isinstance(v, n.Percent) or (isinstance(v, n.Number) and 0 <= v.value <= 1)
    if k == "bool":
        return isinstance(v, n.BoolLit)
    if k == "enum":
        return isinstance(v, n.Symbol) and v.name in t.members
    if k == "duration":
        return isinstance(v, n.Duration)
    return False


def _text(v) -> str:
    if isinstance(v, n.Percent):
        return f"{(v.value * 100).normalize():f}%"
    if isinstance(v, n.Duration):
        return f"{v.n} {v.unit}s"
    for attr in ("name", "value"):
        if hasattr(v, attr):
            x = getattr(v, attr)
            return str(x).lower() if isinstance(x, bool) else str(x)
    return "?"


def _example(t: n.Type) -> str:
    return {
        "count": "a whole number, e.g. `>= 2 per year`", "number": "a number",
        "ratio": "a percentage, e.g. `>= 3%`", "bool": "`true` or `false`",
        "enum": "one of " + ", ".join(f"`{m}`" for m in t.members), "duration": "a duration, e.g. `<= 1 month`",
    }.get(t.kind, "")

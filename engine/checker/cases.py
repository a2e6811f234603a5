"""Pass `cases`: the policy's test cases name inputs, grades, measures, alerts and overrides
that exist, with values of the right type. Must run after `measures`."""
from __future__ import annotations

from .. import nodes as n
from ..diagnostics import did_you_mean
from .context import Context
from .expr_types import a_
from .measures import check_requirement
from .types import literal_fits


def check(ctx: Context) -> None:
    p = ctx.policy
    grades = ctx.grade_names
    alerts = {a.name for a in p.alerts}
    overrides = {o.name for o in p.overrides}
    actions = {it.name for items in ctx.measures_by_grade.values() for it in items
               if isinstance(it, n.MeasureAction)}
    for t in p.tests:
        for g in t.givens:
            _given(ctx, g)
        for e in t.expectations:
            if e.kind == "grade" and e.name not in grades:
                ctx.diags.error("test_unknown_grade", f"test expects unknown grade `{e.name}`", e.span,
                                did_you_mean(e.name, grades) or "grades: " + ", ".join(grades))
            elif e.kind == "measure":
                decl = ctx.measure_decls.get(e.name)
                if decl is None:
                    ctx.diags.error("unknown_measure", f"test expects unknown measure `{e.name}`", e.span,
                                    did_you_mean(e.name, ctx.measure_decls) or "declare it in `measures`")
                else:
                    check_requirement(ctx, decl, e.requirement, e.span)
            elif e.kind in ("action", "no_action") and e.name not in actions:
                ctx.diags.error("unknown_measure", f"test expects unknown action `{e.name}`", e.span,
                                did_you_mean(e.name, actions) or "actions are declared per grade in `measures`")
            elif e.kind in ("alert", "no_alert") and e.name not in alerts:
                ctx.diags.error("unknown_alert", f"test names unknown alert `{e.name}`", e.span,
                                did_you_mean(e.name, alerts) or "alerts: " + (", ".join(sorted(alerts)) or "none"))
            elif e.kind == "override" and e.until is not None and e.name in overrides and \
                    next(o for o in p.overrides if o.name == e.name).duration is None:
                ctx.diags.error("override_duration", f"test expects `{e.name}` to hold until a date, but it "
                                "does not last", e.span, f"only an override with `for <duration>` has an end date")
            elif e.kind in ("override", "no_override") and e.name not in overrides:
                ctx.diags.error("unknown_override", f"test names unknown override `{e.name}`", e.span,
                                did_you_mean(e.name, overrides) or
                                "name the override to test it: `override <name>: <condition> -> …`")


def _given(ctx: Context, g: n.Given) -> None:
    if len(g.path) == 2:
        alias, name = g.path
        used = ctx.used.get(alias)
        if used is None:
            if alias not in {u.alias for u in ctx.policy.uses}:
                ctx.diags.error("test_unknown_input", f"`{alias}` is not a used policy", g.span,
                                did_you_mean(alias, [u.alias for u in ctx.policy.uses]) or "")
            return
        inputs, grades = used.inputs, used.grades
    else:
        name = g.path[0]
        inputs, grades = ctx.inputs, ctx.grade_names
    decl = inputs.get(name)
    if decl is None:
        ctx.diags.error("test_unknown_input", f"test gives unknown input `{'.'.join(g.path)}`", g.span,
                        did_you_mean(name, inputs) or "inputs: " + ", ".join(list(inputs)[:8]))
        return
    if not literal_fits(g.value, decl.type, grades):
        ctx.diags.error("test_bad_value", f"`{name}` is {a_(decl.type)} input; the test's value does not fit",
                        g.value.span if g.value.span.line else g.span,
                        "e.g. " + {"count": "`= 2`", "bool": "`= true`", "ratio": "`= 15%`",
                                   "events": "`= [2024-01-05, 2024-03-01]`", "date": "`= 2024-01-05`"}
                        .get(decl.type.kind, "one of its values"))

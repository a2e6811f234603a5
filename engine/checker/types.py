"""Pass `types`: expressions, defaults and scoring operands have the types their place needs.

Must run after `resolve` (it types resolved references)."""
from __future__ import annotations

from .. import nodes as n
from ..diagnostics import did_you_mean
from .context import Context
from .expr_types import BOOL, FUNCTIONS, T, a_, comparable, input_type, ordered, type_of


def check(ctx: Context) -> None:
    p = ctx.policy
    tc = _TypeChecker(ctx)
    for i in p.inputs:
        tc.input_default(i)
    if p.indicators is not None:
        for item in p.indicators.items:
            for ind in (item.indicators if isinstance(item, n.Group) else (item,)):
                tc.indicator(ind)
    if isinstance(p.grading, n.GradeFromInput):
        tc.grade_source(p.grading)
    for o in p.overrides:
        tc.condition(o.condition, "an override's condition")
    for a in p.alerts:
        tc.condition(a.condition, "an alert's condition")
    if p.measures is not None:
        for rule in p.measures.rules:
            for item in rule.items:
                if item.condition is not None:
                    tc.condition(item.condition, "a measure's `when` condition")
    for u in p.uses:
        if u.policy_id not in ctx.known_policies:
            ctx.diags.error("unknown_policy", f"`use {u.policy_id}`: no such policy is loaded", u.span,
                            did_you_mean(u.policy_id, ctx.known_policies)
                            or "check it together with the policy it uses (e.g. `riskrules check policies/`)")


class _TypeChecker:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def t(self, e) -> T:
        return type_of(e, self.ctx.inputs, self.ctx.grade_names, self.ctx.used)

    def err(self, message, span, help_=""):
        self.ctx.diags.error("type_mismatch", message, span, help_)

    # ---- declarations ----------------------------------------------------------------
    def input_default(self, i: n.Input) -> None:
        if i.default is None:
            return
        want = input_type(i.type, self.ctx.grade_names)
        if not literal_fits(i.default, i.type, self.ctx.grade_names):
            self.err(f"the default of `{i.name}` is not {a_(want)}", i.default.span,
                     _example(i.type))

    def grade_source(self, g: n.GradeFromInput) -> None:
        if isinstance(g.ref, n.Symbol):
            # `grade = 可销售`: a fixed base grade that only overrides move (docs/semantics.md §11)
            if g.ref.name not in self.ctx.grade_names:
                self.err(f"`grade = {g.ref.name}`: `{g.ref.name}` is not a grade of this policy", g.ref.span,
                         "name one of the grades, or an input of type grade")
            return
        t = self.t(g.ref)
        if t.kind == "unknown":
            return              # an unknown name or policy, reported where it is declared
        if t.kind != "grade":
            self.err(f"`grade = …` needs an input of type grade, not {t}", g.ref.span,
                     "declare the input as `name : grade`")
        elif tuple(t.members) != self.ctx.grade_names:
            self.err("the used policy's grades differ from this policy's grades", g.ref.span,
                     "declare the same grades, or score the used grade in an indicator")

    def indicator(self, ind: n.Indicator) -> None:
        s = ind.scoring
        if isinstance(s, n.Arithmetic):
            t = self.expr(s.expr)
            if t.kind not in ("number", "unknown"):
                self.err(f"`points = …` of `{ind.name}` must be a number, not {t}", s.expr.span)
            return
        operand = s.operand
        if not isinstance(operand, (n.InputRef, n.UsedRef, n.CountEvents, n.Call)):
            self.err("an indicator scores an input, a used policy's grade or score, or a count of events",
                     operand.span)
            return
        t = self.expr(operand)
        if t.kind in ("events", "date", "string", "duration"):
            hint = "count them: `count(<events>, last 12 months)`" if t.kind == "events" else \
                "use `years_since(<date>)` to score a date"
            self.err(f"bins cannot score a value of type {t}", operand.span, hint)

    # ---- expressions -----------------------------------------------------------------
    def condition(self, e, where: str) -> None:
        t = self.expr(e)
        if t.kind not in ("bool", "unknown"):
            self.err(f"{where} must be true or false, not {t}", e.span,
                     "compare it: e.g. `penalties_3y >= 2`")

    def expr(self, e) -> T:
        if isinstance(e, n.Compare):
            lt, rt = self.expr(e.left), self.expr(e.right)
            ok = comparable(lt, rt) if e.op in ("=", "!=") else ordered(lt, rt)
            if not ok:
                self.err(f"cannot compare {lt} with {rt} using `{e.op}`", e.span, _compare_hint(lt, rt))
        elif isinstance(e, n.Member):
            ot = self.expr(e.operand)
            for v in e.values:
                vt = self.expr(v)
                if not comparable(ot, vt):
                    self.err(f"{vt} cannot be a value of {ot}", v.span, _compare_hint(ot, vt))
        elif isinstance(e, n.IsMissing):
            if not isinstance(e.operand, (n.InputRef, n.UsedRef)):
                self.err("only an input can be missing", e.operand.span)
        elif isinstance(e, (n.And, n.Or)):
            for x in e.items:
                t = self.expr(x)
                if t.kind not in ("bool", "unknown"):
                    self.err(f"`{'and' if isinstance(e, n.And) else 'or'}` joins conditions, not {t}", x.span,
                             "compare it first, e.g. `x >= 1`")
        elif isinstance(e, n.Not):
            t = self.expr(e.operand)
            if t.kind not in ("bool", "unknown"):
                self.err(f"`not` needs a condition, not {t}", e.operand.span)
        elif isinstance(e, n.Arith):
            if e.op == "/":
                self.ctx.diags.error("unsupported_division", "division is not supported", e.span,
                                     "multiply instead: write `a > 2 * b` rather than `a / b > 2`")
            for side in (e.left, e.right):
                t = self.expr(side)
                if t.kind not in ("number", "unknown"):
                    self.err(f"`{e.op}` needs numbers, not {t}", side.span)
        elif isinstance(e, n.Neg):
            t = self.expr(e.operand)
            if t.kind not in ("number", "unknown"):
                self.err(f"`-` needs a number, not {t}", e.operand.span)
        elif isinstance(e, n.Call):
            self.call(e)
        elif isinstance(e, n.CountEvents):
            t = self.expr(e.events)
            if t.kind not in ("events", "unknown"):
                self.err(f"`count` needs an events input, not {t}", e.events.span,
                         "declare it as `name : events`")
            w = e.window
            if w.n <= 0:
                self.ctx.diags.error("empty_window", "a window of zero length never holds an event", w.span,
                                     "give the window a length, e.g. `last 12 months`")
        elif isinstance(e, n.InputRef) and e.name in self.ctx.inputs:
            pass
        return self.t(e)

    def call(self, e: n.Call) -> None:
        if e.function not in FUNCTIONS:
            self.ctx.diags.error("unknown_function", f"unknown function `{e.function}`", e.span,
                                 did_you_mean(e.function, FUNCTIONS) or
                                 "functions: " + ", ".join(sorted(FUNCTIONS)) + ", count")
            return
        ts = [self.expr(a) for a in e.args]
        if e.function in ("min", "max"):
            if len(ts) < 2:
                self.err(f"`{e.function}` needs at least two values", e.span)
            for a, t in zip(e.args, ts):
                if t.kind not in ("number", "unknown"):
                    self.err(f"`{e.function}` needs numbers, not {t}", a.span)
        else:
            if len(ts) != 1 or ts[0].kind not in ("date", "unknown"):
                self.err(f"`{e.function}` takes one date", e.span, f"e.g. `{e.function}(licensed_on)`")


def literal_fits(lit, t: n.Type, grades: tuple) -> bool:
    k = t.kind
    if isinstance(lit, n.MissingLit):
        return True
    if k == "count":
        return isinstance(lit, n.Number) and lit.value == lit.value.to_integral_value() and lit.value >= 0
    if k == "number":
        if not isinstance(lit, n.Number):
            return False
        return (t.low is None or lit.value >= t.low) and (t.high is None or lit.value <= t.high)
    if k == "ratio":
        return isinstance(lit, (n.Percent, n.Number)) and 0 <= lit.value <= 1
    if k == "bool":
        return isinstance(lit, n.BoolLit)
    if k == "enum":
        return isinstance(lit, n.Symbol) and lit.name in t.members
    if k == "grade":
        return isinstance(lit, n.Symbol) and lit.name in grades
    if k == "date":
        return isinstance(lit, n.DateLit)
    if k == "events":
        return isinstance(lit, n.DateList)
    if k == "duration":
        return isinstance(lit, n.Duration)
    return False


def _example(t: n.Type) -> str:
    return {
        "count": "a whole number, e.g. `= 0`", "number": "a number, e.g. `= 1.5`",
        "ratio": "a percentage, e.g. `= 10%`", "bool": "`= true` or `= false`",
        "enum": "one of " + ", ".join(f"`{m}`" for m in t.members), "grade": "one of the grades",
        "date": "a date, e.g. `= 2024-01-01`", "events": "a list of dates, e.g. `= []`",
    }.get(t.kind, "")


def _compare_hint(a: T, b: T) -> str:
    for x, y in ((a, b), (b, a)):
        if x.kind == "symbol" and y.kind in ("enum", "grade"):
            return f"`{x.symbol}` is not one of " + ", ".join(f"`{m}`" for m in y.members)
    if {a.kind, b.kind} == {"number", "bool"}:
        return "a yes/no input is compared with `true` or `false`"
    return "both sides must be of the same kind"

"""Pass `population`: plans, draws and group rules — the rules that act on a set of enterprises.

What a reviewer of a population rule checks: a quota is a share between 0 % and 100 %; a
fractional size (10 % of 103) has a declared rounding rule; a priority list names inputs that
exist and says how candidates beyond the quota are chosen; a draw says which mode it uses and
every grade it covers has a ratio (a rounding down that could fall below a minimum ratio is
reported); a group rule's conditions type-check; officer rules do not contradict each other.

Must run after `measures` (draws read the per-grade measure table) and after `types` (input
types). Rewrites ctx.policy: the conditions of plans and group rules are resolved like an
alert's (`grade` is the final grade)."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

from .. import nodes as n
from ..diagnostics import did_you_mean
from .context import Context
from .resolve import _Resolver
from .types import _TypeChecker

ORDERABLE = ("count", "number", "ratio", "date", "bool", "grade")
RATIO_OPS = ("exact", "min", "soft_min", "range")      # a draw needs a floor or an exact share


def check(ctx: Context) -> None:
    p = ctx.policy
    if not (p.plans or p.draws or p.group_rules):
        return
    _names(ctx, p)
    plans = tuple(_plan(ctx, plan, [q.name for q in p.plans[:k]]) for k, plan in enumerate(p.plans))
    draws = tuple(_draw(ctx, d) for d in p.draws)
    rules = tuple(_group_rule(ctx, r) for r in p.group_rules)
    ctx.policy = dataclasses.replace(ctx.policy, plans=plans, draws=draws, group_rules=rules)


# ---- shared -------------------------------------------------------------------------------

def _names(ctx: Context, p: n.Policy) -> None:
    """Plans and draws share one namespace: `riskrules draw --plan NAME` selects either."""
    first: dict = {}
    for block in list(p.plans) + list(p.draws):
        kind = "plan" if isinstance(block, n.Plan) else "draw"
        if block.name in first:
            ctx.diags.error("duplicate_name", f"{kind} `{block.name}` is declared twice", block.span,
                            f"the first `{block.name}` is on line {first[block.name].line}; plans and draws "
                            "share one set of names")
        else:
            first[block.name] = block.span


def _repeated(ctx: Context, block, allowed_many=()) -> None:
    seen: dict = {}
    for item in block.items:
        kind = type(item)
        if kind in allowed_many:
            continue
        if kind in seen:
            ctx.diags.error("population_clause_repeated", f"`{_CLAUSE[kind]}` is given twice in "
                            f"`{block.name}`", item.span,
                            f"keep one; the first is on line {seen[kind].line}")
        else:
            seen[kind] = item.span


_CLAUSE = {n.PlanQuota: "quota", n.Rounding: "rounding", n.PriorityOrder: "order by", n.RandomFill: "then random",
           n.MatchItems: "match items", n.Assign: "assign", n.DrawMode: "mode", n.DrawGrades: "grades",
           n.DrawRatio: "ratio"}


class _PopulationResolver(_Resolver):
    """Names in a population condition: an unknown single name is an unknown *input*."""

    def __init__(self, ctx: Context, symbols: set, what: str):
        super().__init__(ctx, symbols)
        self.what = what

    def ref(self, ref: n.Ref, where: str):
        if len(ref.parts) == 1:
            name = ref.parts[0]
            if name not in ("grade", "score") and name not in self.ctx.inputs and name not in self.symbols:
                candidates = list(self.ctx.inputs) + sorted(self.symbols)
                self.ctx.diags.error("unknown_input", f"unknown input `{name}` in {self.what}", ref.span,
                                     did_you_mean(name, candidates) or "declare it in `inputs { … }`")
                return n.InputRef(name, span=ref.span)
        return super().ref(ref, where)


def _symbols(ctx: Context) -> set:
    symbols = set(ctx.grade_names)
    for i in ctx.policy.inputs:
        if i.type.kind == "enum":
            symbols.update(i.type.members)
    for checked in ctx.used.values():
        symbols.update(checked.grades)
    return symbols


def _condition(ctx: Context, e, what: str):
    """Resolve and type a condition; an unknown input is reported once, with no type cascade."""
    before = len(ctx.diags.items)
    resolved = _PopulationResolver(ctx, _symbols(ctx), what).expr(e, "alert")
    if len(ctx.diags.items) == before:
        _TypeChecker(ctx).condition(resolved, f"the condition of {what}")
    return resolved


def _untraced(ctx: Context, span, what: str, *provenances) -> None:
    if any(provenances):
        return
    ctx.diags.warning("untraced_number", f"{what} has a number with neither `basis` nor `assumed`", span,
                      'add `basis "<document section>"`, or `assumed "<why this value>"` if no document states it')


def _share(ctx: Context, value: Decimal, span, what: str) -> None:
    if value <= 0 or value > 1:
        pct = f"{(value * 100).normalize():f}%"
        ctx.diags.error("share_range", f"{what} of {pct} is not a share of a population", span,
                        "a share is more than 0% and at most 100%")


def _assign(ctx: Context, a: n.Assign, owner: str) -> None:
    if a.officers < 1:
        ctx.diags.error("assign_invalid", f"`{owner}` assigns {a.officers} officers to an inspection", a.span,
                        "an inspection needs at least one officer (two is the usual rule)")
    if a.avoid_district and a.within_district:
        ctx.diags.error("assign_invalid", f"`{owner}` both avoids and requires the officer's own district",
                        a.span, "keep `avoid district` (cross-district checks) or `within district` (a district "
                        "bureau checks its own enterprises)")
    if a.load_cap is not None and a.load_cap < 1:
        ctx.diags.error("assign_invalid", f"`{owner}` lets no officer take an inspection (`at most "
                        f"{a.load_cap} per officer`)", a.span, "give a load cap of at least 1")
    _untraced(ctx, a.span, f"the officer rule of `{owner}`", a.provenance)


def _match(ctx: Context, m: n.MatchItems, owner: str) -> None:
    first: dict = {}
    for item in m.items:
        if item.name in first:
            ctx.diags.error("duplicate_name", f"check item `{item.name}` is declared twice", item.span,
                            f"the first `{item.name}` is on line {first[item.name].line}; rename or remove one")
        else:
            first[item.name] = item.span


def _needs_rounding(ctx: Context, rounding, shares, span, owner: str) -> None:
    if rounding is None and any(s not in (0, 1) for s in shares):
        ctx.diags.error("rounding_missing", f"{owner} does not say how a fractional size is rounded", span,
                        "add `rounding up`, `rounding down` or `rounding nearest`, e.g. "
                        '`rounding up assumed "…(SPEC G-X4)"` (10% of 103 enterprises is 10.3)')


# ---- plans --------------------------------------------------------------------------------

def _plan(ctx: Context, plan: n.Plan, earlier: list) -> n.Plan:
    _repeated(ctx, plan, allowed_many=(n.Priority, n.Exclude))
    q = plan.quota
    if q is None:
        ctx.diags.error("plan_incomplete", f"plan `{plan.name}` has no quota", plan.span,
                        "say how many to draw: `quota 25% of population per year`")
    else:
        _share(ctx, q.share, q.span, f"the quota of plan `{plan.name}`")
        if q.base_plan is not None and q.base_plan not in earlier:
            later = q.base_plan == plan.name or q.base_plan in [x.name for x in ctx.policy.plans]
            ctx.diags.error("unknown_plan", f"`quota … of plan {q.base_plan}`: no plan `{q.base_plan}` is "
                            "declared before this one", q.span,
                            ("a plan draws from the sample of a plan declared above it" if later else
                             did_you_mean(q.base_plan, earlier) or
                             ("plans above: " + ", ".join(earlier) if earlier else "declare that plan first")))
        _needs_rounding(ctx, plan.rounding, [q.share], q.span, f"plan `{plan.name}`")
    if not plan.priorities and plan.fill is None:
        ctx.diags.error("plan_incomplete", f"plan `{plan.name}` does not say how enterprises are chosen",
                        plan.span, "add `first where <condition>` (a priority list), `then random`, or both")
    if plan.priorities and plan.order is None:
        ctx.diags.error("priority_unordered", f"plan `{plan.name}` does not say which priority candidates are "
                        "drawn when there are more than the quota", plan.priorities[0].span,
                        'add `order by <input> desc, …, random` (e.g. `assumed "…(SPEC G-WH9)"`), or '
                        "`order by random`")
    if plan.order is not None and not plan.priorities:
        ctx.diags.warning("plan_incomplete", f"`order by` in plan `{plan.name}` has no priority list to order",
                          plan.order.span, "add `first where <condition>`, or remove `order by`")
    items = []
    for item in plan.items:
        if isinstance(item, n.Priority):
            item = dataclasses.replace(item, condition=_condition(
                ctx, item.condition, f"the priority list of plan `{plan.name}`"))
        elif isinstance(item, n.Exclude):
            item = dataclasses.replace(item, condition=_condition(
                ctx, item.condition, f"the exclusions of plan `{plan.name}`"))
        elif isinstance(item, n.PriorityOrder):
            _order(ctx, item, plan.name)
        elif isinstance(item, n.Assign):
            _assign(ctx, item, plan.name)
        elif isinstance(item, n.MatchItems):
            _match(ctx, item, plan.name)
        items.append(item)
    return dataclasses.replace(plan, items=tuple(items))


def _order(ctx: Context, order: n.PriorityOrder, owner: str) -> None:
    seen = set()
    for k in order.keys:
        key = (k.kind, k.name)
        if key in seen:
            ctx.diags.error("population_clause_repeated", f"`order by` of `{owner}` names "
                            f"`{k.name or k.kind}` twice", k.span, "a second key never decides anything")
        seen.add(key)
        if k.kind == "score" and not isinstance(ctx.policy.grading, n.GradeByScore):
            ctx.diags.error("unknown_name", f"`order by score` in plan `{owner}`: this policy computes no score",
                            k.span, "a policy graded from an input orders by inputs, `grade` or `random`")
        if k.kind != "input":
            continue
        decl = ctx.inputs.get(k.name)
        if decl is None:
            ctx.diags.error("unknown_input", f"unknown input `{k.name}` in the order of plan `{owner}`", k.span,
                            did_you_mean(k.name, ctx.inputs) or "order by inputs, `grade` or `random`")
        elif decl.type.kind not in ORDERABLE:
            ctx.diags.error("type_mismatch", f"cannot order by `{k.name}`, a {decl.type} input", k.span,
                            "order by numbers, dates, yes/no inputs or grades")


# ---- draws --------------------------------------------------------------------------------

def _draw(ctx: Context, d: n.Draw) -> n.Draw:
    _repeated(ctx, d)
    grades = ctx.grade_names
    mode = d.mode
    if mode is None:
        ctx.diags.error("draw_incomplete", f"draw `{d.name}` does not say its mode", d.span,
                        "add `mode per_grade` (one grade per draw), `mode combined` (several grades in one "
                        "draw) or `mode batches N` (several grades, dispatched in N batches)")
    elif mode.kind == "batches":
        if mode.batches < 2:
            ctx.diags.error("draw_incomplete", f"`mode batches {mode.batches}` dispatches in fewer than two "
                            "batches", mode.span, "use `mode combined` for a single batch")
        _untraced(ctx, mode.span, f"the batches of draw `{d.name}`", mode.provenance, d.provenance)
    covered = grades
    if d.grades is not None:
        for g in d.grades.grades:
            if g not in grades:
                ctx.diags.error("unknown_grade", f"draw `{d.name}` covers unknown grade `{g}`", d.grades.span,
                                did_you_mean(g, grades) or "grades: " + ", ".join(grades))
        covered = tuple(g for g in d.grades.grades if g in grades)
    ratio = d.ratio
    shares = []
    if ratio is None:
        ctx.diags.error("draw_incomplete", f"draw `{d.name}` does not say which measure gives each grade's "
                        "share", d.span, "add `ratio <measure>`, e.g. `ratio sampling_ratio`")
    else:
        decl = ctx.measure_decls.get(ratio.measure)
        if decl is None:
            ctx.diags.error("unknown_measure", f"unknown measure `{ratio.measure}`", ratio.span,
                            did_you_mean(ratio.measure, ctx.measure_decls) or
                            f"declare it in `measures`: `{ratio.measure} : ratio \"…\"`")
        elif decl.type.kind != "ratio":
            ctx.diags.error("draw_ratio_type", f"`{ratio.measure}` is a {decl.type} measure, not a ratio",
                            ratio.span, "a draw takes each grade's share from a measure of type ratio")
        else:
            for g in covered:
                share = _grade_ratio(ctx, d, ratio, g)
                if share is not None:
                    shares.append(share)
    _needs_rounding(ctx, d.rounding, [s for s, _op in shares], d.span, f"draw `{d.name}`")
    r = d.rounding
    if r is not None and r.mode != "up":
        floors = [op for _s, op in shares if op in ("min", "soft_min", "range")]
        if floors:
            text = f"`rounding {r.mode}` can draw fewer than a grade's minimum ratio"
            help_ = "use `rounding up` to honour a minimum (1% of 150 enterprises is 1.5: up draws 2)"
            if "min" in floors or "range" in floors:
                ctx.diags.error("rounding_below_minimum", text, r.span, help_)
            else:
                ctx.diags.warning("rounding_below_minimum", text + " (the ratios are soft minimums, 一般不低于)",
                                  r.span, help_ + ", or say why not with `assumed`")
    for item in d.items:
        if isinstance(item, n.Assign):
            _assign(ctx, item, d.name)
        elif isinstance(item, n.MatchItems):
            _match(ctx, item, d.name)
    return d


def _grade_ratio(ctx: Context, d: n.Draw, ratio: n.DrawRatio, grade: str):
    """(share, op) of `grade`'s ratio measure, or None after reporting why there is none."""
    values = [it for it in ctx.measures_by_grade.get(grade, ())
              if isinstance(it, n.MeasureValue) and it.measure == ratio.measure]
    plain = [it for it in values if getattr(it, "condition", None) is None]
    span = d.grades.span if d.grades is not None else ratio.span
    if not plain:
        help_ = (f"its `{ratio.measure}` applies only `when` a condition holds; a draw needs one share per grade"
                 if values else f"add `{grade}: {ratio.measure} >= N%` to `measures`, or leave `{grade}` out: "
                 f"`grades …`")
        ctx.diags.error("draw_grade_without_ratio", f"draw `{d.name}` covers grade `{grade}`, which has no "
                        f"`{ratio.measure}`", span, help_)
        return None
    req = plain[0].requirement
    if req.op not in RATIO_OPS:
        ctx.diags.error("draw_ratio_type", f"grade `{grade}` sets `{ratio.measure}` as a maximum; a draw needs "
                        "an exact share or a minimum", plain[0].span, f"write `{ratio.measure} >= N%` or `= N%`")
        return None
    value = req.value
    if not isinstance(value, (n.Percent, n.Number)):
        return None
    return value.value, req.op


# ---- group rules --------------------------------------------------------------------------

def _group_rule(ctx: Context, r: n.GroupRule) -> n.GroupRule:
    decl = ctx.inputs.get(r.key)
    if decl is not None and decl.type.kind in ("events",):
        ctx.diags.error("type_mismatch", f"cannot group by `{r.key}`, an events input", r.span,
                        "group by an identifier column, e.g. the chain headquarters' credit code")
    conditions = []
    for c in r.conditions:
        cond = c.condition
        if cond is not None:
            cond = _condition(ctx, cond, f"group rule `{r.action}`")
        if c.kind == "share":
            _share(ctx, c.value, c.span, f"the share in group rule `{r.action}`")
        conditions.append(dataclasses.replace(c, condition=cond))
    _untraced(ctx, r.span, f"group rule `{r.action}`", r.provenance)
    return dataclasses.replace(r, conditions=tuple(conditions))


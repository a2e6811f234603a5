"""Pass `resolve`: every name in an expression becomes an input, a grade or enum value, the
policy's own grade/score, or a field of a used policy. Unknown names get "did you mean".

Must run after `structure` (it reads the symbol tables). Rewrites ctx.policy."""
from __future__ import annotations

import dataclasses

from .. import nodes as n
from ..diagnostics import did_you_mean
from .context import Context


def check(ctx: Context) -> None:
    p = ctx.policy
    symbols = set(ctx.grade_names)
    for i in p.inputs:
        if i.type.kind == "enum":
            symbols.update(i.type.members)
    for checked in ctx.used.values():
        symbols.update(checked.grades)
    r = _Resolver(ctx, symbols)

    indicators = p.indicators
    if indicators is not None:
        indicators = dataclasses.replace(indicators, items=tuple(r.item(it) for it in indicators.items))
    grading = p.grading
    if isinstance(grading, n.GradeFromInput):
        grading = dataclasses.replace(grading, ref=r.expr(grading.ref, "grade"))
    overrides = tuple(dataclasses.replace(o, condition=r.expr(o.condition, "override")) for o in p.overrides)
    alerts = tuple(dataclasses.replace(a, condition=r.expr(a.condition, "alert")) for a in p.alerts)
    measures = p.measures
    if measures is not None:
        measures = dataclasses.replace(measures, rules=tuple(
            dataclasses.replace(rule, items=tuple(
                dataclasses.replace(it, condition=r.expr(it.condition, "measure")) if it.condition is not None
                else it for it in rule.items))
            for rule in measures.rules))
    ctx.policy = dataclasses.replace(p, indicators=indicators, grading=grading, overrides=overrides,
                                     alerts=alerts, measures=measures)


class _Resolver:
    def __init__(self, ctx: Context, symbols: set):
        self.ctx = ctx
        self.symbols = symbols
        self.aliases = {u.alias for u in ctx.policy.uses}

    def item(self, item):
        if isinstance(item, n.Group):
            return dataclasses.replace(item, indicators=tuple(self.indicator(i) for i in item.indicators))
        return self.indicator(item)

    def indicator(self, ind: n.Indicator) -> n.Indicator:
        s = ind.scoring
        if isinstance(s, n.Bins):
            s = dataclasses.replace(s, operand=self.expr(s.operand, "indicator"))
        else:
            s = dataclasses.replace(s, expr=self.expr(s.expr, "indicator"))
        return dataclasses.replace(ind, scoring=s)

    def expr(self, e, where: str):
        if isinstance(e, n.Ref):
            return self.ref(e, where)
        if isinstance(e, n.CountEvents):
            return dataclasses.replace(e, events=self.expr(e.events, where))
        fields = {}
        for f in dataclasses.fields(e):
            if f.name == "span":
                continue
            v = getattr(e, f.name)
            if isinstance(v, tuple) and v and not isinstance(v[0], (str, int)):
                fields[f.name] = tuple(self.expr(x, where) for x in v)
            elif dataclasses.is_dataclass(v) and not isinstance(v, n.Window):
                fields[f.name] = self.expr(v, where)
        return dataclasses.replace(e, **fields) if fields else e

    def ref(self, ref: n.Ref, where: str):
        parts = ref.parts
        if len(parts) == 1:
            name = parts[0]
            if name == "grade":
                if where == "indicator":
                    self.ctx.diags.error("unknown_name", "`grade` cannot be used to compute the score it decides",
                                         ref.span, "indicators may read inputs and used policies' results")
                    return n.InputRef(name, span=ref.span)   # reported once: typed unknown from here on
                return n.GradeRef(span=ref.span)
            if name == "score":
                if where == "indicator":
                    self.ctx.diags.error("unknown_name", "`score` cannot be used inside an indicator",
                                         ref.span, "indicators are what the score is made of")
                    return n.InputRef(name, span=ref.span)
                return n.ScoreRef(span=ref.span)
            if name in self.ctx.inputs:
                return n.InputRef(name, span=ref.span)
            if name in self.symbols:
                return n.Symbol(name, span=ref.span)
            candidates = list(self.ctx.inputs) + sorted(self.symbols) + sorted(self.aliases)
            code = "unknown_input" if where == "indicator" else "unknown_name"
            self.ctx.diags.error(code, f"unknown name `{name}`", ref.span,
                                 did_you_mean(name, candidates) or "declare it in `inputs { … }`")
            return n.InputRef(name, span=ref.span)
        alias, field = parts
        if alias not in self.aliases:
            self.ctx.diags.error("unknown_name", f"`{alias}` is not a used policy", ref.span,
                                 did_you_mean(alias, self.aliases) or f"add `use <jurisdiction>.<domain> as {alias}`")
            return n.UsedRef(alias, field, span=ref.span)
        if field not in ("grade", "score"):
            self.ctx.diags.error("unknown_name", f"`{alias}.{field}`: only `{alias}.grade` and `{alias}.score` "
                                 "can be read from a used policy", ref.span,
                                 "a used policy's inputs are given to it, not read from it")
        return n.UsedRef(alias, field, span=ref.span)

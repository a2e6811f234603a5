"""Render the full explanation of a result from the bin choices the traced run recorded."""
from __future__ import annotations

from decimal import Decimal

from . import nodes as n
from .result import _prov


def render(result) -> dict:
    c = result.checked
    ev = result.evaluator
    record = result._record or {}
    indicators = []
    for spec, choice in zip(c.indicators, result._trace):
        ind = spec.indicator
        s = ind.scoring
        entry = {"indicator": ind.name}
        if ind.label:
            entry["label"] = ind.label
        if spec.group is not None:
            entry["group"] = spec.group.name
            if spec.group.label:
                entry["group_label"] = spec.group.label
        if isinstance(s, n.Bins) and isinstance(s.operand, n.InputRef):
            name = s.operand.name
            entry["input"] = name
            value = record.get(name)
            if value is None and name in ev._defaults:
                value = ev._defaults[name]
                entry["defaulted"] = True
            entry["value"] = _jsonable(value)
        if choice is None:
            rule = _missing_rule(c, spec)
            entry["missing"] = rule.kind
            points = {"worst": spec.max_points, "points": rule.points}.get(rule.kind)
        elif isinstance(s, n.Arithmetic):
            points = Decimal(choice) if not isinstance(choice, Decimal) else choice
            entry["bin"] = "points = …"
        else:
            b = s.bins[choice]
            entry["bin"] = _bin_text(b.match)
            points = b.points
        entry["weight"] = _num(spec.weight)
        if points is not None:
            entry["points"] = _num(points)
            entry["contribution"] = _num(spec.weight * points)
        entry.update(_prov(ind.provenance or (spec.group.provenance if spec.group else ()) or
                           (c.policy.indicators.provenance if c.policy.indicators else ())))
        indicators.append(entry)
    return {
        "indicators": indicators,
        "overrides_fired": [o.name for o in result.overrides],
        "basis": _bases(result),
        "assumptions": _assumptions(result),
    }


def _missing_rule(c, spec):
    rules = [c.inputs[x].missing for x in spec.inputs if x in c.inputs]
    order = {"required": 3, "worst": 2, "points": 1, "exclude": 0, "default": -1}
    return max(rules, key=lambda m: order[m.kind]) if rules else n.Missing("exclude")


def _bin_text(m) -> str:
    if isinstance(m, n.MatchValue):
        v = m.value
        if isinstance(v, n.BoolLit):
            return "true" if v.value else "false"
        if isinstance(v, n.Symbol):
            return v.name
        if isinstance(v, n.Percent):
            return f"{(v.value * 100).normalize():f}%"
        return str(v.value)
    if isinstance(m, n.MatchRange):
        return f"{m.low}..{'' if m.high_closed else '<'}{m.high}"
    if isinstance(m, n.MatchCompare):
        return f"{m.op} {m.value}"
    return "otherwise"


def _num(d: Decimal) -> str:
    return f"{d.normalize():f}"


def _jsonable(v):
    if isinstance(v, (tuple, list)):
        return [str(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _bases(result) -> list:
    p = result.checked.policy
    out = []
    if p.basis:
        out.append({"what": "policy", "basis": p.basis})
    g = p.grading
    for item in [g] + list(result.overrides):
        if item is not None:
            for pr in item.provenance:
                if pr.kind == "basis":
                    out.append({"what": getattr(item, "name", "grading"), "basis": pr.text})
    for m in result.measures:
        if "basis" in m:
            out.append({"what": m["name"], "basis": m["basis"]})
    return out


def _assumptions(result) -> list:
    """The assumptions this result rests on: scoring, grading, fired overrides, its measures."""
    p = result.checked.policy
    out = []

    def add(what, provenance):
        for pr in provenance:
            if pr.kind == "assumed":
                out.append({"what": what, "assumed": pr.text})
    if p.indicators is not None:
        add("indicators", p.indicators.provenance)
        for item in p.indicators.items:
            add(item.name, item.provenance)
            if isinstance(item, n.Group):
                for ind in item.indicators:
                    add(ind.name, ind.provenance)
    if p.grading is not None:
        add("grading", p.grading.provenance)
        if isinstance(p.grading, n.GradeByScore):
            for cut in p.grading.cutoffs:
                add(f"cutoff {cut.grade}", cut.provenance)
    for o in result.overrides:
        add(o.name, o.provenance)
    for m in result.measures:
        if "assumed" in m:
            out.append({"what": m["name"], "assumed": m["assumed"]})
    for a in result.alerts:
        add(a.name, a.provenance)
    return out

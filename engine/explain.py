"""Render the full explanation of a result from the bin choices the traced run recorded."""
from __future__ import annotations

from decimal import Decimal

from . import nodes as n
from .result import _prov


def render(result) -> dict:
    ev = result.evaluator
    rows, static_assumptions = _static(ev)
    record = result._record or {}
    get = record.get
    # the common row — bins on a plain input without a default — is one dict display
    indicators = [_entry(ev, row, choice, get) if row[3] else
                  ({**row[0][choice], "value": get(row[1])} if row[1] is not None else dict(row[0][choice]))
                  for row, choice in zip(rows, result._trace)]
    return {
        "indicators": indicators,
        "overrides_fired": [o.name for o in result.overrides],
        "basis": _bases(result),
        "assumptions": static_assumptions + _dynamic_assumptions(result),
    }


_PLAIN = frozenset((int, float, str, bool, type(None)))


def _entry(ev, row, choice, get) -> dict:
    by_choice, name, arithmetic, _, spec = row
    if choice is None and spec is not None:
        # which missing rule applied depends on which inputs this record lacks
        record = {x: get(x) for x in spec.inputs}
        entry = dict(by_choice[None])
        rule = _missing_rule(ev.checked, spec, record)
        entry["missing"] = rule.kind
        points = {"worst": spec.max_points, "points": rule.points}.get(rule.kind)
        entry.pop("points", None)
        entry.pop("contribution", None)
        if points is not None:
            entry["points"] = _num(points)
            entry["contribution"] = _num(spec.weight * points)
        return entry
    if arithmetic and choice is not None:
        entry = dict(by_choice["points"])
        points = choice if isinstance(choice, Decimal) else Decimal(choice)
        entry["points"] = _num(points)
        entry["contribution"] = _num(Decimal(entry["weight"]) * points)
    else:
        entry = dict(by_choice[choice])
    if name is not None:
        value = get(name)
        if value is None and name in ev._defaults:
            value = ev._defaults[name]
            entry["defaulted"] = True
        entry["value"] = value if value.__class__ in _PLAIN else _jsonable(value)
    return entry


def _static(ev):
    """Per indicator, the explanation row of each possible bin choice — built once per policy."""
    cached = getattr(ev, "_explain_static", None)
    if cached is not None:
        return cached
    c = ev.checked
    rows = []
    for spec in c.indicators:
        ind = spec.indicator
        s = ind.scoring
        base = {"indicator": ind.name}
        if ind.label:
            base["label"] = ind.label
        if spec.group is not None:
            base["group"] = spec.group.name
            if spec.group.label:
                base["group_label"] = spec.group.label
        name = s.operand.name if isinstance(s, n.Bins) and isinstance(s.operand, n.InputRef) else None
        if name is not None:
            base["input"] = name
        base["weight"] = _num(spec.weight)
        base.update(_prov(ind.provenance or (spec.group.provenance if spec.group else ()) or
                          (c.policy.indicators.provenance if c.policy.indicators else ())))
        by_choice = {}
        rule = _missing_rule(c, spec)
        missing_points = {"worst": spec.max_points, "points": rule.points}.get(rule.kind)
        miss = dict(base, missing=rule.kind)
        if missing_points is not None:
            miss["points"] = _num(missing_points)
            miss["contribution"] = _num(spec.weight * missing_points)
        by_choice[None] = miss
        if isinstance(s, n.Bins):
            for k, b in enumerate(s.bins):
                by_choice[k] = dict(base, bin=_bin_text(b.match), points=_num(b.points),
                                    contribution=_num(spec.weight * b.points))
        else:
            by_choice["points"] = dict(base, bin="points = …")
        arithmetic = isinstance(s, n.Arithmetic)
        mixed = spec if _mixed_rules(c, spec) else None
        rows.append((by_choice, name, arithmetic, arithmetic or name in ev._defaults or mixed is not None, mixed))
    ev._explain_static = (rows, _static_assumptions(c.policy))
    return ev._explain_static


def _missing_rule(c, spec, record=None):
    from .compiler import missing_rule
    return missing_rule(c, spec, record)


def _mixed_rules(c, spec) -> bool:
    return len({c.inputs[x].missing.kind for x in spec.inputs if x in c.inputs}) > 1


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


def _static_assumptions(p) -> list:
    """Assumptions every scored result rests on: the scorecard and the grading."""
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
    return out


def _dynamic_assumptions(result) -> list:
    """…and those of what this result turned on: fired overrides, its measures, its alerts."""
    out = []
    for item in list(result.overrides) + list(result.alerts):
        for pr in item.provenance:
            if pr.kind == "assumed":
                out.append({"what": item.name, "assumed": pr.text})
    for m in result.measures:
        if "assumed" in m:
            out.append({"what": m["name"], "assumed": m["assumed"]})
    return out

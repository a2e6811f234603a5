"""What a policy change does: the rules that changed, and — over a population — which
enterprises change grade and how the inspection workload moves.

The workload of a grade is read from its typed measures: a count `per` a period becomes a rate
per year (`>= 2 per year` → 2, `= 1 per 3 years` → 1/3, `= 2..3` → its lower end, the floor the
office must staff), and a ratio (`sampling_ratio >= 3%`) the expected number drawn. Summed over
the population, old against new.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from . import nodes as n
from .validate import InputError

_PER_YEAR = {"day": Decimal(365), "week": Decimal(52), "month": Decimal(12), "quarter": Decimal(4),
             "year": Decimal(1)}


@dataclass
class PopulationDiff:
    evaluated: int = 0
    rejected: list = field(default_factory=list)        # (index, problems) for records either version refused
    transitions: Counter = field(default_factory=Counter)  # (old grade, new grade) → count
    changed: list = field(default_factory=list)         # (id or index, old, new) of every change
    workload_old: dict = field(default_factory=dict)    # measure → Decimal per year (or expected draws)
    workload_new: dict = field(default_factory=dict)

    @property
    def changed_share(self) -> Decimal:
        return Decimal(len(self.changed)) / self.evaluated if self.evaluated else Decimal(0)


def rule_changes(old: n.Policy, new: n.Policy) -> list[str]:
    """The policy's rules that differ, in words an officer reads (spans are ignored)."""
    out = []
    if old.effective != new.effective:
        out.append(f"effective date {old.effective} → {new.effective}")
    if tuple(g.name for g in old.grades) != tuple(g.name for g in new.grades):
        out.append("grades " + ", ".join(g.name for g in old.grades) + " → " + ", ".join(g.name for g in new.grades))
    _keyed(out, "input", {i.name: i for i in old.inputs}, {i.name: i for i in new.inputs})
    _keyed(out, "indicator", _indicators(old), _indicators(new))
    if old.grading != new.grading:
        out.append(f"grading: {_grading_text(old.grading)} → {_grading_text(new.grading)}")
    _keyed(out, "override", {o.name: o for o in old.overrides}, {o.name: o for o in new.overrides})
    om, nm = _measures(old), _measures(new)
    _keyed(out, "measure", om, nm)
    _keyed(out, "alert", {a.name: a for a in old.alerts}, {a.name: a for a in new.alerts})
    return out


def _keyed(out: list, what: str, old: dict, new: dict) -> None:
    for k in old:
        if k not in new:
            out.append(f"{what} `{k}` removed")
        elif old[k] != new[k]:
            out.append(f"{what} `{k}` changed (line {getattr(new[k], 'span', None) and new[k].span.line})")
    for k in new:
        if k not in old:
            out.append(f"{what} `{k}` added (line {new[k].span.line})")


def _indicators(p: n.Policy) -> dict:
    out = {}
    if p.indicators is None:
        return out
    for item in p.indicators.items:
        if isinstance(item, n.Group):
            for ind in item.indicators:
                out[ind.name] = (item.weight, ind)
        else:
            out[item.name] = (None, item)
    return {k: _Wrapped(v[1].span, v) for k, v in out.items()}


class _Wrapped:
    def __init__(self, span, value):
        self.span = span
        self.value = value

    def __eq__(self, other):
        return self.value == other.value


def _measures(p: n.Policy) -> dict:
    out = {}
    if p.measures is None:
        return out
    seen: Counter = Counter()
    for rule in p.measures.rules:
        for item in rule.items:
            name = item.measure if isinstance(item, n.MeasureValue) else item.name
            for g in rule.grades or tuple(x.name for x in p.grades):
                # a measure may have several `when` items for one grade: number them in order
                key = f"{g}: {name}"
                seen[key] += 1
                out[key if seen[key] == 1 else f"{key} (item {seen[key]})"] = item
    return out


def _grading_text(g) -> str:
    if isinstance(g, n.GradeByScore):
        return ", ".join(f"{c.grade} below {c.below}" if c.below is not None else f"{c.grade} otherwise"
                         for c in g.cutoffs)
    if isinstance(g, n.GradeFromInput):
        return "from an input"
    return "none"


def annual_workload(measures) -> dict:
    """A grade's measures → {measure: per-year count or expected share drawn}."""
    out = {}
    for m in measures:
        if m["type"] == "count" and m.get("op") in ("exact", "min", "soft_min", "range"):
            value = Decimal(str(m["min"] if m["op"] == "range" else m["value"]))
            per = m.get("per")
            if per is None:
                out[m["name"]] = value
            else:
                n_units = Decimal(per.get("n", per.get("max", 1)))
                out[m["name"]] = value * _PER_YEAR[per["unit"]] / n_units
        elif m["type"] == "ratio" and m.get("op") in ("exact", "min", "soft_min"):
            out[m["name"]] = Decimal(str(m["value"]))
    return out


def population_diff(old_ev, new_ev, records, as_of: dt.date, id_field: str | None = None) -> PopulationDiff:
    d = PopulationDiff()
    for idx, rec in enumerate(records):
        key = rec.get(id_field, idx) if id_field else idx
        body = {k: v for k, v in rec.items() if k != id_field} if id_field else rec
        try:
            a = old_ev.evaluate(body, as_of)
            b = new_ev.evaluate(body, as_of)
        except InputError as exc:
            d.rejected.append((key, exc.problems))
            continue
        d.evaluated += 1
        d.transitions[(a.grade, b.grade)] += 1
        if a.grade != b.grade:
            d.changed.append((key, a.grade, b.grade))
        for target, res in ((d.workload_old, a), (d.workload_new, b)):
            for name, v in annual_workload(res.measures).items():
                target[name] = target.get(name, Decimal(0)) + v
    return d

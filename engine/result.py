"""The result of one evaluation, and its JSON form.

Two tiers of explanation (STYLE §8): `decided_by` — the cutoff and overrides that produced the
grade — is always there and cheap; the full per-indicator explanation is rendered from the
recorded bin choices only when asked (`explain=True`), after evaluation, never in the hot loop.
"""
from __future__ import annotations

from decimal import Decimal

from . import nodes as n
from .semantics import round_half_up


def _prov(provenance) -> dict:
    out = {}
    for p in provenance:
        out.setdefault(p.kind, p.text)
    return out


def literal_json(v):
    if isinstance(v, n.Percent):
        return str(v.value.normalize())
    if isinstance(v, n.Number):
        d = v.value
        return int(d) if d == d.to_integral_value() else str(d.normalize())
    if isinstance(v, n.BoolLit):
        return v.value
    if isinstance(v, n.Symbol):
        return v.name
    if isinstance(v, n.Duration):
        return {"n": v.n, "unit": v.unit}
    if isinstance(v, n.Str):
        return v.value
    return None


def requirement_json(req: n.Requirement) -> dict:
    out = {"op": req.op, "value": literal_json(req.value)}
    if req.high is not None:
        out["min"] = literal_json(req.value)
        out["max"] = literal_json(req.high)
        del out["value"]
    if req.period is not None:
        p = req.period
        out["per"] = {"n": p.low, "unit": p.unit} if p.low == p.high else \
            {"min": p.low, "max": p.high, "unit": p.unit}
    return out


def measure_json(checked, item) -> dict:
    """A measure as typed JSON: name, type, label, the requirement and where it comes from."""
    if isinstance(item, n.MeasureAction):
        out = {"name": item.name, "type": "action", "text": item.text}
    else:
        decl = checked.measure_decls[item.measure]
        out = {"name": item.measure, "type": decl.type.kind}
        if decl.label:
            out["label"] = decl.label
        out.update(requirement_json(item.requirement))
    if item.condition is not None:
        out["when"] = source_text(checked.source, item.condition.span)
    out.update(_prov(item.provenance))
    return out


def source_text(source: str, span) -> str:
    """The policy text a span covers, on one line (to show a condition as it was written)."""
    lines = source.splitlines()
    if not span.line or span.line > len(lines):
        return ""
    if span.end_line == span.line:
        text = lines[span.line - 1][span.column - 1:span.end_column - 1]
    else:
        parts = [lines[span.line - 1][span.column - 1:]] + lines[span.line:span.end_line - 1] + \
            [lines[span.end_line - 1][:span.end_column - 1]]
        text = " ".join(x.strip() for x in parts)
    return " ".join(text.split())


OP_WORDS = {"exact": "=", "min": ">=", "soft_min": "generally >=", "max": "<=", "range": "="}


class Result:
    __slots__ = ("evaluator", "as_of", "score", "base_grade", "grade", "overrides", "alerts", "measures",
                 "collected", "total", "used", "_record", "_trace", "periods")

    def __init__(self, evaluator, as_of, score, base_grade, grade, overrides, alerts, measures,
                 collected, total, used, record, trace, periods=None):
        self.evaluator = evaluator
        self.as_of = as_of
        self.score: Decimal | None = score
        self.base_grade = base_grade
        self.grade = grade
        self.overrides = overrides          # fired Override nodes
        self.alerts = alerts                # fired Alert nodes
        self.measures = measures            # tuple of measure dicts (shared, read-only)
        self.collected = collected
        self.total = total
        self.used = used
        self._record = record
        self._trace = trace
        self.periods = periods or {}        # lasting override name → (since, until) dates

    # ---- summaries -------------------------------------------------------------------
    @property
    def checked(self):
        return self.evaluator.checked

    @property
    def completeness(self) -> dict:
        ratio = Decimal(1) if self.total == 0 else (Decimal(self.collected) / self.total)
        out = {"collected": self.collected, "total": self.total,
               "ratio": str(round_half_up(ratio, 4))}
        met = self.evaluator.completeness_met(self.collected, self.total)
        if met is not None:
            out["required"] = str(self.evaluator._required.normalize())
            out["met"] = met
        return out

    def decided_by(self) -> list[str]:
        c = self.checked
        out = []
        g = c.policy.grading
        if isinstance(g, n.GradeByScore):
            lower = None
            for cut in g.cutoffs:
                if cut.grade == self.base_grade:
                    rng = (f"{lower} <= score" if lower is not None else "score") + \
                        (f" < {cut.below}" if cut.below is not None else "")
                    out.append(f"score {self.score} → {self.base_grade} ({rng})")
                    break
                lower = cut.below
        else:
            ref = g.ref
            if isinstance(ref, n.Symbol):
                out.append(f"grade {self.base_grade}: the fixed base grade")
            else:
                src = ref.name if isinstance(ref, n.InputRef) else f"{ref.alias}.grade"
                out.append(f"grade {self.base_grade} taken from `{src}`")
        for o in self.overrides:
            if o.name in self.periods:
                since, until = self.periods[o.name]
                out.append(f"override `{o.name}` {o.effect} for {o.duration.n} {o.duration.unit} "
                           f"(set off {since.isoformat()}, holds until {until.isoformat()})")
            else:
                out.append(f"override `{o.name}` {o.effect}")
        return out

    # ---- JSON ------------------------------------------------------------------------
    def to_json(self, explain: bool | None = None) -> dict:
        c = self.checked
        out = {
            "policy": {"id": c.id, "version": c.version, "sha256": c.sha256,
                       "effective": c.policy.effective.isoformat() if c.policy.effective else None},
            "as_of": self.as_of.isoformat(),
            "score": None if self.score is None else str(self.score),
            "grade": self.grade,
            "grade_label": c.grade_labels.get(self.grade),
            "base_grade": self.base_grade,
            "decided_by": self.decided_by(),
            "overrides": [_override_json(o, self.periods.get(o.name)) for o in self.overrides],
            "measures": list(self.measures),
            "alerts": [_alert_json(a) for a in self.alerts],
            "completeness": self.completeness,
        }
        if self.used:
            out["used"] = {alias: {"policy": r.checked.id, "version": r.checked.version, "grade": r.grade,
                                   "score": None if r.score is None else str(r.score)}
                           for alias, r in self.used.items()}
        if explain if explain is not None else self._trace is not None:
            out["explanation"] = self.explanation()
        return out

    def explanation(self) -> dict:
        """Per indicator: input value, bin, points, weight, contribution; and what it rests on."""
        if self._trace is None:
            raise ValueError("evaluate with explain=True to get an explanation")
        from .explain import render
        return render(self)


def _override_json(o: n.Override, period=None) -> dict:
    out = {"name": o.name, "effect": str(o.effect).removeprefix("-> ")}
    if o.label:
        out["label"] = o.label
    if period is not None:
        out["for"] = {"n": o.duration.n, "unit": o.duration.unit}
        out["since"], out["until"] = period[0].isoformat(), period[1].isoformat()
    out.update(_prov(o.provenance))
    return out


def _alert_json(a: n.Alert) -> dict:
    out = {"name": a.name}
    if a.label:
        out["label"] = a.label
    out.update(_prov(a.provenance))
    return out

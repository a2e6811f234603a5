"""Run the test cases written beside a policy (`test "…" { given … expect … }`)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from . import nodes as n
from .result import requirement_json
from .semantics import round_half_up
from .validate import InputError

DEFAULT_AS_OF = dt.date(2025, 1, 1)


@dataclass
class Outcome:
    policy_id: str
    version: str
    name: str
    span: object
    failures: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def literal_to_json(v):
    """A test's literal as the JSON value a caller would send."""
    if isinstance(v, n.Number):
        d = v.value
        return int(d) if d == d.to_integral_value() else float(d)
    if isinstance(v, n.Percent):
        return float(v.value)
    if isinstance(v, n.BoolLit):
        return v.value
    if isinstance(v, (n.Symbol,)):
        return v.name
    if isinstance(v, n.Str):
        return v.value
    if isinstance(v, n.DateLit):
        return v.value.isoformat()
    if isinstance(v, n.DateList):
        return [d.isoformat() for d in v.dates]
    return None


def record_of(test: n.TestCase) -> dict:
    rec: dict = {}
    for g in test.givens:
        value = literal_to_json(g.value)
        if isinstance(g.value, n.MissingLit):
            continue
        target = rec
        for key in g.path[:-1]:
            target = target.setdefault(key, {})
        target[g.path[-1]] = value
    return rec


def run_case(evaluator, test: n.TestCase) -> Outcome:
    c = evaluator.checked
    out = Outcome(c.id, c.version, test.name, test.span)
    as_of = test.as_of or c.policy.effective or DEFAULT_AS_OF
    want_error = [e for e in test.expectations if e.kind == "error"]
    try:
        result = evaluator.evaluate(record_of(test), as_of, explain=True)
    except InputError as exc:
        if want_error:
            for e in want_error:
                if e.text not in str(exc):
                    out.failures.append(f"expected an error mentioning “{e.text}”, got: {exc}")
        else:
            out.failures.append(f"the record was rejected: {exc}")
        return out
    for e in test.expectations:
        msg = _check(result, e)
        if msg:
            out.failures.append(msg)
    return out


def _check(result, e: n.Expectation) -> str | None:
    k = e.kind
    if k == "error":
        return f"expected an error mentioning “{e.text}”, but got grade {result.grade}"
    if k == "grade":
        if result.grade != e.name:
            return f"expected grade {e.name}, got {result.grade} ({'; '.join(result.decided_by())})"
    elif k == "score":
        if result.score is None or result.score != e.low:
            return f"expected score {e.low}, got {result.score}"
    elif k == "score_range":
        if result.score is None or not (e.low <= result.score <= e.high):
            return f"expected a score in {e.low}..{e.high}, got {result.score}"
    elif k == "measure":
        got = next((m for m in result.measures if m["name"] == e.name and m["type"] != "action"), None)
        want = requirement_json(e.requirement)
        if got is None:
            return f"expected measure {e.name} {_req_text(want)}, but grade {result.grade} has no `{e.name}`"
        got_req = {key: got[key] for key in ("op", "value", "min", "max", "per") if key in got}
        if _norm(got_req) != _norm(want):
            return f"expected {e.name} {_req_text(want)}, got {_req_text(got_req)}"
    elif k == "action":
        if not any(m["type"] == "action" and m["name"] == e.name for m in result.measures):
            return f"expected action {e.name} for grade {result.grade}; it has: " + \
                (", ".join(m["name"] for m in result.measures if m["type"] == "action") or "none")
    elif k == "no_action":
        if any(m["type"] == "action" and m["name"] == e.name for m in result.measures):
            return f"expected no action {e.name} for grade {result.grade}, but it applies"
    elif k in ("alert", "no_alert"):
        fired = {a.name for a in result.alerts}
        if (e.name in fired) != (k == "alert"):
            return f"expected alert {e.name} {'to fire' if k == 'alert' else 'not to fire'}; fired: " + \
                (", ".join(sorted(fired)) or "none")
    elif k in ("override", "no_override"):
        fired = {o.name for o in result.overrides}
        if (e.name in fired) != (k == "override"):
            return f"expected override {e.name} {'to fire' if k == 'override' else 'not to fire'}; fired: " + \
                (", ".join(sorted(fired)) or "none")
        if e.until is not None:
            period = result.periods.get(e.name)
            if period is None:
                return f"expected override {e.name} to hold until {e.until}, but it does not last"
            if period[1] != e.until:
                return f"expected override {e.name} to hold until {e.until}, got until {period[1]} " \
                       f"(set off {period[0]})"
    elif k in ("completeness_met", "completeness_not_met"):
        c = result.completeness
        if "met" not in c:
            return "expected the completeness requirement to be checked, but the policy has no " \
                   "`require completeness`"
        if c["met"] != (k == "completeness_met"):
            return f"expected completeness {'met' if k == 'completeness_met' else 'not met'}: " \
                   f"{result.collected}/{result.total} against {c['required']}"
    elif k == "completeness":
        want = e.low
        ratio = Decimal(result.completeness["ratio"])
        if ratio != round_half_up(want, 4):
            return f"expected completeness {want}, got {result.collected}/{result.total}"
    return None


def _norm(req: dict) -> dict:
    def norm(v):
        if isinstance(v, str):
            try:
                return Decimal(v).normalize()
            except Exception:
                return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return Decimal(str(v)).normalize()
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v
    return {k: norm(v) for k, v in req.items()}


def _req_text(req: dict) -> str:
    op = {"exact": "=", "min": ">=", "soft_min": "generally >=", "max": "<=", "range": "="}[req["op"]]
    value = f"{req['min']}..{req['max']}" if req["op"] == "range" else str(req.get("value")).lower() \
        if isinstance(req.get("value"), bool) else str(req.get("value"))
    per = ""
    if "per" in req:
        p = req["per"]
        per = f" per {p.get('n', str(p.get('min')) + '..' + str(p.get('max')))} {p['unit']}"
    return f"{op} {value}{per}"


def run_tests(registry) -> list[Outcome]:
    outcomes = []
    for c in registry.all():
        ev = registry.evaluator(c.id, version=c.version)
        for t in c.policy.tests:
            outcomes.append(run_case(ev, t))
    return outcomes

"""Input validation: one error listing every problem, each with its field path.

Nothing is coerced: a count is a JSON whole number, a ratio a number in [0, 1], a bool
`true`/`false`, a date `YYYY-MM-DD`, events a list of dates (or of objects with a `date`).
JSON `null` means the same as an absent field: no data, handled by the input's missing rule.
The compiled evaluator checks the same rules inline (engine/compiler.py) and calls
`problems()` only when something is wrong, to say exactly what.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal

from . import nodes as n

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InputError(Exception):
    """The record cannot be evaluated; `problems` lists every reason."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems))


def problem(loc, type_: str, msg: str, value=None) -> dict:
    p = {"loc": list(loc), "type": type_, "msg": msg}
    if value is not None:
        p["input"] = value if isinstance(value, (str, int, float, bool)) else repr(value)[:80]
    return p


def parse_date(v):
    """A `YYYY-MM-DD` string → date, or None when it is not one."""
    if type(v) is not str or not _DATE.match(v):
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        return None


def parse_events(v):
    """A list of dates (or {"date": …} objects) → sorted tuple of dates, or None."""
    if type(v) is not list:
        return None
    out = []
    for e in v:
        if type(e) is dict:
            if set(e) - {"date", "note", "id"}:
                return None
            e = e.get("date")
        d = parse_date(e)
        if d is None:
            return None
        out.append(d)
    out.sort()
    return tuple(out)


def _is_number(v) -> bool:
    return (type(v) is int or type(v) is float) and math.isfinite(v)


def _as_written(v):
    """A JSON number as the decimal its text wrote (docs/semantics.md §1): 0.3 is 0.3, not the
    double 0.29999999999999998889…, so 0.3 is inside `number(0.3..0.7)`."""
    return Decimal(repr(v)) if type(v) is float else v


def value_ok(t: n.Type, v, grades: tuple) -> bool:
    """Is `v` (not None) a valid value of type `t`? The same rule the compiled code inlines."""
    k = t.kind
    if k == "count":
        return type(v) is int and v >= 0
    if k == "number":
        return _is_number(v) and (t.low is None or _as_written(v) >= t.low) and \
            (t.high is None or _as_written(v) <= t.high)
    if k == "ratio":
        return _is_number(v) and 0 <= v <= 1
    if k == "bool":
        return v is True or v is False
    if k == "enum":
        return type(v) is str and v in t.members
    if k == "grade":
        return type(v) is str and v in grades
    if k == "date":
        return parse_date(v) is not None
    if k == "events":
        return parse_events(v) is not None
    return False


def _explain(t: n.Type, v, grades: tuple) -> tuple[str, str]:
    k = t.kind
    if k == "count":
        if type(v) is int and v < 0:
            return "out_of_domain", "a count cannot be negative"
        return "wrong_type", "expected a whole number (a count)"
    if k == "number":
        if _is_number(v):
            return "out_of_domain", f"expected a number from {t.low} to {t.high}"
        return "wrong_type", "expected a number"
    if k == "ratio":
        if _is_number(v):
            return "out_of_domain", "a ratio is a number from 0 to 1 (15% is 0.15)"
        return "wrong_type", "expected a ratio: a number from 0 to 1"
    if k == "bool":
        return "wrong_type", "expected true or false"
    if k == "enum":
        if type(v) is str:
            return "not_a_member", "expected one of " + ", ".join(t.members)
        return "wrong_type", "expected one of " + ", ".join(t.members)
    if k == "grade":
        return ("not_a_member" if type(v) is str else "wrong_type"), "expected a grade: " + ", ".join(grades)
    if k == "date":
        return "wrong_type", "expected a date written YYYY-MM-DD"
    if k == "events":
        return "wrong_type", 'expected a list of dates, e.g. ["2024-01-05", "2024-03-01"]'
    return "wrong_type", "unexpected value"


def problems(checked, record, loc=()) -> list[dict]:
    """Every problem with `record` for the checked policy, each with its path."""
    if not isinstance(record, dict):
        return [problem(loc, "wrong_type", "expected an object with the enterprise's inputs")]
    out = []
    aliases = {u.alias: u for u in checked.policy.uses}
    known = set(checked.inputs) | set(aliases)
    for key in record:
        if key not in known:
            from .diagnostics import did_you_mean
            hint = did_you_mean(str(key), known)
            out.append(problem(loc + (key,), "unknown_field",
                               f"`{key}` is not an input of {checked.id}" + (f"; {hint}" if hint else "")))
    for name, decl in checked.inputs.items():
        v = record.get(name)
        if v is None:
            if decl.default is None and decl.missing.kind == "required":
                out.append(problem(loc + (name,), "missing_required",
                                   f"`{name}` is required (the policy gives no rule for a missing value)"))
            continue
        if not value_ok(decl.type, v, checked.grades):
            kind, msg = _explain(decl.type, v, checked.grades)
            out.append(problem(loc + (name,), kind, msg, v))
    for alias, use in aliases.items():
        sub = record.get(alias)
        if sub is None:
            out.append(problem(loc + (alias,), "missing_required",
                               f"`{alias}` holds the inputs of {use.policy_id}, which this policy uses"))
        elif not isinstance(sub, dict):
            out.append(problem(loc + (alias,), "wrong_type", f"expected an object with the inputs of {use.policy_id}"))
        elif alias in checked.used:
            out.extend(problems(checked.used[alias], sub, loc + (alias,)))
    return out

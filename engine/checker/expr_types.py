"""The type of a resolved expression. Shared by the checker passes and the backends."""
from __future__ import annotations

from dataclasses import dataclass

from .. import nodes as n

FUNCTIONS = {
    "min": "number", "max": "number",
    "years_since": "count", "months_since": "count", "days_since": "count",
}


@dataclass(frozen=True)
class T:
    kind: str                    # number bool enum grade date events duration symbol string unknown
    integer: bool = False        # number: whole numbers only (counts)
    members: tuple = ()          # enum members, or the grades of a grade scale
    symbol: str = ""             # the name of a bare symbol

    def __str__(self) -> str:
        if self.kind == "number":
            return "count" if self.integer else "number"
        if self.kind == "enum":
            return "enum(" + ", ".join(self.members) + ")"
        if self.kind == "symbol":
            return f"`{self.symbol}`"
        return self.kind


UNKNOWN = T("unknown")
BOOL = T("bool")
NUMBER = T("number")
COUNT = T("number", integer=True)


def a_(kind) -> str:
    """`a count`, `an enum(…)`: the article a message needs before a type."""
    text = str(kind)
    return ("an " if text[:1] in "aeiou" else "a ") + text


def input_type(t: n.Type, grades: tuple) -> T:
    k = t.kind
    if k == "count":
        return COUNT
    if k in ("number", "ratio"):
        return NUMBER
    if k == "enum":
        return T("enum", members=t.members)
    if k == "grade":
        return T("grade", members=grades)
    return T(k)


def type_of(e, inputs: dict, grades: tuple, used: dict) -> T:
    if isinstance(e, n.Number):
        return COUNT if e.value == e.value.to_integral_value() else NUMBER
    if isinstance(e, n.Percent):
        return NUMBER
    if isinstance(e, n.DateLit):
        return T("date")
    if isinstance(e, n.Str):
        return T("string")
    if isinstance(e, n.BoolLit):
        return BOOL
    if isinstance(e, n.Symbol):
        return T("symbol", symbol=e.name)
    if isinstance(e, n.Duration):
        return T("duration")
    if isinstance(e, n.InputRef):
        i = inputs.get(e.name)
        return input_type(i.type, grades) if i is not None else UNKNOWN
    if isinstance(e, n.GradeRef):
        return T("grade", members=grades)
    if isinstance(e, n.ScoreRef):
        return NUMBER
    if isinstance(e, n.UsedRef):
        checked = used.get(e.alias)
        if checked is None:
            return UNKNOWN      # `use` of an unknown policy: reported once, as unknown_policy
        if e.field == "grade":
            return T("grade", members=checked.grades if checked else ())
        return NUMBER if e.field == "score" else UNKNOWN
    if isinstance(e, (n.Compare, n.Member, n.IsMissing, n.And, n.Or, n.Not)):
        return BOOL
    if isinstance(e, n.Arith):
        lt, rt = type_of(e.left, inputs, grades, used), type_of(e.right, inputs, grades, used)
        return COUNT if (lt.integer and rt.integer and e.op != "/") else NUMBER
    if isinstance(e, n.Neg):
        return type_of(e.operand, inputs, grades, used)
    if isinstance(e, n.Call):
        kind = FUNCTIONS.get(e.function)
        if kind == "count":
            return COUNT
        if kind == "number":
            ts = [type_of(a, inputs, grades, used) for a in e.args]
            return COUNT if ts and all(t.integer for t in ts) else NUMBER
        return UNKNOWN
    if isinstance(e, n.CountEvents):
        return COUNT
    return UNKNOWN


def comparable(a: T, b: T) -> bool:
    """May `a` be compared with `b` for equality?"""
    if "unknown" in (a.kind, b.kind):
        return True
    if a.kind == "symbol" and b.kind == "symbol":
        return False
    if b.kind == "symbol":
        a, b = b, a
    if a.kind == "symbol":
        return b.kind in ("enum", "grade") and a.symbol in b.members
    if a.kind == "enum" and b.kind == "enum":
        return a.members == b.members
    if a.kind == "grade" and b.kind == "grade":
        return a.members == b.members
    return a.kind == b.kind and a.kind in ("number", "bool", "date", "string")


def ordered(a: T, b: T) -> bool:
    """May `a` be compared with `b` by < / <= / > / >=? Grades are ordered by risk."""
    if "unknown" in (a.kind, b.kind):
        return True
    if a.kind in ("grade", "symbol") and b.kind in ("grade", "symbol"):
        return comparable(a, b)
    return a.kind == b.kind and a.kind in ("number", "date")

"""Resolved expressions → small Python closures, for the per-record evaluator.

Semantics (docs/semantics.md §Conditions): three-valued logic as in SQL. A missing input makes
a comparison *unknown* (None); `and`/`or`/`not` follow Kleene's tables; an override or alert
fires only when its condition is *true*. Numbers are exact decimals: a float input is read as
the shortest decimal that round-trips it (what the JSON text said).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from . import nodes as n
from .semantics import whole_units_between, window_bounds


class Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = Missing()


class Env:
    """What an expression can see while one record is evaluated."""
    __slots__ = ("values", "as_of", "grade", "score", "used", "_windows")

    def __init__(self, values, as_of: dt.date, used: dict):
        self.values = values          # name → validated, parsed value, or MISSING
        self.as_of = as_of
        self.used = used              # alias → Result of the used policy
        self.grade = None             # base grade index (overrides), final grade (alerts)
        self.score = None             # Decimal score or None
        self._windows = {}

    def window(self, w: n.Window):
        key = (w.n, w.unit, w.offset_n, w.offset_unit)
        b = self._windows.get(key)
        if b is None:
            b = self._windows[key] = window_bounds(self.as_of, w.n, w.unit, w.offset_n, w.offset_unit)
        return b


def to_decimal(v):
    if v.__class__ is float:
        return Decimal(repr(v))
    if v.__class__ is int:
        return Decimal(v)
    return v


def compile_expr(e, grades: tuple, used_grades: dict, inputs: dict):
    """Compile a resolved expression into `f(env) -> value | None` (None = unknown)."""
    return _Compiler(grades, used_grades, inputs).expr(e)


class _Compiler:
    def __init__(self, grades: tuple, used_grades: dict, inputs: dict):
        self.grades = grades
        self.used_grades = used_grades
        self.inputs = inputs

    def expr(self, e):
        method = getattr(self, "c_" + type(e).__name__)
        return method(e)

    # ---- leaves ----------------------------------------------------------------------
    def c_Number(self, e):
        v = e.value
        return lambda env: v

    c_Percent = c_Number

    def c_DateLit(self, e):
        v = e.value
        return lambda env: v

    def c_Str(self, e):
        v = e.value
        return lambda env: v

    def c_BoolLit(self, e):
        v = e.value
        return lambda env: v

    def c_Symbol(self, e):
        name = e.name
        return lambda env: _Sym(name)

    def c_Duration(self, e):
        v = (e.n, e.unit)
        return lambda env: v

    def c_InputRef(self, e):
        name = e.name
        decl = self.inputs.get(name)
        if decl is not None and decl.type.kind == "grade":
            grades = self.grades

            def read_grade(env):
                v = env.values.get(name, MISSING)
                return None if v is MISSING else _Grade(grades.index(v), grades)
            return read_grade

        def read(env):
            v = env.values.get(name, MISSING)
            return None if v is MISSING else to_decimal(v)
        return read

    def c_GradeRef(self, e):
        grades = self.grades
        return lambda env: None if env.grade is None else _Grade(env.grade, grades)

    def c_ScoreRef(self, e):
        return lambda env: env.score

    def c_UsedRef(self, e):
        alias, field = e.alias, e.field
        grades = self.used_grades.get(alias, ())

        def read(env):
            r = env.used.get(alias)
            if r is None:
                return None
            if field == "grade":
                return None if r.grade is None else _Grade(grades.index(r.grade), grades)
            return r.score
        return read

    # ---- logic -----------------------------------------------------------------------
    def c_And(self, e):
        parts = [self.expr(x) for x in e.items]

        def f(env):
            unknown = False
            for p in parts:
                v = p(env)
                if v is False:
                    return False
                if v is None:
                    unknown = True
            return None if unknown else True
        return f

    def c_Or(self, e):
        parts = [self.expr(x) for x in e.items]

        def f(env):
            unknown = False
            for p in parts:
                v = p(env)
                if v is True:
                    return True
                if v is None:
                    unknown = True
            return None if unknown else False
        return f

    def c_Not(self, e):
        p = self.expr(e.operand)

        def f(env):
            v = p(env)
            return None if v is None else not v
        return f

    def c_IsMissing(self, e):
        negated = e.negated
        if isinstance(e.operand, n.UsedRef):
            alias = e.operand.alias
            return lambda env: (env.used.get(alias) is None) != negated
        name = e.operand.name
        return lambda env: (env.values.get(name, MISSING) is MISSING) != negated

    def c_Compare(self, e):
        left, right, op = self.expr(e.left), self.expr(e.right), _OPS[e.op]

        def f(env):
            a, b = left(env), right(env)
            if a is None or b is None:
                return None
            return op(_key(a, b), _key(b, a))
        return f

    def c_Member(self, e):
        operand = self.expr(e.operand)
        values = [self.expr(v) for v in e.values]

        def f(env):
            a = operand(env)
            if a is None:
                return None
            return any(_key(a, b) == _key(b, a) for b in (v(env) for v in values))
        return f

    # ---- arithmetic ------------------------------------------------------------------
    def c_Arith(self, e):
        left, right, op = self.expr(e.left), self.expr(e.right), e.op

        def f(env):
            a, b = left(env), right(env)
            if a is None or b is None:
                return None
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            return a * b
        return f

    def c_Neg(self, e):
        p = self.expr(e.operand)
        return lambda env: None if (v := p(env)) is None else -v

    def c_Call(self, e):
        args = [self.expr(a) for a in e.args]
        fn = e.function
        if fn in ("min", "max"):
            pick = min if fn == "min" else max

            def f(env):
                vals = [a(env) for a in args]
                return None if any(v is None for v in vals) else pick(vals)
            return f
        unit = {"years_since": "year", "months_since": "month", "days_since": "day"}[fn]
        arg = args[0]

        def since(env):
            d = arg(env)
            return None if d is None else Decimal(whole_units_between(d, env.as_of, unit))
        return since

    def c_CountEvents(self, e):
        name = e.events.name
        w = e.window

        def f(env):
            events = env.values.get(name, MISSING)
            if events is MISSING:
                return None
            start, end = env.window(w)
            return Decimal(count_between(events, start, end))
        return f


def count_between(sorted_dates, start: dt.date, end: dt.date) -> int:
    """Events e with start < e <= end, in a sorted list of dates."""
    import bisect
    return bisect.bisect_right(sorted_dates, end) - bisect.bisect_right(sorted_dates, start)


class _Sym:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


class _Grade:
    __slots__ = ("index", "grades")

    def __init__(self, index, grades):
        self.index = index
        self.grades = grades


def _key(a, other):
    """Make grades comparable with grade symbols by their risk order; enums by name."""
    if isinstance(a, _Grade):
        return a.index
    if isinstance(a, _Sym):
        if isinstance(other, _Grade):
            return other.grades.index(a.name)
        return a.name
    if isinstance(a, str) and isinstance(other, _Grade):
        return other.grades.index(a)
    return a


_OPS = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}

"""The policy AST: frozen dataclasses, one per construct of dsl/grammar.lark.

Each node carries a `span` that is left out of equality, so tests can build expected trees
without positions. Lark types never appear here (engine/lower.py converts).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional, Union

from .diagnostics import NO_SPAN, Span


def _span():
    return field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


# ---- literals -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Number:
    value: Decimal
    span: Span = _span()


@dataclass(frozen=True)
class Percent:
    """`12.5%`; `value` is the fraction (0.125)."""
    value: Decimal
    span: Span = _span()


@dataclass(frozen=True)
class DateLit:
    value: _dt.date
    span: Span = _span()


@dataclass(frozen=True)
class Str:
    value: str
    span: Span = _span()


@dataclass(frozen=True)
class BoolLit:
    value: bool
    span: Span = _span()


@dataclass(frozen=True)
class Symbol:
    """A bare name used as a value: an enum member or a grade."""
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Duration:
    n: int
    unit: str          # day | week | month | quarter | year
    span: Span = _span()


@dataclass(frozen=True)
class DateList:
    """Events given in a test case."""
    dates: tuple[_dt.date, ...]
    span: Span = _span()


@dataclass(frozen=True)
class MissingLit:
    span: Span = _span()


Literal = Union[Number, Percent, DateLit, Str, BoolLit, Symbol, Duration, DateList, MissingLit]


# ---- provenance ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Provenance:
    kind: str          # "basis" | "assumed"
    text: str
    span: Span = _span()


Prov = tuple[Provenance, ...]


# ---- types --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Type:
    kind: str                              # count number ratio bool enum date grade events duration
    members: tuple[str, ...] = ()          # enum members
    low: Optional[Decimal] = None          # number(low..high)
    high: Optional[Decimal] = None
    span: Span = _span()

    def __str__(self) -> str:
        if self.kind == "enum":
            return "enum(" + ", ".join(self.members) + ")"
        if self.kind == "number" and self.low is not None:
            return f"number({self.low}..{self.high})"
        return self.kind


# ---- expressions --------------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """A name as written: `x`, `general.grade`. The checker resolves it."""
    parts: tuple[str, ...]
    span: Span = _span()

    @property
    def text(self) -> str:
        return ".".join(self.parts)


# Resolved references (produced by the checker's name-resolution pass).
@dataclass(frozen=True)
class InputRef:
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class GradeRef:
    """The grade before overrides (`grade` in an override's condition)."""
    span: Span = _span()


@dataclass(frozen=True)
class ScoreRef:
    span: Span = _span()


@dataclass(frozen=True)
class UsedRef:
    """`general.grade` / `general.score`: a field of a used policy's result."""
    alias: str
    field: str         # grade | score
    span: Span = _span()


@dataclass(frozen=True)
class Compare:
    op: str            # = != < <= > >=
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Member:
    operand: "Expr"
    values: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class IsMissing:
    operand: "Expr"
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class And:
    items: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Or:
    items: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Not:
    operand: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Arith:
    op: str            # + - * /
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Call:
    function: str      # min, max, years_since, months_since, days_since
    args: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Window:
    """`last 3 months` (offset 0) or `3 months before last 3 months` (offset 3 months)."""
    n: int
    unit: str
    offset_n: int = 0
    offset_unit: str = "day"
    span: Span = _span()


@dataclass(frozen=True)
class CountEvents:
    events: "Expr"     # Ref before resolution, InputRef after
    window: Window
    span: Span = _span()


Expr = Union[Literal, Ref, InputRef, GradeRef, ScoreRef, UsedRef, Compare, Member, IsMissing,
             And, Or, Not, Arith, Neg, Call, CountEvents]


# ---- inputs -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Missing:
    kind: str                          # required | worst | exclude | points | default
    points: Optional[Decimal] = None
    span: Span = _span()


@dataclass(frozen=True)
class Input:
    name: str
    type: Type
    label: Optional[str] = None
    default: Optional[Literal] = None
    missing: Missing = Missing("required")
    provenance: Prov = ()
    span: Span = _span()


# ---- indicators ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MatchValue:
    value: Literal
    span: Span = _span()


@dataclass(frozen=True)
class MatchRange:
    """`a..b` (both ends in) or `a..<b` (upper end out)."""
    low: Decimal
    high: Decimal
    high_closed: bool = True
    span: Span = _span()


@dataclass(frozen=True)
class MatchCompare:
    op: str            # < <= > >= =
    value: Decimal
    span: Span = _span()


@dataclass(frozen=True)
class MatchOtherwise:
    span: Span = _span()


BinMatch = Union[MatchValue, MatchRange, MatchCompare, MatchOtherwise]


@dataclass(frozen=True)
class Bin:
    match: BinMatch
    points: Decimal
    span: Span = _span()


@dataclass(frozen=True)
class Bins:
    operand: Expr
    bins: tuple[Bin, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Arithmetic:
    expr: Expr
    span: Span = _span()


Scoring = Union[Bins, Arithmetic]


@dataclass(frozen=True)
class Indicator:
    name: str
    weight: Decimal                    # fraction of its group (or of the score when ungrouped)
    scoring: Scoring
    label: Optional[str] = None
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class Group:
    name: str
    weight: Decimal
    indicators: tuple[Indicator, ...]
    label: Optional[str] = None
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class Indicators:
    items: tuple[Union[Group, Indicator], ...]
    provenance: Prov = ()
    span: Span = _span()


# ---- grading ------------------------------------------------------------------------------

@dataclass(frozen=True)
class GradeDecl:
    name: str
    label: Optional[str] = None
    span: Span = _span()


@dataclass(frozen=True)
class Cutoff:
    grade: str
    below: Optional[Decimal]           # None = otherwise
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class GradeByScore:
    cutoffs: tuple[Cutoff, ...]
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class GradeFromInput:
    ref: Expr
    provenance: Prov = ()
    span: Span = _span()


# ---- overrides ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Effect:
    kind: str                          # set | at_least | at_most | raise | lower
    grade: Optional[str] = None
    steps: int = 0
    span: Span = _span()

    def __str__(self) -> str:
        return {"set": f"-> {self.grade}", "at_least": f"-> at least {self.grade}",
                "at_most": f"-> at most {self.grade}", "raise": f"-> raise {self.steps}",
                "lower": f"-> lower {self.steps}"}[self.kind]


@dataclass(frozen=True)
class Override:
    name: str                          # given, or `override#N` by position
    condition: Expr
    effect: Effect
    label: Optional[str] = None
    named: bool = True
    provenance: Prov = ()
    duration: Optional[Duration] = None    # `-> G for 1 quarter`: lasts from the triggering event
    span: Span = _span()


# ---- measures -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """`per year` (1..1 year), `per 3 years`, `per 2..3 years`."""
    low: int
    high: int
    unit: str
    span: Span = _span()


@dataclass(frozen=True)
class Requirement:
    op: str                            # exact | min | soft_min | max | range
    value: Literal
    high: Optional[Literal] = None     # range only
    period: Optional[Period] = None
    span: Span = _span()


@dataclass(frozen=True)
class MeasureDecl:
    name: str
    type: Type
    label: Optional[str] = None
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class MeasureValue:
    measure: str
    requirement: Requirement
    provenance: Prov = ()
    condition: Optional["Expr"] = None      # `when <condition>`: applies only when true
    span: Span = _span()


@dataclass(frozen=True)
class MeasureAction:
    name: str
    text: str
    provenance: Prov = ()
    condition: Optional["Expr"] = None      # `when <condition>`: applies only when true
    span: Span = _span()


@dataclass(frozen=True)
class GradeMeasures:
    grades: tuple[str, ...]            # empty = all grades
    items: tuple[Union[MeasureValue, MeasureAction], ...]
    span: Span = _span()


@dataclass(frozen=True)
class Measures:
    decls: tuple[MeasureDecl, ...]
    rules: tuple[GradeMeasures, ...]
    provenance: Prov = ()
    span: Span = _span()


# ---- alerts, requirements, plans ----------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    name: str
    condition: Expr
    label: Optional[str] = None
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class Require:
    kind: str                          # completeness
    minimum: Decimal
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class PlanQuota:
    share: Decimal
    period: Optional[Period] = None
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class Plan:
    name: str
    items: tuple[PlanQuota, ...]
    label: Optional[str] = None
    provenance: Prov = ()
    span: Span = _span()


# ---- tests --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Given:
    path: tuple[str, ...]              # (input,) or (alias, input) for a used policy
    value: Literal
    span: Span = _span()


@dataclass(frozen=True)
class Expectation:
    kind: str        # grade score score_range measure action no_action alert no_alert override no_override
                     # completeness completeness_met completeness_not_met error
    name: Optional[str] = None
    low: Optional[Decimal] = None
    high: Optional[Decimal] = None
    requirement: Optional[Requirement] = None
    text: Optional[str] = None
    until: Optional[_dt.date] = None       # override_until: the last day a lasting override holds
    span: Span = _span()


@dataclass(frozen=True)
class TestCase:
    name: str
    givens: tuple[Given, ...]
    expectations: tuple[Expectation, ...]
    as_of: Optional[_dt.date] = None
    span: Span = _span()

    __test__ = False   # not a pytest class


# ---- the policy ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Use:
    policy_id: str
    alias: str
    span: Span = _span()


@dataclass(frozen=True)
class Policy:
    id: str                            # jurisdiction.domain
    title: Optional[str] = None
    version: Optional[str] = None
    effective: Optional[_dt.date] = None
    basis: Optional[str] = None
    precision: int = 2
    grades: tuple[GradeDecl, ...] = ()
    grades_provenance: Prov = ()
    uses: tuple[Use, ...] = ()
    inputs: tuple[Input, ...] = ()
    indicators: Optional[Indicators] = None
    grading: Optional[Union[GradeByScore, GradeFromInput]] = None
    overrides: tuple[Override, ...] = ()
    measures: Optional[Measures] = None
    alerts: tuple[Alert, ...] = ()
    requires: tuple[Require, ...] = ()
    plans: tuple[Plan, ...] = ()
    tests: tuple[TestCase, ...] = ()
    span: Span = _span()

    @property
    def jurisdiction(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def domain(self) -> str:
        return self.id.split(".", 1)[-1]

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


def walk(node):
    """`node` and every node below it, depth first; tuples are looked into, spans left out.
    The one traversal the checker passes and backends share to find references in a tree."""
    if isinstance(node, tuple):
        for x in node:
            yield from walk(x)
        return
    if not hasattr(node, "__dataclass_fields__"):
        return
    yield node
    for f in node.__dataclass_fields__:
        if f != "span":
            yield from walk(getattr(node, f))


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


# ---- population rules: plans, draws, group rules (docs/semantics.md §Draws) -----------------

@dataclass(frozen=True)
class PlanQuota:
    """`quota 25% of population per year`, or `quota 10% of plan 区市局检查` (the other plan's
    sample is the population drawn from)."""
    share: Decimal
    period: Optional[Period] = None
    provenance: Prov = ()
    base_plan: Optional[str] = None
    span: Span = _span()


@dataclass(frozen=True)
class Rounding:
    """How a fractional quota becomes a whole number of enterprises: up | down | nearest."""
    mode: str
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class Exclude:
    """`exclude where <condition>`: records for which it is true are not drawn (still counted
    in the quota's base)."""
    condition: "Expr"
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class Priority:
    """`first where <condition>`: one tier of the priority list (重点名单), in written order."""
    condition: "Expr"
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class OrderKey:
    kind: str                          # input | grade | score | random
    name: Optional[str] = None         # the input, for kind input
    descending: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class PriorityOrder:
    """`order by a desc, b, random`: the order of priority candidates when they exceed the quota."""
    keys: tuple[OrderKey, ...]
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class RandomFill:
    """`then random`: the rest of the quota is drawn uniformly from the other eligible records."""
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class CheckItem:
    name: str
    tags: tuple[str, ...]
    label: Optional[str] = None
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class MatchItems:
    """`match items by tags { … }`: only enterprises carrying a tag of some item are drawn, and
    each drawn enterprise is given the items its tags match."""
    items: tuple[CheckItem, ...]
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class Assign:
    """`assign 2 officers avoid district at most 30 per officer`."""
    officers: int
    avoid_district: bool = False
    within_district: bool = False
    load_cap: Optional[int] = None
    provenance: Prov = ()
    span: Span = _span()


class _Items:
    """Typed access to a block's items (kept in written order for the checker)."""

    def _all(self, kind) -> tuple:
        return tuple(i for i in self.items if isinstance(i, kind))

    def _one(self, kind):
        found = self._all(kind)
        return found[0] if found else None

    @property
    def rounding(self) -> Optional[Rounding]:
        return self._one(Rounding)

    @property
    def match(self) -> Optional[MatchItems]:
        return self._one(MatchItems)

    @property
    def assign(self) -> Optional[Assign]:
        return self._one(Assign)


@dataclass(frozen=True)
class Plan(_Items):
    name: str
    items: tuple                       # PlanQuota Rounding Exclude Priority PriorityOrder RandomFill MatchItems Assign
    label: Optional[str] = None
    provenance: Prov = ()
    span: Span = _span()

    @property
    def quota(self) -> Optional[PlanQuota]:
        return self._one(PlanQuota)

    @property
    def excludes(self) -> tuple:
        return self._all(Exclude)

    @property
    def priorities(self) -> tuple:
        return self._all(Priority)

    @property
    def order(self) -> Optional[PriorityOrder]:
        return self._one(PriorityOrder)

    @property
    def fill(self) -> Optional[RandomFill]:
        return self._one(RandomFill)


@dataclass(frozen=True)
class DrawMode:
    kind: str                          # per_grade | combined | batches
    batches: int = 0
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class DrawGrades:
    grades: tuple[str, ...]
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class DrawRatio:
    measure: str
    provenance: Prov = ()
    span: Span = _span()


@dataclass(frozen=True)
class Draw(_Items):
    """A stratified draw (双随机): each grade's share comes from the policy's ratio measure."""
    name: str
    items: tuple                       # DrawMode DrawGrades DrawRatio Rounding MatchItems Assign
    label: Optional[str] = None
    provenance: Prov = ()
    span: Span = _span()

    @property
    def mode(self) -> Optional[DrawMode]:
        return self._one(DrawMode)

    @property
    def grades(self) -> Optional[DrawGrades]:
        return self._one(DrawGrades)

    @property
    def ratio(self) -> Optional[DrawRatio]:
        return self._one(DrawRatio)


@dataclass(frozen=True)
class GroupCondition:
    """`count(members where <cond>) >= 2` or `share(members where <cond>) >= 50%`."""
    kind: str                          # count | share
    condition: Optional["Expr"]        # None: every member
    op: str                            # = != < <= > >=
    value: Decimal                     # a count, or a share as a fraction
    span: Span = _span()


@dataclass(frozen=True)
class GroupRule:
    """`group by chain_hq when … -> action 约谈总部 "…"`: an action on each group whose members
    meet every condition."""
    key: str
    conditions: tuple[GroupCondition, ...]
    action: str
    text: str
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
    draws: tuple[Draw, ...] = ()
    group_rules: tuple[GroupRule, ...] = ()
    tests: tuple[TestCase, ...] = ()
    span: Span = _span()

    @property
    def jurisdiction(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def domain(self) -> str:
        return self.id.split(".", 1)[-1]

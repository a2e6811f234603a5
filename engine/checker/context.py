"""What the checker passes share, and what they hand to the backends."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional

from .. import nodes as n
from ..diagnostics import Diagnostics


@dataclass(frozen=True)
class Interval:
    """A numeric interval; None bounds are infinite."""
    low: Optional[Decimal]
    low_closed: bool
    high: Optional[Decimal]
    high_closed: bool

    def __str__(self) -> str:
        lo = "-∞" if self.low is None else str(self.low)
        hi = "∞" if self.high is None else str(self.high)
        return f"{'[' if self.low_closed else '('}{lo}, {hi}{']' if self.high_closed else ')'}"


@dataclass(frozen=True)
class BinTable:
    """An indicator's bins normalised over its input's domain: what every backend compiles.

    numeric: `intervals` are disjoint, sorted and cover the domain; `points[i]` belongs to
    `intervals[i]` and `source[i]` is the index of the written bin it came from.
    categorical (bool, enum, grade): `mapping` from value to (points, bin index)."""
    kind: str                                  # numeric | categorical
    intervals: tuple[Interval, ...] = ()
    points: tuple[Decimal, ...] = ()
    source: tuple[int, ...] = ()
    mapping: tuple[tuple[object, Decimal, int], ...] = ()
    integer: bool = False                      # the domain is whole numbers (count)


@dataclass(frozen=True)
class IndicatorSpec:
    """An indicator flattened out of its group, with the weight it carries in the score."""
    indicator: n.Indicator
    group: Optional[n.Group]
    weight: Decimal                            # group weight × indicator weight
    inputs: tuple[str, ...]                    # inputs it reads (for missing values, completeness)
    table: Optional[BinTable]                  # None for arithmetic scoring
    min_points: Decimal
    max_points: Decimal

    @property
    def name(self) -> str:
        return self.indicator.name


@dataclass
class Context:
    policy: n.Policy
    diags: Diagnostics
    used: dict                                 # alias → CheckedPolicy of the used policy
    known_policies: dict                       # id → CheckedPolicy (for `use`)
    inputs: dict = field(default_factory=dict)
    grade_names: tuple = ()
    indicators: list = field(default_factory=list)
    tables: dict = field(default_factory=dict)     # indicator name → BinTable
    score_range: Optional[tuple] = None
    measures_by_grade: dict = field(default_factory=dict)
    measure_decls: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedPolicy:
    """The checked, resolved policy: the only thing the backends accept."""
    policy: n.Policy
    source: str
    sha256: str
    file: str
    grades: tuple[str, ...]
    grade_labels: dict
    inputs: dict
    indicators: tuple[IndicatorSpec, ...]
    used: dict
    measures_by_grade: dict
    measure_decls: dict
    diagnostics: tuple

    @property
    def id(self) -> str:
        return self.policy.id

    @property
    def version(self) -> str:
        return self.policy.version or ""

    @property
    def precision(self) -> int:
        return self.policy.precision

    def grade_index(self, grade: str) -> int:
        return self.grades.index(grade)

    @property
    def assumptions(self) -> list:
        return [d for d in self.diagnostics if d.code == "assumption"]

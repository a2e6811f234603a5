"""The exact semantics every backend shares (docs/semantics.md is the prose of this module).

Scores are computed in scaled integers, so a score that lands on a cutoff grades the same way
in Python, DuckDB, Polars and PostgreSQL. One rounding rule: half-up (away from zero) to the
policy's declared `precision`.
"""
from __future__ import annotations

import calendar
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal


def decimal_places(d: Decimal) -> int:
    exp = d.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def scaled(d: Decimal, scale: int) -> int:
    """`d` as an integer count of 10^-scale units; exact (the caller chose `scale` large enough)."""
    v = d.scaleb(scale)
    i = int(v)
    assert v == i, f"{d} has more than {scale} decimals"
    return i


def div_round_half_up(num: int, den: int) -> int:
    """round(num / den) with halves away from zero, exactly, for den > 0."""
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return q if num >= 0 else -q


def round_half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def score_from_total(total: int, scale: int, precision: int) -> int:
    """A score total in 10^-scale units → the rounded score in 10^-precision units."""
    if scale <= precision:
        return total * 10 ** (precision - scale)
    return div_round_half_up(total, 10 ** (scale - precision))


def renormalised_score(total: int, scale: int, weight_sum: int, weight_scale: int, precision: int) -> int:
    """score = (total / 10^scale) / (weight_sum / 10^weight_scale), rounded to `precision` places.

    Used when some indicators were left out (`missing exclude`): their weight is spread
    proportionally over the indicators that remain."""
    num = total * 10 ** (weight_scale + precision)
    den = weight_sum * 10 ** scale
    return div_round_half_up(num, den)


def score_scales(specs, inputs: dict, precision: int) -> tuple[int, int]:
    """(weight scale, contribution scale): the decimal places that make every weight, and every
    weight × points an indicator can give, a whole number (docs/semantics.md §2). One rule for
    every backend, so they all sum the same integers."""
    weight_scale = max((decimal_places(s.weight) for s in specs), default=0)
    point_scale = 0
    for s in specs:
        pts = list(s.table.points) if s.table and s.table.kind == "numeric" else \
            [p for _, p, _ in s.table.mapping] if s.table else []
        pts += [i.missing.points for i in (inputs.get(x) for x in s.inputs)
                if i is not None and i.missing.kind == "points"]
        pts += [s.max_points]
        point_scale = max([point_scale] + [decimal_places(p) for p in pts])
        if s.table is None:          # `points = …` is rounded to the policy's precision
            point_scale = max(point_scale, precision)
    return weight_scale, weight_scale + point_scale


def as_decimal_score(units: int, precision: int) -> Decimal:
    return Decimal(units).scaleb(-precision)


# ---- calendar ---------------------------------------------------------------------------

def add_months(d: dt.date, months: int) -> dt.date:
    """Calendar months; the day is clamped to the month's end (2024-03-31 - 1 month = 2024-02-29).
    A date beyond the calendar (before year 1, after 9999) is clamped to its first or last day,
    so `last 999999999 years` is simply every event."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    if year < dt.MINYEAR:
        return dt.date.min
    if year > dt.MAXYEAR:
        return dt.date.max
    day = min(d.day, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day)


def shift(d: dt.date, n: int, unit: str) -> dt.date:
    """`d` moved back by n units (n > 0 moves into the past)."""
    if unit in ("day", "week"):
        days = n * (7 if unit == "week" else 1)
        try:
            return d - dt.timedelta(days=days)
        except OverflowError:
            return dt.date.min if days > 0 else dt.date.max
    if unit == "month":
        return add_months(d, -n)
    if unit == "quarter":
        return add_months(d, -3 * n)
    if unit == "year":
        return add_months(d, -12 * n)
    raise ValueError(unit)


def window_bounds(as_of: dt.date, n: int, unit: str, offset_n: int = 0, offset_unit: str = "day"):
    """The window `last n unit` (offset 0) or `n unit before last offset_n offset_unit`.

    Returns (start, end): an event dated e is inside when start < e <= end. So `last 12 months`
    as of 2024-06-30 holds events after 2023-06-30 up to and including 2024-06-30."""
    end = shift(as_of, offset_n, offset_unit) if offset_n else as_of
    start = shift(end, n, unit)
    return start, end


def last_day_held(since: dt.date, n: int, unit: str) -> dt.date:
    """The last as-of day D whose window `last n unit` still holds `since` (shift(D) < since ≤ D):
    the last day of an override that lasts `n unit` from the event of `since`."""
    d = since + dt.timedelta(days=7 * n if unit == "week" else n if unit == "day" else
                             31 * n * (3 if unit == "quarter" else 12 if unit == "year" else 1))
    while shift(d, n, unit) >= since:
        d -= dt.timedelta(days=1)
    return d


def whole_units_between(start: dt.date, end: dt.date, unit: str) -> int:
    """Completed whole units from start to end (years_since, months_since, days_since)."""
    if unit == "day":
        return (end - start).days
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if add_months(start, months) > end:
        months -= 1
    return months if unit == "month" else months // 12

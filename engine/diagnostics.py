"""Diagnostics are values: a stable code, a severity, a span, a short message and a help line.

Every stage returns them instead of raising; only the boundary (CLI, API) decides what an
error means for the caller. Codes are stable slugs: tools and tests match on them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True, order=True)
class Span:
    file: str = "<policy>"
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NO_SPAN = Span()


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span = NO_SPAN
    help: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "help": self.help,
        }


# Every code the engine can emit, with what it means. tests/test_diagnostic_codes.py checks
# that each one has a test asserting its code, message and span.
CODES: dict[str, str] = {
    "syntax_error": "the text does not follow the grammar",
    "invalid_literal": "a literal (date, percentage, number) is malformed",
    "duplicate_header": "a header item (title, version, effective, precision) is given twice",
    "missing_header": "a header item every policy needs is absent",
    "duplicate_name": "two items of the same kind share a name",
    "no_grades": "the policy declares no grades",
    "no_grading": "the policy says neither `grade by score` nor `grade = <input>`",
    "unknown_name": "a name that is neither an input, a grade, an enum member nor a used policy",
    "unknown_input": "a name used where an input is expected is not declared",
    "unknown_grade": "a grade that is not in the policy's `grades`",
    "unknown_measure": "a measure that is not declared in `measures`",
    "unknown_alert": "a test names an alert the policy does not define",
    "unknown_override": "a test names an override the policy does not define",
    "unknown_function": "a call to a function the language does not have",
    "unknown_policy": "`use` names a policy that is not in the set being checked",
    "use_cycle": "policies use each other in a cycle",
    "type_mismatch": "a value or expression has the wrong type for where it is used",
    "unsupported_division": "division is not part of the language (it would make scores inexact)",
    "bins_gap": "some values of an indicator's input fall in no bin",
    "bins_overlap": "a value of an indicator's input falls in two bins",
    "bin_empty": "a bin that can never match",
    "enum_not_covered": "an enum indicator gives no points for some members",
    "weights_sum": "weights within a group, or of the groups, do not add up to 100%",
    "cutoffs_not_monotone": "grade cutoffs do not rise from the lowest-risk grade to the highest",
    "cutoff_order": "cutoffs do not list the grades in their declared order",
    "grade_unreachable": "no score and no override can produce this grade",
    "grade_without_measures": "a grade has no measures",
    "measure_type": "a measure's value does not match the measure's declared type",
    "measure_duplicate": "a grade sets the same measure twice",
    "override_no_effect": "an override can never change a grade",
    "override_duration": "an override that lasts (`for <duration>`) has a condition no event can set off",
    "missing_points_range": "missing-value points are outside the points an indicator can give",
    "empty_window": "an event window of zero length",
    "test_unknown_input": "a test case gives a value for an input the policy does not declare",
    "test_unknown_grade": "a test case expects a grade the policy does not declare",
    "test_bad_value": "a test case gives a value of the wrong type for its input",
    "untraced_number": "a number with neither `basis` nor `assumed`",
    "assumption": "a value the source documents do not state (listed so a reader can tell)",
    # population rules (plans, draws, group rules): engine/checker/population.py
    "share_range": "a quota or share is not more than 0% and at most 100% of its population",
    "rounding_missing": "a quota or draw whose size can be fractional does not declare its rounding",
    "rounding_below_minimum": "a rounding rule that can draw fewer than a grade's minimum ratio",
    "plan_incomplete": "a plan lacks its quota or a way to choose, or has an order with nothing to order",
    "priority_unordered": "a priority list does not say which candidates are drawn when it exceeds the quota",
    "unknown_plan": "`quota … of plan X` names no plan declared before it",
    "draw_incomplete": "a draw lacks its mode or its ratio measure, or dispatches in fewer than two batches",
    "draw_ratio_type": "a draw's ratio measure is not a ratio, or a grade sets it as a maximum",
    "draw_grade_without_ratio": "a draw covers a grade that has no value of the draw's ratio measure",
    "population_clause_repeated": "a plan or draw gives the same clause twice",
    "assign_invalid": "officer assignment rules that contradict each other or admit no officer",
}


def error(code: str, message: str, span: Span = NO_SPAN, help: str = "") -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, help)


def warning(code: str, message: str, span: Span = NO_SPAN, help: str = "") -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, span, help)


def info(code: str, message: str, span: Span = NO_SPAN, help: str = "") -> Diagnostic:
    return Diagnostic(code, Severity.INFO, message, span, help)


def did_you_mean(name: str, candidates) -> str:
    """A 'did you mean `x`?' help line, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


def sort_diagnostics(diags) -> list[Diagnostic]:
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(diags, key=lambda d: (d.span.file, d.span.line, d.span.column, order[d.severity], d.code))


# ---- two renderers of one data shape ------------------------------------------------------

def render_text(diag: Diagnostic, source: str | None = None) -> str:
    """For people: `file:line:col: error[code]: message`, the source line, a caret, the help."""
    head = f"{diag.span}: {diag.severity.value}[{diag.code}]: {diag.message}"
    lines = [head]
    if source is not None and diag.span.line > 0:
        text_lines = source.splitlines()
        if diag.span.line <= len(text_lines):
            src = text_lines[diag.span.line - 1]
            gutter = f"{diag.span.line:>4} | "
            lines.append(gutter + src)
            width = 1
            if diag.span.end_line == diag.span.line and diag.span.end_column > diag.span.column:
                width = diag.span.end_column - diag.span.column
            pad = _display_width(src[: max(diag.span.column - 1, 0)])
            caret_width = _display_width(src[diag.span.column - 1: diag.span.column - 1 + width]) or 1
            lines.append(" " * len(gutter) + " " * pad + "^" * caret_width)
    if diag.help:
        lines.append(f"  help: {diag.help}")
    return "\n".join(lines)


def _display_width(text: str) -> int:
    """Terminal columns: CJK characters take two, so the caret lands under the right one."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render_github(diag: Diagnostic) -> str:
    """GitHub Actions workflow command, so CI annotates the changed policy line."""
    kind = {"error": "error", "warning": "warning", "info": "notice"}[diag.severity.value]
    msg = diag.message + (f" ({diag.help})" if diag.help else "")
    msg = msg.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    # a property value also escapes `:` and `,` (they delimit properties): a file named
    # `a,b.rules` must not end the `file=` property early
    file = diag.span.file.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A") \
        .replace(":", "%3A").replace(",", "%2C")
    return (f"::{kind} file={file},line={diag.span.line},col={diag.span.column},"
            f"title={diag.code}::{msg}")


def render_json(diags) -> str:
    return json.dumps([d.to_json() for d in diags], ensure_ascii=False, indent=2)


@dataclass
class Diagnostics:
    """A collector passed through the stages."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, d: Diagnostic) -> None:
        self.items.append(d)

    def error(self, code, message, span=NO_SPAN, help="") -> None:
        self.items.append(error(code, message, span, help))

    def warning(self, code, message, span=NO_SPAN, help="") -> None:
        self.items.append(warning(code, message, span, help))

    def info(self, code, message, span=NO_SPAN, help="") -> None:
        self.items.append(info(code, message, span, help))

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

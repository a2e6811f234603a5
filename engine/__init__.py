"""riskrules engine: parse → lower → check → compile, and the façade that wires them.

    checked, diagnostics = engine.compile_text(text, "policies/x/general.rules")
    evaluator = engine.evaluator(checked)
    result = evaluator.evaluate({"penalties_3y": 2}, as_of=date(2024, 6, 30), explain=True)
    result.to_json()
"""
from __future__ import annotations

from .checker.context import CheckedPolicy
from .compiler import Evaluator
from .diagnostics import Diagnostic, Severity, Span
from .loader import PolicyNotFound, Registry, compile_text, load_paths
from .validate import InputError

__all__ = ["CheckedPolicy", "Diagnostic", "Evaluator", "InputError", "PolicyNotFound", "Registry", "Severity",
           "Span", "compile_text", "evaluator", "load_paths"]


def evaluator(checked: CheckedPolicy) -> Evaluator:
    return Evaluator(checked)

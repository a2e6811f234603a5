"""Where the per-record evaluator and docs/semantics.md disagreed; the batch backends follow
the document, and these tests hold the evaluator to it too."""
import datetime as dt

import pytest

from engine import compile_text
from engine.compiler import Evaluator
from engine.validate import InputError

AS_OF = dt.date(2024, 6, 30)

GRADE_INPUT = """
policy t.grade_input {
  version "1" effective 2020-01-01
  grades A, B
  input provincial : grade missing exclude
  grade = provincial
}
"""


def _evaluator(text):
    checked, diags = compile_text(text)
    assert checked is not None, [d.message for d in diags if d.is_error]
    return Evaluator(checked)


def test_a_missing_grade_input_is_an_input_error_not_a_crash():
    ev = _evaluator(GRADE_INPUT)
    assert ev.evaluate({"provincial": "B"}, AS_OF).grade == "B"
    with pytest.raises(InputError) as exc:
        ev.evaluate({}, AS_OF)
    assert [(p["loc"], p["type"]) for p in exc.value.problems] == [(["provincial"], "missing_required")]

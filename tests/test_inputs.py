"""Input validation, case by case: tests/cases/inputs/*.yaml. Each rejected record must raise one
InputError listing exactly the wanted problems (path and type), with the explanation off and on."""
import pytest

from _cases import evaluate_case, params


@pytest.mark.parametrize("case, data", params("inputs"))
def test_input_validation(case, data, tmp_path):
    evaluate_case(case, data, tmp_path)

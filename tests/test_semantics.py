"""What a policy means, case by case (docs/semantics.md): tests/cases/semantics/*.yaml.

Each case evaluates a record with the explanation off and on; both must give what is wanted."""
import pytest

from _cases import evaluate_case, params


@pytest.mark.parametrize("case, data", params("semantics"))
def test_semantics(case, data, tmp_path):
    evaluate_case(case, data, tmp_path)

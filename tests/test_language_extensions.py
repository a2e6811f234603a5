"""Language extensions made for faithful policies (docs/semantics.md, sections at the end):
tests/cases/extensions/*.yaml — evaluation cases (`given`/`want`) and checker cases (`want` a
list of diagnostics)."""
import pytest

from _cases import assert_diagnostics, diagnostics_of, evaluate_case, params


@pytest.mark.parametrize("case, data", params("extensions"))
def test_extension(case, data, tmp_path):
    if isinstance(case.get("want"), list):
        assert_diagnostics(case, diagnostics_of(case, data, tmp_path))
    else:
        evaluate_case(case, data, tmp_path)

"""Every diagnostic, asserted by code, message and span: tests/cases/diagnostics/<code>.yaml and
tests/cases/checker/*.yaml. A case lists *all* the errors and warnings its policy gets, so each
one also proves that nothing spurious (a cascade, a duplicate) comes out."""
import pytest

from _cases import assert_diagnostics, diagnostics_of, params


@pytest.mark.parametrize("case, data", params("diagnostics", "checker"))
def test_diagnostics(case, data, tmp_path):
    assert_diagnostics(case, diagnostics_of(case, data, tmp_path))

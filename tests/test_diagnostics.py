"""Every diagnostic, asserted by code, message and span: tests/cases/diagnostics/<code>.yaml and
tests/cases/checker/*.yaml. A case lists *all* the errors and warnings its policy gets, so each
one also proves that nothing spurious (a cascade, a duplicate) comes out."""
import pytest

from _cases import assert_diagnostics, diagnostics_of, params


@pytest.mark.parametrize("case, data", params("diagnostics", "checker"))
def test_diagnostics(case, data, tmp_path):
    assert_diagnostics(case, diagnostics_of(case, data, tmp_path))


def test_a_file_that_is_not_utf8_is_reported_not_raised(tmp_path):
    from engine import load_paths

    path = tmp_path / "gbk.rules"
    path.write_bytes('policy test.gbk { title "威海市食品生产企业" }'.encode("gbk"))
    (source,) = load_paths([tmp_path])
    (d,) = source.diagnostics
    assert (d.code, d.message, d.span.file, d.span.line, d.span.column) == \
        ("syntax_error", "the file is not UTF-8 text", str(path), 1, 1)
    assert d.help == "save it as UTF-8"
    assert source.checked is None


def test_conditions_nested_beyond_reason_are_a_diagnostic_not_a_crash():
    from engine import compile_text

    depth = 1000
    text = ('policy test.deep {\n  version "1"\n  effective 2024-01-01\n  grades A, B\n'
            '  input penalties : count\n  override ' + "(" * depth + "penalties > 1" + ")" * depth + " -> B\n}\n")
    checked, diags = compile_text(text, "deep.rules")
    assert checked is None
    assert [(d.code, d.message, d.span.line, d.span.column) for d in diags] == \
        [("syntax_error", "the policy is nested too deeply to read", 1, 1)]

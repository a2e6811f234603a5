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


def test_a_lasting_override_reports_its_period_in_json():
    import datetime as dt

    from _cases import CASES, read
    from engine import compile_text
    from engine.compiler import Evaluator

    data = read(CASES / "extensions" / "override_for.yaml")
    checked, _ = compile_text(data["policy"], "policy.rules")
    result = Evaluator(checked).evaluate({"failed_tests": ["2024-01-01", "2024-01-15"]}, dt.date(2024, 3, 1))
    (override,) = result.to_json()["overrides"]
    assert override == {"name": "季度禁售", "effect": "禁售", "label": "一个月两次快检不合格的业户实行季度禁售",
                        "for": {"n": 1, "unit": "quarter"}, "since": "2024-01-15", "until": "2024-04-14",
                        "assumed": "test policy"}


def test_a_conditional_measure_shows_its_condition_in_json():
    import datetime as dt

    from _cases import CASES, read
    from engine import compile_text
    from engine.compiler import Evaluator

    data = read(CASES / "extensions" / "measure_when.yaml")
    checked, _ = compile_text(data["policy"], "policy.rules")
    result = Evaluator(checked).evaluate({"provincial_grade": "A", "declared_unchanged": True,
                                          "store_type": "乙类非处方药店", "complaints": []}, dt.date(2024, 6, 30))
    measures = {m["name"]: m for m in result.to_json()["measures"]}
    assert measures["renewal_onsite"]["when"] == "declared_unchanged"
    assert measures["licensing_mode"] == {"name": "licensing_mode", "type": "enum", "label": "许可方式", "op": "exact",
                                          "value": "告知承诺制", "when": "store_type = 乙类非处方药店"}

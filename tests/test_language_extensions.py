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


POLICY_TESTS = """
policy test.expectations {
  version "1"
  effective 2024-01-01
  grades 可销售 "可销售", 禁售 "禁售"
  inputs {
    failed : events "快检不合格"
    checked : bool "已查验" missing exclude
    published : bool "已公示" missing exclude
  }
  indicators {
    查验 weight 50%: checked true -> 0 | false -> 100
    公示 weight 50%: published true -> 0 | false -> 100
  } assumed "test"
  grade by score { 可销售 below 50  禁售 otherwise } assumed "test"
  require completeness >= 90% assumed "test"
  override 季度禁售: count(failed, last 1 month) >= 2 -> 禁售 for 1 quarter assumed "test"
  measures {
    all: action 批批快检 "批批快检";
         action 约谈 "约谈" when not checked
  }
  test "right: met, until, no action" {
    as of 2024-02-01
    given failed = [2024-01-01, 2024-01-15], checked = true, published = true
    expect completeness met, override 季度禁售 until 2024-04-14, no action 约谈, action 批批快检
  }
  test "right: not met" {
    given failed = [], checked = true
    expect completeness not met, completeness 0.5
  }
  test "wrong: met" {
    given failed = [], checked = true
    expect completeness met
  }
  test "wrong: not met" {
    given failed = [], checked = true, published = true
    expect completeness not met
  }
  test "wrong: until" {
    as of 2024-02-01
    given failed = [2024-01-01, 2024-01-15], checked = true, published = true
    expect override 季度禁售 until 2024-04-15
  }
  test "wrong: no action" {
    given failed = [], checked = false, published = true
    expect no action 约谈
  }
}
"""


def test_the_new_expectations_pass_when_right_and_fail_when_wrong():
    from engine import compile_text
    from engine.compiler import Evaluator
    from engine.testing import run_case

    checked, diags = compile_text(POLICY_TESTS, "policy.rules")
    assert checked is not None, [d.message for d in diags if d.is_error]
    ev = Evaluator(checked)
    outcomes = {t.name: run_case(ev, t) for t in checked.policy.tests}
    assert [name for name, o in outcomes.items() if not o.passed] == [
        "wrong: met", "wrong: not met", "wrong: until", "wrong: no action"]
    assert outcomes["wrong: met"].failures == ["expected completeness met: 1/2 against 0.9"]
    assert outcomes["wrong: until"].failures == [
        "expected override 季度禁售 to hold until 2024-04-15, got until 2024-04-14 (set off 2024-01-15)"]
    assert outcomes["wrong: no action"].failures == ["expected no action 约谈 for grade 禁售, but it applies"]

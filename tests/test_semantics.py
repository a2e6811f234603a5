"""What a policy means, case by case (docs/semantics.md): tests/cases/semantics/*.yaml.

Each case evaluates a record with the explanation off and on; both must give what is wanted."""
import pytest

from _cases import evaluate_case, params


@pytest.mark.parametrize("case, data", params("semantics"))
def test_semantics(case, data, tmp_path):
    evaluate_case(case, data, tmp_path)


def _registry(tmp_path, name):
    from _cases import CASES, read
    from engine import Registry

    for file, text in read(CASES / "semantics" / name)["files"].items():
        (tmp_path / file).write_text(text, encoding="utf-8")
    registry, diags = Registry.from_paths([tmp_path])
    assert not [d for d in diags if d.is_error]
    return registry


def test_the_version_in_force_is_the_latest_effective_on_or_before_the_date(tmp_path):
    import datetime as dt

    registry = _registry(tmp_path, "versions.yaml")
    on = {d: registry.effective("test.food", dt.date.fromisoformat(d)).version
          for d in ("2021-12-27", "2023-05-31", "2023-06-01", "2030-01-01")}
    assert on == {"2021-12-27": "2021.12", "2023-05-31": "2021.12", "2023-06-01": "2023.06", "2030-01-01": "2023.06"}
    assert [c.version for c in registry.versions("test.general")] == ["2021.12", "2024.03"]
    assert registry.version("test.general", "2024.03").policy.effective == dt.date(2024, 3, 1)


def test_before_the_first_version_no_policy_is_in_force(tmp_path):
    import datetime as dt

    from engine import PolicyNotFound

    registry = _registry(tmp_path, "versions.yaml")
    with pytest.raises(PolicyNotFound, match="test.food has no version in force on 2021-12-26"):
        registry.effective("test.food", dt.date(2021, 12, 26))
    with pytest.raises(PolicyNotFound):
        registry.evaluator("test.nothing", on=dt.date(2024, 1, 1))


def test_an_event_window_reaching_back_before_year_one_is_not_a_crash():
    import datetime as dt

    from engine import InputError, compile_text
    from engine.compiler import Evaluator

    from _cases import CASES, read

    checked, _ = compile_text(read(CASES / "semantics" / "windows.yaml")["policy"])
    ev = Evaluator(checked)
    try:
        result = ev.evaluate({"complaints": ["0001-01-05"]}, dt.date(1, 6, 1))
    except InputError:
        return
    assert result.score == 1

"""`riskrules diff`: what a policy change does to a population, before it goes live."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from riskrules.cli import app

ROOT = Path(__file__).resolve().parent.parent
FOOD = ROOT / "policies" / "weihai" / "food_production.rules"

runner = CliRunner()

DAIRY_ONE_PENALTY = {   # score 39.6 under the shipped cutoffs: B
    "id": "913700001", "self_discipline": "一般", "inspection_issues": 1, "failed_samples": 0, "penalties": 1,
    "sales_channel": "经销", "traceability": True, "production_state": "正常生产",
    "product_category": "乳制品", "consumers": "一般人群"}
PLAIN_FOOD = {          # score 13.2: A under any nearby cutoff
    "id": "913700002", "self_discipline": "良好", "inspection_issues": 0, "failed_samples": 0, "penalties": 0,
    "sales_channel": "直销", "traceability": True, "production_state": "正常生产",
    "product_category": "普通食品", "consumers": "一般人群"}


def _proposal(tmp_path: Path, b_cutoff: str) -> Path:
    text = FOOD.read_text(encoding="utf-8").replace("B below 50", f"B below {b_cutoff}") \
        .replace('version   "2021.09"', 'version   "2022.01"').replace("effective 2021-09-16", "effective 2022-01-01")
    path = tmp_path / "food_production.rules"
    path.write_text(text, encoding="utf-8")
    return path


def _population(tmp_path: Path) -> Path:
    path = tmp_path / "population.json"
    path.write_text(json.dumps([DAIRY_ONE_PENALTY, PLAIN_FOOD], ensure_ascii=False), encoding="utf-8")
    return path


def test_lowering_the_B_cutoff_moves_the_dairy_firm_to_C_and_says_so(tmp_path):
    new = _proposal(tmp_path, "38")
    result = runner.invoke(app, ["diff", str(FOOD), str(new), "-p", str(_population(tmp_path)), "--id", "id",
                                 "--policies", str(ROOT / "policies")])
    assert result.exit_code == 0, result.output
    assert "grading: A below 35, B below 50, C below 65, D otherwise → A below 35, B below 38" in result.output
    assert "913700001: B → C" in result.output
    assert "1 of 2 enterprises change grade (50.0%)" in result.output
    # C gets 3 routine checks a year instead of B's 2, and a flight check a year instead of 1/3
    assert "routine_checks" in result.output and "+1.0" in result.output


def test_a_change_moving_more_than_the_allowed_share_fails_ci(tmp_path):
    new = _proposal(tmp_path, "38")
    result = runner.invoke(app, ["diff", str(FOOD), str(new), "-p", str(_population(tmp_path)), "--id", "id",
                                 "--fail-above", "0.25", "--policies", str(ROOT / "policies")])
    assert result.exit_code == 1
    assert "change grade, more than the 25.0% allowed" in result.output


def test_an_unchanged_policy_reports_no_rule_changed(tmp_path):
    copy = tmp_path / "same.rules"
    shutil.copy(FOOD, copy)
    result = runner.invoke(app, ["diff", str(FOOD), str(copy), "--policies", str(ROOT / "policies")])
    assert result.exit_code == 0
    assert "no rule changed" in result.output


def test_a_broken_proposal_is_refused_with_its_diagnostics(tmp_path):
    broken = tmp_path / "broken.rules"
    broken.write_text(FOOD.read_text(encoding="utf-8").replace("weight 40% {", "weight 45% {"), encoding="utf-8")
    result = runner.invoke(app, ["diff", str(FOOD), str(broken), "--policies", str(ROOT / "policies")])
    assert result.exit_code == 1
    assert "weights_sum" in result.output
    assert "does not check clean" in result.output


def test_the_current_version_can_come_from_git(tmp_path):
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                                                     capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    new = _proposal(tmp_path, "38")
    result = runner.invoke(app, ["diff", "HEAD:policies/weihai/food_production.rules", str(new),
                                 "--policies", str(ROOT / "policies")])
    assert result.exit_code == 0, result.output
    assert "B below 38" in result.output


def test_a_change_to_the_first_of_two_conditional_items_is_reported(tmp_path):
    from engine.diff import rule_changes
    from engine.loader import compile_text
    base = '''policy demo.pharmacy {
  version "1" effective 2024-01-01
  grades A, B
  input store_type : enum(乙类非处方药店, 二类店)
  input risk : grade
  grade = risk
  measures {
    licensing : enum(告知承诺制, 现场核查制)
    all: licensing = 告知承诺制 when store_type = 乙类非处方药店; licensing = 现场核查制
  }
}'''
    old, _ = compile_text(base, "old.rules")
    new, _ = compile_text(base.replace("告知承诺制 when", "现场核查制 when"), "new.rules")
    changes = rule_changes(old.policy, new.policy)
    assert "measure `A: licensing` changed (line 9)" in changes
    assert not any("item 2" in c for c in changes)

"""The `riskrules` command as a policy officer and a CI job use it: check, test, eval.

Policies: tests/cases/cli/{clean,broken,failing}/food.rules. Most tests run in process with
typer's CliRunner; one runs the installed console script end to end.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from riskrules.cli import app

HERE = Path(__file__).resolve().parent / "cases" / "cli"
CLEAN, BROKEN, FAILING = HERE / "clean", HERE / "broken", HERE / "failing"

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


# ---- check ----------------------------------------------------------------------------------

def test_check_of_a_clean_policy_exits_0_and_lists_its_assumptions():
    r = run("check", CLEAN)
    assert r.exit_code == 0
    assert r.stdout.splitlines()[-1] == "1 files checked: 0 errors, 0 warnings, 2 assumptions"
    assert f"{CLEAN / 'food.rules'}:19:5: info[assumption]: no document publishes these weights" in r.stdout


def test_check_without_assumptions_hides_them_but_still_counts_them():
    r = run("check", CLEAN, "--no-assumptions")
    assert r.exit_code == 0
    assert r.stdout.strip() == "1 files checked: 0 errors, 0 warnings, 2 assumptions"


def test_check_of_a_broken_policy_exits_1_with_the_source_line_and_a_caret():
    r = run("check", BROKEN)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    i = lines.index(f"{BROKEN / 'food.rules'}:7:22: error[bins_gap]: bins of `行政处罚` leave the value 1 without points")
    assert lines[i + 1] == "   7 |     行政处罚 weight 90%: penalties 0 -> 0 | 2..3 -> 60 | >= 4 -> 100"
    # the caret starts under `penalties`: 4 spaces + 4 Chinese characters (two columns each) + 15
    caret = lines[i + 2]
    assert caret.index("^") == len("   7 | ") + 4 + 8 + len(" weight 90%: ")
    assert set(caret.strip()) == {"^"} and len(caret.strip()) == len("penalties 0 -> 0 | 2..3 -> 60 | >= 4 -> 100")
    assert lines[i + 3] == "  help: add a bin for those values, or end with `otherwise -> N`"
    assert lines[-1] == "1 files checked: 2 errors, 1 warnings, 1 assumptions"


def test_check_format_json_is_one_document_for_machines():
    r = run("check", BROKEN, "--format", "json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert {k: doc[k] for k in ("files", "errors", "warnings", "assumptions")} == \
        {"files": 1, "errors": 2, "warnings": 1, "assumptions": 1}
    by_code = {d["code"]: d for d in doc["diagnostics"]}
    assert by_code["bins_gap"] == {
        "code": "bins_gap", "severity": "error", "message": "bins of `行政处罚` leave the value 1 without points",
        "file": str(BROKEN / "food.rules"), "line": 7, "column": 22, "end_line": 7, "end_column": 65,
        "help": "add a bin for those values, or end with `otherwise -> N`"}
    assert by_code["weights_sum"]["message"] == "the weights of the indicators block add up to 90%, not 100%"
    assert by_code["untraced_number"]["severity"] == "warning"


def test_check_format_github_annotates_each_line_and_escapes_percent_signs():
    r = run("check", BROKEN, "--format", "github")
    assert r.exit_code == 1
    file = BROKEN / "food.rules"
    assert r.stdout.splitlines() == [
        f"::error file={file},line=6,col=3,title=weights_sum::the weights of the indicators block add up to "
        "90%25, not 100%25 (add 10%25 across `行政处罚`)",
        f"::error file={file},line=7,col=22,title=bins_gap::bins of `行政处罚` leave the value 1 without points "
        "(add a bin for those values, or end with `otherwise -> N`)",
        f"::notice file={file},line=8,col=5,title=assumption::test",
        f"::warning file={file},line=10,col=5,title=untraced_number::cutoff of `A` has a number with neither "
        "`basis` nor `assumed` (add `basis \"<document section>\"`, or `assumed \"<why this value>\"` if no "
        "document states it)",
    ]


def test_github_annotation_properties_escape_commas_and_colons_in_the_file_name():
    from engine.diagnostics import Span, error, render_github

    d = error("syntax_error", "unexpected `%`\nhere", Span("policies/a,b:c.rules", 3, 4, 3, 5))
    assert render_github(d) == \
        "::error file=policies/a%2Cb%3Ac.rules,line=3,col=4,title=syntax_error::unexpected `%25`%0Ahere"


def test_check_of_several_folders_exits_1_if_any_has_an_error():
    assert run("check", CLEAN, FAILING).exit_code == 0
    r = run("check", CLEAN, BROKEN, "--format", "json")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["files"] == 2


def test_check_of_a_file_with_a_syntax_error_points_at_it(tmp_path):
    path = tmp_path / "typo.rules"
    path.write_text('policy x.y {\n  version "1"\n  grades A，B\n}\n', encoding="utf-8")
    r = run("check", path)
    assert r.exit_code == 1
    assert r.stdout.splitlines()[:4] == [
        f"{path}:3:11: error[syntax_error]: unexpected character `，`",
        "   3 |   grades A，B",
        "                 ^^",
        "  help: use an ASCII comma `,`",
    ]


# ---- test -----------------------------------------------------------------------------------

def test_test_prints_the_count_and_exits_0_when_every_case_passes():
    r = run("test", CLEAN)
    assert r.exit_code == 0
    assert r.stdout.strip().splitlines()[-1] == "3 passed, 0 failed"


def test_test_names_the_failing_case_and_why_and_exits_1():
    r = run("test", CLEAN, FAILING)
    assert r.exit_code == 1
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "4 passed, 1 failed"
    assert lines[0] == f"FAIL cli.failing 2024.1 · 一次处罚为A级 ({FAILING / 'food.rules'}:20:3)"
    assert "expected grade A, got B (score 60.00 → B (50 <= score))" in lines[1]
    assert "expected score 50, got 60.00" in lines[2]


def test_test_of_a_policy_with_errors_exits_1_and_says_it_was_not_tested():
    r = run("test", BROKEN)
    assert r.exit_code == 1
    assert "2 policy errors: policies with errors were not tested" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "0 passed, 0 failed"


# ---- eval -----------------------------------------------------------------------------------

RECORD = {"penalties": 1, "complaints": ["2024-01-05", "2024-03-01"]}


def test_eval_reads_the_record_from_stdin_as_of_a_date():
    r = run("eval", "cli.food", "--input", "-", "--as-of", "2024-06-30", "--policies", CLEAN,
            input=json.dumps(RECORD))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["grade"], out["score"], out["as_of"]) == ("B", "56.00", "2024-06-30")
    assert out["policy"]["id"] == "cli.food" and out["policy"]["version"] == "2024.1"
    assert out["measures"] == [{"name": "sampling_ratio", "type": "ratio", "label": "双随机抽查比例", "op": "min",
                                "value": "0.05", "basis": "三(二)"}]
    assert out["decided_by"] == ["score 56.00 → B (30 <= score < 60)"]
    assert "explanation" not in out


def test_eval_as_of_a_later_date_lets_old_complaints_fall_out_of_the_window():
    r = run("eval", "cli.food", "--input", "-", "--as-of", "2025-02-28", "--policies", CLEAN,
            input=json.dumps(RECORD))
    assert json.loads(r.stdout)["score"] == "56.00"     # 2024-03-01 is still in the last 12 months
    r = run("eval", "cli.food", "--input", "-", "--as-of", "2025-03-01", "--policies", CLEAN,
            input=json.dumps(RECORD))
    assert json.loads(r.stdout)["score"] == "36.00"     # exactly 12 months back it is out: 36 + 0


def test_eval_explain_adds_the_per_indicator_explanation():
    r = run("eval", "cli.food", "--input", "-", "--as-of", "2024-06-30", "--explain", "--policies", CLEAN,
            input=json.dumps(RECORD))
    assert r.exit_code == 0
    indicators = json.loads(r.stdout)["explanation"]["indicators"]
    assert [(e["indicator"], e["bin"], e["points"], e["contribution"]) for e in indicators] == \
        [("行政处罚", "1", "60", "36"), ("投诉举报", "1..2", "50", "20")]


def test_eval_reads_a_file_and_takes_a_rules_path(tmp_path):
    record = tmp_path / "enterprise.json"
    record.write_text(json.dumps({"penalties": 2}), encoding="utf-8")
    r = run("eval", CLEAN / "food.rules", "--input", record, "--as-of", "2024-06-30", "--policies", tmp_path)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["grade"] == "C"


def test_eval_of_an_invalid_record_exits_1_with_every_problem():
    r = run("eval", "cli.food", "--input", "-", "--as-of", "2024-06-30", "--policies", CLEAN,
            input=json.dumps({"penalties": -1, "on_list": 1, "penalty": 0}))
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["error"] == "invalid_input"
    assert sorted((tuple(p["loc"]), p["type"]) for p in out["problems"]) == [
        (("on_list",), "wrong_type"), (("penalties",), "out_of_domain"), (("penalty",), "unknown_field")]


def test_eval_of_input_that_is_not_json_exits_2():
    r = run("eval", "cli.food", "--input", "-", "--policies", CLEAN, input="{penalties: 1")
    assert r.exit_code == 2
    assert "cannot read the input" in r.stderr


def test_eval_of_an_unknown_policy_exits_2_and_lists_the_known_ones():
    r = run("eval", "cli.fod", "--input", "-", "--policies", CLEAN, input="{}")
    assert r.exit_code == 2
    assert "known policies: cli.food" in r.stderr


def test_eval_before_the_policy_is_in_force_exits_2():
    r = run("eval", "cli.food", "--input", "-", "--as-of", "2023-12-31", "--policies", CLEAN, input="{}")
    assert r.exit_code == 2
    assert "cli.food has no version in force on 2023-12-31" in r.stderr


def test_eval_with_a_bad_as_of_date_is_a_usage_error():
    r = run("eval", "cli.food", "--input", "-", "--as-of", "2024-02-30", "--policies", CLEAN, input="{}")
    assert r.exit_code == 2
    assert "`2024-02-30` is not a date (YYYY-MM-DD)" in r.output


def test_eval_of_a_rules_file_that_does_not_check_exits_1(tmp_path):
    r = run("eval", BROKEN / "food.rules", "--input", "-", "--policies", tmp_path, input="{}")
    assert r.exit_code == 1
    assert "does not check clean" in r.stderr


# ---- the installed command, end to end --------------------------------------------------------

@pytest.mark.skipif(shutil.which("riskrules") is None, reason="the console script is not installed")
def test_the_installed_command_checks_and_evaluates():
    check = subprocess.run(["riskrules", "check", str(BROKEN), "--format", "json"], capture_output=True, text=True)
    assert check.returncode == 1 and json.loads(check.stdout)["errors"] == 2
    ev = subprocess.run(["riskrules", "eval", "cli.food", "--input", "-", "--as-of", "2024-06-30",
                         "--policies", str(CLEAN)], input=json.dumps(RECORD), capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["grade"] == "B"
    assert sys.executable  # (the script runs in this interpreter's environment)

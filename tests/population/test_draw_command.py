"""`riskrules draw` and `riskrules groups` end to end: files in, sample and summary out."""
from __future__ import annotations

import json

import polars as pl
from typer.testing import CliRunner

from riskrules.cli import app

from conftest import DRAW_POLICY, population

runner = CliRunner()


def _setup(tmp_path, n=300):
    policy = tmp_path / "draws.rules"
    policy.write_text(DRAW_POLICY.replace("MODE", "batches 2"), encoding="utf-8")
    population(n).write_csv(tmp_path / "pop.csv")
    pl.DataFrame({"id": [f"WH{k:03d}" for k in range(16)],
                  "district": ["环翠区", "文登区", "荣成市", "乳山市"] * 4,
                  "conflicts": ["91371000MA00000001;91371000MA00000002"] + [""] * 15}).write_csv(tmp_path / "officers.csv")
    return policy


def _draw(tmp_path, policy, out, *extra):
    return runner.invoke(app, ["draw", str(policy), "--population", str(tmp_path / "pop.csv"), "--seed", "20240630",
                               "--as-of", "2024-06-30", "--output", str(out), "--policies", str(tmp_path / "none"),
                               *extra])


def test_draw_writes_the_sample_and_a_summary_that_repeat(tmp_path):
    policy = _setup(tmp_path)
    r1 = _draw(tmp_path, policy, tmp_path / "a.csv", "--officers", str(tmp_path / "officers.csv"),
               "--summary", str(tmp_path / "a.json"))
    assert r1.exit_code == 0, r1.output
    assert "seed 20240630" in r1.output and "sha256:" in r1.output and "quota 25% of population (300)" in r1.output
    r2 = _draw(tmp_path, policy, tmp_path / "b.parquet", "--officers", str(tmp_path / "officers.csv"),
               "--format", "json")
    assert r2.exit_code == 0, r2.output
    a = pl.read_csv(tmp_path / "a.csv", schema_overrides={"id": pl.String})
    b = pl.read_parquet(tmp_path / "b.parquet")
    assert a["id"].to_list() == b["id"].to_list()
    assert a["officers"].to_list() == b["officers"].list.join(";").to_list()
    assert all(len(x.split(";")) == 2 for x in a["officers"])
    summary = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    printed = json.loads(r2.output)
    assert summary["population"]["fingerprint"] == printed["population"]["fingerprint"]
    assert summary["seed"] == "20240630" and [d["name"] for d in summary["draws"]] == ["年度检查", "一事双查", "双随机"]
    assert summary["draws"][0]["assignment"]["source"] == "defaults (the policy has no `assign`)"


def test_an_impossible_assignment_fails_naming_the_constraint(tmp_path):
    policy = _setup(tmp_path)
    r = _draw(tmp_path, policy, tmp_path / "a.csv", "--officers", str(tmp_path / "officers.csv"), "--max-load", "3")
    assert r.exit_code == 1
    assert "error[assignment_infeasible/load_cap]: 年度检查:" in r.output and "load cap of 3" in r.output
    assert not (tmp_path / "a.csv").exists()


def test_only_the_named_plan_and_a_bad_seed(tmp_path):
    policy = _setup(tmp_path)
    r = _draw(tmp_path, policy, tmp_path / "a.csv", "--plan", "双随机")
    assert r.exit_code == 0, r.output
    assert set(pl.read_csv(tmp_path / "a.csv")["draw"]) == {"双随机"}
    r = runner.invoke(app, ["draw", str(policy), "--population", str(tmp_path / "pop.csv"), "--seed", "x1",
                            "--output", str(tmp_path / "c.csv"), "--policies", str(tmp_path / "none")])
    assert r.exit_code == 1 and "error[invalid_seed]" in r.output


def test_groups_lists_the_chains_to_interview(tmp_path):
    policy = _setup(tmp_path, n=40)
    r = runner.invoke(app, ["groups", str(policy), "--population", str(tmp_path / "pop.csv"), "--as-of", "2024-06-30",
                            "--policies", str(tmp_path / "none"), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    frame = population(40)
    for a in doc["group_actions"]:
        members = frame.filter(pl.col("chain_hq") == a["key"])
        cd = members.filter(pl.col("provincial_grade").is_in(["C", "D"]))
        assert a["members"] == members.height and a["matching"] == sorted(cd["id"]) and cd.height >= 2
    fired = {a["key"] for a in doc["group_actions"]}
    for key in ("HQ1", "HQ2", "HQ3"):
        n_cd = frame.filter((pl.col("chain_hq") == key) & pl.col("provincial_grade").is_in(["C", "D"])).height
        assert (key in fired) == (n_cd >= 2)

"""`riskrules classify`, `riskrules synth` and `riskrules runs`, as an office runs them monthly.

One small policy (below) and nine enterprises whose results are worked out by hand here: a
score exactly on a cutoff, a renormalised score, an override, an event on the window's edge,
and three rows that must be rejected with their problems. The PostgreSQL test runs against the
real server on 127.0.0.1:5432 (skipped when there is none, unless CI is set).
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
import uuid

import polars as pl
import pytest
from typer.testing import CliRunner

from riskrules.cli import app

runner = CliRunner()
DSN = "postgresql://postgres@127.0.0.1:5432/test"

POLICY = """
policy t.cli_batch {
  version "1" effective 2020-01-01
  grades A, B, C
  inputs {
    penalties  : count
    share      : ratio missing exclude
    kind       : enum(甲, 乙)
    complaints : events missing exclude
  }
  indicators {
    处罚 weight 50%: penalties 0 -> 0 | 1..2 -> 50 | >= 3 -> 100
    比例 weight 30%: share < 50% -> 0 | >= 50% -> 100
    投诉 weight 20%: count(complaints, last 1 year) 0 -> 0 | >= 1 -> 100
  }
  grade by score { A below 30  B below 60  C otherwise }
  override 严重: penalties >= 5 -> C
  alert 乙类 when kind = 乙
  measures {
    all: action 常规 "常规监管"
  }
}
"""

# id, penalties, share, kind                       score = 50%·处罚 + 30%·比例 + 20%·投诉
ROWS = [
    (1, 0, 0.1, "甲"),      # 0 + 0 + 0                                  = 0.00  A
    (2, 2, 0.6, "乙"),      # 25 + 30 + 20 (a complaint in the window)    = 75.00 C, alert 乙类
    (3, 1, 0.5, "甲"),      # 25 + 30 (50 % is in `>= 50%`) + 0 (complaint on the window's
    #                         open edge, 2023-06-30: outside)              = 55.00 B
    (4, 5, None, "甲"),     # 50, share left out: 50 / 70 %               = 71.43 C (override too)
    (5, 6, 0.0, "甲"),      # 50 + 0 + 0                                  = 50.00 B, override 严重 -> C
    (6, -1, 0.2, "甲"),     # rejected: penalties:out_of_domain
    (7, 0, 0.2, "丙"),      # rejected: kind:not_a_member
    (8, None, 0.2, "甲"),   # rejected: penalties:missing_required
    (9, 0, 0.9, "甲"),      # 0 + 30 + 0 = 30.00: exactly on the cutoff of A, so B
]
WANT = {1: ("0.00", "A", "A", [], []), 2: ("75.00", "C", "C", [], ["乙类"]), 3: ("55.00", "B", "B", [], []),
        4: ("71.43", "C", "C", ["严重"], []), 5: ("50.00", "C", "B", ["严重"], []), 9: ("30.00", "B", "B", [], [])}
REJECTED = {6: ["penalties:out_of_domain"], 7: ["kind:not_a_member"], 8: ["penalties:missing_required"]}
EVENTS = [(2, "complaints", dt.date(2024, 5, 1)), (3, "complaints", dt.date(2023, 6, 30))]
AS_OF = "2024-06-30"


def run(*args):
    # a wide terminal: rich wraps table cells at the default 80 columns
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "200"})


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in `text`, as lists of cell texts."""
    return [[c.strip() for c in line.strip().strip("│").split("│")] for line in text.splitlines()
            if line.strip().startswith("│")]


@pytest.fixture
def work(tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    rules = tmp_path / "cli_batch.rules"
    rules.write_text(POLICY, encoding="utf-8")
    frame = pl.DataFrame(ROWS, schema={"id": pl.Int64, "penalties": pl.Int64, "share": pl.Float64,
                                       "kind": pl.String}, orient="row")
    frame.write_parquet(tmp_path / "enterprises.parquet")
    events = pl.DataFrame(EVENTS, schema={"id": pl.Int64, "input": pl.String, "date": pl.Date}, orient="row")
    events.write_parquet(tmp_path / "events.parquet")
    return tmp_path, rules, policies, frame, events


def classify(tmp, rules, policies, *extra, input="enterprises.parquet", output="results.parquet"):
    return run("classify", rules, "--policies", policies, "--input", tmp / input, "--events",
               tmp / "events.parquet", "--as-of", AS_OF, "--output", tmp / output, *extra)


# ---- classify -------------------------------------------------------------------------------

@pytest.mark.parametrize("engine, fmt", [("polars", "parquet"), ("duckdb", "parquet"), ("polars", "csv")])
def test_classify_writes_every_result_and_counts_each_grade(work, engine, fmt):
    tmp, rules, policies, frame, _ = work
    if fmt == "csv":
        frame.write_csv(tmp / "enterprises.csv")
    r = classify(tmp, rules, policies, "--engine", engine, "--chunk", "4",   # three chunks
                 input=f"enterprises.{fmt}")
    assert r.exit_code == 0, r.output
    counts = {row[0]: row[2] for row in table_rows(r.stdout) if row[0] in ("A", "B", "C")}
    assert counts == {"A": "1", "B": "2", "C": "3"}
    assert "3 rows rejected (not classified)" in r.stdout
    results = pl.read_parquet(tmp / "results.parquet")
    got = {row["id"]: (str(row["score"]), row["grade"], row["base_grade"], row["overrides"], row["alerts"])
           for row in results.iter_rows(named=True)}
    assert got == WANT
    assert results["measures"].unique().to_list() == ['[{"name": "常规", "type": "action", "text": "常规监管"}]']
    rejects = pl.read_parquet(tmp / "results.rejects.parquet")
    assert {row["id"]: row["problems"] for row in rejects.iter_rows(named=True)} == REJECTED
    # the run is recorded beside the output
    with sqlite3.connect(tmp / "runs.db") as db:
        assert db.execute("SELECT policy_id, rows, rejected, grades FROM runs").fetchall() == [
            ("t.cli_batch", 9, 3, '{"A": 1, "B": 2, "C": 3}')]


def test_a_missing_column_is_reported_before_any_work(work):
    tmp, rules, policies, frame, _ = work
    frame.drop("share").write_parquet(tmp / "no_share.parquet")
    r = classify(tmp, rules, policies, input="no_share.parquet")
    assert r.exit_code == 2
    assert "error: the input cannot be classified:" in r.stderr
    assert "`share`: input `share` (ratio) has no column" in r.stderr
    assert not (tmp / "results.parquet").exists() and not (tmp / "runs.db").exists()


def test_a_column_of_the_wrong_type_is_reported_with_every_other_problem(work):
    tmp, rules, policies, frame, _ = work
    frame.with_columns(pl.col("penalties").cast(pl.String)).drop("kind").write_parquet(tmp / "bad.parquet")
    r = classify(tmp, rules, policies, input="bad.parquet")
    assert r.exit_code == 2
    assert "`penalties`: holds String, expected whole numbers" in r.stderr
    assert "`kind`: input `kind` (enum(甲, 乙)) has no column" in r.stderr
    assert not (tmp / "results.parquet").exists()


def test_an_override_that_lasts_classifies_in_batch(work):
    tmp, rules, policies, _, events = work
    rules.write_text(POLICY.replace("  alert 乙类", '  override 禁入: count(complaints, last 1 month) >= 2 -> C for 1 quarter '
                                                 'assumed "test"\n  alert 乙类'), encoding="utf-8")
    # enterprise 1: two complaints within a month, the second on 2024-04-20: C until 2024-07-19
    pl.concat([events, pl.DataFrame({"id": [1, 1], "input": ["complaints"] * 2,
                                     "date": [dt.date(2024, 4, 1), dt.date(2024, 4, 20)]})]) \
        .write_parquet(tmp / "events.parquet")
    r = classify(tmp, rules, policies)
    assert r.exit_code == 0, r.output
    results = pl.read_parquet(tmp / "results.parquet")
    got = {row["id"]: (str(row["score"]), row["grade"], row["base_grade"], row["overrides"], row["alerts"])
           for row in results.iter_rows(named=True)}
    # enterprise 1 now has complaints in the window of 投诉 too: 20 points, still A before overrides
    assert got == {**WANT, 1: ("20.00", "C", "A", ["禁入"], [])}


# ---- classify in PostgreSQL -----------------------------------------------------------------

@pytest.fixture
def pg():
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {DSN}: {exc}")
    tag = "riskrules_cli_" + uuid.uuid4().hex[:10]
    try:
        yield conn, tag
    finally:
        for t in ("ent", "ev", "out", "out_rejects"):
            conn.execute(f'DROP TABLE IF EXISTS "{tag}_{t}"')
        conn.close()


def test_classify_in_place_in_postgresql(work, pg):
    tmp, rules, policies, frame, events = work
    conn, tag = pg
    conn.execute(f'CREATE TABLE "{tag}_ent" (id BIGINT, penalties BIGINT, share DOUBLE PRECISION, kind TEXT)')
    conn.execute(f'CREATE TABLE "{tag}_ev" (id BIGINT, input TEXT, date DATE)')
    with conn.cursor() as cur:
        cur.executemany(f'INSERT INTO "{tag}_ent" VALUES (%s, %s, %s, %s)', ROWS)
        cur.executemany(f'INSERT INTO "{tag}_ev" VALUES (%s, %s, %s)', EVENTS)
    r = run("classify", rules, "--policies", policies, "--as-of", AS_OF, "--database", DSN,
            "--table", f"{tag}_ent", "--events-table", f"{tag}_ev", "--output-table", f"{tag}_out")
    assert r.exit_code == 0, r.output
    counts = {row[0]: row[2] for row in table_rows(r.stdout) if row[0] in ("A", "B", "C")}
    assert counts == {"A": "1", "B": "2", "C": "3"}
    assert f"3 rows rejected (not classified) → {tag}_out_rejects" in r.stdout
    got = {i: (str(s), g, b, list(o), list(a)) for i, s, g, b, o, a in conn.execute(
        f'SELECT id, score, grade, base_grade, overrides, alerts FROM "{tag}_out"').fetchall()}
    assert got == WANT
    rej = dict(conn.execute(f'SELECT id, problems FROM "{tag}_out_rejects"').fetchall())
    assert rej == REJECTED


# ---- synth ----------------------------------------------------------------------------------

def test_synth_is_deterministic_for_a_seed(work):
    tmp, rules, policies, _, _ = work

    def synth(seed, name):
        r = run("synth", rules, "--policies", policies, "-n", 500, "--seed", seed, "--as-of", AS_OF,
                "--output", tmp / f"{name}.parquet")
        assert r.exit_code == 0, r.output
        assert f"500 enterprises → {tmp / name}.parquet" in r.stdout
        return pl.read_parquet(tmp / f"{name}.parquet"), pl.read_parquet(tmp / f"{name}.events.parquet")

    a, ea = synth(7, "a")
    b, eb = synth(7, "b")
    c, _ = synth(8, "c")
    assert a.columns == ["id", "penalties", "share", "kind"] and a.height == 500
    assert a.equals(b) and ea.equals(eb)
    assert not a.equals(c)
    assert set(ea["input"].unique()) == {"complaints"}
    # and the population classifies
    r = run("classify", rules, "--policies", policies, "--input", tmp / "a.parquet", "--events",
            tmp / "a.events.parquet", "--as-of", AS_OF, "--output", tmp / "a_out.parquet")
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(tmp / "a_out.parquet").height == 500


# ---- runs -----------------------------------------------------------------------------------

def test_runs_lists_the_runs_and_the_grade_transitions_between_two(work):
    tmp, rules, policies, frame, _ = work
    db = tmp / "monthly.db"
    assert classify(tmp, rules, policies, "--runs-db", db).exit_code == 0
    # next month: enterprise 1 has 3 penalties (A -> B), 9 is gone, 10 is new (A)
    nxt = frame.filter(pl.col("id") != 9).with_columns(
        pl.when(pl.col("id") == 1).then(3).otherwise(pl.col("penalties")).alias("penalties"))
    nxt = pl.concat([nxt, pl.DataFrame({"id": [10], "penalties": [0], "share": [0.0], "kind": ["甲"]})])
    nxt.write_parquet(tmp / "next.parquet")
    assert classify(tmp, rules, policies, "--runs-db", db, input="next.parquet", output="next_out.parquet").exit_code == 0

    r = run("runs", "--runs-db", db)
    assert r.exit_code == 0
    listed = [row for row in table_rows(r.stdout)]
    assert [(row[0], row[2], row[5], row[6], row[7]) for row in listed] == [
        ("1", "t.cli_batch", "9", "3", "A:1 B:2 C:3"), ("2", "t.cli_batch", "9", "3", "A:1 B:2 C:3")]

    r = run("runs", "--runs-db", db, "diff", 1, 2)
    assert r.exit_code == 0
    assert f"run 1 ({AS_OF}) → run 2 ({AS_OF})" in r.stdout
    header = next(line for line in r.stdout.splitlines() if "from \\ to" in line)
    cols = [c.strip() for c in header.strip().strip("┃").split("┃")][1:]
    assert cols == ["A", "B", "C", "(gone)"]
    matrix = {row[0]: dict(zip(cols, row[1:])) for row in table_rows(r.stdout)}
    assert matrix == {"A": {"A": "0", "B": "1", "C": "0", "(gone)": "0"},
                      "B": {"A": "0", "B": "1", "C": "0", "(gone)": "1"},
                      "C": {"A": "0", "B": "0", "C": "3", "(gone)": "0"},
                      "(new)": {"A": "1", "B": "0", "C": "0", "(gone)": "0"}}


def test_runs_diff_of_an_unknown_run_is_an_error(work):
    tmp, rules, policies, _, _ = work
    db = tmp / "monthly.db"
    assert classify(tmp, rules, policies, "--runs-db", db).exit_code == 0
    r = run("runs", "--runs-db", db, "diff", 1, 7)
    assert r.exit_code == 2
    assert f"error: no run 7 in {db}; runs: 1" in r.stderr

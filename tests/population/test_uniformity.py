"""The random parts are uniform: a chi-square test over many draws with fixed seeds.

Tolerance: each test rejects uniformity when the p-value of Pearson's chi-square statistic is
below 0.001 (scipy.stats.chisquare). The seeds are fixed, so the outcome is deterministic; a
correct sampler fails one of these tests with probability 0.001 over the choice of seeds, and
the seeds below were not chosen by looking at the results (they are 0, 1, 2, …)."""
from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import polars as pl
from scipy.stats import chisquare

from engine import population as P
from engine.assignment import AssignRules, Officers, assign

from conftest import compile_policy

ALPHA = 0.001

POLICY = """
policy test.uniform {
  version "1"
  effective 2024-01-01
  grades A, D
  inputs {
    provincial_grade : grade "分类结果"
    accidents_2y : count = 0 "近2年事故"
  }
  grade = provincial_grade
  measures {
    sampling_ratio : ratio "抽查比例"
    A: sampling_ratio >= 10%  assumed "test"
    D: sampling_ratio >= 20%  assumed "test"
  }
  plan 年度检查 {
    quota 25% of population per year  assumed "test"
    rounding up  assumed "test"
    first where accidents_2y > 0  assumed "test"
    order by random  assumed "test"
    then random  assumed "test"
  }
  draw 双随机 {
    mode MODE  assumed "test"
    ratio sampling_ratio
    rounding up  assumed "test"
  }
}
"""


def _counts(ids, runs) -> np.ndarray:
    index = {e: k for k, e in enumerate(ids)}
    counts = np.zeros(len(ids), dtype=np.int64)
    for got in runs:
        for e in got:
            counts[index[e]] += 1
    return counts


def test_each_enterprise_of_a_stratum_is_drawn_equally_often():
    checked = compile_policy(POLICY.replace("MODE", "per_grade"))
    ids = [f"D{k:03d}" for k in range(60)]
    frame = pl.DataFrame({"id": ids, "grade": ["D"] * 60})
    seeds = range(600)
    runs = [P.run(checked, frame, s, as_of=dt.date(2024, 6, 30), names=["双随机"]).sample["id"].to_list()
            for s in seeds]
    assert {len(r) for r in runs} == {12}                        # 20% of 60
    counts = _counts(ids, runs)
    assert (p := chisquare(counts).pvalue) > ALPHA, p                      # expected 600 × 12 / 60 = 120 each


def test_the_combined_mode_is_uniform_within_each_grade():
    checked = compile_policy(POLICY.replace("MODE", "combined"))
    ids = [f"E{k:03d}" for k in range(90)]
    grades = ["A"] * 50 + ["D"] * 40
    frame = pl.DataFrame({"id": ids, "grade": grades})
    runs = [P.run(checked, frame, s, as_of=dt.date(2024, 6, 30), names=["双随机"]).sample for s in range(500)]
    counts = _counts(ids, [r["id"].to_list() for r in runs])
    assert (p := chisquare(counts[:50]).pvalue) > ALPHA, p                 # A: 5 of 50 each time
    assert (p := chisquare(counts[50:]).pvalue) > ALPHA, p                 # D: 8 of 40 each time


def test_the_random_fill_is_uniform_over_the_rest():
    checked = compile_policy(POLICY.replace("MODE", "combined"))
    ids = [f"E{k:03d}" for k in range(52)]
    frame = pl.DataFrame({"id": ids, "provincial_grade": ["A"] * 52, "accidents_2y": [1] * 4 + [0] * 48})
    runs = []
    for s in range(500):
        sample = P.run(checked, frame, s, as_of=dt.date(2024, 6, 30), names=["年度检查"]).sample
        assert sample.filter(pl.col("reason") == "priority")["id"].sort().to_list() == ids[:4]
        runs.append(sample.filter(pl.col("reason") == "random")["id"].to_list())
    assert {len(r) for r in runs} == {9}                         # 13 drawn: 4 priority + 9 random
    assert (p := chisquare(_counts(ids[4:], runs)).pvalue) > ALPHA, p


def test_the_order_among_tied_priority_candidates_is_uniform():
    """`order by random`: which of 10 tied candidates make a quota of 3 is uniform."""
    checked = compile_policy(POLICY.replace("MODE", "combined"))
    ids = [f"E{k:02d}" for k in range(12)]
    frame = pl.DataFrame({"id": ids, "provincial_grade": ["A"] * 12, "accidents_2y": [1] * 10 + [0] * 2})
    runs = [P.run(checked, frame, s, as_of=dt.date(2024, 6, 30), names=["年度检查"]).sample["id"].to_list()
            for s in range(600)]
    assert {len(r) for r in runs} == {3}
    assert (p := chisquare(_counts(ids[:10], runs)).pvalue) > ALPHA, p


def test_officers_are_drawn_uniformly_for_an_inspection_and_as_pairs():
    offs = Officers(np.array([f"O{j}" for j in range(10)], dtype=object), np.array(["x"] * 10, dtype=object), {})
    ids = np.array([f"E{i}" for i in range(30)], dtype=object)
    first = np.zeros(10, dtype=np.int64)
    pairs = {p: 0 for p in itertools.combinations(range(10), 2)}
    for s in range(2000):
        out = assign(ids, None, offs, AssignRules(2, "any", None), P.Stream(s, "officers", "u"))
        a, b = sorted(out[0].tolist())
        first[a] += 1
        first[b] += 1
        pairs[(a, b)] += 1
    assert (p := chisquare(first).pvalue) > ALPHA, p                       # 400 each
    assert (p := chisquare(np.array(list(pairs.values()))).pvalue) > ALPHA, p   # 2000 / 45 each

"""Shared policies and populations for the population-rule tests (plans, draws, group rules)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.loader import compile_text

DRAW_POLICY = """
policy test.draws {
  version "1"
  effective 2024-01-01
  grades A "低风险", B "中风险", C "中高风险", D "高风险"  basis "三(二)"
  inputs {
    provincial_grade : grade "省级分类结果"
    accidents_2y : count = 0 "近2年事故"
    recalls_2y : count = 0 "近2年召回"
    complaints : count = 0 "投诉举报"
    licensed_on : date "取证时间"  missing exclude
  }
  grade = provincial_grade
  measures {
    sampling_ratio : ratio "双随机抽查比例"
    A: sampling_ratio generally >= 1%   basis "三(三)1"
    B: sampling_ratio generally >= 3%   basis "三(三)2"
    C: sampling_ratio generally >= 10%  basis "三(三)3"
    D: sampling_ratio generally >= 20%  basis "三(三)4"
  }
  plan 年度检查 "年度检查任务" {
    quota 25% of population per year  basis "附件四·一是"
    rounding up  assumed "SPEC G-X4"
    first where accidents_2y > 0 or recalls_2y > 0  basis "附件四·一是"
    first where complaints > 0  basis "附件四·一是"
    order by accidents_2y desc, recalls_2y desc, random  assumed "SPEC G-WH9"
    then random  basis "附件四·一是"
  }
  plan 一事双查 {
    quota 10% of plan 年度检查 per year  basis "附件四·五是"
    rounding nearest  assumed "SPEC G-X4"
    then random  basis "附件四·五是"
  }
  draw 双随机 "双随机抽查" {
    mode MODE  assumed "SPEC G-PD3"
    ratio sampling_ratio
    rounding up  assumed "SPEC G-X4"
  }
  group by chain_hq when count(members where grade in [C, D]) >= 2 -> action 约谈总部 "直接约谈总部"
    basis "附件三·一是" assumed "多家门店 is not quantified (SPEC G-WH7)"
}
"""


def compile_policy(text: str):
    checked, diags = compile_text(text, "test.rules")
    errors = [d for d in diags if d.is_error]
    assert checked is not None and not errors, [f"{d.span}: {d.message}" for d in errors]
    return checked


@pytest.fixture(scope="session")
def draws_policy():
    return compile_policy(DRAW_POLICY.replace("MODE", "combined"))


def policy_with_mode(mode: str):
    return compile_policy(DRAW_POLICY.replace("MODE", mode))


def population(n: int, seed: int = 0, districts=("环翠区", "文登区", "荣成市", "乳山市")) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "id": [f"91371000MA{k:08d}" for k in range(n)],
        "provincial_grade": rng.choice(list("ABCD"), n, p=[0.55, 0.25, 0.12, 0.08]).tolist(),
        "accidents_2y": rng.choice([0, 0, 0, 0, 0, 0, 1, 2], n).tolist(),
        "recalls_2y": rng.choice([0] * 9 + [1], n).tolist(),
        "complaints": rng.choice([0, 0, 0, 1, 3], n).tolist(),
        "district": rng.choice(list(districts), n).tolist(),
        "chain_hq": rng.choice(["HQ1", "HQ2", "HQ3", None], n).tolist(),
    })

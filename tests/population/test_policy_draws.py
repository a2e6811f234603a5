"""The population rules of the published policies, drawn over synthetic populations of the sizes
the documents state: Weihai's special-equipment plans (附件四), the pharmacy chain rule (附件三·一是)
and Pingdingshan's three draw modes with check items (三(二))."""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine import nodes as n
from engine import population as P
from engine.loader import Registry

POLICIES = Path(__file__).resolve().parents[2] / "policies"
AS_OF = dt.date(2024, 6, 30)
DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市", "高区", "经区", "临港区"]


@pytest.fixture(scope="module")
def registry():
    reg, diags = Registry.from_paths([POLICIES])
    assert not [d for d in diags if d.is_error]
    return reg


def _values(t: n.Type, size: int, rng, grades) -> list:
    k = t.kind
    if k == "count":
        return rng.choice([0, 0, 0, 0, 1, 2, 4], size).tolist()
    if k in ("number", "ratio"):
        return rng.random(size).round(3).tolist()
    if k == "bool":
        return (rng.random(size) < 0.2).tolist()
    if k == "enum":
        return rng.choice(list(t.members), size).tolist()
    if k == "grade":
        return rng.choice(list(grades), size).tolist()
    if k == "date":
        return [AS_OF - dt.timedelta(days=int(d)) for d in rng.integers(30, 15 * 365, size)]
    if k == "events":
        return [[AS_OF - dt.timedelta(days=int(d)) for d in rng.integers(1, 1500, c)]
                for c in rng.choice([0, 0, 0, 0, 0, 1, 2], size)]
    raise AssertionError(k)


def synthetic(checked, size: int, seed: int = 0) -> pl.DataFrame:
    """Every input of the policy (and of the policies it uses, as `alias.input`) with plausible values."""
    rng = np.random.default_rng(seed)
    cols = {"id": [f"913710{k:012d}" for k in rng.permutation(10 ** 6)[:size]],
            "district": rng.choice(DISTRICTS, size).tolist()}
    for name, decl in checked.inputs.items():
        cols[name] = _values(decl.type, size, rng, checked.grades)
    for alias, used in checked.used.items():
        for name, decl in used.inputs.items():
            cols[f"{alias}.{name}"] = _values(decl.type, size, rng, used.grades)
    return pl.DataFrame(cols)


def grades_of(registry, checked, frame) -> dict:
    """Each enterprise's grade, evaluated one by one (independently of the draw engine)."""
    ev = registry.evaluator(checked.id, on=AS_OF)
    names = set(checked.inputs) | {c for c in frame.columns if c.split(".")[0] in checked.used}
    recs = P.records(frame, checked, names)
    return {eid: ev.evaluate(rec, AS_OF) for eid, rec in zip(frame["id"], recs)}


def officers(per_district: int) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"WH{k:04d}" for k in range(per_district * len(DISTRICTS))],
                         "district": [DISTRICTS[k % len(DISTRICTS)] for k in range(per_district * len(DISTRICTS))]})


@pytest.mark.parametrize("policy_id, population, plan, size", [
    ("weihai.se_production", 124, "年度检查任务", 31),             # 25% of 124 (附件四·一是)
    ("weihai.se_inspection_agency", 4, "年度检查任务", 2),        # 50% of 4 (附件四·二是)
    ("weihai.se_filling", 103, "市局抽查", 11),                   # 10% of 103 = 10.3, rounding up
    ("weihai.se_user", 6173, "区市局检查", 926),                  # 15% of 6173 = 925.95, rounding up
])
def test_weihai_special_equipment_plans(registry, policy_id, population, plan, size):
    ev = registry.evaluator(policy_id, on=AS_OF)
    checked = ev.checked
    frame = synthetic(checked, population, seed=population)
    result = P.run(checked, frame, 20240630, as_of=AS_OF, evaluator=ev, officers=officers(6))
    summary = next(d for d in result.to_json()["draws"] if d["name"] == plan)
    sample = result.sample.filter(pl.col("draw") == plan)
    results = grades_of(registry, checked, frame)
    excluded = summary["excluded"]
    assert summary["quota"]["base"] == population and summary["quota"]["size"] == size
    assert sample.height == min(size, population - excluded)
    # the priority list (重点) comes first, highest score first; the rest is a random fill
    priority = {e for e, r in results.items() if r.grade == "重点"}
    reasons = sample["reason"].to_list()
    drawn_priority = sample.filter(pl.col("reason") == "priority")["id"].to_list()
    assert set(drawn_priority) <= priority
    assert reasons == sorted(reasons, key=lambda r: r != "priority")
    scores = [results[e].score for e in drawn_priority]
    assert scores == sorted(scores, reverse=True)
    if summary["priority"]["candidates"] <= size:
        assert summary["priority"]["candidates"] == len(drawn_priority)
    else:
        cut = {c["id"] for c in summary["priority"]["cut"]}
        assert min(scores) >= max(results[e].score for e in cut)
    # officers: two each, by the plan's rule
    districts = dict(zip(frame["id"], frame["district"]))
    officer_district = dict(zip(officers(6)["id"], officers(6)["district"]))
    rule = summary["assignment"]["district"]
    for eid, offs in zip(sample["id"], sample["officers"].to_list()):
        assert len(set(offs)) == 2
        for o in offs:
            assert (officer_district[o] == districts[eid]) == (rule == "within") or rule == "any"


def test_se_production_leaves_out_units_checked_in_the_cycle(registry):
    ev = registry.evaluator("weihai.se_production", on=AS_OF)
    frame = synthetic(ev.checked, 124, seed=1)
    recent = [AS_OF - dt.timedelta(days=400)] * 62 + [AS_OF - dt.timedelta(days=2000)] * 31 + [None] * 31
    frame = frame.with_columns(pl.Series("last_inspected_on", recent, dtype=pl.Date))
    result = P.run(ev.checked, frame, 7, as_of=AS_OF, evaluator=ev)
    sample = result.sample
    assert result.to_json()["draws"][0]["excluded"] == 62
    assert not set(sample["id"]) & set(frame["id"][:62])
    assert sample.height == 31                                     # the quota still counts all 124


def test_se_user_second_check_draws_from_the_district_sample(registry):
    ev = registry.evaluator("weihai.se_user", on=AS_OF)
    frame = synthetic(ev.checked, 6173, seed=2)
    result = P.run(ev.checked, frame, 11, as_of=AS_OF, evaluator=ev)
    first = set(result.sample.filter(pl.col("draw") == "区市局检查")["id"])
    second = result.sample.filter(pl.col("draw") == "一事双查")
    assert second.height == math.ceil(Decimal("0.1") * 926) == 93 and set(second["id"]) <= first


def test_pharmacy_chains_with_several_c_or_d_stores_are_interviewed(registry):
    ev = registry.evaluator("weihai.retail_pharmacy", on=AS_OF)
    frame = synthetic(ev.checked, 400, seed=3)
    rng = np.random.default_rng(4)
    frame = frame.with_columns(pl.Series("chain_hq", rng.choice([f"HQ{k}" for k in range(30)] + [None] * 10, 400)))
    result = P.run(ev.checked, frame, 0, as_of=AS_OF, evaluator=ev, names=[], groups=True)
    grades = {e: r.grade for e, r in grades_of(registry, ev.checked, frame).items()}
    by_chain: dict = {}
    for eid, hq in zip(frame["id"], frame["chain_hq"]):
        if hq is not None:
            by_chain.setdefault(hq, []).append(eid)
    want = {hq: sorted(e for e in ids if grades[e] in ("C", "D")) for hq, ids in by_chain.items()}
    want = {hq: ids for hq, ids in want.items() if len(ids) >= 2}
    got = {a["key"]: a["matching"] for a in result.group_actions}
    assert got == want and got
    assert all(a["action"] == "约谈总部" and "G-WH7" in a["assumed"] for a in result.group_actions)


def test_pingdingshan_three_draw_modes_with_check_items(registry):
    ev = registry.evaluator("pingdingshan.general", on=AS_OF)
    checked = ev.checked
    rng = np.random.default_rng(5)
    size = 5000
    items = next(d for d in checked.policy.draws).match.items
    tags = sorted({t for i in items for t in i.tags}) + ["个体工商户"]
    frame = pl.DataFrame({"id": [f"914104{k:012d}" for k in range(size)],
                          "provincial_grade": rng.choice(list("ABCD"), size, p=[0.6, 0.25, 0.1, 0.05]).tolist(),
                          "tags": [";".join(rng.choice(tags, rng.integers(1, 3), replace=False)) for _ in range(size)]})
    result = P.run(checked, frame, 2021_12_27, as_of=AS_OF, evaluator=ev, officers=officers(3))
    modes = {d["name"]: d for d in result.to_json()["draws"]}
    assert {d["mode"] for d in modes.values()} == {"combined", "per_grade", "batches"}
    item_tags = {i.name: set(i.tags) for i in items}
    tag_of = dict(zip(frame["id"], frame["tags"]))
    for name, d in modes.items():
        sample = result.sample.filter(pl.col("draw") == name)
        matched = frame.filter(pl.col("tags").str.split(";").list.eval(
            pl.element().is_in(sorted(set().union(*item_tags.values())))).list.any())
        for s in d["strata"]:
            n_g = matched.filter(pl.col("provincial_grade") == s["grade"]).height
            assert s["population"] == n_g and s["drawn"] == math.ceil(Decimal(s["ratio"]) * n_g)
        for eid, got in zip(sample["id"], sample["items"].to_list()):
            have = set(tag_of[eid].split(";"))
            assert set(got) == {i for i, t in item_tags.items() if t & have} and got
        if d["mode"] == "batches":
            assert set(sample["batch"]) == set(range(1, d["batches"] + 1))

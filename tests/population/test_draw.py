"""The draw engine (engine/population.py) against docs/semantics.md §Draws: reproducibility,
canonical order, quota sizes under the declared rounding, ratios as minima, priority list before
random fill, the three draw modes, check items, group rules, the fingerprint."""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from engine import population as P

from conftest import DRAW_POLICY, compile_policy, policy_with_mode, population

AS_OF = dt.date(2024, 6, 30)


def run(checked, frame, seed=20240630, **kw):
    return P.run(checked, frame, seed, as_of=AS_OF, **kw)


def drawn(result, name) -> list:
    s = result.sample
    return s.filter(pl.col("draw") == name)["id"].to_list()


# ---- reproducibility --------------------------------------------------------------------------

def test_same_inputs_same_sample_and_the_seed_and_fingerprint_are_returned(draws_policy):
    frame = population(400)
    a, b = run(draws_policy, frame), run(draws_policy, frame)
    assert a.sample.equals(b.sample)
    j = a.to_json()
    assert j["seed"] == "20240630"
    assert j["population"]["fingerprint"] == b.to_json()["population"]["fingerprint"]
    assert j["population"]["fingerprint"].startswith("sha256:") and len(j["population"]["fingerprint"]) == 71
    assert j["policy"] == {"id": "test.draws", "version": "1", "sha256": draws_policy.sha256}
    assert "PCG64" in j["generator"]


def test_a_different_seed_gives_a_different_sample(draws_policy):
    frame = population(400)
    a, b = run(draws_policy, frame, seed=1), run(draws_policy, frame, seed=2)
    for name in ("年度检查", "双随机"):
        assert len(drawn(a, name)) == len(drawn(b, name))
    assert drawn(a, "双随机") != drawn(b, "双随机")


def test_input_row_order_does_not_matter(draws_policy):
    frame = population(500)
    a = run(draws_policy, frame)
    for k in range(3):
        b = run(draws_policy, frame.sample(fraction=1.0, shuffle=True, seed=k))
        assert a.sample.equals(b.sample)
        assert a.population.fingerprint == b.population.fingerprint


def test_the_fingerprint_covers_the_fields_read_and_only_those(draws_policy):
    frame = population(200)
    base = run(draws_policy, frame).population
    extra = run(draws_policy, frame.with_columns(pl.lit("x").alias("note"))).population
    assert extra.fingerprint == base.fingerprint          # a column nothing reads
    changed = frame.with_columns(pl.when(pl.col("id") == frame["id"][7]).then(1).otherwise(pl.col("complaints"))
                                 .alias("complaints"))
    assert run(draws_policy, changed).population.fingerprint != base.fingerprint


def test_the_generator_is_the_documented_pcg64_stream():
    """Stream(seed, *names) is PCG64(SeedSequence(seed, spawn_key=4 little-endian words of
    sha256(names joined by U+001F))): anyone can rebuild it from the docs."""
    digest = hashlib.sha256("draw\x1f双随机\x1fC".encode()).digest()
    key = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))
    want = np.random.PCG64(np.random.SeedSequence(20240630, spawn_key=key)).random_raw(5)
    assert (P.Stream(20240630, "draw", "双随机", "C").raw(5) == want).all()
    # PCG64 seeded through SeedSequence gives NumPy's published test vector
    # (numpy/random/tests/data/pcg64-testset-1.csv: seed 0xdeadbeaf), so a NumPy whose raw stream
    # changed would fail here rather than silently draw different samples
    ref = np.random.PCG64(np.random.SeedSequence(0xDEADBEAF)).random_raw(2).tolist()
    assert ref == [0x60D24054E17A0698, 0xD5E79D89856E4F12]


def test_below_is_a_uniform_choice():
    s = P.Stream(7, "below")
    x = s.below(10, 100_000)
    assert x.min() == 0 and x.max() == 9
    counts = np.bincount(x, minlength=10)
    assert abs(counts - 10_000).max() < 500


@pytest.mark.parametrize("seed", ["12", 12, "0", 2 ** 127])
def test_seeds_are_whole_numbers(seed):
    assert P.check_seed(seed) == int(seed)


@pytest.mark.parametrize("seed", ["-1", "abc", 2 ** 128, "1.5"])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(P.PopulationError) as e:
        P.check_seed(seed)
    assert e.value.code == "invalid_seed"


# ---- canonical order and the fingerprint ------------------------------------------------------

def _spec_fingerprint(rows: list, columns: list) -> str:
    """docs/semantics.md §Draws, written out independently of the engine."""
    def text(v):
        if v is None:
            return "\\N"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            v = ";".join(str(x) for x in v)
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    rows = sorted(rows, key=lambda r: r["id"].encode("utf-8"))
    out = "riskrules population 1\n"
    for c in columns:
        out += c + "\n" + "".join(text(r.get(c)) + "\n" for r in rows)
    return "sha256:" + hashlib.sha256(out.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("ids", [
    ["b", "a", "中国", "Z", "ab", "é"],                              # varying lengths, non-ASCII
    ["91371000MA0000002", "91371000MA0000001", "91371000MA0000010"],    # one length: the packed path
])
def test_the_fingerprint_is_the_documented_text(ids):
    n = len(ids)
    rows = [{"id": ids[k], "district": [None, "环翠\\区", "a\nb"][k % 3], "flag": [True, False, None][k % 3],
             "tags": [["x", "y"], [], None][k % 3], "count": [1, None, 30][k % 3]} for k in range(n)]
    frame = pl.DataFrame(rows, schema={"id": pl.String, "district": pl.String, "flag": pl.Boolean,
                                       "tags": pl.List(pl.String), "count": pl.Int64})
    cols = ["id", "count", "district", "flag", "tags"]
    order = P.canonical_order(frame["id"])
    got = P.fingerprint(frame, order, cols, {"id": P._id_bytes(frame["id"])}, {"district": P._codes(frame["district"])})
    assert got == _spec_fingerprint(rows, cols)
    assert P.fingerprint(frame, order, cols) == got                   # the general path hashes the same text


def test_canonical_order_is_utf8_byte_order_on_both_paths():
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=40, unique=True),
           st.lists(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY中", min_size=5, max_size=5),
                    min_size=1, max_size=60, unique=True))
    def check(free, fixed):
        for ids in (free, fixed):
            s = pl.Series(ids, dtype=pl.String)
            order = P.canonical_order(s)
            assert [ids[i] for i in order] == sorted(ids, key=lambda x: x.encode("utf-8"))
    check()


def test_value_sort_with_shared_high_bits_orders_by_the_low_bits():
    rng = np.random.default_rng(3)
    key = (rng.integers(0, 4, 5000).astype(np.uint64) << np.uint64(60)) | rng.integers(0, 2 ** 20, 5000).astype(np.uint64)
    order = P._argsort_u64(key)
    assert (order == np.argsort(key, kind="stable")).all()


def test_packing_wide_ids_into_two_words_keeps_the_order():
    rng = np.random.default_rng(5)
    alphabet = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRTUWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+,-./", dtype=np.uint8)
    m = alphabet[rng.integers(0, len(alphabet), (3000, 20))]
    ids = ["".join(chr(c) for c in row) for row in m]
    s = pl.Series(ids)
    assert len(P._pack(m)) == 2
    assert [ids[i] for i in P.canonical_order(s)] == sorted(ids)


def test_duplicate_and_missing_ids_are_errors(draws_policy):
    frame = population(20)
    dup = pl.concat([frame, frame.head(2)])
    with pytest.raises(P.PopulationError) as e:
        run(draws_policy, dup)
    assert e.value.code == "duplicate_id" and frame["id"][0] in e.value.message
    with pytest.raises(P.PopulationError) as e:
        run(draws_policy, frame.with_columns(pl.when(pl.col("id") == frame["id"][3]).then(None)
                                             .otherwise(pl.col("id")).alias("id")))
    assert e.value.code == "missing_id"
    with pytest.raises(P.PopulationError) as e:
        run(draws_policy, frame.drop("id"))
    assert e.value.code == "missing_column"


# ---- sizes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("share, n, rounding, size", [
    ("0.10", 103, "up", 11), ("0.10", 103, "down", 10), ("0.10", 103, "nearest", 10),      # 10.3
    ("0.15", 6173, "up", 926), ("0.15", 6173, "down", 925), ("0.15", 6173, "nearest", 926),  # 925.95
    ("0.25", 124, "up", 31), ("0.25", 124, None, 31),                                       # exact: no rule needed
    ("0.50", 4, "down", 2), ("0.50", 5, "nearest", 3), ("0.50", 5, "down", 2),              # 2.5: half up
    ("0.01", 1, "up", 1), ("0.01", 0, "up", 0),
])
def test_sizes_follow_the_declared_rounding(share, n, rounding, size):
    got, exact = P.size_of(Decimal(share), n, rounding)
    assert got == size and exact == Decimal(share) * n


def test_a_fractional_size_without_a_rule_is_refused():
    with pytest.raises(P.PopulationError) as e:
        P.size_of(Decimal("0.1"), 103, None)
    assert e.value.code == "rounding_missing"


@pytest.mark.parametrize("n", [103, 124, 777])
def test_plan_quota_sizes_are_exact(draws_policy, n):
    r = run(draws_policy, population(n, seed=n))
    plan = r.to_json()["draws"][0]
    assert plan["quota"]["size"] == math.ceil(Decimal("0.25") * n) == len(drawn(r, "年度检查"))
    second = r.to_json()["draws"][1]
    exact = Decimal("0.1") * plan["quota"]["size"]
    assert second["quota"]["size"] == int(exact.to_integral_value(rounding="ROUND_HALF_UP"))


@pytest.mark.parametrize("mode", ["per_grade", "combined", "batches 3"])
def test_per_grade_ratios_are_honoured_as_minimums(mode):
    checked = policy_with_mode(mode)
    frame = population(3000, seed=11)
    r = run(checked, frame, names=["双随机"])
    sample = r.sample
    counts = frame["provincial_grade"].value_counts()
    ratios = {"A": Decimal("0.01"), "B": Decimal("0.03"), "C": Decimal("0.10"), "D": Decimal("0.20")}
    for g, ratio in ratios.items():
        n_g = counts.filter(pl.col("provincial_grade") == g)["count"][0]
        got = sample.filter(pl.col("stratum") == g).height
        assert got == math.ceil(ratio * n_g) and got >= ratio * n_g
        assert set(sample.filter(pl.col("stratum") == g)["grade"]) == {g}
    assert sample["id"].n_unique() == sample.height


# ---- priority list, random fill, exclusions ---------------------------------------------------

def test_the_priority_list_comes_before_the_random_fill(draws_policy):
    frame = population(400, seed=4)
    r = run(draws_policy, frame)
    s = r.sample.filter(pl.col("draw") == "年度检查")
    size = r.to_json()["draws"][0]["quota"]["size"]
    prio = frame.filter((pl.col("accidents_2y") > 0) | (pl.col("recalls_2y") > 0) | (pl.col("complaints") > 0))
    reasons = s["reason"].to_list()
    if prio.height < size:
        assert set(prio["id"]) <= set(s["id"])
        k = reasons.index("random")
        assert set(reasons[:k]) == {"priority"} and set(reasons[k:]) == {"random"}
        assert s.height == size
    else:
        assert set(reasons) == {"priority"}


def test_tiers_and_order_decide_the_cut_and_the_cut_is_explained(draws_policy):
    frame = population(60, seed=9).with_columns(
        pl.Series("accidents_2y", [3, 2, 2, 1, 1, 1] + [0] * 54),
        pl.Series("recalls_2y", [0, 1, 0, 0, 0, 0] + [0] * 54),
        pl.Series("complaints", [0] * 6 + [1] * 30 + [0] * 24))
    r = run(draws_policy, frame)
    size = 15                                           # 25% of 60
    s = r.sample.filter(pl.col("draw") == "年度检查")
    ids = frame["id"].to_list()
    assert s["id"].to_list()[:6] == [ids[0], ids[1], ids[2]] + s["id"].to_list()[3:6]
    assert set(s["id"].to_list()[3:6]) == {ids[3], ids[4], ids[5]}   # accidents 1: order among them is random
    assert s["tier"].to_list() == [1] * 6 + [2] * 9
    summary = r.to_json()["draws"][0]["priority"]
    assert summary["candidates"] == 36 and summary["drawn"] == size
    assert [c["rank"] for c in summary["cut"]] == list(range(16, 37))
    assert {c["id"] for c in summary["cut"]} == set(ids[6:36]) - set(s["id"])
    assert "ranks 16–36" in summary["cut_reason"]
    assert s["rule"][0].startswith("重点名单 tier 1: accidents_2y > 0 or recalls_2y > 0")


def test_exclusions_are_never_drawn_but_count_in_the_quota():
    text = DRAW_POLICY.replace("MODE", "combined").replace(
        "    first where accidents_2y > 0 or recalls_2y > 0  basis \"附件四·一是\"\n",
        "    exclude where complaints >= 3  assumed \"test: checked in this cycle\"\n"
        "    first where accidents_2y > 0 or recalls_2y > 0  basis \"附件四·一是\"\n")
    checked = compile_policy(text)
    frame = population(200, seed=2)
    r = run(checked, frame, names=["年度检查"])
    excluded = set(frame.filter(pl.col("complaints") >= 3)["id"])
    got = set(drawn(r, "年度检查"))
    assert got and not got & excluded
    plan = r.to_json()["draws"][0]
    assert plan["quota"]["base"] == 200 and plan["quota"]["size"] == 50
    assert plan["excluded"] == len(excluded)


def test_a_plan_of_a_plan_draws_from_its_sample(draws_policy):
    r = run(draws_policy, population(300, seed=5))
    assert set(drawn(r, "一事双查")) <= set(drawn(r, "年度检查"))
    # naming the second plan runs the first too, with the same result
    alone = run(draws_policy, population(300, seed=5), names=["一事双查"])
    assert drawn(alone, "一事双查") == drawn(r, "一事双查")


def test_a_shortfall_is_reported_not_hidden():
    text = DRAW_POLICY.replace("MODE", "combined").replace("    then random  basis \"附件四·一是\"\n", "", 1)
    checked = compile_policy(text)
    frame = population(100, seed=1).with_columns(pl.lit(0).alias("accidents_2y"), pl.lit(0).alias("recalls_2y"),
                                                  pl.lit(0).alias("complaints"))
    r = run(checked, frame, names=["年度检查"])
    assert drawn(r, "年度检查") == []
    assert r.to_json()["draws"][0]["shortfall"] == 25
    assert "only 0 enterprises could be drawn" in r.warnings[0]


def test_conditions_with_dates_and_missing_values():
    text = DRAW_POLICY.replace("MODE", "combined").replace(
        "first where complaints > 0", "first where years_since(licensed_on) < 2")
    checked = compile_policy(text)
    frame = population(40, seed=3).with_columns(
        pl.lit(0).alias("accidents_2y"), pl.lit(0).alias("recalls_2y"),
        pl.Series("licensed_on", ["2023-09-01", None, "2010-01-01"] + [None] * 37))
    r = run(checked, frame, names=["年度检查"])
    s = r.sample
    assert s.filter(pl.col("reason") == "priority")["id"].to_list() == [frame["id"][0]]


# ---- draws: modes, batches, check items -------------------------------------------------------

def test_per_grade_draws_are_independent_of_other_grades():
    checked = policy_with_mode("per_grade")
    frame = population(2000, seed=8)
    a = run(checked, frame, names=["双随机"]).sample
    # change the A enterprises (drop half of them): the other grades' draws do not move
    fewer_a = frame.filter((pl.col("provincial_grade") != "A") | (pl.int_range(pl.len()) % 2 == 0))
    b = run(checked, fewer_a, names=["双随机"]).sample
    for g in "BCD":
        assert a.filter(pl.col("stratum") == g)["id"].to_list() == b.filter(pl.col("stratum") == g)["id"].to_list()


def test_batches_deal_every_grade_evenly():
    checked = policy_with_mode("batches 4")
    r = run(checked, population(3000, seed=12), names=["双随机"])
    s = r.sample
    assert set(s["batch"]) == {1, 2, 3, 4}
    for g in "ABCD":
        sizes = s.filter(pl.col("stratum") == g)["batch"].value_counts()["count"]
        assert sizes.max() - sizes.min() <= 1
    sizes = r.to_json()["draws"][0]["batch_sizes"]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == s.height


def test_check_items_match_tags_and_unmatched_enterprises_are_not_drawn():
    text = DRAW_POLICY.replace("MODE", "combined").replace(
        "    rounding up  assumed \"SPEC G-X4\"\n  }\n  group",
        "    rounding up  assumed \"SPEC G-X4\"\n"
        "    match items by tags {\n"
        "      食品检查 \"食品经营检查\" tags 食品经营, 餐饮  assumed \"SPEC G-PD3\"\n"
        "      药品检查 tags 药品零售  assumed \"SPEC G-PD3\"\n"
        "    }\n  }\n  group")
    checked = compile_policy(text)
    frame = population(2000, seed=6)
    rng = np.random.default_rng(1)
    frame = frame.with_columns(pl.Series("tags", rng.choice(["食品经营", "餐饮;药品零售", "", "工业产品"], 2000).tolist()))
    r = run(checked, frame, names=["双随机"])
    s = r.sample.join(frame.select("id", "tags"), on="id")
    assert s.height > 0
    for tags, items in zip(s["tags"].to_list(), s["items"].to_list()):
        have = set(tags.split(";"))
        assert items and set(items) == ({"食品检查"} if have & {"食品经营", "餐饮"} else set()) | \
            ({"药品检查"} if "药品零售" in have else set())
    summary = r.to_json()["draws"][0]
    assert summary["unmatched"] == frame.filter(pl.col("tags").is_in(["", "工业产品"])).height
    matched_c = frame.filter((pl.col("provincial_grade") == "C") & pl.col("tags").is_in(["食品经营", "餐饮;药品零售"]))
    c = next(x for x in summary["strata"] if x["grade"] == "C")
    assert c["population"] == matched_c.height and c["size"] == math.ceil(Decimal("0.1") * matched_c.height)


def test_a_grade_column_is_used_when_given_and_must_hold_the_policys_grades(draws_policy):
    frame = population(500, seed=3)
    by_eval = run(draws_policy, frame)
    by_col = run(draws_policy, frame.with_columns(pl.col("provincial_grade").alias("grade")))
    assert by_col.to_json()["population"]["grades"] == "column"
    assert by_eval.to_json()["population"]["grades"] == "evaluated"
    key = ["draw", "id", "stratum", "rank"]
    assert by_eval.sample.select(key).equals(by_col.sample.select(key))
    bad = frame.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("E"))
                             .otherwise(pl.col("provincial_grade")).alias("grade"))
    with pytest.raises(P.PopulationError) as e:
        run(draws_policy, bad)
    assert e.value.code == "invalid_grade" and e.value.details[0]["grade"] == "E"


def test_records_the_policy_cannot_grade_are_named(draws_policy):
    frame = population(30).with_columns(pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("Z"))
                                        .otherwise(pl.col("provincial_grade")).alias("provincial_grade"))
    with pytest.raises(P.PopulationError) as e:
        run(draws_policy, frame)
    assert e.value.code == "invalid_record" and e.value.details[0]["id"] == frame["id"][4]


# ---- group rules ------------------------------------------------------------------------------

def test_a_chain_with_two_c_or_d_stores_is_interviewed(draws_policy):
    frame = pl.DataFrame({
        "id": [f"S{k}" for k in range(8)],
        "provincial_grade": ["C", "D", "A", "C", "B", "D", "D", "A"],
        "chain_hq": ["HQ1", "HQ1", "HQ1", "HQ2", "HQ2", None, "", "HQ3"],
    })
    r = P.run(draws_policy, frame, 0, as_of=AS_OF, names=[], groups=True)
    assert [(a["key"], a["members"], a["matching"]) for a in r.group_actions] == [("HQ1", 3, ["S0", "S1"])]
    a = r.group_actions[0]
    assert a["action"] == "约谈总部" and a["basis"] == "附件三·一是" and "G-WH7" in a["assumed"]
    assert a["conditions"] == [{"kind": "count", "count": 2, "op": ">=", "value": 2, "met": True}]


def test_group_shares_compare_exactly():
    text = DRAW_POLICY.replace("MODE", "combined").replace(
        "count(members where grade in [C, D]) >= 2", "share(members where grade in [C, D]) >= 50%")
    checked = compile_policy(text)
    frame = pl.DataFrame({"id": [f"S{k}" for k in range(7)], "provincial_grade": ["C", "A", "D", "A", "A", "C", "B"],
                          "chain_hq": ["H1", "H1", "H2", "H2", "H2", "H3", "H3"]})
    r = P.run(checked, frame, 0, as_of=AS_OF, names=[], groups=True)
    assert [a["key"] for a in r.group_actions] == ["H1", "H3"]          # 1/2 and 1/2 hold, 1/3 does not


# ---- output -----------------------------------------------------------------------------------

def test_the_sample_is_written_as_csv_and_parquet(draws_policy, tmp_path):
    r = run(draws_policy, population(300))
    r.write(tmp_path / "s.csv")
    r.write(tmp_path / "s.parquet")
    csv = pl.read_csv(tmp_path / "s.csv", schema_overrides={"id": pl.String})
    pq = pl.read_parquet(tmp_path / "s.parquet")
    assert csv["id"].to_list() == pq["id"].to_list() == r.sample["id"].to_list()
    assert list(csv.columns) == ["draw", "kind", "position", "id", "grade", "stratum", "reason", "tier", "rank",
                                 "rule", "batch", "items", "officers"]
    with pytest.raises(P.PopulationError):
        r.write(tmp_path / "s.xlsx")


def test_tables_are_read_from_every_format(tmp_path):
    frame = population(50)
    frame.write_csv(tmp_path / "p.csv")
    frame.write_parquet(tmp_path / "p.parquet")
    frame.write_ndjson(tmp_path / "p.jsonl")
    (tmp_path / "p.json").write_text(frame.write_json(), encoding="utf-8")
    for name in ("p.csv", "p.parquet", "p.jsonl", "p.json"):
        got = P.read_table(tmp_path / name)
        assert got["id"].to_list() == frame["id"].to_list(), name
    (tmp_path / "zeros.csv").write_text("id,grade\n0012,A\n", encoding="utf-8")
    assert P.read_table(tmp_path / "zeros.csv")["id"].to_list() == ["0012"]
    with pytest.raises(P.PopulationError) as e:
        P.read_table(tmp_path / "p.xlsx")
    assert e.value.code == "unreadable_table"


def test_unknown_plan_names_are_refused(draws_policy):
    with pytest.raises(P.PopulationError) as e:
        run(draws_policy, population(10), names=["年度检察"])
    assert e.value.code == "unknown_plan" and "年度检查" in e.value.help


def test_one_grade_drawn_alone_is_its_part_of_the_full_per_grade_draw():
    checked = policy_with_mode("per_grade")
    frame = population(1500, seed=21)
    full = run(checked, frame, names=["双随机"]).sample
    alone = run(checked, frame, names=["双随机"], grades=["C"]).sample
    assert set(alone["stratum"]) == {"C"}
    assert alone["id"].to_list() == full.filter(pl.col("stratum") == "C")["id"].to_list()
    with pytest.raises(P.PopulationError) as e:
        run(checked, frame, grades=["E"])
    assert e.value.code == "unknown_grade"

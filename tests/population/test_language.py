"""The population constructs in the grammar and the AST: `plan`, `draw`, `match items`, `assign`,
`group by` — parsed, lowered to frozen nodes (spans left out of equality) and resolved."""
from __future__ import annotations

import logging
from decimal import Decimal

from lark import Lark, logger

from engine import nodes as n
from engine.lower import to_ast
from engine.parser import GRAMMAR_PATH, parse

from conftest import DRAW_POLICY, compile_policy

HEAD = """policy t.p {
  version "1"
  effective 2024-01-01
  grades A, B, C, D
  input g : grade
  input accidents_2y : count = 0
  grade = g
  measures { sampling_ratio : ratio
    all: sampling_ratio >= 1% assumed "t" }
"""


def lower(body: str) -> n.Policy:
    policy, diags = to_ast(parse(HEAD + body + "}\n"))
    assert not diags
    return policy


def test_the_grammar_has_no_lalr_conflicts(caplog):
    logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger="lark"):
        Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", debug=True)
    assert not [r for r in caplog.records if "Shift/Reduce" in r.getMessage() or "Reduce/Reduce" in r.getMessage()]


def test_a_plan_lowers_to_its_clauses_in_written_order():
    p = lower("""
  plan 年度检查 "年度检查任务" {
    quota 25% of population per year  basis "附件四·一是"
    rounding up  assumed "SPEC G-X4"
    exclude where accidents_2y is missing
    first where accidents_2y > 0  basis "附件四·一是"
    order by accidents_2y desc, grade, random  assumed "SPEC G-WH9"
    then random
    assign 2 officers avoid district at most 30 per officer  assumed "t"
  }
  plan 一事双查 { quota 10% of plan 年度检查 rounding nearest then random }
""")
    plan, second = p.plans
    assert plan == n.Plan("年度检查", (
        n.PlanQuota(Decimal("0.25"), n.Period(1, 1, "year"), (n.Provenance("basis", "附件四·一是"),)),
        n.Rounding("up", (n.Provenance("assumed", "SPEC G-X4"),)),
        n.Exclude(n.IsMissing(n.Ref(("accidents_2y",)))),
        n.Priority(n.Compare(">", n.Ref(("accidents_2y",)), n.Number(Decimal(0))), (n.Provenance("basis", "附件四·一是"),)),
        n.PriorityOrder((n.OrderKey("input", "accidents_2y", True), n.OrderKey("grade"), n.OrderKey("random")),
                        (n.Provenance("assumed", "SPEC G-WH9"),)),
        n.RandomFill(),
        n.Assign(2, avoid_district=True, load_cap=30, provenance=(n.Provenance("assumed", "t"),)),
    ), "年度检查任务")
    assert plan.quota.share == Decimal("0.25") and plan.rounding.mode == "up" and plan.fill is not None
    assert len(plan.priorities) == 1 and len(plan.excludes) == 1 and plan.assign.load_cap == 30
    assert second.quota == n.PlanQuota(Decimal("0.1"), None, (), base_plan="年度检查")
    assert second.rounding.mode == "nearest"


def test_a_draw_with_its_mode_grades_ratio_and_check_items():
    p = lower("""
  draw 双随机 "双随机抽查" {
    mode batches 3  assumed "SPEC G-PD3"
    grades C, D
    ratio sampling_ratio
    rounding up
    match items by tags {
      食品检查 "食品经营检查" tags 食品经营, 餐饮
      药品检查 tags 药品零售
    }
    assign 1 officers within district
  }
  draw 逐级 { mode per_grade ratio sampling_ratio rounding up }
  draw 一次 { mode combined ratio sampling_ratio rounding up }
""")
    d, per_grade, combined = p.draws
    assert d.mode == n.DrawMode("batches", 3, (n.Provenance("assumed", "SPEC G-PD3"),))
    assert d.grades.grades == ("C", "D") and d.ratio.measure == "sampling_ratio" and d.label == "双随机抽查"
    assert d.match.items == (n.CheckItem("食品检查", ("食品经营", "餐饮"), "食品经营检查"), n.CheckItem("药品检查", ("药品零售",)))
    assert d.assign == n.Assign(1, within_district=True)
    assert per_grade.mode.kind == "per_grade" and combined.mode.kind == "combined" and per_grade.grades is None


def test_a_group_rule():
    p = lower("""
  group by chain_hq when count(members where grade in [C, D]) >= 2 and share(members where accidents_2y > 0) > 50%
    -> action 约谈总部 "直接约谈总部"  basis "附件三·一是" assumed "SPEC G-WH7"
""")
    (r,) = p.group_rules
    assert r == n.GroupRule("chain_hq", (
        n.GroupCondition("count", n.Member(n.Ref(("grade",)), (n.Symbol("C"), n.Symbol("D"))), ">=", Decimal(2)),
        n.GroupCondition("share", n.Compare(">", n.Ref(("accidents_2y",)), n.Number(Decimal(0))), ">", Decimal("0.5")),
    ), "约谈总部", "直接约谈总部", (n.Provenance("basis", "附件三·一是"), n.Provenance("assumed", "SPEC G-WH7")))


def test_keywords_of_population_rules_stay_usable_as_input_names():
    """`district`, `items`, `first` … are keywords only where a population clause expects them."""
    checked = compile_policy(HEAD.replace("input accidents_2y : count = 0",
                                          "input district : count = 0\n  input items : count = 0\n"
                                          "  input first : count = 0") + """
  plan p { quota 50% of population  rounding up  assumed "t"
           first where district > 0 or items > 1 or first > 2  order by first desc  then random }
}
""")
    cond = checked.policy.plans[0].priorities[0].condition
    assert isinstance(cond, n.Or) and all(isinstance(c.left, n.InputRef) for c in cond.items)


def test_checking_resolves_conditions_to_inputs_and_the_final_grade():
    checked = compile_policy(DRAW_POLICY.replace("MODE", "combined"))
    plan = checked.policy.plans[0]
    first = plan.priorities[0].condition
    assert first == n.Or((n.Compare(">", n.InputRef("accidents_2y"), n.Number(Decimal(0))),
                          n.Compare(">", n.InputRef("recalls_2y"), n.Number(Decimal(0)))))
    member = checked.policy.group_rules[0].conditions[0].condition
    assert member == n.Member(n.GradeRef(), (n.Symbol("C"), n.Symbol("D")))


def test_order_by_score():
    p = lower("  plan p { quota 10% of population rounding up first where accidents_2y > 0 "
              "order by score desc, score asc, score then random }\n")
    assert p.plans[0].order.keys == (n.OrderKey("score", None, True), n.OrderKey("score"), n.OrderKey("score"))

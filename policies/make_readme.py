"""Write policies/README.md from the policies themselves, so its counts cannot drift.

    python policies/make_readme.py            # rewrite policies/README.md
    python policies/make_readme.py --check    # exit 1 if README.md is not what the policies say

Per policy it reads the header comment's `# published:` and `# assumed:` paragraphs (continuation
lines start with `#   `), checks every policy with the engine, runs its test cases, and counts the
`basis "…"` and `assumed "…"` clauses of its parse tree.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from engine.loader import Registry, load_paths     # noqa: E402
from engine.testing import run_case                # noqa: E402

JURISDICTIONS = [
    ("weihai", "威海 — 鲁双随机办函〔2021〕4号 (000_52fd5752c43b6dd7.txt), 2021-09-16"),
    ("xinyu", "新余市渝水区 — 渝市监字〔2022〕48号 (001_36a42f6ec508a116.txt), 2022-05-22"),
    ("shanxi", "山西省 — no 文号 printed (002_bc4a0117b3479f56.txt), 2022-03-03"),
    ("jinan", "济南 — no 文号 printed (003_78d459af3cb63cb4.txt), 2021-09-27"),
    ("pingdingshan", "平顶山市湛河区 — 湛双随机办[2021]15号 (004_dd427e169846bfaa.txt), 2021-12-27"),
]

# What a jurisdiction's document describes but gives nothing to encode per enterprise (SPEC §2, §4).
NOT_ENCODED = {
    "weihai": "the ten 《差异化监管细化措施清单》 and the three governing documents are not included (G-WH3); "
              "the platform and its 7300多万条数据 (附件一·一是) are data, not rules.",
    "xinyu": "the food, drug and special-equipment indicator systems are announced with their factors but no "
             "grades, weights or measures (三(一)2–4, G-XY5); area- and sector-level 定向抽查 (三(五)) and the "
             "2022–2025 timeline act on the whole district, not on one entity.",
    "shanxi": "the specialised domains are told to build their own systems by 2023 (三(六)) — no rules given; "
              "the deadlines of 三–六 and the area/sector analysis (五(十五)) are work plans, not per-enterprise rules.",
    "jinan": "the contents of the 济南市重点领域联合惩戒清单 (二(三)2(1)) and of the provincial model are not given "
             "(G-JN2).",
    "pingdingshan": "indicators, weights and cutoffs live in the Henan provincial system (G-PD2).",
}


def header_sections(text: str) -> dict:
    """The `# published:` / `# assumed:` paragraphs of the comment above `policy`."""
    out: dict = {}
    current = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:]
        for key in ("published", "assumed"):
            if body.strip().startswith(key + ":"):
                current = key
                out[key] = [body.strip()[len(key) + 1:].strip()]
                break
        else:
            if current and body.startswith("   ") and body.strip():
                out[current].append(body.strip())
            else:
                current = None
    return {k: _join(v) for k, v in out.items()}


def _join(lines: list) -> str:
    """Join wrapped comment lines: no space between two Chinese characters or after 、，；："""
    text = ""
    for line in lines:
        if text and not (ord(text[-1]) > 0x2E7F and ord(line[0]) > 0x2E7F):
            text += " "
        text += line
    return text


def clause_counts(text: str) -> tuple[int, int]:
    """The `basis "…"` and `assumed "…"` clauses written in the policy (the header's basis included)."""
    from engine.parser import parse

    tree = parse(text)
    kinds = [t.data for t in tree.iter_subtrees()]
    return kinds.count("basis") + kinds.count("policy_basis"), kinds.count("assumed")


def shape(c) -> str:
    p = c.policy
    parts = [" ".join(c.grades)]
    if p.uses:
        parts.append("uses " + ", ".join(u.policy_id for u in p.uses))
    counts = [(len(c.indicators), "indicators"), (len(p.overrides), "overrides"), (len(p.alerts), "alerts"),
              (sum(len(v) for v in c.measures_by_grade.values()), "measure items (all grades)"),
              (len(p.plans), "plans"), (len(p.draws), "draws"), (len(p.group_rules), "group rules"),
              (len(p.requires), "data rules")]
    parts += [f"{k} {what}" for k, what in counts if k]
    return "; ".join(parts)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") if text else "—"


def render() -> str:
    sources = load_paths([HERE])
    errors = [d for s in sources for d in s.diagnostics if d.is_error]
    warnings = [d for s in sources for d in s.diagnostics if d.severity.value == "warning"]
    if errors:
        raise SystemExit("policies do not check clean:\n" + "\n".join(f"{d.span} {d.message}" for d in errors))
    registry = Registry([s.checked for s in sources])
    rows = defaultdict(list)
    total_tests = total_passed = total_assumed = total_basis = 0
    for s in sorted(sources, key=lambda s: s.path):
        c = s.checked
        ev = registry.evaluator(c.id, version=c.version)
        outcomes = [run_case(ev, t) for t in c.policy.tests]
        passed = sum(o.passed for o in outcomes)
        basis, assumed = clause_counts(s.text)
        total_tests += len(outcomes)
        total_passed += passed
        total_assumed += assumed
        total_basis += basis
        sections = header_sections(s.text)
        rel = Path(s.path).resolve().relative_to(HERE)
        rows[c.policy.jurisdiction].append(
            f"| [`{c.id}`]({rel.as_posix()}) — {cell(c.policy.title)}<br>{cell(shape(c))} "
            f"| {cell(sections.get('published', ''))} "
            f"| {cell(sections.get('assumed', ''))}<br>(`basis` {basis} · `assumed` {assumed}) "
            f"| {len(outcomes)}" + ("" if passed == len(outcomes) else f" ({len(outcomes) - passed} FAILING)")
            + " |")
    out = [
        "# Policies",
        "",
        "<!-- generated by `python policies/make_readme.py`; edit the policies' header comments, not this file -->",
        "",
        "One file per jurisdiction and domain: `policies/<jurisdiction>/<domain>.rules`. Every number in a",
        "policy carries `basis \"<section>\"` (the document says so) or `assumed \"<why>\"` (it does not — the",
        "gap ids G-… are those of `/work/shared/seeds/SPEC.md` §4). `riskrules check policies/` lists every",
        "assumption; `riskrules test policies/` runs the test cases counted below. Population rules",
        "(plans, draws, group rules) act on a set of enterprises: `riskrules draw` and `riskrules groups`",
        "run them over a population file; they are checked, not counted as test cases.",
        "",
        f"**{len(sources)} policies · {total_tests} test cases ({total_passed} passing) · "
        f"{total_basis} `basis` · {total_assumed} `assumed` · {len(warnings)} warnings.**",
        "",
        "How the general (通用) and domain (专业) grades combine is published nowhere except for Weihai's",
        "filling units (「企业信用评分」 is one of their indicators): `weihai.se_filling` scores",
        "`general.score`; `weihai.food_sales` keeps a seller with a general D or E at C or above, an",
        "assumption (SPEC G-X3).",
        "",
    ]
    for key, title in JURISDICTIONS:
        out += [f"## {key} — {title}", "",
                "| domain | what is published | what is assumed | tests |", "|---|---|---|---|"]
        out += rows.get(key, ["| — | no policy yet | | 0 |"])
        out += ["", f"Not encoded: {NOT_ENCODED[key]}", ""]
    out += [
        "## Language constructs added for these policies",
        "",
        "Each is specified in `docs/semantics.md` (§9–§11) and tested in `tests/test_language_extensions.py`.",
        "",
        "| construct | the rule that needed it |",
        "|---|---|",
        "| `<measure item> when <condition>` — of several items for one measure the first that applies "
        "| renewal waiver for A/B food producers only if conditions are declared unchanged (weihai 附件二·三是); "
        "licensing mode by pharmacy store type (附件三·四是); Jinan's revocation, joint punishment and credit "
        "repair; the four exceptions to A's no-proactive-inspection (xinyu, shanxi) |",
        "| `override … -> G for <duration>` (since / until in the result) "
        "| a stallholder's quarter-long ban after two failed rapid tests in a month (weihai 附件二·二是) |",
        "| `grade = <grade>` — a fixed base grade that only overrides move | the stallholder, who has no score |",
        "| test expectations `no action X`, `override X until DATE`, `completeness met` / `not met` "
        "| asserting a conditional action absent, a ban's last day, Xinyu's 90 % collection rule |",
        "",
    ]
    return "\n".join(out)


def main() -> int:
    text = render()
    target = HERE / "README.md"
    if "--check" in sys.argv[1:]:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print("policies/README.md is out of date: run python policies/make_readme.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

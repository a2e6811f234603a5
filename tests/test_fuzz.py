"""Fuzz: a mangled policy gets diagnostics, never a traceback.

Hypothesis takes the shipped policies (policies/**/*.rules) and the policies of the semantics
cases, and mangles them the ways a hurried editor does: deletes, duplicates and swaps tokens and
lines, inserts stray characters (Chinese text, full-width punctuation, quotes, backslashes,
control characters), truncates, swaps keywords, and replaces numbers with huge, negative and odd
values. Whatever comes out, `engine.compile_text` and the loader behind `riskrules check` must
return diagnostics (each renders as text, GitHub annotation and JSON) — and a policy that checks
clean must compile to an evaluator that runs its own tests and an empty record without raising
anything but InputError.

Bounded for CI: 1,000 + 250 examples, no per-example deadline (about 20 s of CPU in all).
A deeper run: `RISKRULES_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine import InputError, compile_text, load_paths
from engine.compiler import Evaluator
from engine.diagnostics import CODES, Diagnostic, render_github, render_json, render_text
from engine.testing import record_of, run_case

from _cases import files, read

ROOT = Path(__file__).resolve().parent.parent


def _corpus() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "policies").rglob("*.rules"))]
    for path in files("semantics"):
        data = read(path)
        if "policy" in data:
            texts.append(data["policy"])
    assert texts, "no policies to mutate"
    return texts


CORPUS = _corpus()
# the shipped policies that check clean, so a mangled domain policy is checked against the
# general policy it `use`s (as `riskrules check policies/` does) instead of stopping at unknown_policy
KNOWN = {s.checked.id: s.checked for s in load_paths([ROOT / "policies"]) if s.checked is not None}

TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\d{4}-\d{2}-\d{2}|\d+(?:\.\d+)?%?|\w+|\.\.<?|->|[<>=!]=|\S')
NUMBER = re.compile(r"\d{4}-\d{2}-\d{2}|\d+(?:\.\d+)?%?")
KEYWORDS = ["policy", "title", "version", "effective", "basis", "assumed", "precision", "grades", "use", "as",
            "inputs", "input", "count", "number", "ratio", "bool", "enum", "date", "grade", "events", "missing",
            "required", "worst", "exclude", "points", "indicators", "group", "weight", "otherwise", "by",
            "score", "below", "override", "at", "least", "most", "raise", "lower", "measures", "all", "action",
            "generally", "per", "duration", "alert", "when", "require", "completeness", "plan", "quota", "of",
            "population", "and", "or", "not", "in", "is", "last", "before", "test", "given", "expect", "no",
            "error", "true", "false", "min", "max", "years_since", "days_since", "for", "month", "years", "day"]
STRAY = ["：", "，", "％", "“", "”", "（", "）", "；", "【", "】", "、", "。", "·", "风险", "企业", "婴幼儿配方食品",
         "'", '"', "\\", "\\n", "{", "}", "(", ")", "[", "]", "..", "..<", "->", "|", ";", ",", ":", "=", "==",
         "!=", ">=", "<", "%", "-", "+", "*", "/", "#", "\n", "\t", "\r", "\x00", "\u200b", "\ufeff", "𝟘", "①",
         "__import__('os')", "${x}", "{{x}}"]
ODD_NUMBERS = ["0", "-0", "-1", "1", "00", "007", "0.5", "0.005", "1.999999999999999999999", "100", "101",
               "1000000000", "99999999999999999999999999999999999999", "0.000000000000000000001",
               "12345678901234567890.123456789", "0%", "100%", "250%", "0.001%", "33.333333333333333333333333333%",
               "2024-02-29", "2023-02-29", "1900-03-01", "9999-12-31", "2024-13-45", "0001-01-01",
               "999999999"]


def _apply(text: str, mutation) -> str:
    kind, a, b, payload = mutation
    if kind in ("delete_line", "duplicate_line", "swap_lines", "insert_in_line"):
        lines = text.split("\n")
        i, j = a % len(lines), b % len(lines)
        if kind == "delete_line":
            del lines[i]
        elif kind == "duplicate_line":
            lines.insert(i, lines[i])
        elif kind == "swap_lines":
            lines[i], lines[j] = lines[j], lines[i]
        else:
            k = b % (len(lines[i]) + 1)
            lines[i] = lines[i][:k] + payload + lines[i][k:]
        return "\n".join(lines)
    if kind == "truncate":
        return text[: a % (len(text) + 1)]
    spans = [m.span() for m in (NUMBER if kind == "number" else TOKEN).finditer(text)]
    if kind == "keyword":
        spans = [s for s in spans if text[s[0]:s[1]] in KEYWORDS]
    if not spans:
        return text
    s, e = spans[a % len(spans)]
    if kind in ("number", "keyword", "replace_token"):
        return text[:s] + payload + text[e:]
    if kind == "delete_token":
        return text[:s] + text[e:]
    if kind == "duplicate_token":
        return text[:e] + " " + text[s:e] + text[e:]
    if kind == "insert_before_token":
        return text[:s] + payload + text[s:]
    s2, e2 = spans[b % len(spans)]
    if (s, e) == (s2, e2):
        return text
    (s, e), (s2, e2) = sorted([(s, e), (s2, e2)])
    if s2 < e:
        return text
    return text[:s] + text[s2:e2] + text[e:s2] + text[s:e] + text[e2:]      # swap_tokens


_index = st.integers(min_value=0, max_value=10**6)
_stray = st.one_of(st.sampled_from(STRAY), st.text(max_size=4),
                   st.text(alphabet=st.characters(min_codepoint=0x3000, max_codepoint=0x9fff), min_size=1, max_size=3))
MUTATION = st.one_of(
    st.tuples(st.sampled_from(["delete_line", "duplicate_line", "swap_lines", "truncate", "delete_token",
                               "duplicate_token", "swap_tokens"]), _index, _index, st.just("")),
    st.tuples(st.sampled_from(["insert_in_line", "insert_before_token", "replace_token"]), _index, _index, _stray),
    st.tuples(st.just("number"), _index, _index, st.sampled_from(ODD_NUMBERS)),
    st.tuples(st.just("keyword"), _index, _index, st.sampled_from(KEYWORDS)),
)
MANGLED = st.builds(lambda text, ms: _mangle(text, ms), st.sampled_from(CORPUS), st.lists(MUTATION, min_size=1, max_size=4))


def _mangle(text: str, mutations) -> str:
    for m in mutations:
        text = _apply(text, m)
    return text


def _assert_is_diagnostics(diags, source: str) -> None:
    assert isinstance(diags, list)
    for d in diags:
        assert isinstance(d, Diagnostic) and d.code in CODES, d
        assert d.message and isinstance(d.message, str)
        render_text(d, source)
        render_github(d)
    json.loads(render_json(diags))


def _exercise(checked) -> None:
    """A policy that checks clean compiles, runs its own tests, renders their results with the
    explanation, and meets an empty record."""
    ev = Evaluator(checked)
    records = []
    for case in checked.policy.tests:
        run_case(ev, case)
        records.append((record_of(case), case.as_of or checked.policy.effective))
    records.append(({}, dt.date(2024, 6, 30)))
    for record, as_of in records:
        try:
            result = ev.evaluate(record, as_of, explain=True)
        except InputError:
            continue
        json.dumps(result.to_json(), ensure_ascii=False)


EXAMPLES = int(os.environ.get("RISKRULES_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(MANGLED)
def test_a_mangled_policy_gets_diagnostics_never_a_traceback(text):
    checked, diags = compile_text(text, "mangled.rules", KNOWN)
    _assert_is_diagnostics(diags, text)
    if checked is None:
        assert any(d.is_error for d in diags), "no evaluator and no error to say why"
        event("rejected: " + min((d.code for d in diags if d.is_error), key=lambda c: c != "syntax_error"))
    else:
        assert not any(d.is_error for d in diags)
        event("checks clean: evaluated")
        _exercise(checked)


@settings(max_examples=max(EXAMPLES // 4, 1), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.lists(MANGLED, min_size=1, max_size=3))
def test_riskrules_check_on_a_mangled_tree_reports_never_raises(tmp_path_factory, texts):
    folder = tmp_path_factory.mktemp("policies")
    for k, text in enumerate(texts):
        (folder / f"p{k}.rules").write_text(text, encoding="utf-8")
    sources = load_paths([folder])
    assert len(sources) == len(texts)
    for s in sources:
        _assert_is_diagnostics(s.diagnostics, s.text)
        if s.checked is not None:
            _exercise(s.checked)


def test_the_mutations_do_mutate():
    """The fuzzer is only as good as its mutations: each kind changes a shipped policy."""
    text = CORPUS[0]
    kinds = {"delete_line": "", "duplicate_line": "", "swap_lines": "", "truncate": "", "delete_token": "",
             "duplicate_token": "", "swap_tokens": "", "insert_in_line": "：", "insert_before_token": "“",
             "replace_token": "风险", "number": "-1", "keyword": "otherwise"}
    for kind, payload in kinds.items():
        assert _apply(text, (kind, 7, 3, payload)) != text, kind

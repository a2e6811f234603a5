"""A policy written to look like Python injection does its scoring and nothing else.

Names, strings, labels, grades, enum members, overrides and tests below are Python-ish traps:
`__import__('os').system(...)`, quotes and backslashes, newline escapes, dunder names, and names
of the generated code's own variables (`rec`, `get`, `total`, `KNOWN`, `v0`). The compiler builds
the evaluator with `ast` node constructors, so policy text can only ever be a string constant:

* compiling, evaluating (explanation off and on), rendering JSON, running the policy's own test
  and rendering its diagnostics create no marker file and call no `os.system`;
* the evaluation is exactly the scoring the policy says;
* in `Evaluator.source`, every hostile text occurs only inside string constants, every name is
  one the generator makes, and every call is to a whitelisted helper.
"""
from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re

import pytest

from engine import compile_text
from engine.compiler import Evaluator
from engine.diagnostics import render_github, render_json, render_text
from engine.testing import run_case

POLICY = r'''
policy __import__.__class__ {
  title     "__import__('os').system('touch MARKER')"
  version   "1'); __import__('os').system('touch MARKER'); ('"
  effective 2024-01-01
  basis     "\"\\\n\t''' + "'''" + r'''\"\"\" {{x}} %s ${x} \u0000"

  grades __class__ "__import__('os').system('touch MARKER')", __builtins__ "open('MARKER', 'w').write('x')"

  inputs {
    __import__ : count "__import__('os').system('touch MARKER')"
    rec        : bool = false "\"); import os; os.system('touch MARKER') #"
    total      : enum(__mro__, __globals__, os) "exec(\"import os\\nos.system('touch MARKER')\")"
    KNOWN      : ratio missing exclude
    v0         : count missing worst
  }

  indicators {
    group exec "exec('import os')" weight 100% {
      eval           weight 40%: __import__ 0 -> 0 | 1..2 -> 50 | >= 3 -> 100
      system         weight 20%: rec true -> 100 | false -> 0
      __subclasses__ weight 20%: total __mro__ -> 0 | __globals__ -> 50 | os -> 100
      get            weight 10%: KNOWN < 0.5 -> 0 | >= 0.5 -> 100
      v0             weight 10%: v0 0 -> 0 | otherwise -> 100
    }
  } assumed "'); __import__('os').system('touch MARKER'); ('"

  grade by score {
    __class__ below 50
    __builtins__ otherwise
  } assumed "\\'); os.system('touch MARKER') #"

  override __del__ "__import__('os').system('touch MARKER')": rec = true and total = os -> __builtins__
    basis "globals()['__builtins__']['__import__']('os').system('touch MARKER')"
  alert __getattr__ "lambda: __import__('os')" when __import__ >= 5 basis "breakpoint()"

  measures {
    mode : enum(__init__, __call__) "getattr(__builtins__, 'eval')('1')"
    __class__:    mode = __init__ basis "x";
                  action __reduce__ "__import__('os').system('touch MARKER')" basis "x"
    __builtins__: mode = __call__ basis "y"
  }

  test "__import__('os').system('touch MARKER')" {
    given __import__ = 3, rec = true, total = os
    expect grade __builtins__, override __del__, no alert __getattr__
  }
}
'''

HOSTILE = ["__import__('os').system('touch MARKER')", "open('MARKER', 'w').write('x')",
           "\"); import os; os.system('touch MARKER') #", "exec('import os')",
           "'); __import__('os').system('touch MARKER'); ('", "exec(\"import os\\nos.system('touch MARKER')\")",
           "globals()['__builtins__']['__import__']('os').system('touch MARKER')", "lambda: __import__('os')",
           "getattr(__builtins__, 'eval')('1')", "breakpoint()"]
DUNDERS = ["__import__", "__class__", "__builtins__", "__mro__", "__globals__", "__subclasses__", "__del__",
           "__getattr__", "__init__", "__call__", "__reduce__"]

# what the generator names: its own variables (`total`, `v3`, `d_v3`, `b0`, `c2` …), the three
# builtins it may use, and helper constants bound in its namespace (`KNOWN`, `MAP_2`, `CHECK_5` …)
GENERATED_NAME = re.compile(r"(rec|env|get|bad|total|excluded|absent|collected|int|float|str"
                            r"|[a-z]\d+|d_v\d+|[A-Z]+(_[A-Z]+)*(_\d+)?)")
HELPER = re.compile(r"[A-Z]+(_[A-Z]+)*(_\d+)?")
HELPER_CALL = re.compile(r"(get|KEYS|(CHECK|OPERAND|ARITH|KEY)_\d+)")


@pytest.fixture()
def marker(tmp_path, monkeypatch):
    path = tmp_path / "pwned"
    calls = []
    monkeypatch.setattr(os, "system", lambda *a, **k: calls.append(a) or 0)
    yield path, calls
    assert not path.exists(), "policy text was executed: the marker file exists"
    assert calls == [], f"policy text called os.system: {calls}"


def _compiled(marker_path):
    text = POLICY.replace("MARKER", str(marker_path))
    checked, diags = compile_text(text, "hostile.rules")
    assert checked is not None, [d.message for d in diags if d.is_error]
    for d in diags:                     # the renderers see the hostile text too
        render_text(d, text)
        render_github(d)
    render_json(diags)
    return Evaluator(checked), text


def test_a_hostile_policy_scores_exactly_as_written(marker):
    ev, _ = _compiled(marker[0])
    record = {"__import__": 3, "rec": True, "total": "os", "KNOWN": 0.7, "v0": 0}
    for explain in (False, True):
        r = ev.evaluate(record, dt.date(2024, 6, 30), explain=explain)
        # 40 % x 100 + 20 % x 100 + 20 % x 100 + 10 % x 100 + 10 % x 0 = 90
        assert (str(r.score), r.base_grade, r.grade) == ("90.00", "__builtins__", "__builtins__")
        assert [o.name for o in r.overrides] == ["__del__"]
        assert [a.name for a in r.alerts] == []
        out = r.to_json()
        json.dumps(out, ensure_ascii=False)
    assert out["grade_label"] == f"open('{marker[0]}', 'w').write('x')"        # returned as data
    assert out["explanation"]["indicators"][0]["indicator"] == "eval"

    low = ev.evaluate({"__import__": 0, "total": "__mro__"}, dt.date(2024, 6, 30), explain=True)
    # KNOWN missing (excluded, 10 %); v0 missing (worst: 100 points x 10 % = 10) → 10 / 90 % = 11.11
    assert (str(low.score), low.grade) == ("11.11", "__class__")
    assert {m["name"] for m in low.measures} == {"mode", "__reduce__"}


def test_a_hostile_policy_runs_its_own_test(marker):
    ev, _ = _compiled(marker[0])
    (case,) = ev.checked.policy.tests
    outcome = run_case(ev, case)
    assert outcome.passed, outcome.failures


def test_hostile_text_is_only_ever_a_string_constant_in_the_generated_source(marker):
    ev, text = _compiled(marker[0])
    tree = ast.parse(ev.source)

    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert "__import__" in constants and "total" in constants, "input names are read by constant keys"

    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert GENERATED_NAME.fullmatch(node.id), f"a name the generator does not make: {node.id}"
        elif isinstance(node, ast.Call):
            f = node.func
            helper = isinstance(f, ast.Name) and HELPER_CALL.fullmatch(f.id)
            table_lookup = (isinstance(f, ast.Attribute) and f.attr == "get" and isinstance(f.value, ast.Name)
                            and HELPER.fullmatch(f.value.id))           # MAP_2.get(v2): a dict lookup
            assert helper or table_lookup, f"a call to something other than a whitelisted helper: {ast.unparse(node)}"
        elif isinstance(node, ast.Attribute):
            assert node.attr in ("get", "__class__"), f"an unexpected attribute: {ast.unparse(node)}"
            assert isinstance(node.value, ast.Name) and GENERATED_NAME.fullmatch(node.value.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom, ast.Lambda, ast.Global, ast.Nonlocal, ast.Delete,
                               ast.With, ast.Try, ast.ClassDef)):
            raise AssertionError(f"the generated code holds a {type(node).__name__}")

    # outside string constants, the source holds none of the hostile texts or dunder names
    stripped = ast.unparse(_blank_strings(tree))
    for bad in HOSTILE + [d for d in DUNDERS if d != "__class__"] + ["os.system", "import", "exec", "eval"]:
        assert bad.replace("MARKER", str(marker[0])) not in stripped, bad
    # `__class__` is the generator's own type test (`v0.__class__ is int`), never a policy name
    assert "__class__" not in re.sub(r"\b[a-z]\d+\.__class__ is ", "", stripped)


def test_the_generated_code_sees_no_builtins_but_the_three_it_uses(marker):
    ev, _ = _compiled(marker[0])
    builtins = ev._run.__globals__["__builtins__"]
    assert set(builtins) <= {"int", "float", "str"}
    assert "__import__" not in builtins and "open" not in builtins and "eval" not in builtins


def _blank_strings(tree):
    class Blank(ast.NodeTransformer):
        def visit_Constant(self, node):
            return ast.Constant(value="") if isinstance(node.value, str) else node
    return Blank().visit(tree)

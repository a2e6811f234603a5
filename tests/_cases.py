"""The one loader for the data-driven cases under tests/cases/ (STYLE §7: tests as data).

A case file is YAML with a `note` and a list of `cases`. Two kinds of case:

* **diagnostics** (tests/cases/diagnostics, tests/cases/checker): a policy text (`policy:`) or a
  small tree of files (`files: {name.rules: text}`), and `want:` — the diagnostics `check` must
  report, each `{code, line, column, message}` (`message` exact, or `message_has` for a
  distinctive part; optional `help_has`, `severity`, `file`). The list must be *complete*:
  every error and warning the checker reports is listed (`assumption` notes only when the case
  lists one), so a case also proves nothing spurious comes out.

* **evaluations** (tests/cases/semantics, tests/cases/inputs): a policy, then records (`given:`)
  with an `as_of:` and what is wanted of the result (`grade`, `score`, `base_grade`,
  `overrides`, `alerts`, `completeness`, `measures`, `problems` for a rejected record …).

Dates stay strings in these files (no YAML timestamp magic), exactly as a JSON body carries them.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml

from engine import InputError, Registry, compile_text, load_paths
from engine.compiler import Evaluator

CASES = Path(__file__).resolve().parent / "cases"


class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: `2024-06-30` stays the string a JSON body sends."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


def files(topic: str) -> list[Path]:
    return sorted((CASES / topic).glob("*.yaml"))


def params(*topics: str):
    """(id, case, file data) for every case of the topics, for pytest.mark.parametrize."""
    import pytest

    out = []
    for topic in topics:
        for path in files(topic):
            data = read(path)
            for k, case in enumerate(data["cases"]):
                name = case.get("name") or f"case {k + 1}"
                # `known_bug: "…"` marks a case the engine does not meet yet (strict: it fails
                # loudly once the bug is fixed, so the mark is removed with the fix)
                marks = [pytest.mark.xfail(reason=case["known_bug"], strict=True)] if "known_bug" in case else []
                out.append(pytest.param(case, data, id=f"{path.stem}: {name}", marks=marks))
    return out


# ---- diagnostics --------------------------------------------------------------------------

def diagnostics_of(case: dict, data: dict, tmp_path: Path) -> list:
    """Check the case's policy (or file tree) and return every diagnostic."""
    if "files" in case:
        for name, text in case["files"].items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text, encoding="utf-8")
        sources = load_paths([tmp_path])
        diags = [d for s in sources for d in s.diagnostics]
        return [_relative(d, tmp_path) for d in diags]
    _, diags = compile_text(case.get("policy", data.get("policy")), case.get("file", "policy.rules"))
    return list(diags)


def _relative(d, root: Path):
    import dataclasses

    file = d.span.file
    if file.startswith(str(root)):
        file = file[len(str(root)) + 1:]
    return dataclasses.replace(d, span=dataclasses.replace(d.span, file=file))


def _matches(want: dict, d) -> bool:
    if want["code"] != d.code or want["line"] != d.span.line or want["column"] != d.span.column:
        return False
    if "message" in want and want["message"] != d.message:
        return False
    if "message_has" in want and want["message_has"] not in d.message:
        return False
    if "help_has" in want and want["help_has"] not in d.help:
        return False
    if "severity" in want and want["severity"] != d.severity.value:
        return False
    if "file" in want and want["file"] != d.span.file:
        return False
    for key in ("end_line", "end_column"):
        if key in want and want[key] != getattr(d.span, key):
            return False
    return True


def _show(d) -> str:
    return (f"{{code: {d.code}, line: {d.span.line}, column: {d.span.column}, "
            f"message: {json.dumps(d.message, ensure_ascii=False)}}}  # {d.severity.value}, help: {d.help}")


def assert_diagnostics(case: dict, diags: list) -> None:
    wants = case["want"]
    assert wants, "a diagnostics case must want at least one diagnostic"
    listed_codes = {w["code"] for w in wants}
    got = [d for d in diags if d.code != "assumption" or "assumption" in listed_codes]
    unmatched_want = list(wants)
    unexpected = []
    for d in got:
        hit = next((w for w in unmatched_want if _matches(w, d)), None)
        if hit is None:
            unexpected.append(d)
        else:
            unmatched_want.remove(hit)
    if unmatched_want or unexpected:
        lines = ["the checker's diagnostics differ from the case"]
        lines += ["  wanted but not reported: " + json.dumps(w, ensure_ascii=False) for w in unmatched_want]
        lines += ["  reported but not wanted: " + _show(d) for d in unexpected]
        lines += ["  all reported:"] + ["    " + _show(d) for d in got]
        raise AssertionError("\n".join(lines))


# ---- evaluations --------------------------------------------------------------------------

def evaluator_of(case: dict, data: dict, tmp_path: Path):
    """The evaluator a case runs against: its own policy text, or a policy of its file tree."""
    tree = case.get("files", data.get("files"))
    if tree is not None:
        for name, text in tree.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text, encoding="utf-8")
        registry, diags = Registry.from_paths([tmp_path])
        errors = [d for d in diags if d.is_error]
        assert not errors, "the case's policies must check clean: " + "; ".join(map(_show, errors))
        policy_id = case.get("policy_id", data.get("policy_id"))
        return registry.evaluator(policy_id, on=as_of_of(case, data)), registry
    text = case.get("policy", data.get("policy"))
    checked, diags = compile_text(text, "policy.rules")
    errors = [d for d in diags if d.is_error]
    assert checked is not None and not errors, "the case's policy must check clean: " + "; ".join(map(_show, errors))
    return Evaluator(checked), None


def as_of_of(case: dict, data: dict) -> dt.date:
    text = case.get("as_of", data.get("as_of", "2024-06-30"))
    return dt.date.fromisoformat(str(text))


def evaluate_case(case: dict, data: dict, tmp_path: Path) -> None:
    """Evaluate the case's record with the explanation off and on; both must give what is wanted."""
    ev, _ = evaluator_of(case, data, tmp_path)
    record = case["given"]
    want = case["want"]
    assert want, "a case must want something of the result (or `problems`)"
    on = as_of_of(case, data)
    if "problems" in want:
        for explain in (False, True):
            try:
                result = ev.evaluate(record, on, explain=explain)
            except InputError as exc:
                assert_problems(want["problems"], exc.problems)
            else:
                raise AssertionError(f"the record was accepted (grade {result.grade}, score {result.score}); "
                                     f"wanted it rejected with {want['problems']}")
        return
    for explain in (False, True):
        result = ev.evaluate(record, on, explain=explain)
        assert_result(want, result)
        rendered = result.to_json()
        json.dumps(rendered, ensure_ascii=False)            # the JSON form must serialise
        assert rendered["grade"] == result.grade
        assert ("explanation" in rendered) is explain


def assert_result(want: dict, r) -> None:
    got = {}
    if "grade" in want:
        got["grade"] = r.grade
    if "base_grade" in want:
        got["base_grade"] = r.base_grade
    if "score" in want:
        got["score"] = None if r.score is None else str(r.score)
    if "overrides" in want:
        got["overrides"] = sorted(o.name for o in r.overrides)
        want = dict(want, overrides=sorted(want["overrides"]))
    if "alerts" in want:
        got["alerts"] = sorted(a.name for a in r.alerts)
        want = dict(want, alerts=sorted(want["alerts"]))
    if "completeness" in want:
        got["completeness"] = {k: r.completeness[k] for k in want["completeness"]}
    if "measures" in want:
        got["measures"] = {m["name"]: _measure_text(m) for m in r.measures}
    if "decided_by" in want:
        got["decided_by"] = r.decided_by()
    if "explanation" in want and r._trace is not None:
        got["explanation"] = _explanation_subset(want["explanation"], r.explanation())
    elif "explanation" in want:
        want = {k: v for k, v in want.items() if k != "explanation"}
    if "version" in want:
        got["version"] = r.checked.version
    if "used" in want:
        got["used"] = {alias: {"grade": u.grade, "score": None if u.score is None else str(u.score)}
                       for alias, u in r.used.items()}
    unknown = set(want) - set(got)
    assert not unknown, f"the case wants keys the loader does not know: {sorted(unknown)}"
    assert got == want, f"\n  wanted: {want}\n  got:    {got}\n  decided by: {r.decided_by()}"


def _measure_text(m: dict) -> str:
    """A measure as a policy officer writes it: `>= 3%`, `= 1 per 3 years`, or the action's text."""
    if m["type"] == "action":
        return "action"
    op = {"exact": "=", "min": ">=", "soft_min": "generally >=", "max": "<=", "range": "="}[m["op"]]
    value = f"{m['min']}..{m['max']}" if m["op"] == "range" else m["value"]
    if isinstance(value, bool):
        value = str(value).lower()
    text = f"{op} {value}"
    if "per" in m:
        p = m["per"]
        n = p["n"] if "n" in p else f"{p['min']}..{p['max']}"
        text += f" per {n} {p['unit']}"
    return text


def _explanation_subset(want: list, got: dict) -> list:
    """The explanation's entries for the indicators the case names, keeping only the keys it names."""
    by_name = {e["indicator"]: e for e in got["indicators"]}
    return [{k: by_name.get(w["indicator"], {}).get(k) for k in w} for w in want]


def assert_problems(want: list, got: list) -> None:
    """The InputError lists exactly the wanted problems: same paths and types, in any order."""
    def key(p):
        return (tuple(p["loc"]), p["type"])
    assert sorted(map(key, got)) == sorted(key(w) for w in want), \
        f"\n  wanted problems: {[key(w) for w in want]}\n  got: {[(key(p), p['msg']) for p in got]}"
    for w in want:
        if "msg_has" in w:
            p = next(p for p in got if key(p) == key(w))
            assert w["msg_has"] in p["msg"], f"{key(w)}: wanted a message with {w['msg_has']!r}, got {p['msg']!r}"

"""Discover a `policies/` tree, compile each file once, and pick the version in force on a date.

Files are checked in `use` order (a used policy before its users), so `general.grade` can be
typed against the used policy's grades; cycles are reported as `use_cycle`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from . import nodes as n
from .checker import check
from .checker.context import CheckedPolicy
from .compiler import Evaluator
from .diagnostics import Diagnostic, error, sort_diagnostics
from .lower import to_ast
from .parser import ParseFailure, parse


@dataclass
class SourceFile:
    path: str
    text: str
    policy: n.Policy | None = None
    diagnostics: list = field(default_factory=list)
    checked: CheckedPolicy | None = None


def read_source(path: str | Path) -> SourceFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return SourceFile(str(p), "", diagnostics=[error("syntax_error", "the file is not UTF-8 text",
                                                         _file_span(str(p)), "save it as UTF-8")])
    return SourceFile(str(p), text)


def _file_span(path: str):
    from .diagnostics import Span
    return Span(path, 1, 1, 1, 1)


def lower_source(src: SourceFile) -> SourceFile:
    if src.diagnostics:
        return src
    try:
        tree = parse(src.text, src.path)
    except ParseFailure as exc:
        src.diagnostics = [exc.diagnostic]
        return src
    src.policy, src.diagnostics = to_ast(tree, src.path)
    return src


def discover(paths) -> list[str]:
    """Every `.rules` file under the given files and folders, in a stable order."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*.rules"))
        else:
            out.append(str(p))
    return out


def check_sources(sources: list[SourceFile], known: dict | None = None) -> list[SourceFile]:
    """Check a set of lowered sources together, used policies first. `known` adds already
    checked policies (id → CheckedPolicy) that the set may use."""
    known = dict(known or {})
    by_id: dict[str, list[SourceFile]] = {}
    for s in sources:
        if s.policy is not None:
            by_id.setdefault(s.policy.id, []).append(s)
    state: dict[str, str] = {}
    cycles: dict[str, str] = {}     # policy id → the use cycle it is part of

    def visit(pid: str, chain: list) -> None:
        if state.get(pid) == "done":
            return
        if state.get(pid) == "visiting":
            return
        state[pid] = "visiting"
        for s in by_id.get(pid, []):
            for u in s.policy.uses:
                if u.policy_id in chain or u.policy_id == pid:
                    cycle = " → ".join(chain[chain.index(u.policy_id):] + [pid, u.policy_id]) \
                        if u.policy_id in chain else f"{pid} → {pid}"
                    s.diagnostics.append(error("use_cycle", f"policies use each other in a cycle: {cycle}",
                                               u.span, "a general policy may feed a domain policy, not the reverse"))
                    for member in (chain[chain.index(u.policy_id):] if u.policy_id in chain else []) + [pid]:
                        cycles.setdefault(member, cycle)
                    continue
                if u.policy_id in by_id:
                    visit(u.policy_id, chain + [pid])
        for s in by_id.get(pid, []):
            if any(d.code == "use_cycle" for d in s.diagnostics):
                continue
            # a policy that uses a member of a cycle is not checked against nothing (that said
            # "no such policy is loaded"): the use is reported as what it is
            into_cycle = [u for u in s.policy.uses if u.policy_id in cycles]
            for u in into_cycle:
                message = f"policies use each other in a cycle: {cycles[u.policy_id]}" if pid in cycles else \
                    f"`{u.policy_id}` cannot be used: it is in a cycle of policies ({cycles[u.policy_id]})"
                s.diagnostics.append(error("use_cycle", message, u.span,
                                           "a general policy may feed a domain policy, not the reverse"))
            if into_cycle:
                continue
            known_for_s = dict(known)
            for u in s.policy.uses:
                checked_used = _newest_checked(by_id.get(u.policy_id, []))
                if checked_used is not None:
                    known_for_s[u.policy_id] = checked_used
            s.checked, s.diagnostics = check(s.policy, s.text, s.path, known_for_s, s.diagnostics)
            s.diagnostics = _explain_unknown_policies(s, by_id, known)
        state[pid] = "done"

    for pid in by_id:
        visit(pid, [])
    for s in sources:
        s.diagnostics = sort_diagnostics(s.diagnostics)
    return sources


def _explain_unknown_policies(s: SourceFile, by_id: dict, known: dict) -> list:
    """The checker sees only the policies a file can use and says "no such policy is loaded" for
    any other. Here the whole tree is known: say that the policy is there but has errors, or
    suggest the closest id ("did you mean")."""
    from .diagnostics import did_you_mean

    uses = {u.span: u.policy_id for u in s.policy.uses}
    out = []
    for d in s.diagnostics:
        pid = uses.get(d.span) if d.code == "unknown_policy" else None
        if pid in by_id:
            d = dataclasses.replace(d, message=f"`use {pid}`: that policy has errors, so it cannot be used",
                                    help=f"fix the errors reported in {by_id[pid][0].path}")
        elif pid is not None and (hint := did_you_mean(pid, set(by_id) | set(known))):
            d = dataclasses.replace(d, help=hint)
        out.append(d)
    return out


def _newest_checked(sources: list[SourceFile]) -> CheckedPolicy | None:
    checked = [s.checked for s in sources if s.checked is not None]
    return max(checked, key=lambda c: c.policy.effective) if checked else None


def load_paths(paths) -> list[SourceFile]:
    """Read, parse, lower and check every policy file under `paths`."""
    sources = [lower_source(read_source(f)) for f in discover(paths)]
    return check_sources(sources)


def compile_text(text: str, file: str = "<policy>", known: dict | None = None):
    """One policy text → (CheckedPolicy or None, diagnostics)."""
    src = lower_source(SourceFile(file, text))
    if src.policy is None:
        return None, src.diagnostics
    check_sources([src], known)
    return src.checked, src.diagnostics


class PolicyNotFound(LookupError):
    pass


class Registry:
    """The compiled policies of a tree: every version of every policy, evaluators built once."""

    def __init__(self, checked: list[CheckedPolicy]):
        self._versions: dict[str, list[CheckedPolicy]] = {}
        self._evaluators: dict[tuple, Evaluator] = {}
        for c in checked:
            self._versions.setdefault(c.id, []).append(c)
        for vs in self._versions.values():
            vs.sort(key=lambda c: (c.policy.effective, c.version))
        for vs in self._versions.values():
            for c in vs:
                self._evaluators[(c.id, c.version)] = Evaluator(c, self._resolve_used)

    @classmethod
    def from_paths(cls, paths) -> tuple["Registry", list[Diagnostic]]:
        sources = load_paths(paths)
        diags = [d for s in sources for d in s.diagnostics]
        return cls([s.checked for s in sources if s.checked is not None]), diags

    def ids(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, policy_id: str) -> list[CheckedPolicy]:
        if policy_id not in self._versions:
            raise PolicyNotFound(policy_id)
        return list(self._versions[policy_id])

    def all(self) -> list[CheckedPolicy]:
        return [c for pid in self.ids() for c in self._versions[pid]]

    def effective(self, policy_id: str, on: dt.date) -> CheckedPolicy:
        """The version in force on `on`: the latest whose effective date is not after it."""
        candidates = [c for c in self.versions(policy_id) if c.policy.effective <= on]
        if not candidates:
            raise PolicyNotFound(f"{policy_id} has no version in force on {on.isoformat()}")
        return candidates[-1]

    def version(self, policy_id: str, version: str) -> CheckedPolicy:
        for c in self.versions(policy_id):
            if c.version == version or c.sha256 == version:
                return c
        raise PolicyNotFound(f"{policy_id} has no version {version}")

    def evaluator(self, policy_id: str, *, version: str | None = None, on: dt.date | None = None) -> Evaluator:
        c = self.version(policy_id, version) if version else self.effective(policy_id, on or dt.date.today())
        return self._evaluators[(c.id, c.version)]

    def _resolve_used(self, policy_id: str, on: dt.date):
        try:
            c = self.effective(policy_id, on)
        except PolicyNotFound:
            return None
        return self._evaluators.get((c.id, c.version))

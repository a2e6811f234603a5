"""The set of policies a service serves: the files of the policy tree plus the versions
published through the API, compiled once, checked as one whole, never changed in place.

A reload or a publish builds a new `PolicySet` beside the live one and, only if the whole new
set checks clean, swaps the holder's reference to it. A request reads `holder.current` once,
so requests in flight finish on the set they started with.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import Optional

from engine import CheckedPolicy, PolicyNotFound, Registry, Span
from engine.diagnostics import error, sort_diagnostics
from engine.loader import SourceFile, check_sources, discover, lower_source, read_source

log = logging.getLogger("riskrules.policies")


@dataclass(frozen=True)
class Origin:
    """Where a version came from: a file of the tree, or a publish (by whom, when)."""
    kind: str                               # file | published
    published_by: Optional[int] = None
    published_at: Optional[str] = None


@dataclass
class PolicySet:
    registry: Registry
    origins: dict                           # sha256 → Origin
    file_texts: tuple                       # (path, text) of the tree as loaded
    generation: tuple                       # store.generation() it was built at
    diagnostics: list = field(default_factory=list)
    loaded_at: str = ""

    def ids(self) -> list[str]:
        return self.registry.ids()

    def versions(self, policy_id: str) -> list[CheckedPolicy]:
        return self.registry.versions(policy_id)

    def version(self, policy_id: str, version_or_sha256: str) -> CheckedPolicy:
        return self.registry.version(policy_id, version_or_sha256)

    def in_force(self, policy_id: str, on: dt.date) -> Optional[CheckedPolicy]:
        try:
            return self.registry.effective(policy_id, on)
        except PolicyNotFound:
            return None

    def evaluator(self, policy_id: str, version: Optional[str], on: dt.date):
        return self.registry.evaluator(policy_id, version=version, on=on)

    def newest_by_id(self) -> dict:
        """id → newest version: what a submitted text's `use` resolves against."""
        return {pid: self.registry.versions(pid)[-1] for pid in self.registry.ids()}

    def find_sha256(self, sha256: str) -> Optional[CheckedPolicy]:
        for c in self.registry.all():
            if c.sha256 == sha256:
                return c
        return None


def published_file(row: dict) -> str:
    return f"published:{row['policy_id']}@{row['version']}"


def build(file_texts: list, published: list, generation: tuple) -> tuple[Optional[PolicySet], list]:
    """Check the tree's files and the published versions together; a set only if all are clean.
    `file_texts` holds (path, text) pairs, or SourceFiles that could not be read."""
    sources = [f if isinstance(f, SourceFile) else lower_source(SourceFile(*f)) for f in file_texts]
    sources += [lower_source(SourceFile(row["file"], row["source"])) for row in published]
    check_sources([s for s in sources if not s.diagnostics or s.policy is not None])
    diags = [d for s in sources for d in s.diagnostics]
    seen: dict = {}
    for s in sources:
        if s.checked is None:
            continue
        key = (s.checked.id, s.checked.version)
        if key in seen:
            diags.append(error("duplicate_version",
                               f"`{s.checked.id}` version `{s.checked.version}` is given twice, "
                               f"also in {seen[key]}", Span(s.path, 1, 1, 1, 1),
                               "a published version is never replaced: give the new text a new `version`"))
        seen.setdefault(key, s.path)
    diags = sort_diagnostics(diags)
    if any(d.is_error for d in diags):
        return None, diags
    origins = {}
    for s in sources[:len(file_texts)]:
        origins[s.checked.sha256] = Origin("file")
    for s, row in zip(sources[len(file_texts):], published):
        origins[s.checked.sha256] = Origin("published", row["published_by"], row["published_at"])
    registry = Registry([s.checked for s in sources])
    from .store import utcnow
    return PolicySet(registry, origins, tuple(file_texts), generation, diags, utcnow()), diags


def read_tree(paths) -> list:
    """(path, text) of every `.rules` file under the paths; a file that cannot be read stays a
    SourceFile carrying its diagnostic (not UTF-8), which then fails the set."""
    out = []
    for f in discover(paths):
        src = read_source(f)
        out.append(src if src.diagnostics else (src.path, src.text))
    return out


class PolicyHolder:
    """The live set, and the only place that replaces it."""

    def __init__(self, paths, store):
        self.paths = list(paths)
        self.store = store
        self._lock = threading.Lock()
        self.current: Optional[PolicySet] = None

    def load(self) -> list:
        """First load at start-up; returns the diagnostics (errors mean there is no set)."""
        with self._lock:
            pset, diags = build(read_tree(self.paths), self.store.published(), self.store.generation())
            if pset is not None:
                self.current = pset
            return diags

    def reload(self, record=None) -> tuple[bool, list]:
        """Re-read the tree; swap only if everything checks clean, then `record(conn, pset)` in
        the transaction that tells the other workers to follow."""
        with self._lock:
            generation = self.store.generation()
            pset, diags = build(read_tree(self.paths), self.store.published(), generation)
            if pset is None:
                return False, diags
            with self.store.write() as conn:
                self.store.count_reload(conn)
                if record is not None:
                    record(conn, pset)
            pset.generation = self.store.generation()
            self.current = pset
            return True, diags

    def add_published(self, row: dict, record) -> tuple[bool, list]:
        """Publish: check the live files, the stored versions and the new one as one set; only if
        it is clean, call `record(conn)` to store the version (and its audit event) and swap."""
        with self._lock:
            pset, diags = build(list(self.current.file_texts), self.store.published() + [row], (-1, -1))
            if pset is None:
                return False, diags
            with self.store.write() as conn:
                record(conn)
            pset.generation = self.store.generation()
            self.current = pset
            return True, diags

    def follow(self) -> None:
        """Called by the watcher: catch up with reloads and publishes done by other workers."""
        generation = self.store.generation()
        live = self.current
        if live is None or generation == live.generation:
            return
        with self._lock:
            files = read_tree(self.paths) if generation[0] != live.generation[0] else live.file_texts
            if not self._rebuild(files):
                log.error("policies changed in the store but the new set does not check clean; "
                          "keeping the running set")

    def _rebuild(self, files) -> bool:
        generation = self.store.generation()
        pset, diags = build(list(files), self.store.published(), generation)
        if pset is None:
            return False
        self.current = pset
        return True

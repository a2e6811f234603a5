"""Officers for each drawn inspection: the second random choice of 双随机 (docs/semantics.md §Draws).

Each inspection gets `per_inspection` distinct officers. Hard constraints, never violated:

* **avoidance** — an officer never inspects an enterprise with which they declared a conflict;
  with `avoid district` never one of their own district, with `within district` only those of
  their own district (a district bureau checking its own enterprises);
* **load cap** — no officer takes more than `load_cap` inspections of one draw.

When no assignment satisfies them all, `AssignmentError` names the constraint that cannot be met;
there is never a partial result.

Method (randomised, exact, near-linear):

1. Enterprises and officers fall into classes by district (one class each when the district
   does not matter). A max-flow over the classes (source → enterprise class → officer class →
   sink, capacities k·|E|, |E|·|O| and |O|·cap) decides feasibility for everything but the
   declared conflicts; it is warm-started from the split a uniform choice would give, so the
   officer classes share the work in proportion. An infeasible class flow is reported from its
   minimum cut.
2. The class flow is realised: each enterprise class's k·|E| places are dealt column-wise over
   its (shuffled) enterprises, so no enterprise needs more officers of one class than the class
   has; within an officer class the loads are balanced (⌊T/|O|⌋ or ⌈T/|O|⌉ each, so within the
   cap) and the officers' places are shuffled and dealt to the inspections.
3. Places that break a rule (the same officer twice on one inspection, a declared conflict) are
   repaired by random swaps within the class that keep every load; what a bounded number of
   swaps cannot repair is filled by augmenting paths over the individual officers — a max-flow
   step, so if it fails no valid assignment exists and the error says which constraint binds.
4. The result is verified against every constraint before it is returned.

All randomness comes from the PCG64 stream the caller passes (raw 64-bit outputs only, see
engine/population.py `Stream`): a shuffle is an ordering by random keys, a uniform choice among
n is `(u × n) >> 64`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import polars as pl


@dataclass(frozen=True)
class AssignRules:
    per_inspection: int = 2
    district: str = "avoid"            # avoid | within | any
    load_cap: Optional[int] = None     # None: no cap
    declared: bool = False             # written in the policy (else engine defaults or the caller's)

    def describe(self) -> str:
        parts = [f"{self.per_inspection} officers per inspection"]
        parts.append({"avoid": "never of the enterprise's own district",
                      "within": "only of the enterprise's own district",
                      "any": "of any district"}[self.district])
        parts.append("no declared conflict")
        parts.append(f"at most {self.load_cap} inspections per officer" if self.load_cap else "no load cap")
        return "; ".join(parts)

    def to_json(self) -> dict:
        return {"per_inspection": self.per_inspection, "district": self.district, "load_cap": self.load_cap,
                "declared_in_policy": self.declared}


@dataclass
class Officers:
    """The officer list in canonical order (by id): ids, districts, declared conflicts."""
    ids: np.ndarray                                  # object array of str, sorted
    districts: Optional[np.ndarray] = None           # object array of str or None
    conflicts: dict = field(default_factory=dict)    # officer index → set of enterprise ids

    def __len__(self) -> int:
        return len(self.ids)


class AssignmentError(Exception):
    """No assignment satisfies the rules; `constraint` names the one that binds:
    `officers` (none given), `per_inspection`, `district`, `conflict` or `load_cap`."""

    def __init__(self, constraint: str, message: str, help: str = ""):
        super().__init__(message)
        self.constraint = constraint
        self.message = message
        self.help = help

    def to_json(self) -> dict:
        return {"code": "assignment_infeasible", "constraint": self.constraint, "message": self.message,
                "help": self.help}


def assign(enterprise_ids, enterprise_districts, officers: Officers, rules: AssignRules, stream) -> np.ndarray:
    """Officer indices (into officers.ids) for each inspection: an int array of shape (m, k).
    `enterprise_ids` and `enterprise_districts` (None when unknown): text, as sequences or Series."""
    enterprise_ids = _text_series(enterprise_ids)
    if enterprise_districts is not None:
        enterprise_districts = _text_series(enterprise_districts)
    m, k = len(enterprise_ids), rules.per_inspection
    out = np.full((m, k), -1, dtype=np.int64)
    if m == 0:
        return out
    J = len(officers)
    if J == 0:
        raise AssignmentError("officers", f"{m} inspections need officers, but the officer list is empty",
                              "give an officer list (`--officers FILE`)")
    if k < 1:
        raise AssignmentError("per_inspection", "an inspection needs at least one officer")
    cap = rules.load_cap if rules.load_cap is not None else m
    cap = min(cap, m)

    e_cls, o_cls, names, eligible = _classes(enterprise_ids, enterprise_districts, officers, rules)
    C = len(names)
    E = np.bincount(e_cls, minlength=C).astype(np.int64)
    O = np.bincount(o_cls, minlength=C).astype(np.int64)
    flow = _class_flow(E, O, eligible, k, cap, names, rules, J)

    # ---- realise the class flow ----------------------------------------------------------
    labels = np.empty((m, k), dtype=np.int64)           # officer class of each place
    for c in range(C):
        members = np.flatnonzero(e_cls == c)
        if len(members) == 0:
            continue
        members = members[stream.permutation(len(members))]
        seq = np.repeat(np.arange(C), flow[c])            # k·|E_c| places, class by class
        labels[members] = seq.reshape(k, len(members)).T  # column-wise: ≤ ⌈f/|E_c|⌉ per enterprise
    conflict_keys = _conflict_keys(enterprise_ids, officers)
    for c2 in range(C):
        where = np.argwhere(labels == c2)                 # (inspection, place) pairs of this class
        T = len(where)
        if T == 0:
            continue
        pool = np.flatnonzero(o_cls == c2)
        n_o = len(pool)
        base, extra = divmod(T, n_o)
        loads = np.full(n_o, base, dtype=np.int64)
        loads[stream.permutation(n_o)[:extra]] += 1
        places = np.repeat(pool, loads)[stream.permutation(T)]
        out[where[:, 0], where[:, 1]] = places
        _repair_by_swaps(out, where, conflict_keys, J, stream)

    # ---- what swaps could not repair: augmenting paths over individual officers ----------
    if (out < 0).any():
        _augment(out, enterprise_ids, e_cls, o_cls, eligible, conflict_keys, officers, rules, cap, names)
    verify(out, e_cls, o_cls, eligible, conflict_keys, rules)
    return out


# ---- classes and the class flow ---------------------------------------------------------------

def _classes(enterprise_ids, enterprise_districts, officers: Officers, rules: AssignRules):
    m, J = len(enterprise_ids), len(officers)
    if rules.district == "any":
        return np.zeros(m, dtype=np.int64), np.zeros(J, dtype=np.int64), ["(any)"], np.ones((1, 1), dtype=bool)
    word = "avoid district" if rules.district == "avoid" else "within district"
    if enterprise_districts is None:
        raise AssignmentError("district", f"`{word}` needs the enterprises' district, and the population has no "
                              "`district` column", "add a `district` column to the population")
    if officers.districts is None:
        raise AssignmentError("district", f"`{word}` needs the officers' district, and the officer list has no "
                              "`district` column", "add a `district` column to the officer list")
    od = pl.Series(list(officers.districts), dtype=pl.String)
    ed = enterprise_districts
    bad = enterprise_ids.filter(ed.is_null() | (ed == "")).head(5).to_list()
    if bad:
        raise AssignmentError("district", f"`{word}` cannot be checked: enterprise {', '.join(bad)} has no district",
                              "give every drawn enterprise its district")
    bad = [str(officers.ids[j]) for j in np.flatnonzero((od.is_null() | (od == "")).to_numpy())[:5]]
    if bad:
        raise AssignmentError("district", f"`{word}` cannot be checked: officer {', '.join(bad)} has no district",
                              "give every officer their district")
    names = sorted(set(ed.unique().to_list()) | set(od.unique().to_list()))
    enum = pl.Enum(names)
    e_cls = ed.cast(enum).to_physical().cast(pl.Int64).to_numpy()
    o_cls = od.cast(enum).to_physical().cast(pl.Int64).to_numpy()
    same = np.eye(len(names), dtype=bool)
    return e_cls, o_cls, names, (~same if rules.district == "avoid" else same)


def _class_flow(E, O, eligible, k, cap, names, rules, J) -> np.ndarray:
    """Integer flow f[c, c2]: officer places of enterprise class c taken by officer class c2."""
    C = len(names)
    S, T = 0, 2 * C + 1
    g = _FlowGraph(2 * C + 2)
    demand = k * E
    # the split a uniform choice among eligible officers would give, as a warm start
    start = np.zeros((C, C), dtype=np.int64)
    for c in range(C):
        if E[c] == 0:
            continue
        pool = O * eligible[c]
        total = int(pool.sum())
        if total == 0:
            continue
        exact = demand[c] * pool / total
        base = np.minimum(np.floor(exact).astype(np.int64), E[c] * pool)
        short = int(demand[c] - base.sum())
        order = np.argsort(-(exact - base), kind="stable")
        for c2 in order:
            if short <= 0:
                break
            if pool[c2] and base[c2] < E[c] * pool[c2]:
                base[c2] += 1
                short -= 1
        start[c] = base
    col_cap = O * cap
    over = start.sum(axis=0) > col_cap
    for c2 in np.flatnonzero(over):
        col = start[:, c2]
        start[:, c2] = (col * col_cap[c2]) // col.sum()
    edges = {}
    for c in range(C):
        if E[c]:
            edges[("s", c)] = g.add(S, 1 + c, int(demand[c]), int(start[c].sum()))
    for c in range(C):
        for c2 in range(C):
            if E[c] and O[c2] and eligible[c, c2]:
                edges[(c, c2)] = g.add(1 + c, 1 + C + c2, int(E[c] * O[c2]), int(start[c, c2]))
    for c2 in range(C):
        if O[c2]:
            edges[("t", c2)] = g.add(1 + C + c2, T, int(O[c2] * cap), int(start[:, c2].sum()))
    g.max_flow(S, T)
    flow = np.zeros((C, C), dtype=np.int64)
    for (a, b), e in edges.items():
        if a not in ("s", "t"):
            flow[a, b] = g.flow(e)
    got = int(flow.sum())
    need = int(demand.sum())
    if got < need:
        _explain_cut(g.reachable(S), flow, E, O, eligible, k, cap, names, rules, J, need)
    return flow


def _explain_cut(reach, flow, E, O, eligible, k, cap, names, rules, J, need):
    """Name the binding constraint from the minimum cut of the class flow."""
    C = len(names)
    r_e = [c for c in range(C) if E[c] and (1 + c) in reach]
    r_o = [c2 for c2 in range(C) if O[c2] and (1 + C + c2) in reach]
    places = {"avoid": "outside their own district", "within": "of their own district", "any": "on the list"}
    rule = {"avoid": "avoid district", "within": "within district", "any": ""}[rules.district]
    for c in r_e:
        n_elig = int((O * eligible[c]).sum())
        if n_elig < k:
            if rules.district == "any":
                raise AssignmentError("per_inspection", f"each inspection needs {k} different officers, but the "
                                      f"list has only {J}", "add officers, or assign fewer per inspection")
            raise AssignmentError("district", f"an enterprise in `{names[c]}` needs {k} different officers, but "
                                  f"only {n_elig} are {places[rules.district]} (`{rule}`)",
                                  "add officers of other districts, or assign fewer per inspection")
    demand = int(k * E[r_e].sum())
    supplied = int(flow[r_e].sum())
    who = "the inspections" if rules.district == "any" else \
        "the inspections of enterprises in " + ", ".join(f"`{names[c]}`" for c in r_e)
    pool = int(O[r_o].sum())
    raise AssignmentError(
        "load_cap",
        f"{who} need {demand} officer places, but at most {supplied} can be filled: the {pool} officers "
        f"{places[rules.district]} who may take them are all at the load cap of {cap}",
        "raise the load cap, add officers, or draw fewer")


class _FlowGraph:
    """Dinic's max-flow on a small graph (the classes), started from a valid flow."""

    def __init__(self, n: int):
        self.n = n
        self.adj = [[] for _ in range(n)]
        self.to, self.cap = [], []             # edge e and its reverse e ^ 1

    def add(self, u: int, v: int, cap: int, flow: int = 0) -> int:
        flow = max(0, min(flow, cap))
        e = len(self.to)
        self.to += [v, u]
        self.cap += [cap - flow, flow]
        self.adj[u].append(e)
        self.adj[v].append(e + 1)
        return e

    def flow(self, e: int) -> int:
        return self.cap[e + 1]

    def _levels(self, s, t):
        level = [-1] * self.n
        level[s] = 0
        q = deque([s])
        while q:
            u = q.popleft()
            for e in self.adj[u]:
                if self.cap[e] > 0 and level[self.to[e]] < 0:
                    level[self.to[e]] = level[u] + 1
                    q.append(self.to[e])
        return level

    def max_flow(self, s: int, t: int) -> int:
        total = 0
        while True:
            level = self._levels(s, t)
            if level[t] < 0:
                return total
            it = [0] * self.n
            while True:
                pushed = self._dfs(s, t, 1 << 62, level, it)
                if not pushed:
                    break
                total += pushed

    def _dfs(self, u, t, f, level, it):
        if u == t:
            return f
        while it[u] < len(self.adj[u]):
            e = self.adj[u][it[u]]
            v = self.to[e]
            if self.cap[e] > 0 and level[v] == level[u] + 1:
                d = self._dfs(v, t, min(f, self.cap[e]), level, it)
                if d:
                    self.cap[e] -= d
                    self.cap[e ^ 1] += d
                    return d
            it[u] += 1
        return 0

    def reachable(self, s: int) -> set:
        seen = {s}
        q = deque([s])
        while q:
            u = q.popleft()
            for e in self.adj[u]:
                if self.cap[e] > 0 and self.to[e] not in seen:
                    seen.add(self.to[e])
                    q.append(self.to[e])
        return seen


# ---- repairs ----------------------------------------------------------------------------------

def _text_series(values) -> pl.Series:
    if isinstance(values, pl.Series):
        return values.cast(pl.String)
    return pl.Series(list(values), dtype=pl.String)


def _conflict_keys(enterprise_ids: pl.Series, officers: Officers) -> set:
    """{inspection index × J + officer index} for every declared conflict among the inspections."""
    if not officers.conflicts:
        return set()
    conflicted = set().union(*officers.conflicts.values())
    pos: dict = {}
    hits = np.flatnonzero(enterprise_ids.is_in(sorted(conflicted)).fill_null(False).to_numpy())
    for i, e in zip(hits.tolist(), enterprise_ids.gather(hits).to_list()):
        pos.setdefault(e, []).append(i)
    J = len(officers)
    keys = set()
    for j, ents in officers.conflicts.items():
        for e in ents:
            for i in pos.get(e, ()):
                keys.add(i * J + j)
    return keys


def _bad_places(out, where, conflict_keys, J) -> np.ndarray:
    """Rows of `where` whose officer repeats on the inspection or has a declared conflict."""
    rows, cols = where[:, 0], where[:, 1]
    officers = out[rows, cols]
    bad = np.zeros(len(where), dtype=bool)
    k = out.shape[1]
    for other in range(k):
        same = (out[rows, other] == officers) & (cols > other)
        bad |= same
    if conflict_keys:
        keys = rows.astype(np.int64) * J + officers
        bad |= np.isin(keys, np.fromiter(conflict_keys, dtype=np.int64, count=len(conflict_keys)))
    return np.flatnonzero(bad)


def _repair_by_swaps(out, where, conflict_keys, J, stream, tries: int = 64) -> None:
    """Swap each bad place with a random place of the same officer class, keeping every load;
    a place no swap repairs is emptied for the augmenting paths."""
    bad = _bad_places(out, where, conflict_keys, J)
    if len(bad) == 0:
        return
    picks = stream.below(len(where), len(bad) * tries).reshape(len(bad), tries).tolist()
    for a, partners in zip(bad.tolist(), picks):
        ia, sa = int(where[a, 0]), int(where[a, 1])
        x = int(out[ia, sa])
        if not _is_bad(out, ia, sa, x, conflict_keys, J):
            continue                   # an earlier swap repaired it
        for b in partners:
            ib, sb = int(where[b, 0]), int(where[b, 1])
            y = int(out[ib, sb])
            if ib == ia or y == x or y < 0:
                continue
            if y in out[ia].tolist() or x in out[ib].tolist():
                continue
            if (ia * J + y) in conflict_keys or (ib * J + x) in conflict_keys:
                continue
            out[ia, sa], out[ib, sb] = y, x
            break
        else:
            out[ia, sa] = -1           # left to the augmenting paths


def _is_bad(out, i, s, x, conflict_keys, J) -> bool:
    return x < 0 or (i * J + x) in conflict_keys or out[i].tolist().count(x) > 1


def _augment(out, enterprise_ids, e_cls, o_cls, eligible, conflict_keys, officers, rules, cap, names) -> None:
    """Fill every empty place by an augmenting path (a max-flow step over individual officers)."""
    m, k = out.shape
    J = len(officers)
    elig_by_class = [np.flatnonzero(eligible[c][o_cls]) for c in range(len(names))]
    load = np.bincount(out[out >= 0], minlength=J).astype(np.int64)
    holders = [[] for _ in range(J)]
    for i, row in enumerate(out.tolist()):
        for j in row:
            if j >= 0:
                holders[j].append(i)

    def candidates(i):
        have = set(out[i].tolist())
        return [j for j in elig_by_class[e_cls[i]].tolist() if j not in have and (i * J + j) not in conflict_keys]

    for i in np.flatnonzero((out < 0).any(axis=1)).tolist():
        while (out[i] < 0).any():
            start = candidates(i)
            parent = {}
            seen_i = {i}
            q = deque()
            end = None
            for j in start:
                parent[j] = None
                if load[j] < cap:
                    end = j
                    break
                q.append(j)
            while end is None and q:
                j = q.popleft()
                for i2 in holders[j]:
                    if i2 in seen_i:
                        continue
                    seen_i.add(i2)
                    for j2 in candidates(i2):
                        if j2 in parent:
                            continue
                        parent[j2] = (j, i2)
                        if load[j2] < cap:
                            end = j2
                            break
                        q.append(j2)
                    if end is not None:
                        break
            if end is None:
                _explain_stuck(i, start, parent, out, enterprise_ids, e_cls, o_cls, eligible, conflict_keys,
                               officers, rules, cap, names)
            # apply the path: each inspection on it passes one officer place down the chain
            j = end
            load[end] += 1
            while parent[j] is not None:
                prev, i2 = parent[j]
                s = out[i2].tolist().index(prev)
                out[i2, s] = j
                holders[prev].remove(i2)
                holders[j].append(i2)
                j = prev
            s = out[i].tolist().index(-1)
            out[i, s] = j
            holders[j].append(i)


def _explain_stuck(i, start, parent, out, enterprise_ids, e_cls, o_cls, eligible, conflict_keys, officers,
                   rules, cap, names):
    J = len(officers)
    k = out.shape[1]
    eid = str(enterprise_ids[i])
    in_class = np.flatnonzero(eligible[e_cls[i]][o_cls]).tolist()
    conflicted = [j for j in in_class if (i * J + j) in conflict_keys]
    usable = len(in_class) - len(conflicted)
    if usable < k:
        district_out = J - len(in_class)
        why = []
        if rules.district != "any" and district_out:
            why.append(f"{district_out} {'are of its own district' if rules.district == 'avoid' else 'are of other districts'}")
        if conflicted:
            why.append(f"{len(conflicted)} declared a conflict with it")
        constraint = "conflict" if conflicted else ("district" if rules.district != "any" else "per_inspection")
        raise AssignmentError(constraint, f"enterprise `{eid}` needs {k} officers, but only {usable} of the {J} "
                              f"may inspect it ({'; '.join(why) or 'the list is too short'})",
                              "add officers who may inspect it, or assign fewer per inspection")
    raise AssignmentError("load_cap", f"enterprise `{eid}` cannot get {k} officers: the {len(parent)} officers who "
                          f"could take it, directly or by passing on one of their inspections, are all at the "
                          f"load cap of {cap}", "raise the load cap, add officers, or draw fewer")


def verify(out, e_cls, o_cls, eligible, conflict_keys: set, rules: AssignRules) -> None:
    """Every constraint, checked on the final assignment: a violation is a bug, never a result."""
    m, k = out.shape
    if m == 0:
        return

    def broken(what):
        raise RuntimeError(f"officer assignment broke a rule ({what}); no result is returned")

    if (out < 0).any():
        broken("an inspection was left without an officer")
    srt = np.sort(out, axis=1)
    if (srt[:, 1:] == srt[:, :-1]).any():
        broken("an officer was assigned twice to one inspection")
    if rules.load_cap is not None and np.bincount(out.ravel()).max() > rules.load_cap:
        broken("a load cap was exceeded")
    if not eligible[e_cls[:, None], o_cls[out]].all():
        broken("the district rule")
    if conflict_keys:
        J = len(o_cls)
        keys = (np.arange(m, dtype=np.int64)[:, None] * J + out).ravel()
        if np.isin(keys, np.fromiter(conflict_keys, dtype=np.int64, count=len(conflict_keys))).any():
            broken("a declared conflict")

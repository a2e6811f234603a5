"""Officer assignment (engine/assignment.py): avoidance and load caps are never violated, an
impossible assignment is an error naming the constraint, and the engine finds an assignment
whenever one exists (checked against an exact max-flow on the individual officers)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow

from engine.assignment import AssignmentError, AssignRules, Officers, assign
from engine.population import Stream

DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市"]


def officers(ids, districts, conflicts=None) -> Officers:
    return Officers(np.array(ids, dtype=object), np.array(districts, dtype=object), conflicts or {})


def eligible(e_id, e_district, j, offs: Officers, rules: AssignRules) -> bool:
    """The rules, read straight from the raw data (independently of the engine's classes)."""
    if e_id in offs.conflicts.get(j, ()):
        return False
    if rules.district == "avoid":
        return offs.districts[j] != e_district
    if rules.district == "within":
        return offs.districts[j] == e_district
    return True


def check_valid(out, ids, districts, offs, rules):
    m, k = out.shape
    assert (out >= 0).all()
    for i in range(m):
        row = out[i].tolist()
        assert len(set(row)) == k, "an officer twice on one inspection"
        for j in row:
            assert eligible(ids[i], districts[i], j, offs, rules), "avoidance violated"
    if rules.load_cap is not None:
        assert np.bincount(out.ravel(), minlength=len(offs)).max() <= rules.load_cap


def feasible(ids, districts, offs, rules) -> bool:
    """Exact: the max flow source → inspection (k) → eligible officer (1) → sink (cap)."""
    m, J, k = len(ids), len(offs), rules.per_inspection
    cap = rules.load_cap if rules.load_cap is not None else m
    n = m + J + 2
    s, t = m + J, m + J + 1
    rows, cols, caps = [], [], []
    for i in range(m):
        rows.append(s), cols.append(i), caps.append(k)
        for j in range(J):
            if eligible(ids[i], districts[i], j, offs, rules):
                rows.append(i), cols.append(m + j), caps.append(1)
    for j in range(J):
        rows.append(m + j), cols.append(t), caps.append(cap)
    g = csr_matrix((np.array(caps, dtype=np.int32), (rows, cols)), shape=(n, n))
    return maximum_flow(g, s, t).flow_value == k * m


instances = st.fixed_dictionaries({
    "m": st.integers(1, 14),
    "J": st.integers(1, 9),
    "k": st.integers(1, 3),
    "rule": st.sampled_from(["avoid", "within", "any"]),
    "cap": st.one_of(st.none(), st.integers(1, 6)),
    "ed": st.lists(st.integers(0, 3), min_size=14, max_size=14),
    "od": st.lists(st.integers(0, 3), min_size=9, max_size=9),
    "conflicts": st.lists(st.tuples(st.integers(0, 8), st.integers(0, 13)), max_size=12),
    "seed": st.integers(0, 2 ** 32),
})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances)
def test_avoidance_is_never_violated_and_impossible_means_impossible(x):
    m, J = x["m"], x["J"]
    ids = np.array([f"E{i:02d}" for i in range(m)], dtype=object)
    districts = np.array([DISTRICTS[d] for d in x["ed"][:m]], dtype=object)
    conflicts = {}
    for j, i in x["conflicts"]:
        if j < J and i < m:
            conflicts.setdefault(j, set()).add(ids[i])
    offs = officers([f"O{j}" for j in range(J)], [DISTRICTS[d] for d in x["od"][:J]], conflicts)
    rules = AssignRules(x["k"], x["rule"], x["cap"])
    possible = feasible(ids, districts, offs, rules)
    try:
        out = assign(ids, districts, offs, rules, Stream(x["seed"], "officers", "test"))
    except AssignmentError as exc:
        assert not possible, f"a valid assignment exists, but: {exc.message}"
        assert exc.constraint in ("per_inspection", "district", "conflict", "load_cap")
        assert exc.message and exc.help
        return
    assert possible
    check_valid(out, ids, districts, offs, rules)


def test_a_larger_draw_with_conflicts_and_a_tight_cap():
    rng = np.random.default_rng(3)
    m, J = 3000, 60
    ids = np.array([f"E{i:05d}" for i in range(m)], dtype=object)
    districts = np.array(rng.choice(DISTRICTS, m), dtype=object)
    conflicts = {j: set(rng.choice(ids, 40).tolist()) for j in range(J)}
    offs = officers([f"O{j:03d}" for j in range(J)], [DISTRICTS[j % 4] for j in range(J)], conflicts)
    rules = AssignRules(2, "avoid", 101)                   # 6000 places, 6060 slots
    out = assign(ids, districts, offs, rules, Stream(1, "officers", "big"))
    check_valid(out, ids, districts, offs, rules)
    assert (assign(ids, districts, offs, rules, Stream(1, "officers", "big")) == out).all()
    assert not (assign(ids, districts, offs, rules, Stream(2, "officers", "big")) == out).all()


def test_loads_are_balanced_when_any_officer_may_go():
    ids = np.array([f"E{i}" for i in range(101)], dtype=object)
    offs = officers([f"O{j}" for j in range(10)], ["x"] * 10)
    out = assign(ids, None, offs, AssignRules(2, "any", None), Stream(5, "officers", "t"))
    loads = np.bincount(out.ravel(), minlength=10)
    assert loads.max() - loads.min() <= 1 and loads.sum() == 202


# ---- impossible assignments name their constraint ---------------------------------------------

def test_own_district_avoidance_that_leaves_too_few_officers():
    ids = np.array(["E1", "E2"], dtype=object)
    offs = officers(["O1", "O2", "O3"], ["环翠区", "环翠区", "文登区"])
    with pytest.raises(AssignmentError) as e:
        assign(ids, np.array(["环翠区", "文登区"], dtype=object), offs, AssignRules(2, "avoid", None), Stream(1, "o"))
    assert e.value.constraint == "district"
    assert e.value.message == ("an enterprise in `环翠区` needs 2 different officers, but only 1 are outside their "
                               "own district (`avoid district`)")


def test_a_load_cap_too_tight_for_the_draw():
    ids = np.array([f"E{i}" for i in range(10)], dtype=object)
    offs = officers(["O1", "O2", "O3", "O4"], ["文登区", "文登区", "荣成市", "荣成市"])
    with pytest.raises(AssignmentError) as e:
        assign(ids, np.array(["环翠区"] * 10, dtype=object), offs, AssignRules(2, "avoid", 4), Stream(1, "o"))
    assert e.value.constraint == "load_cap"
    assert e.value.message == ("the inspections of enterprises in `环翠区` need 20 officer places, but at most 16 can "
                               "be filled: the 4 officers outside their own district who may take them are all at "
                               "the load cap of 4")


def test_declared_conflicts_that_leave_an_enterprise_without_officers():
    ids = np.array(["E1", "E2"], dtype=object)
    offs = officers(["O1", "O2", "O3"], ["a", "b", "c"], {0: {"E2"}, 1: {"E2"}})
    with pytest.raises(AssignmentError) as e:
        assign(ids, None, offs, AssignRules(2, "any", None), Stream(1, "o"))
    assert e.value.constraint == "conflict"
    assert e.value.message == "enterprise `E2` needs 2 officers, but only 1 of the 3 may inspect it (2 declared a conflict with it)"


def test_too_few_officers_for_two_per_inspection():
    with pytest.raises(AssignmentError) as e:
        assign(np.array(["E1"], dtype=object), None, officers(["O1"], ["a"]), AssignRules(2, "any", None), Stream(1, "o"))
    assert e.value.constraint == "per_inspection"
    assert e.value.message == "each inspection needs 2 different officers, but the list has only 1"


def test_no_officers_and_no_districts_are_errors_not_partial_results():
    ids = np.array(["E1"], dtype=object)
    with pytest.raises(AssignmentError) as e:
        assign(ids, None, officers([], []), AssignRules(2, "any", None), Stream(1, "o"))
    assert e.value.constraint == "officers"
    with pytest.raises(AssignmentError) as e:
        assign(ids, None, officers(["O1", "O2"], ["a", "b"]), AssignRules(2, "avoid", None), Stream(1, "o"))
    assert e.value.constraint == "district" and "no `district` column" in e.value.message
    with pytest.raises(AssignmentError) as e:
        assign(ids, np.array([None], dtype=object), officers(["O1", "O2"], ["a", "b"]), AssignRules(2, "within", None),
               Stream(1, "o"))
    assert e.value.constraint == "district" and "enterprise E1 has no district" in e.value.message


def test_within_district_keeps_officers_at_home():
    ids = np.array([f"E{i}" for i in range(40)], dtype=object)
    districts = np.array([DISTRICTS[i % 4] for i in range(40)], dtype=object)
    offs = officers([f"O{j}" for j in range(12)], [DISTRICTS[j % 4] for j in range(12)])
    rules = AssignRules(2, "within", 7)
    out = assign(ids, districts, offs, rules, Stream(9, "o"))
    check_valid(out, ids, districts, offs, rules)

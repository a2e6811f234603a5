"""The checker: an ordered list of named passes over the lowered AST.

Each pass reports into the shared Diagnostics and may refine the context; the order is the
contract ("must run after" is written in each pass's docstring). The result is a
CheckedPolicy when no pass reported an error.
"""
from __future__ import annotations

import hashlib

from .. import nodes as n
from ..diagnostics import Diagnostics, sort_diagnostics
from . import bins, cases, grading, measures, population, resolve, structure, traceability, types, weights
from .context import CheckedPolicy, Context

PASSES = (
    ("structure", structure.check),        # header parts, duplicate names, symbol tables
    ("resolve", resolve.check),            # after structure: names → inputs, grades, used results
    ("types", types.check),                # after resolve
    ("bins", bins.check),                  # after types: domains come from input types
    ("weights", weights.check),
    ("grading", grading.check),            # after bins and weights: needs the score's range
    ("measures", measures.check),
    ("cases", cases.check),                # after measures: expectations name measures
    ("population", population.check),      # after measures and types: draws read per-grade ratios
    ("traceability", traceability.check),
)


def check(policy: n.Policy, source: str, file: str, known_policies: dict | None = None,
          lower_diagnostics=()) -> tuple[CheckedPolicy | None, list]:
    """Run every pass; return (CheckedPolicy or None if any error, all diagnostics sorted)."""
    known = known_policies or {}
    diags = Diagnostics(list(lower_diagnostics))
    used = {u.alias: known[u.policy_id] for u in policy.uses if u.policy_id in known}
    ctx = Context(policy=policy, diags=diags, used=used, known_policies=known)
    for _name, run in PASSES:
        run(ctx)
    items = sort_diagnostics(diags.items)
    if diags.has_errors:
        return None, items
    p = ctx.policy
    checked = CheckedPolicy(
        policy=p,
        source=source,
        sha256=hashlib.sha256(source.encode("utf-8")).hexdigest(),
        file=file,
        grades=ctx.grade_names,
        grade_labels={g.name: g.label for g in p.grades},
        inputs=dict(ctx.inputs),
        indicators=tuple(ctx.indicators),
        used=used,
        measures_by_grade=ctx.measures_by_grade,
        measure_decls=ctx.measure_decls,
        diagnostics=tuple(items),
    )
    return checked, items

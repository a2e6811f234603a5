"""Policies and check reports as the API shows them."""
from __future__ import annotations

import datetime as dt

from engine import CheckedPolicy

from .keys import jurisdiction_of
from .policyset import PolicySet


def check_report(diagnostics) -> dict:
    return {
        "ok": not any(d.is_error for d in diagnostics),
        "errors": sum(d.is_error for d in diagnostics),
        "warnings": sum(d.severity.value == "warning" for d in diagnostics),
        "assumptions": sum(d.code == "assumption" for d in diagnostics),
        "diagnostics": [d.to_json() for d in diagnostics],
    }


def version_summary(policies: PolicySet, c: CheckedPolicy, in_force: CheckedPolicy | None) -> dict:
    origin = policies.origins.get(c.sha256)
    return {"version": c.version, "sha256": c.sha256, "effective": c.policy.effective.isoformat(),
            "title": c.policy.title or "", "origin": origin.kind if origin else "file",
            "in_force": in_force is not None and in_force.sha256 == c.sha256,
            "published_at": origin.published_at if origin else None}


def policy_summary(policies: PolicySet, policy_id: str, today: dt.date) -> dict:
    in_force = policies.in_force(policy_id, today)
    return {"id": policy_id, "jurisdiction": jurisdiction_of(policy_id),
            "in_force": in_force.version if in_force else None,
            "versions": [version_summary(policies, c, in_force) for c in policies.versions(policy_id)]}


def version_detail(policies: PolicySet, c: CheckedPolicy, today: dt.date) -> dict:
    out = {"id": c.id, **version_summary(policies, c, policies.in_force(c.id, today))}
    out.update({"grades": list(c.grades), "inputs": list(c.inputs), "text": c.source,
                "check": check_report(c.diagnostics)})
    return out


def policy_head(c: CheckedPolicy) -> dict:
    return {"id": c.id, "version": c.version, "sha256": c.sha256, "effective": c.policy.effective.isoformat(),
            "title": c.policy.title or ""}

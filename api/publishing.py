"""Checking a submitted policy text, and publishing it as a new immutable version."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from engine import compile_text

from . import audit, views
from .keys import Caller, jurisdiction_of
from .policyset import PolicySet, published_file
from .problems import Problem
from .store import PublishedVersion, dbapi_cursor, utcnow

SUBMITTED = "submitted.rules"


def validate(policies: PolicySet, caller: Caller, text: str, file: str | None) -> dict:
    """Check a text against the live set (so `use` resolves) without publishing it."""
    checked, diags = compile_text(text, file or SUBMITTED, known=policies.newest_by_id())
    if checked is not None and not caller.sees(checked.id):
        raise Problem("forbidden", f"a key of jurisdiction `{caller.jurisdiction}` may not check `{checked.id}`")
    out = views.check_report(diags)
    out["policy"] = views.policy_head(checked) if checked is not None else None
    return out


def publish(service, caller: Caller, policy_id: str, text: str, file: str | None) -> dict:
    """Check, refuse (422 with diagnostics, 409 for a version that exists), store, swap."""
    policies = service.policies.current
    checked, diags = compile_text(text, file or SUBMITTED, known=policies.newest_by_id())
    if checked is None:
        raise Problem("invalid-policy", f"the text has {sum(d.is_error for d in diags)} error(s); nothing was "
                      "published", diagnostics=[d.to_json() for d in diags])
    if checked.id != policy_id:
        raise Problem("invalid-policy", f"the text is policy `{checked.id}`, not `{policy_id}`: publish it "
                      f"under /v1/policies/{checked.id}/versions", diagnostics=[])
    same = policies.find_sha256(checked.sha256)
    if same is not None:
        raise Problem("conflict", f"this text is already version `{same.version}` of `{same.id}` "
                      f"(sha256 {checked.sha256})", sha256=checked.sha256)
    if policy_id in policies.ids() and any(c.version == checked.version for c in policies.versions(policy_id)):
        raise Problem("conflict", f"`{policy_id}` already has a version `{checked.version}`; a published version "
                      "is never overwritten: give the new text a new `version`", sha256=checked.sha256)
    row = {"policy_id": checked.id, "jurisdiction": jurisdiction_of(checked.id), "version": checked.version,
           "sha256": checked.sha256, "effective": checked.policy.effective.isoformat(), "source": text,
           "published_by": caller.id if caller.id is not None else 0, "published_at": utcnow()}
    row["file"] = published_file(row)
    event = audit.Event(caller.id, caller.name, caller.role, "publish", row["jurisdiction"],
                        {"effective": row["effective"], "title": checked.policy.title or "",
                         "errors": 0, "warnings": sum(d.severity.value == "warning" for d in diags)},
                        checked.id, checked.version, checked.sha256)

    def record(conn):
        conn.execute(insert(PublishedVersion.__table__), row)
        audit.append(dbapi_cursor(conn), [event], postgres=service.store.is_postgres)

    try:
        ok, set_diags = service.policies.add_published(row, record)
    except IntegrityError:
        raise Problem("conflict", f"`{policy_id}` version `{checked.version}` (sha256 {checked.sha256}) was "
                      "published meanwhile", sha256=checked.sha256)
    if not ok:
        raise Problem("invalid-policy", "the new version does not check clean together with the policies "
                      "in service; nothing was published",
                      diagnostics=[d.to_json() for d in set_diags if d.is_error])
    live = service.policies.current
    return views.version_detail(live, live.version(checked.id, checked.sha256), dt.date.today())


def reload_recorder(store, caller: Caller):
    """The audit event of a reload: which versions the new set holds."""
    def record(conn, pset: PolicySet):
        versions = {f"{c.id}@{c.version}": c.sha256 for c in pset.registry.all()}
        audit.append(dbapi_cursor(conn), [audit.Event(caller.id, caller.name, caller.role, "reload", caller.jurisdiction,
                                        {"versions": versions})], postgres=store.is_postgres)
    return record


SIGNAL_ACTOR = Caller(None, "SIGHUP", "admin", "*")

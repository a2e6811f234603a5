"""API keys, roles and jurisdictions: who is asking, and what they may see.

A key is `rrk_` + 43 random url-safe characters (256 bits). The store keeps only its sha256,
so a stolen database gives no usable key; a key is shown once, when it is created.
A caller's jurisdiction is the first part of the policy ids it may touch (`weihai` for
`weihai.food_production`), or `*` for all (provincial auditors, administrators).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import insert, select, update

from . import audit
from .store import ApiKey, dbapi_cursor, utcnow

ROLES = ("system", "officer", "auditor", "admin")

# what each permission is for, and which roles have it
PERMISSIONS: dict[str, frozenset] = {
    "read_policies": frozenset({"system", "officer", "auditor", "admin"}),
    "evaluate": frozenset({"system", "officer", "admin"}),
    "read_evaluations": frozenset({"system", "officer", "auditor", "admin"}),
    "validate": frozenset({"officer", "admin"}),
    "publish": frozenset({"officer", "admin"}),
    "reload": frozenset({"officer", "admin"}),
    "read_audit": frozenset({"auditor", "admin"}),
}

KEY_PREFIX = "rrk_"
_JURISDICTION = re.compile(r"^(\*|[^\W][\w-]*)$")


def jurisdiction_of(policy_id: str) -> str:
    return policy_id.split(".", 1)[0]


@dataclass(frozen=True)
class Caller:
    id: Optional[int]
    name: str
    role: str
    jurisdiction: str

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]

    def sees(self, policy_id: str) -> bool:
        return self.jurisdiction == "*" or jurisdiction_of(policy_id) == self.jurisdiction


def cli_actor() -> Caller:
    import getpass
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = "unknown"
    return Caller(None, f"cli:{user}", "admin", "*")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_role_and_jurisdiction(role: str, jurisdiction: str) -> None:
    if role not in ROLES:
        raise ValueError(f"`{role}` is not a role; the roles are {', '.join(ROLES)}")
    if not _JURISDICTION.match(jurisdiction):
        raise ValueError(f"`{jurisdiction}` is not a jurisdiction: give the first part of a policy id "
                         "(e.g. weihai) or * for all")


def create_key(store, *, name: str, role: str, jurisdiction: str, actor: Caller) -> tuple[dict, str]:
    """Store a new key (hashed) and record its creation; returns the row and the key itself."""
    check_role_and_jurisdiction(role, jurisdiction)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = {"name": name, "role": role, "jurisdiction": jurisdiction, "key_hash": hash_key(key),
           "prefix": key[:12], "created_at": utcnow(), "revoked_at": None}
    with store.write() as conn:
        row["id"] = conn.execute(insert(ApiKey.__table__).returning(ApiKey.id), row).scalar_one()
        audit.append(dbapi_cursor(conn), [audit.Event(actor.id, actor.name, actor.role, "key_create", jurisdiction,
                                        {"key_id": row["id"], "name": name, "role": role,
                                         "prefix": row["prefix"]})], postgres=store.is_postgres)
    return row, key


def revoke_key(store, key_id: int, *, actor: Caller) -> Optional[dict]:
    """Revoke a key (the row stays, so the audit log's names keep their meaning)."""
    table = ApiKey.__table__
    with store.write() as conn:
        row = conn.execute(select(table).where(table.c.id == key_id)).mappings().first()
        if row is None:
            return None
        row = dict(row)
        if row["revoked_at"] is None:
            row["revoked_at"] = utcnow()
            conn.execute(update(table).where(table.c.id == key_id).values(revoked_at=row["revoked_at"]))
            audit.append(dbapi_cursor(conn), [audit.Event(actor.id, actor.name, actor.role, "key_revoke", row["jurisdiction"],
                                            {"key_id": key_id, "name": row["name"]})],
                         postgres=store.is_postgres)
    return row


class KeyCache:
    """Bearer key → Caller, asking the store at most once per key every `ttl` seconds."""

    def __init__(self, store, ttl: float):
        self.store = store
        self.ttl = ttl
        self._known: dict[str, tuple[Optional[Caller], float]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> tuple[bool, Optional[Caller]]:
        """(known, caller) without asking the store: known is False when the store must be asked."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return True, None
        hit = self._known.get(hash_key(key))
        if hit is not None and hit[1] > time.monotonic():
            return True, hit[0]
        return False, None

    def caller(self, key: str) -> Optional[Caller]:
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._known.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        row = self.store.key_by_hash(digest)
        caller = None
        if row is not None and row["revoked_at"] is None and hmac.compare_digest(row["key_hash"], digest):
            caller = Caller(row["id"], row["name"], row["role"], row["jurisdiction"])
        with self._lock:
            if len(self._known) > 10_000:       # unknown keys must not grow the cache without bound
                self._known.clear()
            self._known[digest] = (caller, now + self.ttl)
        return caller

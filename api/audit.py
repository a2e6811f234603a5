"""The audit log: a hash chain of every publish, every read of results and every key change.

Each row stores `prev_hash` (the hash of the row before it; 64 zeros for the first) and
`hash = sha256(prev_hash + canonical content)`, where the canonical content is the row's
fields as JSON with sorted keys. Ids are the position in the chain (1, 2, 3, … without gaps)
and `audit_head` holds the last id and hash, updated in the same transaction as each append.
So `verify()` finds an edited row (its hash no longer matches), an inserted or deleted row
(the next row's `prev_hash` or the id sequence breaks) and rows cut from or forged onto the
end (the head disagrees). Rewriting the whole chain and the head together is only caught
against a head kept elsewhere: `riskrules audit verify` prints it, `--head` checks against it.
"""
from __future__ import annotations

import hashlib
import json

import orjson
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select

from .store import AuditEntry, AuditHead, insert_rows, insert_values, marks, utcnow

GENESIS = "0" * 64
CONTENT = ("id", "at", "actor_id", "actor_name", "role", "action", "jurisdiction",
           "policy_id", "policy_version", "policy_sha256", "detail")


def canonical_json(value) -> str:
    """Sorted keys, no spaces, UTF-8 unescaped (orjson's form of JSON)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def link_hash(prev_hash: str, row: dict) -> str:
    content = orjson.dumps({k: row.get(k) for k in CONTENT}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode("ascii") + content).hexdigest()


@dataclass(frozen=True)
class Event:
    """Something to record: who did what to which policy, and the particulars."""
    actor_id: Optional[int]
    actor_name: str
    role: str
    action: str
    jurisdiction: str
    detail: dict
    policy_id: Optional[str] = None
    policy_version: Optional[str] = None
    policy_sha256: Optional[str] = None


def head_sql(postgres: bool) -> str:
    """Reads the chain's head; on PostgreSQL with a row lock held to the commit (on SQLite the
    write transaction already excludes every other writer)."""
    return "SELECT last_id, last_hash FROM audit_head WHERE id = 1" + (" FOR UPDATE" if postgres else "")


def move_head_sql(postgres: bool) -> str:
    return f"UPDATE audit_head SET last_id = {marks(postgres, 1)}, last_hash = {marks(postgres, 1)} WHERE id = 1"


def link(events: list[Event], last_id: int, last_hash: str) -> list[dict]:
    """The rows that append `events` to a chain whose head is (last_id, last_hash)."""
    rows = []
    at = utcnow()
    for e in events:
        last_id += 1
        row = {"id": last_id, "at": at, "actor_id": e.actor_id, "actor_name": e.actor_name, "role": e.role,
               "action": e.action, "jurisdiction": e.jurisdiction, "policy_id": e.policy_id,
               "policy_version": e.policy_version, "policy_sha256": e.policy_sha256,
               "detail": canonical_json(e.detail), "prev_hash": last_hash}
        row["hash"] = last_hash = link_hash(last_hash, row)
        rows.append(row)
    return rows


def append(cursor, events: list[Event], *, postgres: bool) -> list[int]:
    """Add events to the chain inside the transaction of `cursor` (DB-API); returns their ids.
    The head is read under a lock held to the commit, so appends of all processes form one chain."""
    if not events:
        return []
    cursor.execute(head_sql(postgres))
    rows = link(events, *cursor.fetchone())
    insert_rows(cursor, AuditEntry.__table__, rows, postgres=postgres)
    cursor.execute(move_head_sql(postgres), (rows[-1]["id"], rows[-1]["hash"]))
    return [r["id"] for r in rows]


def append_in_one_statement(cursor, events: list[Event], rows_before: tuple = ()) -> None:
    """PostgreSQL: `append`, and the inserts of `rows_before` ((table, rows) pairs), as one
    statement after the head's read: two statements where `append` and its inserts take five,
    and a round trip is most of a small commit's CPU in psycopg (measured: 935 -> 617 µs a
    commit of one evaluation).
    A statement takes at most 65,535 parameters: meant for commits of some hundreds of rows."""
    cursor.execute(head_sql(True))
    rows = link(events, *cursor.fetchone())
    parts, params = [], []
    for table, table_rows in [*rows_before, (AuditEntry.__table__, rows)]:
        if table_rows:
            sql, values = insert_values(table, table_rows, postgres=True)
            parts.append(f"w{len(parts)} AS ({sql})")
            params += values
    params += [rows[-1]["id"], rows[-1]["hash"]]
    cursor.execute(f"WITH {', '.join(parts)} {move_head_sql(True)}", params)


@dataclass
class Verdict:
    ok: bool
    rows: int
    head_hash: str
    bad_id: Optional[int] = None
    problem: str = ""

    def to_json(self) -> dict:
        out = {"ok": self.ok, "rows": self.rows, "head_hash": self.head_hash}
        if not self.ok:
            out["first_bad_row"] = {"id": self.bad_id, "problem": self.problem}
        return out


def verify(store, expected_head: Optional[str] = None, chunk: int = 5000) -> Verdict:
    """Walk the chain from the first row; stop at the first row that breaks it."""
    table = AuditEntry.__table__
    expected_id, prev = 1, GENESIS
    with store.reader() as conn:
        head_id, head_hash = conn.execute(select(AuditHead.last_id, AuditHead.last_hash)
                                          .where(AuditHead.id == 1)).one()
        after = 0
        while True:
            batch = conn.execute(select(table).where(table.c.id > after).order_by(table.c.id)
                                 .limit(chunk)).mappings().all()
            if not batch:
                break
            for row in batch:
                rid = row["id"]
                if rid != expected_id:
                    what = "deleted" if rid > expected_id else "inserted"
                    return Verdict(False, expected_id - 1, prev, rid,
                                   f"row {rid} follows row {expected_id - 1}: a row was {what} here")
                if row["prev_hash"] != prev:
                    return Verdict(False, expected_id - 1, prev, rid,
                                   f"row {rid} does not link to row {rid - 1}: a row before it was edited, "
                                   "inserted or deleted")
                if link_hash(prev, row) != row["hash"]:
                    return Verdict(False, expected_id - 1, prev, rid,
                                   f"row {rid} does not match its hash: it was edited")
                prev = row["hash"]
                expected_id += 1
            after = batch[-1]["id"]
    rows = expected_id - 1
    if rows != head_id or prev != head_hash:
        bad = min(rows, head_id) + 1 if rows != head_id else rows
        return Verdict(False, rows, prev, bad,
                       f"the log ends at row {rows} but its head records row {head_id}: rows were "
                       f"{'deleted from' if rows < head_id else 'added to'} the end"
                       if rows != head_id else f"row {rows} is not the head the log recorded: it was replaced")
    if expected_head is not None and prev != expected_head:
        return Verdict(False, rows, prev, rows,
                       "the chain does not end at the head you gave: the log was rewritten or cut")
    return Verdict(True, rows, prev)


def entries(store, *, jurisdiction: Optional[str], after_id: int, limit: int, action: Optional[str] = None) -> list:
    table = AuditEntry.__table__
    q = select(table).where(table.c.id > after_id)
    if jurisdiction is not None:
        q = q.where(table.c.jurisdiction == jurisdiction)
    if action is not None:
        q = q.where(table.c.action == action)
    with store.reader() as conn:
        rows = conn.execute(q.order_by(table.c.id).limit(limit)).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        d["detail"] = json.loads(d["detail"])
        out.append(d)
    return out

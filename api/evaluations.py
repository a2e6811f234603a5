"""Evaluating enterprises for a caller: pick the version, run the engine, and make the
evaluation record and the audit event that must be committed before the result is released.

The routes only call these. Nothing here touches the request or the response objects.
"""
from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import secrets
from dataclasses import dataclass
from typing import Optional

import orjson

from engine import InputError, PolicyNotFound

from . import audit
from .columnar import CHUNK as COLUMNAR_CHUNK, MIN_RECORDS, columnar_run
from .keys import Caller, jurisdiction_of
from .policyset import PolicySet
from .problems import CATALOGUE, TYPE_BASE, Problem
from .schemas import MAX_ENTERPRISE_ID
from .store import utcnow

_SORTED = orjson.OPT_SORT_KEYS
ITEM_FIELDS = frozenset({"enterprise_id", "inputs"})


_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()


def new_id() -> str:
    """A unique id without a system call per request: random per process, then a counter."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def fingerprint(inputs: dict) -> str:
    """sha256 of the inputs as canonical JSON: sorted keys, no spaces, UTF-8."""
    return hashlib.sha256(orjson.dumps(inputs, option=_SORTED)).hexdigest()


def evaluator_for(policies: PolicySet, policy_id: str, version: Optional[str], as_of: dt.date):
    try:
        return policies.evaluator(policy_id, version, as_of)
    except PolicyNotFound as exc:
        if policy_id not in policies.ids():
            raise Problem("not-found", f"there is no policy `{policy_id}`")
        raise Problem("not-found", exc.args[0] if exc.args else f"no such version of `{policy_id}`")


def item_problems(obj) -> list[dict]:
    """What is wrong with one request item {"enterprise_id": …, "inputs": {…}} (pydantic-style)."""
    if type(obj) is not dict:
        return [{"loc": [], "type": "wrong_type", "msg": 'expected an object {"enterprise_id": …, "inputs": {…}}'}]
    out = [{"loc": [k], "type": "unknown_field", "msg": f"`{k}` is not a field; the inputs go in `inputs`"}
           for k in obj if k not in ITEM_FIELDS]
    if "inputs" not in obj:
        out.append({"loc": ["inputs"], "type": "missing_required", "msg": "`inputs` holds the enterprise's inputs"})
    elif type(obj["inputs"]) is not dict:
        out.append({"loc": ["inputs"], "type": "wrong_type", "msg": "expected an object with the enterprise's inputs"})
    eid = obj.get("enterprise_id")
    if eid is not None and (type(eid) is not str or len(eid) > MAX_ENTERPRISE_ID):
        out.append({"loc": ["enterprise_id"], "type": "wrong_type",
                    "msg": f"expected a string of at most {MAX_ENTERPRISE_ID} characters"})
    return out


def parse_item(index: int, raw: bytes) -> tuple:
    """(parsed request, None), or (None, the refusal of a line that is not JSON)."""
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        return None, refusal("malformed-request", [{"loc": [], "type": "json_invalid",
                                                   "msg": f"line {index + 1} is not JSON: {exc}"}])


def _input_problems(exc: InputError) -> list[dict]:
    return [dict(p, loc=["inputs"] + list(p["loc"])) for p in exc.problems]


def _summary(problems: list[dict]) -> str:
    shown = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems[:3])
    return shown + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")


@dataclass
class Evaluated:
    """One evaluated enterprise: the answer, and the record that must be stored before it goes out."""
    body: dict
    row: dict
    result_json: bytes = b""

    def response_bytes(self, **first) -> bytes:
        """The answer as JSON (`first` fields ahead), reusing the result's bytes made for the record."""
        head = dict(first, **{k: v for k, v in self.body.items() if k != "result"})
        return orjson.dumps(head)[:-1] + b',"result":' + self.result_json + b"}"


def evaluate(ev, caller: Caller, as_of: dt.date, explain: bool, enterprise_id, inputs: dict,
             evaluation_id: str, now: str, batch: Optional[tuple] = None) -> Evaluated:
    """Run the engine on one record (raises InputError) and build its record."""
    result = ev.evaluate(inputs, as_of, explain=explain).to_json()
    c = ev.checked
    input_sha = fingerprint(inputs)
    stored = orjson.dumps(result)
    result_sha = hashlib.sha256(stored).hexdigest()
    row = {"id": evaluation_id, "batch_id": batch[0] if batch else None, "batch_index": batch[1] if batch else None,
           "caller_id": caller.id, "jurisdiction": jurisdiction_of(c.id), "policy_id": c.id,
           "policy_version": c.version, "policy_sha256": c.sha256, "as_of": as_of.isoformat(),
           "enterprise_id": enterprise_id, "input_sha256": input_sha, "grade": result["grade"],
           "score": result["score"], "result": stored.decode("utf-8"), "result_sha256": result_sha,
           "created_at": now}
    body = {"evaluation_id": evaluation_id, "enterprise_id": enterprise_id, "input_sha256": input_sha,
            "result": result}
    return Evaluated(body, row, stored)


def _event(caller: Caller, ev, action: str, detail: dict) -> audit.Event:
    c = ev.checked
    return audit.Event(caller.id, caller.name, caller.role, action, jurisdiction_of(c.id), detail,
                       c.id, c.version, c.sha256)


def evaluate_one(policies: PolicySet, caller: Caller, policy_id: str, version: Optional[str], as_of: dt.date,
                 explain: bool, body) -> tuple[Evaluated, audit.Event]:
    """A single evaluation request → (the answer and its record, the audit event)."""
    problems = item_problems(body)
    if problems:
        raise Problem("invalid-request", _summary(problems), errors=problems)
    ev = evaluator_for(policies, policy_id, version, as_of)
    try:
        done = evaluate(ev, caller, as_of, explain, body.get("enterprise_id"), body["inputs"],
                        new_id(), utcnow())
    except InputError as exc:
        problems = _input_problems(exc)
        raise Problem("invalid-input", _summary(problems), errors=problems)
    r = done.row
    event = _event(caller, ev, "evaluate", {"evaluation_id": r["id"], "enterprise_id": r["enterprise_id"],
                                            "as_of": r["as_of"], "input_sha256": r["input_sha256"],
                                            "result_sha256": r["result_sha256"]})
    return done, event


# ---- batches ---------------------------------------------------------------------------------

def refusal(slug: str, problems: list[dict]) -> dict:
    return {"type": TYPE_BASE + slug, "title": CATALOGUE[slug][1], "detail": _summary(problems), "errors": problems}


class Batch:
    """A batch in progress: records come in chunks, each chunk is recorded (one audit event)
    before its answers are released."""

    def __init__(self, policies: PolicySet, caller: Caller, policy_id: str, version: Optional[str],
                 as_of: dt.date, explain: bool):
        self.ev = evaluator_for(policies, policy_id, version, as_of)
        self.caller = caller
        self.as_of = as_of
        self.explain = explain
        self.id = new_id()
        self.records = 0
        self.evaluated = 0

    def chunk_size(self, per_record: int) -> int:
        """Records per chunk: `per_record` on the per-record path, more through the columnar plan
        (whose cost is mostly per chunk)."""
        if not self.explain and columnar_run(self.ev, self.as_of) is not None:
            return COLUMNAR_CHUNK
        return per_record

    def run_chunk(self, items: list) -> tuple[list[dict], list[dict], audit.Event]:
        """items: (index, parsed object or a refusal dict) → (answers as JSON bytes, records, audit event).
        A chunk of MIN_RECORDS or more goes through the columnar plan when the policy allows it."""
        now = utcnow()
        run = columnar_run(self.ev, self.as_of) if len(items) >= MIN_RECORDS and not self.explain else None
        if run is None:
            answers, rows, evaluated = [], [], 0
            for item in items:
                evaluated += self._one(item, now, answers, rows)
        else:
            answers, rows, evaluated = self._columnar(run, items, now)
        first = items[0][0] if items else self.records
        return answers, rows, self.chunk_done(first, len(items), evaluated, rows)

    def chunk_done(self, first: int, records: int, evaluated: int, rows: list) -> audit.Event:
        """Count a chunk of `records` from index `first` and make its audit event, whose digest
        covers the evaluation records it made."""
        digest = hashlib.sha256()
        for row in rows:
            digest.update(f"{row['id']}:{row['input_sha256']}:{row['result_sha256']}\n".encode())
        self.records += records
        self.evaluated += evaluated
        return _event(self.caller, self.ev, "evaluate_batch", {
            "batch_id": self.id, "first_index": first, "records": records, "evaluated": evaluated,
            "as_of": self.as_of.isoformat(), "digest": digest.hexdigest()})

    def chunk_record(self, record_id: str, first: int, input_sha256: str, stored: bytes, now: str) -> dict:
        """The one evaluation record of the answers the columnar plan gave in a chunk."""
        c = self.ev.checked
        return {"id": record_id, "batch_id": self.id, "batch_index": first, "caller_id": self.caller.id,
                "jurisdiction": jurisdiction_of(c.id), "policy_id": c.id, "policy_version": c.version,
                "policy_sha256": c.sha256, "as_of": self.as_of.isoformat(), "enterprise_id": None,
                "input_sha256": input_sha256, "grade": None, "score": None, "result": stored.decode("utf-8"),
                "result_sha256": hashlib.sha256(stored).hexdigest(), "created_at": now}

    def _one(self, item: tuple, now: str, answers: list, rows: list) -> int:
        """One record on the per-record path: its answer appended (and its record); 1 if evaluated."""
        index, obj, refused = item
        if type(obj) is bytes:
            obj, refused = parse_item(index, obj)
        if refused is not None:
            answers.append(orjson.dumps({"index": index, "error": refused}))
            return 0
        problems = item_problems(obj)
        eid = obj.get("enterprise_id") if type(obj) is dict else None
        if problems:
            answers.append(orjson.dumps({"index": index, "enterprise_id": eid if type(eid) is str else None,
                                         "error": refusal("invalid-request", problems)}))
            return 0
        try:
            done = evaluate(self.ev, self.caller, self.as_of, self.explain, eid, obj["inputs"],
                            f"{self.id}.{index}", now, (self.id, index))
        except InputError as exc:
            answers.append(orjson.dumps({"index": index, "enterprise_id": eid,
                                         "error": refusal("invalid-input", _input_problems(exc))}))
            return 0
        answers.append(done.response_bytes(index=index))
        rows.append(done.row)
        return 1

    def _columnar(self, run, items: list, now: str) -> tuple[list, list, int]:
        """The chunk through the columnar plan (api/columnar.py): one record for the records it
        evaluated — their answers, a fingerprint of their inputs and of the answers — and the
        per-record path for the rest (docs/api.md, Batches)."""
        done, shas, fallback = run.answer(items, self.id)
        answers: list = [None] * len(items)
        for r, a in done.items():
            answers[r] = a
        rows: list = []
        evaluated = len(done)
        for r in fallback:
            out: list = []
            evaluated += self._one(items[r], now, out, rows)
            answers[r] = out[0]
        if done:
            positions = sorted(done)
            first, last = items[positions[0]][0], items[positions[-1]][0]
            inputs = hashlib.sha256("".join(f"{items[r][0]}:{shas[r]}\n" for r in positions).encode()).hexdigest()
            stored = b"[" + b",".join(done[r] for r in positions) + b"]"
            rows.append(self.chunk_record(f"{self.id}.{first}-{last}", first, inputs, stored, now))
        return answers, rows, evaluated

    def summary(self) -> dict:
        return {"records": self.records, "evaluated": self.evaluated, "refused": self.records - self.evaluated}


def stored_evaluation(row: dict) -> dict:
    return {"evaluation_id": row["id"], "batch_id": row["batch_id"], "created_at": row["created_at"],
            "caller_id": row["caller_id"], "policy_id": row["policy_id"], "policy_version": row["policy_version"],
            "policy_sha256": row["policy_sha256"], "as_of": row["as_of"], "enterprise_id": row["enterprise_id"],
            "input_sha256": row["input_sha256"], "grade": row["grade"], "score": row["score"],
            "result": orjson.loads(row["result"]), "record_id": row.get("record_id", row["id"])}


def read_event(caller: Caller, row: dict) -> audit.Event:
    """The audit event of reading `row`; for one answer of a chunk's record, the record it is in."""
    detail = {"evaluation_id": row["id"], "result_sha256": row["result_sha256"]}
    if "record_id" in row:
        detail["record_id"] = row["record_id"]
    return audit.Event(caller.id, caller.name, caller.role, "read_evaluation", row["jurisdiction"], detail,
                       row["policy_id"], row["policy_version"], row["policy_sha256"])


def answer_in_chunk(store, evaluation_id: str) -> Optional[dict]:
    """The answer `<batch id>.<index>` that a JSON batch released from a chunk the columnar plan
    evaluated, as a stored evaluation of its own: the chunk's record keeps the answers
    (`Batch._columnar`), so the id each answer carries can be read back. None if there is none.
    (An Arrow batch's answers carry their chunk's record id instead: api/arrow_batches.py.)"""
    batch_id, _, index = evaluation_id.rpartition(".")
    if not batch_id or not index.isdigit():
        return None
    index = int(index)
    row = store.chunk_holding(batch_id, index)
    if row is None:
        return None
    first, _, last = row["id"].rpartition(".")[2].partition("-")
    if not int(first) <= index <= int(last):
        return None
    answers = orjson.loads(row["result"])
    if type(answers) is not list:
        return None
    k = bisect.bisect_left(answers, index, key=lambda a: a["index"])
    if k == len(answers) or answers[k]["index"] != index:
        return None                 # (evaluated per record, or refused: not in the chunk's record)
    answer = answers[k]
    result = answer["result"]
    return dict(row, id=evaluation_id, record_id=row["id"], enterprise_id=answer["enterprise_id"],
                input_sha256=answer["input_sha256"], grade=result["grade"], score=result["score"],
                result=orjson.dumps(result).decode("utf-8"))

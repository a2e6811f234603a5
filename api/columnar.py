"""Large batch chunks through the columnar plan: evaluate with engine/batch.py (Polars), answer
with bytes templates.

A result depends on a handful of values per record — score, base grade, grade, the overrides
and alerts that fired, how many indicators were collected and the measures text — so the JSON
of everything else is made once per policy (`Templates`) and a record's answer is a join of
bytes. The answers equal, field by field, what `Result.to_json()` gives record by record
(tests/api/test_columnar_batch.py).

Records come as the bytes of the request and are decoded straight into the policy's types
(msgspec, strict: an int is not a bool, 2.0 is not a count, no unknown input or field), then
moved into columns a position at a time; their fingerprints are hashed from the same decoded
record. Going through Python dicts cost three times as much (per record of the 89-input
scorecard: parse 7 + columns 23 + fingerprint 9.5 µs, against 4 + 10 + 8).

Only the records the plan takes as they are go this way. A record that does not decode, holds
a value the frame cannot carry unchanged (an integer too large, an absent events input, …) or
that the plan rejects goes back to the per-record path (`Batch._one`), so its error, or its
result, is the evaluator's.

    run = columnar_run(ev, as_of)        # None: the policy is not for the plan (lasting overrides, …)
    answers, shas, fallback = run.answer(items, batch_id)
"""
from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Annotated, Optional, Union

import msgspec
import orjson
import polars as pl
from msgspec.structs import astuple

from engine import nodes as n
from engine.batch import compile_batch
from engine.batch_plan import Unsupported
from engine.result import _alert_json, _override_json
from engine.semantics import round_half_up

from .schemas import MAX_ENTERPRISE_ID

MIN_RECORDS = 1000        # fewer records than this: the per-record path is as quick
CHUNK = 50_000            # records per columnar chunk: the plan costs ~20 ms a chunk, then ~1 µs a record
_SORTED = orjson.OPT_SORT_KEYS
PLAN_DTYPES = {"count": pl.Int64, "number": pl.Float64, "ratio": pl.Float64, "bool": pl.Boolean,
           "enum": pl.String, "grade": pl.String, "date": pl.String}
_cache: dict = {}


def columnar_run(ev, as_of: dt.date) -> Optional["ColumnarRun"]:
    """The compiled run of evaluator `ev`'s policy on `as_of`, or None when the plan does not
    take the policy (lasting overrides, docs/batch.md; a used policy that uses another)."""
    c = ev.checked
    used = {}
    for alias, sub in c.used.items():
        found = ev._resolve_used(sub.id, as_of) if ev._resolve_used is not None else None
        used[alias] = found.checked if found is not None else sub
    key = (c.id, c.version, c.sha256, as_of, tuple((a, u.sha256) for a, u in used.items()))
    if key in _cache:
        return _cache[key]
    run = None
    # the byte templates carry no `since`/`until` of a lasting override: those stay per record
    lasting = any(o.duration is not None for pc in [c, *used.values()] for o in pc.policy.overrides)
    if not lasting and not any(u.policy.uses for u in used.values()):
        try:
            batch = compile_batch(c, as_of, resolve_used=lambda pid, on: next(
                (u for u in used.values() if u.id == pid), None), events_given=True)
            run = ColumnarRun(ev, batch, as_of)
        except Unsupported:
            run = None
    if len(_cache) >= 64:
        _cache.clear()
    _cache[key] = run
    return run


class Templates:
    """The JSON bytes of a policy's results, made once: the constant parts, and the parts that
    depend only on the grade, the base grade, the overrides and alerts fired and `collected`."""

    def __init__(self, ev, as_of: dt.date):
        c = ev.checked
        self.ev = ev
        pol = {"id": c.id, "version": c.version, "sha256": c.sha256,
               "effective": c.policy.effective.isoformat() if c.policy.effective else None}
        self.head = b'{"policy":' + orjson.dumps(pol) + b',"as_of":' + orjson.dumps(as_of.isoformat()) + b',"score":'
        self.overrides = {o.name: o for o in c.policy.overrides}
        self.alerts = {a.name: a for a in c.policy.alerts}
        g = c.policy.grading
        self.by_score = isinstance(g, n.GradeByScore)
        self.decided = {}                  # base grade → the decided_by text after the score (or whole)
        if self.by_score:
            lower = None
            for cut in g.cutoffs:
                rng = (f"{lower} <= score" if lower is not None else "score") + \
                    (f" < {cut.below}" if cut.below is not None else "")
                self.decided.setdefault(cut.grade, f" → {cut.grade} ({rng})")
                lower = cut.below
        else:
            ref = g.ref
            for grade in c.grades:
                if isinstance(ref, n.Symbol):
                    self.decided[grade] = f"grade {grade}: the fixed base grade"
                else:
                    src = ref.name if isinstance(ref, n.InputRef) else f"{ref.alias}.grade"
                    self.decided[grade] = f"grade {grade} taken from `{src}`"
        self.total = len(c.indicators)
        self._parts: dict = {}
        self._measures: dict = {}

    def completeness(self, collected: int) -> dict:
        total = self.total
        ratio = Decimal(1) if total == 0 else (Decimal(collected) / total)
        out = {"collected": collected, "total": total, "ratio": str(round_half_up(ratio, 4))}
        met = self.ev.completeness_met(collected, total)
        if met is not None:
            out["required"] = str(self.ev._required.normalize())
            out["met"] = met
        return out

    def parts(self, grade: str, base: str, overrides: str, alerts: str, collected: int, measures: str):
        """(middle, tail): the result is head + score + middle [+ score] + tail; with a score
        the middle ends inside the first decided_by text, which the score completes."""
        key = (grade, base, overrides, alerts, collected, measures)
        found = self._parts.get(key)
        if found is not None:
            return found
        if len(self._parts) >= 100_000:        # (many alerts × many counts: keep the memory bounded)
            self._parts.clear()
        c = self.ev.checked
        fired = [self.overrides[x] for x in overrides.split("\x1f")] if overrides else []
        alerted = [self.alerts[x] for x in alerts.split("\x1f")] if alerts else []
        more = [f"override `{o.name}` {o.effect}" for o in fired]
        middle = b',"grade":' + orjson.dumps(grade) + b',"grade_label":' + orjson.dumps(c.grade_labels.get(grade)) + \
            b',"base_grade":' + orjson.dumps(base) + b',"decided_by":'
        rest = orjson.dumps([self.decided[base]] + more)
        if self.by_score:
            middle += b'["score '
            tail = rest[2:]                # the rest of the first text, then the override texts
        else:
            tail = rest
        measures_bytes = self._measures.get(measures)
        if measures_bytes is None:
            measures_bytes = self._measures[measures] = orjson.dumps(orjson.loads(measures))
        tail += b',"overrides":' + orjson.dumps([_override_json(o) for o in fired]) + \
            b',"measures":' + measures_bytes + b',"alerts":' + orjson.dumps([_alert_json(a) for a in alerted]) + \
            b',"completeness":' + orjson.dumps(self.completeness(collected))
        found = self._parts[key] = (middle, tail)
        return found


# what a record may hold, per input kind, for its column to carry it unchanged: a count fits
# Int64, an int in a number column converts to Float64 exactly; the rest goes per record
_EXACT_INT = Annotated[int, msgspec.Meta(gt=-2 ** 53, lt=2 ** 53)]
_TYPES = {"count": Annotated[int, msgspec.Meta(ge=-2 ** 63, le=2 ** 63 - 1)],
          "number": Union[_EXACT_INT, float], "ratio": Union[_EXACT_INT, float], "bool": bool,
          "enum": str, "grade": str, "date": str, "events": list[str]}
_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)


def _inputs_struct(name: str, inputs: dict, nested: dict) -> type:
    """A msgspec Struct of a policy's inputs: each optional and typed by its kind, nothing else
    allowed; `nested` adds a required field per used policy. Fields are in the order of their
    names, and absent ones (None) are left out when encoded: the encoding is the sorted-key
    JSON the fingerprint hashes, for inputs with no explicit null."""
    names = sorted([*inputs, *nested])
    fields = []
    for k, key in enumerate(names):
        if key in nested:
            fields.append((f"f{k}", nested[key]))
        else:
            fields.append((f"f{k}", Optional[_TYPES[inputs[key].type.kind]], None))
    return msgspec.defstruct(name, fields, rename=dict((f"f{k}", key) for k, key in enumerate(names)),
                             forbid_unknown_fields=True, omit_defaults=True, kw_only=True)


class ColumnarRun:
    def __init__(self, ev, batch, as_of: dt.date):
        self.ev = ev
        self.batch = batch
        self.plan = p = batch.plan
        self.templates = Templates(ev, as_of)
        # A record decodes straight into typed fields (msgspec, strict: no coercion, no unknown
        # input); one that does not goes to the per-record path, which says what is wrong.
        subs = {alias: _inputs_struct(f"Used_{k}", sub.inputs, {}) for k, (alias, sub) in enumerate(p.used.items())}
        inputs = _inputs_struct("Inputs", p.inputs, subs)
        item = msgspec.defstruct("Item", [("enterprise_id", Optional[Annotated[str, msgspec.Meta(max_length=MAX_ENTERPRISE_ID)]], None),
                                          ("inputs", inputs)], forbid_unknown_fields=True, kw_only=True)
        self.decoder = msgspec.json.Decoder(item)
        self.encoder = msgspec.json.Encoder()
        # (column, alias or None, input name, kind, position in the inputs struct, in the alias's)
        order = sorted([*p.inputs, *p.used])
        self.columns = [(p.column(name), None, name, decl.type.kind, order.index(name), None)
                        for name, decl in p.inputs.items()]
        for alias, sub in p.used.items():
            sub_order = sorted(sub.inputs)
            self.columns += [(sub.column(name), alias, name, decl.type.kind, order.index(alias), sub_order.index(name))
                             for name, decl in sub.inputs.items()]
        self.alias_positions = {alias: order.index(alias) for alias in p.used}
        self.used = [(alias, sub.checked, sub.thresholds is not None) for alias, sub in p.used.items()]

    # ---- the frame ---------------------------------------------------------------------
    def frame(self, records: list, ok: list) -> tuple:
        """The decoded records' inputs as a frame (id = position) and the events frame; rows
        whose values a column cannot carry unchanged are marked in `ok` (False: per record)."""
        size = len(records)
        rows = [astuple(r.inputs) for r in records]
        by_position = list(zip(*rows)) if rows else []
        nested = {alias: list(zip(*map(astuple, by_position[k]))) if size else []
                  for alias, k in self.alias_positions.items()}
        cols = {"id": pl.Series("id", range(size), dtype=pl.Int64)}
        ids, names, dates = [], [], []
        for col, alias, name, kind, k, sub_k in self.columns:
            values = list(by_position[k] if alias is None else nested[alias][sub_k]) if size else []
            if kind == "events":
                for r, v in enumerate(values):
                    if v is None:
                        ok[r] = False           # absent: the missing rule decides, per record
                        continue
                    ids += [r] * len(v)
                    names += [col] * len(v)
                    dates += v
                continue
            cols[col] = pl.Series(col, values, dtype=PLAN_DTYPES[kind])
        events = None
        if self.plan.events_inputs():
            events = self.batch.event_counts(pl.DataFrame({"id": ids, "input": names, "date": dates},
                                                          schema={"id": pl.Int64, "input": pl.String,
                                                                  "date": pl.String}))
        return pl.DataFrame(cols), events

    def decode(self, items: list) -> tuple[list, list]:
        """(positions, decoded records) of the items that decode into the policy's types; an item
        is (index, request as JSON bytes or as parsed JSON, refusal or None)."""
        positions, records = [], []
        decode = self.decoder.decode
        for r, (_, obj, refused) in enumerate(items):
            if refused is not None:
                continue
            try:
                records.append(decode(obj if type(obj) is bytes else orjson.dumps(obj)))
            except (_DECODE_ERRORS + (TypeError, orjson.JSONEncodeError)):
                continue
            positions.append(r)
        return positions, records

    def fingerprint(self, record, obj) -> str:
        """sha256 of the inputs as canonical JSON (sorted keys, no spaces), as the per-record path
        makes it: encoded from the decoded record, or, where the request wrote a null (which the
        record cannot tell from an absent input), from the request parsed anew."""
        raw = obj if type(obj) is bytes else None
        if raw is not None and b"null" not in raw:
            return hashlib.sha256(self.encoder.encode(record.inputs)).hexdigest()
        inputs = (orjson.loads(raw) if raw is not None else obj)["inputs"]
        return hashlib.sha256(orjson.dumps(inputs, option=_SORTED)).hexdigest()

    # ---- answers -----------------------------------------------------------------------
    def answer(self, items: list, batch_id: str) -> tuple:
        """items: (index, request as JSON bytes or parsed, refused) → ({position: answer bytes}
        for the records the plan evaluated, their input fingerprints by position, the positions
        left to the per-record path)."""
        size = len(items)
        positions, records = self.decode(items)
        ok = [True] * len(records)
        frame, events = self.frame(records, ok)
        frame = frame.filter(pl.Series(ok))
        try:
            results, _ = self.batch.evaluate(frame, events)
        except Unsupported:                    # (a chunk the plan cannot take: every record per record)
            return {}, {}, list(range(size))
        out = results.select(
            pl.col("id"),
            pl.col("score").cast(pl.String),
            pl.col("grade").cast(pl.String), pl.col("base_grade").cast(pl.String),
            pl.col("overrides").list.join("\x1f"), pl.col("alerts").list.join("\x1f"),
            pl.col("collected"), pl.col("measures").cast(pl.String),
            *[pl.col(f"{alias}.grade").cast(pl.String) for alias, _, _ in self.used],
            *[pl.col(f"{alias}.score").cast(pl.String) for alias, _, scored in self.used if scored])
        t = self.templates
        head, parts = t.head, t.parts
        by_score = t.by_score
        answers, shas = {}, {}
        used = self.used
        for d, score, grade, base, fired, alerted, collected, measures, *rest in \
                zip(*(s.to_list() for s in out.get_columns())):
            r, record = positions[d], records[d]
            index, obj, _ = items[r]
            middle, tail = parts(grade, base, fired, alerted, collected, measures)
            i = str(index).encode()
            eid = record.enterprise_id
            if by_score:
                if score is None:
                    continue                   # (no score: left to the per-record path)
                s = score.encode()
                result = head + b'"' + s + b'"' + middle + s + tail
            else:
                result = head + b"null" + middle + tail
            if used:
                scores = iter(rest[len(used):])
                result += b',"used":' + orjson.dumps({
                    alias: {"policy": c.id, "version": c.version, "grade": g,
                            "score": next(scores) if scored else None}
                    for (alias, c, scored), g in zip(used, rest)})
            result += b"}"
            sha = self.fingerprint(record, obj)
            answers[r] = (b'{"index":' + i + b',"evaluation_id":"' + batch_id.encode() + b"." + i +
                          b'","enterprise_id":' + (b"null" if eid is None else orjson.dumps(eid)) +
                          b',"input_sha256":"' + sha.encode() + b'","result":' + result + b"}")
            shas[r] = sha
        fallback = [r for r in range(size) if r not in answers]
        return answers, shas, fallback

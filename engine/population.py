"""The draw engine: plans, stratified draws (双随机), group rules and officer assignment over a
population of enterprises (docs/semantics.md §Draws is the prose of this module).

    result = population.run(checked, frame, seed=20240101, as_of=date(2024, 6, 30), officers=officer_list)
    result.sample            # one row per drawn enterprise: why, where in the draw, which officers
    result.to_json()         # the summary: seed, population fingerprint, per plan/stratum counts

A draw is a pure function of (population, policy version, seed): the population is put in
canonical order (by enterprise id, byte order) before anything is drawn, every random number comes
from a PCG64 stream derived from the seed and the draw's name, and the result carries the seed and
a sha256 fingerprint of the population, so anyone holding the three can repeat it (一公开).

Generator. NumPy's PCG64 (O'Neill's permuted congruential generator, 128-bit state), seeded by
`SeedSequence(seed, spawn_key=…)`; only its raw 64-bit outputs are used (`random_raw`), whose
stream NumPy keeps stable across versions — not the `Generator` methods, whose algorithms may
change. PCG64 rather than the Mersenne Twister: a small state, statistically stronger, and
independent named streams (one per plan, draw, grade and officer assignment) are one SeedSequence
spawn key away. From raw outputs: a uniform sample without replacement of n records is the n
smallest of one random key per record (ties, p ≈ n²/2⁶⁵, fall to the canonical order); a
shuffle is an ordering by random keys; a uniform choice among n is `(u × n) >> 64`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Optional

import numpy as np
import polars as pl

from . import nodes as n
from .assignment import AssignmentError, AssignRules, Officers, assign
from .checker.context import CheckedPolicy

GENERATOR = "numpy PCG64, SeedSequence(seed, spawn_key=sha256(stream name)); raw 64-bit outputs"
FINGERPRINT = "sha256 of the population as tab-separated text in canonical order (docs/semantics.md §Draws)"
DEFAULT_ASSIGN = AssignRules(per_inspection=2, district="avoid", load_cap=None, declared=False)


class PopulationError(Exception):
    """The population, officer list or request cannot be drawn from; `code` is a stable slug."""

    def __init__(self, code: str, message: str, help: str = "", details: Optional[list] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help
        self.details = details or []

    def to_json(self) -> dict:
        out = {"code": self.code, "message": self.message, "help": self.help}
        if self.details:
            out["details"] = self.details
        return out


# ---- random streams ---------------------------------------------------------------------------

class Stream:
    """One named PCG64 stream of a draw: SeedSequence(seed, spawn_key = 4 words of sha256(name))."""

    def __init__(self, seed: int, *names: str):
        digest = hashlib.sha256("\x1f".join(names).encode("utf-8")).digest()
        key = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))
        self.names = names
        self._bits = np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=key))

    def raw(self, size: int) -> np.ndarray:
        if size <= 0:
            return np.zeros(0, dtype=np.uint64)
        return self._bits.random_raw(size)

    def permutation(self, size: int) -> np.ndarray:
        """A uniform shuffle of range(size): the order of `size` random keys."""
        return np.argsort(self.raw(size), kind="stable")

    def below(self, bound: int, size: int) -> np.ndarray:
        """`size` uniform integers in [0, bound): (u × bound) >> 64, exactly, for bound < 2³²."""
        if not 0 < bound < 2 ** 32:
            raise ValueError("bound out of range")
        u = self.raw(size)
        hi, lo = u >> np.uint64(32), u & np.uint64(0xFFFFFFFF)
        b = np.uint64(bound)
        return ((hi * b + ((lo * b) >> np.uint64(32))) >> np.uint64(32)).astype(np.int64)


def check_seed(seed) -> int:
    """A seed is a whole number 0 ≤ seed < 2¹²⁸ (e.g. a published lottery number or a date 20240630)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        try:
            seed = int(str(seed).strip(), 10)
        except ValueError:
            raise PopulationError("invalid_seed", f"`{seed}` is not a seed", "a seed is a whole number, e.g. 20240630")
    if not 0 <= seed < 2 ** 128:
        raise PopulationError("invalid_seed", f"the seed {seed} is out of range", "use a whole number from 0 to 2^128 - 1")
    return seed


# ---- reading tables ---------------------------------------------------------------------------

ID = "id"
LIST_SEPARATOR = ";"


def read_table(path, string_columns=(ID, "district", "tags", "grade", "conflicts")) -> pl.DataFrame:
    """A population or officer list from .csv, .parquet, .json (a list of objects, or
    {"enterprises"|"officers": [...]}) or .jsonl. Identifier columns are read as text, so
    `0012` keeps its zeros."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            header = pl.read_csv(p, n_rows=0).columns
            overrides = {c: pl.String for c in header if c in string_columns}
            return pl.read_csv(p, schema_overrides=overrides, infer_schema_length=10_000)
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(p)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(p)
        if suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = data.get("enterprises", data.get("officers", data.get("population")))
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise PopulationError("unreadable_table", f"{p.name}: expected a list of objects")
            return from_records(data)
    except PopulationError:
        raise
    except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
        raise PopulationError("unreadable_table", f"cannot read {p.name}: {str(exc).splitlines()[0][:200]}")
    raise PopulationError("unreadable_table", f"{p.name}: unknown file type `{suffix}`",
                          "give a .csv, .parquet, .json or .jsonl file")


def from_records(records: list) -> pl.DataFrame:
    """JSON-style records → a frame (the HTTP body's form)."""
    if not records:
        return pl.DataFrame({ID: pl.Series([], dtype=pl.String)})
    try:
        return pl.from_dicts(records, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise PopulationError("unreadable_table", f"the records do not form a table: {str(exc)[:200]}",
                              "give each column one type (numbers, true/false, text, or lists of text)")


def _text_list(frame: pl.DataFrame, column: str) -> pl.Expr:
    """A tags/conflicts column as a list of text: a list column as is, text split at `;`."""
    dtype = frame.schema[column]
    col = pl.col(column)
    if isinstance(dtype, pl.List):
        lst = col.cast(pl.List(pl.String))
    else:
        lst = col.cast(pl.String).str.split(LIST_SEPARATOR)
    return lst.list.eval(pl.element().str.strip_chars()).list.eval(pl.element().filter(pl.element() != ""))


# ---- canonical order and fingerprint ----------------------------------------------------------

def _id_bytes(ids: pl.Series):
    """The ids' UTF-8 bytes as an (N, L) uint8 matrix when every id has L bytes, else None."""
    N = len(ids)
    arr = ids.to_arrow()
    if arr.type != pa_large_string():
        arr = arr.cast(pa_large_string())
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + N + 1]
    L = int(offsets[1] - offsets[0])
    if not 0 < L <= 64 or int(offsets[-1] - offsets[0]) != N * L or not (np.diff(offsets) == L).all():
        return None
    return np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]].reshape(N, L)


def pa_large_string():
    import pyarrow as pa
    return pa.large_string()


def canonical_order(ids: pl.Series, matrix=None) -> np.ndarray:
    """The row order that sorts `ids` by their UTF-8 bytes (= Unicode code point order).

    Fast path: ids of one byte length are packed, position by position, into unsigned 64-bit
    words (mixed radix over the byte values each position takes), which sort in exactly the
    order of the strings; otherwise a string sort. Duplicate ids are an error."""
    N = len(ids)
    if N == 0:
        return np.zeros(0, dtype=np.int64)
    if matrix is None:
        matrix = _id_bytes(ids)
    words = _pack(matrix) if matrix is not None else None
    if words is not None and len(words) == 1:
        order = _argsort_u64(words[0])
        k = np.take(words[0], order)
        _no_duplicates(ids, order, k[1:] == k[:-1])
        return order
    if words is not None:
        order = np.lexsort(words[::-1])
        same = (words[0][order[1:]] == words[0][order[:-1]]) & (words[1][order[1:]] == words[1][order[:-1]])
        _no_duplicates(ids, order, same)
        return order
    order = ids.arg_sort().to_numpy().astype(np.int64)
    srt = ids.gather(order)
    _no_duplicates(ids, order, (srt.slice(1) == srt.slice(0, N - 1)).to_numpy())
    return order


def _pack(m: np.ndarray):
    """Fixed-width byte strings → 1 or 2 uint64 words that sort like the strings, or None.

    Each varying byte position p becomes a digit in [0, r_p): its byte minus the smallest byte
    at p (r_p = the span of bytes seen at p), or, when the spans multiply past 2^64, its rank
    among the bytes seen at p."""
    cols = np.ascontiguousarray(m.T)
    lo, hi = cols.min(axis=1), cols.max(axis=1)
    digits = []
    for p in np.flatnonzero(hi > lo).tolist():
        digits.append((p, int(hi[p]) - int(lo[p]) + 1, int(lo[p]), None))
    if _product([d[1] for d in digits]) > 2 ** 64:        # dense ranks instead of spans
        ranked = []
        for p, _span, _lo, _ in digits:
            present = np.zeros(256, dtype=bool)
            present[cols[p]] = True
            ranked.append((p, int(present.sum()), 0, (np.cumsum(present) - 1).astype(np.uint64)))
        digits = ranked
    groups, cur, prod = [], [], 1
    for d in digits:
        if prod * d[1] > 2 ** 64:
            groups.append(cur)
            cur, prod = [], 1
        cur.append(d)
        prod *= d[1]
    groups.append(cur)
    if len(groups) > 2:
        return None
    words = []
    for g in groups:
        w = np.zeros(m.shape[0], dtype=np.uint64)
        for p, size, low, lut in g:
            digit = np.take(lut, cols[p]) if lut is not None else (cols[p] - np.uint8(low)).astype(np.uint64)
            w *= np.uint64(size)
            w += digit
        words.append(w)
    return words


def _product(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def _argsort_u64(key: np.ndarray) -> np.ndarray:
    """argsort of distinct-or-not uint64 keys, ties by position, by sorting plain values: the
    key's high bits and the row index share one word (a value sort is several times faster than
    an index sort); keys that share those high bits are then ordered by their low bits."""
    N = len(key)
    ib = max(1, (N - 1).bit_length())
    shift = max(0, int(key.max()).bit_length() - (64 - ib))
    v = ((key >> np.uint64(shift)) << np.uint64(ib)) | np.arange(N, dtype=np.uint64)
    v.sort()
    order = (v & np.uint64((1 << ib) - 1)).astype(np.int64)
    if shift:
        high = v >> np.uint64(ib)
        eq = high[1:] == high[:-1]
        if eq.any():
            in_run = np.zeros(N, dtype=bool)
            in_run[1:] |= eq
            in_run[:-1] |= eq
            run = np.concatenate([[0], np.cumsum(~eq)])
            pos = np.flatnonzero(in_run)
            sub = order[pos]
            low = key[sub] & np.uint64((1 << shift) - 1)
            order[pos] = sub[np.lexsort((sub, low, run[pos]))]
    return order


def _no_duplicates(ids: pl.Series, order: np.ndarray, same: np.ndarray) -> None:
    if same.any():
        dup = sorted({ids[int(order[i + 1])] for i in np.flatnonzero(same)[:5]})
        raise PopulationError("duplicate_id", f"enterprise id {', '.join(f'`{d}`' for d in dup)} appears more than "
                              "once", "each enterprise is one row; merge the rows", [{"id": d} for d in dup])


FINGERPRINT_HEADER = "riskrules population 1\n"


def fingerprint(frame: pl.DataFrame, order: np.ndarray, columns: list, matrices: Optional[dict] = None,
                codes: Optional[dict] = None) -> str:
    r"""sha256 of the population as text, column by column: a header line, then for each column
    its name on a line and then one line per row in canonical order with the value's text.
    Text escapes `\` as `\\` and a line break as `\n`; a missing value is `\N`; a list is its
    items joined by `;`; true/false are lowercase; numbers and dates as Polars writes them.
    (`matrices`: fixed-width id bytes; `codes`: a text column's codes and values — fast paths
    that hash exactly the same text.)"""
    h = hashlib.sha256(FINGERPRINT_HEADER.encode())
    matrices = matrices or {}
    codes = codes or {}
    for c in columns:
        h.update((c + "\n").encode("utf-8"))
        m = matrices.get(c)
        if m is not None and not ((m == 10) | (m == 13) | (m == 92)).any():
            _hash_fixed(h, m, order)
            continue
        col = frame[c]
        if c in codes or col.dtype in (pl.String, pl.Categorical, pl.Enum):
            cc = codes.get(c) or _codes(col)
            if len(cc[1]) <= 4096 and _hash_categorical(h, cc, order):
                continue
        _hash_general(h, frame.select(_text(frame, c)).to_series(), order)
    return "sha256:" + h.hexdigest()


def _text(frame: pl.DataFrame, c: str) -> pl.Expr:
    dtype = frame.schema[c]
    col = pl.col(c)
    if isinstance(dtype, pl.List):
        col = col.cast(pl.List(pl.String)).list.join(LIST_SEPARATOR)
    elif dtype == pl.Boolean:
        col = pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    else:
        col = col.cast(pl.String)
    return col.str.replace_all("\\", "\\\\", literal=True).str.replace_all("\n", "\\n", literal=True) \
        .str.replace_all("\r", "\\r", literal=True).fill_null("\\N")


def _escape(v) -> str:
    if v is None:
        return "\\N"
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _hash_fixed(h, m: np.ndarray, order: np.ndarray, step: int = 1 << 20) -> None:
    N, L = m.shape
    buf = np.empty((min(step, N), L + 1), dtype=np.uint8)
    buf[:, L] = 10
    for a in range(0, N, step):
        rows = order[a: a + step]
        part = buf[: len(rows)]
        part[:, :L] = np.take(m, rows, axis=0)        # np.take: several times faster than m[rows]
        h.update(part.data)


def _hash_categorical(h, coded, order: np.ndarray, step: int = 1 << 20) -> bool:
    """A text column with few distinct values, when every value's text has one byte length."""
    codes, names = coded
    texts = [_escape(x).encode("utf-8") + b"\n" for x in names]
    if (codes < 0).any():
        texts.append(b"\\N\n")
    if not texts or len({len(t) for t in texts}) != 1:
        return False
    w = len(texts[0])
    lut = np.frombuffer(b"".join(texts), dtype=np.uint8).reshape(len(texts), w)
    codes = np.where(codes < 0, len(texts) - 1, codes)
    for a in range(0, len(order), step):
        h.update(np.take(lut, np.take(codes, order[a: a + step]), axis=0).data)
    return True


def _codes(col: pl.Series) -> tuple[np.ndarray, list]:
    """(code per row, -1 when missing; the distinct values, sorted) of a text column."""
    col = col.cast(pl.String)
    names = col.drop_nulls().unique().sort().to_list()
    codes = col.cast(pl.Enum(names)).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
    return codes, names


def _hash_general(h, text: pl.Series, order: np.ndarray, step: int = 1 << 20) -> None:
    for a in range(0, len(order), step):
        part = (text.gather(order[a: a + step]) + "\n").to_arrow()
        if hasattr(part, "combine_chunks"):
            part = part.combine_chunks()
        part = part.cast(pa_large_string())
        offs = np.frombuffer(part.buffers()[1], dtype=np.int64)[part.offset: part.offset + len(part) + 1]
        h.update(memoryview(part.buffers()[2])[int(offs[0]): int(offs[-1])])


# ---- the population prepared for drawing ------------------------------------------------------

@dataclass
class Population:
    """A population in canonical order: `order[k]` is the row of `frame` (as given) at canonical
    position k; every row index the engine hands around is a canonical position."""
    frame: pl.DataFrame            # as given, `id` as text
    order: np.ndarray
    grades: Optional[np.ndarray]   # grade index per canonical position, or None
    grade_source: str              # column | evaluated | none
    _fingerprint: object           # the fingerprint, or a Future of it (hashed while the draw runs)
    columns: list                  # the columns the fingerprint covers
    coded: dict = field(default_factory=dict)    # text column → (code per row as given, values)

    @property
    def fingerprint(self) -> str:
        fp = self._fingerprint
        return fp.result() if hasattr(fp, "result") else fp

    def __len__(self) -> int:
        return self.frame.height

    def column(self, name: str, rows: Optional[np.ndarray] = None) -> pl.Series:
        """A column's values at canonical positions `rows` (all, in canonical order, if None)."""
        idx = self.order if rows is None else self.order[rows]
        return self.frame[name].gather(idx)

    def ids(self, rows: Optional[np.ndarray] = None) -> pl.Series:
        return self.column(ID, rows)

    def rows(self, rows: np.ndarray, columns=None) -> pl.DataFrame:
        f = self.frame if columns is None else self.frame.select(columns)
        return f[self.order[rows]]


def prepare(checked: CheckedPolicy, frame: pl.DataFrame, *, as_of: dt.date, need_grades: bool,
            columns: set, evaluator=None) -> Population:
    if ID not in frame.columns:
        raise PopulationError("missing_column", "the population has no `id` column",
                              "name the enterprise identifier column `id` (e.g. the 统一社会信用代码)")
    if frame.schema[ID] != pl.String:
        frame = frame.with_columns(pl.col(ID).cast(pl.String))
    ids = frame[ID]
    nulls = ids.null_count()
    if nulls or (frame.height and ids.str.len_bytes().min() == 0):
        raise PopulationError("missing_id", f"{nulls or 'some'} rows have no enterprise id", "every row needs its `id`")
    missing = sorted(c for c in columns if c not in frame.columns)
    if missing:
        raise PopulationError("missing_column", f"the population has no column {', '.join(f'`{c}`' for c in missing)}",
                              "the policy's population rules read these columns")
    matrix = _id_bytes(ids) if frame.height else None
    order = canonical_order(ids, matrix)
    grades, source = None, "none"
    fp_columns = {ID} | set(columns)
    coded = {c: _codes(frame[c]) for c in ("grade", "district")
             if c in frame.columns and (c in columns or (c == "grade" and need_grades))}
    if need_grades:
        if "grade" in frame.columns:
            grades = _grades_from_column(checked, frame, coded["grade"])[order]
            source = "column"
            fp_columns.add("grade")
        else:
            grades = _grades_by_evaluation(checked, frame, as_of, evaluator)[order]
            source = "evaluated"
            fp_columns |= {c for c in frame.columns if c in _input_columns(checked)}
    cols = [ID] + sorted(fp_columns - {ID})
    # hashing reads the population in canonical order while the draw runs (NumPy gathers and
    # hashlib release the GIL): the fingerprint is ready, or waited for, when the result is read
    fp = _hashing().submit(fingerprint, frame, order, cols, {ID: matrix} if matrix is not None else None, coded)
    pop = Population(frame, order, grades, source, fp, cols)
    pop.coded = coded
    return pop


_HASHING = None


def _hashing():
    global _HASHING
    if _HASHING is None:
        from concurrent.futures import ThreadPoolExecutor
        _HASHING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskrules-fingerprint")
    return _HASHING


def _input_columns(checked: CheckedPolicy) -> set:
    cols = set(checked.inputs)
    for alias, used in checked.used.items():
        cols |= {f"{alias}.{name}" for name in used.inputs}
    return cols


def _grades_from_column(checked: CheckedPolicy, frame: pl.DataFrame, coded) -> np.ndarray:
    """Grade index per row (as given) from the `grade` column (`coded`: its codes and values)."""
    grades = list(checked.grades)
    codes, names = coded
    lut = np.array([grades.index(g) if g in grades else -1 for g in names] + [-1], dtype=np.int8)
    out = lut[codes]                    # a missing grade (code -1) reads the last entry: -1
    if (out < 0).any():
        bad = frame.filter(pl.Series(out < 0))
        sample = [{"id": r[ID], "grade": r["grade"]} for r in bad.select(ID, "grade").head(10).iter_rows(named=True)]
        raise PopulationError("invalid_grade", f"{bad.height} enterprises have no grade of {checked.id} "
                              f"({', '.join(grades)}) in the `grade` column",
                              "fix the grades, or drop the `grade` column to grade by the policy", sample)
    return out


def records(frame: pl.DataFrame, checked: CheckedPolicy, names=None) -> list:
    """Rows as the JSON records an evaluator reads: dates as text, `;`-separated events as lists,
    `alias.input` columns nested under the alias."""
    inputs = checked.inputs
    wanted = [c for c in frame.columns if c != ID and (names is None or c in names)]
    out = []
    date_like = {c for c in wanted if frame.schema[c] in (pl.Date, pl.Datetime)}
    listy = {c for c in wanted if isinstance(frame.schema[c], pl.List)}
    for row in (frame.select(wanted).iter_rows() if wanted else [()] * frame.height):
        rec = {}
        for c, v in zip(wanted, row):
            if v is None:
                continue
            if c in date_like:
                v = v.isoformat()[:10]
            elif c in listy:
                v = [x.isoformat()[:10] if isinstance(x, (dt.date, dt.datetime)) else x for x in v]
            elif isinstance(v, str) and c in inputs and inputs[c].type.kind == "events":
                v = [x.strip() for x in v.split(LIST_SEPARATOR) if x.strip()]
            if "." in c:
                alias, name = c.split(".", 1)
                rec.setdefault(alias, {})[name] = v
            else:
                rec[c] = v
        out.append(rec)
    return out


def _grades_by_evaluation(checked: CheckedPolicy, frame: pl.DataFrame, as_of, evaluator) -> np.ndarray:
    """Grade every enterprise with the policy: the columnar backend when it can, else per record."""
    from .compiler import Evaluator
    from .validate import InputError

    fast = _grades_by_batch(checked, frame, as_of)
    if fast is not None:
        return fast
    ev = evaluator or Evaluator(checked)
    index = {g: k for k, g in enumerate(checked.grades)}
    out = np.empty(frame.height, dtype=np.int8)
    problems = []
    cols = _input_columns(checked) | {u.alias for u in checked.policy.uses}
    for k, (eid, rec) in enumerate(zip(frame[ID].to_list(), records(frame, checked, cols))):
        try:
            out[k] = index[ev.evaluate(rec, as_of).grade]
        except InputError as exc:
            if len(problems) < 10:
                problems.append({"id": eid, "problems": exc.problems})
            out[k] = -1
    if (out < 0).any():
        raise PopulationError("invalid_record", f"{int((out < 0).sum())} enterprises cannot be graded by "
                              f"{checked.id}", "fix their inputs, or give a `grade` column", problems)
    return out


def _grades_by_batch(checked, frame, as_of):
    try:
        from .batch import compile_batch
        from .batch_plan import Unsupported
    except ImportError:
        return None
    if any(i.type.kind == "events" for i in checked.inputs.values()) or checked.policy.uses:
        return None
    try:
        cols = [c for c in frame.columns if c == ID or c in checked.inputs]
        sub = frame.select(cols)
        for name in checked.inputs:
            if name not in sub.columns:
                sub = sub.with_columns(pl.lit(None).alias(name))
        results, rejects = compile_batch(checked, as_of).evaluate(sub)
    except (Unsupported, pl.exceptions.PolarsError):
        return None
    if rejects.height:
        return None       # the per-record path says exactly what is wrong
    got = results.select(ID, pl.col("grade").cast(pl.String))
    got = frame.select(ID).join(got, on=ID, how="left", maintain_order="left")
    index = {g: k for k, g in enumerate(checked.grades)}
    return got["grade"].replace_strict(index, return_dtype=pl.Int8).to_numpy()


# ---- conditions over records --------------------------------------------------------------------

class Conditions:
    """Per-record values of conditions (priority lists, exclusions, group members) and order
    keys, with the semantics of docs/semantics.md §Conditions: three-valued, `grade` the final
    grade; a record counts only where a condition is *true*."""

    def __init__(self, checked: CheckedPolicy, pop: Population, as_of: dt.date, evaluator=None):
        self.checked = checked
        self.pop = pop
        self.as_of = as_of
        self._ev = evaluator

    @property
    def ev(self):
        """The policy's evaluator (defaults, parsed dates, full results): built when first needed."""
        if self._ev is None:
            from .compiler import Evaluator
            self._ev = Evaluator(self.checked)
        return self._ev

    def _env(self, rows: np.ndarray, names: set, needs_result: bool):
        from .compiler import _Values
        from .expressions import Env
        from .validate import InputError, value_ok

        wanted = set(names)
        if needs_result:        # a full evaluation reads every input, and the used policies' inputs
            wanted |= set(self.checked.inputs) | {u.alias for u in self.checked.policy.uses}
        cols = [ID] + [c for c in self.pop.frame.columns if c != ID and (c in wanted or c.split(".")[0] in wanted)]
        frame = self.pop.rows(rows, cols)
        recs = records(frame, self.checked, wanted | {c for c in cols if "." in c})
        ids = frame[ID].to_list()
        envs, problems, n_bad = [], [], 0
        grades = self.pop.grades
        inputs = self.checked.inputs
        for k, rec in enumerate(recs):
            bad = [{"input": name, "value": rec[name]} for name in sorted(names) if name in inputs
                   and rec.get(name) is not None and not value_ok(inputs[name].type, rec[name], self.checked.grades)]
            if bad:
                n_bad += 1
                if len(problems) < 10:
                    problems.append({"id": ids[k], "values": bad})
            env = Env(_Values(rec, self.ev), self.as_of, {})
            if needs_result:
                try:
                    r = self.ev.evaluate(rec, self.as_of)
                except InputError as exc:
                    n_bad += 0 if bad else 1
                    if len(problems) < 10 and not bad:
                        problems.append({"id": ids[k], "problems": exc.problems})
                    envs.append(env)
                    continue
                env.used, env.score, env.grade = r.used, r.score, self.checked.grades.index(r.grade)
            elif grades is not None:
                env.grade = int(grades[rows[k]])
            envs.append(env)
        if n_bad:
            first = problems[0]
            what = ", ".join(f"`{v['input']}` = {v['value']!r}" for v in first.get("values", ())) or "its inputs"
            raise PopulationError("invalid_record", f"{n_bad} enterprises have values the policy's population "
                                  f"rules cannot read (the first: `{first['id']}`, {what})",
                                  "fix the values (the input types are in docs/semantics.md §1)", problems)
        return envs

    def truth(self, expr, rows: np.ndarray) -> np.ndarray:
        """Rows (indices into the population) where `expr` is true."""
        from .expressions import compile_expr
        if len(rows) == 0:
            return np.zeros(0, dtype=bool)
        refs = _refs(expr)
        f = compile_expr(expr, self.checked.grades, {a: c.grades for a, c in self.checked.used.items()},
                         self.checked.inputs)
        envs = self._env(rows, refs["inputs"], refs["result"])
        return np.fromiter((f(e) is True for e in envs), dtype=bool, count=len(envs))

    def scores(self, rows: np.ndarray) -> list:
        """The policy's score of each record (a full evaluation), for `order by score`."""
        envs = self._env(rows, set(), True)
        return [e.score for e in envs]

    def values(self, name: str, rows: np.ndarray) -> list:
        """An input's values (defaults applied, dates parsed) for order keys; None when missing."""
        from .expressions import MISSING
        envs = self._env(rows, {name}, False)
        out = []
        for e in envs:
            v = e.values.get(name, MISSING)
            out.append(None if v is MISSING else v)
        return out


def _refs(expr) -> dict:
    nodes = list(n.walk(expr))
    return {"inputs": {x.name for x in nodes if isinstance(x, n.InputRef)},
            "result": any(isinstance(x, (n.UsedRef, n.ScoreRef)) for x in nodes)}


def _uses_grade(expr) -> bool:
    return any(isinstance(x, n.GradeRef) for x in n.walk(expr))


# ---- sizes ------------------------------------------------------------------------------------

_ROUNDING = {"up": ROUND_CEILING, "down": ROUND_FLOOR, "nearest": ROUND_HALF_UP}


def size_of(share: Decimal, population: int, rounding: Optional[str]) -> tuple[int, Decimal]:
    """(whole size, exact size) of `share` of `population`, rounded by the declared rule
    (`nearest` is half-up: 0.5 goes up)."""
    exact = share * population
    if exact == exact.to_integral_value():
        return int(exact), exact
    if rounding is None:
        raise PopulationError("rounding_missing", f"{share * 100}% of {population} is {exact}: the policy declares "
                              "no rounding rule")
    return int(exact.to_integral_value(rounding=_ROUNDING[rounding])), exact


# ---- results ------------------------------------------------------------------------------------

_SELECTION_SCHEMA = {"row": pl.Int64, "reason": pl.String, "tier": pl.Int64, "rank": pl.Int64,
                     "stratum": pl.String, "rule": pl.String, "batch": pl.Int64, "items": pl.List(pl.String)}


@dataclass
class Selection:
    """What one plan or draw selected, in draw order: a frame with, per drawn enterprise, its row
    in the canonical population, why it was drawn (`reason` priority|random, the priority `tier`,
    the `rule` in words), its `rank` within the priority list, the random fill or its stratum,
    the `stratum` (grade) of a draw, its `batch` and the check `items` its tags matched."""
    name: str
    kind: str                              # plan | draw
    label: Optional[str]
    frame: pl.DataFrame
    officers: Optional[np.ndarray] = None  # (m, k) officer indices, in frame order
    summary: dict = field(default_factory=dict)

    @property
    def rows(self) -> np.ndarray:
        return self.frame["row"].to_numpy()


def _selection_frame(**columns) -> pl.DataFrame:
    height = len(columns["row"])
    data = {}
    for name, dtype in _SELECTION_SCHEMA.items():
        v = columns.get(name)
        data[name] = pl.Series(name, v, dtype=dtype) if v is not None else pl.Series(name, [None] * height,
                                                                                       dtype=dtype)
    return pl.DataFrame(data)


@dataclass
class DrawResult:
    checked: CheckedPolicy
    seed: int
    as_of: dt.date
    population: Population
    selections: list
    group_actions: list
    officers: Optional[Officers] = None
    officers_fingerprint: Optional[str] = None
    warnings: list = field(default_factory=list)

    @property
    def sample(self) -> pl.DataFrame:
        """One row per drawn enterprise (per plan or draw), in draw order."""
        parts = []
        grades = pl.Series(list(self.checked.grades) or [""], dtype=pl.String)
        for s in self.selections:
            f = s.frame
            rows = f["row"]
            cols = [pl.lit(s.name).alias("draw"), pl.lit(s.kind).alias("kind"),
                    pl.int_range(1, f.height + 1, dtype=pl.Int64).alias("position"),
                    self.population.ids(rows.to_numpy()).alias(ID)]
            g = self.population.grades
            cols.append(pl.Series("grade", grades.gather(pl.Series(g[rows.to_numpy()].astype(np.int64))))
                        if g is not None and f.height else pl.lit(None, dtype=pl.String).alias("grade"))
            cols += [pl.col(c) for c in ("stratum", "reason", "tier", "rank", "rule", "batch", "items")]
            if s.officers is not None and f.height:
                ids = self.officers.ids
                cols.append(pl.concat_list([pl.Series(ids[s.officers[:, k]].tolist(), dtype=pl.String)
                                            for k in range(s.officers.shape[1])]).list.sort().alias("officers"))
            else:
                cols.append(pl.lit([], dtype=pl.List(pl.String)).alias("officers"))
            parts.append(f.select(cols))
        if not parts:
            return pl.DataFrame(schema={"draw": pl.String, "kind": pl.String, "position": pl.Int64, ID: pl.String,
                                        "grade": pl.String, **{k: v for k, v in _SELECTION_SCHEMA.items()
                                                               if k != "row"}, "officers": pl.List(pl.String)})
        return pl.concat(parts, how="vertical_relaxed")

    def write(self, path) -> None:
        """The sample as .csv (lists joined by `;`) or .parquet (lists as lists)."""
        p = Path(path)
        df = self.sample
        if p.suffix.lower() in (".parquet", ".pq"):
            df.write_parquet(p)
        elif p.suffix.lower() == ".csv":
            df.with_columns(pl.col("items").list.join(LIST_SEPARATOR),
                            pl.col("officers").list.join(LIST_SEPARATOR)).write_csv(p)
        else:
            raise PopulationError("unwritable_output", f"{p.name}: write the sample as .csv or .parquet")

    def to_json(self) -> dict:
        c = self.checked
        out = {
            "policy": {"id": c.id, "version": c.version, "sha256": c.sha256},
            "seed": str(self.seed),
            "generator": GENERATOR,
            "as_of": self.as_of.isoformat(),
            "population": {"rows": len(self.population), "fingerprint": self.population.fingerprint,
                           "columns": self.population.columns, "grades": self.population.grade_source,
                           "canonical_order": "by `id`, UTF-8 byte order"},
            "draws": [s.summary for s in self.selections],
            "group_actions": self.group_actions,
        }
        if self.officers is not None:
            out["officers"] = {"rows": len(self.officers), "fingerprint": self.officers_fingerprint}
        if self.warnings:
            out["warnings"] = self.warnings
        return out


# ---- officers ---------------------------------------------------------------------------------

def prepare_officers(frame: pl.DataFrame) -> tuple[Officers, str]:
    if ID not in frame.columns:
        raise PopulationError("missing_column", "the officer list has no `id` column", "name the officer id column `id`")
    frame = frame.with_columns(pl.col(ID).cast(pl.String))
    if frame[ID].null_count():
        raise PopulationError("missing_id", "an officer has no id")
    order = canonical_order(frame[ID]) if frame.height else np.zeros(0, dtype=np.int64)
    frame = frame[order]
    cols = [ID]
    districts = None
    if "district" in frame.columns:
        frame = frame.with_columns(pl.col("district").cast(pl.String))
        districts = np.array(frame["district"].to_list(), dtype=object)
        cols.append("district")
    conflicts = {}
    if "conflicts" in frame.columns:
        frame = frame.with_columns(_text_list(frame, "conflicts").alias("conflicts"))
        for j, lst in enumerate(frame["conflicts"].to_list()):
            if lst:
                conflicts[j] = set(lst)
        cols.append("conflicts")
    ids = np.array(frame[ID].to_list(), dtype=object)
    return Officers(ids, districts, conflicts), fingerprint(frame, np.arange(frame.height), cols)


# ---- the run ----------------------------------------------------------------------------------

def run(checked: CheckedPolicy, frame: pl.DataFrame, seed, *, as_of: Optional[dt.date] = None,
        officers: Optional[pl.DataFrame] = None, names=None, evaluator=None,
        per_inspection: Optional[int] = None, load_cap: Optional[int] = None,
        groups: Optional[bool] = None, grades: Optional[list] = None) -> DrawResult:
    """Run the policy's plans and draws (or those named, with the plans they draw from) and its
    group rules (by default only when no names are given) over `frame`; `grades` limits the
    draws to those strata (in `per_grade` mode a grade drawn alone gives the same sample as in a
    full run). Raises PopulationError (bad input) or AssignmentError (no valid assignment)."""
    seed = check_seed(seed)
    unknown = [g for g in (grades or ()) if g not in checked.grades]
    if unknown:
        raise PopulationError("unknown_grade", f"{checked.id} has no grade {', '.join(f'`{g}`' for g in unknown)}",
                              "grades: " + ", ".join(checked.grades))
    as_of = as_of or dt.date.today()
    p = checked.policy
    blocks = _selected(p, names)
    groups = list(p.group_rules) if (groups if groups is not None else names is None) else []
    need_grades = bool([b for b in blocks if isinstance(b, n.Draw)]) or any(
        _uses_grade(x) for b in blocks if isinstance(b, n.Plan) for x in b.priorities + b.excludes) or any(
        k.kind == "grade" for b in blocks if isinstance(b, n.Plan) and b.order for k in b.order.keys) or any(
        _uses_grade(c.condition) for r in groups for c in r.conditions)
    if need_grades and not checked.grades:
        raise PopulationError("no_grades", f"{checked.id} declares no grades to draw by")
    columns = set()
    if any(b.match is not None for b in blocks):
        columns.add("tags")
    columns |= {r.key for r in groups}
    officer_list, officers_fp = (None, None)
    if officers is not None:
        officer_list, officers_fp = prepare_officers(officers)
        rules = [_assign_rules(b, per_inspection, load_cap) for b in blocks]
        if any(r.district != "any" for r in rules):
            columns.add("district")
    for b in blocks:
        if isinstance(b, n.Plan):
            for x in b.priorities + b.excludes:
                columns |= {c for c in _refs(x.condition)["inputs"] if c in frame.columns}
            for k in (b.order.keys if b.order else ()):
                if k.kind == "input" and k.name in frame.columns:
                    columns.add(k.name)
    for r in groups:
        for c in r.conditions:
            if c.condition is not None:
                columns |= {x for x in _refs(c.condition)["inputs"] if x in frame.columns}
    pop = prepare(checked, frame, as_of=as_of, need_grades=need_grades, columns=columns, evaluator=evaluator)
    conds = Conditions(checked, pop, as_of, evaluator)
    result = DrawResult(checked, seed, as_of, pop, [], [], officer_list, officers_fp)
    tags = _tags(pop) if "tags" in columns else None
    done: dict = {}
    for b in blocks:
        if isinstance(b, n.Plan):
            sel = _run_plan(checked, b, pop, conds, seed, done, tags, result)
        else:
            sel = _run_draw(checked, b, pop, seed, tags, grades)
        done[b.name] = sel
        if officer_list is not None:
            _assign_officers(b, sel, pop, officer_list, seed, per_inspection, load_cap)
        result.selections.append(sel)
    for r in groups:
        result.group_actions.extend(_run_group_rule(checked, r, pop, conds))
    return result


def _selected(p: n.Policy, names) -> list:
    blocks = list(p.plans) + list(p.draws)
    if names is None:
        return blocks
    by_name = {b.name: b for b in blocks}
    unknown = [x for x in names if x not in by_name]
    if unknown:
        raise PopulationError("unknown_plan", f"{p.id} has no plan or draw {', '.join(f'`{u}`' for u in unknown)}",
                              "plans and draws: " + (", ".join(by_name) or "none"))
    wanted = set()

    def add(name):
        wanted.add(name)
        b = by_name[name]
        if isinstance(b, n.Plan) and b.quota is not None and b.quota.base_plan in by_name:
            add(b.quota.base_plan)
    for x in names:
        add(x)
    return [b for b in blocks if b.name in wanted]


def _assign_rules(block, per_inspection, load_cap) -> AssignRules:
    a = block.assign
    if a is None:
        rules = DEFAULT_ASSIGN
    else:
        rules = AssignRules(a.officers, "avoid" if a.avoid_district else "within" if a.within_district else "any",
                            a.load_cap, True)
    if per_inspection is not None or load_cap is not None:
        rules = AssignRules(per_inspection or rules.per_inspection, rules.district,
                            load_cap if load_cap is not None else rules.load_cap, rules.declared)
    return rules


def _assign_officers(block, sel: Selection, pop: Population, officers: Officers, seed, per_inspection, load_cap):
    rules = _assign_rules(block, per_inspection, load_cap)
    eids = pop.ids(sel.rows)
    districts = pop.column("district", sel.rows) if "district" in pop.frame.columns else None
    try:
        sel.officers = assign(eids, districts, officers, rules, Stream(seed, "officers", block.name))
    except AssignmentError as exc:
        exc.message = f"{block.name}: {exc.message}"
        exc.args = (exc.message,)
        raise
    loads = np.bincount(sel.officers.ravel(), minlength=len(officers)) if len(sel.rows) else np.zeros(len(officers))
    sel.summary["assignment"] = dict(rules.to_json(), rules=rules.describe(), inspections=len(sel.rows),
                                     officers=len(officers), max_load=int(loads.max()) if len(loads) else 0,
                                     min_load=int(loads.min()) if len(loads) else 0,
                                     source="policy" if rules.declared else "defaults (the policy has no `assign`)")


def _tags(pop: Population):
    return pop.frame.select(_text_list(pop.frame, "tags").alias("tags"))["tags"].gather(pop.order)


def _matched(block, pop: Population, tags, rows: np.ndarray):
    """(mask over rows of enterprises some item matches, items per matched row)."""
    m = block.match
    if m is None:
        return np.ones(len(rows), dtype=bool), None
    wanted = {t for item in m.items for t in item.tags}
    sub = tags.gather(rows)
    mask = sub.list.eval(pl.element().is_in(list(wanted))).list.any().fill_null(False).to_numpy()
    return mask, sub


def _items_of(block, tag_lists) -> list:
    out = []
    for tags in tag_lists:
        have = set(tags or ())
        out.append([item.name for item in block.match.items if have & set(item.tags)])
    return out


def _source(checked: CheckedPolicy, span) -> str:
    lines = checked.source.splitlines()
    if not span.line or span.line > len(lines):
        return ""
    if span.end_line == span.line:
        return lines[span.line - 1][span.column - 1: span.end_column - 1]
    parts = [lines[span.line - 1][span.column - 1:]] + lines[span.line: span.end_line - 1] + \
        [lines[span.end_line - 1][: span.end_column - 1]]
    return " ".join(x.strip() for x in parts)


def _prov(provenance) -> dict:
    out = {}
    for x in provenance:
        out.setdefault(x.kind, x.text)
    return out


def _run_plan(checked, plan: n.Plan, pop: Population, conds: Conditions, seed, done, tags, result) -> Selection:
    q = plan.quota
    if q.base_plan is not None:
        base = np.sort(done[q.base_plan].rows)
        base_name = f"plan {q.base_plan}"
    else:
        base = np.arange(len(pop), dtype=np.int64)
        base_name = "population"
    keys = Stream(seed, "plan", plan.name).raw(len(base))
    matched, tag_lists = _matched(plan, pop, tags, base)
    base_keys = keys[matched]
    base = base[matched]
    N = len(base)
    rounding = plan.rounding.mode if plan.rounding else None
    size, exact = size_of(q.share, N, rounding)
    excluded = np.zeros(N, dtype=bool)
    for x in plan.excludes:
        excluded |= conds.truth(x.condition, base)
    elig, elig_keys = base[~excluded], base_keys[~excluded]
    tier = np.zeros(len(elig), dtype=np.int64)
    for t, pr in enumerate(plan.priorities, start=1):
        open_ = tier == 0
        hit = conds.truth(pr.condition, elig[open_])
        idx = np.flatnonzero(open_)[hit]
        tier[idx] = t
    prio = np.flatnonzero(tier > 0)
    ranked = _rank_priority(plan, prio, elig, elig_keys, tier, conds, pop)
    take, cut = ranked[:size], ranked[size:]
    rows = [int(elig[i]) for i in take]
    reason = ["priority"] * len(take)
    tiers = [int(tier[i]) for i in take]
    rank = list(range(1, len(take) + 1))
    texts = [_source(checked, pr.condition.span) for pr in plan.priorities]
    rule = [f"重点名单 tier {tiers[k]}: {texts[tiers[k] - 1]}" for k in range(len(take))]
    rest = size - len(take)
    fill_pool = np.flatnonzero(tier == 0)
    fill = np.zeros(0, dtype=np.int64)
    if plan.fill is not None and rest > 0 and len(fill_pool):
        fill = _smallest(elig_keys[fill_pool], min(rest, len(fill_pool)))
        fill = fill_pool[fill]
        rows += [int(elig[i]) for i in fill]
        reason += ["random"] * len(fill)
        tiers += [None] * len(fill)
        rank += list(range(1, len(fill) + 1))
        rule += ["随机补足 (random fill)"] * len(fill)
    items = None
    if plan.match is not None:
        pos = {int(r): k for k, r in enumerate(base.tolist())}
        sub_tags = tag_lists.filter(pl.Series(matched)).to_list()
        items = _items_of(plan, [sub_tags[pos[r]] for r in rows])
    sel = Selection(plan.name, "plan", plan.label, _selection_frame(
        row=rows, reason=reason, tier=tiers, rank=rank, rule=rule, items=items))
    cut_ids = pop.ids(elig[np.array(cut, dtype=np.int64)]).to_list() if len(cut) else []
    shortfall = size - len(rows)
    sel.summary = {
        "name": plan.name, "kind": "plan", "label": plan.label,
        "quota": dict({"share": _dec(q.share), "of": base_name,
                       "per": _period(q.period), "base": N, "exact": _dec(exact),
                       "rounding": rounding, "size": size}, **_prov(q.provenance)),
        "excluded": int(excluded.sum()),
        "unmatched": int((~matched).sum()) if plan.match is not None else 0,
        "eligible": int(len(elig)),
        "priority": {
            "tiers": [dict({"tier": t + 1, "condition": texts[t], "candidates": int((tier == t + 1).sum())},
                           **_prov(pr.provenance)) for t, pr in enumerate(plan.priorities)],
            "candidates": int(len(prio)), "drawn": len(take),
            "order": _order_text(plan), "cut": [
                {ID: cut_ids[k], "tier": int(tier[i]), "rank": size + k + 1} for k, i in enumerate(cut)],
        },
        "random_fill": {"pool": int(len(fill_pool)), "drawn": int(len(fill))} if plan.fill is not None else None,
        "drawn": len(rows), "shortfall": shortfall,
    }
    if len(cut):
        sel.summary["priority"]["cut_reason"] = (
            f"the priority list has {len(prio)} candidates for a quota of {size}: ranks {size + 1}–{len(prio)} by "
            f"`order by {_order_text(plan)}` were not drawn")
    if shortfall:
        result.warnings.append(f"plan `{plan.name}`: the quota is {size} but only {len(rows)} enterprises could be "
                               "drawn" + ("" if plan.fill is not None else " (the plan has no `then random`)"))
    return sel


def _period(period) -> Optional[dict]:
    if period is None:
        return None
    return {"n": period.low, "unit": period.unit} if period.low == period.high else \
        {"min": period.low, "max": period.high, "unit": period.unit}


def _order_text(plan: n.Plan) -> str:
    if plan.order is None:
        return ""
    parts = []
    for k in plan.order.keys:
        if k.kind == "random":
            parts.append("random")
        else:
            parts.append(f"{k.name or k.kind}{' desc' if k.descending else ''}")
    return ", ".join(parts)


def _rank_priority(plan, prio, elig, elig_keys, tier, conds: Conditions, pop) -> list:
    """Priority candidates (indices into elig) in rank order: tier, then the declared keys
    (missing values last), then the random key — so ties at the cut fall uniformly at random."""
    order = sorted(prio.tolist(), key=lambda i: int(elig_keys[i]))
    keys = plan.order.keys if plan.order else ()
    for k in reversed(keys):
        if k.kind == "random":
            order.sort(key=lambda i: int(elig_keys[i]))
            continue
        rows = elig[np.array(order, dtype=np.int64)] if order else np.zeros(0, dtype=np.int64)
        if k.kind == "grade":
            vals = [int(pop.grades[r]) for r in rows]
        elif k.kind == "score":
            vals = conds.scores(rows)
        else:
            vals = conds.values(k.name, rows)
        present = [(v, i) for v, i in zip(vals, order) if v is not None]
        absent = [i for v, i in zip(vals, order) if v is None]
        present.sort(key=lambda x: x[0], reverse=k.descending)
        order = [i for _v, i in present] + absent
    order.sort(key=lambda i: int(tier[i]))
    return order


def _smallest(keys: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` smallest keys, smallest first (ties by position)."""
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    if count < len(keys):
        part = np.argpartition(keys, count - 1)[:count]
        # keys equal to the cut value: keep the earliest positions (canonical order)
        cut_value = keys[part].max()
        below = np.flatnonzero(keys < cut_value)
        at = np.flatnonzero(keys == cut_value)[: count - len(below)]
        part = np.concatenate([below, at])
    else:
        part = np.arange(len(keys))
    return part[np.lexsort((part, keys[part]))]


def _run_draw(checked, draw: n.Draw, pop: Population, seed, tags, only=None) -> Selection:
    grades = checked.grades
    covered = draw.grades.grades if draw.grades is not None else grades
    if only:
        covered = tuple(g for g in covered if g in only)
    mode = draw.mode.kind
    batches = draw.mode.batches if mode == "batches" else 0
    rounding = draw.rounding.mode if draw.rounding else None
    base = np.arange(len(pop), dtype=np.int64)
    matched, tag_lists = _matched(draw, pop, tags, base)
    codes = pop.grades
    keys_all = None if mode == "per_grade" else Stream(seed, "draw", draw.name).raw(len(pop))
    picks, strata_summary = [], []
    for g in covered:
        gi = grades.index(g)
        in_grade = np.flatnonzero((codes == gi) & matched)
        N = len(in_grade)
        share, op, item = _ratio(checked, draw, g)
        size, exact = size_of(share, N, rounding)
        keys = Stream(seed, "draw", draw.name, g).raw(N) if mode == "per_grade" else keys_all[in_grade]
        picks.append(in_grade[_smallest(keys, min(size, N))])
        strata_summary.append(dict({"grade": g, "population": N, "ratio": _dec(share), "op": op,
                                    "exact": _dec(exact), "rounding": rounding, "size": size,
                                    "drawn": int(len(picks[-1]))}, **_prov(item.provenance)))
    rows = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    rank = np.concatenate([np.arange(1, len(x) + 1) for x in picks]) if picks else np.zeros(0, dtype=np.int64)
    stratum = pl.Series(list(covered), dtype=pl.String).gather(
        pl.Series(np.repeat(np.arange(len(covered)), [len(x) for x in picks]))) if picks else []
    batch = (np.arange(len(rows)) % batches + 1) if batches else None
    frame = _selection_frame(row=rows, reason=pl.repeat("random", len(rows), eager=True), rank=rank,
                             stratum=stratum, batch=batch)
    frame = frame.with_columns(pl.concat_str([pl.lit(f"双随机 {mode}: grade "), pl.col("stratum"),
                                              pl.lit(", rank "), pl.col("rank").cast(pl.String)]).alias("rule"))
    if draw.match is not None and len(rows):
        frame = frame.with_columns(pl.Series("items", _items_of(draw, tag_lists.gather(rows).to_list()),
                                             dtype=pl.List(pl.String)))
    sel = Selection(draw.name, "draw", draw.label, frame)
    sel.summary = {
        "name": draw.name, "kind": "draw", "label": draw.label, "mode": mode, "batches": batches or None,
        "ratio": draw.ratio.measure, "strata": strata_summary,
        "not_covered": int(np.isin(codes, [grades.index(g) for g in covered], invert=True).sum()),
        "unmatched": int((~matched).sum()) if draw.match is not None else 0,
        "drawn": int(len(rows)),
    }
    if batches:
        sel.summary["batch_sizes"] = np.bincount(batch, minlength=batches + 1)[1:].tolist()
    return sel


def _ratio(checked, draw: n.Draw, grade: str):
    for item in checked.measures_by_grade[grade]:
        if isinstance(item, n.MeasureValue) and item.measure == draw.ratio.measure \
                and getattr(item, "condition", None) is None:
            return item.requirement.value.value, item.requirement.op, item
    raise PopulationError("draw_grade_without_ratio", f"grade {grade} has no {draw.ratio.measure}")


# ---- group rules ------------------------------------------------------------------------------

_CMP = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _run_group_rule(checked, rule: n.GroupRule, pop: Population, conds: Conditions) -> list:
    """Every group (members sharing the key) on which the rule fires, with its counts."""
    key = pop.column(rule.key).cast(pl.String)
    has_key = (key.is_not_null() & (key != "")).to_numpy()
    rows = np.flatnonzero(has_key)
    if len(rows) == 0:
        return []
    cols = {"key": key.gather(rows), ID: pop.ids(rows)}
    for k, c in enumerate(rule.conditions):
        cols[f"c{k}"] = conds.truth(c.condition, rows) if c.condition is not None else np.ones(len(rows), dtype=bool)
    df = pl.DataFrame(cols)
    agg = df.group_by("key").agg([pl.len().alias("members")] +
                                 [pl.col(f"c{k}").sum().alias(f"n{k}") for k in range(len(rule.conditions))] +
                                 [pl.col(ID).filter(pl.col("c0")).sort().alias("matching")]).sort("key")
    out = []
    prov = _prov(rule.provenance)
    for r in agg.iter_rows(named=True):
        detail, fired = [], True
        for k, c in enumerate(rule.conditions):
            count = r[f"n{k}"]
            if c.kind == "count":
                met = _CMP[c.op](Decimal(count), c.value)
                detail.append({"kind": "count", "count": count, "op": c.op, "value": int(c.value), "met": met})
            else:
                met = _CMP[c.op](Decimal(count), c.value * r["members"])     # count / members op share, exactly
                detail.append({"kind": "share", "count": count, "members": r["members"], "op": c.op,
                               "value": _dec(c.value), "met": met})
            fired = fired and met
        if fired:
            out.append(dict({"action": rule.action, "text": rule.text, "group_by": rule.key, "key": r["key"],
                             "members": r["members"], "conditions": detail, "matching": r["matching"]}, **prov))
    return out


def _dec(d: Decimal) -> str:
    """A decimal as plain text: 0.25, 10.3, 50 (never 5E+1)."""
    return f"{d.normalize():f}"

"""Files in, files out: classify a Parquet or CSV file in chunks, so memory stays flat as the
input grows. Bad input data (a missing column, a column of the wrong type) is reported before
any work starts; rows with bad values go to a rejects file with their problems."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import polars as pl
import pyarrow.parquet as pq

from .batch import PolarsBatch
from .batch_plan import BatchPlan
from .batch_sql import DuckDBBatch

CHUNK = 1 << 20


class InputProblem(Exception):
    """The input cannot be classified; `problems` lists every reason (column, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"`{c}`: {m}" for c, m in problems))


_KIND_OK = {
    "count": lambda t: t.is_integer(),
    "number": lambda t: t.is_numeric(),
    "ratio": lambda t: t.is_numeric(),
    "bool": lambda t: t == pl.Boolean,
    "enum": lambda t: t in (pl.String, pl.Categorical) or isinstance(t, pl.Enum),
    "grade": lambda t: t in (pl.String, pl.Categorical) or isinstance(t, pl.Enum),
    "date": lambda t: t in (pl.Date, pl.String),
}
_WANT = {"count": "whole numbers", "number": "numbers", "ratio": "numbers from 0 to 1", "bool": "true/false",
         "enum": "text", "grade": "text (grade names)", "date": "dates (YYYY-MM-DD)"}


def check_schema(plan: BatchPlan, schema: dict, id_column: str, events_schema: Optional[dict] = None) -> None:
    problems = []
    if id_column not in schema:
        problems.append((id_column, f"the enterprise id column is missing (--id); columns: {', '.join(list(schema)[:8])}"))
    for col, decl in plan.columns():
        t = schema.get(col)
        if t is None:
            from .diagnostics import did_you_mean
            hint = did_you_mean(col, list(schema))
            problems.append((col, f"input `{col}` ({decl.type}) has no column" + (f"; {hint}" if hint else "") +
                             " — add it; leave cells empty where there is no data"))
        elif t != pl.Null and not _KIND_OK[decl.type.kind](t):
            problems.append((col, f"holds {t}, expected {_WANT[decl.type.kind]}"))
    if events_schema is not None:
        for c in (id_column, "input", "date"):
            if c not in events_schema:
                problems.append((c, f"the events file needs columns `{id_column}`, `input`, `date`"))
    elif [name for name in plan.events_inputs()]:
        required = [c for c in plan.events_inputs() if _events_required(plan, c)]
        for c in required:
            problems.append((c, f"events input `{c}` is required: pass --events with its events"))
    if problems:
        raise InputProblem(problems)


def _events_required(plan: BatchPlan, col: str) -> bool:
    for name, decl in plan.inputs.items():
        if plan.column(name) == col:
            return name not in plan.defaults and decl.missing.kind == "required"
    return any(_events_required(s, col) for s in plan.used.values())


@dataclass
class Summary:
    rows: int = 0
    rejected: int = 0
    grades: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)


def read_schema(path: str) -> dict:
    if path.endswith(".parquet"):
        return dict(pl.scan_parquet(path).collect_schema())
    return dict(pl.scan_csv(path, try_parse_dates=True).collect_schema())


def chunks(path: str, size: int = CHUNK, columns: Optional[list] = None):
    """(frame, rows so far, total rows or None) per chunk of the input file, reading only
    `columns` (default all). Parquet: one slice of the file per chunk, read by Polars (only the
    row groups the slice covers; measured 2x faster than pyarrow's iter_batches and, unlike
    collect_batches, it reads no further ahead than asked); CSV: Polars' streaming reader."""
    if path.endswith(".parquet"):
        total = pq.ParquetFile(path).metadata.num_rows
        lf = pl.scan_parquet(path)
        if columns is not None:
            lf = lf.select(columns)
        for start in range(0, total, size):
            frame = lf.slice(start, size).collect()
            yield frame, start + frame.height, total
    else:
        lf = pl.scan_csv(path, try_parse_dates=True)
        if columns is not None:
            lf = lf.select(columns)
        done = 0
        for frame in lf.collect_batches(chunk_size=size):
            done += frame.height
            yield frame, done, None


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


class _Worker:
    """A thread at one end of a bounded queue: `Prefetch` produces (the next chunk is read while
    this one is classified), `Sink` consumes (the last chunk is written while the next is
    classified). The bound keeps memory flat: at most `depth` chunks wait in the queue."""

    def __init__(self, depth: int):
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


class Prefetch(_Worker):
    def __init__(self, iterable, depth: int = 1):
        super().__init__(depth)
        self.iterable = iterable
        self.thread.start()

    def _run(self):
        try:
            for item in self.iterable:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:       # handed to the consumer, raised there
            self._put(_Failed(exc))

    def __iter__(self):
        try:
            while True:
                item = self.q.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            self.stop.set()


class Sink(_Worker):
    def __init__(self, write: Callable, depth: int = 2):
        super().__init__(depth)
        self.write = write
        self.error: Optional[BaseException] = None
        self.thread.start()

    def _run(self):
        while True:
            item = self.q.get()
            if item is _END:
                return
            if self.error is None:
                try:
                    self.write(item)
                except BaseException as exc:
                    self.error = exc

    def put(self, item) -> None:
        if self.error is not None:
            raise self.error
        self._put(item)

    def finish(self) -> None:
        """Write what is queued, then end the thread (a failed write skips the rest)."""
        self.q.put(_END)
        self.thread.join()


class _Writers:
    """The results file and the rejects file, opened at the first chunk that has rows for them."""

    def __init__(self, output: str, rejects: str):
        self.output, self.rejects = output, rejects
        self.results = self.rejected = None

    def __call__(self, item) -> None:
        good, bad = item
        if self.results is None:
            self.results = pq.ParquetWriter(self.output, good.schema, compression="zstd")
        self.results.write_table(good)
        if bad is not None:
            if self.rejected is None:
                self.rejected = pq.ParquetWriter(self.rejects, bad.schema)
            self.rejected.write_table(bad)

    def close(self) -> None:
        for w in (self.results, self.rejected):
            if w is not None:
                w.close()


def classify_file(plan: BatchPlan, input: str, output: str, *, rejects: Optional[str] = None,
                  events: Optional[str] = None, id_column: str = "id", engine: str = "polars",
                  contributions: bool = False, chunk: int = CHUNK,
                  progress: Optional[Callable[[int, int], None]] = None) -> Summary:
    """Classify `input` chunk by chunk into `output` (and the rejected rows into `rejects`).
    Reading, classifying and writing overlap: a thread reads the next chunk and another writes
    the last one while this one is classified, with at most one chunk waiting at each end."""
    ev_frame = None
    if events is not None:
        ev_frame = pl.read_parquet(events) if events.endswith(".parquet") else pl.read_csv(events, try_parse_dates=True)
    schema = read_schema(input)
    check_schema(plan, schema, id_column, dict(ev_frame.schema) if ev_frame is not None else None)
    batch = (DuckDBBatch(plan, contributions, id_column) if engine == "duckdb"
             else PolarsBatch(plan, contributions, id_column))
    counts = batch.event_counts(ev_frame, id_column) if ev_frame is not None else None
    del ev_frame
    rejects = rejects or str(Path(output).with_suffix("")) + ".rejects.parquet"
    # only the columns the plan reads (an enterprises file often has many more)
    wanted = set([id_column] + [c for c, _ in plan.columns()])
    columns = [c for c in schema if c in wanted]
    summary = Summary(grades={g: 0 for g in plan.grades})
    writers = _Writers(output, rejects)
    sink = Sink(writers)
    reader = Prefetch(chunks(input, chunk, columns))
    try:
        for frame, done, total in reader:
            good, bad = batch.evaluate(frame, counts)
            sink.put((good.to_arrow(), bad.to_arrow() if bad.height else None))
            summary.rows += frame.height
            for g, k in good.group_by("grade").len().iter_rows():
                summary.grades[str(g)] = summary.grades.get(str(g), 0) + k
            if bad.height:
                summary.rejected += bad.height
                if len(summary.examples) < 5:
                    summary.examples += bad.head(5 - len(summary.examples)).to_dicts()
            del frame, good, bad
            if progress:
                progress(done, total if total is not None else done)
    finally:
        reader.stop.set()
        sink.finish()
        writers.close()
    if sink.error is not None:
        raise sink.error
    return summary

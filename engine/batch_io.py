"""Files in, files out: classify a Parquet or CSV file in chunks, so memory stays flat as the
input grows. Bad input data (a missing column, a column of the wrong type) is reported before
any work starts; rows with bad values go to a rejects file with their problems."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import polars as pl
import pyarrow as pa
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


def chunks(path: str, size: int = CHUNK):
    """(frame, rows so far, total rows) per chunk of the input file."""
    if path.endswith(".parquet"):
        f = pq.ParquetFile(path)
        total = f.metadata.num_rows
        done = 0
        for batch in f.iter_batches(batch_size=size):
            frame = pl.from_arrow(batch)
            done += frame.height
            yield frame, done, total
    else:
        frame = pl.read_csv(path, try_parse_dates=True)
        for s in range(0, frame.height, size):
            yield frame.slice(s, size), min(s + size, frame.height), frame.height


def classify_file(plan: BatchPlan, input: str, output: str, *, rejects: Optional[str] = None,
                  events: Optional[str] = None, id_column: str = "id", engine: str = "polars",
                  contributions: bool = False, chunk: int = CHUNK,
                  progress: Optional[Callable[[int, int], None]] = None) -> Summary:
    ev_frame = None
    if events is not None:
        ev_frame = pl.read_parquet(events) if events.endswith(".parquet") else pl.read_csv(events, try_parse_dates=True)
    check_schema(plan, read_schema(input), id_column, dict(ev_frame.schema) if ev_frame is not None else None)
    batch = (DuckDBBatch(plan, contributions, id_column) if engine == "duckdb"
             else PolarsBatch(plan, contributions, id_column))
    counts = batch.event_counts(ev_frame, id_column) if ev_frame is not None else None
    rejects = rejects or str(Path(output).with_suffix("")) + ".rejects.parquet"
    summary = Summary(grades={g: 0 for g in plan.grades})
    writer = rej_writer = None
    try:
        for frame, done, total in chunks(input, chunk):
            good, bad = batch.evaluate(frame, counts)
            table = good.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(output, table.schema, compression="zstd")
            writer.write_table(table)
            summary.rows += frame.height
            for g, k in good.group_by("grade").len().iter_rows():
                summary.grades[str(g)] = summary.grades.get(str(g), 0) + k
            if bad.height:
                summary.rejected += bad.height
                bt = bad.to_arrow()
                if rej_writer is None:
                    rej_writer = pq.ParquetWriter(rejects, bt.schema)
                rej_writer.write_table(bt)
                if len(summary.examples) < 5:
                    summary.examples += bad.head(5 - len(summary.examples)).to_dicts()
            if progress:
                progress(done, total)
    finally:
        if writer is not None:
            writer.close()
        if rej_writer is not None:
            rej_writer.close()
    return summary

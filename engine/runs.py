"""Monthly runs: each classification is recorded (policy version and hash, as-of date, input
fingerprint, counts per grade, where the results are), so two runs can be compared as a grade
transition matrix. The store is a small SQLite file (default `runs.db` beside the output)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import polars as pl

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started TEXT NOT NULL,
  policy_id TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL,
  as_of TEXT NOT NULL,
  input TEXT NOT NULL, input_fingerprint TEXT NOT NULL,
  output TEXT NOT NULL, id_column TEXT NOT NULL,
  rows INTEGER NOT NULL, rejected INTEGER NOT NULL,
  grades TEXT NOT NULL
)"""


def fingerprint(path: str) -> str:
    """sha256 of the input file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def connect(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db)
    conn.execute(SCHEMA)
    return conn


def record(db: str, *, checked, as_of: dt.date, input: str, output: str, id_column: str, rows: int,
           rejected: int, grades: dict, input_fingerprint: str | None = None) -> int:
    with connect(db) as conn:
        cur = conn.execute(
            "INSERT INTO runs (started, policy_id, version, sha256, as_of, input, input_fingerprint, output, "
            "id_column, rows, rejected, grades) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (dt.datetime.now().isoformat(timespec="seconds"), checked.id, checked.version, checked.sha256,
             as_of.isoformat(), input, input_fingerprint or fingerprint(input), str(Path(output).resolve()),
             id_column, rows, rejected, json.dumps(grades, ensure_ascii=False)))
        return int(cur.lastrowid)


def list_runs(db: str) -> list[dict]:
    with connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
    return [dict(r, grades=json.loads(r["grades"])) for r in rows]


def get(db: str, run_id: int) -> dict:
    for r in list_runs(db):
        if r["id"] == run_id:
            return r
    raise LookupError(f"no run {run_id} in {db}")


def transitions(db: str, run_a: int, run_b: int) -> dict:
    """The grade transition matrix between two runs: {from: {to: count}}, enterprises matched
    by id; `(new)` and `(gone)` hold those present in only one of them."""
    a, b = get(db, run_a), get(db, run_b)
    ga = pl.scan_parquet(a["output"]).select(pl.col(a["id_column"]).alias("id"), pl.col("grade").cast(pl.String).alias("a"))
    gb = pl.scan_parquet(b["output"]).select(pl.col(b["id_column"]).alias("id"), pl.col("grade").cast(pl.String).alias("b"))
    joined = ga.join(gb, on="id", how="full", coalesce=True).select(
        pl.col("a").fill_null("(new)"), pl.col("b").fill_null("(gone)")).group_by("a", "b").len().collect()
    out: dict = {}
    for row in joined.iter_rows(named=True):
        out.setdefault(row["a"], {})[row["b"]] = row["len"]
    return {"a": a, "b": b, "matrix": out}

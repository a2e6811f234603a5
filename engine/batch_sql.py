"""Run the generated SQL (engine/sqlgen.py) in DuckDB (embedded) or in PostgreSQL (in place).

DuckDB: a chunk (a Polars or Arrow table) is registered as the enterprises table, the query
runs, results and rejects come back as Polars frames with the same columns as the Polars plan.
PostgreSQL: the query runs over a named table and writes the results and the rejects to
tables beside it; nothing leaves the database but the counts.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

import polars as pl
from sqlglot import exp

from .batch_plan import BatchPlan
from .batch_plan import plan as make_plan
from .checker.context import CheckedPolicy
from .sqlgen import build, render


class DuckDBBatch:
    """The SQL plan on the embedded DuckDB engine; the same interface as PolarsBatch."""

    def __init__(self, plan: BatchPlan, contributions: bool = False, id_column: str = "id", threads: int = 0):
        import duckdb
        self.plan = plan
        self.id_column = id_column
        self.contributions = contributions
        self.con = duckdb.connect()
        if threads:
            self.con.execute("SET threads = " + str(int(threads)))
        self._sql = {}

    def sql(self, events: bool) -> str:
        if events not in self._sql:
            tree = build(self.plan, source="enterprises", events="events" if events else None,
                         id_column=self.id_column, contributions=self.contributions)
            self._sql[events] = render(tree, "duckdb")
        return self._sql[events]

    def event_counts(self, events: Optional[pl.DataFrame], id_column: Optional[str] = None):
        if events is None or not self.plan.events_inputs():
            return None
        if id_column and id_column != self.id_column:
            events = events.rename({id_column: self.id_column})
        if events.schema["date"] == pl.String:
            d = pl.col("date")
            events = events.with_columns(pl.when(d.str.contains(r"^\d{4}-\d{2}-\d{2}$"))
                                         .then(d.str.to_date("%Y-%m-%d", strict=False)).alias("date"))
        return events

    def evaluate(self, frame: pl.DataFrame, events: Optional[pl.DataFrame] = None):
        con = self.con
        con.register("enterprises", frame.to_arrow())
        if events is not None:
            con.register("events", events.to_arrow())
        try:
            out = pl.from_arrow(con.sql(self.sql(events is not None)).to_arrow_table())
        finally:
            con.unregister("enterprises")
            if events is not None:
                con.unregister("events")
        bad = out["__bad"]
        rejects = out.filter(bad).select(self.id_column, "problems")
        good = out.filter(~bad).drop("__bad", "problems")
        return good, rejects


def run_in_postgres(conn, checked: CheckedPolicy, as_of: dt.date, *, table: str, output_table: str,
                    rejects_table: Optional[str] = None, events_table: Optional[str] = None, id_column: str = "id",
                    contributions: bool = False, resolve_used=None) -> dict:
    """Classify `table` inside PostgreSQL; write `output_table` (and `rejects_table`).
    Returns {"rows", "rejected", "grades": {grade: count}}. `conn` is a psycopg connection."""
    p = make_plan(checked, as_of, resolve_used, events_given=events_table is not None)
    tree = build(p, source=table, events=events_table, id_column=id_column, contributions=contributions)
    rejects_table = rejects_table or output_table + "_rejects"
    work = exp.Table(this=exp.to_identifier("__riskrules_all", quoted=True))
    out_t, rej_t = _table(output_table), _table(rejects_table)
    statements = [
        exp.Drop(tables=[work], kind="TABLE", exists=True),
        exp.Create(this=work, kind="TABLE", expression=tree, properties=exp.Properties(
            expressions=[exp.TemporaryProperty()])),
        exp.Drop(tables=[out_t], kind="TABLE", exists=True),
        exp.Drop(tables=[rej_t], kind="TABLE", exists=True),
        exp.Create(this=out_t, kind="TABLE", expression=exp.select(*[
            exp.column(c, quoted=True) for c in _output_names(p, id_column, contributions)])
            .from_(work).where(exp.Not(this=exp.column("__bad", quoted=True)))),
        exp.Create(this=rej_t, kind="TABLE", expression=exp.select(
            exp.column(id_column, quoted=True), exp.column("problems", quoted=True))
            .from_(work).where(exp.column("__bad", quoted=True))),
    ]
    with conn.transaction():
        cur = conn.cursor()
        for st in statements:
            cur.execute(render(st, "postgres"))
        counts = cur.execute(render(exp.select(exp.column("grade", quoted=True), exp.Count(this=exp.Star()))
                                    .from_(out_t).group_by(exp.column("grade", quoted=True)), "postgres")).fetchall()
        rejected = cur.execute(render(exp.select(exp.Count(this=exp.Star())).from_(rej_t), "postgres")).fetchone()[0]
        cur.execute(render(exp.Drop(tables=[work], kind="TABLE", exists=True), "postgres"))
    grades = {g: 0 for g in p.grades}
    grades.update({g: int(k) for g, k in counts})
    return {"rows": sum(grades.values()) + int(rejected), "rejected": int(rejected), "grades": grades,
            "sql": render(tree, "postgres")}


def _table(name: str) -> exp.Table:
    parts = name.split(".")
    if len(parts) == 2:
        return exp.Table(this=exp.to_identifier(parts[1], quoted=True), db=exp.to_identifier(parts[0], quoted=True))
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def _output_names(p: BatchPlan, id_column: str, contributions: bool) -> list[str]:
    names = [id_column, "score", "grade", "base_grade", "overrides", "alerts"]
    names += [f"override.{p.checked.policy.overrides[L.override].name}.{what}" for L in p.lasting
              for what in ("since", "until")]
    names += ["collected", "completeness"]
    if p.required is not None:
        names.append("completeness_met")
    names.append("measures")
    for alias, s in p.used.items():
        names.append(f"{alias}.grade")
        if s.thresholds is not None:
            names.append(f"{alias}.score")
    if contributions:
        names += [f"contribution.{ip.name}" for ip in p.indicators]
    return names

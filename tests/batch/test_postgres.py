"""The generated SQL runs inside PostgreSQL (127.0.0.1:5432) and equals the evaluator; Spark
SQL is generated from the same tree and parses back. A unique schema per run, dropped after.

PostgreSQL runs the smallest set of shipped policies that together hold every construct the
SQL generator has (`_pg_set`); DuckDB runs the same SQL for all of them and for random
policies (test_differential.py), so what is left to PostgreSQL is its dialect."""
from __future__ import annotations

import datetime as dt
import uuid

import polars as pl
import pytest

from engine.batch_plan import Unsupported
from engine.batch_sql import run_in_postgres
from engine.loader import load_paths
from sqlglot import exp

from engine.batch_plan import plan as make_plan
from engine.sqlgen import DIALECTS, build, parse_back, render
from engine.synth import population

from support import actual, expected, records
from test_differential import inject_invalid, shipped

AS_OF = dt.date(2024, 6, 30)
DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _checked():
    return shipped()


def _features(c) -> set:
    p = c.policy
    kinds = {i.type.kind for i in c.inputs.values()}
    out = {f"input {k}" for k in kinds} | {f"missing {i.missing.kind}" for i in c.inputs.values()}
    out |= {f"override {o.effect.kind}" for o in p.overrides}
    out |= {"override that lasts"} if any(o.duration is not None for o in p.overrides) else set()
    out |= {"used policy"} if c.used else set()
    out |= {"alert"} if p.alerts else set()
    out |= {"default"} if any(i.default is not None for i in c.inputs.values()) else set()
    out |= {"conditional measure"} if any(getattr(it, "condition", None) is not None
                                          for items in c.measures_by_grade.values() for it in items) else set()
    out |= {f"grading {type(p.grading).__name__}"}
    out |= {f"scoring {type(s.indicator.scoring).__name__}" for s in c.indicators}
    out |= {"completeness"} if p.requires else set()
    return out


def _pg_set():
    """Shipped policies, greedily: each adds a construct none of the ones before holds."""
    seen, out = set(), []
    for c in sorted(_checked(), key=lambda c: -len(_features(c))):
        if _features(c) - seen:
            seen |= _features(c)
            out.append(c)
    return out


@pytest.fixture(scope="module")
def pg():
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if __import__("os").environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {DSN}: {exc}")
    schema = "riskrules_test_" + uuid.uuid4().hex[:10]
    conn.execute(f'CREATE SCHEMA "{schema}"')  # test setup; the engine's SQL is built by sqlglot
    try:
        yield conn, schema
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


def _load(conn, schema, name, frame: pl.DataFrame):
    types = {pl.Int64: "BIGINT", pl.Float64: "DOUBLE PRECISION", pl.Boolean: "BOOLEAN", pl.String: "TEXT",
             pl.Date: "DATE"}
    cols = ", ".join(f'"{c}" {types[t]}' for c, t in frame.schema.items())
    conn.execute(f'CREATE TABLE "{schema}"."{name}" ({cols})')
    with conn.cursor().copy(f'COPY "{schema}"."{name}" FROM STDIN') as cp:
        for row in frame.iter_rows():
            cp.write_row(row)


@pytest.mark.parametrize("checked", _pg_set(), ids=lambda c: c.id)
def test_postgres_equals_the_evaluator(pg, checked):
    conn, schema = pg
    try:
        frame, events = population(checked, 60, seed=5, as_of=AS_OF)
    except Unsupported as exc:
        pytest.skip(str(exc))
    frame = inject_invalid(checked, frame, 5)
    tag = uuid.uuid4().hex[:6]
    _load(conn, schema, f"ent_{tag}", frame)
    if events is not None:
        _load(conn, schema, f"ev_{tag}", events)
    summary = run_in_postgres(conn, checked, AS_OF, table=f"{schema}.ent_{tag}", output_table=f"{schema}.out_{tag}",
                              events_table=f"{schema}.ev_{tag}" if events is not None else None, contributions=True)
    results = pl.read_database(f'SELECT * FROM "{schema}"."out_{tag}"', conn)
    rejects = pl.read_database(f'SELECT * FROM "{schema}"."out_{tag}_rejects"', conn)
    want = expected(checked, records(checked, frame, events), AS_OF)
    got = actual(results, rejects, checked)
    assert summary["rows"] == frame.height
    assert {i: g for i, g in got.items() if g != want[i]} == {}


@pytest.mark.parametrize("checked", _checked(), ids=lambda c: c.id)
def test_every_dialect_generates_and_spark_parses_back(checked):
    """DuckDB's and PostgreSQL's SQL run in the tests above; Spark's is only generated, so it
    is parsed back with Spark's grammar and holds the same stages."""
    try:
        tree = build(make_plan(checked, AS_OF, events_given=True), events="events")
    except Unsupported as exc:
        assert "§10" in str(exc), exc
        return
    for dialect in DIALECTS:
        try:
            sql = render(tree, dialect)
        except Unsupported as exc:
            assert dialect == "spark" and "128-bit" in str(exc), exc
            continue
        if dialect == "spark":
            back = parse_back(sql, dialect)
            assert [c.alias for c in back.find(exp.With).expressions] == [c.alias for c in tree.args["with_"].expressions]

"""The generated SQL runs inside PostgreSQL (127.0.0.1:5432) and equals the evaluator; Spark
SQL is generated from the same tree and parses back. A unique schema per run, dropped after."""
from __future__ import annotations

import datetime as dt
import uuid

import polars as pl
import pytest

from engine.batch_plan import Unsupported
from engine.batch_sql import run_in_postgres
from engine.loader import load_paths
from engine.sqlgen import DIALECTS, parse_back, to_sql
from engine.synth import population

from support import actual, expected, records
from test_differential import inject_invalid

AS_OF = dt.date(2024, 6, 30)
DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _checked():
    return [s.checked for s in load_paths(["policies"]) if s.checked is not None]


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


@pytest.mark.parametrize("checked", _checked(), ids=lambda c: c.id)
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
def test_every_dialect_generates_and_parses_back(checked):
    for dialect in DIALECTS:
        try:
            sql = to_sql(checked, dialect, as_of=AS_OF, events="events")
        except Unsupported as exc:
            assert "§10" in str(exc) or dialect == "spark", exc
            continue
        assert parse_back(sql, dialect) is not None

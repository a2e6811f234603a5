"""`riskrules classify`, `riskrules synth`, `riskrules runs`: classify millions (docs/batch.md)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
runs_app = typer.Typer(help="Monthly runs: list them, and the grade transitions between two.", no_args_is_help=False,
                       invoke_without_command=True)


def _policy(policy: str, policies: Path, on: dt.date):
    """(checked policy, resolver of used policies by id and date) for a policy id or a .rules file."""
    from riskrules.cli import resolve_evaluator
    ev = resolve_evaluator(policy, policies, None, on)
    used = ev._resolve_used

    def resolve(policy_id, day):
        found = used(policy_id, day) if used is not None else None
        return found.checked if found is not None else None
    return ev.checked, resolve


def _date(text: Optional[str]) -> dt.date:
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"`{text}` is not a date (YYYY-MM-DD)")


def classify(policy: str = typer.Argument(..., help="policy id or a .rules file"),
             input: Optional[str] = typer.Option(None, "--input", "-i", help="enterprises .parquet or .csv"),
             events: Optional[str] = typer.Option(None, "--events", help="events .parquet/.csv: id, input, date"),
             as_of: Optional[str] = typer.Option(None, "--as-of", help="classify as of this date (default today)"),
             output: Optional[str] = typer.Option(None, "--output", "-o", help="results .parquet"),
             rejects: Optional[str] = typer.Option(None, "--rejects", help="rejected rows (default <output>.rejects.parquet)"),
             id_column: str = typer.Option("id", "--id", help="the enterprise id column"),
             engine: str = typer.Option("polars", "--engine", help="polars (fast path) or duckdb (the SQL plan)"),
             contributions: bool = typer.Option(False, "--contributions", help="a column per indicator"),
             database: Optional[str] = typer.Option(None, "--database", help="postgresql://… : classify in place"),
             table: Optional[str] = typer.Option(None, "--table", help="the enterprises table (with --database)"),
             events_table: Optional[str] = typer.Option(None, "--events-table"),
             output_table: Optional[str] = typer.Option(None, "--output-table"),
             runs_db: Optional[str] = typer.Option(None, "--runs-db", help="record the run (default runs.db beside the output)"),
             chunk: int = typer.Option(1 << 20, "--chunk", help="rows per chunk"),
             policies: Path = typer.Option(Path("policies"), "--policies")):
    """Classify every enterprise of a file (or a PostgreSQL table) with a compiled batch plan."""
    from engine.batch_io import InputProblem, classify_file
    from engine.batch_plan import Unsupported, plan as make_plan
    on = _date(as_of)
    checked, resolve = _policy(policy, policies, on)
    if database:
        if not (table and output_table):
            raise typer.BadParameter("--database needs --table and --output-table")
        import psycopg
        from engine.batch_sql import run_in_postgres
        with psycopg.connect(database) as conn:
            try:
                s = run_in_postgres(conn, checked, on, table=table, output_table=output_table,
                                    events_table=events_table, id_column=id_column, contributions=contributions,
                                    resolve_used=resolve)
            except Unsupported as exc:
                err.print(f"error: {exc}", markup=False)
                raise typer.Exit(1)
        _report(checked, s["rows"], s["rejected"], s["grades"], [], f"{output_table}_rejects")
        return
    if not (input and output):
        raise typer.BadParameter("give --input and --output (or --database, --table, --output-table)")
    try:
        plan = make_plan(checked, on, resolve, events_given=events is not None)
    except Unsupported as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1)
    from concurrent.futures import ThreadPoolExecutor

    from engine import runs
    # the run records the input's sha256: read it beside the classification (hashlib lets go of
    # the GIL), not after it (0.8 s for a 10 M-row file); from the first chunk on, so that an
    # input refused before any work costs no hashing either
    hashing = ThreadPoolExecutor(max_workers=1)
    fingerprint = []

    def progress(done, total):
        if not fingerprint:
            fingerprint.append(hashing.submit(runs.fingerprint, input))
        bar.update(task, completed=done, total=total)

    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  TextColumn("{task.completed:,.0f} enterprises"), TimeElapsedColumn(),
                  console=err, transient=False) as bar:
        task = bar.add_task(f"{checked.id} {checked.version}", total=1)
        try:
            s = classify_file(plan, input, output, rejects=rejects, events=events, id_column=id_column, engine=engine,
                              contributions=contributions, chunk=chunk,
                              progress=progress)
        except InputProblem as exc:
            err.print("error: the input cannot be classified:", markup=False)
            for c, m in exc.problems:
                err.print(f"  `{c}`: {m}", markup=False)
            raise typer.Exit(2)
    rej = rejects or str(Path(output).with_suffix("")) + ".rejects.parquet"
    _report(checked, s.rows, s.rejected, s.grades, s.examples, rej)
    db = runs_db or str(Path(output).resolve().parent / "runs.db")
    rid = runs.record(db, checked=checked, as_of=on, input=input, output=output, id_column=id_column,
                      rows=s.rows, rejected=s.rejected, grades=s.grades,
                      input_fingerprint=fingerprint[0].result() if fingerprint else None)
    hashing.shutdown()
    out.print(f"run {rid} recorded in {db}", markup=False)


def _report(checked, rows, rejected, grades, examples, rejects_where):
    t = Table(title=f"{checked.id} {checked.version}: {rows:,} enterprises")
    t.add_column("grade")
    t.add_column("label")
    t.add_column("enterprises", justify="right")
    t.add_column("share", justify="right")
    for g in checked.grades:
        k = grades.get(g, 0)
        t.add_row(g, checked.grade_labels.get(g) or "", f"{k:,}", f"{100 * k / max(rows, 1):.1f}%")
    out.print(t)
    if rejected:
        out.print(f"{rejected:,} rows rejected (not classified) → {rejects_where}", style="yellow", markup=False)
        for e in examples:
            out.print(f"  {e}", markup=False)


def synth(policy: str = typer.Argument(..., help="policy id or a .rules file"),
          n: int = typer.Option(1000, "-n", help="number of enterprises"),
          seed: int = typer.Option(0, "--seed"),
          as_of: Optional[str] = typer.Option(None, "--as-of"),
          output: str = typer.Option(..., "--output", "-o", help="population .parquet (or .csv)"),
          events: Optional[str] = typer.Option(None, "--events", help="events .parquet (or .csv)"),
          policies: Path = typer.Option(Path("policies"), "--policies")):
    """Write a deterministic synthetic population (and events) for a policy."""
    from engine.synth import population
    on = _date(as_of)
    checked, resolve = _policy(policy, policies, on)
    frame, ev = population(checked, n, seed=seed, as_of=on, resolve_used=resolve)
    (frame.write_parquet if output.endswith(".parquet") else frame.write_csv)(output)
    out.print(f"{frame.height:,} enterprises → {output}", markup=False)
    if ev is not None:
        target = events or str(Path(output).with_suffix("")) + ".events.parquet"
        (ev.write_parquet if target.endswith(".parquet") else ev.write_csv)(target)
        out.print(f"{ev.height:,} events → {target}", markup=False)


@runs_app.callback()
def runs_list(ctx: typer.Context, runs_db: str = typer.Option("runs.db", "--runs-db")):
    """List the recorded runs."""
    ctx.obj = runs_db
    if ctx.invoked_subcommand is not None:
        return
    from engine import runs
    t = Table()
    for c in ("run", "started", "policy", "version", "as of", "rows", "rejected", "grades"):
        t.add_column(c)
    for r in runs.list_runs(runs_db):
        t.add_row(str(r["id"]), r["started"], r["policy_id"], r["version"], r["as_of"], f"{r['rows']:,}",
                  f"{r['rejected']:,}", " ".join(f"{g}:{k}" for g, k in r["grades"].items()))
    out.print(t)


@runs_app.command("diff")
def runs_diff(ctx: typer.Context, run_a: int = typer.Argument(...), run_b: int = typer.Argument(...)):
    """The grade transitions between two runs (rows: grade in RUN_A, columns: grade in RUN_B)."""
    from engine import runs
    try:
        d = runs.transitions(ctx.obj, run_a, run_b)
    except LookupError as exc:
        known = ", ".join(str(r["id"]) for r in runs.list_runs(ctx.obj)) or "none"
        err.print(f"error: {exc}; runs: {known}", markup=False)
        raise typer.Exit(2)
    m = d["matrix"]
    grades = list(dict.fromkeys(list(d["a"]["grades"]) + list(d["b"]["grades"])))
    rows_ = grades + [g for g in m if g not in grades]
    cols = grades + sorted({c for r in m.values() for c in r} - set(grades))
    t = Table(title=f"run {run_a} ({d['a']['as_of']}) → run {run_b} ({d['b']['as_of']})")
    t.add_column("from \\ to")
    for c in cols:
        t.add_column(c, justify="right")
    for r in rows_:
        if r in m:
            t.add_row(r, *[f"{m[r].get(c, 0):,}" for c in cols])
    out.print(t)


def register(app: typer.Typer) -> None:
    app.command()(classify)
    app.command()(synth)
    app.add_typer(runs_app, name="runs")


from riskrules.cli import app as _app  # noqa: E402  (registered on import, as the other areas do)

register(_app)

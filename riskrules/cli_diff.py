"""`riskrules diff OLD NEW`: what a policy change does before it goes live."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from engine import diagnostics as dg
from engine.compiler import Evaluator
from engine.diff import population_diff, rule_changes
from engine.loader import load_paths, lower_source, SourceFile, check_sources

from .cli import app, err, out


def _read_version(spec: str, policies: Path) -> SourceFile:
    """A policy file, or `REV:path` for the file as it was at a git revision."""
    if ":" in spec and not Path(spec).exists():
        rev, path = spec.split(":", 1)
        try:
            text = subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True,
                                  text=True).stdout
        except subprocess.CalledProcessError as exc:
            err.print(f"error: cannot read {spec} from git: {exc.stderr.strip()}", markup=False)
            raise typer.Exit(2)
        return lower_source(SourceFile(spec, text))
    try:
        return lower_source(SourceFile(spec, Path(spec).read_text(encoding="utf-8")))
    except OSError as exc:
        err.print(f"error: cannot read {spec}: {exc}", markup=False)
        raise typer.Exit(2)


def _load_population(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ndjson" or path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("a population is a JSON array of records")
    return data


@app.command()
def diff(old: str = typer.Argument(..., help="the current version: a .rules file, or REV:path from git"),
         new: str = typer.Argument(..., help="the proposed version: a .rules file"),
         population: Optional[Path] = typer.Option(None, "--population", "-p",
                                                   help="records to evaluate (JSON array or NDJSON)"),
         as_of: Optional[str] = typer.Option(None, "--as-of", help="evaluate as of (default: the new effective date)"),
         id_field: Optional[str] = typer.Option(None, "--id", help="the field naming each enterprise"),
         fail_above: Optional[float] = typer.Option(None, "--fail-above",
                                                    help="exit 1 if more than this share of enterprises change grade (e.g. 0.05)"),
         policies: Path = typer.Option(Path("policies"), "--policies", help="the tree used policies come from")):
    """Show what a policy change does: the rules that changed and, over a population, who changes grade
    and how the inspection workload moves."""
    known_sources = load_paths([str(policies)]) if policies.exists() else []
    known = {}
    for s in known_sources:
        if s.checked is not None:
            prev = known.get(s.checked.id)
            if prev is None or s.checked.policy.effective > prev.policy.effective:
                known[s.checked.id] = s.checked
    versions = []
    for spec in (old, new):
        src = _read_version(spec, policies)
        if src.policy is not None:
            check_sources([src], {k: v for k, v in known.items() if k != src.policy.id})
        errors = [d for d in src.diagnostics if d.is_error]
        if errors or src.checked is None:
            for d in errors:
                err.print(dg.render_text(d, src.text), markup=False)
            err.print(f"error: {spec} does not check clean; nothing to compare", markup=False)
            raise typer.Exit(1)
        versions.append(src.checked)
    a, b = versions
    out.print(f"{a.id} {a.version} → {b.id} {b.version}", markup=False)
    changes = rule_changes(a.policy, b.policy)
    for line in changes or ["no rule changed"]:
        out.print(f"  · {line}", markup=False)
    if population is None:
        raise typer.Exit(0)
    try:
        records = _load_population(population)
    except (OSError, ValueError) as exc:
        err.print(f"error: cannot read the population: {exc}", markup=False)
        raise typer.Exit(2)
    on = dt.date.fromisoformat(as_of) if as_of else b.policy.effective
    d = population_diff(Evaluator(a), Evaluator(b), records, on, id_field)
    _print_matrix(a.grades, b.grades, d)
    out.print(f"{len(d.changed)} of {d.evaluated} enterprises change grade "
              f"({(d.changed_share * 100).quantize(Decimal('0.1'))}%)", markup=False)
    for key, ga, gb in d.changed[:10]:
        out.print(f"  {key}: {ga} → {gb}", markup=False)
    _print_workload(d)
    if d.rejected:
        out.print(f"{len(d.rejected)} records were rejected by a version, e.g. {d.rejected[0][0]}: "
                  f"{d.rejected[0][1][0]['msg']}", markup=False)
    if fail_above is not None and d.changed_share > Decimal(str(fail_above)):
        err.print(f"error: {len(d.changed)} enterprises ({(d.changed_share * 100).quantize(Decimal('0.1'))}%) "
                  f"change grade, more than the {fail_above:.1%} allowed", markup=False)
        raise typer.Exit(1)


def _print_matrix(old_grades, new_grades, d) -> None:
    t = Table(title="grade transitions (rows: current, columns: proposed)")
    t.add_column("")
    for g in new_grades:
        t.add_column(g, justify="right")
    for ga in old_grades:
        t.add_row(ga, *[str(d.transitions.get((ga, gb), 0)) for gb in new_grades])
    out.print(t)


def _print_workload(d) -> None:
    names = sorted(set(d.workload_old) | set(d.workload_new))
    if not names:
        return
    t = Table(title="workload per year (counts) / expected draws (ratios)")
    for col in ("measure", "current", "proposed", "change"):
        t.add_column(col, justify="left" if col == "measure" else "right")
    for name in names:
        a, b = d.workload_old.get(name, Decimal(0)), d.workload_new.get(name, Decimal(0))
        q = Decimal("0.1")
        t.add_row(name, str(a.quantize(q)), str(b.quantize(q)), f"{(b - a).quantize(q):+}")
    out.print(t)

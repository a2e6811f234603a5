"""The `riskrules` command: check, test and evaluate policies (typer + rich)."""
from __future__ import annotations

import datetime as dt
import json
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from engine import diagnostics as dg
from engine.loader import Registry, load_paths
from engine.testing import run_tests
from engine.validate import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Enterprise credit-risk classification policies: check, test, evaluate, serve.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(str, Enum):
    text = "text"
    json = "json"
    github = "github"


def _default_paths(paths: Optional[List[Path]]) -> list:
    return [str(p) for p in paths] if paths else ["policies"]


@app.command()
def check(paths: Optional[List[Path]] = typer.Argument(None, help="policy files or folders (default: policies/)"),
          format: Format = typer.Option(Format.text, "--format", "-f", help="text for people, json or github for CI"),
          assumptions: bool = typer.Option(True, help="list every `assumed` value")):
    """Check policies; exit 1 if any has an error."""
    sources = load_paths(_default_paths(paths))
    diags = [d for s in sources for d in s.diagnostics]
    shown = [d for d in diags if assumptions or d.code != "assumption"]
    n_err = sum(d.is_error for d in diags)
    n_warn = sum(d.severity is dg.Severity.WARNING for d in diags)
    n_assumed = sum(d.code == "assumption" for d in diags)
    if format is Format.json:
        print(json.dumps({"files": len(sources), "errors": n_err, "warnings": n_warn, "assumptions": n_assumed,
                          "diagnostics": [d.to_json() for d in shown]}, ensure_ascii=False, indent=2))
    elif format is Format.github:
        for d in shown:
            print(dg.render_github(d))
    else:
        text_of = {s.path: s.text for s in sources}
        for d in shown:
            style = {"error": "red", "warning": "yellow", "info": "cyan"}[d.severity.value]
            out.print(dg.render_text(d, text_of.get(d.span.file)), style=None if d.code == "assumption" else style,
                      markup=False)
        out.print(f"{len(sources)} files checked: {n_err} errors, {n_warn} warnings, {n_assumed} assumptions",
                  markup=False)
    raise typer.Exit(1 if n_err else 0)


@app.command()
def test(paths: Optional[List[Path]] = typer.Argument(None, help="policy files or folders (default: policies/)")):
    """Run every policy's test cases; exit 1 on a failure."""
    registry, diags = Registry.from_paths(_default_paths(paths))
    errors = [d for d in diags if d.is_error]
    for d in errors:
        err.print(dg.render_text(d), style="red", markup=False)
    outcomes = run_tests(registry)
    for o in outcomes:
        if not o.passed:
            out.print(f"FAIL {o.policy_id} {o.version} · {o.name} ({o.span})", style="red", markup=False)
            for f in o.failures:
                out.print(f"     {f}", markup=False)
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    if errors:
        out.print(f"{len(errors)} policy errors: policies with errors were not tested", style="red")
    print(f"{passed} passed, {failed} failed")
    raise typer.Exit(1 if failed or errors else 0)


@app.command(name="eval")
def eval_(policy: str = typer.Argument(..., help="policy id (e.g. weihai.food_production) or a .rules file"),
          input: str = typer.Option(..., "--input", "-i", help="JSON file with the enterprise's inputs, or - for stdin"),
          as_of: Optional[str] = typer.Option(None, "--as-of", help="evaluate as of this date (YYYY-MM-DD)"),
          version: Optional[str] = typer.Option(None, "--version", help="a named version instead of the one in force"),
          explain: bool = typer.Option(False, "--explain", help="include the per-indicator explanation"),
          policies: Path = typer.Option(Path("policies"), "--policies", help="the policy tree")):
    """Evaluate one enterprise and print the result as JSON."""
    on = _parse_date(as_of) if as_of else dt.date.today()
    ev = resolve_evaluator(policy, policies, version, on)
    try:
        raw = sys.stdin.read() if input == "-" else Path(input).read_text(encoding="utf-8")
        record = json.loads(raw)
    except (OSError, json.JSONDecodeError) as exc:
        err.print(f"error: cannot read the input: {exc}", markup=False)
        raise typer.Exit(2)
    try:
        result = ev.evaluate(record, on, explain=explain)
    except InputError as exc:
        print(json.dumps({"error": "invalid_input", "problems": exc.problems}, ensure_ascii=False, indent=2))
        raise typer.Exit(1)
    print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))


def resolve_evaluator(policy: str, policies: Path, version: Optional[str], on: dt.date):
    """The evaluator for a policy id (the version in force on `on`, or `version`) or for a .rules
    file checked together with the tree it may use. Exits with the diagnostics if it is broken."""
    paths = [str(policies)] if policies.exists() else []
    if policy.endswith(".rules"):
        paths.append(policy)
    registry, diags = Registry.from_paths(paths)
    policy_id = policy
    if policy.endswith(".rules"):
        found = [c for c in registry.all() if Path(c.file).resolve() == Path(policy).resolve()]
        if not found:
            for d in diags:
                if d.is_error:
                    err.print(dg.render_text(d), markup=False)
            err.print(f"error: {policy} does not check clean", markup=False)
            raise typer.Exit(1)
        policy_id, version = found[0].id, found[0].version
    try:
        return registry.evaluator(policy_id, version=version, on=on)
    except LookupError as exc:
        err.print(f"error: {exc.args[0] if exc.args else exc}; known policies: {', '.join(registry.ids())}",
                  markup=False)
        raise typer.Exit(2)


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"`{text}` is not a date (YYYY-MM-DD)")


# ---- commands of other areas register here, one import each (keeps this file small) ----
# (service: riskrules/cli_service.py · batch: riskrules/cli_batch.py · population: riskrules/cli_population.py)
from riskrules import cli_service  # noqa: E402,F401  (serve, keys, audit)
from riskrules import cli_diff  # noqa: E402,F401  (diff)
from riskrules import cli_population  # noqa: E402,F401  (draw, groups)
from riskrules import cli_batch  # noqa: E402,F401  (classify, synth, runs)


def main():  # console-script entry point
    app()


if __name__ == "__main__":
    main()

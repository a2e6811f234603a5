"""`riskrules draw` and `riskrules groups`: the population rules of a policy over a population file.

    riskrules draw weihai.se_production --population units.csv --seed 20240630 \\
        --officers officers.csv --as-of 2024-06-30 --output sample.csv

writes the sample (one row per drawn enterprise: the plan or draw, why it was drawn, its rank,
its officers) and prints a summary per plan and stratum with the seed and the population's
fingerprint, so anyone holding the population, the policy version and the seed can repeat it.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table


from .cli import app, err, out, resolve_evaluator


def _policy(policy: str, policies: Path, version: Optional[str], on: dt.date):
    """(checked policy, evaluator) for a policy id or a .rules file."""
    ev = resolve_evaluator(policy, policies, version, on)
    return ev.checked, ev


def _date(text: Optional[str]) -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"`{text}` is not a date (YYYY-MM-DD)")


def _fail(exc) -> None:
    from engine.assignment import AssignmentError
    if isinstance(exc, AssignmentError):
        err.print(f"error[assignment_infeasible/{exc.constraint}]: {exc.message}", markup=False)
    else:
        err.print(f"error[{exc.code}]: {exc.message}", markup=False)
        for d in getattr(exc, "details", [])[:5]:
            err.print(f"  {json.dumps(d, ensure_ascii=False)}", markup=False)
    if exc.help:
        err.print(f"  help: {exc.help}", markup=False)
    raise typer.Exit(1)


@app.command()
def draw(policy: str = typer.Argument(..., help="policy id (e.g. weihai.se_production) or a .rules file"),
         population: Path = typer.Option(..., "--population", "-p",
                                         help="the enterprises: .csv, .parquet, .json or .jsonl with an `id` column"),
         seed: str = typer.Option(..., "--seed", "-s", help="a whole number, published with the result"),
         output: Path = typer.Option(..., "--output", "-o", help="the sample: .csv or .parquet"),
         officers: Optional[Path] = typer.Option(None, "--officers",
                                                 help="officers (`id`, `district`, `conflicts`): assign them too"),
         as_of: Optional[str] = typer.Option(None, "--as-of", help="the date the draw is for (YYYY-MM-DD)"),
         plan: Optional[List[str]] = typer.Option(None, "--plan", help="only this plan or draw (repeatable)"),
         grade: Optional[List[str]] = typer.Option(None, "--grade", help="draws: only this grade's stratum (repeatable; "
                                                   "in mode per_grade it is drawn exactly as in a full run)"),
         version: Optional[str] = typer.Option(None, "--version", help="a named version instead of the one in force"),
         per_inspection: Optional[int] = typer.Option(None, "--per-inspection",
                                                      help="officers per inspection (overrides the policy)"),
         max_load: Optional[int] = typer.Option(None, "--max-load",
                                                help="inspections per officer at most (overrides the policy)"),
         summary: Optional[Path] = typer.Option(None, "--summary", help="also write the summary as JSON here"),
         format: str = typer.Option("text", "--format", "-f", help="text or json (the summary on stdout)"),
         policies: Path = typer.Option(Path("policies"), "--policies", help="the policy tree")):
    """Draw the policy's plans and stratified draws from a population; write the sample."""
    # polars and numpy load only for the commands that need them, not for `riskrules check`
    from engine import population as pop
    from engine.assignment import AssignmentError
    on = _date(as_of)
    checked, ev = _policy(policy, policies, version, on)
    if not (checked.policy.plans or checked.policy.draws):
        err.print(f"error: {checked.id} {checked.version} has no plan or draw", markup=False)
        raise typer.Exit(2)
    try:
        frame = pop.read_table(population)
        officer_frame = pop.read_table(officers) if officers is not None else None
        result = pop.run(checked, frame, seed, as_of=on, officers=officer_frame, names=plan or None, evaluator=ev,
                         per_inspection=per_inspection, load_cap=max_load, grades=grade or None)
        result.write(output)
    except (pop.PopulationError, AssignmentError) as exc:
        _fail(exc)
    doc = result.to_json()
    doc["output"] = str(output)
    if summary is not None:
        summary.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    if format == "json":
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        _print_summary(doc)


@app.command()
def groups(policy: str = typer.Argument(..., help="policy id or a .rules file"),
           population: Path = typer.Option(..., "--population", "-p", help="the enterprises (.csv, .parquet, .json)"),
           as_of: Optional[str] = typer.Option(None, "--as-of", help="grade as of this date (YYYY-MM-DD)"),
           version: Optional[str] = typer.Option(None, "--version", help="a named version instead of the one in force"),
           format: str = typer.Option("text", "--format", "-f", help="text or json"),
           policies: Path = typer.Option(Path("policies"), "--policies", help="the policy tree")):
    """Apply the policy's group rules (e.g. a chain whose stores grade C or D) to a population."""
    # polars and numpy load only for the commands that need them, not for `riskrules check`
    from engine import population as pop
    from engine.assignment import AssignmentError
    on = _date(as_of)
    checked, ev = _policy(policy, policies, version, on)
    if not checked.policy.group_rules:
        err.print(f"error: {checked.id} {checked.version} has no group rule", markup=False)
        raise typer.Exit(2)
    try:
        frame = pop.read_table(population)
        result = pop.run(checked, frame, 0, as_of=on, names=[], evaluator=ev, groups=True)
    except (pop.PopulationError, AssignmentError) as exc:
        _fail(exc)
    doc = {"policy": {"id": checked.id, "version": checked.version, "sha256": checked.sha256},
           "as_of": on.isoformat(), "population": {"rows": len(result.population),
                                                    "fingerprint": result.population.fingerprint},
           "group_actions": result.group_actions}
    if format == "json":
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if not result.group_actions:
        out.print("no group rule fires", markup=False)
    for a in result.group_actions:
        counts = "; ".join(f"{c['kind']} {c['count']} {c['op']} {c['value']}" for c in a["conditions"])
        out.print(f"{a['action']} · {a['group_by']} = {a['key']}: {a['members']} members ({counts})", markup=False)
        out.print(f"  {a['text']}", markup=False)
        out.print(f"  members: {', '.join(a['matching'])}", markup=False)


def _print_summary(doc: dict) -> None:
    p = doc["policy"]
    out.print(f"{p['id']} {p['version']} (sha256 {p['sha256'][:12]}…) · seed {doc['seed']} · as of {doc['as_of']}",
              markup=False)
    out.print(f"population: {doc['population']['rows']} enterprises · {doc['population']['fingerprint']}",
              markup=False)
    if "officers" in doc:
        out.print(f"officers: {doc['officers']['rows']} · {doc['officers']['fingerprint']}", markup=False)
    for d in doc["draws"]:
        title = f"{d['kind']} {d['name']}" + (f" ({d['label']})" if d.get("label") else "")
        if d["kind"] == "plan":
            q = d["quota"]
            out.print(f"{title}: quota {float(q['share']) * 100:g}% of {q['of']} ({q['base']}) = {q['exact']}"
                      f" → {q['size']} (rounding {q['rounding'] or 'not needed'})", markup=False)
            pr = d["priority"]
            if pr["tiers"]:
                out.print(f"  priority list: {pr['candidates']} candidates, {pr['drawn']} drawn"
                          + (f"; {len(pr['cut'])} cut — {pr['cut_reason']}" if pr["cut"] else ""), markup=False)
            if d["random_fill"] is not None:
                out.print(f"  random fill: {d['random_fill']['drawn']} of {d['random_fill']['pool']}", markup=False)
            if d["excluded"] or d["unmatched"]:
                out.print(f"  not eligible: {d['excluded']} excluded, {d['unmatched']} without a matching item",
                          markup=False)
            out.print(f"  drawn: {d['drawn']}" + (f" (short by {d['shortfall']})" if d["shortfall"] else ""),
                      markup=False)
        else:
            out.print(f"{title}: mode {d['mode']}" + (f" {d['batches']}" if d.get("batches") else "")
                      + f", ratio `{d['ratio']}`", markup=False)
            t = Table("grade", "population", "ratio", "exact", "size", "drawn", box=None, pad_edge=False)
            for s in d["strata"]:
                t.add_row(s["grade"], str(s["population"]), f"{s['op']} {float(s['ratio']) * 100:g}%", s["exact"],
                          str(s["size"]), str(s["drawn"]))
            out.print(t)
            if d.get("batch_sizes"):
                out.print(f"  batches: {d['batch_sizes']}", markup=False)
            if d["unmatched"]:
                out.print(f"  {d['unmatched']} enterprises match no check item", markup=False)
        a = d.get("assignment")
        if a:
            out.print(f"  officers: {a['rules']} ({a['source']}); loads {a['min_load']}–{a['max_load']}", markup=False)
    for w in doc.get("warnings", []):
        out.print(f"warning: {w}", style="yellow", markup=False)
    if doc["group_actions"]:
        out.print(f"group actions: {len(doc['group_actions'])} (see --format json)", markup=False)
    out.print(f"sample written to {doc['output']}", markup=False)

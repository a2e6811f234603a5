"""`riskrules serve`, `riskrules keys …`, `riskrules audit verify`: the evaluation service's commands.

Registered on the main command by importing this module (riskrules/cli.py, one line).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import List, Optional

import typer

from riskrules.cli import app, err, out

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the evaluation service.")
audit_app = typer.Typer(no_args_is_help=True, help="The service's hash-chained audit log.")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

DB_HELP = "the store (default: $RISKRULES_DATABASE_URL, $DATABASE_URL or sqlite:///riskrules.db)"


def _store(database_url: Optional[str]):
    from api.settings import database_url_from_env
    from api.store import Store

    store = Store(database_url or database_url_from_env())
    store.migrate()
    return store


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="address to listen on"),
          port: int = typer.Option(8000, help="port to listen on"),
          workers: int = typer.Option(1, min=1, help="worker processes (about one per core)"),
          policies: List[Path] = typer.Option([Path("policies")], "--policies", help="the policy tree (repeatable)"),
          database_url: Optional[str] = typer.Option(None, "--database-url", help=DB_HELP),
          log_level: str = typer.Option("warning", help="uvicorn log level")):
    """Run the HTTP service (OpenAPI at /v1/docs). `kill -HUP` reloads the policies."""
    import uvicorn

    from api.policyset import build, read_tree
    from api.settings import Settings

    if database_url:
        os.environ["RISKRULES_DATABASE_URL"] = database_url
    os.environ["RISKRULES_POLICIES"] = os.pathsep.join(str(p) for p in policies)
    settings = Settings.from_env()
    missing = [str(p) for p in policies if not p.exists()]
    if missing:
        err.print(f"error: the policy tree {', '.join(missing)} does not exist (see --policies)", markup=False)
        raise typer.Exit(2)
    store = _store(settings.database_url)       # migrate once here, before any worker starts
    pset, diags = build(read_tree(settings.policies), store.published(), store.generation())
    if pset is None:
        _print_errors(diags)
        err.print("error: the policies do not check clean; the service was not started", markup=False)
        raise typer.Exit(1)
    store.dispose()
    out.print(f"riskrules: {len(pset.registry.all())} policy versions; http://{host}:{port}/v1/docs "
              f"({workers} worker{'s' if workers > 1 else ''}, store {_redacted(settings.database_url)})",
              markup=False)
    config = uvicorn.Config("api.main:create_app", factory=True, host=host, port=port, workers=workers,
                            log_level=log_level, access_log=False, timeout_graceful_shutdown=10)
    if workers == 1:
        uvicorn.Server(config).run()
        return
    from api.workers import PortInUse, Supervisor

    try:    # SIGHUP reloads the policies: checked here, counted in the store if clean; the workers follow
        supervisor = Supervisor(config, on_hup=lambda: _reload_from_supervisor(settings))
    except PortInUse as exc:
        err.print(f"error: {exc} (is another service running there?)", markup=False)
        raise typer.Exit(1)
    supervisor.run()


def _reload_from_supervisor(settings) -> None:
    from api.policyset import build, read_tree
    from api.publishing import SIGNAL_ACTOR, reload_recorder
    from api.store import Store

    log = logging.getLogger("riskrules.service")
    store = Store(settings.database_url)
    try:
        pset, diags = build(read_tree(settings.policies), store.published(), store.generation())
        if pset is None:
            log.error("SIGHUP: the policy tree does not check clean; the running policies stay")
            _print_errors(diags)
            return
        with store.write() as conn:
            store.count_reload(conn)
            reload_recorder(store, SIGNAL_ACTOR)(conn, pset)
        log.warning("SIGHUP: policies reloaded; the workers follow")
    finally:
        store.dispose()


def _print_errors(diags) -> None:
    from engine import diagnostics as dg
    for d in diags:
        if d.is_error:
            err.print(dg.render_text(d), markup=False)


def _redacted(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url


# ---- keys ------------------------------------------------------------------------------------

@keys_app.command("create")
def keys_create(role: str = typer.Option(..., "--role", help="system | officer | auditor | admin"),
                jurisdiction: str = typer.Option(..., "--jurisdiction", help="e.g. weihai, or * for all"),
                name: str = typer.Option(..., "--name", help="who holds it, e.g. 威海双随机平台"),
                database_url: Optional[str] = typer.Option(None, "--database-url", help=DB_HELP)):
    """Make a key and print it once: it is stored hashed and cannot be shown again."""
    from api.keys import cli_actor, create_key

    try:
        row, key = create_key(_store(database_url), name=name, role=role, jurisdiction=jurisdiction,
                              actor=cli_actor())
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2)
    err.print(f"key {row['id']} for {name} ({role}, {jurisdiction}); keep it safe, it is not shown again:",
              markup=False)
    print(key)


@keys_app.command("list")
def keys_list(database_url: Optional[str] = typer.Option(None, "--database-url", help=DB_HELP),
              as_json: bool = typer.Option(False, "--json", help="JSON instead of a table")):
    """List keys (never the keys themselves: their first characters)."""
    rows = [{k: r[k] for k in ("id", "name", "role", "jurisdiction", "prefix", "created_at", "revoked_at")}
            for r in _store(database_url).keys()]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.table import Table
    table = Table("id", "name", "role", "jurisdiction", "key starts", "created", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["role"], r["jurisdiction"], r["prefix"] + "…",
                      r["created_at"][:19], (r["revoked_at"] or "")[:19])
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: int = typer.Argument(..., metavar="ID", help="the id shown by `keys list`"),
                database_url: Optional[str] = typer.Option(None, "--database-url", help=DB_HELP)):
    """Revoke a key; running services refuse it within RISKRULES_KEY_CACHE_SECONDS (5 s)."""
    from api.keys import cli_actor, revoke_key

    row = revoke_key(_store(database_url), key_id, actor=cli_actor())
    if row is None:
        err.print(f"error: there is no key {key_id}", markup=False)
        raise typer.Exit(2)
    out.print(f"key {key_id} ({row['name']}) revoked at {row['revoked_at']}", markup=False)


# ---- audit -----------------------------------------------------------------------------------

@audit_app.command("verify")
def audit_verify(database_url: Optional[str] = typer.Option(None, "--database-url", help=DB_HELP),
                 head: Optional[str] = typer.Option(None, "--head", help="a head hash recorded earlier: also "
                                                    "catches a log rewritten or cut back to an earlier state")):
    """Check the audit log's hash chain; exit 1 and name the first bad row if it was tampered with."""
    from api import audit

    verdict = audit.verify(_store(database_url), head)
    if verdict.ok:
        out.print(f"ok: {verdict.rows} rows, head {verdict.head_hash}", markup=False)
        return
    err.print(f"TAMPERED: row {verdict.bad_id}: {verdict.problem} ({verdict.rows} rows before it are intact)",
              markup=False)
    raise typer.Exit(1)

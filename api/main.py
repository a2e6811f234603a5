"""The application: wires the routers, the problem handlers and the body limits. Nothing else.

    uvicorn --factory api.main:create_app        (or: riskrules serve)
"""
from __future__ import annotations

import asyncio
import gc
import logging
import signal
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI

from . import problems
from .limits import BodyLimit
from .routing import HotPaths
from .publishing import SIGNAL_ACTOR, reload_recorder
from .routes import audit, draws, evaluations, health, policies
from .service import Service
from .settings import Settings

log = logging.getLogger("riskrules.api")

NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}

DESCRIPTION = """Grades enterprises against the credit-risk classification policies of market-regulation
offices, and lists the supervision measures that follow. Every endpoint but `/v1/health` needs an API key
(`Authorization: Bearer rrk_…`, made with `riskrules keys create`); a key sees the policies and results of
its own jurisdiction only. Results are confidential (不得向社会公开): every evaluation and every read of a
result is recorded in a hash-chained audit log. Errors are `application/problem+json` (RFC 9457)."""


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or Settings.from_env()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.start)
        _reload_on_sighup(service)
        gc.freeze()     # the compiled policies live as long as the process: keep them out of GC passes
        try:
            yield
        finally:
            await asyncio.to_thread(service.stop)

    app = FastAPI(title="riskrules", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/v1/docs", openapi_url="/v1/openapi.json", redoc_url=None,
                  telemetry=None if settings.telemetry else NO_TELEMETRY)
    app.state.service = service
    problems.install(app)
    app.include_router(evaluations.hot, prefix="/v1")
    for module in (evaluations, policies, audit, health, draws):
        app.include_router(module.router, prefix="/v1")
    # innermost first: HotPaths answers the evaluation routes inside the body limits
    app.add_middleware(HotPaths, router=evaluations.hot, prefix="/v1")
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, batch=settings.max_batch_bytes)
    return app


def _reload_on_sighup(service: Service) -> None:
    """`kill -HUP <pid>` reloads like POST /v1/reload (a single-process server; with several
    workers `riskrules serve` catches it in the supervisor)."""
    try:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, _reload, service))
    except (NotImplementedError, RuntimeError, ValueError):
        pass    # not the main thread (tests) or no signals here


def _reload(service: Service) -> None:
    ok, diags = service.policies.reload(reload_recorder(service.store, SIGNAL_ACTOR))
    if ok:
        log.warning("SIGHUP: policies reloaded (%d versions)", len(service.policies.current.registry.all()))
    else:
        log.error("SIGHUP: the policy tree does not check clean; the running policies stay:\n%s",
                  "\n".join(f"{d.span}: {d.code}: {d.message}" for d in diags if d.is_error))

"""Liveness (no key needed) and readiness (is the store reachable, are policies loaded)."""
from __future__ import annotations

from fastapi import APIRouter

from ..deps import CanReadPolicies, ServiceDep
from ..problems import Problem
from ..responses import JSON
from ..schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="the process is up (no key needed)")
async def health():
    return JSON({"status": "ok"})


@router.get("/ready", response_model=Readiness, summary="the service can answer: store reachable, policies loaded",
            responses={503: {"description": "not ready (store unreachable)"}})
def ready(service: ServiceDep, caller: CanReadPolicies):
    live = service.policies.current
    try:
        service.store.ping()
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        database = f"unreachable: {type(exc).__name__}"
    recorder = "ok" if service.recorder.failures == 0 else f"{service.recorder.failures} failed commits"
    body = {"ready": database == "ok" and live is not None, "database": database,
            "recorder": recorder, "policies": len(live.ids()) if live else 0,
            "versions": len(live.registry.all()) if live else 0, "loaded_at": live.loaded_at if live else None}
    if not body["ready"]:
        raise Problem("unavailable", f"not ready: database {database}", readiness=body)
    return JSON(body)

"""The audit log, for auditors: read it page by page, and verify its hash chain."""
from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from .. import audit
from ..deps import CanReadAudit, ServiceDep
from ..responses import JSON
from ..schemas import AuditPage, AuditVerdict

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=AuditPage, summary="audit entries after `after_id`, oldest first",
            description="An auditor of one jurisdiction sees that jurisdiction's entries only. Reading the log "
                        "is itself recorded.")
async def read_log(caller: CanReadAudit, service: ServiceDep,
                   after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   action: Annotated[Optional[str], Query(max_length=40, description="e.g. publish, evaluate")] = None):
    scope = None if caller.jurisdiction == "*" else caller.jurisdiction
    rows = await run_in_threadpool(audit.entries, service.store, jurisdiction=scope, after_id=after_id,
                                   limit=limit, action=action)
    await service.recorder.record([], [audit.Event(caller.id, caller.name, caller.role, "read_audit",
                                                   caller.jurisdiction, {"after_id": after_id, "rows": len(rows)})])
    return JSON({"entries": rows, "next_after_id": rows[-1]["id"] if len(rows) == limit else None})


@router.get("/audit/verify", response_model=AuditVerdict,
            summary="walk the whole hash chain; report the first row that breaks it")
async def verify(caller: CanReadAudit, service: ServiceDep,
                 head: Annotated[Optional[str], Query(pattern="^[0-9a-f]{64}$",
                                                      description="a head hash recorded earlier")] = None):
    verdict = await run_in_threadpool(audit.verify, service.store, head)
    return JSON(verdict.to_json())

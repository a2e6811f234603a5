"""Draws: run a policy's 双随机 plans and draws over a population sent in the request.

    POST /v1/policies/{policy_id}/draws   {"seed": 20240630, "population": [{"id": …, …}], "officers": [...]}

Officers only (role `officer`, or `admin`). The draw is the engine's (engine/population.py): the
answer carries the seed, the population's fingerprint and the sample with why each enterprise
was drawn and its officers, so anyone holding the population and the seed can repeat it (一公开).
Every draw is recorded in the audit log — seed, fingerprints, sizes and the sha256 of the sample —
before the answer is sent.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Optional, Union

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine import population as pop
from engine.assignment import AssignmentError

from .. import audit, problems
from ..deps import PolicyId, authenticate, in_scope, json_body
from ..evaluations import evaluator_for, new_id
from ..keys import Caller, jurisdiction_of
from ..problems import Problem
from ..responses import JSON

router = APIRouter(tags=["draws"])

DRAW_ROLES = ("officer", "admin")


class DrawRequest(BaseModel):
    """A draw: the seed to publish, the population (and officers) to draw from."""
    model_config = ConfigDict(extra="forbid")
    seed: Union[Annotated[int, Field(ge=0, lt=2 ** 128)], Annotated[str, Field(pattern=r"^[0-9]{1,39}$")]] = Field(
        description="a whole number, published with the result (e.g. 20240630)")
    as_of: Optional[dt.date] = Field(None, description="the date the draw is for: the version in force then; default today")
    version: Optional[str] = Field(None, max_length=128, description="a named version or its sha256 instead")
    plans: Optional[list[Annotated[str, Field(max_length=128)]]] = Field(
        None, description="only these plans or draws (with the plans they draw from); default all, and the group rules")
    population: list[dict[str, Any]] = Field(description="one object per enterprise: `id`, then the columns the "
                                                          "policy's rules read (inputs or `grade`, `district`, `tags`, …)")
    grades: Optional[list[Annotated[str, Field(max_length=64)]]] = Field(
        None, description="draws: only these grades' strata (in mode per_grade drawn exactly as in a full run)")
    officers: Optional[list[dict[str, Any]]] = Field(None, description="`id`, `district`, `conflicts` (enterprise ids)")
    per_inspection: Optional[int] = Field(None, ge=1, le=10, description="officers per inspection (overrides the policy)")
    max_load: Optional[int] = Field(None, ge=1, description="inspections per officer at most (overrides the policy)")


EXAMPLE = {"seed": 20240630, "as_of": "2024-06-30",
           "population": [{"id": "91410400MA0000001", "provincial_grade": "C", "tags": "食品经营"},
                          {"id": "91410400MA0000002", "provincial_grade": "A", "tags": "企业;餐饮服务"}],
           "officers": [{"id": "ZH001", "district": "湛河区"}, {"id": "ZH002", "district": "湛河区"},
                        {"id": "ZH003", "district": "湛河区", "conflicts": ["91410400MA0000001"]}]}


class DrawAnswer(BaseModel):
    draw_id: str
    summary: dict = Field(description="policy version, seed, generator, population fingerprint, per plan and stratum")
    sample: list[dict] = Field(description="one object per drawn enterprise, in draw order")


async def draw_caller(request: Request) -> Caller:
    """An officer's key (officer or admin role) of the policy's jurisdiction."""
    caller = await authenticate(request.app.state.service, request.headers.get("authorization"), "read_policies")
    if caller.role not in DRAW_ROLES:
        raise Problem("forbidden", f"a key with role `{caller.role}` may not draw samples; draws are for officers")
    return caller


CanDraw = Annotated[Caller, Depends(draw_caller)]


@router.post("/policies/{policy_id}/draws", response_model=DrawAnswer, summary="draw a 双随机 sample",
             description="Runs the policy's plans and stratified draws (all, or `plans`) and its group rules over "
                         "the population in the body, assigns officers when `officers` are given, and answers with "
                         "the sample and its summary. The same population, policy version and seed always give the "
                         "same sample. Recorded in the audit log before the answer is sent.",
             openapi_extra={"security": [{"ApiKey": []}], "requestBody": {"required": True, "content": {
                 "application/json": {"schema": DrawRequest.model_json_schema(), "example": EXAMPLE}}}},
             responses={403: problems.DOC, 404: problems.DOC, 413: problems.DOC, 415: problems.DOC,
                        422: problems.DOC})
async def draw(policy_id: PolicyId, caller: CanDraw, request: Request):
    in_scope(caller, policy_id)
    service = request.app.state.service
    body = await json_body(request)
    try:
        req = DrawRequest.model_validate(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "type": e["type"], "msg": e["msg"]} for e in exc.errors()]
        raise Problem("invalid-request", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                   for e in errors[:5]), errors=errors)
    limit = service.settings.max_batch_records
    if len(req.population) > limit:
        raise Problem("too-large", f"{len(req.population)} enterprises is more than the {limit} a draw may hold")
    on = req.as_of or dt.date.today()
    ev = evaluator_for(service.policies.current, policy_id, req.version, on)
    answer, event = await run_in_threadpool(run_draw, ev, caller, req, on)
    await service.recorder.record([], [event])
    return JSON(answer)


def run_draw(ev, caller: Caller, req: DrawRequest, on: dt.date) -> tuple[dict, audit.Event]:
    """The draw, its answer and its audit event (no request or response objects here)."""
    checked = ev.checked
    try:
        frame = pop.from_records(req.population)
        officers = pop.from_records(req.officers) if req.officers is not None else None
        result = pop.run(checked, frame, req.seed, as_of=on, officers=officers, names=req.plans, evaluator=ev,
                         per_inspection=req.per_inspection, load_cap=req.max_load, grades=req.grades)
    except AssignmentError as exc:
        raise Problem("invalid-input", exc.message, constraint=exc.constraint, help=exc.help)
    except pop.PopulationError as exc:
        raise Problem("invalid-input", exc.message, code=exc.code, help=exc.help, errors=exc.details)
    summary = result.to_json()
    sample = result.sample.to_dicts()
    sample_sha = hashlib.sha256(orjson.dumps(sample, option=orjson.OPT_SORT_KEYS)).hexdigest()
    draw_id = new_id()
    summary["sample_sha256"] = sample_sha
    detail = {"draw_id": draw_id, "seed": summary["seed"], "as_of": summary["as_of"],
              "population_rows": summary["population"]["rows"],
              "population_fingerprint": summary["population"]["fingerprint"],
              "officers_fingerprint": summary.get("officers", {}).get("fingerprint"),
              "plans": [d["name"] for d in summary["draws"]], "grades": req.grades,
              "drawn": {d["name"]: d["drawn"] for d in summary["draws"]},
              "group_actions": len(summary["group_actions"]), "sample_sha256": sample_sha}
    event = audit.Event(caller.id, caller.name, caller.role, "draw", jurisdiction_of(checked.id), detail,
                        checked.id, checked.version, checked.sha256)
    return {"draw_id": draw_id, "summary": summary, "sample": sample}, event

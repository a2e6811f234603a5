"""Policies: list them, read one version's text and check report, check a text, publish a
version, reload the tree."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from .. import publishing, views
from ..deps import (CanPublish, CanReadPolicies, CanReload, CanValidate, LivePolicies, PolicyId, PolicyText, ServiceDep,
                    in_scope)
from .. import problems
from ..problems import Problem
from ..responses import JSON
from ..schemas import (POLICY_TEXT_EXAMPLE, PolicyList, PolicySummary, PolicyTextRequest, ReloadReport,
                       ValidationReport, VersionDetail)

router = APIRouter(tags=["policies"])

VersionRef = Annotated[str, Path(max_length=128, description="a version name or its sha256", examples=["2021.09"])]

_TEXT_BODY = {"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}, "example": POLICY_TEXT_EXAMPLE},
    "application/json": {"schema": PolicyTextRequest.model_json_schema(),
                         "example": {"text": POLICY_TEXT_EXAMPLE, "file": "weihai/demo.rules"}}}}}


@router.get("/policies", response_model=PolicyList, summary="the policies you may see, with their versions")
def list_policies(caller: CanReadPolicies, policies: LivePolicies):
    today = dt.date.today()
    return JSON({"policies": [views.policy_summary(policies, pid, today) for pid in policies.ids()
                              if caller.sees(pid)]})


def _known(policies, policy_id: str) -> None:
    if policy_id not in policies.ids():
        raise Problem("not-found", f"there is no policy `{policy_id}`")


@router.get("/policies/{policy_id}", response_model=PolicySummary, summary="one policy's versions",
            responses={403: problems.DOC, 404: problems.DOC})
def get_policy(policy_id: PolicyId, caller: CanReadPolicies, policies: LivePolicies):
    in_scope(caller, policy_id)
    _known(policies, policy_id)
    return JSON(views.policy_summary(policies, policy_id, dt.date.today()))


@router.get("/policies/{policy_id}/versions/{version}", response_model=VersionDetail,
            summary="one version: its text and its check report", responses={403: problems.DOC, 404: problems.DOC})
def get_version(policy_id: PolicyId, version: VersionRef, caller: CanReadPolicies, policies: LivePolicies):
    in_scope(caller, policy_id)
    _known(policies, policy_id)
    try:
        checked = policies.version(policy_id, version)
    except LookupError:
        raise Problem("not-found", f"`{policy_id}` has no version `{version}`")
    return JSON(views.version_detail(policies, checked, dt.date.today()))


@router.post("/validate", response_model=ValidationReport, openapi_extra=_TEXT_BODY,
             summary="check a policy text without publishing it",
             description="Send the text as `text/plain` (the .rules file; `?file=` names it in the diagnostics) "
                         "or as JSON. `use` of other policies resolves against the policies in service. The "
                         "answer is 200 with `ok: false` and the diagnostics when the text has errors.",
             responses={403: problems.DOC, 415: problems.DOC})
async def validate(caller: CanValidate, policies: LivePolicies, body: PolicyText):
    report = await run_in_threadpool(publishing.validate, policies, caller, body.text, body.file)
    return JSON(report)


@router.post("/policies/{policy_id}/versions", status_code=201, response_model=VersionDetail,
             openapi_extra=_TEXT_BODY, summary="publish a new version (officers of its jurisdiction)",
             description="The text is checked first; one with errors is refused with its diagnostics (422). A "
                         "published version is immutable: the same text (sha256) or the same `version` again is "
                         "409. The version in force so far keeps deciding until the new one's `effective` date.",
             responses={403: problems.DOC, 409: problems.DOC, 415: problems.DOC, 422: problems.DOC})
async def publish(policy_id: PolicyId, caller: CanPublish, service: ServiceDep, body: PolicyText):
    in_scope(caller, policy_id)
    detail = await run_in_threadpool(publishing.publish, service, caller, policy_id, body.text, body.file)
    return JSON(detail, status_code=201,
                headers={"Location": f"/v1/policies/{policy_id}/versions/{detail['sha256']}"})


@router.post("/reload", response_model=ReloadReport, summary="re-read the policy tree; swap only if all is clean",
             description="Every file is checked; if any has an error the policies in service stay as they are and "
                         "the answer is 422 with the diagnostics. Requests in flight finish on the set they began "
                         "with. Other workers follow within a second. `kill -HUP` on the server does the same.",
             responses={403: problems.DOC, 422: problems.DOC})
async def reload(caller: CanReload, service: ServiceDep):
    ok, diags = await run_in_threadpool(service.policies.reload, publishing.reload_recorder(service.store, caller))
    if not ok:
        raise Problem("invalid-policy", "the policy tree does not check clean; the policies in service are unchanged",
                      diagnostics=[d.to_json() for d in diags if d.is_error])
    live = service.policies.current
    return JSON({"reloaded": True, "policies": len(live.ids()), "versions": len(live.registry.all()),
                 "loaded_at": live.loaded_at, "diagnostics": [d.to_json() for d in diags if d.code != "assumption"]})

"""What routes need, as `Annotated` dependencies: a route's signature says who may call it
and what it reads.

    async def publish(policy_id: PolicyId, caller: CanPublish, service: ServiceDep, body: PolicyText)
    async def evaluate(policy_id: PolicyId, call: EvaluationContext, request: Request)

The evaluation routes take one composite dependency (`EvaluationContext`: caller, policy set,
options) because each FastAPI dependency costs more than an evaluation; see EvaluationCall.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import orjson
from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .keys import Caller
from .policyset import PolicySet
from .problems import Problem
from .schemas import PolicyTextRequest
from .service import Service

PolicyId = Annotated[str, Path(max_length=128, description="jurisdiction.domain, e.g. weihai.food_production",
                               examples=["weihai.food_production"])]

_bearer = HTTPBearer(auto_error=False, description="an API key made with `riskrules keys create`",
                     scheme_name="ApiKey", bearerFormat="rrk_…")


# Dependencies are `async def`: FastAPI runs a plain `def` dependency in its thread pool, which
# on the evaluation path costs more than the evaluation itself.

async def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="riskrules"'}
_WHAT = {"read_policies": "read policies", "evaluate": "evaluate enterprises", "read_evaluations": "read evaluations",
         "validate": "check policy texts", "publish": "publish policies", "reload": "reload the policies",
         "read_audit": "read the audit log"}


async def authenticate(service: Service, authorization: Optional[str], permission: str) -> Caller:
    """The caller behind an `Authorization: Bearer …` header, if it has the permission (401/403)."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem("unauthenticated", "send an API key as `Authorization: Bearer <key>`", headers=_CHALLENGE)
    key = key.strip()
    known, caller = service.keys.cached(key)
    if not known:       # ask the store, off the event loop
        caller = await run_in_threadpool(service.keys.caller, key)
    if caller is None:
        raise Problem("unauthenticated", "the API key is unknown or revoked", headers=_CHALLENGE)
    if not caller.can(permission):
        raise Problem("forbidden", f"a key with role `{caller.role}` may not {_WHAT[permission]}")
    return caller


def _permission(permission: str):
    async def check(request: Request, _: Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)]) -> Caller:
        return await authenticate(request.app.state.service, request.headers.get("authorization"), permission)
    return check


CanReadPolicies = Annotated[Caller, Depends(_permission("read_policies"))]
CanReadEvaluations = Annotated[Caller, Depends(_permission("read_evaluations"))]
CanValidate = Annotated[Caller, Depends(_permission("validate"))]
CanPublish = Annotated[Caller, Depends(_permission("publish"))]
CanReload = Annotated[Caller, Depends(_permission("reload"))]
CanReadAudit = Annotated[Caller, Depends(_permission("read_audit"))]


async def live_policies(request: Request) -> PolicySet:
    """The set this request will use from start to end, whatever reloads happen meanwhile."""
    return request.app.state.service.policies.current


LivePolicies = Annotated[PolicySet, Depends(live_policies)]


def in_scope(caller: Caller, policy_id: str) -> None:
    """403 for a policy of another jurisdiction, before anything about it is looked up."""
    if not caller.sees(policy_id):
        raise Problem("forbidden", f"a key of jurisdiction `{caller.jurisdiction}` may not use `{policy_id}`")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def json_body(request: Request) -> Any:
    """The body parsed as JSON: 415 when it is not sent as JSON, 400 when it is not JSON."""
    if _media_type(request) != "application/json":
        raise Problem("unsupported-media-type", "send the body as `Content-Type: application/json`")
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem("malformed-request", f"the body is not valid JSON: {exc}")


async def policy_text(request: Request) -> PolicyTextRequest:
    """A policy text, sent as text/plain (the file itself) or as JSON {"text": …, "file": …}."""
    media = _media_type(request)
    raw = await request.body()
    if media == "text/plain":
        try:
            return PolicyTextRequest(text=raw.decode("utf-8"), file=request.query_params.get("file"))
        except UnicodeDecodeError:
            raise Problem("malformed-request", "the policy text is not UTF-8")
    if media == "application/json":
        try:
            return PolicyTextRequest.model_validate_json(raw)
        except ValueError as exc:
            errors = getattr(exc, "errors", lambda: [])()
            if any(e.get("type") == "json_invalid" for e in errors):
                raise Problem("malformed-request", "the body is not valid JSON")
            raise Problem("invalid-request", "send {\"text\": \"policy …\", \"file\": \"name.rules\"}",
                          errors=[{"loc": list(e["loc"]), "type": e["type"], "msg": e["msg"]} for e in errors])
    raise Problem("unsupported-media-type", "send the policy as `text/plain` or as JSON {\"text\": …}")


PolicyText = Annotated[PolicyTextRequest, Depends(policy_text)]


class EvaluationOptions(BaseModel):
    """Which version decides, as of when, and how much to say."""
    model_config = ConfigDict(extra="forbid")
    as_of: Optional[dt.date] = Field(None, description="evaluate as of this date: picks the version in force then "
                                                       "and anchors time windows; default today")
    version: Optional[str] = Field(None, max_length=128, description="a named version or its sha256, instead of "
                                                                     "the version in force on `as_of`")
    explain: bool = Field(False, description="add the per-indicator explanation (bins, points, weights, basis)")

    @property
    def on(self) -> dt.date:
        return self.as_of or dt.date.today()


@dataclass(frozen=True)
class EvaluationCall:
    """Everything an evaluation route needs, resolved as one dependency: FastAPI's per-dependency
    machinery cost more than the evaluation itself (measured: about 60% of a request's CPU with
    six dependencies and a query model). Its query parameters and security are documented in
    OpenAPI by `EVALUATION_OPENAPI`."""
    caller: Caller
    policies: PolicySet
    options: EvaluationOptions
    service: Service


async def evaluation_call(request: Request) -> EvaluationCall:
    service = request.app.state.service
    caller = await authenticate(service, request.headers.get("authorization"), "evaluate")
    query = request.query_params
    options = _DEFAULT_OPTIONS if not query else _options(query)
    return EvaluationCall(caller, service.policies.current, options, service)


_DEFAULT_OPTIONS = EvaluationOptions()


def _options(query) -> EvaluationOptions:
    try:
        return EvaluationOptions.model_validate({k: query.get(k) for k in query.keys()})
    except ValidationError as exc:
        errors = [{"loc": ["query", *map(str, e["loc"])], "type": e["type"], "msg": e["msg"]} for e in exc.errors()]
        raise Problem("invalid-request", "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in errors), errors=errors)


EvaluationContext = Annotated[EvaluationCall, Depends(evaluation_call)]


def _query_parameters() -> list:
    props = EvaluationOptions.model_json_schema()["properties"]
    return [{"name": name, "in": "query", "required": False, "description": spec.pop("description", ""),
             "schema": spec} for name, spec in props.items()]


EVALUATION_OPENAPI = {"parameters": _query_parameters(), "security": [{"ApiKey": []}]}

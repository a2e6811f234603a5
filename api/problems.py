"""Errors as problem details (RFC 9457), one shape for every error the service returns.

    {"type": "https://riskrules.dev/problems/invalid-input", "title": "the record cannot be evaluated",
     "status": 422, "detail": "…", "instance": "/v1/policies/weihai.food_production/evaluations",
     "errors": [{"loc": ["inputs", "penalties"], "type": "wrong_type", "msg": "…", "input": "x"}]}

`errors` carries input problems (pydantic-style: loc, type, msg, input), `diagnostics` the
checker's findings in a policy text (code, severity, message, line, column, help). A request
never gets a traceback: anything unexpected is a 500 problem that says only that.
"""
from __future__ import annotations

import logging
from typing import Optional

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("riskrules.api")

TYPE_BASE = "https://riskrules.dev/problems/"
MEDIA_TYPE = "application/problem+json"

# slug → (status, title): the catalogue docs/api.md lists
CATALOGUE: dict[str, tuple[int, str]] = {
    "malformed-request": (400, "the request body is not well-formed"),
    "unauthenticated": (401, "an API key is required"),
    "forbidden": (403, "this key may not do that"),
    "not-found": (404, "no such resource"),
    "method-not-allowed": (405, "method not allowed"),
    "not-acceptable": (406, "not acceptable"),
    "conflict": (409, "already exists"),
    "too-large": (413, "the request is too large"),
    "unsupported-media-type": (415, "unsupported content type"),
    "invalid-request": (422, "the request does not follow the API's schema"),
    "invalid-input": (422, "the record cannot be evaluated"),
    "invalid-policy": (422, "the policy does not check clean"),
    "unavailable": (503, "the service cannot answer now"),
    "internal": (500, "internal error"),
}


# how an error response is documented in OpenAPI
DOC = {"content": {MEDIA_TYPE: {"schema": {"type": "object", "properties": {
    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
    "detail": {"type": "string"}, "instance": {"type": "string"}}}}}}


class Problem(Exception):
    """Raise from a route or a dependency; the handler below renders it."""

    def __init__(self, slug: str, detail: str, *, status: Optional[int] = None, headers: Optional[dict] = None,
                 **members):
        self.slug = slug
        self.status = status or CATALOGUE[slug][0]
        self.title = CATALOGUE[slug][1]
        self.detail = detail
        self.headers = headers or {}
        self.members = members
        super().__init__(detail)

    def body(self, instance: str) -> dict:
        out = {"type": TYPE_BASE + self.slug, "title": self.title, "status": self.status,
               "detail": self.detail, "instance": instance}
        out.update(self.members)
        return out


def problem_response(p: Problem, instance: str) -> Response:
    return Response(orjson.dumps(p.body(instance)), status_code=p.status, media_type=MEDIA_TYPE,
                    headers=p.headers)


_HTTP_SLUGS = {400: "malformed-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 413: "too-large",
               415: "unsupported-media-type", 422: "invalid-request", 503: "unavailable"}


def _clean_errors(errors) -> list:
    """FastAPI's validation errors as JSON-safe pydantic-style problems (no `url`, no ctx objects)."""
    out = []
    for e in errors:
        item = {"loc": [x for x in e.get("loc", ())], "type": e.get("type", "invalid"), "msg": e.get("msg", "")}
        if "input" in e and isinstance(e["input"], (str, int, float, bool)) and e["input"] is not None:
            item["input"] = e["input"] if not isinstance(e["input"], str) else e["input"][:200]
        out.append(item)
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = _clean_errors(exc.errors())
        if any(e["type"] == "json_invalid" for e in errors):
            p = Problem("malformed-request", "the body is not valid JSON", errors=errors)
        else:
            p = Problem("invalid-request", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                     for e in errors[:5]), errors=errors)
        return problem_response(p, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        slug = _HTTP_SLUGS.get(exc.status_code, "malformed-request" if exc.status_code < 500 else "internal")
        detail = exc.detail if isinstance(exc.detail, str) else CATALOGUE[slug][1]
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"there is no resource at {request.url.path}"
        p = Problem(slug, detail, status=exc.status_code, headers=dict(exc.headers or {}))
        return problem_response(p, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(Problem("internal", "the service failed to answer; the error is in its log"),
                                request.url.path)

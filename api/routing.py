"""The evaluation endpoints answered at the edge of the application, past FastAPI's router.

Evaluating one enterprise costs about 15 µs; the router, its exception wrappers and FastAPI's
dependency solver cost several times that (measured under wrk on the 89-indicator scorecard:
27 % of the worker's CPU between the body-limit middleware and the endpoint). `HotPaths` is a
pure ASGI middleware, Starlette's documented way to take a request before the router: for the
routes it is given it matches the path as the router would (the route's own path, compiled by
Starlette) and calls the route's own endpoint, resolving its few parameters with the functions
its dependencies name (`deps.evaluation_call`). So the endpoint's signature stays the truth about what it needs, the
route still documents it in OpenAPI, and FastAPI would serve it the same way without this.
"""
from __future__ import annotations

import inspect

from fastapi import APIRouter
from starlette.requests import Request
from starlette.routing import compile_path

from .deps import evaluation_call
from .problems import Problem, problem_response

MAX_POLICY_ID = 128


async def _policy_id(request) -> str:
    """The path parameter, checked as FastAPI checks `deps.PolicyId` (same problem, same words)."""
    policy_id = request.path_params["policy_id"]
    if len(policy_id) > MAX_POLICY_ID:
        msg = f"String should have at most {MAX_POLICY_ID} characters"
        raise Problem("invalid-request", f"path.policy_id: {msg}",
                      errors=[{"loc": ["path", "policy_id"], "type": "string_too_long", "msg": msg,
                               "input": policy_id[:200]}])
    return policy_id


async def _request(request):
    return request


# parameter name → how to get it; an endpoint answered by HotPaths may ask for these only.
# FastAPI solves dependencies before it checks parameters; so do we (401 before 422).
RESOLVERS = {"call": evaluation_call, "request": _request, "policy_id": _policy_id}


def direct_handler(endpoint):
    """`endpoint` called with its parameters resolved from the request (no dependency solver)."""
    names = list(inspect.signature(endpoint).parameters)
    unknown = [n for n in names if n not in RESOLVERS]
    if unknown:
        raise TypeError(f"{endpoint.__name__}: a hot endpoint cannot take {', '.join(unknown)}")
    resolvers = [(n, r) for n, r in RESOLVERS.items() if n in names]

    async def handler(request):
        return await endpoint(**{n: await resolve(request) for n, resolve in resolvers})
    return handler


class HotPaths:
    """Pure ASGI middleware answering the routes of `router` (included at `prefix`) itself;
    everything else goes on to the application's router.

    It sits inside the application's outer middleware (body limits; a failure it does not
    expect reaches the server-error handler and becomes the same 500 problem as elsewhere) and
    renders a `Problem` as the application's handler would."""

    def __init__(self, app, router: APIRouter, prefix: str):
        self.app = app
        self.routes = []
        for route in router.routes:
            regex, _, convertors = compile_path(prefix + route.path)
            self.routes.append((regex, route.methods, convertors, direct_handler(route.endpoint)))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            for regex, methods, convertors, handler in self.routes:
                match = regex.match(path)
                if match is not None and method in methods:
                    scope["path_params"] = {k: convertors[k].convert(v) for k, v in match.groupdict().items()}
                    request = Request(scope, receive, send)
                    try:
                        response = await handler(request)
                    except Problem as problem:
                        response = problem_response(problem, request.url.path)
                    return await response(scope, receive, send)
        await self.app(scope, receive, send)

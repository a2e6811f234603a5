"""Body size limits, enforced before a route reads anything (413 as problem+json)."""
from __future__ import annotations

import orjson

from .problems import MEDIA_TYPE, Problem


class BodyLimit:
    """Pure ASGI middleware: refuse a declared Content-Length over the limit at once, and stop
    reading a chunked body as soon as it passes the limit."""

    def __init__(self, app, *, default: int, batch: int):
        self.app = app
        self.default = default
        self.batch = batch

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.batch if scope["path"].endswith(("/evaluations/batch", "/draws")) else self.default
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                return await _reject(scope, send, Problem("malformed-request", "Content-Length is not a number"))
            if too_big:
                return await _reject(scope, send, _too_large(limit))
            return await self.app(scope, receive, send)    # the server reads no more than declared
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, limited_receive, send)


def _too_large(limit: int) -> Problem:
    return Problem("too-large", f"the body is larger than the {limit} bytes this endpoint accepts")


async def _reject(scope, send, problem: Problem) -> None:
    body = orjson.dumps(problem.body(scope["path"]))
    await send({"type": "http.response.start", "status": problem.status,
                "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

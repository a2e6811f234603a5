"""JSON responses rendered with orjson (UTF-8, Chinese text unescaped)."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class NDJSONStream(StreamingResponse):
    """Streams lines while the request body is still being read: unlike StreamingResponse it
    does not listen for a disconnect on `receive`, which would take the body's chunks."""
    media_type = "application/x-ndjson"

    async def __call__(self, scope, receive, send) -> None:
        await self.stream_response(send)

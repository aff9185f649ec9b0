"""Reading a request's JSON body: the admin API (`/api/*`) and bulk heartbeats.

The rules for what a body may contain (nesting depth, finite numbers, storable strings) are
`alerts.sources.common.load_json`'s, the parser webhook sources use too, so a body the sidecar
refuses is refused the same way wherever it arrives.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from alerts.sources.common import NestingError, PayloadError, json_type, load_json
from handlers.http.errors import json_error


class InvalidJson(Exception):
    """The body is not the JSON asked for; `detail` says what to fix (answered 400)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def response(self) -> web.Response:
        return json_error(400, "invalid JSON", self.detail)


async def read_json(request: web.Request) -> Any:
    """The body's JSON value, or InvalidJson. An oversized body is aiohttp's 413 while reading."""
    try:
        return load_json(await request.read())
    except PayloadError as exc:
        raise InvalidJson(exc.message) from None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body's JSON object, or InvalidJson naming what was sent instead."""
    try:
        value = load_json(await request.read())
    except NestingError as exc:
        raise InvalidJson(exc.message) from None
    except PayloadError as exc:
        raise InvalidJson(f"{exc.message}; the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidJson(f"the body must be a JSON object, not {json_type(value)}")
    return value

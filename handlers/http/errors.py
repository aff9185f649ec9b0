"""JSON errors for every 4xx/5xx, and no stack trace ever reaches a client."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import structlog
from aiohttp import web

from storage.database import is_database_unavailable

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY_BYTES: web.AppKey[int] = web.AppKey("max_body_bytes", int)
RequestCounter = Callable[[str, int], None]

# Seconds a client is told to wait while the database is away: a Postgres restart or failover takes
# a few seconds, and heartbeat clients (curl --retry) honour Retry-After.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DETAIL = "the database did not answer; retry later"


def json_error(status: int, error: str, detail: Any = None, headers: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status, headers=headers)


def database_unavailable(detail: str = UNAVAILABLE_DETAIL) -> web.Response:
    """The one answer to a request the database could not serve. A 503 with Retry-After, not a
    500: nothing was acknowledged, so the client's retry loses nothing."""
    return json_error(503, "database unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def route_name(request: web.Request) -> str:
    """The route template (`/heartbeat/{uuid}`), not the path, so metrics labels stay few."""
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


def error_middleware(count_request: RequestCounter) -> Callable:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                count_request(route_name(request), exc.status)
                raise
            response = _from_http_exception(exc, request)
        except Exception as exc:
            response = _from_unhandled(exc, request)
        count_request(route_name(request), response.status)
        return response

    return middleware


def _from_unhandled(exc: Exception, request: web.Request) -> web.Response:
    """A database that went away is an outage (503, a warning), whichever handler met it and
    however asyncpg phrased it; anything else is a bug (500, logged with its trace)."""
    if is_database_unavailable(exc):
        error = f"{type(exc).__name__}: {exc}"
        log.warning("http.database_unavailable", method=request.method, route=route_name(request), error=error)
        return database_unavailable()
    log.exception("http.unhandled_error", method=request.method, route=route_name(request))
    return json_error(500, "internal server error")


def body_size_limit(max_bytes: int) -> Callable:
    """Refuse a declared-too-large body before reading a byte of it. Bodies without a
    Content-Length (chunked) are capped by aiohttp's client_max_size while being read."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > max_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=request.content_length)
        return await handler(request)

    return middleware


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> web.Response:
    if exc.status == 413:
        limit = request.app.get(MAX_BODY_BYTES)
        detail = f"the body exceeds the limit of {limit} bytes" if limit else None
        return json_error(413, "request body too large", detail)
    if exc.content_type == "application/json" and exc.text:
        return web.Response(status=exc.status, text=exc.text, content_type="application/json", headers=_keep(exc))
    message = {404: "not found", 405: "method not allowed"}.get(exc.status, exc.reason.lower())
    detail = None
    if exc.status == 405:
        detail = {"allowed": sorted(getattr(exc, "allowed_methods", ()))}
    return json_error(exc.status, message, detail, headers=_keep(exc))


def _keep(exc: web.HTTPException) -> dict:
    """Headers a client needs to act on an error (Allow, Retry-After, WWW-Authenticate)."""
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}

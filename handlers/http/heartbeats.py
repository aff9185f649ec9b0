"""Heartbeat endpoints: `/heartbeat/{uuid}[/start|/fail|/{exit_code}]`, the same under `/ping/`, and
bulk `POST /heartbeats`.

The handler parses and checks the request and hands a `HeartbeatEvent` to the batching writer; the
200 is sent only after the batch carrying the event has committed. A malformed UUID is answered
404 here and never reaches the database; so is an oversized body (413) or a rate-limited UUID
(429), which store nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import web

from alerts.heartbeat_rules import kind_for_exit_code
from alerts.heartbeat_writer import HeartbeatEvent, HeartbeatRejected, HeartbeatWriter, SubmitResult, WriterStopped
from alerts.sources.common import NestingError, PayloadError, load_json
from handlers.http.errors import database_unavailable, json_error
from handlers.http.json_body import InvalidJson, read_json
from handlers.http.rate_limit import RateLimiter
from storage.database import DATABASE_ERRORS

BODY_LIMIT = 10 * 1024  # bytes of request body kept with an event
BULK_LIMIT = 1000  # UUIDs per bulk request
CLIENT_TIME_LIMIT = 100  # characters of a client's claimed timestamp kept

HeartbeatCounter = Callable[[str, str], None]  # (kind, outcome)

WRITER: web.AppKey[HeartbeatWriter] = web.AppKey("heartbeat_writer", HeartbeatWriter)
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("heartbeat_rate_limiter", RateLimiter)
COUNT_HEARTBEAT: web.AppKey[HeartbeatCounter] = web.AppKey("count_heartbeat", HeartbeatCounter)

UNAVAILABLE = (*DATABASE_ERRORS, WriterStopped)
# The 200 bodies, one per status, encoded once: this is the sidecar's hottest response.
_OK_BODIES = {s: json.dumps({"ok": True, "status": s}).encode() for s in ("new", "up", "late", "down", "paused")}
# The canonical 8-4-4-4-12 form only: uuid.UUID alone also takes braces, "urn:uuid:", underscores.
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


async def heartbeat(request: web.Request) -> web.Response:
    count = request.app[COUNT_HEARTBEAT]
    signal = request.match_info.get("signal")
    exit_code: int | None = None
    if signal is None:
        kind = "success"
    elif signal in ("start", "fail"):
        kind = signal
    else:
        exit_code = parse_exit_code(signal)
        if exit_code is None:
            count("fail", "invalid")
            shown = signal if len(signal) <= 12 else signal[:12] + "…"
            return json_error(400, "invalid exit code", f"exit code must be a whole number from 0 to 255, got {shown}")
        kind = kind_for_exit_code(exit_code)

    app_uuid = parse_uuid(request.match_info["uuid"])
    if app_uuid is None:
        count(kind, "invalid")
        return _unknown()

    body = await read_limited(request, BODY_LIMIT)
    if body is None:
        count(kind, "too_large")
        return json_error(413, "request body too large", f"a heartbeat body is kept up to {BODY_LIMIT} bytes")

    wait = request.app[RATE_LIMITER].acquire(app_uuid)
    if wait:
        count(kind, "rate_limited")
        return _rate_limited(request.app[RATE_LIMITER].retry_after(wait))

    # The common heartbeat has no body and no query string: skip parsing what is not there.
    try:
        text, metadata = decode_body(body, request.content_type) if body else (None, None)
    except NestingError as exc:
        count(kind, "invalid")
        return json_error(400, "invalid heartbeat body", exc.message)
    client_time = (
        request.headers.get("X-Client-Time")
        or (request.query.get("timestamp") if request.query_string else None)
        or (_as_text(metadata.get("timestamp")) if isinstance(metadata, dict) else None)
    )
    event = HeartbeatEvent(
        uuid=app_uuid,
        kind=kind,
        exit_code=exit_code,
        received_at=datetime.now(timezone.utc),
        client_time=_clean(client_time[:CLIENT_TIME_LIMIT]) if client_time else None,
        method=request.method,
        remote_addr=request.remote,
        user_agent=_clean(request.headers.get("User-Agent")),
        body=text,
        metadata=metadata,
    )
    try:
        result = await request.app[WRITER].submit(event)
    except HeartbeatRejected:
        count(kind, "invalid")
        return json_error(400, "heartbeat rejected", "the database refused this event's data")
    except UNAVAILABLE:
        return database_unavailable()
    if not result.found:
        count(kind, "unknown")
        request.app[RATE_LIMITER].forget(app_uuid)  # only apps that exist keep a bucket
        return _unknown()
    count(kind, "accepted")
    return web.Response(body=_OK_BODIES[result.status], content_type="application/json")


async def bulk(request: web.Request) -> web.Response:
    """`POST /heartbeats`: `{"uuids": [...]}` or a bare list; each UUID counts as a success."""
    count = request.app[COUNT_HEARTBEAT]
    expected = f'expected a JSON list of at most {BULK_LIMIT} UUIDs, or an object {{"uuids": [...]}}'
    try:
        data = await read_json(request)
    except InvalidJson as exc:
        return json_error(400, "invalid bulk request", f"{exc.detail}; {expected}")
    items = data.get("uuids") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return json_error(400, "invalid bulk request", expected)
    if len(items) > BULK_LIMIT:
        return json_error(400, "invalid bulk request", f"{expected}; got {len(items)}")

    invalid: list[Any] = []
    wanted: dict[uuid.UUID, str] = {}  # parsed → as sent; a UUID listed twice counts once
    for item in items:
        parsed = parse_uuid(item) if isinstance(item, str) else None
        if parsed is None:
            invalid.append(item)
            count("success", "invalid")
        else:
            wanted.setdefault(parsed, item)

    limiter = request.app[RATE_LIMITER]
    now = datetime.now(timezone.utc)
    rate_limited: list[str] = []
    submitted: list[tuple[str, HeartbeatEvent]] = []
    for parsed, text in wanted.items():
        if limiter.acquire(parsed):
            rate_limited.append(text)
            count("success", "rate_limited")
        else:
            submitted.append((text, _bulk_event(parsed, now, request)))
    writer = request.app[WRITER]
    try:
        results: list[SubmitResult] = await _submit_all(writer, [event for _, event in submitted])
    except UNAVAILABLE:
        return database_unavailable()
    accepted = [text for (text, _), result in zip(submitted, results) if result.found]
    unknown = [text for (text, _), result in zip(submitted, results) if not result.found]
    for _ in accepted:
        count("success", "accepted")
    for (_, event), result in zip(submitted, results):
        if not result.found:
            count("success", "unknown")
            limiter.forget(event.uuid)  # only apps that exist keep a bucket
    return web.json_response({"accepted": accepted, "unknown": unknown, "invalid": invalid, "rate_limited": rate_limited})


async def _submit_all(writer: HeartbeatWriter, events: list[HeartbeatEvent]) -> list[SubmitResult]:
    """Submit together (one batch, usually) and wait for all, so no waiter is left behind."""
    results = await asyncio.gather(*(writer.submit(e) for e in events), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def _bulk_event(app_uuid: uuid.UUID, now: datetime, request: web.Request) -> HeartbeatEvent:
    return HeartbeatEvent(
        uuid=app_uuid,
        kind="success",
        exit_code=None,
        received_at=now,
        method=request.method,
        remote_addr=request.remote,
        user_agent=_clean(request.headers.get("User-Agent")),
    )


def parse_exit_code(signal: str) -> int | None:
    """The exit code a path names (the route only matches -?digits), or None outside 0–255. The
    length is checked first: Python refuses int() of thousands of digits with an error of its own."""
    if len(signal.lstrip("-")) > 3:
        return None
    code = int(signal)
    return code if 0 <= code <= 255 else None


def parse_uuid(text: str) -> uuid.UUID | None:
    """A UUID, or None for anything malformed (answered 404 without asking the database)."""
    if not UUID_TEXT.fullmatch(text):
        return None
    return uuid.UUID(text)


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than `limit` (declared or actually sent)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    if not request.body_exists:
        return b""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def decode_body(body: bytes, content_type: str) -> tuple[str | None, dict | None]:
    """(text to keep, JSON object to keep as metadata). Metadata only when the body is a JSON
    object that Postgres's jsonb can hold; anything else is kept as text alone, except JSON nested
    too deeply, which raises NestingError: a heartbeat is refused rather than stored half-read."""
    if not body:
        return None, None
    text = _clean(body.decode("utf-8", errors="replace"))
    if content_type != "application/json" and not content_type.endswith("+json"):
        return text, None
    try:
        value = load_json(text)
    except NestingError:
        raise
    except PayloadError:
        return text, None
    return text, value if isinstance(value, dict) else None


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _clean(text: str | None) -> str | None:
    """Postgres text cannot hold NUL, nor the lone surrogates aiohttp makes of header bytes that are
    not UTF-8: replace them rather than lose the event."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the header's own bytes again
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace").replace("\x00", "\ufffd")


def _unknown() -> web.Response:
    return json_error(404, "unknown heartbeat UUID")


def _rate_limited(retry_after: int) -> web.Response:
    return json_error(
        429,
        "rate limited",
        f"too many heartbeats for this UUID; retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def add_routes(app: web.Application) -> None:
    signal = "{signal:start|fail|-?[0-9]+}"
    for prefix in ("/heartbeat", "/ping"):
        for path in (prefix + "/{uuid}", f"{prefix}/{{uuid}}/{signal}"):
            app.router.add_post(path, heartbeat)
            app.router.add_get(path, heartbeat)  # and HEAD: aiohttp answers it without the body
    app.router.add_post("/heartbeats", bulk)

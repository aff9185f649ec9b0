"""The admin API for silences and inhibition rules: `/api/silences[/{id}]`, `/api/inhibitions[/{id}]`.

Bearer `PULSER_ADMIN_TOKEN` on every route (the `api` decorator of the applications API, so both
answer errors alike). Validation is `alerts.matchers`, the same words the Slack command uses.
Deleting a silence expires it (it stays listed with `?all=1`); deleting a rule removes it. Every
change is written to the audit log as actor `api`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

from aiohttp import web

from alerts.applications import ValidationError
from alerts.matchers import matchers_text, silence_matchers, silence_state, validate_inhibition_rule, validate_silence
from alerts.managed import MANAGED_ERROR, is_managed, managed_detail
from handlers.http.api_applications import POOL, ApiError, api
from handlers.http.json_body import read_json_object
from storage import audit
from storage import silences as store

ROW_ID = re.compile(r"[0-9]{1,18}")
LIST_LIMIT = 1000
FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def silence_json(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    matchers = silence_matchers(row) or []
    return {
        "id": row["id"],
        "matchers": row["matchers"],
        "matchers_text": matchers_text(matchers),
        "status": silence_state(row, now),
        "starts_at": row["starts_at"].isoformat(),
        "ends_at": row["ends_at"].isoformat(),
        "comment": row["comment"],
        "created_by": row["created_by"],
        "expired_by": row["expired_by"],
        "created_at": row["created_at"].isoformat(),
        "managed_by": row.get("managed_by"),
    }


def rule_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "source_matchers": row["source_matchers"],
        "target_matchers": row["target_matchers"],
        "equal": list(row["equal"]),
        "created_by": row["created_by"],
        "created_at": row["created_at"].isoformat(),
        "managed_by": row.get("managed_by"),
    }


# --- silences ------------------------------------------------------------------------------------


@api
async def list_silences(request: web.Request) -> web.Response:
    include_expired = _flag(request, "all")
    limit = _limit(request)
    now = _now()
    rows = await store.list_silences(request.app[POOL], now=now, include_expired=include_expired, limit=limit)
    return web.json_response({"silences": [silence_json(r, now) for r in rows]})


@api
async def create_silence(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    now = _now()
    try:
        spec = validate_silence(data, now=now)
    except ValidationError as exc:
        raise ApiError(400, "invalid silence", exc.errors) from None
    pool = request.app[POOL]
    row = await store.create_silence(
        pool,
        matchers=[m.to_json() for m in spec.matchers],
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        comment=spec.comment,
        created_by=spec.created_by,
    )
    body = silence_json(row, now)
    await audit.record_action(
        pool, actor="api", action="silence.create", target_type="silence", target_id=row["id"],
        details={k: body[k] for k in ("matchers", "starts_at", "ends_at", "comment", "created_by")},
    )
    return web.json_response(body, status=201, headers={"Location": f"/api/silences/{row['id']}"})


@api
async def get_silence(request: web.Request) -> web.Response:
    row = await store.get_silence(request.app[POOL], _row_id(request, "silence"))
    if row is None:
        raise ApiError(404, "silence not found")
    return web.json_response(silence_json(row, _now()))


@api
async def expire_silence(request: web.Request) -> web.Response:
    """Expire, not delete: Alertmanager's DELETE does the same, and the history stays readable."""
    silence_id = _row_id(request, "silence")
    pool = request.app[POOL]
    now = _now()
    existing = await store.get_silence(pool, silence_id)
    if existing is not None and is_managed(existing):
        raise ApiError(409, MANAGED_ERROR, managed_detail("silence"))
    row = await store.expire_silence(pool, silence_id, by="api", now=now)
    if row is None:
        if await store.get_silence(pool, silence_id) is None:
            raise ApiError(404, "silence not found")
        raise ApiError(409, "silence already ended", "it has expired or was expired earlier; nothing changed")
    await audit.record_action(
        pool, actor="api", action="silence.expire", target_type="silence", target_id=silence_id,
        details={"matchers": row["matchers"], "ends_at": now.isoformat()},
    )
    return web.json_response(silence_json(row, now))


# --- inhibition rules ----------------------------------------------------------------------------


@api
async def list_rules(request: web.Request) -> web.Response:
    rows = await store.list_inhibition_rules(request.app[POOL])
    return web.json_response({"inhibitions": [rule_json(r) for r in rows]})


@api
async def create_rule(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    try:
        spec = validate_inhibition_rule(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid inhibition rule", exc.errors) from None
    pool = request.app[POOL]
    row = await store.create_inhibition_rule(
        pool,
        name=spec.name,
        source_matchers=[m.to_json() for m in spec.source_matchers],
        target_matchers=[m.to_json() for m in spec.target_matchers],
        equal=spec.equal,
        created_by="api",
    )
    body = rule_json(row)
    await audit.record_action(
        pool, actor="api", action="inhibition.create", target_type="inhibition_rule", target_id=row["id"],
        details={k: body[k] for k in ("name", "source_matchers", "target_matchers", "equal")},
    )
    return web.json_response(body, status=201, headers={"Location": f"/api/inhibitions/{row['id']}"})


@api
async def get_rule(request: web.Request) -> web.Response:
    row = await store.get_inhibition_rule(request.app[POOL], _row_id(request, "inhibition rule"))
    if row is None:
        raise ApiError(404, "inhibition rule not found")
    return web.json_response(rule_json(row))


@api
async def delete_rule(request: web.Request) -> web.Response:
    rule_id = _row_id(request, "inhibition rule")
    pool = request.app[POOL]
    row = await store.get_inhibition_rule(pool, rule_id)
    if row is not None and is_managed(row):
        raise ApiError(409, MANAGED_ERROR, managed_detail("inhibition rule"))
    if row is None or not await store.delete_inhibition_rule(pool, rule_id):
        raise ApiError(404, "inhibition rule not found")
    await audit.record_action(
        pool, actor="api", action="inhibition.delete", target_type="inhibition_rule", target_id=rule_id,
        details={"name": row["name"]},
    )
    return web.Response(status=204)


# --- helpers -------------------------------------------------------------------------------------


def _row_id(request: web.Request, what: str) -> int:
    text = request.match_info["id"]
    if not ROW_ID.fullmatch(text):
        raise ApiError(404, f"{what} not found")
    return int(text)


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return False
    if raw.lower() not in FLAGS:
        raise ApiError(400, "invalid query parameter", {name: "must be 1 or 0 (true or false)"})
    return FLAGS[raw.lower()]


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return 100
    if not re.fullmatch(r"[0-9]{1,10}", raw) or not 1 <= int(raw) <= LIST_LIMIT:
        raise ApiError(400, "invalid query parameter", {"limit": f"must be a whole number from 1 to {LIST_LIMIT}"})
    return int(raw)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/silences", list_silences)
    app.router.add_post("/api/silences", create_silence)
    app.router.add_get("/api/silences/{id}", get_silence)
    app.router.add_delete("/api/silences/{id}", expire_silence)
    app.router.add_get("/api/inhibitions", list_rules)
    app.router.add_post("/api/inhibitions", create_rule)
    app.router.add_get("/api/inhibitions/{id}", get_rule)
    app.router.add_delete("/api/inhibitions/{id}", delete_rule)

"""`/api/escalation-policies` and `/api/outbound-channels`: who is paged, where, and how it went.

Thin: every change goes through `alerts.escalation.admin`, which Slack's forms call too. A
channel's secrets are accepted and never returned; `GET …/deliveries` is its delivery log.
"""

from __future__ import annotations

import re

from aiohttp import web

from alerts.escalation import admin
from alerts.escalation.policies import PolicyValidationError, monitoring_example
from alerts.outbound.channels import KINDS, ChannelConfigError
from handlers.http.api_applications import POOL, ApiError, api
from handlers.http.api_schedules import SLACK_CLIENT
from handlers.http.json_body import read_json_object
from storage import escalation, outbound

ID = re.compile(r"[0-9]{1,18}")
DELIVERIES_SHOWN = 100


def _id(request: web.Request, what: str) -> int:
    text = request.match_info["id"]
    if not ID.fullmatch(text):
        raise ApiError(404, "not found", f"no {what} has id {text!r}")
    return int(text)


def _errors(exc: Exception, what: str) -> ApiError:
    if isinstance(exc, (PolicyValidationError, ChannelConfigError)):
        return ApiError(400, f"invalid {what}", exc.errors)
    if isinstance(exc, admin.NotFound):
        return ApiError(404, "not found", str(exc))
    assert isinstance(exc, admin.Conflict)
    return ApiError(409, exc.error, exc.detail)


async def _policy_json(request: web.Request, policy: dict) -> dict:
    pool = request.app[POOL]
    names = {c["id"]: c["name"] for c in await outbound.list_channels(pool)}
    return admin.policy_json(policy, names, await escalation.rules_using_policy(pool, policy["id"]))


# --- policies --------------------------------------------------------------------------------------


@api
async def list_policies(request: web.Request) -> web.Response:
    policies = await escalation.list_policies(request.app[POOL])
    return web.json_response({"policies": [await _policy_json(request, p) for p in policies]})


@api
async def policy_example(request: web.Request) -> web.Response:
    return web.json_response(monitoring_example())


@api
async def create_policy(request: web.Request) -> web.Response:
    try:
        policy = await admin.save_policy(request.app[POOL], await read_json_object(request), actor="api",
                                         slack_client=request.app.get(SLACK_CLIENT))
    except (PolicyValidationError, admin.NotFound, admin.Conflict) as exc:
        raise _errors(exc, "escalation policy") from None
    return web.json_response(await _policy_json(request, policy), status=201,
                             headers={"Location": f"/api/escalation-policies/{policy['id']}"})


@api
async def get_policy(request: web.Request) -> web.Response:
    policy_id = _id(request, "escalation policy")
    policy = await escalation.get_policy(request.app[POOL], policy_id)
    if policy is None:
        raise ApiError(404, "not found", f"no escalation policy has id {policy_id}")
    return web.json_response(await _policy_json(request, policy))


@api
async def replace_policy(request: web.Request) -> web.Response:
    policy_id = _id(request, "escalation policy")
    try:
        policy = await admin.save_policy(request.app[POOL], await read_json_object(request), actor="api",
                                         policy_id=policy_id, slack_client=request.app.get(SLACK_CLIENT))
    except (PolicyValidationError, admin.NotFound, admin.Conflict) as exc:
        raise _errors(exc, "escalation policy") from None
    return web.json_response(await _policy_json(request, policy))


@api
async def delete_policy(request: web.Request) -> web.Response:
    try:
        await admin.delete_policy(request.app[POOL], _id(request, "escalation policy"), actor="api")
    except (admin.NotFound, admin.Conflict) as exc:
        raise _errors(exc, "escalation policy") from None
    return web.Response(status=204)


# --- channels --------------------------------------------------------------------------------------


@api
async def list_channels(request: web.Request) -> web.Response:
    channels = await outbound.list_channels(request.app[POOL])
    return web.json_response({
        "channels": [admin.channel_json(c) for c in channels],
        "kinds": {kind: {"label": k.label, "secret_fields": list(k.secret_fields), "actions": sorted(k.actions)}
                  for kind, k in KINDS.items()},
    })


@api
async def create_channel(request: web.Request) -> web.Response:
    try:
        channel = await admin.save_channel(request.app[POOL], await read_json_object(request), actor="api")
    except (ChannelConfigError, admin.NotFound, admin.Conflict) as exc:
        raise _errors(exc, "outbound channel") from None
    return web.json_response(admin.channel_json(channel), status=201,
                             headers={"Location": f"/api/outbound-channels/{channel['id']}"})


@api
async def get_channel(request: web.Request) -> web.Response:
    channel_id = _id(request, "outbound channel")
    channel = await outbound.get_channel(request.app[POOL], channel_id)
    if channel is None:
        raise ApiError(404, "not found", f"no outbound channel has id {channel_id}")
    return web.json_response(admin.channel_json(channel))


@api
async def update_channel(request: web.Request) -> web.Response:
    channel_id = _id(request, "outbound channel")
    try:
        channel = await admin.save_channel(request.app[POOL], await read_json_object(request), actor="api", channel_id=channel_id)
    except (ChannelConfigError, admin.NotFound, admin.Conflict) as exc:
        raise _errors(exc, "outbound channel") from None
    return web.json_response(admin.channel_json(channel))


@api
async def delete_channel(request: web.Request) -> web.Response:
    try:
        await admin.delete_channel(request.app[POOL], _id(request, "outbound channel"), actor="api")
    except (admin.NotFound, admin.Conflict) as exc:
        raise _errors(exc, "outbound channel") from None
    return web.Response(status=204)


@api
async def test_channel(request: web.Request) -> web.Response:
    try:
        delivery_id = await admin.send_test(request.app[POOL], _id(request, "outbound channel"), actor="api")
    except admin.NotFound as exc:
        raise _errors(exc, "outbound channel") from None
    return web.json_response(
        {"status": "queued", "delivery_id": delivery_id,
         "follow": f"/api/outbound-channels/{request.match_info['id']}/deliveries"},
        status=202,
    )


@api
async def channel_deliveries(request: web.Request) -> web.Response:
    channel_id = _id(request, "outbound channel")
    pool = request.app[POOL]
    if await outbound.get_channel(pool, channel_id) is None:
        raise ApiError(404, "not found", f"no outbound channel has id {channel_id}")
    rows = await outbound.recent_deliveries(pool, channel_id=channel_id, limit=DELIVERIES_SHOWN)
    return web.json_response({"deliveries": [delivery_json(r) for r in rows]})


def delivery_json(row: dict) -> dict:
    """A delivery as the log shows it; the recipient is a person's address or Slack ID, never a secret."""
    return {
        "id": row["id"],
        "incident_id": row["incident_id"],
        "method": row["method"],
        "channel": row.get("channel_name"),
        "kind": row.get("channel_kind") or row["method"],
        "action": row["action"],
        "recipient": row["recipient"],
        "reason": row["reason"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "detail": row["detail"],
        "created_at": row["created_at"].isoformat(),
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
    }


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/escalation-policies", list_policies)
    app.router.add_post("/api/escalation-policies", create_policy)
    app.router.add_get("/api/escalation-policies/example", policy_example)
    app.router.add_get("/api/escalation-policies/{id}", get_policy)
    app.router.add_put("/api/escalation-policies/{id}", replace_policy)
    app.router.add_delete("/api/escalation-policies/{id}", delete_policy)
    app.router.add_get("/api/outbound-channels", list_channels)
    app.router.add_post("/api/outbound-channels", create_channel)
    app.router.add_get("/api/outbound-channels/{id}", get_channel)
    app.router.add_put("/api/outbound-channels/{id}", update_channel)
    app.router.add_delete("/api/outbound-channels/{id}", delete_channel)
    app.router.add_post("/api/outbound-channels/{id}/test", test_channel)
    app.router.add_get("/api/outbound-channels/{id}/deliveries", channel_deliveries)

"""The admin API for alert routing rules: `/api/rules[/{id}[/move]]`.

Bearer `PULSER_ADMIN_TOKEN` on every route (the `api` wrapper of the applications API). Validation
is `alerts.routing.validate_rule`, the same the Slack modal uses. A rule's JSON is its columns plus
`conditions` and `actions`, the one-line descriptions Slack shows (Slack mrkdwn: user text escaped,
IDs as <@U…>). Every change is written to the audit log as actor `api`.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from alerts.routing import (
    RoutingRule,
    RuleValidationError,
    channel_reference,
    describe_actions,
    describe_conditions,
    rule_changes,
    validate_rule,
)
from alerts.managed import MANAGED_ERROR, is_managed, managed_detail
from handlers.http.api_applications import CHANNELS, DEFAULT_CHANNEL, POOL, ApiError, api
from handlers.http.json_body import read_json_object
from storage import escalation, audit
from storage import routing_rules as store

RULE_ID = re.compile(r"[0-9]{1,18}")
# Response fields a client may send back in a PUT (GET → edit → PUT); the server owns them.
IGNORED_ON_UPDATE = ("created_by", "created_at", "updated_at", "conditions", "actions", "managed_by")
MOVE_HINT = "change the order with POST /api/rules/{id}/move"


def rule_json(rule: RoutingRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "position": rule.position,
        **rule.spec.as_json(),
        "created_by": rule.created_by,
        "created_at": rule.created_at.isoformat() if rule.created_at else None,
        "updated_at": rule.updated_at.isoformat() if rule.updated_at else None,
        "managed_by": rule.managed_by,
        "conditions": describe_conditions(rule),
        "actions": describe_actions(rule),
    }


@api
async def list_rules(request: web.Request) -> web.Response:
    rules = [RoutingRule.from_row(r) for r in await store.list_rules(request.app[POOL])]
    default_channel = request.app.get(DEFAULT_CHANNEL) or ""
    return web.json_response(
        {
            "rules": [rule_json(r) for r in rules],
            "default_route": {
                "channel": default_channel,
                "conditions": "no rule matched",
                "actions": f"→ {channel_reference(default_channel)}",
            },
        }
    )


@api
async def create_rule(request: web.Request) -> web.Response:
    data = await request.app[CHANNELS].resolve_field(await read_json_object(request))
    errors: dict[str, str] = {}
    position = _position(data.pop("position", None), errors, required=False)
    try:
        spec = validate_rule(data)
    except RuleValidationError as exc:
        errors.update(exc.errors)
    else:
        await _check_policy(request, spec.escalation_policy_id, errors)
    if errors:
        raise ApiError(400, "invalid rule", errors)
    pool = request.app[POOL]
    rule = RoutingRule.from_row(await store.create_rule(pool, spec.as_row(), created_by="api", position=position))
    await audit.record_action(
        pool, actor="api", action="rule.create", target_type="rule", target_id=rule.id,
        details={**spec.as_json(), "position": rule.position},
    )
    return web.json_response(rule_json(rule), status=201, headers={"Location": f"/api/rules/{rule.id}"})


@api
async def get_rule(request: web.Request) -> web.Response:
    return web.json_response(rule_json(await _existing(request)))


@api
async def update_rule(request: web.Request) -> web.Response:
    rule = await _changeable(request)
    data = await request.app[CHANNELS].resolve_field(await read_json_object(request))
    errors: dict[str, str] = {}
    if "id" in data and str(data.pop("id")) != str(rule.id):
        errors["id"] = "read-only: cannot be changed"
    if "position" in data and data.pop("position") != rule.position:
        errors["position"] = MOVE_HINT.format(id=rule.id)
    for field in IGNORED_ON_UPDATE:
        data.pop(field, None)
    try:
        spec = validate_rule({**rule.spec.as_json(), **data})  # a partial update keeps the other fields
    except RuleValidationError as exc:
        errors.update(exc.errors)
    else:
        await _check_policy(request, spec.escalation_policy_id, errors)
    if errors:
        raise ApiError(400, "invalid rule", errors)

    changes = rule_changes(rule.spec, spec)
    if not changes:
        return web.json_response(rule_json(rule))
    pool = request.app[POOL]
    row = await store.update_rule(pool, rule.id, spec.as_row())
    if row is None:
        raise _not_found()
    await audit.record_action(
        pool, actor="api", action="rule.update", target_type="rule", target_id=rule.id, details=changes
    )
    return web.json_response(rule_json(RoutingRule.from_row(row)))


@api
async def delete_rule(request: web.Request) -> web.Response:
    rule = await _changeable(request)
    pool = request.app[POOL]
    if not await store.delete_rule(pool, rule.id):
        raise _not_found()
    await audit.record_action(
        pool, actor="api", action="rule.delete", target_type="rule", target_id=rule.id,
        details={**rule.spec.as_json(), "position": rule.position},
    )
    return web.Response(status=204)


@api
async def move_rule(request: web.Request) -> web.Response:
    rule = await _changeable(request)
    data = await read_json_object(request)
    errors = {key: "unknown field" for key in data if key != "position"}
    position = _position(data.get("position"), errors, required=True)
    if errors:
        raise ApiError(400, "invalid move", errors)
    pool = request.app[POOL]
    row = await store.move_rule(pool, rule.id, position)
    if row is None:
        raise _not_found()
    moved = RoutingRule.from_row(row)
    if moved.position != rule.position:
        await audit.record_action(
            pool, actor="api", action="rule.move", target_type="rule", target_id=rule.id,
            details={"name": rule.name, "from": rule.position, "to": moved.position},
        )
    return web.json_response(rule_json(moved))


async def _check_policy(request: web.Request, policy_id: int | None, errors: dict[str, str]) -> None:
    if policy_id is not None and await escalation.get_policy(request.app[POOL], policy_id) is None:
        errors["escalation_policy_id"] = f"no escalation policy has id {policy_id} (GET /api/escalation-policies lists them)"


async def _existing(request: web.Request) -> RoutingRule:
    text = request.match_info["id"]
    row = await store.get_rule(request.app[POOL], int(text)) if RULE_ID.fullmatch(text) else None
    if row is None:
        raise _not_found()
    return RoutingRule.from_row(row)


async def _changeable(request: web.Request) -> RoutingRule:
    """The rule, unless the config file manages it (409: change it there)."""
    rule = await _existing(request)
    if is_managed(rule):
        raise ApiError(409, MANAGED_ERROR, managed_detail("routing rule"))
    return rule


def _position(value: Any, errors: dict[str, str], *, required: bool) -> int | None:
    """A 1-based position; past the end means last (storage clamps)."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**6:
        errors["position"] = "must be a whole number from 1 (first); past the end means last"
        return None
    return value


def _not_found() -> ApiError:
    return ApiError(404, "rule not found")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/rules", list_rules)
    app.router.add_post("/api/rules", create_rule)
    app.router.add_get("/api/rules/{id}", get_rule)
    app.router.add_put("/api/rules/{id}", update_rule)
    app.router.add_delete("/api/rules/{id}", delete_rule)
    app.router.add_post("/api/rules/{id}/move", move_rule)

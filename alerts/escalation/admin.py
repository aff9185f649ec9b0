"""Creating, changing and deleting escalation policies and outbound channels, and test pages: the
one place the API and Slack's forms both call, so both check the same things and audit the same
way.

Secrets of a channel (a password, a webhook URL, a routing key) are stored to be used and never
shown back: a channel is shown with `channels.redacted`, and an update that leaves a secret out
(or sends back the "(set)" placeholder it was shown) keeps the stored value.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

import asyncpg

from alerts.escalation.policies import PolicySpec, PolicyValidationError, describe_step, parse_policy
from alerts.managed import is_managed
from alerts.oncall.people import unknown_users
from alerts.outbound import channels
from storage import audit, escalation, notifications, outbound, schedules

REDACTED = "(set)"


class NotFound(LookupError):
    pass


class Conflict(Exception):
    """The change cannot be made as things stand (a name taken, an object in use, managed by the
    config file); `detail` says what to do instead."""

    def __init__(self, error: str, detail: str):
        super().__init__(error)
        self.error = error
        self.detail = detail


# --- policies ------------------------------------------------------------------------------------


async def policy_spec(conn: asyncpg.Connection | asyncpg.Pool, data: Mapping[str, Any]) -> PolicySpec:
    known_channels: dict[str, int] = {}
    for channel in await outbound.list_channels(conn):
        known_channels[channel["name"]] = channel["id"]
        known_channels[str(channel["id"])] = channel["id"]
    names = [r["name"] for r in await schedules.list_schedules(conn)]
    return parse_policy(data, channels=known_channels, schedules=names)


async def save_policy(pool: asyncpg.Pool, data: Mapping[str, Any], *, actor: str, policy_id: int | None = None,
                      slack_client: Any = None) -> dict:
    """Create (policy_id None) or replace a policy; PolicyValidationError, NotFound or Conflict.
    With a Slack client, a step paging a person who is not in the workspace is refused too."""
    async with pool.acquire() as conn, conn.transaction():
        spec = await policy_spec(conn, data)
        people = {i: step["target"] for i, step in enumerate(spec.steps) if step["kind"] == "user"}
        problems = await unknown_users(pool, slack_client, people.values())
        if problems:
            raise PolicyValidationError({f"steps[{i}].target": problems[user] for i, user in people.items() if user in problems})
        if policy_id is not None:
            current = await escalation.get_policy(conn, policy_id)
            if current is None:
                raise NotFound(f"no escalation policy has id {policy_id}")
            if is_managed(current):
                raise Conflict("managed by the config file", "this policy is defined in the config file: change it there")
        clash = await escalation.policy_id_by_name(conn, spec.name)
        if clash is not None and clash != policy_id:
            raise Conflict("name taken", f"another policy is called {spec.name!r}: pick another name")
        if policy_id is None:
            policy = await escalation.create_policy(conn, name=spec.name, repeat=spec.repeat, steps=spec.steps, created_by=actor)
        else:
            policy = await escalation.replace_policy(conn, policy_id, name=spec.name, repeat=spec.repeat, steps=spec.steps)
        await audit.record_action(
            conn, actor=actor, action="escalation_policy.create" if policy_id is None else "escalation_policy.update",
            target_type="escalation_policy", target_id=policy["id"],
            details={"name": spec.name, "repeat": spec.repeat, "steps": await describe_steps(conn, policy["steps"])},
        )
    return policy


async def delete_policy(pool: asyncpg.Pool, policy_id: int, *, actor: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        current = await escalation.get_policy(conn, policy_id)
        if current is None:
            raise NotFound(f"no escalation policy has id {policy_id}")
        if is_managed(current):
            raise Conflict("managed by the config file", "this policy is defined in the config file: remove it there")
        users = await escalation.rules_using_policy(conn, policy_id)
        if users:
            raise Conflict("in use", f"routing rules name this policy ({', '.join(users)}): change them first")
        await escalation.delete_policy(conn, policy_id)
        await audit.record_action(conn, actor=actor, action="escalation_policy.delete", target_type="escalation_policy",
                                  target_id=policy_id, details={"name": current["name"]})


async def describe_steps(conn: asyncpg.Connection | asyncpg.Pool, steps: list[dict]) -> list[str]:
    names = {c["id"]: c["name"] for c in await outbound.list_channels(conn)}
    return [describe_step(step, names) for step in steps]


def policy_json(policy: dict, channel_names: Mapping[int, str], rules: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": policy["id"],
        "name": policy["name"],
        "repeat": policy["repeat"],
        "steps": [_step_json(step, channel_names) for step in policy["steps"]],
        "used_by_rules": rules or [],
        "managed_by": policy["managed_by"],
        "created_by": policy["created_by"],
        "created_at": policy["created_at"].isoformat(),
        "updated_at": policy["updated_at"].isoformat(),
    }


def _step_json(step: dict, channel_names: Mapping[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"position": step["position"], "kind": step["kind"], "description": describe_step(step, channel_names)}
    if step["kind"] == "wait":
        out["wait_minutes"] = step["wait_minutes"]
    elif step["kind"] == "outbound":
        out["channel"] = channel_names.get(step["channel_id"])
        out["channel_id"] = step["channel_id"]
    else:
        out["target"] = step["target"]
    if step["mention"]:
        out["mention"] = step["mention"]
    if step["min_severity"]:
        out["min_severity"] = step["min_severity"]
    return out


# --- channels ------------------------------------------------------------------------------------


def channel_json(channel: dict) -> dict[str, Any]:
    return {
        "id": channel["id"],
        "name": channel["name"],
        "kind": channel["kind"],
        "settings": channels.redacted(channel["kind"], channel["settings"]),
        "managed_by": channel["managed_by"],
        "created_by": channel["created_by"],
        "created_at": channel["created_at"].isoformat(),
        "updated_at": channel["updated_at"].isoformat(),
    }


def _settings(kind: str, given: Mapping[str, Any], stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated settings to store: secrets not given (or given back as "(set)") keep their value."""
    merged = dict(given)
    if stored is not None:
        for name in channels.KINDS[kind].secret_fields:
            if merged.get(name) in (None, REDACTED) and stored.get(name) is not None:
                merged[name] = stored[name]
    channels.parse_config(kind, merged)  # ChannelConfigError: field → what is allowed
    # What was given, checked: stored as written (secrets in clear, to be used; an explicit null
    # kept, as Discord's "never mention everyone"), parsed again at send.
    return merged


async def save_channel(pool: asyncpg.Pool, data: Mapping[str, Any], *, actor: str, channel_id: int | None = None) -> dict:
    """Create (channel_id None) or change a channel; ChannelConfigError, NotFound or Conflict."""
    errors: dict[str, str] = {}
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
        errors["name"] = "required: 1 to 80 characters, e.g. ops-email or discord-alerts"
    async with pool.acquire() as conn, conn.transaction():
        current = None
        if channel_id is not None:
            current = await outbound.get_channel(conn, channel_id)
            if current is None:
                raise NotFound(f"no outbound channel has id {channel_id}")
            if is_managed(current):
                raise Conflict("managed by the config file", "this channel is defined in the config file: change it there")
        kind = data.get("kind") or (current["kind"] if current else None)
        if kind not in channels.KINDS:
            errors["kind"] = f"one of {', '.join(channels.KINDS)}"
        elif current is not None and kind != current["kind"]:
            errors["kind"] = f"cannot change from {current['kind']}: create a new channel instead"
        settings = data.get("settings") or {}
        if not isinstance(settings, Mapping):
            errors["settings"] = "an object with the channel kind's settings"
        if errors:
            raise channels.ChannelConfigError(errors)
        stored = _settings(kind, settings, current["settings"] if current else None)
        clash = await outbound.channel_by_name(conn, name.strip())
        if clash is not None and clash["id"] != channel_id:
            raise Conflict("name taken", f"another channel is called {name.strip()!r}: pick another name")
        if current is None:
            channel = await outbound.create_channel(conn, name=name.strip(), kind=kind, settings=stored, created_by=actor)
        else:
            channel = await outbound.update_channel(conn, channel_id, name=name.strip(), settings=stored)
        await audit.record_action(
            conn, actor=actor, action="outbound_channel.create" if current is None else "outbound_channel.update",
            target_type="outbound_channel", target_id=channel["id"],
            details={"name": channel["name"], "kind": kind, "settings": channels.redacted(kind, stored)},
        )
    return channel


async def delete_channel(pool: asyncpg.Pool, channel_id: int, *, actor: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        current = await outbound.get_channel(conn, channel_id)
        if current is None:
            raise NotFound(f"no outbound channel has id {channel_id}")
        if is_managed(current):
            raise Conflict("managed by the config file", "this channel is defined in the config file: remove it there")
        users = await outbound.policies_using_channel(conn, channel_id)
        if users:
            raise Conflict("in use", f"escalation policies send to this channel ({', '.join(users)}): change them first")
        await outbound.delete_channel(conn, channel_id)
        await audit.record_action(conn, actor=actor, action="outbound_channel.delete", target_type="outbound_channel",
                                  target_id=channel_id, details={"name": current["name"], "kind": current["kind"]})


async def send_test(pool: asyncpg.Pool, channel_id: int, *, actor: str, now: datetime | None = None) -> int:
    """Queue a test page to a channel; returns the delivery id to follow (GET …/deliveries)."""
    now = now or datetime.now(timezone.utc)
    async with pool.acquire() as conn, conn.transaction():
        channel = await outbound.get_channel(conn, channel_id)
        if channel is None:
            raise NotFound(f"no outbound channel has id {channel_id}")
        delivery_id = await outbound.enqueue(
            conn, key=f"test:c{channel_id}:{uuid.uuid4()}", channel_id=channel_id, incident_id=None, action="test",
            severity="info", reason=f"test requested by {actor}", now=now,
        )
        await audit.record_action(conn, actor=actor, action="outbound_channel.test", target_type="outbound_channel",
                                  target_id=channel_id, details={"delivery_id": delivery_id})
        await notifications.announce(conn)
    return delivery_id

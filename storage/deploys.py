"""SQL for deployable services (`deploy_services`) and deploy requests (`deploy_requests`).

A request moves pending_approval → approved → triggered | trigger_failed, or pending_approval →
rejected. Every move is one conditional UPDATE, so of two people clicking at once (or two
processes), exactly one wins and the action is sent at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

_SERVICE_COLUMNS = """id, name, action_type, action, default_env, requires_approval, channel, created_by,
    created_at, updated_at, managed_by"""

_REQUEST_COLUMNS = """r.id, r.service_id, s.name AS service_name, r.env, r.ref, r.reason, r.requested_by,
    r.status, r.decided_by, r.decided_at, r.trigger_error, r.event_id, r.created_at, r.updated_at"""


@dataclass(frozen=True)
class ServiceSpec:
    """What a person or the API decides about a service (validated in alerts.deploys)."""

    name: str
    action_type: str  # github_workflow | heroku_promotion | webhook
    action: dict[str, Any]
    default_env: str
    requires_approval: bool
    channel: str | None  # None: the channel routed for event type "deploy"


class ServiceNameTaken(Exception):
    """Another service already has this name, compared case-insensitively."""


@dataclass(frozen=True)
class DeployService:
    id: int
    name: str
    action_type: str
    action: dict[str, Any]
    default_env: str
    requires_approval: bool
    channel: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    managed_by: str | None = None  # 'config': defined by the config file, read-only elsewhere

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "DeployService":
        return cls(**dict(row))

    @property
    def spec(self) -> ServiceSpec:
        return ServiceSpec(
            name=self.name,
            action_type=self.action_type,
            action=dict(self.action),
            default_env=self.default_env,
            requires_approval=self.requires_approval,
            channel=self.channel,
        )


@dataclass(frozen=True)
class DeployRequest:
    id: int
    service_id: int
    service_name: str
    env: str
    ref: str
    reason: str
    requested_by: str
    status: str  # pending_approval | approved | rejected | triggered | trigger_failed
    decided_by: str | None
    decided_at: datetime | None
    trigger_error: str | None
    event_id: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "DeployRequest":
        return cls(**dict(row))


# --- services ----------------------------------------------------------------------------------------


async def create_service(pool: asyncpg.Pool, spec: ServiceSpec, *, created_by: str | None) -> DeployService:
    try:
        row = await pool.fetchrow(
            f"""
            INSERT INTO deploy_services (name, action_type, action, default_env, requires_approval, channel, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING {_SERVICE_COLUMNS}
            """,
            spec.name,
            spec.action_type,
            spec.action,
            spec.default_env,
            spec.requires_approval,
            spec.channel,
            created_by,
        )
    except asyncpg.UniqueViolationError as exc:
        raise ServiceNameTaken(spec.name) from exc
    return DeployService.from_row(row)


async def update_service(pool: asyncpg.Pool, service_id: int, spec: ServiceSpec) -> DeployService | None:
    try:
        row = await pool.fetchrow(
            f"""
            UPDATE deploy_services
               SET name = $2, action_type = $3, action = $4, default_env = $5, requires_approval = $6,
                   channel = $7, updated_at = now()
             WHERE id = $1
            RETURNING {_SERVICE_COLUMNS}
            """,
            service_id,
            spec.name,
            spec.action_type,
            spec.action,
            spec.default_env,
            spec.requires_approval,
            spec.channel,
        )
    except asyncpg.UniqueViolationError as exc:
        raise ServiceNameTaken(spec.name) from exc
    return DeployService.from_row(row) if row else None


async def delete_service(pool: asyncpg.Pool, service_id: int) -> bool:
    """Its requests go with it (ON DELETE CASCADE); the audit log keeps what happened."""
    result = await pool.execute("DELETE FROM deploy_services WHERE id = $1", service_id)
    return result.endswith(" 1")


async def get_service(pool: asyncpg.Pool, service_id: int) -> DeployService | None:
    row = await pool.fetchrow(f"SELECT {_SERVICE_COLUMNS} FROM deploy_services WHERE id = $1", service_id)
    return DeployService.from_row(row) if row else None


async def get_service_by_name(pool: asyncpg.Pool, name: str) -> DeployService | None:
    row = await pool.fetchrow(f"SELECT {_SERVICE_COLUMNS} FROM deploy_services WHERE lower(name) = lower($1)", name)
    return DeployService.from_row(row) if row else None


async def list_services(pool: asyncpg.Pool, *, limit: int = 1000) -> list[DeployService]:
    rows = await pool.fetch(f"SELECT {_SERVICE_COLUMNS} FROM deploy_services ORDER BY lower(name) LIMIT $1", limit)
    return [DeployService.from_row(r) for r in rows]


async def service_names(pool: asyncpg.Pool, *, limit: int = 100) -> list[str]:
    rows = await pool.fetch("SELECT name FROM deploy_services ORDER BY lower(name) LIMIT $1", limit)
    return [r["name"] for r in rows]


async def routed_channel(pool: asyncpg.Pool, event_type: str) -> str | None:
    """The channel `event_routes` gives an event type, if any (read-only here)."""
    return await pool.fetchval("SELECT channel FROM event_routes WHERE event_type = $1", event_type)


# --- requests ----------------------------------------------------------------------------------------


async def create_request(
    pool: asyncpg.Pool, *, service_id: int, env: str, ref: str, reason: str, requested_by: str, status: str
) -> DeployRequest:
    row = await pool.fetchrow(
        f"""
        WITH r AS (
            INSERT INTO deploy_requests (service_id, env, ref, reason, requested_by, status)
            VALUES ($1, $2, $3, $4, $5, $6)
            RETURNING *
        )
        SELECT {_REQUEST_COLUMNS} FROM r JOIN deploy_services s ON s.id = r.service_id
        """,
        service_id,
        env,
        ref,
        reason,
        requested_by,
        status,
    )
    return DeployRequest.from_row(row)


async def get_request(pool: asyncpg.Pool, request_id: int) -> DeployRequest | None:
    row = await pool.fetchrow(
        f"SELECT {_REQUEST_COLUMNS} FROM deploy_requests r JOIN deploy_services s ON s.id = r.service_id WHERE r.id = $1",
        request_id,
    )
    return DeployRequest.from_row(row) if row else None


async def list_requests(pool: asyncpg.Pool, *, limit: int = 100, offset: int = 0) -> list[DeployRequest]:
    rows = await pool.fetch(
        f"""
        SELECT {_REQUEST_COLUMNS} FROM deploy_requests r JOIN deploy_services s ON s.id = r.service_id
         ORDER BY r.created_at DESC, r.id DESC LIMIT $1 OFFSET $2
        """,
        limit,
        offset,
    )
    return [DeployRequest.from_row(r) for r in rows]


async def decide_request(
    pool: asyncpg.Pool, request_id: int, *, status: str, user: str, allow_requester: bool
) -> DeployRequest | None:
    """Move a pending request to approved or rejected; None when it was not pending any more (or
    the requester tried to approve their own, when `allow_requester` is false)."""
    row = await pool.fetchrow(
        f"""
        WITH r AS (
            UPDATE deploy_requests
               SET status = $2, decided_by = $3, decided_at = now(), updated_at = now()
             WHERE id = $1 AND status = 'pending_approval' AND ($4 OR requested_by <> $3)
            RETURNING *
        )
        SELECT {_REQUEST_COLUMNS} FROM r JOIN deploy_services s ON s.id = r.service_id
        """,
        request_id,
        status,
        user,
        allow_requester,
    )
    return DeployRequest.from_row(row) if row else None


async def claim_for_trigger(pool: asyncpg.Pool, request_id: int) -> DeployRequest | None:
    """approved → triggered before anything is sent: whoever gets the row sends the action, once."""
    row = await pool.fetchrow(
        f"""
        WITH r AS (
            UPDATE deploy_requests SET status = 'triggered', trigger_error = NULL, updated_at = now()
             WHERE id = $1 AND status = 'approved'
            RETURNING *
        )
        SELECT {_REQUEST_COLUMNS} FROM r JOIN deploy_services s ON s.id = r.service_id
        """,
        request_id,
    )
    return DeployRequest.from_row(row) if row else None


async def mark_trigger_failed(pool: asyncpg.Pool, request_id: int, error: str) -> DeployRequest | None:
    row = await pool.fetchrow(
        f"""
        WITH r AS (
            UPDATE deploy_requests SET status = 'trigger_failed', trigger_error = $2, updated_at = now()
             WHERE id = $1
            RETURNING *
        )
        SELECT {_REQUEST_COLUMNS} FROM r JOIN deploy_services s ON s.id = r.service_id
        """,
        request_id,
        error,
    )
    return DeployRequest.from_row(row) if row else None


# --- the request's Slack message (a row of platform_events) -------------------------------------------


async def record_request_message(
    pool: asyncpg.Pool,
    request_id: int,
    *,
    title: str,
    status: str,
    service: str,
    env: str,
    actor: str,
    channel: str,
    ts: str,
    details: dict[str, Any],
) -> int:
    """Remember where a request's message was posted: a platform event that Pulser rendered
    itself (render_due_at stays NULL, so the event notifier never touches it), linked as the
    request's `event_id`."""
    async with pool.acquire() as conn, conn.transaction():
        event_id = await conn.fetchval(
            """
            INSERT INTO platform_events (event_type, status, service, env, title, occurred_at, actor, details,
                                         slack_channel, slack_ts)
            VALUES ('deploy', $1, $2, $3, $4, now(), $5, $6, $7, $8)
            RETURNING id
            """,
            status,
            service,
            env,
            title,
            actor,
            details,
            channel,
            ts,
        )
        await conn.execute(
            "UPDATE deploy_requests SET event_id = $2, updated_at = now() WHERE id = $1", request_id, event_id
        )
    return event_id


async def request_message(pool: asyncpg.Pool, request_id: int) -> tuple[str, str] | None:
    """(channel, ts) of the request's Slack message, once it has one."""
    row = await pool.fetchrow(
        """
        SELECT e.slack_channel, e.slack_ts FROM deploy_requests r JOIN platform_events e ON e.id = r.event_id
         WHERE r.id = $1 AND e.slack_channel IS NOT NULL AND e.slack_ts IS NOT NULL
        """,
        request_id,
    )
    return (row["slack_channel"], row["slack_ts"]) if row else None


async def set_request_message_status(pool: asyncpg.Pool, request_id: int, status: str) -> None:
    await pool.execute(
        """
        UPDATE platform_events e SET status = $2 FROM deploy_requests r
         WHERE r.id = $1 AND e.id = r.event_id
        """,
        request_id,
        status,
    )

"""An application as JSON: the admin API's representation, kept in one place so the API and any
other surface (Slack, exports) describe an app with the same fields and the same status."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from alerts.applications import effective_status
from storage.applications import Application


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, or None."""
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def ping_url(public_base_url: str, app_uuid: Any) -> str:
    return f"{public_base_url.rstrip('/')}/heartbeat/{app_uuid}"


def application_json(app: Application, now: datetime, public_base_url: str) -> dict[str, Any]:
    """The API contract: the field names of the original heartbeat spec, plus state and links."""
    return {
        "id": app.id,
        "uuid": str(app.uuid),
        "name": app.name,
        "expected_interval": app.expected_interval,
        "grace_period": app.grace_period,
        "channel": app.channel,
        "owner": app.owner,
        "schedule": app.schedule,
        "timezone": app.timezone,
        "is_active": app.is_active,
        "status": effective_status(is_active=app.is_active, state=app.state, due_at=app.due_at, now=now),
        "last_heartbeat": iso(app.last_heartbeat),
        "next_deadline": iso(app.next_deadline),
        "created_at": iso(app.created_at),
        "updated_at": iso(app.updated_at),
        "ping_url": ping_url(public_base_url, app.uuid),
    }


def heartbeat_json(row: dict[str, Any]) -> dict[str, Any]:
    """One history event, as `storage.heartbeats.list_heartbeats` returns it."""
    return {
        "kind": row["kind"],
        "exit_code": row["exit_code"],
        "received_at": iso(row["received_at"]),
        "client_time": row["client_time"],
        "duration_ms": row["duration_ms"],
        "method": row["method"],
        "remote_addr": row["remote_addr"],
        "user_agent": row["user_agent"],
        "body": row["body"],
        "metadata": row["metadata"],
    }

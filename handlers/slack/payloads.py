"""Reading the parts of Slack interaction payloads that every listener needs."""

from __future__ import annotations

import json
from typing import Any


def view_metadata(view: dict) -> dict[str, Any]:
    """A modal's `private_metadata` as the dict we put there; {} when it is missing or not ours."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def clicked_id(body: dict) -> int | None:
    """The numeric id a clicked button carries in its value (an app's, a rule's, a request's)."""
    return as_int(((body.get("actions") or [{}])[0]).get("value"))


def channel_of(body: dict) -> str | None:
    """The channel the clicked message (or the command) is in."""
    return (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")


def clicked_message(body: dict) -> tuple[str, str] | None:
    """(channel, ts) of the message whose button was clicked; None for views and ephemerals without one."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    return (channel, ts) if channel and ts else None

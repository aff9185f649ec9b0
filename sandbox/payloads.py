"""Builders for the Socket Mode envelopes Slack sends: slash commands, interactivity, events.

Pure functions with every workspace detail passed in, so tests can build an envelope once and
send it twice (duplicate delivery), and so the shapes can be checked against Slack's published
sample payloads without starting a server. Field sets follow those samples;
Bolt routes on ``command`` (slash), ``type`` + ``actions`` / ``view.callback_id``
(interactive) and ``type == "event_callback"`` + ``event.type`` (events).
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any


def new_envelope_id() -> str:
    return str(uuid.uuid4())


def new_trigger_id() -> str:
    return f"{random.randint(10**11, 10**12 - 1)}.{random.randint(10**11, 10**12 - 1)}.{uuid.uuid4().hex}"


def new_event_id() -> str:
    return "Ev" + uuid.uuid4().hex[:10].upper()


def action_ts() -> str:
    return f"{time.time():.6f}"


def envelope(
    kind: str,
    payload: dict[str, Any],
    *,
    accepts_response_payload: bool,
    envelope_id: str | None = None,
) -> dict[str, Any]:
    """The outer Socket Mode frame. ``kind`` is slash_commands | interactive | events_api."""
    return {
        "envelope_id": envelope_id or new_envelope_id(),
        "payload": payload,
        "type": kind,
        "accepts_response_payload": accepts_response_payload,
    }


def slash_command(
    *,
    command: str,
    text: str,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    team_id: str,
    team_domain: str,
    api_app_id: str,
    response_url: str,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """The flat form fields of a slash command, every value a string (as Slack sends them)."""
    return {
        "token": "sandbox-verification-token",
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }


# The field a menu or picker's choice travels in, by element type (Slack's block_actions shapes).
PICKED = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
}


def block_actions(
    *,
    action_id: str,
    value: str,
    block_id: str,
    user_id: str,
    user_name: str,
    team_id: str,
    team_domain: str,
    api_app_id: str,
    channel_id: str | None,
    channel_name: str | None,
    message: dict[str, Any] | None,
    message_ts: str | None,
    response_url: str | None,
    view: dict[str, Any] | None = None,
    action_type: str = "button",
    trigger_id: str | None = None,
    option_text: str | None = None,
    button_text: str | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for one clicked element.

    Container: a view when ``view`` is given (Home tab or modal), otherwise a message in
    ``channel_id``; with no ``message`` the message is treated as ephemeral, which is also what
    Slack does (no ``message`` object is sent for ephemeral messages).
    """
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "action_ts": action_ts(),
    }
    if action_type == "button":
        action["value"] = value
        action["text"] = {"type": "plain_text", "text": button_text or value or action_id, "emoji": True}
    elif action_type in ("static_select", "external_select", "radio_buttons", "overflow"):
        text = value if option_text is None else option_text
        action["selected_option"] = {"text": {"type": "plain_text", "text": text, "emoji": True}, "value": value}
    elif action_type in PICKED:
        action[PICKED[action_type]] = value
    else:
        action["value"] = value

    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "sandbox-verification-token",
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "is_enterprise_install": False,
        "enterprise": None,
        "state": {"values": {}},
        "actions": [action],
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view["id"]}
        payload["view"] = view
        return payload
    payload["container"] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": message is None,
    }
    payload["channel"] = {"id": channel_id, "name": channel_name}
    if message is not None:
        payload["message"] = message
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def view_submission(
    *,
    view: dict[str, Any],
    values: dict[str, Any],
    user_id: str,
    user_name: str,
    team_id: str,
    team_domain: str,
    api_app_id: str,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """A ``view_submission`` payload; ``view`` is the full view object, ``values`` its state."""
    submitted = dict(view)
    submitted["state"] = {"values": values}
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "sandbox-verification-token",
        "trigger_id": trigger_id or new_trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed(
    *,
    view: dict[str, Any],
    user_id: str,
    user_name: str,
    team_id: str,
    team_domain: str,
    api_app_id: str,
) -> dict[str, Any]:
    """A ``view_closed`` payload (sent only for views opened with ``notify_on_close``)."""
    return {
        "type": "view_closed",
        "team": {"id": team_id, "domain": team_domain},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "sandbox-verification-token",
        "view": view,
        "is_cleared": False,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def event_callback(
    event: dict[str, Any],
    *,
    team_id: str,
    api_app_id: str,
    bot_user_id: str,
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """The full ``event_callback`` wrapper Bolt needs (a bare event is not routed)."""
    event = dict(event)
    event.setdefault("event_ts", f"{time.time():.6f}")
    context = f"4-{event.get('type', '')}-{team_id}-{event.get('channel', '')}"
    return {
        "token": "sandbox-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": context,
    }


def events_envelope(
    payload: dict[str, Any],
    *,
    retry_attempt: int = 0,
    retry_reason: str = "",
    envelope_id: str | None = None,
) -> dict[str, Any]:
    out = envelope("events_api", payload, accepts_response_payload=False, envelope_id=envelope_id)
    out["retry_attempt"] = retry_attempt
    out["retry_reason"] = retry_reason
    return out


def app_home_opened(
    *, user_id: str, channel_id: str, tab: str = "home", view: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An ``app_home_opened`` event; ``view`` only when the Home tab has been published."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel_id,
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
    if tab == "home" and view is not None:
        event["view"] = view
    return event

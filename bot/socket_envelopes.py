"""What a Socket Mode frame must look like before the ledger hands it to Bolt.

Slack never sends a malformed envelope on purpose, but a proxy, a Slack-side bug or a hand-made
client can, and slack_sdk drops such frames silently (no type, no payload, no envelope_id) or
passes them to listeners that then crash. Either way the envelope goes unacknowledged and Slack
redelivers it for ever. These pure checks name what is wrong, so the Socket Mode handler can ack
the envelope and record it in the ledger as failed with that reason.

The checks follow the fields Bolt routes on (``command``; ``type`` + ``actions[].action_id`` or
``view.callback_id``; ``type == "event_callback"`` + ``event.type``) and the ones every Pulser
listener reads (``user_id``, ``user.id``, ``view.state.values``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")
# Frames about the connection itself: never envelopes, never acked, never recorded.
CONNECTION_FRAMES = ("hello", "disconnect")
INTERACTIVE_TYPES = (
    "block_actions",
    "block_suggestion",
    "view_submission",
    "view_closed",
    "shortcut",
    "message_action",
)


@dataclass(frozen=True)
class Frame:
    """One text frame from the socket, read once: the parsed value and what is wrong with it."""

    message: Any
    raw: str
    problem: str | None

    @property
    def is_object(self) -> bool:
        return isinstance(self.message, dict)

    @property
    def envelope_id(self) -> Any:
        """The id to ack with, exactly as sent; None when there is none (nothing can be acked)."""
        value = self.message.get("envelope_id") if self.is_object else None
        return None if value in (None, "") else value

    @property
    def type(self) -> str:
        value = self.message.get("type") if self.is_object else None
        return value if isinstance(value, str) else ""

    @property
    def payload(self) -> Any:
        return self.message.get("payload") if self.is_object else None

    @property
    def is_connection_frame(self) -> bool:
        return self.is_object and "envelope_id" not in self.message and self.type in CONNECTION_FRAMES

    def ledger_id(self) -> str:
        """The ledger key of a malformed frame: its envelope_id when that is a string or a number,
        else a digest of the frame (so a redelivery of the same bytes is still a duplicate)."""
        value = self.envelope_id
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return "frame:" + hashlib.sha256(self.raw.encode("utf-8", "replace")).hexdigest()[:32]


def read_frame(raw: str) -> Frame:
    """Parse a text frame (the SDK's own parse skips anything not starting with ``{``)."""
    try:
        message = json.loads(raw)
    except ValueError:
        return Frame(message=None, raw=raw, problem="frame is not valid JSON")
    except RecursionError:
        return Frame(message=None, raw=raw, problem="frame is nested too deeply")
    return Frame(message=message, raw=raw, problem=envelope_problem(message))


def envelope_problem(message: Any) -> str | None:
    """Why `message` is not an envelope Pulser can process, or None when it is one."""
    if not isinstance(message, dict):
        return f"frame is {_json_type(message)}, not a JSON object"
    if "envelope_id" not in message:
        return "envelope has no envelope_id"
    envelope_id = message["envelope_id"]
    if envelope_id in (None, ""):
        return "envelope_id is empty"
    if not isinstance(envelope_id, str):
        return f"envelope_id is {_json_type(envelope_id)}, not a string"
    if "type" not in message:
        return "envelope has no type"
    kind = message["type"]
    if not isinstance(kind, str):
        return f"envelope type is {_json_type(kind)}, not a string"
    if kind not in ENVELOPE_TYPES:
        return f"unknown envelope type {kind!r} (expected {', '.join(ENVELOPE_TYPES)})"
    if "payload" not in message:
        return "envelope has no payload"
    payload = message["payload"]
    if not isinstance(payload, dict):
        return f"payload is {_json_type(payload)}, not an object"
    return _PAYLOAD_CHECKS[kind](payload)


def describe(kind: str, payload: dict) -> str:
    """What an envelope asks for, for 'no listener for …' reasons: the command, the clicked
    action_id, the submitted callback_id, the event type."""
    if kind == "slash_commands":
        return f"command {payload.get('command')!r}"
    if kind == "events_api":
        return f"event {(payload.get('event') or {}).get('type')!r}"
    interaction = payload.get("type")
    if interaction in ("block_actions", "block_suggestion"):
        ids = [a.get("action_id") for a in payload.get("actions") or [payload]]
        return f"{interaction} action_id {', '.join(repr(i) for i in ids)}"
    if interaction in ("view_submission", "view_closed"):
        return f"{interaction} callback_id {(payload.get('view') or {}).get('callback_id')!r}"
    return f"{interaction} callback_id {payload.get('callback_id')!r}"


# --- one check per envelope type -------------------------------------------------------------------


def _slash_command_problem(payload: dict) -> str | None:
    command = payload.get("command")
    if command is None:
        return "slash command payload has no command"
    if not isinstance(command, str) or not command.startswith("/"):
        return f"slash command payload's command is {_shown(command)}, not a /command"
    if not _non_empty_string(payload.get("user_id")):
        return "slash command payload has no user_id"
    if "text" in payload and not isinstance(payload["text"], str):
        return f"slash command text is {_json_type(payload['text'])}, not a string"
    return None


def _interactive_problem(payload: dict) -> str | None:
    interaction = payload.get("type")
    if interaction is None:
        return "interactive payload has no type"
    if interaction not in INTERACTIVE_TYPES:
        return f"unknown interactive payload type {_shown(interaction)} (expected {', '.join(INTERACTIVE_TYPES)})"
    user = payload.get("user")
    if not isinstance(user, dict) or not _non_empty_string(user.get("id")):
        return f"{interaction} payload has no user object with an id"
    if interaction == "block_actions":
        return _actions_problem(payload.get("actions"))
    if interaction == "block_suggestion":
        return None if _non_empty_string(payload.get("action_id")) else "block_suggestion payload has no action_id"
    if interaction in ("view_submission", "view_closed"):
        return _view_problem(interaction, payload.get("view"))
    return None if isinstance(payload.get("callback_id"), str) else f"{interaction} payload has no callback_id"


def _actions_problem(actions: Any) -> str | None:
    if not isinstance(actions, list) or not actions:
        return f"block_actions payload's actions is {_json_type(actions)}, not a list of actions"
    for index, action in enumerate(actions):
        if not isinstance(action, dict):
            return f"block_actions action {index} is {_json_type(action)}, not an object"
        if "action_id" not in action:
            return f"block_actions action {index} has no action_id"
        if not _non_empty_string(action["action_id"]):
            return f"block_actions action {index}'s action_id is {_json_type(action['action_id'])}, not a string"
    return None


def _view_problem(interaction: str, view: Any) -> str | None:
    if not isinstance(view, dict):
        return f"{interaction} payload has no view object"
    if not isinstance(view.get("callback_id"), str):
        return f"{interaction} view has no callback_id"
    if interaction == "view_closed":
        return None
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict):
        return "view_submission view.state.values is missing or not an object"
    for block_id, elements in values.items():
        if not isinstance(elements, dict) or not all(isinstance(e, dict) for e in elements.values()):
            return f"view_submission view.state.values[{block_id!r}] is not an object of input elements"
    return None


def _events_api_problem(payload: dict) -> str | None:
    if payload.get("type") != "event_callback":
        return f"events_api payload type is {_shown(payload.get('type'))}, not 'event_callback'"
    event = payload.get("event")
    if not isinstance(event, dict):
        return "event_callback payload has no event object"
    if not _non_empty_string(event.get("type")):
        return "event_callback event has no type"
    if "event_id" in payload and not _non_empty_string(payload["event_id"]):
        return f"event_callback event_id is {_json_type(payload['event_id'])}, not a string"
    return None


_PAYLOAD_CHECKS = {
    "slash_commands": _slash_command_problem,
    "interactive": _interactive_problem,
    "events_api": _events_api_problem,
}


def _non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _shown(value: Any) -> str:
    """A value for an error reason: short strings quoted, anything else by its JSON type."""
    if isinstance(value, str):
        return repr(value[:60])
    return _json_type(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"

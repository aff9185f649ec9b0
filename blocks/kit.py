"""The Block Kit pieces every message and modal is built from: text objects, sections, context
lines, text inputs, and the escaping that keeps user text from pinging anyone."""

from __future__ import annotations

import re
from typing import Any

TEXT_MAX = 3000  # Slack refuses a section or context text object longer than this
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")


def escape(text: str) -> str:
    """Slack mrkdwn control characters; escaping them keeps <!channel>, <@U…> and links inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_channel_id(channel: str | None) -> bool:
    return bool(channel and CHANNEL_ID.match(channel))


def channel_ref(channel: str | None) -> str:
    """How every message shows a channel: an ID as Slack's link `<#C…>` (each reader sees the
    channel's current #name); a name Slack did not know when it was saved stays text."""
    return f"<#{channel}>" if is_channel_id(channel) else escape(channel or "")


def count_noun(n: int, noun: str, plural: str | None = None) -> str:
    """'1 app', '2 apps', '1,200 requests': every count in Slack text goes through here, so one of
    a thing is never "1 apps". `plural` for nouns that do not just take an s ('entry', 'entries')."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def plain(text: str) -> dict:
    return {"type": "plain_text", "text": text, "emoji": True}


def mrkdwn(text: str) -> dict:
    """A mrkdwn text object, cut to Slack's limit (a longer one would make Slack refuse the message)."""
    if len(text) > TEXT_MAX:
        text = text[: TEXT_MAX - 1] + "…"
    return {"type": "mrkdwn", "text": text}


def section(text: str, block_id: str | None = None, accessory: dict | None = None) -> dict:
    block: dict[str, Any] = {"type": "section", "text": mrkdwn(text)}
    if block_id:
        block["block_id"] = block_id
    if accessory:
        block["accessory"] = accessory
    return block


def coloured_message(text: str, headline: list[dict], body: list[dict], colour: str) -> dict:
    """A message whose headline is read once, with the rest beside a colour bar.

    Slack shows a message's `text` only when it has no top-level blocks; with text and an
    attachment alone, a headline in both is read twice. So the headline is the top-level blocks,
    the rest is one coloured attachment, and `text` is what notifications and screen readers get.
    """
    message: dict[str, Any] = {"text": text, "blocks": headline}
    if body:
        message["attachments"] = [{"color": colour, "blocks": body}]
    return message


def context(text: str) -> dict:
    return {"type": "context", "elements": [mrkdwn(text)]}


def text_input(
    block_id: str,
    label: str,
    *,
    initial: str = "",
    placeholder: str | None = None,
    hint: str | None = None,
    optional: bool = False,
    multiline: bool = False,
    max_length: int | None = None,
) -> dict:
    """A modal's plain-text input; its block_id and action_id are the same, so submitted values and
    inline errors are found by one name."""
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id}
    if initial:
        element["initial_value"] = initial
    if placeholder:
        element["placeholder"] = plain(placeholder)
    if multiline:
        element["multiline"] = True
    if max_length:
        element["max_length"] = max_length
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "label": plain(label), "element": element,
                             "optional": optional}
    if hint:
        block["hint"] = plain(hint)
    return block

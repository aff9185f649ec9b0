"""The HTTP session every Slack Web API call of a process goes through, paced by `SlackBudget`.

Why at the HTTP session and not in each sender: Bolt builds a fresh `AsyncWebClient` for every
request it handles (a click's modal, an ephemeral reply) and hands it the app client's session.
Pacing the session therefore covers every caller — the outbox senders, the App Home refresher,
every listener — without each of them remembering to. The method is the URL's last segment, the
channel comes from the body (JSON or form, as slack_sdk sends it).
"""

from __future__ import annotations

import json
from typing import Callable
from urllib.parse import parse_qs

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

from alerts.outbound.budget import POST_MESSAGE, SlackBudget
from alerts.outbound.slack import retry_after_seconds


def _channel(request: ClientRequest) -> str | None:
    body = request.body
    try:
        text = body.decode() if hasattr(body, "decode") else ""
    except (UnicodeDecodeError, TypeError, ValueError):
        return None
    if not text:
        return request.url.query.get("channel")
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text).get("channel")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None
    values = parse_qs(text).get("channel")
    return values[0] if values else None


def _is_id(channel: str) -> bool:
    return channel[:1] in ("C", "G", "D") and channel[1:].isalnum() and channel.upper() == channel


def budget_middleware(budget: SlackBudget, on_refused: Callable[[str], None] | None = None):
    refused = on_refused or (lambda method: None)

    async def pace(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        method = request.url.path.rsplit("/", 1)[-1]
        channel = _channel(request)
        await budget.spend(method, channel)
        response = await handler(request)
        if response.status == 429:
            refused(method)
            await budget.penalize(method, channel, retry_after_seconds(response.headers))
        elif method == POST_MESSAGE and channel and channel not in budget.channel_ids and not _is_id(channel):
            try:  # the answer names the channel's ID: later posts by name spend from its budget
                budget.learn_channel(channel, (await response.json(content_type=None)).get("channel"))
            except (ValueError, aiohttp.ClientError, AttributeError):
                pass
        return response

    return pace


def paced_session(budget: SlackBudget, on_refused: Callable[[str], None] | None = None) -> aiohttp.ClientSession:
    """A keep-alive session whose calls spend from `budget` first (create it inside the loop)."""
    return aiohttp.ClientSession(middlewares=(budget_middleware(budget, on_refused),))

"""The Bolt AsyncApp: Web API client pointed at SLACK_API_URL, with retries, and every listener."""

from __future__ import annotations

import logging

import aiohttp

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from handlers.slack.commands import SUBCOMMANDS
from handlers.slack.registry import register_all
from handlers.slack.services import SlackServices


def build_web_client(token: str, base_url: str, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """A client that survives a dropped connection, a 429 (waits Retry-After) and a 5xx.
    Bolt copies base_url, the session and these handlers into every per-request client, so the
    session's pacing (alerts.outbound.paced_session) covers every listener's calls too."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def build_delivery_client(token: str, base_url: str, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """The alert pipeline's client: it retries only a dropped connection. A 429 or a 5xx comes
    straight back, so alerts.outbound.slack can hold just that channel and reschedule from the database
    instead of sleeping inside the call while other channels wait. With `session`, connections
    are kept alive between calls (without one, slack_sdk opens and closes a session per call: a
    TCP and TLS handshake per message)."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        session=session,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1)],
    )


class _QuietTokenWarning(logging.Filter):
    """AsyncApp reads SLACK_BOT_TOKEN from the environment by itself and then warns that the
    client we pass wins; that is the intended set-up, so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def build_app(
    bot_token: str,
    api_url: str,
    services: SlackServices,
    *,
    metrics: Metrics | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncApp:
    bolt_logger = logging.getLogger("slack_bolt")
    if not any(isinstance(f, _QuietTokenWarning) for f in bolt_logger.filters):
        bolt_logger.addFilter(_QuietTokenWarning())
    app = AsyncApp(
        client=build_web_client(bot_token, api_url, session),
        # Socket Mode has no request signature to check; there is no HTTP request URL.
        request_verification_enabled=False,
        logger=bolt_logger,
    )
    if metrics is not None:
        app.use(interaction_counter(metrics))
    register_all(app, services)
    return app


def command_label(body: dict) -> str | None:
    """The metric label of a slash command: `/pulser status` for a known /pulser subcommand, else
    the bare command, so typed words never become label values (each would be a new time series)."""
    command = body.get("command")
    if not isinstance(command, str) or not command.startswith("/"):
        return None
    command = command[:40]
    word = str(body.get("text") or "").strip().partition(" ")[0].lower()
    if command == "/pulser" and word in SUBCOMMANDS:
        return f"{command} {word}"
    return command


def action_label(body: dict) -> str | None:
    """A button or menu's action_id, or a modal's callback_id; None for anything else."""
    if body.get("type") == "block_actions":
        actions = body.get("actions") or [{}]
        action_id = actions[0].get("action_id") if isinstance(actions[0], dict) else None
        return str(action_id)[:64] if action_id else None
    if body.get("type") == "view_submission":
        callback_id = (body.get("view") or {}).get("callback_id")
        return str(callback_id)[:64] if callback_id else None
    return None


def interaction_counter(metrics: Metrics):
    """Global Bolt middleware counting commands and actions; a ledger retry is not counted again."""

    async def count_interaction(body: dict, context: dict, next) -> None:  # noqa: A002 — Bolt injects by name
        if not context.get("ledger_retry"):
            if (command := command_label(body)) is not None:
                metrics.count_command(command)
            elif (action := action_label(body)) is not None:
                metrics.count_action(action)
        await next()

    return count_interaction

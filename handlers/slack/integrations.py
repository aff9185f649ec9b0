"""App Home's Send test buttons: one signed sample delivery through the sidecar's real webhook
endpoint, followed until it is an incident message; the outcome goes to the clicker as a DM from
Pulser (Home has no channel to answer in, and the test takes longer than a trigger_id lives).
Admins only: a test posts an incident in an alert channel."""

from __future__ import annotations

import re

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.integrations import NAMES, NotTestable, TestOutcome
from blocks.home import SEND_TEST
from blocks.kit import escape
from handlers.slack.admin import is_admin, refusal
from handlers.slack.services import SlackServices

log = structlog.get_logger(__name__)


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(re.compile(f"^{SEND_TEST}:"))
    async def send_test(ack: AsyncAck, body: dict, client) -> None:
        await ack()
        user = body["user"]["id"]
        source = (body.get("actions") or [{}])[0].get("value") or ""
        integrations = services.integrations
        if integrations is None or source not in NAMES:
            await _dm(client, user, ":warning: That is not an integration Pulser can test.")
            return
        if not await is_admin(client, user, services.admins):
            await _dm(client, user, refusal("send test deliveries"))
            return
        try:
            outcome = await integrations.tester.run(source)
        except NotTestable as exc:
            await _dm(client, user, f":warning: {NAMES[source]} cannot be tested yet: {escape(exc.reason)}.")
            return
        await _dm(client, user, outcome_text(outcome))


def outcome_text(outcome: TestOutcome) -> str:
    name = NAMES[outcome.source]
    if outcome.became_message:
        channel = (outcome.message or {}).get("channel") or ""
        return (
            f":white_check_mark: *{name} test delivery* became incident #{outcome.incident_id}, "
            f"posted in <#{escape(channel)}>. Resolve it when you have seen it."
        )
    return f":x: *{name} test delivery* did not become a message. {escape(outcome.detail)}"


async def _dm(client, user: str, text: str) -> None:
    try:
        await client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        log.warning("slack.integration_test_dm_failed", user=user, error=exc.response.get("error"))

"""The App Home tab: the dashboard on `app_home_opened`, and its three buttons.

Home has no channel and no response_url, so the buttons answer the way Home allows:
- "Register an app" runs `/pulser register` itself (handlers.slack.applications.register_command)
  with the click's trigger_id: same admin check, same modal, same confirmation (a DM, as for a
  command from a channel the bot cannot post in).
- "Edit rules" sends the `/pulser rules` list as a DM from Pulser. Not a modal: the list's
  buttons (Edit, Move, Delete, Add) answer by replacing the message they sit on through its
  response_url, which clicks inside a modal do not have; in a DM every button works as in a
  channel, and the list stays there for later. A small modal says where it went.
- "Heroku settings" opens the `/heroku-status config` modal, admin-only as there.
Refusals and errors open a one-message modal while the click's trigger_id is fresh.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.home import dashboard_view
from blocks.heroku import admin_only as heroku_admin_only, config_modal
from blocks.home import EDIT_RULES, HEROKU_SETTINGS, REGISTER_APP, notice_modal
from handlers.slack import applications, rules
from handlers.slack.admin import is_admin
from handlers.slack.heroku import SETTINGS_ACTION
from handlers.slack.services import SlackServices

log = structlog.get_logger(__name__)

RULES_SENT = "The routing rules are in your messages with Pulser (the *Messages* tab above): edit, move or add them there."


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: dict, client) -> None:
        if event.get("tab") != "home":
            return
        user = event.get("user") or ""
        refresher = getattr(services, "home", None)  # alerts.home.HomeRefresher, when the runtime runs one
        if refresher is not None:
            refresher.opened(user)
        await publish_home(client, services, user)

    @app.action(REGISTER_APP)
    async def on_register_app(ack: AsyncAck, body: dict, client) -> None:
        await ack()
        user, trigger = body["user"]["id"], body["trigger_id"]

        async def answer(**message: Any) -> None:  # stands in for the slash command's ack
            if message.get("text"):
                await _notice(client, trigger, user, "Register an app", message["text"])

        async def respond(**message: Any) -> None:  # stands in for its response_url
            await _dm(client, user, message)

        command = {"user_id": user, "trigger_id": trigger, "channel_id": None}
        await applications.register_command(
            ack=answer, command=command, args="", client=client, respond=respond, services=services, context={}
        )

    @app.action(EDIT_RULES)
    async def on_edit_rules(ack: AsyncAck, body: dict, client) -> None:
        await ack()
        user, trigger = body["user"]["id"], body["trigger_id"]
        message = await rules.rules_message(services)
        if await _dm(client, user, message):
            await _notice(client, trigger, user, "Routing rules", RULES_SENT)

    @app.action(HEROKU_SETTINGS)
    async def on_heroku_settings(ack: AsyncAck, body: dict, client) -> None:
        await ack()
        user, trigger = body["user"]["id"], body["trigger_id"]
        if services.heroku is None:
            await _notice(client, trigger, user, "Heroku settings", "Heroku monitoring does not run in this Pulser process.")
            return
        if not await is_admin(client, user, services.admins):
            await _notice(client, trigger, user, "Heroku settings", heroku_admin_only(SETTINGS_ACTION)["text"])
            return
        current = await services.heroku.settings()
        view = config_modal(
            apps=current.apps, channel=current.channel, interval_minutes=current.interval_minutes,
            metadata={"channel_id": None, "user_id": user},  # no channel: the confirmation comes as a DM
        )
        await _open(client, trigger, user, view, "Heroku settings")


async def publish_home(client, services: SlackServices, user: str) -> None:
    """Publish the dashboard as it is now to `user`'s Home tab."""
    try:
        view = await dashboard_view(services.pool, integrations=getattr(services, "integrations", None))
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("slack.home_publish_failed", user=user, error=exc.response.get("error"))


# --- answering from Home --------------------------------------------------------------------------


async def _open(client, trigger_id: str, user: str, view: dict, what: str) -> bool:
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
        return True
    except SlackApiError as exc:  # most often expired_trigger_id: Slack was slow to deliver the click
        error = exc.response.get("error")
        log.warning("slack.home_modal_failed", user=user, what=what, error=error)
        await _dm(client, user, {"text": f":warning: Slack did not open {what} ({error}). Please click the button on Pulser's Home tab again."})
        return False


async def _notice(client, trigger_id: str, user: str, title: str, text: str) -> bool:
    return await _open(client, trigger_id, user, notice_modal(title, text), title)


async def _dm(client, user: str, message: dict) -> bool:
    """A message from Pulser in the user's DM with the app (channel=user ID opens it)."""
    content = {k: v for k, v in message.items() if k in ("text", "blocks")}
    try:
        await client.chat_postMessage(channel=user, **content)
        return True
    except SlackApiError as exc:
        log.warning("slack.home_dm_failed", user=user, error=exc.response.get("error"))
        return False

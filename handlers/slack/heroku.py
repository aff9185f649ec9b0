"""Heroku in Slack: `/heroku-status [app | config | help]`, the monitoring-settings modal, and the
Rollback button on deploy messages.

Thin on purpose: parse, check admin rights, call `services.heroku` (alerts.heroku_monitor's
HerokuMonitor), answer with `blocks.heroku`. Slack's timing shapes the order: a slash command must
be acked within 3 s, but Heroku may take longer (three requests per app, retried on 5xx), so a
status request is acked empty at once and answered through response_url; `config` checks rights
(cached) before the ack and opens the modal right after it, while the trigger_id is still valid.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.heroku_monitor import APP_NAME, HerokuMonitor, SettingsError, validate_settings
from alerts.incident_view import rollback_offer
from alerts.sources.heroku_api import HerokuError, HerokuNotConfigured
from blocks.heroku import (
    APPS_SHOWN,
    CONFIG_CALLBACK,
    admin_only,
    app_problem_section,
    app_section,
    config_modal,
    escape,
    form_errors,
    help_message,
    monitoring_line,
    one_line,
    saved_message,
    status_message,
    submitted_settings,
)
from blocks.incidents import ROLLBACK, parse_rollback_value
from handlers.slack.admin import is_admin, refusal
from handlers.slack.payloads import view_metadata
from handlers.slack.services import SlackServices
from storage import incidents
from storage.audit import record_action

log = structlog.get_logger(__name__)

# Apps asked about at once: fast enough for 20 apps, gentle on the account's shared rate budget.
CONCURRENT_APPS = 4
NO_KEY = "HEROKU_API_KEY is not set, so Pulser cannot ask Heroku; set it and restart Pulser."
SETTINGS_ACTION = "change Heroku monitoring"
ROLLBACK_ACTION = "roll back Heroku deploys"


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.command("/heroku-status")
    async def heroku_status(ack: AsyncAck, command: dict, client, respond) -> None:
        text = (command.get("text") or "").strip()
        words = text.split()
        word = words[0].lower() if words else ""
        log.info("slack.command", command="/heroku-status", subcommand=word or "status", user=command.get("user_id"))
        if word == "help":
            await ack(**help_message())
            return
        if len(words) > 1:
            await ack(**help_message(unknown=text))
            return
        monitor: HerokuMonitor | None = services.heroku
        if monitor is None:
            await ack(**one_line("Heroku monitoring does not run in this Pulser process."))
            return
        if word == "config":
            await _open_config(ack, command, client, respond, monitor)
            return
        await ack()  # the answer follows through response_url: Heroku may take longer than 3 s
        try:
            message = await (_one_app(monitor, word) if word else _all_apps(monitor))
        except Exception:  # anything unforeseen: one line in Slack, the details in the log
            log.exception("heroku.status_failed", app=word or None)
            message = one_line(":warning: Pulser could not put the Heroku status together; its log says why.")
        await respond(**message)

    async def _open_config(ack: AsyncAck, command: dict, client, respond, monitor: HerokuMonitor) -> None:
        user = command["user_id"]
        if not await is_admin(client, user, services.admins):
            await ack(**admin_only(SETTINGS_ACTION))
            return
        await ack()
        current = await monitor.settings()
        view = config_modal(
            apps=current.apps,
            channel=current.channel,
            interval_minutes=current.interval_minutes,
            metadata={"channel_id": command.get("channel_id"), "user_id": user},
        )
        try:
            await client.views_open(trigger_id=command["trigger_id"], view=view)
        except SlackApiError as exc:  # most often expired_trigger_id: Slack was slow to deliver the command
            error = exc.response.get("error")
            log.warning("slack.heroku_config_modal_failed", user=user, error=error)
            await respond(
                response_type="ephemeral",
                text=f":warning: Slack did not open the settings form ({error}). Please run `/heroku-status config` again.",
            )

    @app.view(CONFIG_CALLBACK)
    async def on_config_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):  # rights may have gone since the form opened
            await ack(response_action="errors", errors=form_errors({"apps": refusal(SETTINGS_ACTION)}))
            return
        fields = await services.channels.resolve_field(submitted_settings(view["state"]["values"]))
        try:
            new = validate_settings(fields["apps"], fields["channel"], fields["interval_minutes"])
        except SettingsError as exc:
            await ack(response_action="errors", errors=form_errors(exc.errors))
            return
        try:
            saved = await services.heroku.save_settings(new, user=user)
        except Exception:  # the form stays open with what was typed, so nothing is lost
            log.exception("heroku.settings_save_failed", user=user)
            await ack(response_action="errors", errors=form_errors({"apps": "Pulser could not save this just now; try again."}))
            return
        await ack()
        message = saved_message(apps=saved.apps, channel=saved.channel, interval_minutes=saved.interval_minutes)
        await _tell(client, view_metadata(view).get("channel_id"), user, message)

    @app.action(ROLLBACK)
    async def on_rollback(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user = body["user"]["id"]
        parsed = parse_rollback_value(((body.get("actions") or [{}])[0]).get("value") or "")
        if parsed is None:
            await _answer(respond, "This button does not name a release to roll back to; nothing was done.")
            return
        incident_id, clicked = parsed
        if not await is_admin(client, user, services.admins):
            await record_action(
                services.pool, actor=user, action="heroku.rollback_refused", target_type="incident",
                target_id=incident_id, details={"app": clicked.app, "to_version": clicked.version},
            )
            await _answer(respond, f":lock: {refusal(ROLLBACK_ACTION)}")
            return
        # The target comes from the stored incident, not from the click: a stale message cannot
        # roll an app back to something detection never offered.
        incident = await incidents.get_incident(services.pool, incident_id)
        offer = rollback_offer(incident) if incident is not None else None
        if offer is None or offer != clicked:
            await _answer(respond, "This deploy no longer offers that rollback in Pulser; nothing was done.")
            return
        try:  # a double click, here or on another replica, is refused by the monitor's claim
            result = await services.heroku.rollback(incident_id, offer.app, offer.release_id, offer.version, user=user)
            text = result.text
        except Exception:  # Heroku may have acted: say so rather than "failed"
            log.exception("heroku.rollback_error", app=offer.app, incident_id=incident_id, by=user)
            text = (
                f":warning: Pulser hit an error while rolling back {escape(offer.app)} to v{offer.version}. "
                f"Check the app's releases on Heroku (`heroku releases -a {escape(offer.app)}`) before trying again."
            )
        await _answer(respond, text)


# --- /heroku-status answers -----------------------------------------------------------------------


async def _all_apps(monitor: HerokuMonitor) -> dict:
    """Every monitored app (the first APPS_SHOWN), under the monitoring line."""
    settings = await monitor.settings()
    header = await _header(monitor, settings)
    if not monitor.configured:
        note = f"Monitored apps: {', '.join(settings.apps)}. {NO_KEY}" if settings.apps else None
        return status_message(header, [], note=note)
    shown = list(settings.apps[:APPS_SHOWN])
    now = datetime.now(timezone.utc)
    sections = [
        app_section(result, now=now) if isinstance(result, dict) else app_problem_section(app, result)
        for app, result in await _ask_heroku(monitor, shown)
    ]
    return status_message(header, sections, not_shown=len(settings.apps) - len(shown))


async def _one_app(monitor: HerokuMonitor, app: str) -> dict:
    """One app, monitored or not; anything Heroku refuses is one line."""
    if not APP_NAME.match(app):
        return one_line(
            f"“{escape(app)}” is not a Heroku app name (lowercase letters, digits and dashes). "
            "Usage: `/heroku-status [app | config | help]`."
        )
    if not monitor.configured:
        return one_line(f":warning: {NO_KEY}")
    [(_, result)] = await _ask_heroku(monitor, [app])
    if isinstance(result, str):
        return one_line(f":warning: {escape(result)}")
    settings = await monitor.settings()
    monitored = app in settings.apps
    note = None if monitored else f"{app} is not monitored by Pulser; an admin can add it with /heroku-status config."
    section = app_section(result, now=datetime.now(timezone.utc), monitored=monitored)
    return status_message(await _header(monitor, settings), [section], note=note)


async def _header(monitor: HerokuMonitor, settings) -> str:
    active, why = await monitor.activity()
    return monitoring_line(
        active=active, why=why, apps=len(settings.apps), interval_minutes=settings.interval_minutes, channel=settings.channel
    )


async def _ask_heroku(monitor: HerokuMonitor, apps: list[str]) -> list[tuple[str, dict | str]]:
    """(app, its summary) or (app, one line saying why Heroku could not tell), in `apps` order."""
    limit = asyncio.Semaphore(CONCURRENT_APPS)

    async def one(app: str) -> tuple[str, dict | str]:
        async with limit:
            return app, await _summary_or_problem(monitor, app)

    return list(await asyncio.gather(*(one(app) for app in apps)))


async def _summary_or_problem(monitor: HerokuMonitor, app: str) -> dict | str:
    try:
        return await monitor.app_summary(app)
    except HerokuNotConfigured:
        return NO_KEY
    except HerokuError as exc:
        log.info("heroku.status_refused", app=app, status=exc.status, error=exc.id)
        if exc.status == 404:
            return f"Heroku doesn't know an app called {app}."
        return str(exc)
    except Exception as exc:  # a database hiccup reading the last poll: still one line
        log.warning("heroku.status_unreadable", app=app, error=type(exc).__name__)
        return f"Pulser could not read {app}'s state just now ({type(exc).__name__})."


# --- helpers --------------------------------------------------------------------------------------


async def _answer(respond, text: str) -> None:
    """An ephemeral for the person who clicked; the message they clicked stays as it is."""
    await respond(text=text, replace_original=False, response_type="ephemeral")


async def _tell(client, channel: str | None, user: str, message: dict) -> None:
    """An ephemeral in the channel the command came from; where the bot cannot post there, a DM."""
    content = {k: v for k, v in message.items() if k in ("text", "blocks")}
    if channel:
        try:
            await client.chat_postEphemeral(channel=channel, user=user, **content)
            return
        except SlackApiError as exc:
            log.info("slack.ephemeral_failed", channel=channel, error=exc.response.get("error"), fallback="dm")
    await client.chat_postMessage(channel=user, **content)

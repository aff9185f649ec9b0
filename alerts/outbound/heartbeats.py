"""Delivers the notification outbox to Slack: heartbeat alerts, and recoveries updated in place.

Runs in the process that holds the Slack connection. Whatever enqueued a row (the watcher, the
heartbeat writer — possibly in another process) committed it first, so a crash between "app is
down" and "Slack was told" loses nothing: the row is still pending, or its lease runs out.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import asyncpg
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from alerts.applications import expected_text, format_duration
from alerts.outbound.budget import OverBudget, waiting_at_most
from alerts.outbound.loop import OutboxLoop
from alerts.outbound.slack import (
    AUTH_ERRORS, AUTH_PROBE_FIRST, AUTH_PROBE_LAST, CHANNEL_ERRORS, GONE_ERRORS, retry_after_seconds,
)
from alerts.pipeline import Suppressions
from blocks.heartbeat_alerts import AlertView, alert_message, recovery_reply, storm_message
from blocks.kit import channel_ref
from storage import applications, notifications
from storage.applications import Application

log = structlog.get_logger(__name__)

# An alert held because Slack refuses its channel is tried again this often (and at once when
# Pulser is let into the channel).
HOLD_RETRY = timedelta(minutes=5)

# Slack errors that no retry of this alert can fix: the row is marked failed at once, and logged.
PERMANENT_SLACK_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "msg_too_long"}


def _slack_error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") if exc.response is not None else exc)


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def outage_started(alert: dict) -> datetime | None:
    payload = alert["payload"]
    return _parse_time(payload.get("deadline")) or _parse_time(payload.get("received_at"))


def heartbeat_labels(app: Application, kind: str) -> dict[str, str]:
    """The labels silences and inhibition rules see on a heartbeat alert (`app` matches the
    Heroku monitor's label, so "a crashed dyno inhibits that app's missed heartbeat" is one rule)."""
    return {
        "source": "heartbeat",
        "service": app.name,
        "app": app.name,
        "env": "",
        "severity": "high",
        "alertname": "HeartbeatFailed" if kind == "heartbeat_fail" else "HeartbeatMissed",
    }


def alert_view(app: Application, alert: dict) -> AlertView:
    """The current state of an alert message, from the app and the alert's outbox row."""
    payload = alert["payload"]
    alerted_at = _parse_time(payload.get("alerted_at")) or alert["created_at"]
    last = _parse_time(payload.get("last_heartbeat"))
    if alert["kind"] == "heartbeat_fail":
        last = _parse_time(payload.get("received_at"))
    return AlertView(
        app_id=app.id,
        app_name=app.name,
        kind=alert["kind"],
        expected=expected_text(app.expected_interval, app.schedule, app.timezone),
        grace=format_duration(app.grace_period),
        last_seen_ago=format_duration((alerted_at - last).total_seconds()) if last else None,
        exit_code=payload.get("exit_code"),
        acked_by=payload.get("acked_by"),
        acked_at=_parse_time(payload.get("acked_at")),
        snoozed_by=payload.get("snoozed_by"),
        snoozed_until=_parse_time(payload.get("snoozed_until")),
        paused_by=payload.get("paused_by"),
        recovered_after=payload.get("recovered_after"),
    )


class HeartbeatNotifier(OutboxLoop):
    name = "notifier"
    # Heartbeat alerts a channel gets one by one within `storm_window`; further ones fold into one
    # summary message, updated in place, until none has folded into it for `storm_quiet`. This
    # catches rolling storms (apps going down one after another over minutes), not just alerts
    # that happen to share a delivery round.
    storm_threshold: int = 4
    storm_window: float = 60.0
    storm_quiet: float = 120.0
    # A summary is rewritten no more often than this (chat.update is Tier 3); alerts that arrive
    # meanwhile wait and go in the next update together.
    storm_update_interval: float = 2.0
    # How long one Slack call may wait for Pulser's budget before its alert is rescheduled.
    max_budget_wait: float = 1.5

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: AsyncWebClient,
        *,
        max_attempts: int = 8,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        on_outcome: Callable[[str, str], None] | None = None,
        storm_threshold: int | None = None,
        storm_quiet: float | None = None,
        worker: str | None = None,
        default_channel: str | None = None,
    ):
        super().__init__(listen)  # rows enqueued by another process (a `pulser sidecar`) wake us by NOTIFY
        self.pool = pool
        self.client = client
        self.max_attempts = max_attempts
        self.worker = worker  # named on the rows it claims, so they are taken over if it dies
        self.default_channel = default_channel  # where an alert goes while its own channel refuses us
        if storm_threshold is not None:
            self.storm_threshold = storm_threshold
        if storm_quiet is not None:
            self.storm_quiet = storm_quiet
        self._on_outcome = on_outcome or (lambda kind, outcome: None)
        self._lock = asyncio.Lock()
        self.last_delivery: datetime | None = None
        self._held = Suppressions(datetime.now(timezone.utc), [], [])  # reloaded each delivery round
        self._auth_refusals = 0  # Slack's token refusals since the last delivery

    async def deliver_due(self, limit: int = 500) -> int:
        # An outbox does not sleep on a spent Slack budget: past a short wait the row is
        # rescheduled (OverBudget), so one busy channel never holds the others' alerts.
        with waiting_at_most(self.max_budget_wait):
            return await self._deliver_round(limit)

    async def _deliver_round(self, limit: int) -> int:
        async with self._lock:
            rows = await notifications.claim_due(
                self.pool, kinds=notifications.HEARTBEAT_KINDS, limit=limit, worker=self.worker
            )
            if not rows:
                return 0
            # Silences and inhibition rules once per round, not once per alert of a storm.
            self._held = await Suppressions.load(self.pool, datetime.now(timezone.utc))
            storms, singles = await self._split_storms(rows)
            for channel, (group, ongoing) in storms.items():
                await self._deliver_storm(channel, group, ongoing)
            for row in singles:
                await self._deliver(row)
            return len(rows)

    async def _split_storms(
        self, rows: list[dict]
    ) -> tuple[dict[str, tuple[list[tuple[dict, Application]], dict | None]], list[dict]]:
        """Per channel: alerts beyond what it takes one by one this minute fold into its storm
        summary (the one already going, else a new one); everything else goes out one by one."""
        alerts = [r for r in rows if r["kind"] in notifications.ALERT_KINDS and r["app_id"]]
        if not alerts:
            return {}, rows
        apps = await applications.get_applications(self.pool, [r["app_id"] for r in alerts])
        now = datetime.now(timezone.utc)
        by_channel: dict[str, list[tuple[dict, Application]]] = {}
        for row in alerts:
            app = apps.get(row["app_id"])
            if app is not None and app.is_active and not (app.snoozed_until and app.snoozed_until > now):
                if await self._held.reason(self.pool, heartbeat_labels(app, row["kind"])) is not None:
                    continue  # delivered one by one below, where it is marked suppressed
                by_channel.setdefault(app.channel, []).append((row, app))
        storms: dict[str, tuple[list[tuple[dict, Application]], dict | None]] = {}
        for channel, group in by_channel.items():
            if self.storm_threshold <= 0:
                continue
            ongoing = await notifications.ongoing_heartbeat_storm(
                self.pool, channel, since=now - timedelta(seconds=self.storm_quiet)
            )
            if ongoing is None:
                recent = await notifications.heartbeat_alerts_sent_since(
                    self.pool, channel, since=now - timedelta(seconds=self.storm_window)
                )
                if recent + len(group) <= self.storm_threshold:
                    continue
                # A round that alone is a storm folds whole; otherwise the first ones of a rolling
                # storm still go out on their own.
                room = 0 if len(group) > self.storm_threshold else max(0, self.storm_threshold - recent)
                group = group[room:]
            storms[channel] = (group, ongoing)
        in_storm = {row["id"] for group, _ in storms.values() for row, _ in group}
        return storms, [r for r in rows if r["id"] not in in_storm]

    async def _deliver_storm(self, channel: str, group: list[tuple[dict, Application]], ongoing: dict | None) -> None:
        ids = [row["id"] for row, _ in group]
        try:
            if ongoing is not None:
                since = (datetime.now(timezone.utc) - ongoing["touched_at"]).total_seconds()
                if since < self.storm_update_interval:
                    # The summary changed a moment ago: these wait (one statement) and join the
                    # next rewrite, which takes every alert waiting for it at once.
                    await notifications.defer_many(
                        self.pool, ids, wait=timedelta(seconds=self.storm_update_interval - since),
                        reason=notifications.JOINS_STORM,
                    )
                    return
                joiners = await notifications.claim_storm_joiners(
                    self.pool, channel, worker=self.worker, within=timedelta(seconds=self.storm_update_interval)
                )
                if joiners:
                    joined = await applications.get_applications(self.pool, [r["app_id"] for r in joiners])
                    group = group + [(r, joined[r["app_id"]]) for r in joiners if r["app_id"] in joined]
                    ids = [row["id"] for row, _ in group]
                posted_channel, ts = ongoing["slack_channel"], ongoing["slack_ts"]
                names, recovered = await notifications.heartbeat_storm_apps(self.pool, posted_channel, ts)
                names = names + [app.name for _, app in group]
                await self.client.chat_update(channel=posted_channel, ts=ts, **storm_message(names, recovered=recovered))
                response = {"channel": posted_channel, "ts": ts}
            else:
                names = [app.name for _, app in group]
                response = await self.client.chat_postMessage(channel=channel, **storm_message(names))
        except (SlackApiError, OverBudget, OSError, asyncio.TimeoutError) as exc:
            # Back to pending, one by one: the next round groups them again.
            terms = {}
            if isinstance(exc, SlackApiError):
                terms = self._waiting_terms(_slack_error(exc), exc.response.headers if exc.response is not None else {})
            elif isinstance(exc, OverBudget):
                terms = {"not_before": timedelta(seconds=exc.retry_after), "count_attempt": False}
            for row, _ in group:
                await notifications.mark_retry(
                    self.pool, row["id"], f"storm post: {exc}", max_attempts=self.max_attempts, **terms
                )
            log.warning("notification.storm_failed", channel=channel, alerts=len(ids), error=str(exc))
            return
        now = datetime.now(timezone.utc)
        await notifications.mark_many_sent(
            self.pool, ids, channel=response["channel"], ts=response["ts"], patch={"storm": True, "alerted_at": now.isoformat()}
        )
        for row, _ in group:
            self._on_outcome(row["kind"], "sent")
        self.last_delivery = now
        log.warning("notification.storm", channel=channel, alerts=len(ids))

    async def _deliver(self, row: dict) -> None:
        bound = log.bind(notification_id=row["id"], kind=row["kind"], app_id=row["app_id"])
        try:
            outcome = await self._send(row)
        except SlackApiError as exc:
            error = _slack_error(exc)
            if error in CHANNEL_ERRORS and row["kind"] in notifications.ALERT_KINDS:
                await self._hold(row, error)
                self._on_outcome(row["kind"], "retrying")
                bound.warning("notification.held", error=error)
                return
            if error in PERMANENT_SLACK_ERRORS:
                await notifications.mark_failed(self.pool, row["id"], f"slack: {error}")
                retrying = False
            else:
                retrying = await notifications.mark_retry(
                    self.pool, row["id"], f"slack: {error}", max_attempts=self.max_attempts,
                    **self._waiting_terms(error, exc.response.headers if exc.response is not None else {}),
                )
            self._on_outcome(row["kind"], "retrying" if retrying else "failed")
            bound.warning("notification.slack_error", error=error, retrying=retrying)
            return
        except OverBudget as exc:
            # Pulser's Slack budget for this channel is spent for now: later, not a failure.
            await notifications.mark_retry(
                self.pool, row["id"], str(exc), max_attempts=self.max_attempts,
                not_before=timedelta(seconds=exc.retry_after), count_attempt=False,
            )
            self._on_outcome(row["kind"], "retrying")
            return
        except (OSError, asyncio.TimeoutError) as exc:
            retrying = await notifications.mark_retry(self.pool, row["id"], f"{type(exc).__name__}: {exc}", max_attempts=self.max_attempts)
            self._on_outcome(row["kind"], "retrying" if retrying else "failed")
            bound.warning("notification.network_error", error=f"{type(exc).__name__}: {exc}", retrying=retrying)
            return
        self._auth_refusals = 0
        self._on_outcome(row["kind"], outcome)
        bound.info("notification.delivered", outcome=outcome)

    async def _hold(self, row: dict, error: str) -> None:
        """Slack will not let us post in the app's channel (not invited, gone, archived). No retry
        of this alert fixes that now, an invitation will: the alert waits (tried again every
        HOLD_RETRY, and at once when Pulser joins the channel), and meanwhile the alert itself is
        posted to the default channel, saying why, so nothing is invisible."""
        first_time = not (row["last_error"] or "").startswith("slack: ")
        await notifications.mark_retry(
            self.pool, row["id"], f"slack: {error}", max_attempts=self.max_attempts,
            not_before=HOLD_RETRY, count_attempt=False,
        )
        app = await applications.get_application(self.pool, row["app_id"]) if row["app_id"] else None
        if not first_time or app is None or not self.default_channel or app.channel == self.default_channel:
            return
        message = alert_message(alert_view(app, row))
        note = (
            f":warning: Pulser cannot post in {channel_ref(app.channel)} (`{error}`), so this alert is here. "
            "Invite the Pulser app to that channel (it is posted there then) or change the app's channel."
        )
        message = {**message, "text": f"{message['text']} — {note}"}
        message.pop("blocks", None)
        async with self.pool.acquire() as conn:
            await notifications.enqueue_notifications(
                conn,
                [notifications.NewNotification("incident_post", None, {"channel": self.default_channel, "message": message})],
            )

    def _waiting_terms(self, error: str, headers: Any = None) -> dict[str, Any]:
        """How a Slack error that is not the alert's fault holds it: the token refused (a rotation,
        a secret remounted; the wait grows while refusals go on) or a rate limit (no sooner than
        Retry-After, the client having waited it out a few times already). Neither uses up one of
        the alert's tries, so neither ever gives it up. Any other error: ordinary backoff."""
        if error in AUTH_ERRORS:
            return {"not_before": timedelta(seconds=self._auth_wait()), "count_attempt": False}
        if error == "ratelimited":
            return {"not_before": timedelta(seconds=retry_after_seconds(headers or {})), "count_attempt": False}
        return {}

    def _auth_wait(self) -> float:
        """Seconds to hold an alert while Slack refuses the token: doubling with each refusal."""
        self._auth_refusals += 1
        return min(AUTH_PROBE_LAST, AUTH_PROBE_FIRST * 2 ** (self._auth_refusals - 1))

    async def _send(self, row: dict) -> str:
        """Deliver one row; returns 'sent' or 'suppressed'."""
        app = await applications.get_application(self.pool, row["app_id"]) if row["app_id"] else None
        if app is None:
            await notifications.mark_suppressed(self.pool, row["id"], "application deleted")
            return "suppressed"
        if row["kind"] in notifications.ALERT_KINDS:
            return await self._send_alert(app, row)
        if row["kind"] == "heartbeat_recovered":
            return await self._send_recovery(app, row)
        await notifications.mark_suppressed(self.pool, row["id"], f"unknown kind {row['kind']}")
        return "suppressed"

    async def _send_alert(self, app: Application, row: dict) -> str:
        now = datetime.now(timezone.utc)
        if not app.is_active:
            await notifications.mark_suppressed(self.pool, row["id"], "monitoring paused")
            return "suppressed"
        if app.snoozed_until is not None and app.snoozed_until > now:
            await notifications.mark_suppressed(self.pool, row["id"], f"snoozed until {app.snoozed_until.isoformat()}")
            return "suppressed"
        held = await self._held.reason(self.pool, heartbeat_labels(app, row["kind"]))
        if held is not None:
            await notifications.mark_suppressed(self.pool, row["id"], held)
            log.info("notification.held_back", app=app.name, by=held)
            return "suppressed"
        row = await notifications.merge_alert_state(self.pool, row["id"], {"alerted_at": now.isoformat()}) or row
        message = alert_message(alert_view(app, row))
        response = await self.client.chat_postMessage(channel=app.channel, **message)
        channel, ts = response["channel"], response["ts"]
        await notifications.mark_sent(self.pool, row["id"], channel=channel, ts=ts)
        await notifications.set_app_alert(self.pool, app.id, channel, ts)
        self.last_delivery = now
        return "sent"

    async def _send_recovery(self, app: Application, row: dict) -> str:
        alert = await notifications.outage_alert(self.pool, app.id, before_id=row["id"])
        if alert is None or alert["status"] != "sent" or not alert["slack_ts"]:
            await notifications.mark_suppressed(self.pool, row["id"], "no alert was posted for this outage")
            return "suppressed"
        recovered_at = _parse_time(row["payload"].get("received_at")) or datetime.now(timezone.utc)
        started = outage_started(alert) or recovered_at
        after = format_duration(max(0.0, (recovered_at - started).total_seconds()))
        if alert["payload"].get("storm"):
            # One summary stands for many apps: it is rewritten to show this one recovered (a
            # reply per recovery would be a message per app again, at one a second).
            names, recovered = await notifications.heartbeat_storm_apps(self.pool, alert["slack_channel"], alert["slack_ts"])
            await self.client.chat_update(
                channel=alert["slack_channel"], ts=alert["slack_ts"], **storm_message(names, recovered=recovered)
            )
            await notifications.mark_sent(self.pool, row["id"], channel=alert["slack_channel"], ts=alert["slack_ts"])
            return "sent"
        alert = await notifications.merge_alert_state(
            self.pool, alert["id"], {"recovered_at": recovered_at.isoformat(), "recovered_after": after}
        ) or alert
        message = alert_message(alert_view(app, alert))
        try:
            await self.client.chat_update(channel=alert["slack_channel"], ts=alert["slack_ts"], **message)
        except SlackApiError as exc:
            if _slack_error(exc) not in GONE_ERRORS:
                raise
            # The alert message was deleted (or is too old to edit): the recovery still has to
            # reach the channel, as a message of its own that shows the recovered state.
            posted = await self.client.chat_postMessage(channel=alert["slack_channel"], **message)
            await notifications.mark_sent(self.pool, alert["id"], channel=posted["channel"], ts=posted["ts"])
            await notifications.mark_sent(self.pool, row["id"], channel=posted["channel"], ts=posted["ts"])
            log.warning("notification.alert_message_lost", app=app.name, error=_slack_error(exc), reposted_ts=posted["ts"])
            self.last_delivery = datetime.now(timezone.utc)
            return "sent"
        reply = await self.client.chat_postMessage(
            channel=alert["slack_channel"], thread_ts=alert["slack_ts"], text=recovery_reply(app.name, after)
        )
        await notifications.mark_sent(self.pool, row["id"], channel=alert["slack_channel"], ts=reply["ts"])
        self.last_delivery = datetime.now(timezone.utc)
        return "sent"

    async def rerender(self, alert: dict) -> None:
        """Update an alert message in place from its current state (after a click)."""
        app = await applications.get_application(self.pool, alert["app_id"])
        if app is None or not alert["slack_ts"]:
            return
        await self.client.chat_update(channel=alert["slack_channel"], ts=alert["slack_ts"], **alert_message(alert_view(app, alert)))

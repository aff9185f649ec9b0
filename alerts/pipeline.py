"""The alert pipeline's decisions: group → silence/inhibit → route, one transaction per alert.

`process_envelope` is the ledger worker's processor for webhook sources: it parses the stored
delivery and ingests each alert. `ingest` holds a per-group-key advisory lock for its transaction,
so a firing and a resolved alert for one problem never interleave, and the partial unique index
(`incidents_one_firing_per_key`) makes a second open incident per key impossible even so.

What happens to an alert with key K (window = ALERT_GROUP_WINDOW_MINUTES):
- firing, K's incident is firing and was seen within the window → a repeat: count, last seen,
  severity (a prod spike bumps one level), messages updated in place after a debounce — at once,
  with a note in each posted message's thread, when the severity changed. The severity is the
  highest seen, or the latest one for alerts whose severity is a current state
  (`NormalizedAlert.severity_is_current`: Sentry metric alerts, Alertmanager labels);
- firing, K's incident resolved within the window → the same incident reopens (flapping stays one
  message);
- firing, K's incident is older than that → it closes as "expired" and a new incident opens;
- firing, nothing for K → a new incident: silenced or inhibited ones are recorded but held back,
  the rest get one message per matched route;
- resolved → K's firing incident resolves and its messages say so; silenced incidents record it too.

Nothing here talks to Slack: messages are rows with a due time that the notifier delivers.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, Callable, Mapping

import asyncpg
import structlog

from alerts.escalation import lifecycle
from alerts import matchers, routing
from alerts.normalized import NormalizedAlert, bump_severity, group_key, max_severity, severity_rank
from alerts.sources import SOURCES
from blocks.incidents import severity_lowered_reply
from storage import envelopes, incidents, notifications, routing_rules, silences
from storage.envelopes import Envelope
from storage.notifications import NewNotification
from storage.storms import StormPolicy

log = structlog.get_logger(__name__)

PRODUCTION = "production"
MAX_DEBOUNCE = timedelta(seconds=10)


@dataclass(frozen=True)
class PipelineSettings:
    default_channel: str
    group_window: timedelta = timedelta(minutes=60)
    # Repeats update a message no more often than this (a burst of 500 is a handful of updates).
    render_debounce: timedelta = timedelta(seconds=2)
    # A production incident with this many occurrences within spike_window gains one severity level.
    spike_count: int = 10
    spike_window: timedelta = timedelta(minutes=5)
    # When a channel's new incidents fold into one storm digest (None: never).
    storms: StormPolicy | None = StormPolicy()


@dataclass(frozen=True)
class Grouping:
    """Alertmanager's `group_by`: the alerts a rule matches that share these labels' values."""

    rule_id: int
    values: tuple[tuple[str, str], ...]  # (label, value) in the rule's order

    @classmethod
    def of(cls, rule: routing.RoutingRule, alert: NormalizedAlert) -> "Grouping":
        labels = matchers.alert_labels(alert)
        return cls(rule.id, tuple((label, labels.get(label, "")) for label in rule.group_by))

    @property
    def key(self) -> str:
        """The incident's group key: the rule and the values, hashed like a problem's key."""
        encoded = json.dumps(["group_by", self.rule_id, [list(v) for v in self.values]], separators=(",", ":"), ensure_ascii=False)
        return "group:" + hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    @property
    def title(self) -> str:
        shown = [value for _, value in self.values if value] or [f"rule {self.rule_id}"]
        return " · ".join(shown)

    def incident_alert(self, alert: NormalizedAlert) -> NormalizedAlert:
        """The alert as its group's incident sees it: the group's name as the title, the member's
        title first in the description, and the group's values as the fingerprint."""
        description = f"Latest: {alert.title}" + (f"\n{alert.description}" if alert.description else "")
        fingerprint = ", ".join(f"{label}={value}" for label, value in self.values)
        return dataclasses.replace(alert, title=self.title, description=description, fingerprint=fingerprint)


@dataclass(frozen=True)
class IngestResult:
    incident_id: int | None
    outcome: str  # opened | repeat | reopened | resolved | member_resolved | suppressed | ignored
    # The alert's own source and severity, for metrics (spike bumps are the incident's, not the alert's).
    source: str = ""
    severity: str = ""


class AlertPipeline:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: PipelineSettings,
        *,
        on_change: Callable[[], None] | None = None,
        on_outcome: Callable[[str], None] | None = None,
        on_alert: Callable[[str, str], None] | None = None,
    ):
        self.pool = pool
        self.settings = settings
        self._on_change = on_change or (lambda: None)
        self._on_outcome = on_outcome or (lambda outcome: None)
        # (source, severity) per alert once its transaction committed, so a retried row counts once.
        self._on_alert = on_alert or (lambda source, severity: None)

    async def process_envelope(self, envelope: Envelope) -> bool:
        """Parse a recorded webhook delivery and ingest its alerts (the ledger worker calls this).

        One transaction for the alerts and the ledger's "processed" mark: a crash in between can
        neither lose the alerts nor count them twice when the row is retried. Keys are locked in
        sorted order (a stable sort keeps one key's alerts in sender order), so two envelopes
        sharing keys cannot deadlock."""
        source = SOURCES[envelope.source]
        parsed = source.parse(envelope.headers or {}, envelope.payload, received_at=envelope.received_at)
        alerts = sorted(parsed, key=group_key)
        async with self.pool.acquire() as conn, conn.transaction():
            results = [await self._ingest(conn, alert, envelope.received_at) for alert in alerts]
            await envelopes.mark_processed(conn, envelope.id)
            if _changed(results):
                await notifications.announce(conn)  # wakes notifiers in other processes at commit
        self._after(results)
        return True  # marked processed with its effects

    async def ingest(self, alert: NormalizedAlert, *, now: datetime | None = None) -> IngestResult:
        """Apply one alert received at `now` (server receipt time: the truth for windows)."""
        async with self.pool.acquire() as conn, conn.transaction():
            result = await self._ingest(conn, alert, now or datetime.now(timezone.utc))
            if _changed([result]):
                await notifications.announce(conn)
        self._after([result])
        return result

    def _after(self, results: list[IngestResult]) -> None:
        for result in results:
            self._on_outcome(result.outcome)
            self._on_alert(result.source, result.severity)
        if _changed(results):
            self._on_change()

    async def ingest_in(
        self, conn: asyncpg.Connection, alert: NormalizedAlert, *, now: datetime, default_channel: str | None = None
    ) -> IngestResult:
        """Ingest inside the caller's transaction (the Heroku monitor saves its state in the same
        one); the caller calls `after_commit` with the results once it has committed."""
        result = await self._ingest(conn, alert, now, default_channel)
        if _changed([result]) and _read_once.get() is None:  # a batch announces once, at its end
            await notifications.announce(conn)
        return result

    def after_commit(self, results: list[IngestResult]) -> None:
        self._after(results)

    def notify_change(self) -> None:
        """Something outside the pipeline changed an incident's messages: wake the notifier."""
        self._on_change()

    async def _ingest(
        self, conn: asyncpg.Connection, alert: NormalizedAlert, now: datetime, default_channel: str | None = None
    ) -> IngestResult:
        result = await self._decide(conn, alert, now, default_channel)
        return dataclasses.replace(result, source=alert.source, severity=alert.severity)

    async def _decide(
        self, conn: asyncpg.Connection, alert: NormalizedAlert, now: datetime, default_channel: str | None = None
    ) -> IngestResult:
        channel = default_channel or self.settings.default_channel
        member = alert
        grouping = await self._grouping(conn, alert)
        key = group_key(alert) if grouping is None else grouping.key
        if grouping is not None:
            alert = grouping.incident_alert(alert)  # the group's title; the member keeps its own
        await incidents.lock_group_key(conn, key)
        current = await incidents.latest_for_key(conn, key)
        if grouping is not None:
            return await self._decide_grouped(conn, current, key, alert, member, now, channel)
        if alert.status == "resolved":
            return await self._resolve(conn, current, alert, now)
        if current is not None and current["status"] == "firing" and now - current["last_seen"] <= self.settings.group_window:
            return await self._repeat(conn, current, alert, now, channel)
        if current is not None and current["status"] == "resolved" and _resolved_within(current, now, self.settings.group_window):
            return await self._reopen(conn, current, alert, now)
        if current is not None and current["status"] == "firing":
            await self._expire(conn, current, now)
        return await self._open(conn, key, alert, now, channel)

    async def _decide_grouped(
        self, conn: asyncpg.Connection, current: dict | None, key: str, alert: NormalizedAlert,
        member: NormalizedAlert, now: datetime, channel: str,
    ) -> IngestResult:
        """An alert of a `group_by` rule: its incident is the group's; the alert is one member.
        A member resolving resolves the incident only when no member still fires."""
        member_key = group_key(member)
        if member.status == "resolved":
            if current is None:
                return IngestResult(None, "ignored")
            await incidents.upsert_member(conn, current["id"], member_key, member, status="resolved", now=now)
            if current["status"] == "firing" and await incidents.firing_members(conn, current["id"]) == 0:
                return await self._resolve(conn, current, alert, now)
            await incidents.add_occurrence(conn, current["id"], received_at=now, status="resolved", alert=member.to_json_dict())
            if current["status"] == "firing":  # one member less firing: the message shows it
                await incidents.update_incident(conn, current["id"], {"last_seen": max(now, current["last_seen"])}, now=now)
                await incidents.render_now(conn, current["id"], now=now)
            return IngestResult(current["id"], "member_resolved")
        if current is not None and current["status"] == "firing" and now - current["last_seen"] <= self.settings.group_window:
            result = await self._repeat(conn, current, alert, now, channel)
        elif current is not None and current["status"] == "resolved" and _resolved_within(current, now, self.settings.group_window):
            result = await self._reopen(conn, current, alert, now)
        else:
            if current is not None and current["status"] == "firing":
                await self._expire(conn, current, now)
            result = await self._open(conn, key, alert, now, channel)
        if result.incident_id is not None:
            await incidents.upsert_member(conn, result.incident_id, member_key, member, status="firing", now=now)
        return result

    async def _grouping(self, conn: asyncpg.Connection, alert: NormalizedAlert) -> "Grouping | None":
        """The group of an alert whose first matching routing rule has `group_by`, else None."""
        rules = await self._rules(conn)
        for rule in sorted(rules, key=lambda r: r.position):
            if routing.matches(rule, alert, alert.severity):
                return Grouping.of(rule, alert) if rule.group_by else None
        return None

    # --- the four paths ----------------------------------------------------------------------------

    async def _open(
        self, conn: asyncpg.Connection, key: str, alert: NormalizedAlert, now: datetime, default_channel: str
    ) -> IngestResult:
        severity = alert.severity
        labels = matchers.alert_labels(alert, severity)
        suppressed_by = await self._suppression(conn, key, labels, now)
        routes = await self._routes(conn, alert, severity, default_channel)
        auto_close = [r.auto_close_minutes for r in routes if r.auto_close_minutes]
        incident = await incidents.insert_incident(
            conn,
            {
                "group_key": key,
                "source": alert.source,
                "service": alert.service,
                "env": alert.env,
                "fingerprint": alert.fingerprint,
                "title": alert.title,
                "description": alert.description,
                "link": alert.link,
                "labels": labels,
                "source_severity": severity,
                "severity": severity,
                "first_seen": now,
                "last_seen": now,
                "spike_window_start": now,
                "last_alert": alert.to_json_dict(),
                "suppressed_by": suppressed_by,
                "auto_close_minutes": min(auto_close) if auto_close else None,
                "default_channel": default_channel,
            },
        )
        await incidents.add_occurrence(conn, incident["id"], received_at=now, status="firing", alert=alert.to_json_dict())
        if suppressed_by is None:
            await incidents.add_messages(
                conn, incident["id"], [dataclasses.asdict(r) for r in routes], due_at=now, severity=severity,
                storms=self.settings.storms,
            )
            await lifecycle.start_policies(conn, incident["id"], routes, now=now)
        log.info(
            "incident.opened", incident_id=incident["id"], source=alert.source, service=alert.service,
            severity=severity, suppressed_by=suppressed_by, channels=[r.channel for r in routes],
        )
        return IngestResult(incident["id"], "suppressed" if suppressed_by else "opened")

    async def _repeat(
        self, conn: asyncpg.Connection, current: dict, alert: NormalizedAlert, now: datetime, default_channel: str
    ) -> IngestResult:
        changes = self._occurrence_changes(current, alert, now)
        severity = changes["severity"]
        labels = matchers.alert_labels(alert, severity)
        changes["labels"] = labels
        notify_now = False
        if current["suppressed_by"] is not None:
            still = await self._suppression(conn, current["group_key"], labels, now)
            if still != current["suppressed_by"]:
                changes["suppressed_by"] = still
        incident = await incidents.update_incident(conn, current["id"], changes, now=now)
        assert incident is not None
        await incidents.add_occurrence(conn, incident["id"], received_at=now, status="firing", alert=alert.to_json_dict())
        if incident["suppressed_by"] is None:
            added = await self._add_routed_messages(conn, current, alert, severity, default_channel, now)
            notify_now = added > 0 or severity != current["severity"]
        if notify_now:
            await incidents.render_now(conn, incident["id"], now=now)
        else:
            await incidents.schedule_render(conn, incident["id"], now=now, debounce=self.debounce_for(incident["count"]))
        await self._note_severity_change(conn, current, incident, alert)
        return IngestResult(incident["id"], "repeat")

    async def _add_routed_messages(
        self, conn: asyncpg.Connection, current: dict, alert: NormalizedAlert, severity: str, default_channel: str,
        now: datetime,
    ) -> int:
        """Messages for routes the incident has no message for yet; how many were added.

        Routes are decided when an incident opens; a severity that rose (or a silence that ended)
        may now match more of them, and those channels get their message. A severity that fell
        adds none and removes none: the channels that have the incident keep following it (their
        messages show the new severity), and a channel that never saw it is not told mid-way."""
        was_posted = current["suppressed_by"] is None
        if was_posted and severity_rank(severity) < severity_rank(current["severity"]):
            return 0
        routes = await self._routes(conn, alert, severity, current["default_channel"] or default_channel)
        await lifecycle.start_policies(conn, current["id"], routes, now=now)
        return await incidents.add_messages(
            conn, current["id"], [dataclasses.asdict(r) for r in routes], due_at=now, severity=severity,
            storms=self.settings.storms,
        )

    async def _note_severity_change(
        self, conn: asyncpg.Connection, before: dict, after: dict, alert: NormalizedAlert
    ) -> None:
        """A reply in the thread of each posted message when the severity went *down*, saying from
        what to what and why: the message only shows the new label, and whoever is on the page
        should not have to notice that it quietly went from critical to medium. A rise needs no
        reply: the message re-renders at once, and newly matching routes and mentions page anew."""
        if severity_rank(after["severity"]) >= severity_rank(before["severity"]):
            return
        reply = severity_lowered_reply(before["severity"], after["severity"], source=alert.source)
        rows = [
            NewNotification("incident_reply", None, {"message_id": message["id"], "message": reply}, after["id"])
            for message in await incidents.messages_for(conn, after["id"], escalation_posts=False)
            if message["slack_ts"]
        ]
        await notifications.enqueue_notifications(conn, rows)
        log.info(
            "incident.severity_lowered", incident_id=after["id"], before=before["severity"], after=after["severity"],
            replies=len(rows),
        )

    async def _reopen(self, conn: asyncpg.Connection, current: dict, alert: NormalizedAlert, now: datetime) -> IngestResult:
        changes = self._occurrence_changes(current, alert, now)
        changes.update(
            status="firing",
            resolved_by=None,
            resolved_at=None,
            resolve_reason=None,
            acked_by=None,
            acked_at=None,
            reopened_count=current["reopened_count"] + 1,
        )
        incident = await incidents.update_incident(conn, current["id"], changes, now=now)
        assert incident is not None
        await incidents.add_occurrence(conn, incident["id"], received_at=now, status="firing", alert=alert.to_json_dict())
        await incidents.render_now(conn, incident["id"], now=now)
        await incidents.rearm_escalation(conn, incident["id"], now=now)
        await lifecycle.incident_reopened(conn, incident, now=now)
        await self._note_severity_change(conn, current, incident, alert)
        log.info("incident.reopened", incident_id=incident["id"], times=incident["reopened_count"])
        return IngestResult(incident["id"], "reopened")

    async def _resolve(self, conn: asyncpg.Connection, current: dict | None, alert: NormalizedAlert, now: datetime) -> IngestResult:
        if current is None:
            return IngestResult(None, "ignored")
        await incidents.add_occurrence(conn, current["id"], received_at=now, status="resolved", alert=alert.to_json_dict())
        if current["status"] != "firing":
            return IngestResult(current["id"], "ignored")
        await incidents.update_incident(
            conn,
            current["id"],
            {"status": "resolved", "resolved_at": now, "resolve_reason": "source", "resolved_by": None, "last_seen": now},
            now=now,
        )
        await incidents.stop_escalation(conn, current["id"])
        await lifecycle.incident_resolved(conn, current, by=f"the source ({current['source']})", now=now)
        await incidents.render_now(conn, current["id"], now=now)
        log.info("incident.resolved", incident_id=current["id"], reason="source")
        return IngestResult(current["id"], "resolved")

    async def _expire(self, conn: asyncpg.Connection, current: dict, now: datetime) -> None:
        await incidents.update_incident(
            conn, current["id"], {"status": "resolved", "resolved_at": now, "resolve_reason": "expired"}, now=now
        )
        await incidents.stop_escalation(conn, current["id"])
        await lifecycle.incident_resolved(conn, current, by="expiry", now=now)
        await incidents.render_now(conn, current["id"], now=now)

    # --- helpers -------------------------------------------------------------------------------------

    def debounce_for(self, count: int) -> timedelta:
        """How long repeats wait before the message shows them: the base debounce at first, one
        more base step per 20 occurrences, at most 10 s — a storm's message still shows the count
        within seconds, but a few busy incidents do not spend Slack's chat.update budget (about 50 a
        minute per workspace) on counts nobody can read that fast."""
        base = self.settings.render_debounce
        return min(max(base * (1 + count // 20), base), MAX_DEBOUNCE) if base else base

    def _occurrence_changes(self, current: dict, alert: NormalizedAlert, now: datetime) -> dict:
        """Count, last seen, latest text, and the severity (spike bump included) after one more occurrence.

        The source's severity is the highest seen — an issue's warning-level event does not make it
        less bad — unless the alert's severity is a current state (`severity_is_current`): then the
        latest one counts, down as well as up. A spike's bump stays on top of either."""
        window_start, window_count = current["spike_window_start"], current["spike_window_count"] + 1
        if now - window_start > self.settings.spike_window:
            window_start, window_count = now, 1
        if alert.severity_is_current:
            source_severity = alert.severity
        else:
            source_severity = max_severity(current["source_severity"], alert.severity)
        spiked_at = current["spiked_at"]
        if spiked_at is None and alert.env == PRODUCTION and window_count >= self.settings.spike_count:
            spiked_at = now
            log.warning("incident.spike", incident_id=current["id"], count=window_count)
        severity = bump_severity(source_severity) if spiked_at is not None else source_severity
        if not alert.severity_is_current:
            severity = max_severity(severity, current["severity"])
        return {
            "count": current["count"] + 1,
            "last_seen": max(now, current["last_seen"]),
            "title": alert.title,
            "description": alert.description,
            "link": alert.link or current["link"],
            "last_alert": alert.to_json_dict(),
            "source_severity": source_severity,
            "severity": severity,
            "spike_window_start": window_start,
            "spike_window_count": window_count,
            "spiked_at": spiked_at,
        }

    async def _routes(
        self, conn: asyncpg.Connection, alert: NormalizedAlert, severity: str, default_channel: str | None = None
    ) -> list[routing.Route]:
        rules = await self._rules(conn)
        return routing.route(rules, alert, severity, default_channel or self.settings.default_channel)

    async def _suppression(self, conn: asyncpg.Connection, key: str, labels: Mapping[str, str], now: datetime) -> str | None:
        batch = _read_once.get()
        if batch is not None:
            return await batch.suppressions.reason(conn, labels, exclude_group_key=key)
        return await suppression(conn, labels, now, exclude_group_key=key)

    async def _rules(self, conn: asyncpg.Connection) -> list[routing.RoutingRule]:
        batch = _read_once.get()
        if batch is not None:
            return batch.rules
        # Read per alert, not cached: a rule edited in Slack routes the very next alert.
        return [routing.RoutingRule.from_row(row) for row in await routing_rules.list_rules(conn)]

    @contextlib.asynccontextmanager
    async def reading_once(self, conn: asyncpg.Connection, now: datetime) -> AsyncIterator[None]:
        """Within this block (one transaction ingesting many alerts: the watcher's claim of a
        thousand overdue apps), routing rules, silences and inhibition rules are read once, not
        twice or thrice per alert. Inhibiting incidents are still looked up per alert: the batch
        may open the very incident that inhibits the next alert. The notifiers are woken once, at
        the end, rather than once per alert."""
        token = _read_once.set(_ReadOnce(
            rules=[routing.RoutingRule.from_row(row) for row in await routing_rules.list_rules(conn)],
            suppressions=await Suppressions.load(conn, now),
        ))
        try:
            yield
            await notifications.announce(conn)
        finally:
            _read_once.reset(token)

    async def release_suppressed(self, *, now: datetime | None = None) -> int:
        """Post incidents whose silence ended or whose inhibiting incident resolved (the sweep calls
        this; a repeat does the same check on its own)."""
        now = now or datetime.now(timezone.utc)
        released = 0
        for candidate in await incidents.firing_suppressed(self.pool):
            async with self.pool.acquire() as conn, conn.transaction():
                await incidents.lock_group_key(conn, candidate["group_key"])
                current = await incidents.get_incident(conn, candidate["id"], for_update=True)
                if current is None or current["status"] != "firing" or current["suppressed_by"] is None:
                    continue
                still = await self._suppression(conn, current["group_key"], current["labels"], now)
                if still == current["suppressed_by"]:
                    continue
                await incidents.update_incident(conn, current["id"], {"suppressed_by": still}, now=now)
                if still is None:
                    alert = NormalizedAlert.from_json_dict(current["last_alert"])
                    routes = await self._routes(conn, alert, current["severity"], current["default_channel"])
                    await incidents.add_messages(
                        conn, current["id"], [dataclasses.asdict(r) for r in routes], due_at=now,
                        severity=current["severity"], storms=self.settings.storms,
                    )
                    await lifecycle.start_policies(conn, current["id"], routes, now=now)
                    await notifications.announce(conn)
                    released += 1
                    log.info("incident.released", incident_id=current["id"], was=current["suppressed_by"])
        if released:
            self._on_change()
        return released


@dataclass(frozen=True)
class Suppressions:
    """The silences active at `now` and the inhibition rules, read once, for a caller that checks
    many label sets against them without reading them again for each."""

    now: datetime
    silences: list[dict]
    inhibition_rules: list[dict]

    @classmethod
    async def load(cls, conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> "Suppressions":
        return cls(now, await silences.active_silences(conn, now), await silences.list_inhibition_rules(conn))

    async def reason(
        self, conn: asyncpg.Connection | asyncpg.Pool, labels: Mapping[str, str], *, exclude_group_key: str = ""
    ) -> str | None:
        """'silence:<id>' or 'inhibition:<id>' when an alert with these labels must be held back,
        else None. Only an inhibition rule whose target matches costs a query (its source incidents)."""
        silence = matchers.active_silence(self.silences, labels, self.now)
        if silence is not None:
            return f"silence:{silence['id']}"
        for rule in self.inhibition_rules:
            subset = matchers.inhibition_lookup(rule, labels)
            if subset is None:
                continue
            for candidate in await incidents.firing_with_labels(conn, subset, exclude_group_key=exclude_group_key):
                if matchers.inhibits(rule, candidate["labels"], labels):
                    return f"inhibition:{rule['id']}"
        return None


async def suppression(
    conn: asyncpg.Connection | asyncpg.Pool, labels: Mapping[str, str], now: datetime, *, exclude_group_key: str = ""
) -> str | None:
    """Why one alert must be held back (see `Suppressions.reason`), reading the silences and rules
    now — an alert opening an incident must see a silence created a moment ago."""
    return await (await Suppressions.load(conn, now)).reason(conn, labels, exclude_group_key=exclude_group_key)


@dataclass(frozen=True)
class _ReadOnce:
    rules: list[routing.RoutingRule]
    suppressions: Suppressions


# Set by `AlertPipeline.reading_once` for the task ingesting a batch; other tasks read as ever.
_read_once: contextvars.ContextVar[_ReadOnce | None] = contextvars.ContextVar("pipeline_read_once", default=None)


def _changed(results: list[IngestResult]) -> bool:
    return any(r.outcome != "ignored" for r in results)


def _resolved_within(incident: dict, now: datetime, window: timedelta) -> bool:
    resolved_at = incident["resolved_at"]
    return (
        resolved_at is not None
        and incident["resolve_reason"] != "expired"
        and now - resolved_at <= window
    )

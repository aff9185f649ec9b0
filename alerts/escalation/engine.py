"""Walks incidents through their escalation policies and people through their notification rules.

Time drives it: every process runs it as a loop that wakes each second (and on NOTIFY, when an
incident was just posted), so a policy's first step goes out at once. Each due run is taken in its own
transaction with the incident locked: the steps up to the next wait are taken (Slack posts and
outbound deliveries are outbox rows written here, under idempotency keys), the run advances, and
all of it commits together. An acknowledged or resolved incident stops its runs in the transaction
that acknowledges or resolves it (`alerts.escalation.lifecycle`), which also tells every outbound
channel that was paged (PagerDuty acknowledges and resolves, the GitHub issue is closed); a run
found due for such an incident stops too. A snoozed incident's runs wait for the snooze to end.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import asyncpg
import structlog

from alerts.escalation.policies import describe_step
from alerts.normalized import severity_at_least
from alerts.outbound.channels import KINDS
from alerts.outbound.loop import OutboxLoop
from alerts.routing import Route
from storage import audit, escalation, incidents, notifications, outbound
from storage.storms import StormPolicy

log = structlog.get_logger(__name__)

# A policy without waits is repeated no sooner than this (it would page in a tight loop otherwise).
REPEAT_AT_LEAST = timedelta(minutes=1)
# How a person who has set no notification rules is reached: a Slack DM, at once.
DEFAULT_RULES = ({"method": "slack_dm", "delay_minutes": 0},)

OnCall = Callable[[asyncpg.Connection, str, datetime], Awaitable[list[str]]]


async def _no_schedules(conn: asyncpg.Connection, schedule: str, at: datetime) -> list[str]:
    raise LookupError(f"no schedule is called {schedule!r}")


class EscalationEngine(OutboxLoop):
    name = "escalation_engine"

    def __init__(self, pool: asyncpg.Pool, *, on_call: OnCall | None = None, storms: StormPolicy | None = None,
                 on_enqueued: Callable[[], None] | None = None,
                 listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None):
        super().__init__(listen)
        self.pool = pool
        self.on_call = on_call or _no_schedules
        self.storms = storms
        self._on_enqueued = on_enqueued or (lambda: None)

    # --- time ----------------------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        done = await self.run_due()
        return done["escalation_steps"] + done["personal_pages"]

    async def run_due(self, *, now: datetime | None = None) -> dict[str, int]:
        """Take every due step of every run, then every due personal rule."""
        now = now or datetime.now(timezone.utc)
        steps = await self._each_due(escalation.claim_due_runs, self._advance, now, batch=20)
        pages = await self._each_due(escalation.claim_due_pages, self._advance_page, now, batch=50)
        if steps or pages:
            self._on_enqueued()
        return {"escalation_steps": steps, "personal_pages": pages}

    async def _each_due(self, claim, advance, now: datetime, *, batch: int) -> int:
        """Claim due rows `batch` at a time, each batch in one transaction with what it causes."""
        taken = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                due = await claim(conn, now=now, limit=batch)
                this_batch = [await advance(conn, row, now) for row in due]
            taken += sum(this_batch)
            # A batch that took nothing may be rows whose incidents are busy: the next round retries them.
            if len(due) < batch or not any(this_batch):
                return taken

    async def _advance(self, conn: asyncpg.Connection, run: dict, now: datetime) -> int:
        incident = await incidents.lock_unless_busy(conn, run["incident_id"])
        if incident is incidents.BUSY:  # being acked or resolved right now: the run stays due
            return 0
        if incident is None or incident["status"] != "firing" or incident["acked_at"] is not None:
            await escalation.advance_run(conn, run["id"], next_position=run["next_position"], round=run["round"],
                                         due_at=None, status="stopped", now=now)
            return 0
        if incident["snoozed_until"] is not None and incident["snoozed_until"] > now:
            await escalation.advance_run(conn, run["id"], next_position=run["next_position"], round=run["round"],
                                         due_at=incident["snoozed_until"], status="active", now=now)
            return 0
        policy = await escalation.get_policy(conn, run["policy_id"])
        steps = policy["steps"] if policy else []
        position, round_, taken = run["next_position"], run["round"], 0
        while True:
            if position > len(steps):
                if round_ >= (policy["repeat"] if policy else 0) or not steps:
                    await escalation.advance_run(conn, run["id"], next_position=position, round=round_, due_at=None,
                                                 status="finished", now=now)
                    return taken
                round_, position = round_ + 1, 1
                if not any(s["kind"] == "wait" for s in steps):
                    await escalation.advance_run(conn, run["id"], next_position=1, round=round_,
                                                 due_at=now + REPEAT_AT_LEAST, status="active", now=now)
                    return taken
            step = steps[position - 1]
            position += 1
            if step["kind"] == "wait":
                await escalation.advance_run(conn, run["id"], next_position=position, round=round_,
                                             due_at=now + timedelta(minutes=step["wait_minutes"]), status="active", now=now)
                return taken
            if step["min_severity"] and not severity_at_least(incident["severity"], step["min_severity"]):
                continue
            label = f"{policy['name']} step {step['position']}" + (f", round {round_ + 1}" if round_ else "")
            outcome = await self._take(conn, incident, step, run, round_, label, now)
            await audit.record_action(
                conn, actor="system", action="incident.escalation_step", target_type="incident",
                target_id=incident["id"],
                details={"policy": policy["name"], "step": step["position"], "round": round_ + 1,
                         "what": describe_step(step, await _channel_names(conn, step)), "outcome": outcome},
            )
            taken += 1

    async def _take(self, conn: asyncpg.Connection, incident: dict, step: dict, run: dict, round_: int, label: str,
                    now: datetime) -> str:
        """Do one step; a line for the timeline saying what happened."""
        kind, target = step["kind"], step["target"]
        key = f"run:{run['id']}:r{round_}:s{step['position']}"
        if kind == "outbound":
            channel = await outbound.get_channel(conn, step["channel_id"])
            if channel is None:
                return "the outbound channel no longer exists"
            paged_before = step["channel_id"] in await outbound.channels_paged(conn, incident["id"])
            action = "escalate" if paged_before else "trigger"
            if action not in KINDS[channel["kind"]].actions:
                action = "trigger"
            await outbound.enqueue(conn, key=key, channel_id=channel["id"], incident_id=incident["id"], action=action,
                                   severity=incident["severity"], reason=label, now=now)
            return f"queued for {channel['name']}"
        if kind == "slack_channel":
            return await self._post_in_channel(conn, incident, target, step["mention"], now)
        if kind == "user_group":
            routed = [m for m in await incidents.messages_for(conn, incident["id"], escalation_posts=False) if m["slack_ts"]]
            if not routed:
                await self._post_in_channel(conn, incident, incident["default_channel"], target, now)
                return f"mentioned in {incident['default_channel']}"
            for message in routed:
                await incidents.add_escalation_post(conn, message, target=target, level=round_ + 1, due_at=_due(now))
            await notifications.announce(conn)
            return f"mentioned in {len(routed)} channel(s)"
        if kind == "user":
            started = await escalation.start_page(conn, incident["id"], target, reason=label, now=now)
            return "paging by their notification rules" if started else "already being paged"
        # oncall
        try:
            people = await self.on_call(conn, target, now)
        except LookupError as exc:
            return f"could not page: {exc}"
        if not people:
            return f"nobody is on call for {target}"
        for person in people:
            await escalation.start_page(conn, incident["id"], person, reason=f"{label}: on call for {target}", now=now)
        return "paging " + ", ".join(f"<@{p}>" for p in people)

    async def _post_in_channel(self, conn: asyncpg.Connection, incident: dict, channel: str, mention: str | None,
                               now: datetime) -> str:
        due = _due(now)
        existing = [m for m in await incidents.messages_for(conn, incident["id"], escalation_posts=False) if m["channel"] == channel]
        if existing and existing[0]["slack_ts"]:
            await incidents.add_escalation_post(conn, existing[0], target=mention, level=1, due_at=due)
            outcome = f"posted again in {channel}"
        else:
            route = Route(rule_id=None, channel=channel, mention=mention, mention_min_severity="info")
            await incidents.add_messages(conn, incident["id"], [dataclasses.asdict(route)], due_at=due,
                                         severity=incident["severity"], storms=self.storms)
            outcome = f"posted in {channel}"
        await notifications.announce(conn)
        return outcome

    async def _advance_page(self, conn: asyncpg.Connection, page: dict, now: datetime) -> int:
        """Take the person's next notification rule and schedule the one after it."""
        incident = await incidents.lock_unless_busy(conn, page["incident_id"])
        if incident is incidents.BUSY:
            return 0
        if incident is None or incident["status"] != "firing" or incident["acked_at"] is not None:
            await escalation.advance_page(conn, page["id"], next_position=page["next_position"], due_at=None, status="stopped")
            return 0
        rules = await escalation.notification_rules(conn, page["user_id"]) or [
            {"position": i, **r} for i, r in enumerate(DEFAULT_RULES, start=1)
        ]
        position = page["next_position"]
        taken = 0
        while position <= len(rules):
            rule = rules[position - 1]
            due = page["created_at"] + timedelta(minutes=rule["delay_minutes"])
            if due > now:
                await escalation.advance_page(conn, page["id"], next_position=position, due_at=due, status="active")
                return taken
            await self.reach(conn, page["user_id"], rule["method"], incident=incident, reason=page["reason"],
                             key=f"page:{page['id']}:r{position}", now=now)
            taken += 1
            position += 1
        await escalation.advance_page(conn, page["id"], next_position=position, due_at=None, status="finished")
        return taken

    async def reach(self, conn: asyncpg.Connection, user_id: str, method: str, *, incident: dict | None, reason: str,
                    key: str, now: datetime) -> int | None:
        """One delivery to one person by one method; a delivery that cannot even be tried (no phone
        number, no SMS channel) is written as failed, so the timeline and /health show why."""
        severity = incident["severity"] if incident else "info"
        incident_id = incident["id"] if incident else None
        action = "trigger" if incident else "test"
        if method == "slack_dm":
            return await outbound.enqueue(conn, key=key, channel_id=None, incident_id=incident_id, action=action,
                                          severity=severity, recipient=user_id, reason=reason, now=now, method=method)
        contact = await escalation.contacts(conn, user_id)
        kind, address, what = ("twilio", contact["phone"], "phone number") if method == "sms" else ("email", contact["email"], "e-mail address")
        channel = await outbound.first_channel_of_kind(conn, kind)
        delivery_id = await outbound.enqueue(conn, key=key, channel_id=channel["id"] if channel else None,
                                             incident_id=incident_id, action=action, severity=severity,
                                             recipient=address or user_id, reason=reason, now=now, method=method)
        problem = None
        if channel is None:
            problem = f"no {'Twilio' if kind == 'twilio' else 'e-mail'} channel is set up, so {method} cannot be sent"
        elif not address:
            problem = f"<@{user_id}> has no {what}: they can add one with /pulser me"
        if problem and delivery_id is not None:
            await outbound.failed(conn, delivery_id, error=problem, now=now)
        return delivery_id


async def _channel_names(conn: asyncpg.Connection, step: dict) -> dict[int, str]:
    if step["kind"] != "outbound":
        return {}
    channel = await outbound.get_channel(conn, step["channel_id"])
    return {channel["id"]: channel["name"]} if channel else {}


def _due(now: datetime) -> datetime:
    """When a Slack message a step writes is due: at once, and never later than the real present
    (a sweep that runs late, or a test that names a later moment, must not hold it back)."""
    return min(now, datetime.now(timezone.utc))

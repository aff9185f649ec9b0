"""Platform events: what CI, deploys, error-rate monitors, scheduled tasks and people report, posted
to the channel routed for their type; and the audit of every interactive action, as events too.

    POST /events
    Authorization: Bearer <PULSER_WEBHOOK_TOKEN>
    {
      "event_type":    "deploy",                      # ci | deploy | error_rate | scheduled_task | manual
      "status":        "started",                     # ci: passed|failed; deploy: started|completed|failed;
                                                      # error_rate: exceeded|recovered; scheduled_task:
                                                      # completed|failed; manual: any short text
      "service":       "billing-api",
      "env":           "prod",                        # "prod" → "production"
      "severity":      "high",                        # default: high for failures, info otherwise
      "title":         "Deploy of billing-api v42",   # default: built from type, service and status
      "link":          "https://ci.example.com/42",   # http(s)
      "occurred_at":   "2026-11-23T02:00:00Z",        # default: receipt time
      "deployment_id": "billing-api-v42",             # or "correlation": events sharing it share one message
      "details":       {"version": "v42"},            # object of strings, shown as fields
      "actor":         "github-actions",              # who sent it (shown)
      "event_id":      "deploy-42-started"            # idempotency: a replay is a no-op
    }

Events with the same type and correlation form a chain with one Slack message, updated in place
(a deployment's started → completed/failed, with its duration); a new event of the chain takes the
message over. Failures carry Ack and Investigate buttons; clicks land in the event's details and
in the audit. GitHub deliveries (`workflow_run`, `deployment_status`) become ci and deploy events
besides their alerts (posted only where ci/deploy have a channel of their own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import asyncpg
import structlog

from alerts.applications import CHANNEL, ValidationError
from alerts.normalized import SEVERITIES
from alerts.sources import github
from alerts.sources.common import (
    PayloadError,
    header,
    normalize_env,
    optional_text,
    parse_timestamp,
    require_object,
    require_text,
)
from blocks.events import EVENT_TYPES, EventView, TimelineStep, type_name
from storage import audit, envelopes, notifications
from storage import platform_events as store
from storage.envelopes import Envelope

log = structlog.get_logger(__name__)

ACTION = store.ACTION
STATUSES: dict[str, tuple[str, ...] | None] = {
    "ci": ("passed", "failed"),
    "deploy": ("started", "completed", "failed"),
    "error_rate": ("exceeded", "recovered"),
    "scheduled_task": ("completed", "failed"),
    "manual": None,  # any short text
}
FAILURES = frozenset({("ci", "failed"), ("deploy", "failed"), ("error_rate", "exceeded"), ("scheduled_task", "failed")})
# A chain's headline is its newest final event: a late "started" never hides a "completed".
NOT_FINAL = frozenset({("deploy", "started")})
FIELDS = (
    "event_type", "status", "service", "env", "severity", "title", "link", "occurred_at",
    "deployment_id", "correlation", "details", "actor", "event_id",
)  # fmt: skip
MAX_LENGTH = {
    "status": 40, "service": 200, "env": 100, "title": 300, "link": 3000, "deployment_id": 200,
    "correlation": 200, "actor": 100, "event_id": 200,
}  # fmt: skip
MAX_DETAILS = 30
DETAIL_KEY_MAX = 100
DETAIL_VALUE_MAX = 1000
# Pulser's own keys in `details` (what the buttons record); a sender may not set them.
RESERVED_DETAILS = frozenset({"acked_by", "acked_at", "investigator", "investigating_at"})
GITHUB_STARTED_STATES = ("queued", "pending", "in_progress", "waiting")


@dataclass(frozen=True)
class EventSpec:
    """A validated event, before it is stored."""

    event_type: str
    status: str
    title: str
    service: str = ""
    env: str = ""
    severity: str = "info"
    link: str | None = None
    occurred_at: datetime | None = None  # None: receipt time
    correlation: str | None = None
    actor: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    event_id: str | None = None

    @property
    def failure(self) -> bool:
        return (self.event_type, self.status) in FAILURES


@dataclass(frozen=True)
class EventActionResult:
    event: dict | None
    changed: bool
    note: str | None = None  # what to tell the clicker when nothing changed


# --- validation ------------------------------------------------------------------------------------


def validate_event(data: Any) -> EventSpec:
    """A submitted event, or ValidationError naming every field that is wrong."""
    if not isinstance(data, Mapping):
        raise ValidationError({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    for name in sorted(set(data) - set(FIELDS)):
        errors[str(name)] = f"unknown field; allowed: {', '.join(FIELDS)}"
    text = {name: _text(data, name, errors) for name in MAX_LENGTH}

    event_type = _text(data, "event_type", errors).strip().lower()
    if not event_type and "event_type" not in errors:
        errors["event_type"] = f"is required: one of {', '.join(EVENT_TYPES)}"
    elif event_type and event_type not in EVENT_TYPES:
        errors["event_type"] = f"must be one of {', '.join(EVENT_TYPES)}"

    status = _status(event_type, text["status"], errors)
    severity = _severity(data.get("severity"), errors)
    title = text["title"].strip()
    if "title" in data and data["title"] is not None and not title and "title" not in errors:
        errors["title"] = "must not be blank (leave it out for a title built from type, service and status)"
    link = _link(text["link"], errors)
    occurred_at = _occurred_at(data.get("occurred_at"), errors)
    correlation = _correlation(text["deployment_id"], text["correlation"], errors)
    details = _details(data.get("details"), errors)
    if errors:
        raise ValidationError(errors)

    service, env = text["service"].strip(), normalize_env(text["env"])
    failure = (event_type, status) in FAILURES
    return EventSpec(
        event_type=event_type,
        status=status,
        title=title or default_title(event_type, service, env, status),
        service=service,
        env=env,
        severity=severity or ("high" if failure else "info"),
        link=link,
        occurred_at=occurred_at,
        correlation=correlation,
        actor=text["actor"].strip() or None,
        details=details,
        event_id=text["event_id"] or None,
    )


def default_title(event_type: str, service: str, env: str, status: str) -> str:
    """`Deploy of billing-api to production completed`, `CI failed: billing-api`, …"""
    subject = service or "a service"
    where = f" to {env}" if env else ""
    if event_type == "deploy":
        return f"Deploy of {subject}{where} {status}"
    if event_type == "ci":
        return f"CI {status}: {subject}"
    if event_type == "error_rate":
        return f"Error rate {status}: {subject}" + (f" ({env})" if env else "")
    if event_type == "scheduled_task":
        return f"Scheduled task {status}: {subject}"
    if status:
        return f"{service}: {status}" if service else status
    return f"{type_name(event_type)} event" + (f": {service}" if service else "")


def validate_route(event_type: Any, channel: Any) -> tuple[str, str]:
    """An event route as (type, channel), or ValidationError naming the wrong part."""
    errors: dict[str, str] = {}
    kind = str(event_type or "").strip().lower()
    if kind not in EVENT_TYPES:
        errors["event_type"] = f"must be one of {', '.join(EVENT_TYPES)}"
    target = channel.strip() if isinstance(channel, str) else ""
    if not CHANNEL.match(target):
        errors["channel"] = "must be a channel like #ops-deploy or a channel ID like C0123ABCD"
    if errors:
        raise ValidationError(errors)
    return kind, target


def _text(data: Mapping[str, Any], name: str, errors: dict[str, str]) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and name in ("deployment_id", "correlation", "event_id"):
        value = str(value)  # ids arrive as numbers too
    if not isinstance(value, str):
        errors[name] = "must be a string"
        return ""
    limit = MAX_LENGTH.get(name)
    if limit and len(value) > limit:
        errors[name] = f"must be at most {limit} characters"
        return ""
    return value


def _status(event_type: str, value: str, errors: dict[str, str]) -> str:
    status = value.strip()
    if event_type not in STATUSES or "status" in errors:
        return status
    allowed = STATUSES[event_type]
    if allowed is None:
        return status
    status = status.lower()
    if not status:
        errors["status"] = f"is required for {event_type} events: one of {', '.join(allowed)}"
    elif status not in allowed:
        errors["status"] = f"must be one of {', '.join(allowed)} for {event_type} events"
    return status


def _severity(value: Any, errors: dict[str, str]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().lower() not in SEVERITIES:
        errors["severity"] = f"must be one of {', '.join(SEVERITIES)}"
        return None
    return value.strip().lower()


def _link(value: str, errors: dict[str, str]) -> str | None:
    if not value or "link" in errors:
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:  # "http://[::1" and the like: not a URL at all
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value.strip()):
        errors["link"] = "must be an http(s) URL"
        return None
    return value.strip()


def _occurred_at(value: Any, errors: dict[str, str]) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value, "occurred_at", assume_utc=False)
    except PayloadError as exc:
        errors["occurred_at"] = exc.message.removeprefix("occurred_at ")
        return None


def _correlation(deployment_id: str, correlation: str, errors: dict[str, str]) -> str | None:
    deployment_id, correlation = deployment_id.strip(), correlation.strip()
    if deployment_id and correlation and deployment_id != correlation:
        errors["correlation"] = "give deployment_id or correlation, not two different values"
        return None
    return deployment_id or correlation or None


def _details(value: Any, errors: dict[str, str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors["details"] = "must be an object of strings"
        return {}
    if len(value) > MAX_DETAILS:
        errors["details"] = f"must have at most {MAX_DETAILS} entries"
        return {}
    details: dict[str, str] = {}
    for key, item in value.items():
        key = str(key)
        where = f"details.{key}"
        if not key.strip() or len(key) > DETAIL_KEY_MAX:
            errors[where] = f"keys must be 1–{DETAIL_KEY_MAX} characters"
        elif key in RESERVED_DETAILS:
            errors[where] = "is reserved: Pulser records who acked or investigates there"
        elif not isinstance(item, str):
            errors[where] = "must be a string"
        elif len(item) > DETAIL_VALUE_MAX:
            errors[where] = f"must be at most {DETAIL_VALUE_MAX} characters"
        else:
            details[key] = item
    return details


# --- GitHub deliveries as events -----------------------------------------------------------------------


def github_event(headers: Mapping[str, str], payload: Any) -> EventSpec | None:
    """A finished workflow run → ci passed/failed; a deployment status → deploy started/completed/
    failed (one message per deployment). Anything else → None."""
    if not isinstance(payload, dict):
        return None
    try:
        event = header(headers, "X-GitHub-Event")
        if event == "workflow_run":
            return _github_run(payload)
        if event == "deployment_status":
            return _github_deployment(payload)
    except PayloadError as exc:
        log.warning("platform_event.github_unreadable", event=header(headers, "X-GitHub-Event"), error=exc.message)
    return None


def _github_run(payload: dict[str, Any]) -> EventSpec | None:
    run = require_object(payload, "workflow_run", "workflow_run")
    repository = require_object(payload, "repository", "repository")
    if optional_text(payload, "action") != "completed":
        return None
    conclusion = optional_text(run, "conclusion")
    if conclusion in github.FAILED_CONCLUSIONS:
        status = "failed"
    elif conclusion == "success":
        status = "passed"
    else:
        return None
    workflow = payload.get("workflow") if isinstance(payload.get("workflow"), dict) else {}
    name = optional_text(run, "name") or optional_text(workflow, "name") or "workflow"
    branch = optional_text(run, "head_branch")
    on_default = bool(branch) and branch == optional_text(repository, "default_branch")
    repo = require_text(repository, "full_name", "repository.full_name")
    actor = run.get("triggering_actor") or run.get("actor")
    details = {
        "Workflow": name,
        "Branch": branch,
        "Commit": optional_text(run, "head_sha")[:7],
        "Run": f"#{optional_text(run, 'run_number')}" if optional_text(run, "run_number") else "",
        "Conclusion": conclusion,
        "Trigger": optional_text(run, "event"),
    }
    return EventSpec(
        event_type="ci",
        status=status,
        title=f"{name} {status}" + (f" on {branch}" if branch else ""),
        service=repo,
        severity=("high" if on_default else "medium") if status == "failed" else "info",
        link=optional_text(run, "html_url") or None,
        occurred_at=parse_timestamp(
            run.get("updated_at") or run.get("run_started_at") or run.get("created_at"), "workflow_run.updated_at"
        ),
        # Re-runs of one run share its message: the red attempt turns green in place.
        correlation=f"github-run:{repo}:{require_text(run, 'id', 'workflow_run.id')}",
        actor=optional_text(actor, "login") or None if isinstance(actor, dict) else None,
        details={k: v for k, v in details.items() if v},
    )


def _github_deployment(payload: dict[str, Any]) -> EventSpec | None:
    deployment_status = require_object(payload, "deployment_status", "deployment_status")
    deployment = require_object(payload, "deployment", "deployment")
    repository = require_object(payload, "repository", "repository")
    state = require_text(deployment_status, "state", "deployment_status.state")
    if state in github.FAILED_DEPLOYMENT_STATES:
        status = "failed"
    elif state == "success":
        status = "completed"
    elif state in GITHUB_STARTED_STATES:
        status = "started"
    else:
        return None
    repo = require_text(repository, "full_name", "repository.full_name")
    environment = optional_text(deployment_status, "environment") or optional_text(deployment, "environment")
    env = normalize_env(environment)
    creator = deployment_status.get("creator") or deployment.get("creator")
    sha = optional_text(deployment, "sha")
    details = {
        "Ref": optional_text(deployment, "ref"),
        "Commit": sha[:7],
        "State": state,
        "Description": optional_text(deployment_status, "description"),
    }
    link = (
        optional_text(deployment_status, "log_url")
        or optional_text(deployment_status, "target_url")
        or optional_text(deployment_status, "environment_url")
    )
    return EventSpec(
        event_type="deploy",
        status=status,
        title=default_title("deploy", repo, env, status),
        service=repo,
        env=env,
        severity="high" if status == "failed" else "info",
        link=link or None,
        occurred_at=parse_timestamp(deployment_status.get("created_at"), "deployment_status.created_at"),
        correlation=f"github-deployment:{repo}:{require_text(deployment, 'id', 'deployment.id')}",
        actor=optional_text(creator, "login") or None if isinstance(creator, dict) else None,
        details={k: v for k, v in details.items() if v},
    )


# --- views ---------------------------------------------------------------------------------------------


def headline(chain: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The event a chain's message is about: its newest final event, else its newest."""
    return max(
        chain, key=lambda e: ((e["event_type"], e["status"]) not in NOT_FINAL, e["occurred_at"], e["id"])
    )


def event_view(chain: list[Mapping[str, Any]]) -> EventView:
    """The message of a chain (oldest first; one event for an uncorrelated one)."""
    top = headline(chain)
    details = top["details"] or {}
    ordered = sorted(chain, key=lambda e: (e["occurred_at"], e["id"]))
    return EventView(
        event_id=top["id"],
        event_type=top["event_type"],
        status=top["status"],
        title=top["title"],
        service=top["service"],
        env=top["env"],
        severity=top["severity"],
        occurred_at=top["occurred_at"],
        failure=(top["event_type"], top["status"]) in FAILURES,
        link=top["link"],
        actor=top["actor"],
        details=tuple((k, str(v)) for k, v in details.items() if k not in RESERVED_DETAILS),
        timeline=tuple(TimelineStep(e["status"], e["occurred_at"]) for e in ordered) if len(chain) > 1 else (),
        acked_by=details.get("acked_by"),
        acked_at=_parse_time(details.get("acked_at")),
        investigator=details.get("investigator"),
    )


def event_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """An event as the API shows it."""
    return {
        "id": row["id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "service": row["service"],
        "env": row["env"],
        "severity": row["severity"],
        "title": row["title"],
        "link": row["link"],
        "occurred_at": row["occurred_at"].isoformat(),
        "received_at": row["received_at"].isoformat(),
        "correlation": row["correlation"],
        "actor": row["actor"],
        "details": row["details"],
        "slack_channel": row["slack_channel"],
        "posted": row["slack_ts"] is not None,
        "last_error": row["last_error"],
    }


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


# --- the audit -----------------------------------------------------------------------------------------


async def record_action(
    conn: asyncpg.Pool | asyncpg.Connection, actor: str, action: str, target: str, details: dict[str, Any] | None = None
) -> int:
    """Audit an interactive action (`target` is "type:id", e.g. "incident:12"): one audit-log entry
    and one platform event of type "action", never posted to Slack. Returns the audit entry's id."""
    target_type, _, target_id = target.partition(":")
    return await audit.record_action(
        conn, actor=actor, action=action, target_type=target_type, target_id=target_id or None, details=details
    )


# --- the service -----------------------------------------------------------------------------------------


class PlatformEvents:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        default_channel: str,
        on_change: Callable[[], None] | None = None,
        on_deploy: Callable[[str, str, float | None], None] | None = None,
    ):
        self.pool = pool
        self.default_channel = default_channel
        self._on_change = on_change or (lambda: None)
        # (service, status, seconds from started to this end, if known): deployment metrics
        self._on_deploy = on_deploy or (lambda service, status, seconds: None)

    async def process_envelope(self, envelope: Envelope) -> bool:
        """The ledger worker's processor for POST /events: the event and the ledger's "processed"
        mark commit together, so a retry never records it twice."""
        spec = validate_event(envelope.payload)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._insert(conn, spec, received_at=envelope.received_at, envelope_pk=envelope.id)
            await envelopes.mark_processed(conn, envelope.id)
            await notifications.announce(conn)
        self._after(row)
        return True

    async def process_github(self, envelope: Envelope, process_alerts: Callable[[Envelope], Awaitable[Any]]) -> Any:
        """The processor for GitHub deliveries: the ci/deploy event first (once per delivery, so a
        retry after the alerts failed does not add another), then the alert pipeline's own.

        The event is posted only where its type is routed to a channel of its own (`/pulser events
        route ci #ci`): a failure already reaches the alert channel as an incident, and a second
        message there — or every green run — would be noise. Unrouted, it is recorded only."""
        spec = github_event(envelope.headers or {}, envelope.payload)
        if spec is not None:
            async with self.pool.acquire() as conn, conn.transaction():
                row = None
                if not await store.has_event_for_envelope(conn, envelope.id, ["ci", "deploy"]):
                    row = await self._insert(
                        conn, spec, received_at=envelope.received_at, envelope_pk=envelope.id, only_if_routed=True
                    )
                    await notifications.announce(conn)
            self._after(row)
        return await process_alerts(envelope)

    async def record(
        self, spec: EventSpec, *, channel: str | None = None, actor: str | None = None, now: datetime | None = None
    ) -> dict:
        """Record an event Pulser itself reports (a deploy it started) and schedule its message;
        `channel` overrides the route of its type. Returns the stored row."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._insert(conn, spec, received_at=now or _now(), channel=channel, actor=actor)
            await notifications.announce(conn)
        self._after(row)
        return row

    def _after(self, row: dict | None) -> None:
        """After commit: wake the notifier; count a deploy event (with its duration once it ended)."""
        self._on_change()
        if row is not None and row["event_type"] == "deploy" and row["service"]:
            self._on_deploy(row["service"], row["status"], row.get("duration_seconds"))

    async def _insert(
        self,
        conn: asyncpg.Connection,
        spec: EventSpec,
        *,
        received_at: datetime,
        envelope_pk: int | None = None,
        channel: str | None = None,
        actor: str | None = None,
        only_if_routed: bool = False,
    ) -> dict:
        """Store one event and schedule its message; with `only_if_routed`, an event whose type has
        no route of its own (and whose chain has no message) is stored without one."""
        earlier = None
        if spec.correlation:
            await store.lock_chain(conn, spec.event_type, spec.correlation)
            earlier = await store.latest_in_chain(conn, spec.event_type, spec.correlation)
        if earlier is not None and earlier["slack_channel"]:
            # Take the chain's message over: the notifier updates it in place.
            target, ts = earlier["slack_channel"], earlier["slack_ts"]
        elif only_if_routed:
            target, ts = channel or await store.route_for(conn, spec.event_type), None
        else:
            target, ts = channel or await self._route(conn, spec.event_type), None
        row = await store.insert_event(
            conn,
            {
                "event_type": spec.event_type,
                "status": spec.status,
                "service": spec.service,
                "env": spec.env,
                "severity": spec.severity,
                "title": spec.title,
                "link": spec.link,
                "occurred_at": spec.occurred_at or received_at,
                "received_at": received_at,
                "correlation": spec.correlation,
                "actor": actor or spec.actor,
                "details": spec.details,
                "envelope_pk": envelope_pk,
                "slack_channel": target,
                "slack_ts": ts,
                "render_due_at": _now() if target else None,
            },
        )
        if spec.event_type == "deploy" and spec.correlation and spec.status in ("started", "completed", "failed"):
            row["duration_seconds"] = _deploy_duration(row, await store.chain_of(conn, row))
        log.info(
            "platform_event.recorded", event_id=row["id"], event_type=spec.event_type, status=spec.status,
            service=spec.service, channel=target, posted=target is not None, updates_message=ts is not None,
            envelope_pk=envelope_pk,
        )
        return row

    # --- routes ----------------------------------------------------------------------------------------

    async def route_for(self, event_type: str) -> str:
        """The channel events of this type go to: its route, else the default channel."""
        return await self._route(self.pool, event_type)

    async def _route(self, conn: asyncpg.Pool | asyncpg.Connection, event_type: str) -> str:
        return await store.route_for(conn, event_type) or self.default_channel

    async def list_routes(self) -> dict[str, str]:
        """The types that have a channel of their own (the rest go to the default channel)."""
        return await store.list_routes(self.pool)

    async def set_route(self, event_type: str, channel: str, user: str) -> str | None:
        """Send `event_type` to `channel` (validated; audited); returns the channel it had."""
        event_type, channel = validate_route(event_type, channel)
        async with self.pool.acquire() as conn, conn.transaction():
            before = await store.set_route(conn, event_type, channel, updated_by=user)
            await audit.record_action(
                conn, actor=user, action="event_route.set", target_type="event_route", target_id=event_type,
                details={"channel": {"from": before, "to": channel}},
            )
        log.info("platform_event.route_set", event_type=event_type, channel=channel, by=user)
        return before

    async def reset_route(self, event_type: str, user: str) -> str | None:
        """Send `event_type` back to the default channel (audited); returns the channel it had."""
        if event_type not in EVENT_TYPES:
            raise ValidationError({"event_type": f"must be one of {', '.join(EVENT_TYPES)}"})
        async with self.pool.acquire() as conn, conn.transaction():
            before = await store.delete_route(conn, event_type)
            await audit.record_action(
                conn, actor=user, action="event_route.reset", target_type="event_route", target_id=event_type,
                details={"channel": {"from": before, "to": None}},
            )
        log.info("platform_event.route_reset", event_type=event_type, by=user)
        return before

    # --- buttons -----------------------------------------------------------------------------------------

    async def ack(self, event_id: int, user: str, *, now: datetime | None = None) -> EventActionResult:
        now = now or _now()

        async def apply(conn: asyncpg.Connection, event: dict) -> EventActionResult:
            acked_by = (event["details"] or {}).get("acked_by")
            if acked_by:
                return EventActionResult(event, False, f"Already acknowledged by <@{acked_by}>.")
            changed = await store.merge_details(conn, event["id"], {"acked_by": user, "acked_at": now.isoformat()})
            return EventActionResult(changed, True)

        return await self._act(event_id, user, "event.ack", apply, now=now)

    async def investigate(self, event_id: int, user: str, *, now: datetime | None = None) -> EventActionResult:
        now = now or _now()

        async def apply(conn: asyncpg.Connection, event: dict) -> EventActionResult:
            if (event["details"] or {}).get("investigator") == user:
                return EventActionResult(event, False, "You are already investigating this.")
            changed = await store.merge_details(
                conn, event["id"], {"investigator": user, "investigating_at": now.isoformat()}
            )
            return EventActionResult(changed, True)

        return await self._act(event_id, user, "event.investigate", apply, now=now)

    async def _act(
        self,
        event_id: int,
        user: str,
        action: str,
        apply: Callable[[asyncpg.Connection, dict], Awaitable[EventActionResult]],
        *,
        now: datetime,
    ) -> EventActionResult:
        """One locked, audited transaction; the message re-renders even when nothing changed (the
        clicker's view may be stale)."""
        async with self.pool.acquire() as conn, conn.transaction():
            event = await store.get_event(conn, event_id, for_update=True)
            if event is None or event["event_type"] == ACTION:
                return EventActionResult(None, False, "This event is no longer known to Pulser.")
            result = await apply(conn, event)
            await audit.record_action(
                conn, actor=user, action=action, target_type="platform_event", target_id=event_id,
                details={
                    "event_type": event["event_type"], "status": event["status"], "service": event["service"],
                    "outcome": "changed" if result.changed else "unchanged",
                },
            )
            await store.render_chain_now(conn, event_id, now=now)
            await notifications.announce(conn)
        log.info(action.replace("event.", "platform_event.clicked_"), event_id=event_id, user=user, changed=result.changed)
        self._on_change()
        return result

    # --- reading ---------------------------------------------------------------------------------------------

    async def recent(self, *, event_type: str | None = None, limit: int = 50) -> list[dict]:
        return await store.list_events(self.pool, event_type=event_type, limit=limit)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _deploy_duration(row: dict, chain: list[dict]) -> float | None:
    """Started → ended, counted by whichever of the two is recorded second. Senders' deliveries (and
    the ledger's workers) do not keep order: a "completed" may be recorded before its "started"."""
    ended = ("completed", "failed")
    if row["status"] in ended:
        start = next((e for e in chain if e["status"] == "started"), None)
        end = row
    else:
        start = row
        end = next((e for e in chain if e["status"] in ended and e["id"] != row["id"]), None)
    if start is None or end is None:
        return None
    return (end["occurred_at"] - start["occurred_at"]).total_seconds()

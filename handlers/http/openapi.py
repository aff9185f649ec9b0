"""`GET /api/openapi.json`: the OpenAPI 3.1 document of every route the sidecar serves.

Request bodies and the objects people define come from `alerts.models` (the source the config
file's JSON Schema is generated from too); the response shapes are declared here. Every
operation is one `Operation` row, so the tests can check that the router serves nothing the
document leaves out (tests/test_openapi.py) and that the responses the suite sees match it
(tests/openapi_conformance.py). The document itself needs no token: it says how to call the
API, not what is in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from alerts import models
from alerts.oncall import models as oncall_models

OPENAPI_PATH = "/api/openapi.json"
JSON = "application/json"


# --- response shapes -------------------------------------------------------------------------------


class Open(BaseModel):
    """Responses may grow fields; clients ignore what they do not know."""

    model_config = ConfigDict(extra="allow")


class Error(Open):
    """Every 4xx and 5xx answer."""

    error: str = Field(description="what went wrong, in a few words")
    detail: str | dict[str, Any] | None = Field(None, description="what to fix: text, or field → message")


class Health(Open):
    status: str = Field(description="ok | degraded | down")
    version: str
    mode: str
    uptime_seconds: float
    components: dict[str, dict[str, Any]] = Field(description="one entry per part this process runs, each with a status")


class HeartbeatAccepted(Open):
    ok: bool
    status: str = Field(description="the application's state: new | up | late | down | paused")


class BulkHeartbeats(Open):
    accepted: list[str]
    unknown: list[str]
    invalid: list[Any]
    rate_limited: list[str]


class BulkBody(BaseModel):
    uuids: list[Any]


class WebhookAccepted(Open):
    status: str = Field(description="accepted")
    idempotency_key: str
    alerts: int
    received_at: str
    warnings: list[Any]


class Duplicate(Open):
    status: str = Field(description="duplicate: this delivery was accepted before; nothing new happens")
    idempotency_key: str


class EventAccepted(Open):
    status: str
    idempotency_key: str
    event_type: str
    event_status: str
    received_at: str


class Application(Open):
    id: int
    uuid: str
    name: str
    expected_interval: int | None
    grace_period: int | None
    channel: str | None
    owner: str | None
    schedule: str | None
    timezone: str
    is_active: bool
    status: str
    last_heartbeat: str | None
    next_deadline: str | None
    created_at: str | None
    updated_at: str | None
    ping_url: str


class ApplicationList(Open):
    applications: list[Application]
    limit: int
    offset: int


class Heartbeat(Open):
    kind: str
    exit_code: int | None
    received_at: str | None
    client_time: str | None
    duration_ms: int | float | None
    method: str | None
    remote_addr: str | None
    user_agent: str | None
    body: str | None
    metadata: dict[str, Any] | None


class HeartbeatList(Open):
    heartbeats: list[Heartbeat]


class Rule(Open):
    id: int
    position: int
    name: str
    envs: list[str]
    min_severity: str | None
    services: list[str]
    sources: list[str]
    tags: dict[str, str]
    continue_matching: bool
    channel: str
    mention: str | None
    mention_min_severity: str
    escalate_after_minutes: int | None
    escalate_to: str | None
    escalation_levels: int
    runbook_url: str | None
    auto_close_minutes: int | None
    escalation_policy_id: int | None = Field(None, description="the escalation policy that pages for its incidents")
    created_by: str | None
    created_at: str | None
    updated_at: str | None
    managed_by: str | None = Field(description="config: defined by the config file, read-only here")
    conditions: str = Field(description="what the rule matches, in one line (Slack mrkdwn)")
    actions: str = Field(description="what it does, in one line (Slack mrkdwn)")


class DefaultRoute(Open):
    channel: str
    conditions: str
    actions: str


class RuleList(Open):
    rules: list[Rule]
    default_route: DefaultRoute


class PolicyStep(Open):
    position: int
    kind: str
    description: str = Field(description="the step in words")


class Policy(Open):
    id: int
    name: str
    repeat: int
    steps: list[PolicyStep]
    used_by_rules: list[str] = Field(description="routing rules that name this policy")
    managed_by: str | None


class PolicyList(Open):
    policies: list[Policy]


class PolicyExample(Open):
    name: str
    repeat: int
    steps: list[dict[str, Any]] = Field(description="steps as POST /api/escalation-policies takes them")


class OutboundChannel(Open):
    id: int
    name: str
    kind: str
    settings: dict[str, Any] = Field(description="secret fields show as (set), never their value")
    managed_by: str | None


class OutboundChannelList(Open):
    channels: list[OutboundChannel]
    kinds: dict[str, dict[str, Any]] = Field(description="each kind's label, secret fields and the actions it acts on")


class Delivery(Open):
    id: int
    incident_id: int | None
    method: str = Field(description="channel | slack_dm | sms | email")
    action: str
    status: str = Field(description="pending | delivered | failed")
    attempts: int
    last_error: str | None


class DeliveryList(Open):
    deliveries: list[Delivery]


class TestQueued(Open):
    status: str
    delivery_id: int | None
    follow: str


class MatcherOut(Open):
    name: str
    op: str
    value: str


class Silence(Open):
    id: int
    matchers: list[MatcherOut]
    matchers_text: str
    status: str = Field(description="pending | active | expired")
    starts_at: str
    ends_at: str
    comment: str
    created_by: str
    expired_by: str | None
    created_at: str
    managed_by: str | None


class SilenceList(Open):
    silences: list[Silence]


class Inhibition(Open):
    id: int
    name: str
    source_matchers: list[MatcherOut]
    target_matchers: list[MatcherOut]
    equal: list[str]
    created_by: str
    created_at: str
    managed_by: str | None


class InhibitionList(Open):
    inhibitions: list[Inhibition]


class Service(Open):
    id: int
    name: str
    action_type: str
    action: dict[str, Any]
    description: str
    default_env: str
    requires_approval: bool
    channel: str | None
    created_by: str | None
    created_at: str | None
    updated_at: str | None
    managed_by: str | None


class ServiceList(Open):
    services: list[Service]


class DeployRequest(Open):
    id: int
    service_id: int
    service: str
    env: str
    ref: str
    reason: str
    requested_by: str
    status: str
    decided_by: str | None
    decided_at: str | None
    trigger_error: str | None
    created_at: str | None
    updated_at: str | None


class DeployList(Open):
    deploys: list[DeployRequest]
    limit: int
    offset: int


class Event(Open):
    id: int
    event_type: str
    status: str
    service: str
    env: str
    severity: str
    title: str
    link: str | None
    occurred_at: str
    received_at: str
    correlation: str | None
    actor: str | None
    details: dict[str, Any] | None
    slack_channel: str | None
    posted: bool
    last_error: str | None


class EventList(Open):
    events: list[Event]
    limit: int


class Report(Open):
    """A report whose sections follow the parts this Pulser runs."""


# incidents, alerts, the dashboard and integrations


class IncidentSummary(Open):
    id: int
    title: str
    source: str
    service: str
    env: str
    severity: str = Field(description="info | low | medium | high | critical (effective)")
    status: str = Field(description="firing | resolved")
    state: str = Field(description="firing | acknowledged | snoozed | resolved | held_back")
    count: int
    first_seen: str
    last_seen: str
    age_seconds: int | float | None = None
    assignee: str | None = None
    acked_by: str | None = None
    acked_at: str | None = None
    snoozed_by: str | None = None
    snoozed_until: str | None = None
    investigator: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None
    resolve_reason: str | None = None
    reopened_count: int | None = None
    suppressed_by: str | None = None
    link: str | None = None
    labels: dict[str, Any] | None = None
    url: str | None = None


class TimelineEntry(Open):
    at: str
    kind: str = Field(description="opened, repeats, posted, ack, snooze, resolve, assign, escalate, note, …")
    actor: str | None
    text: str
    details: dict[str, Any] | None = None


class Occurrence(Open):
    id: int
    incident_id: int | None
    received_at: str
    status: str
    source: str
    service: str
    env: str
    severity: str
    title: str
    fingerprint: str | None = None
    description: str | None = None
    occurred_at: str | None = None
    link: str | None = None
    tags: dict[str, Any] | None = None


class Note(Open):
    id: int
    incident_id: int
    author: str
    text: str
    created_at: str


class IncidentDetail(IncidentSummary):
    description: str | None = None
    runbook_urls: list[str] | None = None
    messages: list[dict[str, Any]] | None = None
    timeline: list[TimelineEntry]
    occurrences: list[Occurrence]
    occurrence_total: int | None = None
    notes: list[Note]


class IncidentList(Open):
    incidents: list[IncidentSummary]
    next_cursor: str | None
    sort: str | None = None
    filters: dict[str, Any] | None = None


class AlertList(Open):
    alerts: list[Occurrence]
    next_cursor: str | None


class IncidentChanged(Open):
    incident: IncidentSummary
    changed: bool


class NoteAdded(Open):
    note: Note
    incident: IncidentSummary


class SnoozeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: Literal[30, 60, 240, 1440]


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str = Field(description="a Slack user ID (U…)")


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=3000)


class EmptyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Integration(Open):
    source: str
    name: str
    configured: bool
    missing: list[str] = Field(description="the variables still to set")
    webhook_url: str | None = None
    last_delivery: str | None = None
    deliveries_24h: int | None = None
    failed_24h: int | None = None
    last_error: dict[str, Any] | None = None
    testable: bool | None = None
    not_testable_because: str | None = None


class IntegrationList(Open):
    integrations: list[Integration]


class IntegrationTest(Open):
    source: str
    delivery: dict[str, Any] | None
    incident_id: int | None
    message: dict[str, Any] | None
    became_message: bool
    detail: str


# on-call schedules


class OnCallLayer(Open):
    name: str
    kind: str = Field(description="rotation | imported")
    members: list[str] | None = None
    shift: str | None = Field(None, description="e.g. 1 week")
    handoff: str | None = Field(None, description="local HH:MM")
    start: str | None = Field(None, description="date of the first hand-off")
    days: list[str] | None = None
    hours: str | None = None
    ical_url: str | None = None
    status: dict[str, Any] | None = Field(None, description="an imported layer's last fetch: fetched_at, last_success_at, last_error, events, unmatched")


class OnCallOverride(Open):
    id: int
    user: str
    start: str
    end: str
    created_by: str | None
    created_at: str | None


class OnCallSwap(Open):
    id: int
    shift_start: str
    from_user: str
    to_user: str
    created_by: str | None
    created_at: str | None


class OnCallSchedule(Open):
    id: int
    name: str
    time_zone: str
    layers: list[OnCallLayer] = Field(description="bottom first: a later layer wins where it has someone")
    overrides: list[OnCallOverride] = Field(description="current and upcoming")
    feed_url: str = Field(description="the iCal feed; its token is a secret (rotate it with rotate_feed_token)")
    created_by: str | None
    created_at: str | None
    updated_at: str | None
    managed_by: str | None


class OnCallScheduleList(Open):
    schedules: list[OnCallSchedule]


class OnCallNow(Open):
    at: str
    on_call: list[str] = Field(description="Slack user IDs on call at `at`; empty: nobody")
    until: str | None = Field(description="when that changes (within 60 days)")
    next: list[str] = Field(description="who is on call from `until`")


class OnCallShift(Open):
    user: str
    start: str
    end: str
    layer: int | str = Field(description="the 1-based layer number, or override")


class OnCallShiftList(Open):
    start: str
    end: str
    shifts: list[OnCallShift]


# people's notification rules


class NotificationRules(Open):
    user_id: str
    contacts: dict[str, str | None] = Field(description="email and phone (E.164); null when not set")
    rules: list[dict[str, Any]] = Field(description="in order: {method: slack_dm | sms | email, delay_minutes}")
    uses_default: bool = Field(description="no rules set: a page reaches them by a Slack DM at once")
    updated_at: str | None


class TestPage(Open):
    delivery_id: int | None
    method: str = Field(description="slack_dm | sms | email")
    recipient: str | None = Field(description="the Slack user ID, phone number or e-mail address")
    status: str | None = Field(description="pending, or failed at once (problem says why: no phone, no SMS channel …)")
    problem: str | None


class TestPages(Open):
    user_id: str
    delivery_ids: list[int | None]
    deliveries: list[TestPage]


# --- operations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI form: /api/rules/{id}
    summary: str
    tag: str
    responses: dict[int, tuple[type[BaseModel] | str | None, str]]  # status → (model | "text" | None, description)
    body: Any = None  # a model, or a JSON Schema dict
    auth: str | None = "admin"  # admin | webhook | None
    params: tuple[Param, ...] = ()
    raw_body: bool = False  # a source's own payload (any JSON the sender sends)
    body_required: bool = True


ID = Param("id", "path", "the object's numeric id", {"type": "string", "pattern": "^[0-9]+$"}, True)
UUID = Param("uuid", "path", "the application's UUID (ping_url shows it)", {"type": "string", "format": "uuid"}, True)
SIGNAL = Param(
    "signal", "path", "start, fail, or the job's exit code (0 is success, 1–255 a failure)",
    {"type": "string", "pattern": "^(start|fail|-?[0-9]+)$"}, True,
)
SOURCE = Param(
    "source", "path", "sentry, alertmanager, github, generic or heroku",
    {"type": "string", "enum": ["sentry", "alertmanager", "github", "generic", "heroku"]}, True,
)
LIMIT = Param("limit", "query", "how many to return", {"type": "string", "pattern": "^[0-9]+$"})
OFFSET = Param("offset", "query", "how many to skip", {"type": "string", "pattern": "^[0-9]+$"})
ALL = Param("all", "query", "1 to include expired silences", {"type": "string"})
EVENT_TYPE = Param("type", "query", "only this event type (or action for the audit)", {"type": "string"})
INCIDENT_FILTERS = tuple(
    Param(name, "query", text) for name, text in (
        ("status", "open, acked, unacked, snoozed, resolved or all; a comma list means any of them"),
        ("env", "comma list of environments"), ("service", "comma list of services"), ("source", "comma list of sources"),
        ("severity", "comma list: exactly one of these severities"), ("min_severity", "this severity and above"),
        ("severity>", "the same as min_severity, as written in a URL: severity>=high"),
        ("tag", "k=v; repeat for several (all must match)"), ("assignee", "a Slack user ID, or none"),
        ("since", "last seen within 30m, 24h, 7d, 2w"), ("sort", "newest (default), oldest or oldest_unacked"),
        ("limit", "1–200 (default 50)"), ("cursor", "next_cursor of the previous page"),
    )
)
ALERT_FILTERS = tuple(p for p in INCIDENT_FILTERS if p.name not in ("assignee", "sort")) + (
    Param("incident_id", "query", "only this incident's occurrences"),
)
INTEGRATION = Param(
    "source", "path", "sentry, alertmanager, github, generic or heroku", {"type": "string"}, True,
)
TOKEN = Param("token", "query", "the shared token, for senders that cannot set headers (Sentry's legacy plugin)")

AT = Param("at", "query", "a time: ISO 8601, a local time in the schedule's zone (2026-12-08 09:00), now or +4h; default now")
WINDOW_START = Param("start", "query", "from (like at); default now")
WINDOW_END = Param("end", "query", "until (like at, +7d after start); default start + 7 days")
OVERRIDE_ID = Param("oid", "path", "the override's id", {"type": "string", "pattern": "^[0-9]+$"}, True)
FEED_TOKEN = Param("token", "path", "the schedule's feed token (feed_url shows it)", {"type": "string"}, True)

USER = Param("user_id", "path", "a Slack user ID (U…)", {"type": "string", "pattern": "^[UW][A-Z0-9]{2,}$"}, True)

OK = "the answer"
_ADMIN = {401: (Error, "no or wrong admin token"), 503: (Error, "the database is away; retry after Retry-After")}


def _api(*extra: tuple[int, type[BaseModel] | None, str], body: bool = False, found: bool = False) -> dict:
    responses: dict[int, tuple[Any, str]] = {status: (model, text) for status, model, text in extra}
    responses.update(_ADMIN)
    if body:
        responses.setdefault(400, (Error, "the body is not what this route takes; detail says what to fix"))
        responses[413] = (Error, "the body is larger than PULSER_MAX_BODY_BYTES")
    if found:
        responses[404] = (Error, "no such object")
    responses[500] = (Error, "a bug: logged with its trace, never shown")
    return responses


HEARTBEAT_RESPONSES = {
    200: (HeartbeatAccepted, "recorded (after the batch holding it committed)"),
    400: (Error, "an exit code outside 0–255, or a body nested too deeply"),
    404: (Error, "no application has this UUID (or it is malformed)"),
    413: (Error, "a heartbeat body is kept up to 10 KiB"),
    429: (Error, "too many heartbeats for this UUID; Retry-After says when"),
    500: (Error, "a bug"),
    503: (Error, "the database is away; retry after Retry-After"),
}
WEBHOOK_RESPONSES = {
    200: (Duplicate, "already accepted (a retry or a replay)"),
    202: (WebhookAccepted, "recorded; the alerts follow in Slack"),
    400: (Error, "not a payload this source sends, or a header that cannot be stored"),
    401: (Error, "the signature or token is wrong, or the source is not configured"),
    404: (Error, "unknown source"),
    413: (Error, "the body is larger than PULSER_MAX_BODY_BYTES"),
    500: (Error, "a bug"),
    503: (Error, "the database is away; nothing was stored, retry later"),
}


def operations() -> list[Operation]:
    ops = [
        Operation("get", "/health", "Is every part of this process up?", "operations", {
            200: (Health, "every part is up (or merely degraded)"),
            503: (Health, "a part is down, or the deployment is misconfigured"),
        }, auth=None),
        Operation("get", "/metrics", "Prometheus metrics", "operations", {200: ("text", "Prometheus text format")}, auth=None),
        Operation("get", OPENAPI_PATH, "This document", "operations", {200: (None, "the OpenAPI 3.1 document")}, auth=None),
    ]
    for prefix in ("/heartbeat", "/ping"):
        for method in ("get", "post"):
            ops.append(Operation(method, prefix + "/{uuid}", "A job checked in (success)", "heartbeats", HEARTBEAT_RESPONSES,
                                 auth=None, params=(UUID,), raw_body=method == "post"))
            ops.append(Operation(method, prefix + "/{uuid}/{signal}", "A job started, failed, or exited with a code",
                                 "heartbeats", HEARTBEAT_RESPONSES, auth=None, params=(UUID, SIGNAL), raw_body=method == "post"))
    ops += [
        Operation("post", "/heartbeats", "Many successes at once", "heartbeats", {
            200: (BulkHeartbeats, "what happened to each UUID"), 400: (Error, "not a list of at most 1000 UUIDs"),
            413: (Error, "too large"), 500: (Error, "a bug"), 503: (Error, "the database is away"),
        }, body={"oneOf": [{"type": "array", "items": {}}, {"$ref": "#/components/schemas/BulkBody"}]}, auth=None),
        Operation("post", "/webhooks/{source}", "An alert source's webhook delivery", "webhooks", WEBHOOK_RESPONSES,
                  auth="webhook", params=(SOURCE, TOKEN), raw_body=True),
        Operation("post", "/events", "A platform event (deploy, CI, error rate, scheduled task, manual)", "events", {
            200: (Duplicate, "already accepted"), 202: (EventAccepted, "recorded; posted to Slack next"),
            400: (Error, "detail names every wrong field"), 401: (Error, "PULSER_WEBHOOK_TOKEN missing or wrong"),
            413: (Error, "too large"), 500: (Error, "a bug"), 503: (Error, "the database is away"),
        }, body=models.PlatformEvent, auth="webhook"),
        # applications
        Operation("get", "/api/applications", "Heartbeat applications", "applications",
                  _api((200, ApplicationList, OK), (400, Error, "a bad limit or offset")), params=(LIMIT, OFFSET)),
        Operation("post", "/api/applications", "Add an application", "applications",
                  _api((201, Application, "created; Location names it"), (409, Error, "the name is taken"), body=True),
                  body=models.ApplicationFields),
        Operation("get", "/api/applications/{id}", "One application", "applications", _api((200, Application, OK), found=True), params=(ID,)),
        Operation("put", "/api/applications/{id}", "Change an application (the fields sent)", "applications",
                  _api((200, Application, OK), (409, Error, "the name is taken"), body=True, found=True),
                  body=models.ApplicationFields, params=(ID,)),
        Operation("delete", "/api/applications/{id}", "Remove an application", "applications",
                  _api((204, None, "removed"), found=True), params=(ID,)),
        Operation("get", "/api/applications/{id}/heartbeats", "An application's recent heartbeats", "applications",
                  _api((200, HeartbeatList, OK), (400, Error, "a bad limit"), found=True), params=(ID, LIMIT)),
        # escalation
        Operation("get", "/api/escalation-policies", "Escalation policies", "escalation", _api((200, PolicyList, OK))),
        Operation("post", "/api/escalation-policies", "Add an escalation policy", "escalation",
                  _api((201, Policy, "created; Location names it"), (409, Error, "the name is taken"), body=True),
                  body=models.EscalationPolicyFields),
        Operation("get", "/api/escalation-policies/example", "The monitoring design's L1–L3 policy, to start from",
                  "escalation", _api((200, PolicyExample, "a policy body to POST after renaming its channels"))),
        Operation("get", "/api/escalation-policies/{id}", "One escalation policy", "escalation",
                  _api((200, Policy, OK), found=True), params=(ID,)),
        Operation("put", "/api/escalation-policies/{id}", "Replace an escalation policy", "escalation",
                  _api((200, Policy, OK), (409, Error, "the name is taken, or the config file manages it"), body=True, found=True),
                  body=models.EscalationPolicyFields, params=(ID,)),
        Operation("delete", "/api/escalation-policies/{id}", "Remove an escalation policy", "escalation",
                  _api((204, None, "removed"), (409, Error, "a routing rule names it"), found=True), params=(ID,)),
        Operation("get", "/api/outbound-channels", "Outbound channels (e-mail, Discord, Teams, webhook, GitHub, Twilio, PagerDuty)",
                  "escalation", _api((200, OutboundChannelList, OK))),
        Operation("post", "/api/outbound-channels", "Add an outbound channel", "escalation",
                  _api((201, OutboundChannel, "created; Location names it"), (409, Error, "the name is taken"), body=True),
                  body=models.OutboundChannelFields),
        Operation("get", "/api/outbound-channels/{id}", "One outbound channel", "escalation",
                  _api((200, OutboundChannel, OK), found=True), params=(ID,)),
        Operation("put", "/api/outbound-channels/{id}", "Change an outbound channel (secrets left out are kept)", "escalation",
                  _api((200, OutboundChannel, OK), (409, Error, "the name is taken, or the config file manages it"), body=True, found=True),
                  body=models.OutboundChannelFields, params=(ID,)),
        Operation("delete", "/api/outbound-channels/{id}", "Remove an outbound channel", "escalation",
                  _api((204, None, "removed"), (409, Error, "an escalation policy sends to it"), found=True), params=(ID,)),
        Operation("post", "/api/outbound-channels/{id}/test", "Send a test page through the channel", "escalation",
                  _api((202, TestQueued, "queued; the delivery log shows how it went"), found=True), params=(ID,),
                  body_required=False),
        Operation("get", "/api/outbound-channels/{id}/deliveries", "The channel's delivery log, newest first", "escalation",
                  _api((200, DeliveryList, OK), found=True), params=(ID,)),
        # routing rules
        Operation("get", "/api/rules", "Routing rules in order, and the default route", "routing rules", _api((200, RuleList, OK))),
        Operation("post", "/api/rules", "Add a routing rule", "routing rules",
                  _api((201, Rule, "created; Location names it"), body=True), body=models.RoutingRuleCreate),
        Operation("get", "/api/rules/{id}", "One routing rule", "routing rules", _api((200, Rule, OK), found=True), params=(ID,)),
        Operation("put", "/api/rules/{id}", "Change a routing rule (the fields sent)", "routing rules",
                  _api((200, Rule, OK), (409, Error, "managed by the config file"), body=True, found=True),
                  body=models.RoutingRuleUpdate, params=(ID,)),
        Operation("delete", "/api/rules/{id}", "Remove a routing rule", "routing rules",
                  _api((204, None, "removed"), (409, Error, "managed by the config file"), found=True), params=(ID,)),
        Operation("post", "/api/rules/{id}/move", "Move a routing rule to another place in the order", "routing rules",
                  _api((200, Rule, OK), (409, Error, "managed by the config file"), body=True, found=True),
                  body=models.RuleMove, params=(ID,)),
        # silences and inhibitions
        Operation("get", "/api/silences", "Active and pending silences (all with ?all=1)", "silences",
                  _api((200, SilenceList, OK), (400, Error, "a bad query parameter")), params=(ALL, LIMIT)),
        Operation("post", "/api/silences", "Silence matching alerts for a while", "silences",
                  _api((201, Silence, "created; Location names it"), body=True), body=models.SilenceCreate),
        Operation("get", "/api/silences/{id}", "One silence", "silences", _api((200, Silence, OK), found=True), params=(ID,)),
        Operation("delete", "/api/silences/{id}", "Expire a silence (it stays listed with ?all=1)", "silences",
                  _api((200, Silence, "expired"), (409, Error, "already ended, or managed by the config file"), found=True),
                  params=(ID,)),
        Operation("get", "/api/inhibitions", "Inhibition rules", "silences", _api((200, InhibitionList, OK))),
        Operation("post", "/api/inhibitions", "Add an inhibition rule", "silences",
                  _api((201, Inhibition, "created; Location names it"), body=True), body=models.InhibitionRuleFields),
        Operation("get", "/api/inhibitions/{id}", "One inhibition rule", "silences", _api((200, Inhibition, OK), found=True), params=(ID,)),
        Operation("delete", "/api/inhibitions/{id}", "Remove an inhibition rule", "silences",
                  _api((204, None, "removed"), (409, Error, "managed by the config file"), found=True), params=(ID,)),
        # deploys
        Operation("get", "/api/services", "Deploy services", "deploys", _api((200, ServiceList, OK))),
        Operation("post", "/api/services", "Add a deploy service", "deploys",
                  _api((201, Service, "created; Location names it"), (409, Error, "the name is taken"), body=True),
                  body=models.DeployServiceFields),
        Operation("get", "/api/services/{id}", "One deploy service", "deploys", _api((200, Service, OK), found=True), params=(ID,)),
        Operation("put", "/api/services/{id}", "Change a deploy service (the fields sent)", "deploys",
                  _api((200, Service, OK), (409, Error, "the name is taken, or managed by the config file"), body=True, found=True),
                  body=models.DeployServiceUpdate, params=(ID,)),
        Operation("delete", "/api/services/{id}", "Remove a deploy service and its requests", "deploys",
                  _api((204, None, "removed"), (409, Error, "managed by the config file"), found=True), params=(ID,)),
        Operation("get", "/api/deploys", "Deploy requests, newest first", "deploys",
                  _api((200, DeployList, OK), (400, Error, "a bad limit or offset")), params=(LIMIT, OFFSET)),
        # events
        Operation("get", "/api/events", "Platform events, newest first", "events",
                  _api((200, EventList, OK), (400, Error, "a bad type or limit")), params=(EVENT_TYPE, LIMIT)),
        Operation("get", "/api/event-routes", "Which channel each event type goes to", "events",
                  _api((200, None, "event type → channel; the types left out go to SLACK_CHANNEL"))),
        Operation("put", "/api/event-routes", "Replace the event routes", "events",
                  _api((200, None, "the routes now: event type → channel"), (409, Error, "a route managed by the config file would change"), body=True),
                  body={"$ref": "#/components/schemas/EventRoutes"}),
        # incidents (the /api/alert-groups/… aliases answer alike)
        *_incident_operations("/api/incidents"),
        *_incident_operations("/api/alert-groups", aliases=True),
        Operation("post", "/api/incidents/{id}/assign", "Assign an incident", "incidents",
                  _api((200, IncidentChanged, OK), (409, Error, "cannot assign: resolved"), body=True, found=True),
                  body=AssignBody, params=(ID,)),
        Operation("post", "/api/incidents/{id}/notes", "Add a note to an incident's timeline and thread", "incidents",
                  _api((201, NoteAdded, "added"), body=True, found=True), body=NoteBody, params=(ID,)),
        Operation("get", "/api/alerts", "Received alert occurrences, newest first", "incidents",
                  _api((200, AlertList, OK), (400, Error, "invalid filter: detail names the parameter")), params=ALERT_FILTERS),
        Operation("get", "/api/dashboard/overview", "The App Home figures", "incidents", _api((200, Report, OK))),
        # integrations
        Operation("get", "/api/integrations", "Each alert source: configured, last delivery, last error", "integrations",
                  _api((200, IntegrationList, OK))),
        Operation("post", "/api/integrations/{source}/test", "Send a signed sample delivery and see it become a message",
                  "integrations",
                  _api((200, IntegrationTest, OK), (400, Error, "this route takes no body"),
                       (409, Error, "the source is not configured or not testable"), found=True),
                  params=(INTEGRATION,)),
        # on-call schedules
        Operation("get", "/api/schedules", "On-call schedules", "on-call", _api((200, OnCallScheduleList, OK))),
        Operation("post", "/api/schedules", "Add an on-call schedule", "on-call",
                  _api((201, OnCallSchedule, "created; Location names it"), (409, Error, "the name is taken"), body=True),
                  body=oncall_models.ScheduleCreate),
        Operation("get", "/api/schedules/{id}", "One on-call schedule", "on-call", _api((200, OnCallSchedule, OK), found=True),
                  params=(ID,)),
        Operation("put", "/api/schedules/{id}", "Change an on-call schedule (the fields sent; layers as a whole)", "on-call",
                  _api((200, OnCallSchedule, OK), (409, Error, "the name is taken, or managed by the config file"),
                       body=True, found=True), body=oncall_models.ScheduleUpdate, params=(ID,)),
        Operation("delete", "/api/schedules/{id}", "Remove an on-call schedule", "on-call",
                  _api((204, None, "removed"), (409, Error, "managed by the config file"), found=True), params=(ID,)),
        Operation("get", "/api/schedules/{id}/oncall", "Who is on call (now, or at a time), until when, and who is next",
                  "on-call", _api((200, OnCallNow, OK), (400, Error, "an unreadable time"), found=True), params=(ID, AT)),
        Operation("get", "/api/schedules/{id}/shifts", "Final shifts in a window (at most 93 days; default the next 7)",
                  "on-call", _api((200, OnCallShiftList, OK), (400, Error, "an unreadable time or window"), found=True),
                  params=(ID, WINDOW_START, WINDOW_END)),
        Operation("post", "/api/schedules/{id}/overrides", "Put someone on call for a while, instead of the layers",
                  "on-call", _api((201, OnCallOverride, "created"), (409, Error, "overlaps another override"), body=True, found=True),
                  body=oncall_models.OverrideCreate, params=(ID,)),
        Operation("delete", "/api/schedules/{id}/overrides/{oid}", "Remove an override", "on-call",
                  _api((204, None, "removed"), found=True), params=(ID, OVERRIDE_ID)),
        Operation("post", "/api/schedules/{id}/swaps", "Give one person's shift to someone else", "on-call",
                  _api((201, OnCallSwap, "swapped"), (409, Error, "from_user is not on call in a shift starting then, or it was swapped already"),
                       body=True, found=True), body=oncall_models.SwapCreate, params=(ID,)),
        Operation("post", "/api/schedules/{id}/refresh", "Fetch the imported layers' calendars now", "on-call",
                  _api((200, OnCallSchedule, "the schedule, with each imported layer's fetch status"),
                       (400, Error, "this route takes no body"), found=True), params=(ID,)),
        Operation("get", "/schedules/{token}.ics", "The schedule's shifts as an iCal feed (the token is the secret)",
                  "on-call", {200: ("calendar", "a week back to 60 days ahead, one event per shift"),
                              404: (Error, "no schedule has this feed token"), 500: (Error, "a bug"),
                              503: (Error, "the database is away")}, auth=None, params=(FEED_TOKEN,)),
        # people's notification rules
        Operation("get", "/api/users/{user_id}/notification-rules", "How a person is reached when paged", "people",
                  _api((200, NotificationRules, OK), (400, Error, "not a Slack user ID")), params=(USER,)),
        Operation("put", "/api/users/{user_id}/notification-rules", "Set a person's contacts and notification rules",
                  "people", _api((200, NotificationRules, OK), body=True), body=models.NotificationRulesUpdate,
                  params=(USER,)),
        Operation("post", "/api/users/{user_id}/test-page", "Send a person a test page by each method of their rules",
                  "people", _api((202, TestPages, "queued; GET /api/outbound-channels/{id}/deliveries or /health shows how it went"),
                                 (400, Error, "not a Slack user ID, or a body was sent")),
                  params=(USER,), body=EmptyBody, body_required=False),
        # reports
        Operation("get", "/api/delivery", "Is anything reaching Pulser, and Slack?", "operations", _api((200, Report, OK))),
        Operation("get", "/api/status", "What Pulser watches and how it stands", "operations", _api((200, Report, OK))),
    ]
    return ops


def _incident_operations(prefix: str, *, aliases: bool = False) -> list[Operation]:
    tag = "incidents"
    alias = " (alias)" if aliases else ""
    optional = {"$ref": "#/components/schemas/EmptyBody"}
    return [
        Operation("get", prefix, "Incidents, filtered and paged" + alias, tag,
                  _api((200, IncidentList, OK), (400, Error, "invalid filter: detail names the parameter")),
                  params=INCIDENT_FILTERS),
        Operation("get", prefix + "/{id}", "One incident with its timeline, occurrences and notes" + alias, tag,
                  _api((200, IncidentDetail, OK), found=True), params=(ID,)),
        Operation("post", prefix + "/{id}/ack", "Acknowledge an incident" + alias, tag,
                  _api((200, IncidentChanged, OK), (409, Error, "cannot acknowledge: resolved or already acknowledged"),
                       body=True, found=True), body=optional, params=(ID,), body_required=False),
        Operation("post", prefix + "/{id}/snooze", "Snooze an incident" + alias, tag,
                  _api((200, IncidentChanged, OK), (409, Error, "cannot snooze: resolved"), body=True, found=True),
                  body=SnoozeBody, params=(ID,)),
        Operation("post", prefix + "/{id}/resolve", "Resolve an incident" + alias, tag,
                  _api((200, IncidentChanged, OK), (409, Error, "cannot resolve: already resolved"), body=True, found=True),
                  body=optional, params=(ID,), body_required=False),
    ]


# --- the document ----------------------------------------------------------------------------------


@cache
def document() -> dict[str, Any]:
    ops = operations()
    named: dict[str, type[BaseModel]] = {}
    for op in ops:
        for model in [op.body, *(m for m, _ in op.responses.values())]:
            if isinstance(model, type) and issubclass(model, BaseModel):
                named[model.__name__] = model
    named["BulkBody"] = BulkBody
    named["EmptyBody"] = EmptyBody
    _, schemas = models_json_schema(
        [(m, "validation") for m in named.values()], ref_template="#/components/schemas/{model}"
    )
    components = dict(schemas.get("$defs", {}))
    components["EventRoutes"] = {
        "type": "object",
        "description": "event type → channel (#name or ID); null or left out sends the type to SLACK_CHANNEL",
        "propertyNames": {"enum": ["ci", "deploy", "error_rate", "scheduled_task", "manual"]},
        "additionalProperties": {"type": ["string", "null"]},
    }
    paths: dict[str, dict] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pulser",
            "version": _version(),
            "description": (
                "The HTTP side of Pulser: heartbeats, alert webhooks, platform events, the admin API (bearer "
                "PULSER_ADMIN_TOKEN) and health. Errors are always JSON: {\"error\": …, \"detail\": …}."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "description": "PULSER_ADMIN_TOKEN"},
                "webhook": {
                    "type": "http", "scheme": "bearer",
                    "description": "PULSER_WEBHOOK_TOKEN for generic, alertmanager and /events; Sentry, GitHub and "
                    "Heroku sign their deliveries with their own secret headers instead",
                },
            },
        },
    }


# Any route may answer these: the size limit is checked before routing, and a bug is a bug.
COMMON_RESPONSES = {
    413: (Error, "the body is larger than PULSER_MAX_BODY_BYTES"),
    500: (Error, "a bug: logged with its trace, never shown"),
}


def _version() -> str:
    try:
        return metadata.version("pulser")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0"


def _operation(op: Operation) -> dict[str, Any]:
    responses = {**COMMON_RESPONSES, **op.responses}
    out: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {str(status): _response(model, text) for status, (model, text) in sorted(responses.items())},
    }
    out["security"] = [{op.auth: []}] if op.auth else []
    if op.params:
        out["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.required or p.where == "path", "description": p.description,
             "schema": p.schema}
            for p in op.params
        ]
    if op.body is not None:
        schema = {"$ref": f"#/components/schemas/{op.body.__name__}"} if isinstance(op.body, type) else op.body
        out["requestBody"] = {"required": op.body_required, "content": {JSON: {"schema": schema}}}
    elif op.raw_body:
        out["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
    return out


def _response(model: Any, text: str) -> dict[str, Any]:
    if model is None and text.startswith("the OpenAPI"):
        return {"description": text, "content": {JSON: {"schema": {"type": "object"}}}}
    if model is None and "→" in text:
        return {"description": text, "content": {JSON: {"schema": {"$ref": "#/components/schemas/EventRoutes"}}}}
    if model is None:
        return {"description": text}
    if model == "text":
        return {"description": text, "content": {"text/plain": {"schema": {"type": "string"}}}}
    if model == "calendar":
        return {"description": text, "content": {"text/calendar": {"schema": {"type": "string"}}}}
    return {"description": text, "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


def _operation_id(op: Operation) -> str:
    words = [w.strip("{}") for w in op.path.strip("/").replace("-", "_").replace(".", "_").split("/")]
    return op.method + "_" + "_".join(w for w in words if w)


async def serve(request: web.Request) -> web.Response:
    return web.json_response(_text(), dumps=lambda text: text)


@cache
def _text() -> str:
    return json.dumps(document(), ensure_ascii=False)


def add_routes(app: web.Application) -> None:
    app.router.add_get(OPENAPI_PATH, serve)

"""Typed shapes of the objects people define: routing rules, silences, inhibition rules, event
routes, deploy services and applications — as API request bodies and as entries of the
configuration file (PULSER_CONFIG). One set of pydantic models, from which both the OpenAPI
document (`handlers.http.openapi`) and the config file's JSON Schema (`alerts.config_file`) are
generated, so the two never describe the same object differently.

What the models do and do not do, and why:

- They *describe* (JSON Schema for the OpenAPI document and for editors) and they check the
  *structure* of the config file: unknown keys, wrong types, missing required keys, each error
  with its path.
- They do not replace the hand-written `validate_*` functions (`alerts.routing.validate_rule`,
  `alerts.matchers.validate_silence`, …), which stay the one authority on what a value may be.
  Those functions are shared with the Slack modals, which submit form text (lists as
  "a, b", durations as "2h", tags as "k=v"), they collect every field's error at once in words
  a person can act on ("must be a channel like #api-alerts or a channel ID like C012ABCDEF"),
  and the API's 400 bodies, tested field by field, are that contract. Pydantic's messages
  ("Input should be a valid string") and its coercions (strings to numbers, "yes" to true)
  would change both; re-creating every message in validators would give two copies of the rules.
- The models therefore accept what the validators accept (lists or comma-separated text,
  minutes as 90 or "2h"), and the test suite checks both halves against each other: every
  request body the suite sends that the sidecar accepts must match its documented schema, and
  every response the sidecar sends must match its documented response schema
  (tests/openapi_conformance.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.normalized import SEVERITIES, SOURCE_NAMES

Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
SourceName = Literal[SOURCE_NAMES]  # type: ignore[valid-type]
EventType = Literal["ci", "deploy", "error_rate", "scheduled_task", "manual"]
ActionType = Literal["github_workflow", "heroku_promotion", "webhook"]

CHANNEL = "a channel like #api-alerts or a channel ID like C012ABCDEF"
MINUTES = "whole minutes, or text like 90, 2h or 1d"
TEXT_LIST = "a list, or the same as comma-separated text"


class Strict(BaseModel):
    """Unknown keys are errors (a typo must not pass silently); no coercion of types."""

    model_config = ConfigDict(extra="forbid", strict=True)


class MatcherObject(Strict):
    name: str = Field(description="a label name: env, service, alertname, sentry.level …")
    op: Literal["=", "!=", "=~", "!~"] = Field("=", description="= equal, != not equal, =~ regex, !~ not regex")
    value: str = Field(description="the value, or a regular expression that must match the whole value")


Matchers = list[MatcherObject | str] | dict[str, str]
MATCHERS = (
    'a list of {"name", "op", "value"} objects or of matcher text like env=staging or alertname=~"Disk.*", '
    'or an object {"env": "staging"} meaning equality; at least one'
)


class RoutingRuleFields(Strict):
    """A routing rule: the alerts it matches (every condition must hold; an empty one matches
    everything) and what happens to them. Rules are tried in order; the first match wins unless
    it says continue_matching."""

    name: str = Field(min_length=1, max_length=80, description="1–80 characters; identifies the rule in the config file")
    envs: list[str] | str | None = Field(None, description=f"environments to match ({TEXT_LIST}), e.g. [production]")
    min_severity: Severity | Literal["any", ""] | None = Field(None, description="match this severity and above")
    services: list[str] | str | None = Field(None, description=f"services to match ({TEXT_LIST})")
    sources: list[SourceName] | str | None = Field(None, description=f"sources to match ({TEXT_LIST}): {', '.join(SOURCE_NAMES)}")
    tags: dict[str, str | int | float] | str | None = Field(
        None, description='tags that must all match: {"team": "payments"} or text like team=payments, region=eu'
    )
    continue_matching: bool | None = Field(None, description="after this rule matches, keep trying the next ones")
    channel: str = Field(description=CHANNEL)
    mention: str | None = Field(None, description="@here, @channel, a user ID (U…) or a user-group ID (S…)")
    mention_min_severity: Severity | None = Field(None, description="mention only from this severity up (default high)")
    escalate_after_minutes: int | str | None = Field(None, description=f"escalate an unacknowledged incident after this: {MINUTES} (1 min – 7 days)")
    escalate_to: str | None = Field(None, description="who is paged on escalation: a user ID (U…) or a user-group ID (S…)")
    escalation_levels: int | str | None = Field(None, description="how many times to escalate, 1–10 (default 1)")
    runbook_url: str | None = Field(None, description="an http(s) link shown on the incident")
    auto_close_minutes: int | str | None = Field(None, description=f"resolve an incident quiet for this long: {MINUTES} (up to 30 days)")
    storm_threshold: int | str | None = Field(
        None, description="new incidents a minute this rule's channel takes one by one before the rest fold into a storm digest, 0–1000 (0: never fold; default PULSER_STORM_THRESHOLD)"
    )
    group_by: list[str] | str | None = Field(
        None, description="labels whose values make the alerts this rule matches one incident (Alertmanager's group_by), e.g. [alertname, service]"
    )


POLICY_ID = "the escalation policy that pages for this rule's incidents (GET /api/escalation-policies), or null"


class RoutingRuleCreate(RoutingRuleFields):
    position: int | None = Field(None, ge=1, description="1-based place in the order; past the end (or left out) means last")
    escalation_policy_id: int | None = Field(None, ge=1, description=POLICY_ID)


class RoutingRuleUpdate(BaseModel):
    """A partial update: the fields sent replace the rule's; the others stay. Read-only fields
    a GET returned (id, position, created_at, …) may be sent back unchanged and are ignored."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    envs: list[str] | str | None = None
    min_severity: Severity | Literal["any", ""] | None = None
    services: list[str] | str | None = None
    sources: list[SourceName] | str | None = None
    tags: dict[str, str | int | float] | str | None = None
    continue_matching: bool | None = None
    channel: str | None = None
    mention: str | None = None
    mention_min_severity: Severity | None = None
    escalate_after_minutes: int | str | None = None
    escalate_to: str | None = None
    escalation_levels: int | str | None = None
    runbook_url: str | None = None
    auto_close_minutes: int | str | None = None
    storm_threshold: int | str | None = None
    group_by: list[str] | str | None = None
    escalation_policy_id: int | None = Field(None, ge=1, description=POLICY_ID)


class RuleMove(Strict):
    position: int = Field(ge=1, description="the new 1-based place; past the end means last")


class SilenceCreate(Strict):
    """While active, incidents whose labels match every matcher are held back from Slack."""

    matchers: Matchers = Field(description=MATCHERS)
    duration: str | None = Field(None, description="how long from starts_at: 30m, 2h, 1d, 1h30m (1 minute – 90 days)")
    starts_at: str | None = Field(None, description="ISO 8601 time with a zone; default now", json_schema_extra={"format": "date-time"})
    ends_at: str | None = Field(None, description="ISO 8601 time with a zone, instead of duration", json_schema_extra={"format": "date-time"})
    comment: str | None = Field(None, max_length=500, description="why")
    created_by: str | None = Field(None, max_length=80, description="who asked for it")


class SilenceEntry(Strict):
    """A silence in the config file: a fixed window, so applying the file again never extends it.
    One that has ended is accepted and simply not applied."""

    matchers: Matchers = Field(description=MATCHERS)
    starts_at: str = Field(description="ISO 8601 time with a zone, e.g. 2026-05-01T12:00:00Z", json_schema_extra={"format": "date-time"})
    ends_at: str = Field(description="ISO 8601 time with a zone; 1 minute to 90 days after starts_at", json_schema_extra={"format": "date-time"})
    comment: str | None = Field(None, max_length=500, description="why")
    created_by: str | None = Field(None, max_length=80, description="who asked for it (default: config)")


class InhibitionRuleFields(Strict):
    """While an incident matching source_matchers fires, incidents matching target_matchers with
    the same values of the `equal` labels are held back."""

    name: str = Field(min_length=1, max_length=80, description="1–80 characters; identifies the rule in the config file")
    source_matchers: Matchers = Field(description=MATCHERS)
    target_matchers: Matchers = Field(description=MATCHERS)
    equal: list[str] | None = Field(None, description='label names whose values must be equal, e.g. ["service", "env"]')


class GithubWorkflowAction(Strict):
    repo: str = Field(description="owner/name")
    workflow: str | int = Field(description="the workflow's file name (deploy.yml) or numeric id")
    ref: str | None = Field(None, description="branch or tag to run it on (default main)")
    inputs: dict[str, str | int | float | bool] | None = Field(
        None, description="workflow_dispatch inputs; values may name {env}, {ref}, {reason}, {requested_by}, …"
    )


class HerokuPromotionAction(Strict):
    pipeline: str = Field(description="the pipeline's id (a UUID)")
    from_app: str = Field(description="the app to promote from")
    to_apps: list[str] | str = Field(description="1–20 apps to promote to")


class WebhookAction(Strict):
    url: str = Field(description="an http(s) URL; Pulser POSTs a signed JSON request to it")


class DeployServiceFields(Strict):
    """A service `/pulser deploy` knows and how it deploys."""

    name: str = Field(description="1–80 letters, digits, '.', '_' or '-'; unique, ignoring case")
    action_type: ActionType = Field(description="what starts a deploy")
    action: GithubWorkflowAction | HerokuPromotionAction | WebhookAction = Field(
        description="github_workflow: repo, workflow, ref, inputs; heroku_promotion: pipeline, from_app, to_apps; webhook: url"
    )
    default_env: str | None = Field(None, description="the environment a request starts with (default production)")
    requires_approval: bool | None = Field(None, description="someone other than the requester must approve")
    channel: str | None = Field(None, description=f"{CHANNEL}; empty: the channel of event type deploy")


class DeployServiceUpdate(BaseModel):
    """A partial update; `action` is replaced as a whole. Read-only fields may be sent back."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    action_type: ActionType | None = None
    action: dict[str, Any] | None = None
    default_env: str | None = None
    requires_approval: bool | None = None
    channel: str | None = None


EventRoutes = dict[EventType, str | None]


class ApplicationFields(BaseModel):
    """A heartbeat application (a job that checks in). On update every field is optional;
    read-only fields a GET returned may be sent back."""

    model_config = ConfigDict(extra="allow")
    name: str | None = Field(None, description="1–100 characters")
    expected_interval: int | str | None = Field(None, description="seconds between heartbeats, or text like 5m, 1h")
    grace_period: int | str | None = Field(None, description="extra time before it counts as late")
    schedule: str | None = Field(None, description="a cron expression like '0 2 * * *' instead of an interval")
    timezone: str | None = Field(None, description="IANA zone of the schedule, e.g. Europe/Berlin")
    channel: str | None = Field(None, description=CHANNEL)
    owner: str | None = Field(None, description="a Slack user ID (U…)")
    is_active: bool | None = Field(None, description="false pauses the checks")


class PlatformEvent(BaseModel):
    """`POST /events`: something that happened on the platform (a deploy, a CI run, …)."""

    model_config = ConfigDict(extra="forbid")
    event_type: EventType
    status: str | None = Field(None, description="ci: passed|failed; deploy: started|completed|failed; error_rate: exceeded|recovered; scheduled_task: completed|failed")
    service: str | None = None
    env: str | None = None
    severity: Severity | None = None
    title: str | None = None
    link: str | None = None
    occurred_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    deployment_id: str | int | None = None
    correlation: str | int | None = None
    details: dict[str, Any] | None = None
    actor: str | None = None
    event_id: str | int | None = Field(None, description="makes a retry of the same event a no-op")


class EscalationStep(BaseModel):
    """One step of an escalation policy (alerts.escalation.policies says what each kind does)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["wait", "slack_channel", "user", "oncall", "user_group", "outbound"]
    wait_minutes: int | None = Field(None, description="wait: minutes, 1–1440")
    target: str | None = Field(
        None, description="slack_channel: a channel ID or #name; user: a user ID (U…); oncall: a schedule's name; "
        "user_group: a user-group ID (S…)",
    )
    channel: str | int | None = Field(None, description="outbound: an outbound channel's name or id")
    mention: str | None = Field(None, description="slack_channel: @here, @channel, U… or S… to mention")
    min_severity: Severity | None = Field(None, description="take this step only from this severity up")


class EscalationPolicyFields(BaseModel):
    """An escalation policy: steps taken in order until somebody acknowledges, then repeated."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    repeat: int = Field(0, ge=0, le=10, description="how many more times the steps are taken after the last one")
    steps: list[EscalationStep] = Field(min_length=1, max_length=30)


class OutboundChannelFields(BaseModel):
    """A destination beyond Slack. `settings` depend on the kind (GET /api/outbound-channels lists
    each kind's secret fields); secrets are accepted, never returned, and kept when left out."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    kind: Literal["email", "discord", "teams", "webhook", "github", "twilio", "pagerduty"] | None = Field(
        None, description="required when creating; cannot change"
    )
    settings: dict[str, Any] = Field(default_factory=dict)


class Contacts(BaseModel):
    """Where a person's SMS and e-mail pages go. Empty or null clears one."""

    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, description="an e-mail address, like ada@example.com; needed by e-mail rules")
    phone: str | None = Field(None, description="a phone number in E.164 form, like +14155550123; needed by SMS rules")


class NotificationRule(BaseModel):
    """One way to reach a person, some minutes after they are paged."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["slack_dm", "sms", "email"]
    delay_minutes: int = Field(0, ge=0, le=1440, description="minutes after the page, 0–1440; no sooner than the rule before")
    position: int | None = Field(None, description="read-only: the order is the list's")


class NotificationRulesUpdate(BaseModel):
    """`PUT /api/users/{user_id}/notification-rules`: a field left out keeps what is stored. Read-only
    fields a GET returned (user_id, uses_default, updated_at) may be sent back and are ignored."""

    model_config = ConfigDict(extra="allow")
    contacts: Contacts | None = None
    rules: list[NotificationRule] | None = Field(
        None, max_length=10, description="in order, up to 10; empty: the default, a Slack DM at once"
    )

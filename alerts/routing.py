"""Routing rules: which Slack channels an incident goes to, with whom mentioned and how escalated.

Alertmanager's routing tree, flattened (and Grafana OnCall's routes): rules are walked in position
order and a rule matches when all of its conditions hold, an empty condition holding for every
alert. The first match wins unless it says `continue_matching`, in which case later rules are
tried too. When nothing matches, the incident goes to the default route (SLACK_CHANNEL, no
mention, no escalation). One channel gets one message, so routes are de-duplicated by channel.

Pure: no I/O. `validate_rule` is the one validator of the admin API and the Slack modal, so both
refuse the same input with the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from alerts.applications import CHANNEL, format_duration
from alerts.normalized import SEVERITIES, SOURCE_NAMES, NormalizedAlert, severity_at_least
from alerts.sources.common import normalize_env
from storage import routing_rules

NAME_MAX = 80
ESCALATE_AFTER_RANGE = (1, 10080)  # the table's CHECKs: a week
AUTO_CLOSE_RANGE = (1, 43200)  # thirty days
ESCALATION_LEVELS_RANGE = (1, 10)
DEFAULT_MENTION_MIN_SEVERITY = "high"
VALUE_MAX = 200  # one env, service or tag part
URL_MAX = 2000

# The fields a person edits, in the order forms and audit entries show them (storage's columns).
FIELDS: tuple[str, ...] = routing_rules.EDITABLE
STORM_THRESHOLD_RANGE = (0, 1000)
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
GROUP_BY_MAX = 10

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
# What Slack puts in a message when someone picks a person or group: <@U…|name>, <!subteam^S…|@team>.
_USER_REFERENCE = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")
_GROUP_REFERENCE = re.compile(r"^<!subteam\^(S[A-Z0-9]{2,})(?:\|[^>]*)?>$")
_BROADCASTS = {"@here": "@here", "<!here>": "@here", "@channel": "@channel", "<!channel>": "@channel"}
_MINUTES = re.compile(r"^\s*(\d{1,9})\s*(m|min|mins|minutes?|h|hours?|d|days?)?\s*$", re.IGNORECASE)
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}
_PLAIN_VALUE = re.compile(r"^[^\x00-\x1f\x7f]+$")  # no control characters
_ENV = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


@dataclass(frozen=True)
class RoutingRule:
    """One row of `routing_rules`, as the pipeline and the editors read it."""

    id: int
    position: int
    name: str
    envs: tuple[str, ...]
    min_severity: str | None
    services: tuple[str, ...]
    sources: tuple[str, ...]
    tags: dict[str, str] = field(hash=False)  # dicts are unhashable; equal rules still compare equal
    continue_matching: bool = False
    channel: str = ""
    mention: str | None = None
    mention_min_severity: str = DEFAULT_MENTION_MIN_SEVERITY
    escalate_after_minutes: int | None = None
    escalate_to: str | None = None
    escalation_levels: int = 1
    runbook_url: str | None = None
    auto_close_minutes: int | None = None
    storm_threshold: int | None = None
    group_by: tuple[str, ...] = ()
    escalation_policy_id: int | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    managed_by: str | None = None  # 'config': defined by the config file, read-only elsewhere

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "RoutingRule":
        """A rule from a storage row (arrays come as lists, jsonb as a dict)."""
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        for name in ("envs", "services", "sources", "group_by"):
            values[name] = tuple(values.get(name) or ())
        values["tags"] = {str(k): str(v) for k, v in (values.get("tags") or {}).items()}
        return cls(**values)

    @property
    def spec(self) -> "RuleSpec":
        """The editable part, to compare with a submitted RuleSpec or to merge a partial update into."""
        values = {name: getattr(self, name) for name in FIELDS}
        values["tags"] = dict(self.tags)
        return RuleSpec(**values)


@dataclass(frozen=True)
class RuleSpec:
    """What a person or the API decides about a rule, validated (see `validate_rule`)."""

    name: str
    envs: tuple[str, ...] = ()
    min_severity: str | None = None
    services: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    continue_matching: bool = False
    channel: str = ""
    mention: str | None = None
    mention_min_severity: str = DEFAULT_MENTION_MIN_SEVERITY
    escalate_after_minutes: int | None = None
    escalate_to: str | None = None
    escalation_levels: int = 1
    runbook_url: str | None = None
    auto_close_minutes: int | None = None
    # New incidents a minute this rule's channel takes one by one before the rest fold into a
    # storm digest (None: PULSER_STORM_THRESHOLD; 0: never fold).
    storm_threshold: int | None = None
    # Labels whose values make alerts this rule matches one incident (Alertmanager's group_by);
    # empty: each problem (source, service, env, fingerprint) is its own incident.
    group_by: tuple[str, ...] = ()
    # The escalation policy that pages for incidents this rule routes (alerts/escalation).
    escalation_policy_id: int | None = None

    def as_row(self) -> dict[str, Any]:
        """Column → value for storage: arrays as lists, tags as a plain dict."""
        row = {name: getattr(self, name) for name in FIELDS}
        for name in ("envs", "services", "sources", "group_by"):
            row[name] = list(row[name])
        row["tags"] = dict(self.tags)
        return row

    def as_json(self) -> dict[str, Any]:
        """The same, JSON-ready (for audit details and API answers)."""
        return self.as_row()


@dataclass(frozen=True)
class Route:
    """Where one incident goes and what happens there; rule_id None is the default route."""

    rule_id: int | None
    channel: str
    mention: str | None
    mention_min_severity: str = DEFAULT_MENTION_MIN_SEVERITY
    runbook_url: str | None = None
    escalate_after_minutes: int | None = None
    escalate_to: str | None = None
    escalation_levels: int = 0
    auto_close_minutes: int | None = None
    storm_threshold: int | None = None
    escalation_policy_id: int | None = None

    @classmethod
    def of_rule(cls, rule: RoutingRule) -> "Route":
        escalates = rule.escalate_after_minutes is not None and rule.escalate_to is not None
        return cls(
            rule_id=rule.id,
            channel=rule.channel,
            mention=rule.mention,
            mention_min_severity=rule.mention_min_severity,
            runbook_url=rule.runbook_url,
            escalate_after_minutes=rule.escalate_after_minutes if escalates else None,
            escalate_to=rule.escalate_to if escalates else None,
            escalation_levels=rule.escalation_levels if escalates else 0,
            auto_close_minutes=rule.auto_close_minutes,
            storm_threshold=rule.storm_threshold,
            escalation_policy_id=rule.escalation_policy_id,
        )


class RuleValidationError(ValueError):
    """Field name → what is wrong with it, in words a person can act on."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# --- matching ------------------------------------------------------------------------------------


def matches(rule: RoutingRule, alert: NormalizedAlert, severity: str) -> bool:
    """All of the rule's conditions hold for this alert; `severity` is the incident's effective one."""
    if rule.envs and alert.env not in rule.envs:
        return False
    if rule.min_severity is not None and not severity_at_least(severity, rule.min_severity):
        return False
    if rule.services and alert.service not in rule.services:
        return False
    if rule.sources and alert.source not in rule.sources:
        return False
    return all(alert.tags.get(key) == value for key, value in rule.tags.items())


def route(
    rules: Sequence[RoutingRule], alert: NormalizedAlert, severity: str, default_channel: str
) -> list[Route]:
    """The routes of an alert: matching rules in position order, stopping at the first match that
    does not continue; the default route when none matches; one route per channel, first wins."""
    routes: list[Route] = []
    seen_channels: set[str] = set()
    matched = False
    for rule in sorted(rules, key=lambda r: r.position):
        if not matches(rule, alert, severity):
            continue
        matched = True
        if rule.channel not in seen_channels:
            seen_channels.add(rule.channel)
            routes.append(Route.of_rule(rule))
        if not rule.continue_matching:
            break
    if not matched:
        routes.append(default_route(default_channel))
    return routes


def default_route(channel: str) -> Route:
    """Where an alert no rule matched goes: SLACK_CHANNEL, nobody mentioned, no escalation."""
    return Route(rule_id=None, channel=channel, mention=None)


# --- validation ----------------------------------------------------------------------------------


def validate_rule(data: Mapping[str, Any]) -> RuleSpec:
    """A complete rule from the API's JSON or the Slack form; every field's error at once.

    Lists may be JSON arrays or comma-separated text, tags a JSON object or "k=v, k2=v2" text, and
    empty text means "not set" everywhere, so the form and the API can send what they naturally have.
    """
    errors: dict[str, str] = {}
    for key in sorted(set(data) - set(FIELDS)):
        errors[key] = "unknown field"

    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = f"required: 1–{NAME_MAX} characters"
    elif len(name.strip()) > NAME_MAX:
        errors["name"] = f"too long: {len(name.strip())} characters, at most {NAME_MAX}"
    else:
        name = name.strip()

    envs = _list_field(data.get("envs"), "envs", errors, "environments like production, staging")
    envs = _unique(normalize_env(e) for e in envs)
    if "envs" not in errors and any(not _ENV.match(e) or len(e) > VALUE_MAX for e in envs):
        errors["envs"] = "environment names are letters, digits, '-', '_' and '.', like production or staging"
    services = _list_field(data.get("services"), "services", errors, "service names like api, billing")
    sources = _unique(s.lower() for s in _list_field(data.get("sources"), "sources", errors, "source names"))
    unknown_sources = [s for s in sources if s not in SOURCE_NAMES]
    if unknown_sources and "sources" not in errors:
        errors["sources"] = f"unknown source {unknown_sources[0]!r}: use {', '.join(SOURCE_NAMES)}"
    tags = _tags_field(data.get("tags"), errors)

    min_severity = _severity_field(data.get("min_severity"), "min_severity", errors, allow_any=True)
    mention_min_severity = _severity_field(
        data.get("mention_min_severity"), "mention_min_severity", errors, allow_any=False
    ) or DEFAULT_MENTION_MIN_SEVERITY

    continue_matching = data.get("continue_matching")
    if _blank(continue_matching):
        continue_matching = False
    elif not isinstance(continue_matching, bool):
        errors["continue_matching"] = "must be true or false"

    channel = data.get("channel")
    channel = channel.strip() if isinstance(channel, str) else channel
    if not channel:
        errors["channel"] = "required: a channel like #api-alerts or a channel ID like C012ABCDEF"
    elif not isinstance(channel, str) or not CHANNEL.match(channel):
        errors["channel"] = "must be a channel like #api-alerts or a channel ID like C012ABCDEF"

    mention = _mention_field(data.get("mention"), errors)
    escalate_to = _person_field(data.get("escalate_to"), "escalate_to", errors)
    escalate_after = _minutes_field(
        data.get("escalate_after_minutes"), "escalate_after_minutes", ESCALATE_AFTER_RANGE, errors
    )
    if escalate_after is not None and escalate_to is None and "escalate_to" not in errors:
        errors["escalate_to"] = "required when escalating: a user ID like U012ABCDEF or a user-group ID like S012ABCDEF"
    if escalate_to is not None and escalate_after is None and "escalate_after_minutes" not in errors:
        errors["escalate_after_minutes"] = (
            f"required when escalate_to is set: minutes from {ESCALATE_AFTER_RANGE[0]} to {ESCALATE_AFTER_RANGE[1]}"
        )
    levels = _whole_number_field(data.get("escalation_levels"), "escalation_levels", ESCALATION_LEVELS_RANGE, errors)
    auto_close = _minutes_field(data.get("auto_close_minutes"), "auto_close_minutes", AUTO_CLOSE_RANGE, errors)
    storm_threshold = _whole_number_field(data.get("storm_threshold"), "storm_threshold", STORM_THRESHOLD_RANGE, errors)
    group_by = _list_field(data.get("group_by"), "group_by", errors, "label names like alertname, service")
    bad_labels = [label for label in group_by if not LABEL_NAME.fullmatch(label)]
    if bad_labels and "group_by" not in errors:
        errors["group_by"] = (
            f"not a label name: {', '.join(bad_labels[:3])}; label names are letters, digits and _ . - "
            "(e.g. alertname, service, env)"
        )
    elif len(group_by) > GROUP_BY_MAX and "group_by" not in errors:
        errors["group_by"] = f"at most {GROUP_BY_MAX} labels"
    runbook_url = _url_field(data.get("runbook_url"), errors)
    policy_id = data.get("escalation_policy_id")
    if _blank(policy_id):
        policy_id = None
    elif isinstance(policy_id, str) and policy_id.strip().isdigit():
        policy_id = int(policy_id.strip())
    if policy_id is not None and (not isinstance(policy_id, int) or isinstance(policy_id, bool) or policy_id < 1):
        errors["escalation_policy_id"] = "an escalation policy's id (GET /api/escalation-policies lists them), or null"

    if errors:
        raise RuleValidationError(errors)
    return RuleSpec(
        name=name,
        envs=tuple(envs),
        min_severity=min_severity,
        services=tuple(services),
        sources=tuple(sources),
        tags=tags,
        continue_matching=continue_matching,
        channel=channel,
        mention=mention,
        mention_min_severity=mention_min_severity,
        escalate_after_minutes=escalate_after,
        escalate_to=escalate_to,
        escalation_levels=levels if levels is not None else 1,
        runbook_url=runbook_url,
        auto_close_minutes=auto_close,
        storm_threshold=storm_threshold,
        group_by=tuple(group_by),
        escalation_policy_id=policy_id,
    )


def rule_changes(old: RuleSpec, new: RuleSpec) -> dict[str, dict[str, Any]]:
    """Changed fields as {field: {"from", "to"}}, JSON-ready: the audit log's shape for updates."""
    before, after = old.as_json(), new.as_json()
    return {f: {"from": before[f], "to": after[f]} for f in FIELDS if before[f] != after[f]}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def _list_field(value: Any, field_name: str, errors: dict[str, str], what: str) -> list[str]:
    """A list from a JSON array or comma-separated text; items trimmed, empty ones dropped."""
    if _blank(value):
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        errors[field_name] = f"must be a list of {what}, or the same as comma-separated text"
        return []
    cleaned = _unique(item.strip() for item in items if item.strip())
    # No commas inside a value: the Slack form shows lists as comma-separated text and must read them back.
    if any(len(item) > VALUE_MAX or not _PLAIN_VALUE.match(item) or "," in item for item in cleaned):
        errors[field_name] = f"each value is 1–{VALUE_MAX} characters of plain text without commas"
        return []
    return cleaned


def _tags_field(value: Any, errors: dict[str, str]) -> dict[str, str]:
    """Tags from a JSON object or "k=v, k2=v2" text; keys and values both required."""
    if _blank(value):
        return {}
    pairs: list[tuple[Any, Any]]
    if isinstance(value, str):
        pairs = []
        for part in value.split(","):
            if not part.strip():
                continue
            key, equals, tag_value = part.partition("=")
            if not equals:
                errors["tags"] = f"{part.strip()!r} is not key=value; write tags like team=payments, region=eu"
                return {}
            pairs.append((key, tag_value))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        errors["tags"] = 'must be an object like {"team": "payments"} or text like team=payments, region=eu'
        return {}
    tags: dict[str, str] = {}
    for key, tag_value in pairs:
        if isinstance(tag_value, (int, float)) and not isinstance(tag_value, bool):
            tag_value = str(tag_value)
        if not isinstance(key, str) or not isinstance(tag_value, str) or not key.strip() or not tag_value.strip():
            errors["tags"] = "every tag needs a key and a value, like team=payments"
            return {}
        key, tag_value = key.strip(), tag_value.strip()
        # Commas and a key's "=" would not survive the form's "k=v, k2=v2" text, so neither is allowed.
        if (
            len(key) > VALUE_MAX
            or len(tag_value) > VALUE_MAX
            or not _PLAIN_VALUE.match(key + tag_value)
            or "," in key + tag_value
            or "=" in key
        ):
            errors["tags"] = f"tag keys and values are 1–{VALUE_MAX} characters of plain text, without commas"
            return {}
        tags[key] = tag_value
    return tags


def _severity_field(value: Any, field_name: str, errors: dict[str, str], *, allow_any: bool) -> str | None:
    if _blank(value) or (allow_any and isinstance(value, str) and value.strip().lower() == "any"):
        return None
    if isinstance(value, str) and value.strip().lower() in SEVERITIES:
        return value.strip().lower()
    errors[field_name] = f"must be one of {', '.join(SEVERITIES)}" + (", or empty for any" if allow_any else "")
    return None


def _slack_id(value: str) -> str:
    """An ID from what Slack pastes for a mention (<@U…|name>, <!subteam^S…>), else the text."""
    for pattern in (_USER_REFERENCE, _GROUP_REFERENCE):
        match = pattern.match(value)
        if match:
            return match.group(1)
    return value


def _mention_field(value: Any, errors: dict[str, str]) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _BROADCASTS:
            return _BROADCASTS[text.lower()]
        text = _slack_id(text)
        if USER_ID.match(text) or USERGROUP_ID.match(text):
            return text
    errors["mention"] = "must be @here, @channel, a user ID like U012ABCDEF, a user-group ID like S012ABCDEF, or empty"
    return None


def _person_field(value: Any, field_name: str, errors: dict[str, str]) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        text = _slack_id(value.strip())
        if USER_ID.match(text) or USERGROUP_ID.match(text):
            return text
    errors[field_name] = "must be a user ID like U012ABCDEF or a user-group ID like S012ABCDEF"
    return None


def _minutes_field(value: Any, field_name: str, bounds: tuple[int, int], errors: dict[str, str]) -> int | None:
    """Whole minutes; text may say 90, 90m, 2h or 1d."""
    if _blank(value):
        return None
    low, high = bounds
    allowed = f"must be whole minutes from {low} to {high} ({format_duration(high * 60)}); 90, 2h or 1d also work"
    minutes: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    elif isinstance(value, str):
        match = _MINUTES.match(value)
        if match:
            unit = (match.group(2) or "m")[0].lower()
            minutes = int(match.group(1)) * _UNIT_MINUTES[unit]
    if minutes is None or not low <= minutes <= high:
        errors[field_name] = allowed
        return None
    return minutes


def _whole_number_field(value: Any, field_name: str, bounds: tuple[int, int], errors: dict[str, str]) -> int | None:
    if _blank(value):
        return None
    low, high = bounds
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not low <= number <= high:
        errors[field_name] = f"must be a whole number from {low} to {high}"
        return None
    return number


def _url_field(value: Any, errors: dict[str, str]) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = None
        if (
            parts is not None
            and parts.scheme in ("http", "https")
            and parts.netloc
            and len(text) <= URL_MAX
            and not any(c.isspace() for c in text)
        ):
            return text
    errors["runbook_url"] = "must be an http:// or https:// link, like https://wiki.example.com/runbooks/api"
    return None


# --- descriptions --------------------------------------------------------------------------------


def describe_conditions(rule: RoutingRule | RuleSpec) -> str:
    """What a rule matches, in one line of Slack mrkdwn (user text escaped):
    "env in production · severity ≥ high · service in api"; "every alert" when it has no conditions."""
    parts = []
    if rule.envs:
        parts.append("env in " + ", ".join(_escape(e) for e in rule.envs))
    if rule.min_severity:
        parts.append(f"severity ≥ {rule.min_severity}")
    if rule.services:
        parts.append("service in " + ", ".join(_escape(s) for s in rule.services))
    if rule.sources:
        parts.append("source in " + ", ".join(rule.sources))
    if rule.tags:
        parts.append("tags " + ", ".join(f"{_escape(k)}={_escape(v)}" for k, v in rule.tags.items()))
    return " · ".join(parts) if parts else "every alert"


def describe_actions(rule: RoutingRule | RuleSpec) -> str:
    """What a matching rule does, in one line of Slack mrkdwn:
    "→ #api-alerts, @here for high+, escalate to <@U1> after 15 min ×2, runbook"."""
    parts = [f"→ {channel_reference(rule.channel)}"]
    if rule.mention:
        who = person_reference(rule.mention)
        if rule.mention_min_severity == SEVERITIES[0]:
            parts.append(f"{who} on every alert")
        else:
            parts.append(f"{who} for {rule.mention_min_severity}+")
    if rule.escalate_after_minutes is not None and rule.escalate_to:
        times = f" ×{rule.escalation_levels}" if rule.escalation_levels > 1 else ""
        after = format_duration(rule.escalate_after_minutes * 60)
        parts.append(f"escalate to {person_reference(rule.escalate_to)} after {after}{times}")
    if rule.escalation_policy_id is not None:
        parts.append(f"pages by escalation policy #{rule.escalation_policy_id}")
    if rule.runbook_url:
        parts.append("runbook")
    if rule.group_by:
        parts.append(f"grouped by {', '.join(_escape(label) for label in rule.group_by)}")
    if rule.storm_threshold == 0:
        parts.append("never folds into a storm digest")
    elif rule.storm_threshold is not None:
        parts.append(f"storm digest after {rule.storm_threshold} new incidents a minute")
    if rule.auto_close_minutes is not None:
        parts.append(f"auto-close after {format_duration(rule.auto_close_minutes * 60)} quiet")
    if rule.continue_matching:
        parts.append("then keep matching")
    return ", ".join(parts)


def channel_reference(channel: str) -> str:
    """A channel ID as Slack's link (<#C…>, shown as #name), a #name as it is."""
    return f"<#{channel}>" if channel[:1] in ("C", "G") else _escape(channel)


def person_reference(who: str) -> str:
    """@here/@channel as words (so a list never pings anyone), IDs as Slack mentions."""
    if USER_ID.match(who):
        return f"<@{who}>"
    if USERGROUP_ID.match(who):
        return f"<!subteam^{who}>"
    return _escape(who)


def _escape(text: str) -> str:
    """Slack mrkdwn control characters, so a service called <!channel> is shown, never obeyed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

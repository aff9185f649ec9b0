"""The configuration file (PULSER_CONFIG): routing rules, silences, inhibition rules, event routes,
deploy services, outbound channels, on-call schedules and escalation policies as YAML, checked here
without touching the database.

Checking happens in three passes, each error carrying its path (`routing_rules[2].channel`), the
file's line and what is allowed:

1. YAML syntax (the parser's own position);
2. structure against the models of `alerts.models` — unknown keys, wrong types, missing keys —
   the same models the published JSON Schema (`pulser config schema`) is generated from;
3. each entry through the validator the API and Slack use (`validate_rule`, `validate_silence`,
   …), so the file cannot hold a value the API would refuse, and duplicate names (a name is how
   an entry finds its object again on the next apply).

Entries refer to each other by name, never by id (ids differ between installations): a routing
rule's `escalation_policy`, a policy step's outbound `channel` and on-call `target`. A name the
file does not define must be an object Pulser already has, made in Slack or the API; `known` says
which (the apply passes them); without it (`pulser config check` offline) such a name is a
warning, and the apply refuses the file if it is unknown there too.

An outbound channel's settings may take any text from the environment (`${SMTP_PASSWORD}`, see
`alerts.config_env`); an unset variable is an error, a secret written in clear a warning.

Pure: no I/O beyond reading the text and the environment it is given.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError as ModelError

from alerts.applications import ValidationError
from alerts.config_env import interpolate, references
from alerts.deploys import validate_service
from alerts.escalation.policies import PolicyValidationError, parse_policy
from alerts.matchers import (
    InhibitionSpec,
    Matcher,
    validate_inhibition_rule,
    validate_silence,
)
from alerts.models import (
    DeployServiceFields,
    EscalationPolicyFields,
    EventType,
    InhibitionRuleFields,
    RoutingRuleFields,
    SilenceEntry,
    Strict,
)
from alerts.oncall.models import ScheduleCreate
from alerts.oncall.validation import ScheduleSpec, ValidationError as ScheduleValidationError, validate_schedule
from alerts.outbound.channels import KINDS, ChannelConfigError, parse_config
from alerts.platform_events import validate_route
from alerts.routing import RuleSpec, RuleValidationError, validate_rule
from storage.deploys import ServiceSpec

SECTIONS = (
    "routing_rules", "silences", "inhibition_rules", "event_routes", "deploy_services", "outbound_channels", "schedules",
    "escalation_policies",
)  # fmt: skip
ChannelKind = Literal["email", "discord", "teams", "webhook", "github", "twilio", "pagerduty"]


class RoutingRuleEntry(RoutingRuleFields):
    """A routing rule in the config file: the API's fields, with its escalation policy named rather
    than numbered (the API's escalation_policy_id is not accepted here: ids differ between
    installations, names are what the file's other entries are known by)."""

    escalation_policy: str | None = Field(
        None, max_length=80,
        description="the escalation policy that pages for this rule's incidents, by name: one under escalation_policies "
        "or one made in Slack or the API",
    )


class OutboundChannelEntry(Strict):
    """A destination beyond Slack (e-mail, Discord, Teams, webhook, GitHub issue, Twilio SMS,
    PagerDuty). Write secrets as ${ENV_VAR}: the file then holds no secret, and the value comes
    from Pulser's environment when the file is applied."""

    name: str = Field(min_length=1, max_length=80, description="1–80 characters; unique; escalation policy steps name it")
    kind: ChannelKind = Field(description="what it sends to; fixed once made (another kind takes another name)")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="the kind's settings, as the API takes them (GET /api/outbound-channels lists each kind's secret "
        "fields); any text may be ${ENV_VAR} (or contain it), replaced from the environment; $$ is a literal $",
    )


class ScheduleEntry(ScheduleCreate):
    """An on-call schedule: its time zone and layers, as the API takes them. Overrides and swaps
    are made in Slack or the API, also on a schedule the file manages, and an apply keeps them."""


class EscalationPolicyEntry(EscalationPolicyFields):
    """An escalation policy, as the API takes it; in the file an outbound step names its channel
    (`channel: ops-email`), an on-call step its schedule (`target: Primary`)."""


class ConfigFile(BaseModel):
    """Pulser's configuration as code. Every section is optional; an object the file defines is
    managed by it (read-only in Slack and the API) and removed when the file stops listing it."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Pulser configuration")
    version: Literal[1] = Field(1, description="the file format's version: 1")
    routing_rules: list[RoutingRuleEntry] | None = Field(
        None, description="tried in this order, before any rule made in Slack or over the API"
    )
    silences: list[SilenceEntry] | None = None
    inhibition_rules: list[InhibitionRuleFields] | None = None
    event_routes: dict[EventType, str] | None = Field(
        None, description="event type → channel; types left out go to SLACK_CHANNEL (or a route set in Slack)"
    )
    deploy_services: list[DeployServiceFields] | None = None
    outbound_channels: list[OutboundChannelEntry] | None = Field(
        None, description="destinations beyond Slack that escalation policies send to; secrets as ${ENV_VAR}"
    )
    schedules: list[ScheduleEntry] | None = Field(
        None, description="on-call schedules (name, time_zone, layers); overrides and swaps stay Slack's and the API's"
    )
    escalation_policies: list[EscalationPolicyEntry] | None = Field(
        None, description="who is paged, step by step, while nobody acknowledges; routing rules name them"
    )


def json_schema() -> dict[str, Any]:
    """The file's JSON Schema (draft 2020-12), for editors and `pulser config check`'s first pass."""
    schema = ConfigFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def json_schema_text() -> str:
    """What docs/pulser.schema.json holds, byte for byte (a test compares them)."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class ConfigError:
    path: str  # routing_rules[2].channel; "" for the file as a whole
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '(file)'}: {self.message}"


@dataclass(frozen=True)
class SilenceConfig:
    matchers: list[dict[str, str]]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str


@dataclass(frozen=True)
class KnownNames:
    """What Pulser has that the file does not manage (made in Slack or the API): the names the
    file's entries may refer to besides each other's. Managed objects are left out: an apply
    removes the ones the file no longer lists."""

    channels: frozenset[str] = frozenset()
    schedules: frozenset[str] = frozenset()
    policies: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    kind: str
    settings: dict[str, Any] = field(repr=False)  # with the environment's values, secrets too: never shown or logged
    loc: tuple = ()


@dataclass(frozen=True)
class PolicyConfig:
    """A checked policy; an outbound step names its channel (`channel_name`, channel_id None) until
    the apply finds the channel's id."""

    name: str
    repeat: int
    steps: list[dict[str, Any]]
    loc: tuple = ()


@dataclass(frozen=True)
class PolicyRef:
    """A routing rule's `escalation_policy: <name>`, with where it is written."""

    name: str
    loc: tuple


@dataclass(frozen=True)
class ConfigSpec:
    """A checked file: what an apply makes true."""

    rules: list[RuleSpec] = field(default_factory=list)
    silences: list[SilenceConfig] = field(default_factory=list)
    inhibitions: list[InhibitionSpec] = field(default_factory=list)
    event_routes: dict[str, str] = field(default_factory=dict)
    services: list[ServiceSpec] = field(default_factory=list)
    channels: list[ChannelConfig] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    policies: list[PolicyConfig] = field(default_factory=list)
    rule_policies: dict[str, PolicyRef] = field(default_factory=dict)  # rule name → its policy
    warnings: list["ConfigError"] = field(default_factory=list)  # applies, but worth fixing
    line_of: Callable[[tuple], int | None] = field(default=lambda loc: None, repr=False, compare=False)

    def summary(self) -> str:
        return (
            f"{len(self.rules)} routing rule(s), {len(self.silences)} silence(s), "
            f"{len(self.inhibitions)} inhibition rule(s), {len(self.event_routes)} event route(s), "
            f"{len(self.services)} deploy service(s), {len(self.channels)} outbound channel(s), "
            f"{len(self.schedules)} schedule(s), {len(self.policies)} escalation policy(ies)"
        )

    def error_at(self, loc: tuple, message: str) -> "ConfigError":
        """An error found when applying, placed like the check's own (`loc` as in `PolicyRef.loc`;
        () for the file as a whole: an object it no longer lists)."""
        return ConfigError(_path(loc), self.line_of(loc) if loc else None, message)


class ConfigInvalid(Exception):
    """The file cannot be applied; `errors` says every reason, each with its place."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__(f"{len(errors)} error(s); first: {errors[0]}")


def check_text(
    text: str, *, now: datetime | None = None, env: Mapping[str, str] | None = None, known: KnownNames | None = None
) -> ConfigSpec:
    """The checked contents of a config file's text, or ConfigInvalid with every error.

    `env` fills `${VAR}` in channel settings (default: this process's environment); `known` is
    what Pulser has besides the file (None: not known here, so names the file does not define
    are warnings, not errors)."""
    now = now or datetime.now(timezone.utc)
    env = os.environ if env is None else env
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigInvalid([ConfigError("", mark.line + 1 if mark else None, f"not valid YAML: {problem}")]) from None
    lines = _Lines(root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigInvalid([ConfigError("", lines.at(()), "the file must be a mapping of sections: " + ", ".join(SECTIONS))])
    data = _plain(data)
    structure = _structure_errors(data, lines)
    spec, semantic, warnings = _entries(
        data, lines, now, env=env, known=known, broken={e.path for e, _ in structure if "[" not in e.path}
    )
    errors = [e for e, deep in structure if not (deep and any(s.path.startswith(e.path) for s in semantic))]
    reported = {e.path for e in errors}
    errors += [e for e in semantic if e.path not in reported]
    if errors:
        raise ConfigInvalid(sorted(errors, key=lambda e: (e.line or 0, e.path)))
    return replace(spec, warnings=sorted(warnings, key=lambda e: (e.line or 0, e.path)), line_of=lines.at)


# --- pass 2: structure ---------------------------------------------------------------------------------


def _structure_errors(data: dict, lines: "_Lines") -> list[tuple[ConfigError, bool]]:
    """(error, deep) per offending field; `deep` when the problem lies inside a field that may take
    several shapes (a matcher list, a deploy action): the entry's validator then says it better."""
    try:
        ConfigFile.model_validate(data)
    except ModelError as exc:
        groups: dict[tuple, list[dict]] = {}
        for error in exc.errors():
            loc = error["loc"]
            depth = 3 if loc and loc[0] in _ENTRY_MODELS else 2
            groups.setdefault(tuple(loc[:depth]), []).append({**error, "deep": len(loc) > depth})
        found = []
        for head, group in groups.items():
            deep = all(e["deep"] for e in group)
            found.append((ConfigError(_path(head), lines.at(head), _message(group, head)), deep))
        return found
    return []


def _message(group: list[dict], head: tuple) -> str:
    """What is wrong at `head`, and what is allowed there."""
    model, name = _field_of(head)
    described = model.model_fields[name].description if model is not None and name in model.model_fields else None
    kinds = {e["type"] for e in group}
    if "extra_forbidden" in kinds and not group[0]["deep"]:
        allowed = _ENTRY_MODELS[head[0]].model_fields if head[0] in _ENTRY_MODELS and len(head) == 3 else ConfigFile.model_fields
        return "unknown key; allowed: " + ", ".join(allowed)
    if "missing" in kinds and not group[0]["deep"]:
        return "required" + (f": {described}" if described else "")
    literals = [e["msg"].removeprefix("Input should be ") for e in group if e["type"] == "literal_error"]
    if literals:
        return "must be " + " or ".join(dict.fromkeys(literals)) + (f" ({described})" if described else "")
    if len(head) == 1 and head[0] in SECTIONS:
        return "must be a mapping of event type to channel" if head[0] == "event_routes" else "must be a list of entries"
    if len(head) == 2 and isinstance(head[1], int):
        return "must be a mapping of keys (an entry)"
    return "wrong type" + (f": {described}" if described else f" ({group[0]['msg']})")


_ENTRY_MODELS: dict[str, type[BaseModel]] = {
    "routing_rules": RoutingRuleEntry,
    "silences": SilenceEntry,
    "inhibition_rules": InhibitionRuleFields,
    "deploy_services": DeployServiceFields,
    "outbound_channels": OutboundChannelEntry,
    "schedules": ScheduleEntry,
    "escalation_policies": EscalationPolicyEntry,
}


def _field_of(head: tuple) -> tuple[type[BaseModel] | None, str | None]:
    """The model and field name an error location points at."""
    if len(head) == 3 and head[0] in _ENTRY_MODELS:
        return _ENTRY_MODELS[head[0]], str(head[2])
    if len(head) == 2 and head[0] in _ENTRY_MODELS:
        return _ENTRY_MODELS[head[0]], None
    if len(head) == 1:
        return ConfigFile, str(head[0])
    if len(head) == 2 and head[0] == "event_routes":
        return None, None
    return ConfigFile, None


# --- pass 3: each entry through the API's validator --------------------------------------------------------


def _entries(
    data: dict, lines: "_Lines", now: datetime, *, env: Mapping[str, str], known: KnownNames | None, broken: set[str]
) -> tuple[ConfigSpec, list[ConfigError], list[ConfigError]]:
    """Every entry through its validator, even one with a structure error (its other fields may
    be wrong too: the file is fixed in one go); `broken` sections are skipped whole. Returns the
    spec, the errors and the warnings."""
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []

    def entries(section: str) -> list[tuple[int, dict]]:
        items = data.get(section) or []
        if section in broken or not isinstance(items, list):
            return []
        return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]

    def report(section: str, index: int, field_errors: Mapping[str, str], *, under: tuple = ()) -> None:
        for name, message in field_errors.items():
            head = (section, index, *under, *_key_parts(str(name)))
            errors.append(ConfigError(_path(head), lines.at(head), message))

    def names_in(section: str) -> set[str]:
        return {item["name"].strip() for _, item in entries(section) if isinstance(item.get("name"), str)}

    rules: list[RuleSpec] = []
    rule_policies: dict[str, PolicyRef] = {}
    file_policies = names_in("escalation_policies")
    for i, item in entries("routing_rules"):
        item = dict(item)
        policy = item.pop("escalation_policy", None)
        item.pop("escalation_policy_id", None)  # the structure pass names the file's key instead
        try:
            rule = validate_rule(item)
        except RuleValidationError as exc:
            report("routing_rules", i, exc.errors)
            continue
        rules.append(rule)
        if isinstance(policy, str) and policy.strip():
            ref = PolicyRef(policy.strip(), ("routing_rules", i, "escalation_policy"))
            rule_policies[rule.name] = ref
            if ref.name not in file_policies:
                _unknown_name(ref.loc, "escalation policy", ref.name, known.policies if known else None, file_policies,
                              "escalation_policies", lines, errors, warnings)
    _unique_names(data, "routing_rules", lines, errors, fold=False)

    silences: list[SilenceConfig] = []
    for i, item in entries("silences"):
        try:
            silences.append(_silence(item, now))
        except ValidationError as exc:
            report("silences", i, exc.errors)

    inhibitions: list[InhibitionSpec] = []
    for i, item in entries("inhibition_rules"):
        try:
            inhibitions.append(validate_inhibition_rule(item))
        except ValidationError as exc:
            report("inhibition_rules", i, exc.errors)
    _unique_names(data, "inhibition_rules", lines, errors, fold=False)

    routes: dict[str, str] = {}
    if "event_routes" not in broken and isinstance(data.get("event_routes"), dict):
        for event_type, channel in data["event_routes"].items():
            head = ("event_routes", event_type)
            try:
                kind, target = validate_route(event_type, channel)
            except ValidationError as exc:
                errors.append(ConfigError(_path(head), lines.at(head), "; ".join(exc.errors.values())))
                continue
            routes[kind] = target

    services: list[ServiceSpec] = []
    for i, item in entries("deploy_services"):
        try:
            services.append(validate_service(item))
        except ValidationError as exc:
            report("deploy_services", i, exc.errors)
    _unique_names(data, "deploy_services", lines, errors, fold=True)

    channels: list[ChannelConfig] = []
    for i, item in entries("outbound_channels"):
        channel = _channel(item, ("outbound_channels", i), env, lines, errors, warnings)
        if channel is not None:
            channels.append(channel)
    _unique_names(data, "outbound_channels", lines, errors, fold=False)

    schedules: list[ScheduleSpec] = []
    for i, item in entries("schedules"):
        try:
            schedules.append(validate_schedule(item))
        except ScheduleValidationError as exc:
            report("schedules", i, exc.errors)
    _unique_names(data, "schedules", lines, errors, fold=True)

    policies: list[PolicyConfig] = []
    file_channels, file_schedules = names_in("outbound_channels"), names_in("schedules")
    for i, item in entries("escalation_policies"):
        loc = ("escalation_policies", i)
        named = _ChannelNames()
        try:
            spec = parse_policy(item, channels=named, schedules=None)
        except PolicyValidationError as exc:
            report("escalation_policies", i, {k: _by_name(k, v) for k, v in exc.errors.items()})
            continue
        steps = [{**step, "channel_id": None, "channel_name": named.name_of(step["channel_id"])} for step in spec.steps]
        for n, step in enumerate(steps):
            if step["kind"] == "outbound" and step["channel_name"] not in file_channels:
                _unknown_name((*loc, "steps", n, "channel"), "outbound channel", step["channel_name"],
                              known.channels if known else None, file_channels, "outbound_channels", lines, errors, warnings)
            elif step["kind"] == "oncall" and step["target"].lower() not in {s.lower() for s in file_schedules}:
                _unknown_name((*loc, "steps", n, "target"), "schedule", step["target"],
                              known.schedules if known else None, file_schedules, "schedules", lines, errors, warnings,
                              fold=True)
        policies.append(PolicyConfig(spec.name, spec.repeat, steps, loc))
    _unique_names(data, "escalation_policies", lines, errors, fold=False)

    spec = ConfigSpec(rules, silences, inhibitions, routes, services, channels, schedules, policies, rule_policies)
    return spec, errors, warnings


SECRET_IN_FILE = (
    "a secret written in the file: anyone who can read the file (or its repository, or a backup) can use it. "
    "Write ${ENV_VAR} and set the variable where Pulser runs"
)


def _channel(item: Mapping[str, Any], loc: tuple, env: Mapping[str, str], lines: "_Lines",
             errors: list[ConfigError], warnings: list[ConfigError]) -> ChannelConfig | None:
    """A channel with its settings from the environment, checked by the kind's own model. Its
    kind, name and settings' shape are the structure pass's to report."""
    name, kind, settings = item.get("name"), item.get("kind"), item.get("settings", {})
    if kind not in KINDS or not isinstance(settings, dict) or not isinstance(name, str):
        return None
    if not name.strip():
        errors.append(ConfigError(_path((*loc, "name")), lines.at((*loc, "name")), "required: 1 to 80 characters"))
        return None
    for secret in KINDS[kind].secret_fields:
        value = settings.get(secret)
        if isinstance(value, str) and value.strip() and not references(value):
            at = (*loc, "settings", secret)
            warnings.append(ConfigError(_path(at), lines.at(at), SECRET_IN_FILE))
    resolved, problems = interpolate(settings, env)
    for below, message in problems:
        at = (*loc, "settings", *below)
        errors.append(ConfigError(_path(at), lines.at(at), message))
    if problems:
        return None
    try:
        parse_config(kind, resolved)
    except ChannelConfigError as exc:  # its words never hold a value
        for key, message in exc.errors.items():
            at = (*loc, "settings") if key == "settings" else (*loc, "settings", *_key_parts(key))
            errors.append(ConfigError(_path(at), lines.at(at), message))
        return None
    return ChannelConfig(name.strip(), kind, resolved, loc)


class _ChannelNames(Mapping[str, int]):
    """Stands in for "channel name → id" while checking a policy: every name gets a stand-in id
    (whether it exists is the caller's to say), so `parse_policy` checks the rest of the step."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def __getitem__(self, key: str) -> int:
        if key.isdigit() or not key.strip():
            raise KeyError(key)
        return self._ids.setdefault(key.strip(), -1 - len(self._ids))

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def name_of(self, stand_in: int | None) -> str | None:
        return next((name for name, i in self._ids.items() if i == stand_in), None)


def _by_name(key: str, message: str) -> str:
    """parse_policy's words for a channel, for a file (which names channels, never numbers them)."""
    if re.fullmatch(r"steps\[\d+\]\.channel", key):
        return "required: an outbound channel's name (one under outbound_channels or made in Slack or the API)"
    return message


def _unknown_name(loc: tuple, what: str, name: str, known: frozenset[str] | None, in_file: set[str], section: str,
                  lines: "_Lines", errors: list[ConfigError], warnings: list[ConfigError], *, fold: bool = False) -> None:
    """A name the file does not define: an error unless Pulser has it; a warning when that is not
    known here (the apply checks it again)."""
    if known is None:
        warnings.append(ConfigError(
            _path(loc), lines.at(loc),
            f"no {what} called {name!r} in this file: applying it needs one of that name made in Slack or the API",
        ))
        return
    if (name.lower() in {k.lower() for k in known}) if fold else (name in known):
        return
    listed = ", ".join(sorted(in_file | set(known))) or "none yet"
    errors.append(ConfigError(
        _path(loc), lines.at(loc),
        f"no {what} is called {name!r}: define it under {section}, or name one Pulser has (known: {listed})",
    ))


def _silence(item: Mapping[str, Any], now: datetime) -> SilenceConfig:
    """A fixed window: validated as of its own start (an ended silence is fine in a file)."""
    starts = _time(item.get("starts_at"))
    reference = min(now, starts) - timedelta(seconds=1) if starts else now
    try:
        spec = validate_silence(item, now=reference, created_by="config")
    except ValidationError as exc:
        if starts is None and "starts_at" in exc.errors:  # the window was measured from a start that is not one
            exc.errors.pop("ends_at", None)
        raise
    return SilenceConfig(
        matchers=[m.to_json() for m in spec.matchers],
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        comment=spec.comment,
        created_by=spec.created_by,
    )


def _time(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.utcoffset() is not None else None


def _unique_names(data: dict, section: str, lines: "_Lines", errors: list[ConfigError], *, fold: bool) -> None:
    seen: dict[str, int] = {}
    items = data.get(section)
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        key = name.strip().lower() if fold else name.strip()
        if key in seen:
            head = (section, i, "name")
            errors.append(ConfigError(
                _path(head), lines.at(head),
                f"duplicate name {name.strip()!r} (also {section}[{seen[key]}]): names identify entries, so each must be unique"
                + (" ignoring case" if fold else ""),
            ))
        else:
            seen[key] = i


# --- helpers ---------------------------------------------------------------------------------------------


def matcher_texts(matchers: list[dict[str, str]]) -> list[str]:
    """Matchers as the file writes them: `env="staging"`, `alertname=~"Disk.*"`."""
    return [str(Matcher.from_json(m)) for m in matchers]


def _key_parts(key: str) -> tuple:
    """A validator's field key as a location: `layers[1].shift` → ("layers", 1, "shift")."""
    parts: list[str | int] = []
    for piece in key.split("."):
        name, *indexes = re.split(r"\[(\d+)\]", piece)
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indexes if i != "")
    return tuple(parts)


def _path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _plain(value: Any) -> Any:
    """YAML's own types made JSON's: an unquoted 2026-05-01T12:00:00Z is a datetime to the YAML
    parser and ISO text to the validators."""
    if isinstance(value, dict):
        return {(k if isinstance(k, str) else str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads an unquoted 10:30 as the number 630 (base 60): here it stays text, as a
    hand-off time (`handoff: 10:30`) means it."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _digit in "0123456789":
    _Loader.yaml_implicit_resolvers.setdefault(_digit, []).insert(
        0, ("tag:yaml.org,2002:str", re.compile(r"^(?:[0-9]{1,2}:[0-5][0-9](?::[0-5][0-9])?)$"))
    )


class _Lines:
    """Path → 1-based line, from the YAML node tree: where each key (or list item) is written."""

    def __init__(self, root: yaml.Node | None):
        self._lines: dict[tuple, int] = {}
        if root is not None:
            self._lines[()] = root.start_mark.line + 1
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, key.value)
                self._lines[child] = key.start_mark.line + 1
                self._walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, index)
                self._lines[child] = item.start_mark.line + 1
                self._walk(item, child)

    def at(self, path: tuple) -> int | None:
        """The line of `path`, else of its nearest written parent (a missing key: its entry's line)."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get(())

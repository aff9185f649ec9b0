"""The configuration file (PULSER_CONFIG): routing rules, silences, inhibition rules, event routes
and deploy services as YAML, checked here without touching the database.

Checking happens in three passes, each error carrying its path (`routing_rules[2].channel`), the
file's line and what is allowed:

1. YAML syntax (the parser's own position);
2. structure against the models of `alerts.models` — unknown keys, wrong types, missing keys —
   the same models the published JSON Schema (`pulser config schema`) is generated from;
3. each entry through the validator the API and Slack use (`validate_rule`, `validate_silence`,
   …), so the file cannot hold a value the API would refuse, and duplicate names (a name is how
   an entry finds its object again on the next apply).

Pure: no I/O beyond reading the text it is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError as ModelError

from alerts.applications import ValidationError
from alerts.deploys import validate_service
from alerts.matchers import (
    InhibitionSpec,
    Matcher,
    validate_inhibition_rule,
    validate_silence,
)
from alerts.models import (
    DeployServiceFields,
    EventType,
    InhibitionRuleFields,
    RoutingRuleFields,
    SilenceEntry,
)
from alerts.platform_events import validate_route
from alerts.routing import RuleSpec, RuleValidationError, validate_rule
from storage.deploys import ServiceSpec

SECTIONS = ("routing_rules", "silences", "inhibition_rules", "event_routes", "deploy_services")


class ConfigFile(BaseModel):
    """Pulser's configuration as code. Every section is optional; an object the file defines is
    managed by it (read-only in Slack and the API) and removed when the file stops listing it."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Pulser configuration")
    version: Literal[1] = Field(1, description="the file format's version: 1")
    routing_rules: list[RoutingRuleFields] | None = Field(
        None, description="tried in this order, before any rule made in Slack or over the API"
    )
    silences: list[SilenceEntry] | None = None
    inhibition_rules: list[InhibitionRuleFields] | None = None
    event_routes: dict[EventType, str] | None = Field(
        None, description="event type → channel; types left out go to SLACK_CHANNEL (or a route set in Slack)"
    )
    deploy_services: list[DeployServiceFields] | None = None


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
class ConfigSpec:
    """A checked file: what an apply makes true."""

    rules: list[RuleSpec] = field(default_factory=list)
    silences: list[SilenceConfig] = field(default_factory=list)
    inhibitions: list[InhibitionSpec] = field(default_factory=list)
    event_routes: dict[str, str] = field(default_factory=dict)
    services: list[ServiceSpec] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.rules)} routing rule(s), {len(self.silences)} silence(s), "
            f"{len(self.inhibitions)} inhibition rule(s), {len(self.event_routes)} event route(s), "
            f"{len(self.services)} deploy service(s)"
        )


class ConfigInvalid(Exception):
    """The file cannot be applied; `errors` says every reason, each with its place."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__(f"{len(errors)} error(s); first: {errors[0]}")


def check_text(text: str, *, now: datetime | None = None) -> ConfigSpec:
    """The checked contents of a config file's text, or ConfigInvalid with every error."""
    now = now or datetime.now(timezone.utc)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
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
    spec, semantic = _entries(data, lines, now, broken={e.path for e, _ in structure if "[" not in e.path})
    errors = [e for e, deep in structure if not (deep and any(s.path.startswith(e.path) for s in semantic))]
    reported = {e.path for e in errors}
    errors += [e for e in semantic if e.path not in reported]
    if errors:
        raise ConfigInvalid(sorted(errors, key=lambda e: (e.line or 0, e.path)))
    return spec


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
    "routing_rules": RoutingRuleFields,
    "silences": SilenceEntry,
    "inhibition_rules": InhibitionRuleFields,
    "deploy_services": DeployServiceFields,
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


def _entries(data: dict, lines: "_Lines", now: datetime, *, broken: set[str]) -> tuple[ConfigSpec, list[ConfigError]]:
    """Every entry through its validator, even one with a structure error (its other fields may
    be wrong too: the file is fixed in one go); `broken` sections are skipped whole."""
    errors: list[ConfigError] = []

    def entries(section: str) -> list[tuple[int, dict]]:
        items = data.get(section) or []
        if section in broken or not isinstance(items, list):
            return []
        return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]

    def report(section: str, index: int, field_errors: Mapping[str, str]) -> None:
        for name, message in field_errors.items():
            parts = tuple(str(name).split("."))
            head = (section, index, *parts)
            errors.append(ConfigError(_path(head), lines.at(head), message))

    rules: list[RuleSpec] = []
    for i, item in entries("routing_rules"):
        try:
            rules.append(validate_rule(item))
        except RuleValidationError as exc:
            report("routing_rules", i, exc.errors)
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

    return ConfigSpec(rules, silences, inhibitions, routes, services), errors


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

"""Label matchers, silences and inhibition rules, Alertmanager-style — the pure part, no I/O.

Every incident carries labels (`alert_labels`): the alert's tags plus a few fixed keys. A silence
is a list of matchers and a time window; while it is active, incidents whose labels match all of
its matchers are held back from Slack. An inhibition rule holds back *target* incidents while a
*source* incident fires whose `equal` labels have the same values (e.g. "a critical alert for a
service mutes its warnings").

Semantics follow Alertmanager, so people can carry their habits over: regexes are fully anchored
(`=~"Disk.*"` must match the whole value) and a missing label counts as the empty string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from alerts.applications import ValidationError
from alerts.normalized import NormalizedAlert

OPS: tuple[str, ...] = ("=", "!=", "=~", "!~")
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # Prometheus names plus dots, for `sentry.level` tags
MAX_MATCHERS = 20
MAX_VALUE_LENGTH = 1024
MAX_EQUAL = 20
COMMENT_MAX = 500
CREATED_BY_MAX = 80
RULE_NAME_MAX = 80  # the column's CHECK
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=90)

SILENCE_EXAMPLE = "env=staging service=api 2h maintenance window"
MATCHER_EXAMPLE = 'env=staging, service!=api or alertname=~"Disk.*"'
FIXED_LABELS: tuple[str, ...] = ("source", "service", "env", "severity", "fingerprint")

_OP_SPLIT = re.compile(r"\s*(=~|!~|!=|=)\s*")
_QUOTED = {'"': re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL), "'": re.compile(r"'((?:[^'\\]|\\.)*)'", re.DOTALL)}
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
# A word of the Slack command: unquoted runs and quoted runs (which may hold spaces) glued together.
_WORD = re.compile(r"""(?:[^\s"']+|"(?:[^"\\]|\\.)*(?:"|$)|'(?:[^'\\]|\\.)*(?:'|$))+""", re.DOTALL)
_DURATION_WORD = re.compile(r"[0-9][0-9A-Za-z]*")
_DURATION_PARTS = re.compile(r"([0-9]{1,6})([wdhms])")
_UNIT_ORDER = "wdhms"
_UNIT = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1),
         "s": timedelta(seconds=1)}


class MatcherError(ValueError):
    """A matcher (or list of them) that cannot be used; the message says what to write instead."""


class DurationError(ValueError):
    """A duration that is not one, or is outside 1 minute – 90 days; the message shows the form."""


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True)
class Matcher:
    """`name op value`; constructing one validates it, so a Matcher in hand is always usable."""

    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not LABEL_NAME.fullmatch(self.name):
            raise MatcherError(
                f"`{self.name}` is not a valid label name: start with a letter or _, "
                "then letters, digits, _ or . (e.g. env, alertname, sentry.level)"
            )
        if self.op not in OPS:
            raise MatcherError(f"`{self.op}` is not an operator: use one of {', '.join(OPS)}")
        if not isinstance(self.value, str):
            raise MatcherError(f"the value for `{self.name}` must be a string")
        if len(self.value) > MAX_VALUE_LENGTH:
            raise MatcherError(f"the value for `{self.name}` is too long: at most {MAX_VALUE_LENGTH} characters")
        if self.op in ("=~", "!~"):
            try:
                _regex(self.value)
            except re.error as exc:
                raise MatcherError(
                    f"`{self.value}` is not a valid regular expression for `{self.name}` ({exc}); "
                    'it must match the whole value, e.g. alertname=~"Disk.*"'
                ) from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Does this matcher accept `labels`? A missing label is the empty string."""
        actual = labels.get(self.name, "")
        if not isinstance(actual, str):
            actual = str(actual)
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = _regex(self.value).fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_json(cls, data: Any) -> "Matcher":
        """From `{"name", "op", "value"}` (op defaults to `=`); MatcherError on any other shape."""
        if not isinstance(data, Mapping):
            raise MatcherError('a matcher must be an object like {"name": "env", "op": "=", "value": "staging"}')
        unknown = sorted(set(data) - {"name", "op", "value"})
        if unknown:
            raise MatcherError(f"unknown key {unknown[0]!r}: a matcher has only name, op and value")
        if "name" not in data or "value" not in data:
            raise MatcherError('a matcher needs "name" and "value" (and "op", one of =, !=, =~, !~)')
        return cls(data["name"], data.get("op", "="), data["value"])

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _unquote(text: str) -> str:
    """`"a\\"b"` → `a"b`. Other backslashes stay, so regexes like `"\\d+"` mean what they show."""
    quote = text[0]
    match = _QUOTED[quote].fullmatch(text)
    if match is None:
        if _QUOTED[quote].match(text):
            raise MatcherError(f"`{text}` has text after the closing quote: quote the whole value")
        raise MatcherError(f"`{text}` has an unclosed quote: end the value with {quote}")
    escapes = {"\\": "\\", quote: quote, "n": "\n"}
    return _UNESCAPE.sub(lambda m: escapes.get(m.group(1), m.group(0)), match.group(1))


def parse_matcher(text: str) -> Matcher:
    """`env=staging`, `service!=api`, `alertname=~"Disk.*"`, `team!~'db|infra'`; quotes optional."""
    text = (text or "").strip()
    parts = _OP_SPLIT.split(text, maxsplit=1)
    if len(parts) != 3 or not parts[0]:
        raise MatcherError(
            f"`{text}` is not a matcher: write label=value, label!=value, label=~regex or label!~regex, "
            f"e.g. {MATCHER_EXAMPLE}"
        )
    name, op, raw = parts
    if op == "=" and raw.startswith("="):
        raise MatcherError(f"`{text}`: use a single = for equality, e.g. {name}={raw.lstrip('=')}")
    if raw[:1] in _QUOTED:
        value = _unquote(raw)
    elif '"' in raw or "'" in raw:
        raise MatcherError(f'`{text}`: put the whole value in quotes, e.g. {name}{op}"some value"')
    else:
        value = raw
    return Matcher(name, op, value)


def matchers_from_json(data: Any) -> list[Matcher]:
    """API input: a list of `{"name", "op", "value"}` objects (or of matcher strings like
    `env=staging`), or an object `{"env": "staging"}` meaning equality. At least one is required."""
    if isinstance(data, Mapping):
        items: list[Any] = [{"name": k, "op": "=", "value": v} for k, v in data.items()]
    elif isinstance(data, list):
        items = data
    else:
        raise MatcherError(
            'must be a list like [{"name": "env", "op": "=", "value": "staging"}] or an object like {"env": "staging"}'
        )
    if not items:
        raise MatcherError("at least one matcher is required, e.g. {\"env\": \"staging\"}")
    if len(items) > MAX_MATCHERS:
        raise MatcherError(f"too many matchers: {len(items)}, at most {MAX_MATCHERS}")
    matchers = []
    for index, item in enumerate(items):
        try:
            matchers.append(parse_matcher(item) if isinstance(item, str) else Matcher.from_json(item))
        except MatcherError as exc:
            where = f"{item['name']}" if isinstance(data, Mapping) else f"[{index}]"
            raise MatcherError(f"{where}: {exc}") from None
    return matchers


def reject_match_everything(matchers: Sequence[Matcher]) -> None:
    """A silence whose matchers all accept the empty string (e.g. only `team!=db`) would mute
    nearly every alert; Alertmanager refuses those, and so do we."""
    if all(m.matches({}) for m in matchers):
        raise MatcherError(
            "these matchers would silence almost everything (each one also matches alerts without "
            f"that label): add one that needs a value, e.g. env=staging, as in `{SILENCE_EXAMPLE}`"
        )


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def matchers_text(matchers: Iterable[Matcher]) -> str:
    """`env="staging" service="api"`: how a person reads a silence's matchers."""
    return " ".join(str(m) for m in matchers)


def alert_labels(alert: NormalizedAlert, severity: str | None = None) -> dict[str, str]:
    """The labels silences and inhibition rules match: the alert's tags, then the fixed keys
    (which win over tags of the same name); `severity` is the incident's effective severity."""
    return {
        **alert.tags,
        "source": alert.source,
        "service": alert.service,
        "env": alert.env,
        "severity": severity or alert.severity,
        "fingerprint": alert.fingerprint,
    }


# --- durations and the Slack command ---------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d`, `1w`, `1h30m` (units largest first, each once); 1 minute – 90 days."""
    word = (text or "").strip()
    parts = _DURATION_PARTS.findall(word.lower())
    units = "".join(unit for _, unit in parts)
    if not parts or "".join(n + u for n, u in parts) != word.lower() or not _units_in_order(units):
        raise DurationError(
            f"`{word}` is not a duration: use a number and a unit (s, m, h, d, w), largest unit first, "
            "e.g. 90s, 30m, 2h, 1d, 1w or 1h30m"
        )
    duration = sum((int(n) * _UNIT[u] for n, u in parts), timedelta())
    if duration < MIN_DURATION:
        raise DurationError(f"`{word}` is too short: at least 1 minute (1m)")
    if duration > MAX_DURATION:
        raise DurationError(f"`{word}` is too long: at most 90 days (90d)")
    return duration


def _units_in_order(units: str) -> bool:
    """Each unit at most once, largest first (`1h30m`, not `30m1h` or `1h1h`)."""
    return len(set(units)) == len(units) and list(units) == sorted(units, key=_UNIT_ORDER.index)


@dataclass(frozen=True)
class SilenceRequest:
    matchers: list[Matcher]
    duration: timedelta
    comment: str


def parse_silence_args(args: str) -> SilenceRequest:
    """`env=staging service=api 2h maintenance window`: matchers, one duration, then a free-text
    comment (kept as typed). Raises MatcherError or DurationError naming the word to fix."""
    text = (args or "").strip()
    matchers: list[Matcher] = []
    for word_match in _WORD.finditer(text):
        word = word_match.group(0)
        if _DURATION_WORD.fullmatch(word):
            duration = parse_duration(word)  # a digit can never start a label name
            if not matchers:
                raise MatcherError(f"say what to silence before how long, e.g. `{SILENCE_EXAMPLE}`")
            reject_match_everything(matchers)
            comment = text[word_match.end():].strip()
            if len(comment) > COMMENT_MAX:
                raise MatcherError(f"the comment is too long: {len(comment)} characters, at most {COMMENT_MAX}")
            return SilenceRequest(matchers=matchers, duration=duration, comment=comment)
        if "=" not in word and "~" not in word:
            raise MatcherError(
                f"`{word}` is neither a matcher (label=value) nor a duration (2h). Matchers come first, "
                f"then how long, then an optional comment, e.g. `{SILENCE_EXAMPLE}`"
            )
        try:
            matchers.append(parse_matcher(word))
        except MatcherError as exc:
            raise MatcherError(f"{exc}. Example: `{SILENCE_EXAMPLE}`") from None
        if len(matchers) > MAX_MATCHERS:
            raise MatcherError(f"too many matchers: at most {MAX_MATCHERS}")
    if not matchers:
        raise MatcherError(f"say what to silence and for how long, e.g. `{SILENCE_EXAMPLE}`")
    raise DurationError(f"say how long the silence lasts after the matchers (1m to 90d), e.g. `{SILENCE_EXAMPLE}`")


# --- silences as storage returns them ----------------------------------------------------------------


def silence_state(silence: Mapping[str, Any], now: datetime) -> str:
    """`pending` (starts later), `active` or `expired` (ended, or ended early by someone)."""
    if silence.get("expired_by") is not None or silence["ends_at"] <= now:
        return "expired"
    return "pending" if silence["starts_at"] > now else "active"


def silence_matchers(silence: Mapping[str, Any]) -> list[Matcher] | None:
    """The row's matchers; None for a row no validator would have let in (it then mutes nothing)."""
    try:
        return [Matcher.from_json(m) for m in silence["matchers"]]
    except (MatcherError, TypeError):
        return None


def active_silence(
    silences: Sequence[Mapping[str, Any]], labels: Mapping[str, str], now: datetime
) -> Mapping[str, Any] | None:
    """The first silence active at `now` whose matchers all match `labels`, or None."""
    for silence in silences:
        if silence_state(silence, now) != "active":
            continue
        matchers = silence_matchers(silence)
        if matchers and matches_all(matchers, labels):
            return silence
    return None


# --- inhibition rules as storage returns them ----------------------------------------------------------


def inhibition_lookup(rule: Mapping[str, Any], target_labels: Mapping[str, str]) -> dict[str, str] | None:
    """None when `rule` cannot inhibit an incident with `target_labels`; else the labels a source
    incident must contain, for a `labels @> subset` query over firing incidents.

    The subset is the rule's `=` source matchers plus each `equal` label's value in the target.
    It is a pre-filter: `inhibits` does the full check (regex matchers included) on each
    candidate. Labels whose required value is "" are left out, because `@>` cannot say "absent"
    and a source without the label has it "" too; when a `=` source matcher and an `equal` label
    demand different values no source can ever match, so the answer is None.

    A rule must not let an incident inhibit itself: the pipeline excludes the incident's own
    group from the candidates (Alertmanager's finer two-sided rule is not modelled).
    """
    try:
        targets = [Matcher.from_json(m) for m in rule["target_matchers"]]
        sources = [Matcher.from_json(m) for m in rule["source_matchers"]]
    except (MatcherError, TypeError):
        return None
    if not matches_all(targets, target_labels):
        return None
    required: dict[str, str] = {m.name: m.value for m in sources if m.op == "="}
    for name in rule.get("equal") or ():
        value = str(target_labels.get(name, ""))
        if required.get(name, value) != value:
            return None
        required[name] = value
    return {name: value for name, value in required.items() if value != ""}


def inhibits(rule: Mapping[str, Any], source_labels: Mapping[str, str], target_labels: Mapping[str, str]) -> bool:
    """Does a firing incident with `source_labels` hold back one with `target_labels` under `rule`?
    Both sides' matchers must match and every `equal` label must have the same value (missing = "").
    The caller excludes the target's own group (see `inhibition_lookup`)."""
    try:
        targets = [Matcher.from_json(m) for m in rule["target_matchers"]]
        sources = [Matcher.from_json(m) for m in rule["source_matchers"]]
    except (MatcherError, TypeError):
        return False
    if not matches_all(targets, target_labels) or not matches_all(sources, source_labels):
        return False
    return all(
        str(source_labels.get(name, "")) == str(target_labels.get(name, "")) for name in rule.get("equal") or ()
    )


# --- API bodies -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SilenceSpec:
    """A validated silence from the API: what to match, when, why and who asked."""

    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str


@dataclass(frozen=True)
class InhibitionSpec:
    name: str
    source_matchers: list[Matcher]
    target_matchers: list[Matcher]
    equal: list[str]


SILENCE_FIELDS = ("matchers", "duration", "starts_at", "ends_at", "comment", "created_by")
INHIBITION_FIELDS = ("name", "source_matchers", "target_matchers", "equal")


def validate_silence(data: Mapping[str, Any], *, now: datetime, created_by: str = "api") -> SilenceSpec:
    """`{"matchers", "duration" | "ends_at", "starts_at"?, "comment"?, "created_by"?}` → SilenceSpec.

    Collects every field's error before raising. A start in the past means now (as in
    Alertmanager); the window must be 1 minute – 90 days and end in the future.
    """
    errors: dict[str, str] = {key: "unknown field" for key in sorted(set(data) - set(SILENCE_FIELDS))}
    matchers: list[Matcher] = []
    try:
        matchers = matchers_from_json(data.get("matchers"))
        reject_match_everything(matchers)
    except MatcherError as exc:
        errors["matchers"] = "required: " + str(exc) if "matchers" not in data else str(exc)

    starts_at = now
    if data.get("starts_at") is not None:
        given = _timestamp(data["starts_at"], "starts_at", errors)
        if given is not None and given > now + MAX_DURATION:
            errors["starts_at"] = "must be at most 90 days from now"
        starts_at = max(given, now) if given is not None else now

    ends_at: datetime | None = None
    if data.get("duration") is not None and data.get("ends_at") is not None:
        errors["ends_at"] = "give either duration or ends_at, not both"
    elif data.get("duration") is not None:
        if not isinstance(data["duration"], str):
            errors["duration"] = 'must be text like "2h", "30m" or "1h30m"'
        else:
            try:
                ends_at = starts_at + parse_duration(data["duration"])
            except DurationError as exc:
                errors["duration"] = str(exc)
    elif data.get("ends_at") is not None:
        ends_at = _timestamp(data["ends_at"], "ends_at", errors)
        if ends_at is not None:
            if ends_at <= now:
                errors["ends_at"] = "must be in the future"
            elif not MIN_DURATION <= ends_at - starts_at <= MAX_DURATION:
                errors["ends_at"] = "the silence must last from 1 minute to 90 days after starts_at"
    else:
        errors["duration"] = 'required (e.g. "2h") unless ends_at is given'

    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        errors["comment"] = "must be text"
    elif len(comment.strip()) > COMMENT_MAX:
        errors["comment"] = f"too long: at most {COMMENT_MAX} characters"
    author = data.get("created_by") or created_by
    if not isinstance(author, str) or not author.strip() or len(author.strip()) > CREATED_BY_MAX:
        errors["created_by"] = f"must be text of 1–{CREATED_BY_MAX} characters (who asked for the silence)"

    if errors:
        raise ValidationError(errors)
    assert ends_at is not None
    return SilenceSpec(matchers, starts_at, ends_at, comment.strip(), author.strip())


def validate_inhibition_rule(data: Mapping[str, Any]) -> InhibitionSpec:
    """`{"name", "source_matchers", "target_matchers", "equal"?: [label names]}` → InhibitionSpec."""
    errors: dict[str, str] = {key: "unknown field" for key in sorted(set(data) - set(INHIBITION_FIELDS))}
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = f"required: 1–{RULE_NAME_MAX} characters"
    elif len(name.strip()) > RULE_NAME_MAX:
        errors["name"] = f"too long: {len(name.strip())} characters, at most {RULE_NAME_MAX}"
    sides: dict[str, list[Matcher]] = {}
    for field in ("source_matchers", "target_matchers"):
        try:
            sides[field] = matchers_from_json(data.get(field))
        except MatcherError as exc:
            errors[field] = "required: " + str(exc) if field not in data else str(exc)
    equal = data.get("equal") or []
    if not isinstance(equal, list) or not all(isinstance(n, str) and LABEL_NAME.fullmatch(n) for n in equal):
        errors["equal"] = 'must be a list of label names, e.g. ["service", "env"]'
    elif len(equal) > MAX_EQUAL:
        errors["equal"] = f"too many labels: at most {MAX_EQUAL}"
    if errors:
        raise ValidationError(errors)
    return InhibitionSpec(name.strip(), sides["source_matchers"], sides["target_matchers"], list(dict.fromkeys(equal)))


def _timestamp(value: Any, field: str, errors: dict[str, str]) -> datetime | None:
    """ISO 8601 with a time zone (`2024-05-01T12:00:00Z`), else an error under `field`."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        errors[field] = "must be an ISO 8601 time with a time zone, e.g. 2024-05-01T12:00:00Z"
        return None
    return parsed

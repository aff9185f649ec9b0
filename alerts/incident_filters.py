"""Incident filters: one parser for `/pulser incidents status=open env=prod severity>=high …` and
the query string of `GET /api/incidents`, so both take the same words and refuse the same
mistakes with the same explanation.

A filter is a value object; `storage.incident_queries` turns it into SQL. Parsing never touches
the database: a bad word is answered before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Iterable

from alerts.normalized import SEVERITIES, SOURCE_NAMES

STATUSES = ("open", "acked", "unacked", "snoozed", "resolved", "all")
SORTS = ("newest", "oldest", "oldest_unacked")
SORT_ALIASES = {"oldest-unacked": "oldest_unacked", "unacked": "oldest_unacked"}
MAX_VALUES = 20  # per key: a filter is typed by a person, not generated
MAX_VALUE_LENGTH = 200
DURATION = re.compile(r"^([1-9][0-9]{0,5})([mhdw])$")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_SINCE = timedelta(days=366)
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,20})(\|[^>]*)?>$")
TOKEN = re.compile(r"^([a-z_]+)(>=|=)(.*)$", re.S)

# What each key takes, as a person reads it; every error message ends with these lines.
ALLOWED = {
    "status": "status=" + "|".join(STATUSES) + " (open = firing)",
    "env": "env=prod (or a comma list: env=prod,staging)",
    "service": "service=api (comma list allowed)",
    "source": "source=" + "|".join(SOURCE_NAMES),
    "severity": "severity>=" + "|".join(SEVERITIES) + " (at least), or severity=high,critical (exactly)",
    "tag": "tag=key=value (repeat for more; all must match)",
    "assignee": "assignee=@me, assignee=@someone (a mention), assignee=U0123ABC or assignee=none",
    "since": "since=30m|24h|7d|2w (seen within that long)",
    "sort": "sort=newest|oldest|oldest-unacked",
}


class FilterError(ValueError):
    """What was wrong, per key (`problems`), each phrased as what to write instead."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class IncidentFilter:
    statuses: tuple[str, ...] = ()  # empty: any status
    envs: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    min_severity: str | None = None
    severities: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    assignee: str | None = None  # a user ID, "none", or "@me" until `for_user` resolves it
    since: timedelta | None = None
    sort: str = "newest"
    words: tuple[str, ...] = field(default=(), compare=False)  # as typed, for showing and paging

    @property
    def at_least(self) -> tuple[str, ...]:
        """The severities `severity>=` lets through (all when it is not set)."""
        return SEVERITIES[SEVERITIES.index(self.min_severity):] if self.min_severity else SEVERITIES

    def for_user(self, user_id: str) -> "IncidentFilter":
        """`assignee=@me` as the clicker's own ID."""
        return replace(self, assignee=user_id) if self.assignee == "@me" else self

    def as_text(self) -> str:
        return " ".join(self.words)

    def as_json(self) -> dict:
        """The filter as the API echoes it back (only what was set)."""
        out: dict = {}
        for name, value in (
            ("status", list(self.statuses)), ("env", list(self.envs)), ("service", list(self.services)),
            ("source", list(self.sources)), ("severity", list(self.severities)),
            ("tag", [f"{k}={v}" for k, v in self.tags]),
        ):
            if value:
                out[name] = value
        if self.min_severity:
            out["min_severity"] = self.min_severity
        if self.assignee:
            out["assignee"] = self.assignee
        if self.since is not None:
            out["since_seconds"] = int(self.since.total_seconds())
        return out


def parse_command_text(text: str, *, default_status: str | None = "open") -> IncidentFilter:
    """`/pulser incidents` words: `key=value` or `severity>=x`, separated by spaces."""
    pairs: list[tuple[str, str, str]] = []
    problems: dict[str, str] = {}
    for word in text.split():
        match = TOKEN.match(word.strip())
        if not match:
            problems[word[:40]] = "not a filter; write key=value"
            continue
        key, op, value = match.groups()
        pairs.append((key, op, value))
    if problems:
        raise FilterError(problems)
    parsed = parse_pairs(pairs)
    if default_status and not parsed.statuses and not any(k == "status" for k, _, _ in pairs):
        parsed = replace(parsed, statuses=(default_status,))
    return replace(parsed, words=tuple(text.split()))


def parse_query(items: Iterable[tuple[str, str]], *, ignore: Iterable[str] = ()) -> IncidentFilter:
    """A query string's (key, value) pairs. `severity>=high` in a URL arrives as key `severity>`;
    `min_severity=high` says the same."""
    skipped = set(ignore)
    pairs: list[tuple[str, str, str]] = []
    for key, value in items:
        if key in skipped:
            continue
        if key == "severity>":
            pairs.append(("severity", ">=", value))
        elif key == "min_severity":
            pairs.append(("severity", ">=", value))
        else:
            pairs.append((key, "=", value))
    parsed = parse_pairs(pairs, api=True)
    return replace(parsed, words=tuple(f"{k}{op}{v}" for k, op, v in pairs))


def parse_pairs(pairs: Iterable[tuple[str, str, str]], *, api: bool = False) -> IncidentFilter:
    fields_: dict = {}
    problems: dict[str, str] = {}
    tags: list[tuple[str, str]] = []

    def bad(key: str, why: str) -> None:
        problems.setdefault(key, f"{why}; allowed: {ALLOWED.get(key, _known_keys())}")

    for key, op, raw in pairs:
        value = raw.strip()
        if key not in ALLOWED:
            shown = key[:40] if _storable(key) else "(unreadable)"
            problems.setdefault(shown or "(empty)", f"unknown filter; allowed: {_known_keys()}")
            continue
        if len(value) > MAX_VALUE_LENGTH * MAX_VALUES:
            bad(key, "too long")
            continue
        if not _storable(value):
            bad(key, "contains a character that cannot be stored (NUL or broken UTF-8)")
            continue
        if op == ">=" and key != "severity":
            bad(key, f"{key} takes =, not >=")
            continue
        if not value:
            bad(key, "needs a value")
            continue
        if key == "status":
            statuses = _list(value)
            unknown = [s for s in statuses if s not in STATUSES]
            if unknown:
                bad(key, f"unknown status {unknown[0][:40]!r}")
            elif "all" not in statuses:
                fields_["statuses"] = tuple(dict.fromkeys(statuses))
            else:
                fields_["statuses"] = ()
        elif key in ("env", "service"):
            values = _list(value)
            if len(values) > MAX_VALUES or any(len(v) > MAX_VALUE_LENGTH for v in values):
                bad(key, f"at most {MAX_VALUES} values of {MAX_VALUE_LENGTH} characters")
            else:
                fields_[key + "s"] = tuple(dict.fromkeys(values))
        elif key == "source":
            values = [v.lower() for v in _list(value)]
            unknown = [v for v in values if v not in SOURCE_NAMES]
            if unknown:
                bad(key, f"unknown source {unknown[0][:40]!r}")
            else:
                fields_["sources"] = tuple(dict.fromkeys(values))
        elif key == "severity":
            values = [v.lower() for v in _list(value)]
            unknown = [v for v in values if v not in SEVERITIES]
            if unknown:
                bad(key, f"unknown severity {unknown[0][:40]!r}")
            elif op == ">=":
                if len(values) != 1:
                    bad(key, "severity>= takes one severity")
                else:
                    fields_["min_severity"] = values[0]
            else:
                fields_["severities"] = tuple(dict.fromkeys(values))
        elif key == "tag":
            name, eq, tag_value = value.partition("=")
            if not eq or not name.strip() or len(name) > MAX_VALUE_LENGTH or len(tag_value) > MAX_VALUE_LENGTH:
                bad(key, "write tag=key=value")
            elif len(tags) >= MAX_VALUES:
                bad(key, f"at most {MAX_VALUES} tags")
            else:
                tags.append((name.strip(), tag_value.strip()))
        elif key == "assignee":
            assignee = _assignee(value, api=api)
            if assignee is None:
                bad(key, "not a user" if not api else "a Slack user ID such as U0123ABC, or none (@me needs Slack)")
            else:
                fields_["assignee"] = assignee
        elif key == "since":
            since = parse_duration(value)
            if since is None:
                bad(key, f"not a duration up to {MAX_SINCE.days} days")
            else:
                fields_["since"] = since
        elif key == "sort":
            sort = SORT_ALIASES.get(value.lower(), value.lower())
            if sort not in SORTS:
                bad(key, f"unknown order {value[:40]!r}")
            else:
                fields_["sort"] = sort
    if problems:
        raise FilterError(problems)
    if tags:
        fields_["tags"] = tuple(tags)
    return IncidentFilter(**fields_)


def parse_duration(text: str) -> timedelta | None:
    match = DURATION.match(text.strip().lower())
    if not match:
        return None
    amount, unit = int(match.group(1)), match.group(2)
    duration = timedelta(**{DURATION_UNITS[unit]: amount})
    return duration if duration <= MAX_SINCE else None


def allowed_text() -> str:
    """Every filter, one per line, for the help a bad filter gets."""
    return "\n".join(f"• `{usage}`" for usage in ALLOWED.values())


def _assignee(value: str, *, api: bool) -> str | None:
    if value.lower() == "none":
        return "none"
    if value.lower() in ("@me", "me"):
        return None if api else "@me"
    mention = USER_MENTION.match(value)
    if mention:
        return mention.group(1)
    return value if USER_ID.match(value) else None


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _known_keys() -> str:
    return ", ".join(ALLOWED)

"""NormalizedAlert: the one shape every source is turned into before the pipeline sees it.

Sources (Sentry, Alertmanager, GitHub, generic JSON, Heroku and heartbeats) differ in almost
everything; grouping, routing, silences and the Slack message only ever look at this dataclass, so
adding a source never touches them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Mapping

# Ordered from least to most urgent: routing compares with "severity >= X", spikes bump one level.
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
STATUSES: tuple[str, ...] = ("firing", "resolved")
# One name per module in alerts/sources/ (Heroku alerts come from alerts/heroku_detection.py, missed
# and failed heartbeats from alerts/heartbeat_incidents.py).
SOURCE_NAMES: tuple[str, ...] = ("sentry", "alertmanager", "github", "generic", "heroku", "heartbeat")


def severity_rank(severity: str) -> int:
    """Position of a severity in SEVERITIES (info = 0 … critical = 4); ValueError if unknown."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}") from None


def severity_at_least(severity: str, threshold: str) -> bool:
    """True when `severity` is as urgent as `threshold` or more (the routing rule "severity ≥")."""
    return severity_rank(severity) >= severity_rank(threshold)


def bump_severity(severity: str, levels: int = 1) -> str:
    """The severity `levels` steps more urgent, capped at critical (negative steps go down, floor info)."""
    rank = min(max(severity_rank(severity) + levels, 0), len(SEVERITIES) - 1)
    return SEVERITIES[rank]


def max_severity(*severities: str) -> str:
    """The most urgent of the given severities."""
    if not severities:
        raise ValueError("max_severity() needs at least one severity")
    return max(severities, key=severity_rank)


@dataclass(frozen=True)
class NormalizedAlert:
    """One alert occurrence from one source, in the pipeline's vocabulary.

    - `source_event_id`: the sender's id for this occurrence (Sentry event/issue id, GitHub run id…),
      kept for links and debugging; not used for dedup (the envelope ledger does that).
    - `service`: what is affected — Sentry project slug, Alertmanager service/job, GitHub repo.
    - `env`: normalized environment ("production", "staging", …) or "" when the source has none.
    - `fingerprint`: identifies the *problem*, stable across repeats (a Sentry issue id, not an
      event id), so that repeats land in one group (see `group_key`).
    - `tags`: string→string; Alertmanager labels verbatim, other sources' extras under a
      "<source>." prefix (a dot can never occur in a Prometheus label name, so they never collide).
    - `occurred_at`: the sender's claim of when it happened, tz-aware UTC. The server's receipt time
      is recorded separately by the ledger and is the truth for windows.
    - `severity_is_current`: True when the severity is the problem's *current state* (a Sentry
      metric alert going critical → warning, an Alertmanager alert's severity label, a generic
      alert that says so), so its incident follows the latest occurrence down as well as up. False
      (the default) when each occurrence only shows how bad the problem can get — a warning-level
      event of a Sentry issue that also raised errors does not make that issue less bad — and the
      incident keeps the highest severity seen.
    """

    source: str
    source_event_id: str
    service: str
    env: str
    severity: str
    fingerprint: str
    title: str
    description: str
    occurred_at: datetime
    status: str = "firing"
    link: str | None = None
    severity_is_current: bool = False
    # hash=False: dicts are unhashable, and equal alerts with equal tags still compare equal.
    tags: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Wrong values here are bugs in a source module, not bad input: fail loudly.
        if self.source not in SOURCE_NAMES:
            raise ValueError(f"unknown source {self.source!r}")
        severity_rank(self.severity)
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected firing or resolved")
        if not self.fingerprint:
            raise ValueError("fingerprint must not be empty")
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")
        object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(timezone.utc))
        object.__setattr__(self, "tags", {str(k): str(v) for k, v in self.tags.items()})

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (occurred_at as ISO 8601), e.g. for a group's last-alert jsonb column."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["occurred_at"] = self.occurred_at.isoformat()
        data["tags"] = dict(self.tags)
        return data

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> "NormalizedAlert":
        """The inverse of `to_json_dict`."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["occurred_at"] = datetime.fromisoformat(data["occurred_at"])
        return cls(**values)


def group_key(alert: NormalizedAlert) -> str:
    """sha256 hex of (source, service, env, fingerprint): alerts with equal keys are one problem.

    The four parts are encoded as a compact JSON array of strings before hashing, so the join is
    unambiguous: ("a:b", "c") and ("a", "b:c") cannot collide, because JSON quotes and escapes each
    part. To reproduce elsewhere: sha256(json.dumps([source, service, env, fingerprint],
    separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest().
    """
    parts = [alert.source, alert.service, alert.env, alert.fingerprint]
    encoded = json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()

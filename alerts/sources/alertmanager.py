"""Prometheus Alertmanager webhook receiver (payload version 4; 3 tolerated): one alert per entry in `alerts`.

Authentication: Alertmanager never signs bodies, so the receiver must present the shared
`PULSER_WEBHOOK_TOKEN` — the same token as the generic source, because both are "a sender we
configured by hand" and one fewer secret is one fewer to rotate.
Configure it as

    receivers:
      - name: pulser
        webhook_configs:
          - url: https://pulser.example.com/webhooks/alertmanager
            http_config:
              authorization: {credentials: <PULSER_WEBHOOK_TOKEN>}   # sends "Bearer <token>"

`basic_auth` with the token as password works too. With no token configured every request is
refused with an error naming PULSER_WEBHOOK_TOKEN.

Mapping, per alert (a notification may mix firing and resolved alerts; each keeps its own status):
- severity from `labels.severity`: critical/crit/fatal/emergency/page/p1 → critical;
  high/error/major/p2 → high; warning/warn/medium/average/p3 → medium; low/minor/p4 → low;
  info/informational/notice/debug/none/p5 → info; missing or unknown → medium. A label is the
  alert's current state, so a re-send of the same alert (same fingerprint) with a lower severity
  lowers its incident (`severity_is_current`). Alertmanager's own fingerprint hashes every label,
  severity included, so this is for senders that keep a fingerprint of their own across severities.
- service from `labels.service`, else `labels.job`, else ""; env from `labels.env`, else
  `labels.environment` (normalized: "Development" → "development", "prod" → "production").
- fingerprint: the alert's `fingerprint` (Alertmanager's hash of its label set); old or hand-made
  senders without one get a sha256 of the sorted labels — same idea, same stability.
- occurred_at: `startsAt` while firing, `endsAt` once resolved (Go's zero time means "not ended");
  a sender without `startsAt` (hand-made ones) gets the server's receipt time.
- link: `generatorURL`, else the Alertmanager `externalURL`.
- tags: the labels verbatim (inhibition compares them), plus `alertmanager.*` extras: receiver,
  group key, runbook URL, and `alertmanager.truncated_alerts` when `max_alerts` dropped alerts —
  those alerts are not in the body, so the pipeline can only say that they exist; the same note is
  added to every alert's description. A `truncatedAlerts` that is not a count is ignored: it is a
  note, and refusing the notification for it would lose every alert in it.

Required: `alerts` (an array) and each alert's `labels` (its identity: what silences, inhibition
and the label-hash fingerprint match on). Everything else has a default.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from alerts.normalized import NormalizedAlert
from alerts.sources.common import (
    PayloadError,
    decode_json_body,
    first_timestamp,
    is_go_zero_time,
    json_type,
    normalize_env,
    optional_text,
    parse_timestamp,
    stable_hash,
    string_tags,
    verify_token,
)

NAME = "alertmanager"
SECRET_ENV = "PULSER_WEBHOOK_TOKEN"

LABEL_SEVERITY = {
    **dict.fromkeys(("critical", "crit", "fatal", "emergency", "emerg", "alert", "page", "p1", "disaster"), "critical"),
    **dict.fromkeys(("high", "error", "err", "major", "p2"), "high"),
    **dict.fromkeys(("warning", "warn", "medium", "average", "p3"), "medium"),
    **dict.fromkeys(("low", "minor", "p4"), "low"),
    **dict.fromkeys(("info", "informational", "information", "notice", "debug", "none", "p5"), "info"),
}
UNKNOWN_SEVERITY = "medium"
SUPPORTED_VERSIONS = ("3", "4")


def decode(headers: Mapping[str, str], raw_body: bytes) -> dict[str, Any]:
    """The JSON body as a dict (PayloadError if it is not a JSON object)."""
    return decode_json_body(raw_body)


def verify(headers: Mapping[str, str], raw_body: bytes, secret: str | None) -> None:
    """Check the bearer (or basic-auth) token against `secret` (PULSER_WEBHOOK_TOKEN) in constant time.

    No signature exists for Alertmanager, so `raw_body` is unused. With no token configured every
    request is refused (SignatureError naming PULSER_WEBHOOK_TOKEN): an unconfigured source is closed.
    """
    verify_token(headers, secret, env_var=SECRET_ENV, source="Alertmanager")


def idempotency_key(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """sha256 hex of groupKey plus each alert's (fingerprint, status, startsAt), sorted.

    A retried notification hashes the same; a change in the group (an alert added or resolved, or
    an alert firing again with a new startsAt) hashes differently. A pure repeat_interval reminder
    with nothing changed is treated as a duplicate: the group it would remind about is still open.
    """
    alerts = payload.get("alerts") if isinstance(payload.get("alerts"), list) else []
    parts = sorted(
        stable_hash(_fingerprint(alert), optional_text(alert, "status"), optional_text(alert, "startsAt"))
        for alert in alerts
        if isinstance(alert, dict)
    )
    return stable_hash(optional_text(payload, "groupKey"), *parts)


def parse(
    headers: Mapping[str, str], payload: Mapping[str, Any], *, received_at: datetime | None = None
) -> list[NormalizedAlert]:
    """Every alert in the notification, firing and resolved; PayloadError if it is not a v4 body.
    `received_at` (default: now) stands in for a missing `startsAt`."""
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    alerts = payload.get("alerts")
    if alerts is None:
        raise PayloadError("alerts is missing: not an Alertmanager webhook body")
    if not isinstance(alerts, list):
        raise PayloadError(f"alerts must be an array, got {json_type(alerts)}")
    version = payload.get("version")
    # "3" (very old Alertmanager) has the same alert shape minus fingerprint and truncatedAlerts.
    if version is not None and str(version) not in SUPPORTED_VERSIONS:
        raise PayloadError(f"version {version!r} is not supported; Alertmanager sends version \"4\"")
    truncated = _truncated_count(payload.get("truncatedAlerts"))
    notification_status = optional_text(payload, "status") or "firing"
    received_at = received_at or datetime.now(timezone.utc)
    return [
        _alert(alert, f"alerts[{index}]", payload, truncated, notification_status, received_at)
        for index, alert in enumerate(alerts)
    ]


def severity_for_label(value: str | None) -> str:
    """Pulser severity of a `severity` label value (see the module docstring); unknown → medium."""
    return LABEL_SEVERITY.get((value or "").strip().lower(), UNKNOWN_SEVERITY)


def _alert(
    alert: Any,
    where: str,
    payload: Mapping[str, Any],
    truncated: int,
    notification_status: str,
    received_at: datetime,
) -> NormalizedAlert:
    if not isinstance(alert, dict):
        raise PayloadError(f"{where} must be an object, got {json_type(alert)}")
    labels = alert.get("labels")
    if not isinstance(labels, dict):
        raise PayloadError(f"{where}.labels must be an object, got {json_type(labels)}")
    labels = string_tags(labels)
    annotations = string_tags(alert.get("annotations"))

    # Old senders omit per-alert status; the notification's status is then the best guess.
    status = optional_text(alert, "status") or notification_status
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}.status must be firing or resolved, got {status!r}")
    starts_at = first_timestamp(received_at, (f"{where}.startsAt", alert.get("startsAt")))
    ends_at_raw = alert.get("endsAt")
    occurred_at = starts_at
    if status == "resolved" and ends_at_raw and not is_go_zero_time(ends_at_raw):
        occurred_at = parse_timestamp(ends_at_raw, f"{where}.endsAt")

    fingerprint = _fingerprint(alert)
    alertname = labels.get("alertname", "")
    summary = annotations.get("summary", "")
    title = ": ".join(part for part in (alertname, summary) if part) or "Alertmanager alert"

    description = annotations.get("description", "")
    tags = dict(labels)
    extras = {
        "alertmanager.receiver": optional_text(payload, "receiver"),
        "alertmanager.group_key": optional_text(payload, "groupKey"),
        "alertmanager.runbook_url": annotations.get("runbook_url") or annotations.get("runbook", ""),
    }
    if truncated:
        extras["alertmanager.truncated_alerts"] = str(truncated)
        note = f"{truncated} more alert(s) in this group were left out of the notification (max_alerts)."
        description = f"{description}\n\n{note}" if description else note
    tags.update({key: value for key, value in extras.items() if value})

    return NormalizedAlert(
        source=NAME,
        source_event_id=f"{fingerprint}@{starts_at.isoformat()}",
        service=labels.get("service") or labels.get("job") or "",
        env=normalize_env(labels.get("env") or labels.get("environment")),
        severity=severity_for_label(labels.get("severity")),
        severity_is_current=True,
        fingerprint=fingerprint,
        title=title,
        description=description,
        tags=tags,
        occurred_at=occurred_at,
        link=optional_text(alert, "generatorURL") or optional_text(payload, "externalURL") or None,
        status=status,
    )


def _fingerprint(alert: Any) -> str:
    """Alertmanager's fingerprint, or a sha256 of the sorted labels when the sender has none."""
    if not isinstance(alert, dict):
        return ""
    given = optional_text(alert, "fingerprint")
    if given:
        return given
    labels = string_tags(alert.get("labels"))
    return "labels:" + stable_hash(*(f"{key}={labels[key]}" for key in sorted(labels)))


def _truncated_count(value: Any) -> int:
    """How many alerts `max_alerts` left out; 0 when the value is no count (a note is not worth a 400)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value

"""What every outbound channel module shares: the page it is asked to send, what a send returns,
and how a failed send says whether trying again can help.

A channel module (e-mail, Discord, Teams, webhook, GitHub issue, Twilio SMS, PagerDuty) is one
protocol and nothing else: the outbox (`alerts/outbound/dispatch.py`) owns retries, backoff,
claiming and the delivery log, so a module only turns a `Page` into one request and its answer
into a `SendResult` or a `DeliveryFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

# trigger: first news of an incident (or a step of its escalation policy naming this channel again:
# escalate). acknowledge/resolve: the incident's state changed (PagerDuty, GitHub issue). test: the
# "Send test" button; it belongs to no incident.
Action = Literal["trigger", "escalate", "acknowledge", "resolve", "test"]
ACTIONS: tuple[str, ...] = ("trigger", "escalate", "acknowledge", "resolve", "test")


@dataclass(frozen=True)
class Page:
    """One outbound message: an incident as it stands, and why it is sent now.

    `dedup_key` is stable per incident (`pulser-incident-42`): PagerDuty's dedup_key, the marker a
    GitHub issue carries, the e-mail thread's Message-ID root. `recipient` is set for personal
    notifications (an e-mail address, a phone number in E.164) and overrides the channel's own
    list. `step` says which escalation step sent it ("L2 of Production paging"), when one did.
    """

    action: Action
    dedup_key: str
    title: str
    severity: str
    status: str  # firing | acknowledged | resolved
    service: str = ""
    env: str = ""
    source: str = ""
    description: str = ""
    link: str | None = None
    incident_id: int | None = None
    count: int = 1
    first_seen: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    step: str | None = None
    recipient: str | None = None
    acked_by: str | None = None
    resolved_by: str | None = None


@dataclass(frozen=True)
class SendResult:
    """A send the service accepted. `ref` is what a later send for the same incident needs (the
    GitHub issue number, Discord message id, Twilio message SID, PagerDuty dedup key); `detail` is
    one line for the delivery log ("HTTP 202", "issue #12 created")."""

    detail: str
    ref: str | None = None


class DeliveryFailed(Exception):
    """A send the service did not accept.

    `retryable`: a 5xx, a timeout, a refused connection, a 429 — the same send may work later.
    False for what no retry fixes (a 401/403/404, a malformed address): the outbox stops trying at
    once and shows why. `retry_after` is the service's own wait (a 429's Retry-After), in seconds.
    `reason` is one line for logs, /health and Slack; it must never contain a secret (a webhook
    URL, a token, a password).
    """

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after

"""PagerDuty through the Events API v2: the incident's state, keyed by its dedup key.

Every event goes to `events_url` (default `https://events.pagerduty.com/v2/enqueue`) with the
service's integration (routing) key and `dedup_key` = the page's dedup key, so PagerDuty keeps one
alert per Pulser incident:

- trigger, escalate: `event_action: trigger` with the payload (summary ≤ 1024 characters, source,
  severity, component = service, group = env, class = source, custom_details, links). An escalate
  is the same trigger again: PagerDuty de-duplicates it into the open alert.
- acknowledge, resolve: `event_action` of that name and the dedup key, nothing else.
- test: a trigger of severity info with its own dedup key (it opens a real, low-urgency alert).

PagerDuty answers 202 `{"status": "success", "message": "Event processed", "dedup_key": …}` (the
ref); 400 `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`
needs a person; 429 (too many events for this key) and 5xx are retried.
"""

from __future__ import annotations

import re

import httpx
from pydantic import field_validator

from alerts.outbound.channels import answers
from alerts.outbound.channels.base import Page, SendResult
from alerts.outbound.channels.fields import ChannelSettings, Secret, service_url
from alerts.outbound.channels.render import cut, safe_link, subject, verb

KIND = "pagerduty"
LABEL = "PagerDuty (Events API v2)"
SECRET_FIELDS = ("routing_key",)
ACTIONS = frozenset({"trigger", "escalate", "acknowledge", "resolve", "test"})

ROUTING_KEY = re.compile(r"^[A-Za-z0-9+]{32}$")
SEVERITIES = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info"}
EVENT_ACTIONS = {"trigger": "trigger", "escalate": "trigger", "test": "trigger", "acknowledge": "acknowledge", "resolve": "resolve"}
HINTS = {
    400: "PagerDuty refused the event",
    401: "the integration key was refused; copy it from the service's Events API v2 integration",
    403: "the integration key may not send events; check the service's integration",
    404: "the events URL is wrong; use https://events.pagerduty.com/v2/enqueue (or your region's)",
}


class PagerDutySettings(ChannelSettings):
    routing_key: Secret
    events_url: str = "https://events.pagerduty.com/v2/enqueue"

    @field_validator("routing_key")
    @classmethod
    def _key(cls, value):
        if not ROUTING_KEY.match(value.get_secret_value()):
            raise ValueError("must be the 32-character integration key of an Events API v2 integration")
        return value

    @field_validator("events_url", mode="before")
    @classmethod
    def _url(cls, value):
        return service_url(value)


def event(settings: PagerDutySettings, page: Page) -> dict:
    action = EVENT_ACTIONS[page.action]
    body: dict = {
        "routing_key": settings.routing_key.get_secret_value(),
        "event_action": action,
        "dedup_key": page.dedup_key,
    }
    if action != "trigger":
        return body
    details = {"status": page.status, "count": page.count, "pulser_severity": page.severity}
    for name, value in (
        ("description", cut(page.description, 4000)),
        ("escalation_step", page.step),
        ("incident", page.incident_id),
        ("first_seen", page.first_seen.isoformat() if page.first_seen else None),
        ("labels", dict(page.labels) or None),
    ):
        if value:
            details[name] = value
    payload: dict = {
        "summary": cut(subject(page) if page.action != "escalate" else f"{verb(page)}: {subject(page)}", 1024),
        "source": cut(page.service or page.source or "pulser", 255),
        "severity": "info" if page.action == "test" else SEVERITIES.get(page.severity, "warning"),
        "custom_details": details,
    }
    for field, value in (("component", page.service), ("group", page.env), ("class", page.source)):
        if value:
            payload[field] = cut(value, 255)
    if page.first_seen is not None:
        payload["timestamp"] = page.first_seen.isoformat()
    body.update(payload=payload, client="Pulser")
    if link := safe_link(page):
        body["client_url"] = link
        body["links"] = [{"href": link, "text": "Open incident in Pulser"}]
    return body


async def send(settings: PagerDutySettings, page: Page, ref: str | None, http: httpx.AsyncClient) -> SendResult:
    secrets = answers.secret_values(settings.routing_key.get_secret_value())
    body = event(settings, page)
    response = await answers.call(http, "POST", settings.events_url, service="PagerDuty", secrets=secrets, json=body)
    answer = answers.json_or_none(response)
    if response.is_success:
        key = answer.get("dedup_key") if isinstance(answer, dict) else None
        return SendResult(detail=f"HTTP {response.status_code}, {body['event_action']} {key or page.dedup_key}", ref=key or page.dedup_key)
    detail = None
    if isinstance(answer, dict):
        errors = answer.get("errors")
        detail = "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else answer.get("message")
    raise answers.refused("PagerDuty", response, secrets=secrets, hints=HINTS, detail=detail)

"""Microsoft Teams: an Adaptive Card posted to a channel's Workflows (Power Automate) URL or a
legacy incoming-webhook connector URL.

Both take the same envelope — `{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <card>}]}` — the one the Workflows template
"Post to a channel when a webhook request is received" expects. A workflow answers 202 with no
body; a legacy connector answers 200 with the body "1". A legacy connector also answers 200 when
Teams itself refused the card, with the error as text ("Microsoft Teams endpoint returned HTTP
error 429 with ContextId …"), so a 200 whose body is neither empty nor "1" is a failure: a 429 or
5xx named in it may be retried, anything else needs a person.

The card stays well under Teams' 28 KB message limit: the description is cut to 3000 characters.
"""

from __future__ import annotations

import re

import httpx
from pydantic import field_validator

from alerts.outbound.channels import answers
from alerts.outbound.channels.base import DeliveryFailed, Page, SendResult
from alerts.outbound.channels.fields import ChannelSettings, Secret, service_url
from alerts.outbound.channels.render import cut, facts, headline, safe_link

KIND = "teams"
LABEL = "Microsoft Teams (workflow or incoming webhook)"
SECRET_FIELDS = ("webhook_url",)
ACTIONS = frozenset({"trigger", "escalate", "resolve", "test"})

DESCRIPTION_LIMIT = 3000
# Adaptive Card text colours per severity ("attention" is red, "warning" amber, "good" green).
TEXT_COLOURS = {"critical": "attention", "high": "attention", "medium": "warning", "low": "accent", "info": "default"}
HINTS = {
    400: "Teams refused the card",
    401: "the workflow URL's signature was refused; copy the URL from the workflow again",
    403: "the workflow may not be run with this URL; copy the URL from the workflow again",
    404: "the workflow or webhook was deleted; paste a new URL",
    410: "the webhook was removed; paste a new workflow URL",
    413: "the card was too large",
}
EMBEDDED_STATUS = re.compile(r"HTTP error (\d{3})")


class TeamsSettings(ChannelSettings):
    webhook_url: Secret

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _url(cls, value):
        return service_url(value)


def card(page: Page) -> dict:
    """The Adaptive Card (1.4, what Teams and workflows render): headline, facts, description, link."""
    resolved = page.action == "resolve" or page.status == "resolved"
    body: list[dict] = [
        {
            "type": "TextBlock",
            "text": cut(headline(page), 300),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "good" if resolved else TEXT_COLOURS.get(page.severity, "default"),
        },
        {"type": "FactSet", "facts": [{"title": name, "value": cut(value, 300)} for name, value in facts(page)]},
    ]
    if page.description:
        body.append({"type": "TextBlock", "text": cut(page.description, DESCRIPTION_LIMIT), "wrap": True})
    content: dict = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if link := safe_link(page):
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open incident", "url": link}]
    return content


def message(page: Page) -> dict:
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card(page)}],
    }


def _error_detail(response: httpx.Response) -> str | None:
    """A workflow's `{"error": {"code", "message"}}`, or a connector's text."""
    body = answers.json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return ": ".join(str(part) for part in (error.get("code"), error.get("message")) if part) or None
    return response.text or None


def _refused_in_body(response: httpx.Response, secrets: tuple[str, ...]) -> DeliveryFailed:
    """A legacy connector's 200 that carries Teams' refusal as text."""
    text = answers.said(response.text, secrets)
    found = EMBEDDED_STATUS.search(text)
    status = int(found.group(1)) if found else None
    retryable = status is not None and (status == 429 or status >= 500)
    if retryable:
        reason = f"Teams refused the card with HTTP {status}; will retry ({text})"
    elif status == 413:
        reason = f"Teams refused the card as too large ({text})"
    else:
        reason = f"Teams answered 200 but did not post the card: {text}"
    return DeliveryFailed(answers.scrub(reason, secrets), retryable=retryable, retry_after=answers.retry_after(response))


async def send(settings: TeamsSettings, page: Page, ref: str | None, http: httpx.AsyncClient) -> SendResult:
    url = settings.webhook_url.get_secret_value()
    secrets = answers.secret_values(url)
    response = await answers.call(http, "POST", url, service="Teams", secrets=secrets, json=message(page))
    if response.is_success:
        if response.text.strip() not in ("", "1"):
            raise _refused_in_body(response, secrets)
        return SendResult(detail=f"HTTP {response.status_code}")
    raise answers.refused("Teams", response, secrets=secrets, hints=HINTS, detail=_error_detail(response))

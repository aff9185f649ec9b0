"""Discord: one message per page, posted to a channel's webhook.

`POST {webhook_url}?wait=true` with one embed (severity colour, the facts as fields, the link as
the title's URL) and, from `everyone_min_severity` up, the content "@everyone". `allowed_mentions`
always says exactly which mention may ping — "everyone" or none — so a title or description that
contains "@here" or a role mention never pings anyone. `wait=true` makes Discord answer 200 with the
created message, whose id is the ref.

Discord's limits (embed title 256, description 4096, field value 1024, 25 fields, 6000 characters
in all) are applied here; a 429 carries its wait in the body (`retry_after`, seconds), and a
deleted webhook answers 404 `Unknown Webhook`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import field_validator

from alerts.outbound.channels import answers
from alerts.outbound.channels.base import Page, SendResult
from alerts.outbound.channels.fields import ChannelSettings, Secret, SeverityName, service_url
from alerts.outbound.channels.render import colour, cut, facts, headline, safe_link

KIND = "discord"
LABEL = "Discord webhook"
SECRET_FIELDS = ("webhook_url",)
ACTIONS = frozenset({"trigger", "escalate", "resolve", "test"})

SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")
HINTS = {
    400: "Discord refused the message",
    401: "the webhook's token is wrong; paste the webhook URL again",
    403: "the webhook may not post to its channel; check its permissions or paste a new webhook URL",
    404: "the webhook was deleted; paste a new webhook URL",
}


class DiscordSettings(ChannelSettings):
    webhook_url: Secret
    everyone_min_severity: SeverityName | None = "critical"

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook(cls, value):
        url = service_url(value)
        if "/api/webhooks/" not in urlsplit(url).path:
            raise ValueError("must be a Discord webhook URL (…/api/webhooks/<id>/<token>)")
        return url


def _pings_everyone(settings: DiscordSettings, page: Page) -> bool:
    threshold = settings.everyone_min_severity
    if threshold is None or page.action == "resolve" or page.severity not in SEVERITY_ORDER:
        return False
    return SEVERITY_ORDER.index(page.severity) >= SEVERITY_ORDER.index(threshold)


def message(settings: DiscordSettings, page: Page) -> dict:
    """The webhook body: one embed, and "@everyone" only when the severity calls for it."""
    embed: dict = {
        "title": cut(headline(page), 256),
        "color": colour(page),
        "fields": [{"name": name, "value": cut(value, 1024), "inline": True} for name, value in facts(page)][:25],
        "footer": {"text": cut(f"Pulser · {page.dedup_key}", 2048)},
        "timestamp": datetime.now(timezone.utc).isoformat(),
    }
    # Whatever is left of Discord's 6000 characters goes to the description.
    used = len(embed["title"]) + len(embed["footer"]["text"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    if page.description:
        embed["description"] = cut(page.description, min(4096, max(6000 - used - 1, 0)))
    if link := safe_link(page):
        embed["url"] = link
    body: dict = {"embeds": [embed], "allowed_mentions": {"parse": []}}
    if _pings_everyone(settings, page):
        body["content"] = "@everyone"
        body["allowed_mentions"] = {"parse": ["everyone"]}
    return body


def _with_wait(url: str) -> str:
    """The webhook URL with `wait=true`, keeping any query it has (a `thread_id`)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "wait"] + [("wait", "true")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _explain(response: httpx.Response) -> tuple[str | None, float | None]:
    """Discord's own message (with the first invalid field of a 400), and a 429's wait."""
    body = answers.json_or_none(response)
    if not isinstance(body, dict):
        return None, None
    said = body.get("message")
    errors = body.get("errors")
    if isinstance(errors, dict):
        path, problem = _first_error(errors)
        if problem:
            said = f"{said}: {path}: {problem}" if said else f"{path}: {problem}"
    wait = body.get("retry_after")
    return (str(said) if said else None), (float(wait) if isinstance(wait, (int, float)) else None)


def _first_error(errors: dict, path: str = "") -> tuple[str, str | None]:
    """Discord nests a 400's errors by field (`embeds.0.title._errors[0].message`)."""
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list) and value:
            return path, str(value[0].get("message", "invalid")) if isinstance(value[0], dict) else str(value[0])
        if isinstance(value, dict):
            found_path, problem = _first_error(value, f"{path}.{key}" if path else str(key))
            if problem:
                return found_path, problem
    return path, None


async def send(settings: DiscordSettings, page: Page, ref: str | None, http: httpx.AsyncClient) -> SendResult:
    url = settings.webhook_url.get_secret_value()
    secrets = answers.secret_values(url)
    response = await answers.call(http, "POST", _with_wait(url), service="Discord", secrets=secrets, json=message(settings, page))
    if response.is_success:
        body = answers.json_or_none(response)
        message_id = str(body["id"]) if isinstance(body, dict) and body.get("id") else None
        return SendResult(detail=f"HTTP {response.status_code}, message {message_id or '(no id)'}", ref=message_id)
    said, wait = _explain(response)
    raise answers.refused("Discord", response, secrets=secrets, hints=HINTS, detail=said, wait=wait)

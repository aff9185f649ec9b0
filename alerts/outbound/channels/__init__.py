"""The outbound channel kinds beyond Slack, and the one way the outbox and the API use them.

Each kind is one module of this package (`email`, `discord`, `teams`, `webhook`, `github`,
`twilio`, `pagerduty`): a settings model, the settings that are secret, the page actions it acts
on, and `send`, which makes the service's request(s) for one `Page` and turns the answer into a
`SendResult` or a `DeliveryFailed`. Retrying, backoff and the delivery log belong to the outbox.

    config = parse_config("discord", {"webhook_url": "https://discord.com/api/webhooks/1/abc"})
    result = await send("discord", stored_settings, page, ref=None, http=client)

`parse_config` is the only gate for settings: it refuses unknown keys and says per field what is
allowed (`ChannelConfigError.errors`). `redacted` is what may be shown back (API answers, Slack):
secrets become "(set)". `with_kept_secrets` lets an edit that leaves a secret out (or sends back
"(set)") keep the stored one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from alerts.outbound.channels import discord, email, github, pagerduty, teams, twilio, webhook
from alerts.outbound.channels.base import ACTIONS, DeliveryFailed, Page, SendResult

__all__ = [
    "ACTIONS",
    "KINDS",
    "ChannelConfigError",
    "ChannelKind",
    "DeliveryFailed",
    "Page",
    "SendResult",
    "parse_config",
    "redacted",
    "send",
    "with_kept_secrets",
]

SET = "(set)"


@dataclass(frozen=True)
class ChannelKind:
    kind: str
    label: str
    config_model: type[BaseModel]
    secret_fields: tuple[str, ...]
    actions: frozenset[str]
    send: Callable[[Any, Page, str | None, httpx.AsyncClient], Awaitable[SendResult]]


def _kind(module: Any, model: type[BaseModel]) -> ChannelKind:
    return ChannelKind(
        kind=module.KIND,
        label=module.LABEL,
        config_model=model,
        secret_fields=module.SECRET_FIELDS,
        actions=module.ACTIONS,
        send=module.send,
    )


KINDS: dict[str, ChannelKind] = {
    kind.kind: kind
    for kind in (
        _kind(email, email.EmailSettings),
        _kind(discord, discord.DiscordSettings),
        _kind(teams, teams.TeamsSettings),
        _kind(webhook, webhook.WebhookSettings),
        _kind(github, github.GitHubSettings),
        _kind(twilio, twilio.TwilioSettings),
        _kind(pagerduty, pagerduty.PagerDutySettings),
    )
}


class ChannelConfigError(ValueError):
    """Field name → what is allowed there, in words a person can act on."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {problem}" for field, problem in errors.items()))


def _kind_of(kind: str) -> ChannelKind:
    if kind not in KINDS:
        raise ChannelConfigError({"kind": f"must be one of {', '.join(KINDS)}"})
    return KINDS[kind]


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _explain(error: Mapping[str, Any], model: type[BaseModel]) -> tuple[str, str]:
    """One pydantic error as (field, what is allowed); never the value that was given."""
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"])
    kind = error["type"]
    if kind == "missing":
        return field, "required"
    if kind == "extra_forbidden":
        return field, f"unknown setting; the settings are {', '.join(_field_names(model))}"
    if message.startswith(("Value error, ", "Assertion failed, ")):
        message = message.split(", ", 1)[1]
    if not field and ": " in message and message.split(": ", 1)[0] in _field_names(model):
        field, message = message.split(": ", 1)  # a rule about two fields, named after the first
    message = message.replace("Input should be", "must be").replace("Value should have", "must have")
    return field or "settings", message


def parse_config(kind: str, data: Mapping[str, Any]) -> BaseModel:
    """The validated settings of a channel of `kind`; `ChannelConfigError` says what is wrong."""
    channel = _kind_of(kind)
    if not isinstance(data, Mapping):
        raise ChannelConfigError({"settings": "must be an object of settings"})
    try:
        return channel.config_model.model_validate(dict(data))
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            field, problem = _explain(error, channel.config_model)
            errors.setdefault(field, problem)
        raise ChannelConfigError(errors) from None


def redacted(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as they may be shown: each secret that is set reads "(set)", one that is not
    is left out."""
    channel = _kind_of(kind)
    shown = {}
    for key, value in data.items():
        if key in channel.secret_fields:
            if value not in (None, ""):
                shown[key] = SET
        else:
            shown[key] = value
    return shown


def with_kept_secrets(kind: str, submitted: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """An edit's settings where a secret left out, or sent back as "(set)", keeps its stored value:
    a form that showed `redacted` settings can be saved without typing every secret again. An
    empty string or null clears it."""
    channel = _kind_of(kind)
    merged = dict(submitted)
    for key in channel.secret_fields:
        if key not in merged or merged[key] == SET:
            merged.pop(key, None)
            if stored.get(key) not in (None, ""):
                merged[key] = stored[key]
        elif merged[key] in (None, ""):
            merged.pop(key)
    return merged


async def send(kind: str, config: Mapping[str, Any], page: Page, ref: str | None, http: httpx.AsyncClient) -> SendResult:
    """Send `page` through a channel of `kind` with its stored settings. Settings that no longer
    validate fail at once, not retryable, naming the fields (never their values)."""
    channel = _kind_of(kind)
    if page.action not in channel.actions:
        return SendResult(detail=f"not sent: {channel.label} does not act on {page.action}")
    try:
        settings = parse_config(kind, config)
    except ChannelConfigError as exc:
        raise DeliveryFailed(f"the channel's settings are invalid: {exc}; fix them", retryable=False) from None
    return await channel.send(settings, page, ref, http)

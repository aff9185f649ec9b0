"""SMS through Twilio's Messages API: one short text per number.

`POST {api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`, form-encoded `To`, `From` (or
`MessagingServiceSid`) and `Body`, with HTTP basic auth (account SID, auth token). Twilio answers
201 with the message (`sid` is the ref); an error is JSON `{"code", "message", "more_info",
"status"}`: 21211/21614 (not a valid or not a mobile number), 20003 (authentication) and the other
4xx need a person; 20429 and 429 (too many requests) and 5xx are retried.

The text fits two SMS segments — 306 GSM-7 characters, or 134 when it needs Unicode (an accent, an
emoji) — and says only what a person needs to act: severity, title, service, incident.

A page with a `recipient` goes to that number only; otherwise to every number of `to`, one message
each. When some numbers took the message and others did not, the send counts as delivered (the
detail names the failures): retrying it would text again those who already have it.
"""

from __future__ import annotations

import re

import httpx
from pydantic import Field, field_validator, model_validator

from alerts.outbound.channels import answers
from alerts.outbound.channels.base import DeliveryFailed, Page, SendResult
from alerts.outbound.channels.fields import ChannelSettings, PhoneNumber, Secret, service_url
from alerts.outbound.channels.render import incident_ref, verb, where

KIND = "twilio"
LABEL = "SMS (Twilio)"
SECRET_FIELDS = ("auth_token",)
ACTIONS = frozenset({"trigger", "escalate", "resolve", "test"})

ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
GSM7_LIMIT = 306  # two concatenated segments of 153 GSM-7 characters
UNICODE_LIMIT = 134  # two concatenated segments of 67 UCS-2 characters
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€")  # two characters each

# Error codes that say a retry can work, whatever the HTTP status.
RETRYABLE_CODES = {20429, 20500, 20503}
HINTS = {
    21211: "the 'To' number is not a valid phone number; fix it in E.164 form",
    21614: "the 'To' number is not a mobile number that can receive SMS",
    21608: "a trial account may only text verified numbers; verify it in Twilio or upgrade",
    21610: "the recipient has replied STOP; they must text START to receive alerts again",
    21408: "SMS to this region is not enabled; enable it in Twilio's geo permissions",
    21606: "the 'From' number cannot send SMS; choose an SMS-capable number",
    21603: "a 'From' number or messaging service is required",
    20003: "the account SID or auth token was refused; enter them again",
    20404: "the account was not found; check the account SID",
}
STATUS_HINTS = {401: HINTS[20003], 404: HINTS[20404]}
# Errors about one recipient: the other numbers of the list are still texted.
NUMBER_CODES = {21211, 21614, 21608, 21610, 21408}


class TwilioSettings(ChannelSettings):
    account_sid: str
    auth_token: Secret
    from_number: PhoneNumber | None = None
    messaging_service_sid: str | None = None
    to: list[PhoneNumber] = Field(default_factory=list, max_length=20)
    api_base: str = "https://api.twilio.com"

    @field_validator("account_sid")
    @classmethod
    def _account(cls, value: str) -> str:
        if not ACCOUNT_SID.match(value):
            raise ValueError("must be the account SID: AC followed by 32 hex digits")
        return value

    @field_validator("messaging_service_sid")
    @classmethod
    def _service(cls, value: str | None) -> str | None:
        if value is not None and not SERVICE_SID.match(value):
            raise ValueError("must be a messaging service SID: MG followed by 32 hex digits")
        return value

    @field_validator("api_base", mode="before")
    @classmethod
    def _base(cls, value):
        return service_url(value).rstrip("/")

    @model_validator(mode="after")
    def _one_sender(self):
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("from_number: set exactly one of from_number and messaging_service_sid")
        return self


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in text)


def cost(text: str) -> int:
    """Characters a GSM-7 text spends of a segment (`[`, `€` and the like spend two)."""
    return sum(2 if char in GSM7_EXTENDED else 1 for char in text)


def _cut_to(text: str, budget: int, *, gsm7: bool) -> str:
    """`text` spending at most `budget`, ending in "..." when cut ("…" is not GSM-7)."""
    spend = cost if gsm7 else len
    if spend(text) <= budget:
        return text
    kept = ""
    for char in text:
        if spend(kept + char) > budget - 3:
            break
        kept += char
    return kept + "..."


def text(page: Page) -> str:
    """"Pulser Firing - [CRITICAL] Checkout 500s - checkout / production - incident #42": the
    title is cut so that the severity, the service and the incident always fit."""
    head = f"Pulser {verb(page)} - [{page.severity.upper()}] "
    tail = "".join(f" - {part}" for part in (where(page), f"incident {incident_ref(page)}" if incident_ref(page) else "") if part)
    gsm7 = is_gsm7(head + page.title + tail)
    limit, spend = (GSM7_LIMIT, cost) if gsm7 else (UNICODE_LIMIT, len)
    tail = _cut_to(tail, limit // 2, gsm7=gsm7)
    head = _cut_to(head, limit // 4, gsm7=gsm7)
    return head + _cut_to(page.title, limit - spend(head) - spend(tail), gsm7=gsm7) + tail


def _refusal(response: httpx.Response, secrets: tuple[str, ...], number: str) -> tuple[DeliveryFailed, bool]:
    """The failure Twilio's answer means, and whether it is this number's alone (another number
    of the list may still be texted)."""
    body = answers.json_or_none(response)
    code = body.get("code") if isinstance(body, dict) else None
    said = body.get("message") if isinstance(body, dict) else None
    if code in RETRYABLE_CODES:
        reason = f"Twilio answered {response.status_code} (error {code}): {answers.said(said or 'try later', secrets)}; will retry"
        return DeliveryFailed(answers.scrub(reason, secrets), retryable=True, retry_after=answers.retry_after(response)), False
    hint = HINTS.get(code) if isinstance(code, int) else None
    this_number = code in NUMBER_CODES
    if hint:
        hints = {response.status_code: f"{hint} ({number})" if this_number else hint}
    else:
        hints = STATUS_HINTS
    detail = f"error {code}: {said}" if code else said
    return answers.refused("Twilio", response, secrets=secrets, hints=hints, detail=detail), this_number


async def send(settings: TwilioSettings, page: Page, ref: str | None, http: httpx.AsyncClient) -> SendResult:
    numbers = [page.recipient] if page.recipient else list(settings.to)
    if not numbers:
        raise DeliveryFailed("Twilio: no number to text; add numbers to the channel's 'to'", retryable=False)
    token = settings.auth_token.get_secret_value()
    secrets = answers.secret_values(token)
    url = f"{settings.api_base}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
    form = {"Body": text(page)}
    if settings.messaging_service_sid:
        form["MessagingServiceSid"] = settings.messaging_service_sid
    else:
        form["From"] = settings.from_number or ""
    sent: list[str] = []
    failures: list[tuple[str, DeliveryFailed]] = []
    for number in numbers:
        try:
            response = await answers.call(
                http, "POST", url, service="Twilio", secrets=secrets, data={**form, "To": number}, auth=(settings.account_sid, token)
            )
        except DeliveryFailed as failed:
            if not sent:
                raise
            failures.append((number, failed))
            continue
        if response.is_success:
            body = answers.json_or_none(response)
            sent.append(str(body.get("sid")) if isinstance(body, dict) and body.get("sid") else "(no sid)")
            continue
        failed, this_number_only = _refusal(response, secrets, number)
        if not sent and not this_number_only:
            raise failed  # nobody has it yet, and the next number would fare no better
        failures.append((number, failed))
    if not sent:
        raise failures[0][1]
    detail = f"{len(sent)} SMS sent ({', '.join(sent)})"
    if failures:
        detail += "; not sent to " + "; ".join(f"{number}: {failed.reason}" for number, failed in failures)
    return SendResult(detail=detail, ref=sent[0])

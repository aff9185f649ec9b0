"""How every HTTP channel turns a service's answer into a `SendResult` or a `DeliveryFailed`.

One mapping for all services, so a user reads the same kind of reason whatever the channel: 2xx is
delivered; 429 waits for the service's own `Retry-After`; 408, 5xx, timeouts and refused
connections may work later; any other 4xx (a deleted webhook, a wrong token, a malformed message)
needs a person, and the reason says what to change. Modules pass their own hints per status
("the webhook was deleted; paste a new webhook URL") and the secrets of their settings: a reason is
scrubbed of every secret (and of its URL-encoded form and the long parts of a secret URL) before it
leaves, because services sometimes echo what they were sent.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from alerts.outbound.channels.base import DeliveryFailed

HIDDEN = "***"

# What a 4xx means when a module has nothing more precise to say.
DEFAULT_HINTS: dict[int, str] = {
    400: "the service refused the message as malformed",
    401: "the credentials were refused; enter them again",
    403: "the credentials may not do this; check their permissions",
    404: "the address was not found; check it, or paste a new one",
    405: "the address does not accept messages; check it",
    410: "the address no longer exists; paste a new one",
    413: "the message was too large",
    422: "the service refused the message as invalid",
}


def secret_values(*values: str | None) -> tuple[str, ...]:
    """The strings a reason must never contain: each secret as given and URL-encoded, and for a
    URL its long path segments and query values (a webhook token, a `sig=`) on their own."""
    found: set[str] = set()
    for value in values:
        if not value:
            continue
        found |= {value, quote(value, safe=""), quote(value, safe="/:")}
        if "://" in value:
            parts = urlsplit(value)
            found |= {segment for segment in parts.path.split("/") if len(segment) >= 12}
            found |= {item for _, item in parse_qsl(parts.query) if len(item) >= 12}
    # Longest first, so a URL is hidden whole before its token is looked for.
    return tuple(sorted((s for s in found if len(s) >= 4), key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, HIDDEN)
    return text


def one_line(text: Any, limit: int = 300) -> str:
    """A message made fit for a log line: whitespace folded, cut at `limit`."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def said(text: Any, secrets: Iterable[str], limit: int = 300) -> str:
    """What a service said, fit for a reason: secrets hidden first (a cut must not leave half of
    one behind), then folded onto one line and cut."""
    return one_line(scrub(str(text), secrets), limit)


async def call(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    service: str,
    secrets: Iterable[str],
    **kwargs: Any,
) -> httpx.Response:
    """One request; a transport failure becomes a `DeliveryFailed` naming no URL and no secret."""
    secrets = tuple(secrets)
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(f"{service} did not answer in time ({type(exc).__name__})", retryable=True) from None
    except httpx.UnsupportedProtocol:
        raise DeliveryFailed(f"{service}: the URL must start with https://", retryable=False) from None
    except httpx.TransportError as exc:
        detail = said(exc, secrets) or type(exc).__name__
        raise DeliveryFailed(f"{service} could not be reached: {detail}", retryable=True) from None
    except httpx.InvalidURL:
        raise DeliveryFailed(f"{service}: the URL is not valid; paste it again", retryable=False) from None


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds: a number, or an HTTP date turned into the wait until then."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def status_text(status: int) -> str:
    try:
        return f"{status} ({HTTPStatus(status).phrase})"
    except ValueError:
        return str(status)


def refused(
    service: str,
    response: httpx.Response,
    *,
    secrets: Iterable[str],
    hints: Mapping[int, str] | None = None,
    detail: str | None = None,
    wait: float | None = None,
) -> DeliveryFailed:
    """The failure a non-2xx answer means. `detail` is the service's own words (its error message),
    `wait` overrides `Retry-After` (Discord's body), `hints` say what to fix per status."""
    status = response.status_code
    secrets = tuple(secrets)
    words = f" ({said(detail, secrets)})" if detail else ""
    if status == 429:
        seconds = wait if wait is not None else retry_after(response)
        after = f"; retrying after {seconds:g} s" if seconds is not None else ""
        reason, retryable, wait_for = f"{service} answered 429: rate limited{after}{words}", True, seconds
    elif status >= 500 or status == 408:
        reason, retryable, wait_for = f"{service} answered {status_text(status)}; will retry{words}", True, retry_after(response)
    elif 300 <= status < 400:
        reason = f"{service} answered {status_text(status)}: the URL redirects elsewhere; paste the final URL"
        retryable, wait_for = False, None
    else:
        hint = (hints or {}).get(status) or DEFAULT_HINTS.get(status) or "the service refused the message"
        reason, retryable, wait_for = f"{service} answered {status}: {hint}{words}", False, None
    return DeliveryFailed(scrub(reason, secrets), retryable=retryable, retry_after=wait_for)


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None

"""Building blocks of the channels' settings models: strict (an unknown key is an error, not
ignored), secrets held as `SecretStr` so no repr or log line shows them, and the checks several
kinds share (a service URL, an E.164 phone number, an e-mail address, a severity)."""

from __future__ import annotations

import re
from email.utils import parseaddr
from ipaddress import ip_address
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr

SeverityName = Literal["info", "low", "medium", "high", "critical"]
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class ChannelSettings(BaseModel):
    """A channel's settings: unknown keys are refused, text is trimmed, and a model never changes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True, frozen=True)


def _secret_text(value: Any) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise ValueError("must be text")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


Secret = Annotated[SecretStr, BeforeValidator(_secret_text)]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def service_url(value: Any, *, plain_http: bool = False) -> str:
    """A web address to send to: https, or http to this machine (a local relay, a test); with
    `plain_http`, http anywhere (a receiver on the private network). Never echoes the value."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a URL starting with https://")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be a URL starting with https://")
    if parts.scheme == "http" and not plain_http and not _is_loopback(parts.hostname):
        raise ValueError("must start with https:// (plain http only to this machine)")
    return value.strip()


def phone_number(value: Any) -> str:
    if not isinstance(value, str) or not E164.match(value.replace(" ", "")):
        raise ValueError("must be a phone number in E.164 form, like +14155550123")
    return value.replace(" ", "")


def email_address(value: Any) -> str:
    """An address as mail headers take it: `ops@example.com` or `Ops <ops@example.com>`."""
    if not isinstance(value, str):
        raise ValueError("must be an e-mail address, like ops@example.com")
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise ValueError("must be an e-mail address, like ops@example.com")
    return value.strip()


PhoneNumber = Annotated[str, AfterValidator(phone_number)]
EmailAddress = Annotated[str, AfterValidator(email_address)]

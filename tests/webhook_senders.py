"""How each source puts a delivery on the wire, with the test suite's secrets: the signers are
`alerts.integration_samples`' (the Send test button signs with the same ones), so the webhook
end-to-end tests, the benchmarks and a test delivery send exactly what Sentry, GitHub,
Alertmanager and a generic sender send.
"""

from __future__ import annotations

from alerts import integration_samples as signers

SENTRY_SECRET = "sentry-client-secret"
GITHUB_SECRET = "github-webhook-secret"
WEBHOOK_TOKEN = "pulser-webhook-token"

SECRETS_ENV = {
    "SENTRY_CLIENT_SECRET": SENTRY_SECRET,
    "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
    "PULSER_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
}


def sentry(payload: dict, resource: str = "error", secret: str = SENTRY_SECRET) -> tuple[dict, bytes]:
    return signers.sentry(payload, resource, secret)


def github(payload: dict, event: str, delivery: str | None = None, secret: str = GITHUB_SECRET) -> tuple[dict, bytes]:
    return signers.github(payload, event, secret, delivery)


def alertmanager(payload: dict, token: str = WEBHOOK_TOKEN) -> tuple[dict, bytes]:
    return signers.bearer(payload, token)


def generic(payload: dict, token: str = WEBHOOK_TOKEN, idempotency_key: str | None = None) -> tuple[dict, bytes]:
    return signers.bearer(payload, token, idempotency_key)

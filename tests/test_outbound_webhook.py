"""The generic webhook channel against a receiver that verifies signatures: the body, the headers,
and the verification recipe its docstring gives."""

from __future__ import annotations

import re
import time

import pytest

from alerts.outbound import channels
from alerts.outbound.channels import DeliveryFailed, webhook
from tests.outbound_standins import sample_page


def settings_for(standins, **changes) -> dict:
    return {"url": standins.webhook_url(), "signing_secret": standins.webhook_secret, **changes}


async def test_every_action_arrives_signed_with_the_incident(standins, outbound_http):
    for action in ("trigger", "acknowledge", "resolve"):
        await channels.send("webhook", settings_for(standins), sample_page(action=action), None, outbound_http)
    requests = standins.received("webhook")  # the receiver accepts only a valid signature
    assert [r.json["action"] for r in requests] == ["trigger", "acknowledge", "resolve"]
    incident = requests[0].json["incident"]
    assert incident["dedup_key"] == "pulser-incident-42" and incident["severity"] == "critical" and incident["count"] == 3
    assert incident["labels"] == {"team": "payments"} and incident["first_seen"] == "2026-03-01T12:30:00+00:00"
    assert requests[0].headers["X-Pulser-Event"] == "trigger"
    assert abs(int(requests[0].headers["X-Pulser-Timestamp"]) - time.time()) < 60


async def test_the_docstrings_recipe_verifies_a_real_delivery(standins, outbound_http):
    await channels.send("webhook", settings_for(standins), sample_page(), None, outbound_http)
    [request] = standins.received("webhook")
    recipe = re.search(r"\n(    import hashlib.*?)\n\n", webhook.__doc__, re.S).group(1)
    namespace: dict = {}
    exec("\n".join(line[4:] for line in recipe.splitlines()), namespace)
    verified = namespace["verified"]
    timestamp, signature = request.headers["X-Pulser-Timestamp"], request.headers["X-Pulser-Signature"]
    assert verified(standins.webhook_secret.encode(), timestamp, request.body, signature)
    assert not verified(b"another secret", timestamp, request.body, signature)


async def test_a_retried_send_keeps_its_idempotency_key(standins, outbound_http):
    page = sample_page(action="escalate", step="L2 of Production paging")
    standins.fail_next("webhook", 503)
    with pytest.raises(DeliveryFailed):
        await channels.send("webhook", settings_for(standins), page, None, outbound_http)
    await channels.send("webhook", settings_for(standins), page, None, outbound_http)
    first, second = standins.attempts("webhook")
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == "pulser-incident-42:escalate:L2 of Production paging"


async def test_a_signature_the_receiver_refuses_is_not_retried_and_names_the_signing_secret(standins, outbound_http):
    wrong = "not-the-receivers-secret-value"
    with pytest.raises(DeliveryFailed) as failed:
        await channels.send("webhook", settings_for(standins, signing_secret=wrong), sample_page(), None, outbound_http)
    assert not failed.value.retryable and "signing secret" in failed.value.reason
    assert wrong not in failed.value.reason and standins.webhook_url() not in failed.value.reason


async def test_a_receiver_on_plain_http_in_the_private_network_is_allowed():
    settings = channels.parse_config("webhook", {"url": "http://10.0.0.5:8080/pulser"})
    assert settings.url.get_secret_value() == "http://10.0.0.5:8080/pulser"

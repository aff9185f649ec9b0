"""The PagerDuty channel against the Events API v2 stand-in: one alert per dedup key, the payload,
severity mapping, acknowledge and resolve, and PagerDuty's refusals."""

from __future__ import annotations

import pytest

from alerts.outbound import channels
from alerts.outbound.channels import DeliveryFailed
from tests.outbound_standins import sample_page


def settings_for(standins, **changes) -> dict:
    return {"routing_key": standins.pagerduty_key, "events_url": standins.pagerduty_url, **changes}


async def send(standins, http, settings: dict | None = None, **page_changes):
    return await channels.send("pagerduty", settings or settings_for(standins), sample_page(**page_changes), None, http)


async def test_a_trigger_sends_the_payload_keyed_by_the_incident(standins, outbound_http):
    result = await send(standins, outbound_http)
    event = standins.received("pagerduty")[0].json
    assert event["event_action"] == "trigger" and event["dedup_key"] == "pulser-incident-42"
    payload = event["payload"]
    assert payload["summary"] == "[CRITICAL] Checkout answers 500 (checkout / production)"
    assert (payload["source"], payload["component"], payload["group"], payload["class"]) == ("checkout", "checkout", "production", "sentry")
    assert payload["custom_details"]["count"] == 3 and payload["custom_details"]["incident"] == 42
    assert event["links"] == [{"href": "https://pulser.example.com/incidents/42", "text": "Open incident in Pulser"}]
    assert result.ref == "pulser-incident-42"


@pytest.mark.parametrize(
    "severity, expected", [("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info"), ("info", "info")]
)
async def test_severities_map_to_pagerdutys(standins, outbound_http, severity, expected):
    await send(standins, outbound_http, severity=severity)
    assert standins.received("pagerduty")[0].json["payload"]["severity"] == expected


async def test_a_long_title_is_cut_to_the_summary_limit(standins, outbound_http):
    await send(standins, outbound_http, title="z" * 5000)
    assert len(standins.received("pagerduty")[0].json["payload"]["summary"]) == 1024


async def test_an_escalation_triggers_the_same_alert_again(standins, outbound_http):
    await send(standins, outbound_http)
    await send(standins, outbound_http, action="escalate", step="L2")
    assert list(standins.pagerduty_alerts) == ["pulser-incident-42"]
    assert standins.pagerduty_alerts["pulser-incident-42"]["triggers"] == 2


async def test_acknowledge_and_resolve_send_only_the_key(standins, outbound_http):
    await send(standins, outbound_http)
    await send(standins, outbound_http, action="acknowledge", acked_by="Ana")
    assert standins.pagerduty_alerts["pulser-incident-42"]["status"] == "acknowledged"
    await send(standins, outbound_http, action="resolve", status="resolved")
    assert standins.pagerduty_alerts["pulser-incident-42"]["status"] == "resolved"
    resolve = standins.received("pagerduty")[-1].json
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}


async def test_an_invalid_event_is_not_retried_and_hides_the_key(standins, outbound_http):
    key = "Q" * 32  # well formed, but no service has it
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http, settings_for(standins, routing_key=key))
    assert not failed.value.retryable and "Invalid routing key" in failed.value.reason and key not in failed.value.reason


async def test_a_throttled_event_is_retried(standins, outbound_http):
    standins.fail_next("pagerduty", 429)
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http)
    assert failed.value.retryable and "429" in failed.value.reason

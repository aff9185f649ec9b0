"""The Teams channel against the Workflows and legacy connector stand-ins: the Adaptive Card
envelope, and a legacy connector's refusals hidden in a 200."""

from __future__ import annotations

import pytest

from alerts.outbound import channels
from alerts.outbound.channels import DeliveryFailed
from tests.outbound_standins import sample_page


async def send(http, url: str, **page_changes):
    return await channels.send("teams", {"webhook_url": url}, sample_page(**page_changes), None, http)


async def test_a_workflow_takes_an_adaptive_card_in_a_message_envelope(standins, outbound_http):
    result = await send(outbound_http, standins.teams_workflow_url)
    assert result.detail == "HTTP 202"
    body = standins.received("teams")[0].json
    [attachment] = body["attachments"]
    assert body["type"] == "message" and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == "Firing: [CRITICAL] Checkout answers 500 (checkout / production)"
    assert {"title": "Service", "value": "checkout"} in card["body"][1]["facts"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open incident", "url": "https://pulser.example.com/incidents/42"}]


async def test_a_legacy_connector_answers_200_with_1(standins, outbound_http):
    result = await send(outbound_http, standins.teams_connector_url)
    assert result.detail == "HTTP 200" and len(standins.received("teams")) == 1


async def test_a_legacy_200_that_carries_a_429_is_a_retryable_failure(standins, outbound_http):
    standins.fail_next("teams", 200, body="Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=msgapi")
    with pytest.raises(DeliveryFailed) as failed:
        await send(outbound_http, standins.teams_connector_url)
    assert failed.value.retryable and "HTTP 429" in failed.value.reason


async def test_a_legacy_200_that_carries_a_413_is_not_retried(standins, outbound_http):
    standins.fail_next("teams", 200, body="Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413")
    with pytest.raises(DeliveryFailed) as failed:
        await send(outbound_http, standins.teams_connector_url)
    assert not failed.value.retryable and "too large" in failed.value.reason


async def test_a_deleted_workflow_is_not_retried_and_hides_its_signature(standins, outbound_http):
    url = standins.teams_workflow_url.replace(standins.teams_workflow_id, "0" * 32)
    with pytest.raises(DeliveryFailed) as failed:
        await send(outbound_http, url)
    assert not failed.value.retryable and "deleted; paste a new URL" in failed.value.reason
    assert standins.teams_sig not in failed.value.reason


async def test_a_long_description_stays_within_the_card_limit(standins, outbound_http):
    await send(outbound_http, standins.teams_workflow_url, description="y" * 50_000)
    card = standins.received("teams")[0].json["attachments"][0]["content"]
    assert len(card["body"][2]["text"]) == 3000

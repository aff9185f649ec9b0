"""The Discord channel against the Discord webhook stand-in: the embed, who gets pinged, Discord's
limits, and its refusals."""

from __future__ import annotations

import pytest

from alerts.outbound import channels
from alerts.outbound.channels import DeliveryFailed
from tests.outbound_standins import sample_page


async def send(standins, http, settings: dict | None = None, **page_changes):
    settings = {"webhook_url": standins.discord_url, **(settings or {})}
    return await channels.send("discord", settings, sample_page(**page_changes), None, http)


async def test_a_trigger_posts_one_embed_with_the_incident_and_returns_the_message_id(standins, outbound_http):
    result = await send(standins, outbound_http)
    [request] = standins.received("discord")
    assert request.query == {"wait": "true"}
    [embed] = request.json["embeds"]
    assert embed["title"] == "Firing: [CRITICAL] Checkout answers 500 (checkout / production)"
    assert embed["url"] == "https://pulser.example.com/incidents/42" and embed["color"] == 0xD92D20
    assert {"name": "Count", "value": "3 alerts", "inline": True} in embed["fields"]
    assert embed["description"].startswith("ZeroDivisionError")
    assert result.ref is not None and result.ref.isdigit()


async def test_a_critical_pings_everyone_and_nothing_else(standins, outbound_http):
    await send(standins, outbound_http, title="db down @here <@&123>")
    body = standins.received("discord")[0].json
    assert body["content"] == "@everyone" and body["allowed_mentions"] == {"parse": ["everyone"]}


async def test_below_the_threshold_nobody_is_pinged_even_by_a_mention_in_the_title(standins, outbound_http):
    await send(standins, outbound_http, severity="high", title="db down @everyone")
    body = standins.received("discord")[0].json
    assert "content" not in body and body["allowed_mentions"] == {"parse": []}


async def test_a_threshold_of_null_never_pings(standins, outbound_http):
    await send(standins, outbound_http, {"everyone_min_severity": None})
    assert standins.received("discord")[0].json["allowed_mentions"] == {"parse": []}


async def test_a_resolve_is_green_and_pings_nobody(standins, outbound_http):
    await send(standins, outbound_http, action="resolve", status="resolved")
    body = standins.received("discord")[0].json
    assert body["embeds"][0]["color"] == 0x16A34A and "content" not in body


async def test_a_huge_description_is_cut_to_fit_discords_limits(standins, outbound_http):
    await send(standins, outbound_http, description="x" * 20_000, title="t" * 400)
    [embed] = standins.received("discord")[0].json["embeds"]
    assert len(embed["title"]) == 256 and len(embed["description"]) <= 4096


async def test_a_deleted_webhook_is_not_retried_and_says_to_paste_a_new_url(standins, outbound_http):
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http, {"webhook_url": standins.discord_url.replace(standins.discord_id, "999")})
    assert not failed.value.retryable
    assert failed.value.reason == "Discord answered 404: the webhook was deleted; paste a new webhook URL (Unknown Webhook)"


async def test_a_429_waits_as_long_as_the_body_says(standins, outbound_http):
    standins.fail_next("discord", 429, retry_after=1.2)
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http)
    assert failed.value.retryable and failed.value.retry_after == 1.2  # the header says 2


async def test_an_invalid_form_body_names_the_field(standins, outbound_http):
    errors = {"embeds": {"0": {"title": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}]}}}}
    standins.fail_next("discord", 400, body={"code": 50035, "errors": errors, "message": "Invalid Form Body"})
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http)
    assert not failed.value.retryable
    assert "Invalid Form Body: embeds.0.title: Must be 256 or fewer in length." in failed.value.reason


async def test_a_service_that_echoes_the_webhook_url_does_not_leak_it(standins, outbound_http):
    standins.fail_next("discord", 400, body={"message": f"bad request to {standins.discord_url}?wait=true", "code": 0})
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http)
    assert standins.discord_token not in failed.value.reason and "***" in failed.value.reason

"""The SMS channel against the Twilio Messages stand-in: the form, basic auth, the two-segment
text, one message per number, and Twilio's error codes."""

from __future__ import annotations

import pytest

from alerts.outbound import channels
from alerts.outbound.channels import DeliveryFailed
from alerts.outbound.channels.twilio import cost, text
from tests.outbound_standins import sample_page


def settings_for(standins, **changes) -> dict:
    return {
        "account_sid": standins.twilio_sid,
        "auth_token": standins.twilio_token,
        "from_number": "+14155550100",
        "to": ["+14155550101"],
        "api_base": standins.base_url,
        **changes,
    }


async def send(standins, http, settings: dict | None = None, **page_changes):
    return await channels.send("twilio", settings or settings_for(standins), sample_page(**page_changes), None, http)


async def refused(standins, http, settings: dict | None = None, **page_changes) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, http, settings, **page_changes)
    return failed.value


async def test_a_trigger_texts_each_number_and_returns_the_message_sid(standins, outbound_http):
    result = await send(standins, outbound_http)
    [request] = standins.received("twilio")
    assert request.path == f"/2010-04-01/Accounts/{standins.twilio_sid}/Messages.json"
    assert request.form == {
        "To": "+14155550101",
        "From": "+14155550100",
        "Body": "Pulser Firing - [CRITICAL] Checkout answers 500 - checkout / production - incident #42",
    }
    assert result.ref is not None and result.ref.startswith("SM")


async def test_a_personal_page_texts_its_recipient_only(standins, outbound_http):
    await send(standins, outbound_http, recipient="+447700900123")
    assert [r.form["To"] for r in standins.received("twilio")] == ["+447700900123"]


async def test_a_messaging_service_replaces_the_from_number(standins, outbound_http):
    sid = "MG" + "a" * 32
    await send(standins, outbound_http, settings_for(standins, from_number=None, messaging_service_sid=sid))
    form = standins.received("twilio")[0].form
    assert form["MessagingServiceSid"] == sid and "From" not in form


def test_a_long_title_is_cut_so_the_text_fits_two_segments_and_keeps_the_service():
    long = text(sample_page(title="x" * 1000))
    assert cost(long) == 306 and long.endswith("... - checkout / production - incident #42")


def test_a_unicode_text_fits_two_unicode_segments():
    assert len(text(sample_page(title="Ünïcödé 🔥 " * 50))) == 134


async def test_an_invalid_number_is_not_retried_and_names_it(standins, outbound_http):
    failed = await refused(standins, outbound_http, recipient="+1555")
    assert not failed.retryable and "not a valid phone number" in failed.reason and "+1555" in failed.reason


async def test_a_landline_is_not_retried(standins, outbound_http):
    failed = await refused(standins, outbound_http, recipient=standins.twilio_landline)
    assert not failed.retryable and "21614" in failed.reason


async def test_a_wrong_auth_token_is_not_retried_and_not_shown(standins, outbound_http):
    token = "f" * 32
    failed = await refused(standins, outbound_http, settings_for(standins, auth_token=token))
    assert not failed.retryable and "20003" in failed.reason and "auth token" in failed.reason and token not in failed.reason


async def test_too_many_requests_is_retried(standins, outbound_http):
    standins.fail_next("twilio", 429, retry_after=3)
    failed = await refused(standins, outbound_http)
    assert failed.retryable and failed.retry_after == 3 and "20429" in failed.reason


async def test_a_refused_number_among_good_ones_still_texts_the_others(standins, outbound_http):
    result = await send(standins, outbound_http, settings_for(standins, to=[standins.twilio_landline, "+14155550101"]))
    assert [r.form["To"] for r in standins.received("twilio")] == ["+14155550101"]
    assert result.detail.startswith("1 SMS sent") and f"not sent to {standins.twilio_landline}" in result.detail

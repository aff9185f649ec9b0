"""The channel registry (settings, redaction, dispatch by kind) and what every HTTP channel shares:
each failure class maps to retryable or not, with a reason that never shows a secret."""

from __future__ import annotations

import socket
from typing import Callable

import httpx
import pytest

from alerts.outbound import channels
from alerts.outbound.channels import KINDS, ChannelConfigError, DeliveryFailed
from tests.outbound_standins import OutboundStandins, sample_page

# --- the registry --------------------------------------------------------------------------------


def test_every_kind_is_registered_with_its_secrets_among_its_settings():
    assert set(KINDS) == {"email", "discord", "teams", "webhook", "github", "twilio", "pagerduty"}
    for kind in KINDS.values():
        names = {info.alias or name for name, info in kind.config_model.model_fields.items()}
        assert kind.label and set(kind.secret_fields) <= names and kind.actions <= set(channels.ACTIONS)


def test_an_unknown_kind_is_a_config_error():
    with pytest.raises(ChannelConfigError) as error:
        channels.parse_config("fax", {})
    assert error.value.errors == {"kind": "must be one of email, discord, teams, webhook, github, twilio, pagerduty"}


@pytest.mark.parametrize(
    "kind, settings, expected",
    [
        ("discord", {"webhook_url": "https://example.com/hook"}, {"webhook_url": "must be a Discord webhook URL (…/api/webhooks/<id>/<token>)"}),
        ("teams", {"webhook_url": "http://teams.example.com/hook"}, {"webhook_url": "must start with https:// (plain http only to this machine)"}),
        ("webhook", {"signing_secret": "s"}, {"url": "required"}),
        (
            "email",
            {"host": "smtp.example.com", "from": "pulser", "to": ["ops@example.com", "ops@"], "security": "ssl"},
            {
                "from": "must be an e-mail address, like ops@example.com",
                "to.1": "must be an e-mail address, like ops@example.com",
                "security": "must be 'starttls', 'tls' or 'none'",
            },
        ),
        ("email", {"host": "smtp.example.com", "from": "a@example.com", "username": "pulser"}, {"password": "required when a username is set"}),
        ("github", {"repository": "acme", "token": "t"}, {"repository": "must be owner/name, like acme/ops"}),
        (
            "twilio",
            {"account_sid": "AC" + "0" * 32, "auth_token": "t", "from_number": "+14155550100", "messaging_service_sid": "MG" + "0" * 32},
            {"from_number": "set exactly one of from_number and messaging_service_sid"},
        ),
        ("twilio", {"account_sid": "AC1", "auth_token": "t", "from_number": "0155"}, {
            "account_sid": "must be the account SID: AC followed by 32 hex digits",
            "from_number": "must be a phone number in E.164 form, like +14155550123",
        }),
        ("pagerduty", {"routing_key": "my-secret-but-short"}, {"routing_key": "must be the 32-character integration key of an Events API v2 integration"}),
        ("pagerduty", {"routing_key": "k" * 32, "region": "eu"}, {"region": "unknown setting; the settings are routing_key, events_url"}),
    ],
)
def test_settings_errors_name_each_field_and_what_it_allows(kind, settings, expected):
    with pytest.raises(ChannelConfigError) as error:
        channels.parse_config(kind, settings)
    assert error.value.errors == expected
    assert "my-secret-but-short" not in str(error.value)


def test_redacted_settings_show_that_a_secret_is_set_but_not_what_it_is():
    stored = {"repository": "acme/ops", "token": "ghp_secret", "labels": ["pulser"]}
    assert channels.redacted("github", stored) == {"repository": "acme/ops", "token": "(set)", "labels": ["pulser"]}
    assert channels.redacted("webhook", {"url": "https://x.example/h", "signing_secret": ""}) == {"url": "(set)"}


def test_an_edit_that_leaves_a_secret_out_keeps_the_stored_one_and_an_empty_one_clears_it():
    stored = {"url": "https://hooks.example.com/a", "signing_secret": "old-secret"}
    assert channels.with_kept_secrets("webhook", {"url": "(set)"}, stored) == stored
    assert channels.with_kept_secrets("webhook", {"url": "https://new.example.com/b", "signing_secret": ""}, stored) == {
        "url": "https://new.example.com/b"
    }


def test_a_settings_model_never_shows_a_secret_in_its_repr():
    settings = channels.parse_config("pagerduty", {"routing_key": "R" * 32})
    assert "R" * 32 not in repr(settings) and "R" * 32 not in str(settings)


async def test_an_action_a_kind_does_not_act_on_is_skipped_without_a_request(standins, outbound_http):
    result = await channels.send("discord", {"webhook_url": standins.discord_url}, sample_page(action="acknowledge"), None, outbound_http)
    assert result.detail == "not sent: Discord webhook does not act on acknowledge" and standins.attempts("discord") == []


async def test_stored_settings_that_no_longer_validate_fail_for_good_without_showing_them(outbound_http):
    with pytest.raises(DeliveryFailed) as failed:
        await channels.send("pagerduty", {"routing_key": "short-secret"}, sample_page(), None, outbound_http)
    assert not failed.value.retryable and "routing_key" in failed.value.reason and "short-secret" not in failed.value.reason


# --- every HTTP channel: the same failure classes, and no secret in a reason ----------------------


def discord(s: OutboundStandins, base: str) -> dict:
    return {"webhook_url": f"{base}/api/webhooks/{s.discord_id}/{s.discord_token}"}


def teams(s: OutboundStandins, base: str) -> dict:
    return {"webhook_url": s.teams_workflow_url.replace(s.base_url, base)}


def webhook(s: OutboundStandins, base: str) -> dict:
    return {"url": f"{base}/hooks/pulser", "signing_secret": s.webhook_secret}


def github(s: OutboundStandins, base: str) -> dict:
    return {"repository": s.github_repository, "token": s.github_token, "api_url": base}


def twilio(s: OutboundStandins, base: str) -> dict:
    return {"account_sid": s.twilio_sid, "auth_token": s.twilio_token, "from_number": "+14155550100", "to": ["+14155550101"], "api_base": base}


def pagerduty(s: OutboundStandins, base: str) -> dict:
    return {"routing_key": s.pagerduty_key, "events_url": f"{base}/v2/enqueue"}


SETTINGS: dict[str, Callable[[OutboundStandins, str], dict]] = {
    "discord": discord, "teams": teams, "webhook": webhook, "github": github, "twilio": twilio, "pagerduty": pagerduty,
}
# What each kind's 401 tells a person to fix.
UNAUTHORIZED_HINTS = {
    "discord": "the webhook's token is wrong",
    "teams": "signature was refused",
    "webhook": "signing secret",
    "github": "paste a new token",
    "twilio": "auth token was refused",
    "pagerduty": "integration key was refused",
}


def secrets_of(kind: str, settings: dict) -> list[str]:
    """The secret settings' values, and the token parts of secret URLs on their own."""
    found = [settings[name] for name in KINDS[kind].secret_fields if settings.get(name)]
    tokens = (OutboundStandins.discord_token, OutboundStandins.teams_sig)
    return found + [token for token in tokens if any(token in value for value in found)]


async def failure(kind: str, settings: dict, http: httpx.AsyncClient) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as failed:
        await channels.send(kind, settings, sample_page(), None, http)
    for secret in secrets_of(kind, settings):
        assert secret not in failed.value.reason
    return failed.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("kind", SETTINGS)
async def test_a_server_error_is_retried(kind, standins, outbound_http):
    standins.fail_next(kind, 503)
    failed = await failure(kind, SETTINGS[kind](standins, standins.base_url), outbound_http)
    assert failed.retryable and "503" in failed.reason


@pytest.mark.parametrize("kind", SETTINGS)
async def test_a_429_is_retried_after_the_services_wait(kind, standins, outbound_http):
    standins.fail_next(kind, 429, retry_after=7)
    failed = await failure(kind, SETTINGS[kind](standins, standins.base_url), outbound_http)
    assert failed.retryable and failed.retry_after == 7 and "429" in failed.reason


@pytest.mark.parametrize("kind", SETTINGS)
async def test_a_401_is_not_retried_and_says_what_to_fix(kind, standins, outbound_http):
    standins.fail_next(kind, 401)
    failed = await failure(kind, SETTINGS[kind](standins, standins.base_url), outbound_http)
    assert not failed.retryable and UNAUTHORIZED_HINTS[kind] in failed.reason


@pytest.mark.parametrize("kind", SETTINGS)
async def test_no_answer_within_the_clients_timeout_is_retried(kind, standins):
    standins.delay_next(kind, 5.0)
    async with httpx.AsyncClient(timeout=0.25, trust_env=False) as impatient:
        failed = await failure(kind, SETTINGS[kind](standins, standins.base_url), impatient)
    assert failed.retryable and "did not answer in time" in failed.reason


@pytest.mark.parametrize("kind", SETTINGS)
async def test_a_refused_connection_is_retried(kind, standins, outbound_http):
    failed = await failure(kind, SETTINGS[kind](standins, f"http://127.0.0.1:{closed_port()}"), outbound_http)
    assert failed.retryable and "could not be reached" in failed.reason


@pytest.mark.parametrize("kind", SETTINGS)
async def test_a_service_echoing_the_secrets_back_does_not_leak_them(kind, standins, outbound_http):
    settings = SETTINGS[kind](standins, standins.base_url)
    echoed = " ".join(secrets_of(kind, settings)) or "nothing"
    body = {"message": echoed, "errors": [echoed], "code": 21211, "error": {"code": "Bad", "message": echoed}}
    standins.fail_next(kind, 400, body=body)
    failed = await failure(kind, settings, outbound_http)
    assert not failed.retryable and "***" in failed.reason


@pytest.mark.parametrize("kind", SETTINGS)
async def test_a_successful_send_detail_shows_no_secret(kind, standins, outbound_http):
    settings = SETTINGS[kind](standins, standins.base_url)
    result = await channels.send(kind, settings, sample_page(), None, outbound_http)
    assert all(secret not in result.detail for secret in secrets_of(kind, settings))
    assert len(standins.received(kind)) >= 1

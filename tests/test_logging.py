"""Log lines: JSON with the event name and bound context, and secrets scrubbed."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from bot.logging import REDACTED, SecretRedactor, configure_logging


@pytest.fixture
def json_lines(capsys):
    configure_logging("info", "json", secrets=["configured-admin-token-123"])

    def read() -> list[dict]:
        err = capsys.readouterr().err
        return [json.loads(line) for line in err.splitlines() if line.startswith("{")]

    yield read
    structlog.contextvars.clear_contextvars()


def test_a_line_carries_its_event_name_level_and_bound_context(json_lines):
    structlog.get_logger("t").bind(app="billing").info("heartbeat.received", uuid="abc")
    [line] = json_lines()
    assert line["event"] == "heartbeat.received"
    assert line["level"] == "info"
    assert line["app"] == "billing" and line["uuid"] == "abc"
    assert "timestamp" in line


def test_context_bound_with_contextvars_reaches_every_line(json_lines):
    structlog.contextvars.bind_contextvars(envelope_id="E42")
    structlog.get_logger("t").info("one")
    structlog.get_logger("t").info("two")
    assert [line["envelope_id"] for line in json_lines()] == ["E42", "E42"]


def test_slack_tokens_in_messages_are_redacted(json_lines):
    structlog.get_logger("t").info("oops", detail="token was xoxb-123456-abcdef and xapp-1-A0-99")
    [line] = json_lines()
    assert "xoxb-123456" not in line["detail"] and "xapp-1-A0" not in line["detail"]
    assert REDACTED in line["detail"]


def test_values_under_secret_keys_are_redacted(json_lines):
    structlog.get_logger("t").info("config", api_key="k-123", signing_secret="s-456", headers={"Authorization": "x"})
    [line] = json_lines()
    assert line["api_key"] == REDACTED and line["signing_secret"] == REDACTED
    assert line["headers"]["Authorization"] == REDACTED


def test_slack_webhook_urls_and_dsn_passwords_are_redacted(json_lines):
    structlog.get_logger("t").info(
        "sent", url="https://hooks.slack.com/services/T000/B000/XXXXSECRET", db="postgresql://pulser:pw0rd@db:5432/p"
    )
    [line] = json_lines()
    assert "XXXXSECRET" not in line["url"] and "pw0rd" not in line["db"]


def test_configured_secrets_are_redacted_wherever_they_appear(json_lines):
    structlog.get_logger("t").info("auth", note="got configured-admin-token-123 from a client")
    [line] = json_lines()
    assert "configured-admin-token-123" not in line["note"]


def test_standard_library_loggers_go_through_the_same_redaction(json_lines):
    logging.getLogger("thirdparty").warning("connecting with xoxb-999999-secret")
    [line] = json_lines()
    assert line["event"] == "connecting with " + REDACTED
    assert line["logger"] == "thirdparty"


def test_exceptions_are_rendered_and_redacted(json_lines):
    try:
        raise RuntimeError("failed with token xoxb-555555-zzz")
    except RuntimeError:
        structlog.get_logger("t").exception("crash")
    [line] = json_lines()
    assert "RuntimeError" in line["exception"] and "xoxb-555555" not in line["exception"]


def test_the_redactor_leaves_ordinary_values_alone():
    redactor = SecretRedactor()
    event = {"event": "x", "count": 3, "channel": "#ops", "ok": True}
    assert redactor(None, "info", dict(event)) == event


# --- short configured secrets: replaced where they stand as a whole value or token --------------
# A secret of 1-5 characters is weak, but it is still a secret. Replacing it inside words would
# blank every letter "a" of every line, so it goes only where it stands alone: the whole value, or
# a token bounded by anything that is not a letter, digit or underscore (spaces, quotes, = & / : ,).


def test_a_short_configured_secret_is_redacted_as_a_whole_value():
    redactor = SecretRedactor(["k3y"])
    assert redactor(None, "info", {"event": "x", "value": "k3y"})["value"] == REDACTED


def test_a_short_configured_secret_is_redacted_where_it_stands_as_a_token():
    redactor = SecretRedactor(["k3y"])
    text = redactor.scrub_text("GET /ping?t=k3y&x=1 with 'k3y', then k3y. monkey k3yboard xk3y k3y_2")
    assert text == f"GET /ping?t={REDACTED}&x=1 with '{REDACTED}', then {REDACTED}. monkey k3yboard xk3y k3y_2"


def test_a_one_letter_secret_does_not_blank_every_letter_of_a_line():
    redactor = SecretRedactor(["a"])
    assert redactor.scrub_text("database ready at a.example") == f"database ready at {REDACTED}.example"


# --- secret shapes the redactor knows without being told --------------------------------------


def test_github_tokens_are_redacted_without_being_configured():
    text = SecretRedactor().scrub_text("gh said ghp_" + "a1B2" * 9 + " and github_pat_11ABC" + "x" * 60)
    assert "ghp_a1B2" not in text and "github_pat_11ABC" not in text


def test_heroku_api_keys_are_redacted_without_being_configured():
    text = SecretRedactor().scrub_text("key HRKU-AAbbCCddEEff0011223344556677889900aaBBccDD")
    assert "HRKU-AAbb" not in text


def test_credentials_in_any_url_are_redacted():
    text = SecretRedactor().scrub_text("proxy https://ops:s3cr3tpw@proxy.example.com:8080/ and redis://:hunter2@cache:6379/0")
    assert "s3cr3tpw" not in text and "hunter2" not in text
    assert "proxy.example.com" in text


def test_basic_and_token_authorization_values_are_redacted():
    text = SecretRedactor().scrub_text("Authorization: Basic dXNlcjpwYXNzd29yZA== / Authorization: token abcdef123456")
    assert "dXNlcjpwYXNzd29yZA" not in text and "abcdef123456" not in text


def test_password_and_signature_query_parameters_are_redacted():
    text = SecretRedactor().scrub_text("GET /x?password=pw123456&sig=abcdef0123&api_key=kkkkkk&page=2")
    assert "pw123456" not in text and "abcdef0123" not in text and "kkkkkk" not in text
    assert "page=2" in text


def test_a_healthchecks_ping_url_is_redacted_without_being_configured():
    text = SecretRedactor().scrub_text("pinging https://hc-ping.com/0f3c9c8e-1b2a-4c5d-9e8f-0123456789ab/fail")
    assert "0f3c9c8e" not in text and "https://hc-ping.com/" in text


def test_a_short_secret_that_is_a_common_word_leaves_the_line_structure_alone(capsys):
    configure_logging("info", "json", secrets=["info"])
    structlog.get_logger("t").info("login", note="info")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["level"] == "info" and line["note"] == REDACTED

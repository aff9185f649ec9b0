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

"""Settings: defaults, and one clear line for every bad value."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings


def test_an_empty_environment_gives_the_documented_defaults():
    s = load_settings({})
    assert s.use_sandbox and s.use_embedded_postgres
    assert s.slack_api_url == "https://slack.com/api/"
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert s.slack_channel == "#ops-alerts"
    assert s.heartbeat_check_interval == 30
    assert s.check_interval_minutes == 5
    assert s.heroku_api_url == "https://api.heroku.com"


def test_values_are_read_and_parsed():
    s = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_APP_TOKEN": "xapp-1",
            "SLACK_API_URL": "http://127.0.0.1:9999/api",
            "PULSER_ADMINS": "U123ABC, W999XYZ",
            "MONITORED_APP_NAME": "shop-web,shop-worker",
            "HEARTBEAT_CHECK_INTERVAL": "5",
            "LOG_FORMAT": "JSON",
        }
    )
    assert not s.use_sandbox
    assert s.slack_api_url == "http://127.0.0.1:9999/api/"
    assert s.admins == ("U123ABC", "W999XYZ")
    assert s.monitored_apps == ("shop-web", "shop-worker")
    assert s.heartbeat_check_interval == 5 and s.log_format == "json"


@pytest.mark.parametrize(
    "env, variable, allowed",
    [
        ({"HEARTBEAT_CHECK_INTERVAL": "abc"}, "HEARTBEAT_CHECK_INTERVAL", "whole number of seconds from 1 to 3600"),
        ({"HEARTBEAT_CHECK_INTERVAL": "0"}, "HEARTBEAT_CHECK_INTERVAL", "from 1 to 3600"),
        ({"SLACK_API_URL": "nota url"}, "SLACK_API_URL", "http:// or https:// URL"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL", "http:// or https:// URL"),
        ({"CHECK_INTERVAL_MINUTES": "61"}, "CHECK_INTERVAL_MINUTES", "from 1 to 60"),
        ({"PULSER_HTTP_PORT": "70000"}, "PULSER_HTTP_PORT", "TCP port"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL", "debug, info, warning, error"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT", "json, console"),
        ({"SLACK_BOT_TOKEN": "xoxp-user", "SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "nope"}, "SLACK_APP_TOKEN", "xapp-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN", "or neither"),
        ({"PULSER_ADMINS": "alice"}, "PULSER_ADMINS", "Slack user IDs"),
        ({"SLACK_CHANNEL": "ops alerts"}, "SLACK_CHANNEL", "#ops-alerts"),
        ({"MONITORED_APP_NAME": "Bad_Name"}, "MONITORED_APP_NAME", "Heroku app names"),
        ({"DATABASE_URL": "mysql://u:p@h/db"}, "DATABASE_URL", "postgresql://"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_is_allowed(env, variable, allowed):
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    message = str(info.value)
    assert info.value.variable == variable
    assert message.startswith(f"invalid {variable}=")
    assert allowed in message
    assert "\n" not in message


def test_a_bad_database_url_is_not_echoed_because_it_may_hold_a_password():
    with pytest.raises(SettingsError) as info:
        load_settings({"DATABASE_URL": "mysql://user:hunter2@host/db"})
    assert "hunter2" not in str(info.value)


def test_a_bad_token_is_not_echoed():
    with pytest.raises(SettingsError) as info:
        load_settings({"SLACK_BOT_TOKEN": "xoxp-secret-user-token", "SLACK_APP_TOKEN": "xapp-1"})
    assert "secret-user-token" not in str(info.value)


def test_secrets_do_not_appear_in_the_settings_repr():
    s = load_settings({"SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_APP_TOKEN": "xapp-also-secret"})
    assert "very-secret" not in repr(s) and "also-secret" not in repr(s)
    assert set(s.secrets()) == {"xoxb-very-secret", "xapp-also-secret"}


# --- no secret value in a settings error ------------------------------------------------------
# These errors are printed before log redaction is set up, so they must not carry one themselves.


def _error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    return str(info.value)


def test_a_bad_self_ping_url_names_the_variable_but_not_its_secret_path():
    message = _error({"PULSER_SELF_PING_URL": "ftp://hc-ping.com/0f3c9c8e-secret-check-uuid"})
    assert message.startswith("invalid PULSER_SELF_PING_URL=")
    assert "secret-check-uuid" not in message
    assert "http:// or https://" in message


def test_a_bad_self_ping_url_shows_neither_its_query_nor_its_credentials():
    message = _error({"PULSER_SELF_PING_URL": "ftp://ops:pa55word@ping.example.com/p?key=k3y-value"})
    assert "pa55word" not in message and "ops:" not in message and "k3y-value" not in message


def test_a_bad_url_with_credentials_is_shown_without_them():
    message = _error({"SLACK_API_URL": "ftp://proxyuser:hunter2@proxy.example.com/api/?token=abc123"})
    assert "hunter2" not in message and "proxyuser" not in message and "abc123" not in message
    assert "proxy.example.com" in message, "the rest of the URL helps to find the mistake"


def test_a_secret_pasted_into_an_ordinary_variable_is_not_echoed():
    message = _error({"SLACK_CHANNEL": "xoxb-1234-pasted-by-mistake"})
    assert "pasted-by-mistake" not in message
    assert message.startswith("invalid SLACK_CHANNEL=")


@pytest.mark.parametrize("value", ["http://[::1", "https://example.com:port/api/"])
def test_an_unparsable_url_stops_start_up_with_one_line(value):
    message = _error({"SLACK_API_URL": value})
    assert message.startswith("invalid SLACK_API_URL=") and "http:// or https://" in message


# --- the sandbox only by choice, or when nothing at all is configured --------------------------


def test_no_tokens_with_a_database_url_is_not_the_sandbox_unless_chosen():
    dsn = "postgresql://pulser@db.internal:5432/pulser"
    assert not load_settings({"DATABASE_URL": dsn}).use_sandbox, "a secret that failed to mount is not a try-out"
    assert load_settings({"DATABASE_URL": dsn, "PULSER_SANDBOX": "1"}).use_sandbox


def test_a_database_url_without_tokens_is_a_start_up_problem_naming_what_to_set():
    problem = load_settings({"DATABASE_URL": "postgresql://pulser@db.internal:5432/pulser"}).slack_start_problem()
    assert problem is not None and "\n" not in problem
    assert "SLACK_BOT_TOKEN" in problem and "SLACK_APP_TOKEN" in problem and "PULSER_SANDBOX=1" in problem


def test_the_sandbox_chosen_together_with_tokens_is_a_bad_value():
    message = _error({"PULSER_SANDBOX": "1", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert message.startswith("invalid PULSER_SANDBOX=") and "SLACK_BOT_TOKEN" in message


def test_a_pulser_sandbox_that_is_not_a_yes_or_no_is_a_bad_value():
    message = _error({"PULSER_SANDBOX": "maybe"})
    assert message.startswith("invalid PULSER_SANDBOX='maybe'") and "1" in message and "0" in message


def test_pulser_sandbox_0_with_nothing_else_set_is_a_start_up_problem():
    settings = load_settings({"PULSER_SANDBOX": "0"})
    assert not settings.use_sandbox and settings.slack_start_problem() is not None

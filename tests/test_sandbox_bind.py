"""Where the Slack sandbox listens (PULSER_SANDBOX_HOST / PULSER_SANDBOX_PORT), and URL settings
whose errors show an example that fits them. Runs without Docker; tests/test_docker.py checks the
image from outside the container when a Docker engine is available."""

from __future__ import annotations

import httpx
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.settings import SettingsError, load_settings
from tests.conftest import make_settings
from tests.test_cli import free_port


def test_the_sandbox_listens_on_loopback_port_8081_by_default():
    s = load_settings({})
    assert (s.sandbox_host, s.sandbox_port) == ("127.0.0.1", 8081)


def test_pulser_sandbox_host_and_port_are_read():
    s = load_settings({"PULSER_SANDBOX_HOST": "0.0.0.0", "PULSER_SANDBOX_PORT": "9091"})
    assert (s.sandbox_host, s.sandbox_port) == ("0.0.0.0", 9091)


@pytest.mark.parametrize("value", ["http://0.0.0.0", "0.0.0.0:8081", "my host"])
def test_a_sandbox_host_that_is_not_an_address_names_the_variable(value):
    with pytest.raises(SettingsError) as info:
        load_settings({"PULSER_SANDBOX_HOST": value})
    assert info.value.variable == "PULSER_SANDBOX_HOST"
    assert "0.0.0.0" in info.value.allowed


def test_a_bad_public_url_shows_an_example_of_a_public_url_not_of_slack_api_url():
    with pytest.raises(SettingsError) as info:
        load_settings({"PULSER_PUBLIC_URL": "pulser.example.com"})
    assert str(info.value).startswith("invalid PULSER_PUBLIC_URL=")
    assert "slack.com" not in str(info.value)
    assert "e.g. https://pulser.example.com" in str(info.value)


async def test_pulser_without_tokens_binds_the_sandbox_where_the_settings_say(database_url):
    port = free_port()
    settings = make_settings(
        DATABASE_URL=database_url, PULSER_SANDBOX="1", PULSER_SANDBOX_HOST="0.0.0.0", PULSER_SANDBOX_PORT=str(port)
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        assert runtime.sandbox is not None
        assert runtime.sandbox._runner.addresses == [("0.0.0.0", port)]  # every interface, as in a container
        async with httpx.AsyncClient(timeout=10) as http:
            page = await http.get(f"http://127.0.0.1:{port}/")
            health = (await http.get(f"http://127.0.0.1:{runtime.http_port}/health")).json()
        assert page.status_code == 200 and "Slack sandbox" in page.text
        assert health["components"]["socket_mode"]["sandbox"] == f"http://127.0.0.1:{port}"
    finally:
        await runtime.stop()

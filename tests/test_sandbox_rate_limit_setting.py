"""PULSER_SANDBOX_RATE_LIMITS: the sandbox `pulser run` starts enforces Slack's rate limits unless
told not to (to measure Pulser's own throughput). The limits themselves: tests/sandbox/test_rate_limits.py."""

from __future__ import annotations

import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.settings import SettingsError, load_settings
from tests.conftest import make_settings


def test_the_sandbox_enforces_slacks_rate_limits_unless_told_not_to():
    assert load_settings({}).sandbox_rate_limits is True
    assert load_settings({"PULSER_SANDBOX_RATE_LIMITS": "0"}).sandbox_rate_limits is False
    assert load_settings({"PULSER_SANDBOX_RATE_LIMITS": "on"}).sandbox_rate_limits is True


def test_a_value_that_is_no_flag_names_the_variable():
    with pytest.raises(SettingsError) as info:
        load_settings({"PULSER_SANDBOX_RATE_LIMITS": "sometimes"})
    assert info.value.variable == "PULSER_SANDBOX_RATE_LIMITS"
    assert "expected 1 or 0" in info.value.allowed


@pytest.mark.parametrize(("value", "limited"), [("", True), ("0", False)])
async def test_pulser_run_starts_its_sandbox_with_or_without_rate_limits(database_url, value, limited):
    settings = make_settings(
        DATABASE_URL=database_url, PULSER_SANDBOX="1", PULSER_SANDBOX_PORT="0", PULSER_SANDBOX_RATE_LIMITS=value
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        assert runtime.sandbox is not None
        assert (runtime.sandbox.rate_limiter is not None) is limited
        assert runtime.sandbox.snapshot()["rate_limits"]["enabled"] is limited
    finally:
        await runtime.stop()

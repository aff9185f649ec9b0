"""The bot end to end: real slack-bolt over Socket Mode against the sandbox, real Postgres.

Some tests register an extra listener on the running Bolt app (`/effect`, `/boom`): that is how a
later capability plugs in, and it gives a test an effect to count.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from bot.socket_mode import DB_DOWN_TEXT
from storage import envelopes
from tests.conftest import eventually


def ack_text(ack: dict) -> str:
    payload = ack.get("payload") or {}
    texts = [payload.get("text", "")]
    texts += [b["text"]["text"] for b in payload.get("blocks", []) if b.get("type") == "section"]
    return "\n".join(texts)


async def ledger_row(pulser, envelope_id: str):
    return await envelopes.get_envelope(pulser.pool, source="slack", scope="T0SANDBOX", envelope_id=envelope_id)


def settled(pulser, since: dict[str, float], count: int):
    """A predicate: `count` more Slack envelopes have been handled to the end (processed after their
    listener returned, or skipped as duplicates) than in `since`, the outcomes read before."""

    def done() -> bool:
        now = envelope_outcomes(pulser)
        return sum(now[o] - since[o] for o in now) >= count

    return done


def envelope_outcomes(pulser) -> dict[str, float]:
    registry = pulser.metrics.registry
    return {
        outcome: registry.get_sample_value("pulser_envelopes_total", {"source": "slack", "outcome": outcome}) or 0.0
        for outcome in ("processed", "duplicate", "failed")
    }


def add_effect_command(pulser) -> None:
    """`/effect` posts one message per run: the effect whose count proves exactly-once."""

    @pulser.app.command("/effect")
    async def effect(ack, client, command):
        await ack()
        await client.chat_postMessage(channel=command["channel_id"], text="effect ran")


# --- /pulser help ----------------------------------------------------------------------------


async def test_pulser_help_answers_in_the_ack(pulser, sandbox):
    ack = await sandbox.send_slash_command(command="/pulser", text="help", timeout=3.0)
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "/pulser help" in ack_text(ack)
    assert "Heartbeats" in ack_text(ack)


async def test_pulser_without_a_subcommand_answers_with_help(pulser, sandbox):
    ack = await sandbox.send_slash_command(command="/pulser", text="")
    assert "/pulser help" in ack_text(ack)


async def test_an_unknown_subcommand_gets_help_naming_the_word(pulser, sandbox):
    ack = await sandbox.send_slash_command(command="/pulser", text="frobnicate now")
    text = ack_text(ack)
    assert "frobnicate" in text and "don't know" in text
    assert "/pulser help" in text


async def test_a_handled_command_leaves_a_processed_ledger_row(pulser, sandbox):
    envelope = sandbox.slash_command_envelope(command="/pulser", text="help")
    await sandbox.send_envelope(envelope)
    row = await eventually(lambda: _processed(pulser, envelope["envelope_id"]))
    assert row.kind == "slash_commands" and row.attempts == 1
    assert row.payload["command"] == "/pulser"


async def _processed(pulser, envelope_id):
    row = await ledger_row(pulser, envelope_id)
    return row if row is not None and row.status == "processed" else None


# --- exactly-once effects ----------------------------------------------------------------------


async def test_the_same_envelope_twice_in_a_row_has_one_effect(pulser, sandbox):
    add_effect_command(pulser)
    envelope = sandbox.slash_command_envelope(command="/effect", text="", channel_id="C0OPS")
    before = envelope_outcomes(pulser)
    first = await sandbox.send_envelope(envelope)
    second = await sandbox.send_envelope(envelope)
    assert first["envelope_id"] == second["envelope_id"] == envelope["envelope_id"]
    # Both deliveries handled to the end: a wrongly processed duplicate would have posted by now.
    await eventually(settled(pulser, before, 2), timeout=30)
    assert envelope_outcomes(pulser)["duplicate"] - before["duplicate"] == 1
    assert len(sandbox.calls_to("chat.postMessage")) == 1
    assert await envelopes.count_envelopes(pulser.pool, source="slack", envelope_id=envelope["envelope_id"]) == 1


async def test_the_same_envelope_twice_at_once_has_one_effect_and_two_acks(pulser, sandbox):
    add_effect_command(pulser)
    envelope = sandbox.slash_command_envelope(command="/pulser", text="help")
    acks = await asyncio.gather(sandbox.send_envelope(envelope), sandbox.send_envelope(envelope))
    with_payload = [a for a in acks if a.get("payload")]
    assert len(acks) == 2 and len(with_payload) == 1, "one real answer, one bare ack for the duplicate"
    assert await envelopes.count_envelopes(pulser.pool, source="slack", envelope_id=envelope["envelope_id"]) == 1


async def test_concurrent_duplicates_post_once(pulser, sandbox):
    add_effect_command(pulser)
    envelope = sandbox.slash_command_envelope(command="/effect", text="", channel_id="C0OPS")
    before = envelope_outcomes(pulser)
    await asyncio.gather(*(sandbox.send_envelope(envelope) for _ in range(5)))
    await eventually(settled(pulser, before, 5), timeout=30)  # all five handled to the end
    assert envelope_outcomes(pulser)["duplicate"] - before["duplicate"] == 4
    assert len(sandbox.calls_to("chat.postMessage")) == 1


async def test_an_event_retried_under_a_new_envelope_id_is_processed_once(pulser, sandbox):
    # The App Home listener answers app_home_opened with one views.publish: count those.
    event = {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "home", "event_ts": "1.2"}
    before = envelope_outcomes(pulser)
    await sandbox.send_event(event, event_id="Ev0001")
    await sandbox.send_event(event, event_id="Ev0001", retry_attempt=1, retry_reason="timeout")
    await eventually(settled(pulser, before, 2), timeout=30)  # the retry handled to the end too
    assert envelope_outcomes(pulser)["duplicate"] - before["duplicate"] == 1
    assert len(sandbox.calls_to("views.publish")) == 1
    assert await envelopes.count_envelopes(pulser.pool, source="slack", envelope_id="event:Ev0001") == 1


# --- failures ----------------------------------------------------------------------------------


async def test_a_listener_that_raises_after_ack_leaves_a_failed_row_with_the_error(pulser, sandbox):
    @pulser.app.command("/boom")
    async def boom(ack):
        await ack("working on it")
        await asyncio.sleep(0.05)
        raise RuntimeError("kaboom")

    envelope = sandbox.slash_command_envelope(command="/boom", text="")
    ack = await sandbox.send_envelope(envelope)
    assert ack["payload"]["text"] == "working on it"
    row = await eventually(lambda: _failed(pulser, envelope["envelope_id"]))
    assert row.last_error == "RuntimeError: kaboom"
    assert row.next_attempt_at is not None, "a failed row is scheduled for a retry"


async def test_a_listener_that_raises_before_ack_leaves_a_failed_row(pulser, sandbox):
    @pulser.app.command("/boom")
    async def boom(ack):
        raise ValueError("bad input")

    envelope = sandbox.slash_command_envelope(command="/boom", text="")
    try:
        await sandbox.send_envelope(envelope, timeout=1.0)
    except asyncio.TimeoutError:
        pass  # Bolt sends no ack for a listener that failed before acking
    row = await eventually(lambda: _failed(pulser, envelope["envelope_id"]))
    assert row.last_error == "ValueError: bad input"


async def test_the_ledger_worker_retries_a_failed_slack_envelope(pulser, sandbox):
    runs = []

    @pulser.app.command("/flaky")
    async def flaky(ack, context):
        await ack()
        runs.append(context.get("ledger_retry", False))
        if len(runs) == 1:
            raise ConnectionError("slack hiccup")

    envelope = sandbox.slash_command_envelope(command="/flaky", text="")
    await sandbox.send_envelope(envelope)
    row = await eventually(lambda: _failed(pulser, envelope["envelope_id"]))
    await pulser.pool.execute("UPDATE envelopes SET next_attempt_at = now() WHERE id = $1", row.id)
    assert await pulser.ledger_worker.run_once() == 1
    assert runs == [False, True]
    row = await ledger_row(pulser, envelope["envelope_id"])
    assert row.status == "processed" and row.attempts == 2


async def test_an_unhandled_envelope_is_recorded_and_closed(pulser, sandbox):
    envelope = sandbox.slash_command_envelope(command="/nobody-listens", text="")
    try:
        await sandbox.send_envelope(envelope, timeout=1.5)
    except asyncio.TimeoutError:
        pass
    row = await eventually(lambda: _processed(pulser, envelope["envelope_id"]))
    assert row.last_error is None


async def test_a_command_while_the_database_is_down_gets_a_clear_answer(pulser, sandbox):
    await pulser.pool.close()
    ack = await sandbox.send_slash_command(command="/pulser", text="help")
    assert ack["payload"]["text"] == DB_DOWN_TEXT


async def _failed(pulser, envelope_id):
    row = await ledger_row(pulser, envelope_id)
    return row if row is not None and row.status == "failed" else None


# --- connection supervision --------------------------------------------------------------------


async def _reconnects_after(pulser, sandbox, drop) -> None:
    before = sandbox.connections_opened
    await drop()
    await sandbox.wait_for_connection(timeout=5.0, newer_than=before)
    await pulser.wait_connected(timeout=1.0)
    ack = await sandbox.send_slash_command(command="/pulser", text="help")
    assert "/pulser help" in ack_text(ack)


async def test_reconnects_within_5_s_after_a_close_frame(pulser, sandbox):
    await _reconnects_after(pulser, sandbox, lambda: sandbox.drop_connections(mode="close"))


async def test_reconnects_within_5_s_after_a_tcp_reset(pulser, sandbox):
    await _reconnects_after(pulser, sandbox, lambda: sandbox.drop_connections(mode="reset"))


async def test_reconnects_within_5_s_after_a_disconnect_message(pulser, sandbox):
    await _reconnects_after(
        pulser, sandbox, lambda: sandbox.drop_connections(mode="disconnect", reason="refresh_requested")
    )


async def test_reconnects_within_5_s_when_the_issued_url_is_dead(pulser, sandbox):
    async def kill():
        sandbox.kill_issued_urls()

    await _reconnects_after(pulser, sandbox, kill)


async def test_health_shows_the_socket_down_until_it_is_back(pulser, sandbox):
    base = f"http://127.0.0.1:{pulser.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        assert (await http.get("/health")).status_code == 200
        sandbox.kill_issued_urls()

        async def socket_down():
            response = await http.get("/health")
            return response if response.status_code == 503 else None

        down = await eventually(socket_down, timeout=3.0)
        assert down.json()["components"]["socket_mode"]["status"] == "down"

        async def socket_up():
            return (await http.get("/health")).status_code == 200

        await eventually(socket_up, timeout=5.0)
        metrics = (await http.get("/metrics")).text
        assert "pulser_socket_mode_connected 1.0" in metrics
        assert "pulser_socket_mode_reconnects_total 1.0" in metrics


# --- shutdown ----------------------------------------------------------------------------------


async def test_shutdown_waits_for_an_in_flight_listener(pulser, sandbox):
    finished = asyncio.Event()

    @pulser.app.command("/slow")
    async def slow(ack):
        await ack()
        await asyncio.sleep(0.3)
        finished.set()

    envelope = sandbox.slash_command_envelope(command="/slow", text="")
    await sandbox.send_envelope(envelope)
    pool = pulser.pool
    stopped = asyncio.create_task(pulser.stop())
    await asyncio.wait_for(finished.wait(), 2)
    await stopped
    assert pool.is_closing()


async def test_shutdown_releases_a_row_whose_listener_outlives_the_drain(settings, sandbox, database_url):
    from bot.metrics import Metrics
    from bot.runtime import Runtime
    from storage import database

    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    runtime.drain_timeout = 0.2
    await runtime.start()
    await runtime.wait_connected()

    @runtime.app.command("/stuck")
    async def stuck(ack):
        await ack()
        await asyncio.sleep(30)

    envelope = sandbox.slash_command_envelope(command="/stuck", text="")
    await sandbox.send_envelope(envelope)
    await runtime.stop()

    pool = await database.create_pool(database_url, max_size=1)
    try:
        row = await envelopes.get_envelope(pool, source="slack", scope="T0SANDBOX", envelope_id=envelope["envelope_id"])
        assert row.status == "received" and row.claimed_by is None
        assert row.next_attempt_at is not None
        claimed = await envelopes.claim_due(pool, worker="next", sources=["slack"], limit=5, max_attempts=5, lease=timedelta(minutes=1))
        assert [c.envelope_id for c in claimed] == [envelope["envelope_id"]]
    finally:
        await pool.close()

"""The bot end to end: real slack-bolt over Socket Mode against the sandbox, real Postgres.

Some tests register an extra listener on the running Bolt app (`/effect`, `/boom`): that is how a
later capability plugs in, and it gives a test an effect to count.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta

import httpx

import pytest

from bot.socket_mode import DB_DOWN_TEXT, ReconnectBackoff
from storage import envelopes
from tests.conftest import StoppedClock, eventually


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


async def test_an_envelope_no_listener_handles_is_acked_and_failed_without_retry(pulser, sandbox):
    envelope = sandbox.slash_command_envelope(command="/nobody-listens", text="")
    ack = await sandbox.send_envelope(envelope, timeout=10.0)
    assert ack == {"envelope_id": envelope["envelope_id"]}
    row = await eventually(lambda: _failed(pulser, envelope["envelope_id"]), timeout=30)
    assert row.last_error == "no listener for command '/nobody-listens'"
    assert row.next_attempt_at is None, "no retry can make a listener appear"


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

        down = await eventually(socket_down, timeout=30)
        assert down.json()["components"]["socket_mode"]["status"] == "down"

        async def socket_up():
            return (await http.get("/health")).status_code == 200

        await eventually(socket_up, timeout=30)
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
    await asyncio.wait_for(finished.wait(), 30)
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


# --- malformed envelopes -----------------------------------------------------------------------
#
# What Slack would never send on purpose, but a proxy, a Slack bug or a hand-written test client
# might. Each entry: a name, a builder of the frame (from a good envelope the sandbox made) and a
# word the ledger's reason must contain. Every one has an envelope_id, so every one must be acked:
# an unacked envelope is redelivered by Slack again and again.


def _without(envelope: dict, *keys: str) -> dict:
    return {k: v for k, v in envelope.items() if k not in keys}


def _with_payload(envelope: dict, **fields) -> dict:
    return {**envelope, "payload": {**envelope["payload"], **fields}}


def _payload_without(envelope: dict, *keys: str) -> dict:
    return {**envelope, "payload": {k: v for k, v in envelope["payload"].items() if k not in keys}}


def _with_view(envelope: dict, **fields) -> dict:
    return _with_payload(envelope, view={**envelope["payload"]["view"], **fields})


def _with_action(envelope: dict, **fields) -> dict:
    return _with_payload(envelope, actions=[{**envelope["payload"]["actions"][0], **fields}])


def _command(sb):
    return sb.slash_command_envelope(command="/pulser", text="help")


def _click(sb):
    return sb.block_action_envelope("incident_ack", value="1")


def _submit(sb):
    return sb.view_submission_envelope("application_register", {"name": {"name": {"type": "plain_text_input", "value": "api"}}})


def _event(sb):
    return sb.event_envelope(sb.app_home_opened_event())


MALFORMED_ENVELOPES = [
    # the envelope itself
    ("unknown envelope type", lambda sb: {**_command(sb), "type": "hello_world"}, "unknown envelope type"),
    ("type is null", lambda sb: {**_command(sb), "type": None}, "type"),
    ("type is a number", lambda sb: {**_command(sb), "type": 42}, "type"),
    ("no type", lambda sb: _without(_command(sb), "type"), "no type"),
    ("no payload", lambda sb: _without(_command(sb), "payload"), "no payload"),
    ("payload is null", lambda sb: {**_command(sb), "payload": None}, "payload"),
    ("payload is a list", lambda sb: {**_command(sb), "payload": [1, 2]}, "not an object"),
    ("payload is a string", lambda sb: {**_command(sb), "payload": "help"}, "not an object"),
    ("payload is a number", lambda sb: {**_event(sb), "payload": 7}, "not an object"),
    ("envelope_id is a number", lambda sb: {**_command(sb), "envelope_id": 12345}, "envelope_id"),
    # slash commands
    ("command missing", lambda sb: _payload_without(_command(sb), "command"), "command"),
    ("command without a slash", lambda sb: _with_payload(_command(sb), command="pulser"), "command"),
    ("command is a list", lambda sb: _with_payload(_command(sb), command=["/pulser"]), "command"),
    ("command without user_id", lambda sb: _payload_without(_command(sb), "user_id"), "user_id"),
    # interactivity
    ("interactive without a type", lambda sb: _payload_without(_click(sb), "type"), "interactive"),
    ("unknown interactive type", lambda sb: _with_payload(_click(sb), type="dance_party"), "dance_party"),
    ("block_actions without actions", lambda sb: _payload_without(_click(sb), "actions"), "actions"),
    ("block_actions with no action", lambda sb: _with_payload(_click(sb), actions=[]), "actions"),
    ("actions is a string", lambda sb: _with_payload(_click(sb), actions="click"), "actions"),
    ("action without action_id", lambda sb: _with_payload(_click(sb), actions=[{"type": "button"}]), "action_id"),
    ("action_id is a number", lambda sb: _with_action(_click(sb), action_id=42), "action_id"),
    ("bogus action_id", lambda sb: _with_action(_click(sb), action_id="no_such_button"), "no_such_button"),
    ("user is a string", lambda sb: _with_payload(_click(sb), user="U0ALICE", team="T0SANDBOX"), "user"),
    ("view_submission without view", lambda sb: _payload_without(_submit(sb), "view"), "view"),
    ("view without callback_id", lambda sb: _with_payload(_submit(sb), view={"id": "V1", "state": {"values": {}}}), "callback_id"),
    ("state.values is a list", lambda sb: _with_view(_submit(sb), state={"values": ["api"]}), "state"),
    ("state value is a string", lambda sb: _with_view(_submit(sb), state={"values": {"name": "api"}}), "state"),
    ("state is missing", lambda sb: _with_view(_submit(sb), state=None), "state"),
    ("bogus callback_id", lambda sb: _with_view(_submit(sb), callback_id="no_such_modal"), "no_such_modal"),
    # events
    ("event_callback without event", lambda sb: _payload_without(_event(sb), "event"), "event"),
    ("event without a type", lambda sb: _with_payload(_event(sb), event={"user": "U0ALICE"}), "event"),
    ("payload type is not event_callback", lambda sb: _with_payload(_event(sb), type="nonsense"), "event_callback"),
]


async def _send_malformed(sandbox) -> list[tuple[str, dict, dict | None]]:
    """Send every malformed envelope at once; returns (name, frame, ack or None when none came)."""
    frames = [(name, build(sandbox)) for name, build, _ in MALFORMED_ENVELOPES]

    async def send(frame):
        try:
            return await sandbox.send_frame(frame, timeout=10.0)
        except asyncio.TimeoutError:
            return None

    acks = await asyncio.gather(*(send(frame) for _, frame in frames))
    return [(name, frame, ack) for (name, frame), ack in zip(frames, acks)]


async def test_every_malformed_envelope_is_acked(pulser, sandbox):
    sent = await _send_malformed(sandbox)
    unacked = [name for name, _, ack in sent if ack is None]
    assert unacked == [], f"never acked (Slack would redeliver them): {unacked}"
    assert all(ack["envelope_id"] == frame["envelope_id"] for _, frame, ack in sent)


async def test_every_malformed_envelope_is_failed_in_the_ledger_with_its_reason(pulser, sandbox):
    sent = await _send_malformed(sandbox)
    reasons = {name: word for name, _, word in MALFORMED_ENVELOPES}

    async def finished_rows():
        rows = {name: await _any_scope_row(pulser, frame) for name, frame, _ in sent}
        done = all(row is not None and row.status != "received" for row in rows.values())
        return rows if done else None

    try:
        rows = await eventually(finished_rows, timeout=30)
    except AssertionError:
        rows = {name: await _any_scope_row(pulser, frame) for name, frame, _ in sent}
    wrong = []
    for name, row in rows.items():
        if row is None or row.status == "received":
            wrong.append(f"{name}: no finished ledger row")
        elif row.status != "failed" or reasons[name].lower() not in (row.last_error or "").lower():
            wrong.append(f"{name}: {row.status} ({row.last_error!r})")
        elif row.next_attempt_at is not None:
            wrong.append(f"{name}: scheduled for a retry that cannot succeed")
    assert wrong == []


async def _any_scope_row(pulser, frame: dict):
    """The ledger row of a frame; one whose payload is unreadable has no workspace (scope '')."""
    envelope_id = str(frame["envelope_id"])
    return await ledger_row(pulser, envelope_id) or await envelopes.get_envelope(
        pulser.pool, source="slack", scope="", envelope_id=envelope_id
    )


async def test_the_bot_answers_a_good_command_after_the_malformed_envelopes(pulser, sandbox):
    await _send_malformed(sandbox)
    ack = await sandbox.send_slash_command(command="/pulser", text="help", timeout=10.0)
    assert "/pulser help" in ack_text(ack)


async def _failed_slack_rows(pulser) -> list:
    return await pulser.pool.fetch("SELECT envelope_id, kind, last_error FROM envelopes WHERE source = 'slack' AND status = 'failed'")


async def test_a_frame_without_an_envelope_id_is_recorded_failed_and_the_connection_stays(pulser, sandbox):
    frames = [
        _without(_command(sandbox), "envelope_id"),
        {**_click(sandbox), "envelope_id": ""},
        {**_event(sandbox), "envelope_id": None},
    ]
    for frame in frames:
        assert await sandbox.send_frame(frame) is None
    rows = await eventually(lambda: _rows_if(_failed_slack_rows(pulser), len(frames)), timeout=30)
    assert all("envelope_id" in row["last_error"] for row in rows)
    ack = await sandbox.send_slash_command(command="/pulser", text="help", timeout=10.0)
    assert "/pulser help" in ack_text(ack)


async def test_a_frame_that_is_not_an_object_is_recorded_failed_and_the_connection_stays(pulser, sandbox):
    before = sandbox.connections_opened
    for frame in ([1, 2, 3], '"just a string"', "garbage, not JSON"):
        assert await sandbox.send_frame(frame) is None
    rows = await eventually(lambda: _rows_if(_failed_slack_rows(pulser), 3), timeout=30)
    assert sorted(row["last_error"] for row in rows) == [
        "frame is a string, not a JSON object",
        "frame is an array, not a JSON object",
        "frame is not valid JSON",
    ]
    ack = await sandbox.send_slash_command(command="/pulser", text="help", timeout=10.0)
    assert "/pulser help" in ack_text(ack)
    assert sandbox.connections_opened == before, "the connection was kept"


async def _rows_if(rows_coro, count: int):
    rows = await rows_coro
    return rows if len(rows) >= count else None


def test_a_frame_nested_too_deeply_is_a_problem_not_a_crash():
    from bot.socket_envelopes import read_frame

    frame = read_frame("[" * 100_000 + "]" * 100_000)
    assert frame.message is None and frame.problem == "frame is nested too deeply"


# --- reconnect backoff ---------------------------------------------------------------------------


async def test_the_first_try_after_a_drop_goes_at_once_then_the_waits_double_up_to_the_cap():
    clock = StoppedClock()
    backoff = ReconnectBackoff(first=1.0, cap=30.0, rng=random.Random(7), clock=clock)
    delays = []
    for _ in range(9):
        await backoff.turn()  # never sleeps here: the test moves the clock by the whole delay
        delays.append(backoff._next_at - clock())
        clock.advance(max(0.0, backoff._next_at - clock()))
    assert 0.5 <= delays[0] <= 1.0
    for earlier, later, ceiling in zip(delays, delays[1:], (2, 4, 8, 16, 30, 30, 30, 30)):
        assert ceiling / 2 <= later <= ceiling, (earlier, later)
    backoff.connected()
    assert backoff.delay() == 0.0


async def test_while_slack_refuses_new_connections_pulser_asks_less_and_less_often(pulser, sandbox):
    opened_before = len(sandbox.calls_to("apps.connections.open"))
    sandbox.fail_next("apps.connections.open", status=200, error="internal_error", retry_after=None, times=1000)
    started = time.monotonic()
    await sandbox.drop_connections(mode="reset")
    await eventually(lambda: time.monotonic() - started > 12, timeout=40)  # a window to count tries in
    tries = len(sandbox.calls_to("apps.connections.open")) - opened_before
    # One retrier, doubling waits: at once, then ~1, 2, 4, 8 s apart — at most 5 tries in 12 s
    # (without the backoff, the SDK's loop and the supervisor asked every second or two).
    assert 2 <= tries <= 5, tries
    sandbox.state.failures.clear()
    await eventually(lambda: pulser.supervisor.connected, timeout=45)

"""Heartbeat alert messages are pure data: check the JSON they build."""

from datetime import datetime, timezone

from blocks.heartbeat_alerts import ACK, PAUSE, SNOOZE, AlertView, alert_message, recovery_reply


def view(**overrides) -> AlertView:
    base = dict(app_id=7, app_name="nightly-backup", kind="heartbeat_down", expected="every 5 min", grace="1 min",
                last_seen_ago="12 min")
    base.update(overrides)
    return AlertView(**base)


def action_ids(message: dict) -> list[str]:
    blocks = message["attachments"][0]["blocks"]
    actions = [b for b in blocks if b["type"] == "actions"]
    return [e["action_id"] for e in actions[0]["elements"]] if actions else []


def test_a_missed_heartbeat_alert_has_the_headline_colour_and_three_actions():
    message = alert_message(view())
    assert message["text"] == "🚨 Missed heartbeat: nightly-backup — last seen 12 min ago, expected every 5 min"
    assert message["attachments"][0]["color"] == "#d62828"
    assert action_ids(message) == [ACK, SNOOZE, PAUSE]


def test_snooze_offers_the_four_durations_tied_to_the_app():
    message = alert_message(view())
    select = message["attachments"][0]["blocks"][-1]["elements"][1]
    assert [o["value"] for o in select["options"]] == ["7:1800", "7:3600", "7:14400", "7:86400"]


def test_pause_asks_for_confirmation():
    pause = alert_message(view())["attachments"][0]["blocks"][-1]["elements"][2]
    assert pause["confirm"]["confirm"]["text"] == "Pause"


def test_an_acked_alert_names_who_and_loses_its_ack_button():
    message = alert_message(view(acked_by="U0BOB", acked_at=datetime(2026, 1, 1, 9, 30, tzinfo=timezone.utc)))
    assert "Acknowledged by <@U0BOB> at 09:30 UTC" in str(message)
    assert action_ids(message) == [SNOOZE, PAUSE]


def test_a_recovered_alert_is_green_without_buttons():
    message = alert_message(view(recovered_after="14 min", acked_by="U0BOB"))
    assert message["text"] == "✅ nightly-backup recovered after 14 min"
    assert message["attachments"][0]["color"] == "#2a9d8f"
    assert action_ids(message) == []
    assert "U0BOB" in str(message), "who acked stays on the record"


def test_a_failure_names_the_exit_code():
    assert alert_message(view(kind="heartbeat_fail", exit_code=3))["text"] == "🚨 nightly-backup reported a failure (exit code 3)"


def test_app_names_cannot_ping_a_channel():
    message = alert_message(view(app_name="<!channel> db"))
    assert "<!channel>" not in str(message) and "&lt;!channel&gt;" in message["text"]
    assert "<!channel>" not in recovery_reply("<!channel>", "1 min")

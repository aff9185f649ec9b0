"""The application blocks are pure data: check the JSON they build."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

from blocks.applications import (
    DELETE,
    EDIT,
    EDIT_CALLBACK,
    HEARTBEATS,
    PAUSE,
    REGISTER_CALLBACK,
    RESUME,
    AppSummary,
    admin_only,
    apps_list,
    change_notice,
    curl_lines,
    duration_input,
    edit_modal,
    form_errors,
    heartbeats_list,
    register_modal,
    registered_message,
    submitted_fields,
)

UUID = "0b9c6c39-6a53-4d5c-8f1e-0d1b0a7c1e11"


def summary(app_id: int = 1, name: str = "nightly-backup", status: str = "up", **overrides) -> AppSummary:
    values = dict(
        id=app_id, uuid=UUID, name=name, status=status, expected="every 5 min", grace="1 min",
        last_heartbeat="12 min ago", channel="C0OPS", owner=None, is_active=status != "paused",
    )
    values.update(overrides)
    return AppSummary(**values)


def block(view_or_message: dict, block_id: str) -> dict:
    return next(b for b in view_or_message["blocks"] if b.get("block_id") == block_id)


def all_text(message: dict) -> str:
    parts = [message.get("text", "")]
    for b in message["blocks"]:
        if b["type"] == "section":
            parts.append(b["text"]["text"])
        elif b["type"] == "context":
            parts += [e["text"] for e in b["elements"]]
    return "\n".join(parts)


# --- the modal -----------------------------------------------------------------------------------


def test_the_register_modal_has_every_field_with_its_input_type():
    view = register_modal(default_channel="#ops-alerts", metadata={"channel_id": "C0OPS", "user_id": "U0ADA"})
    assert view["type"] == "modal" and view["callback_id"] == REGISTER_CALLBACK
    assert len(view["title"]["text"]) <= 24
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == ["name", "interval", "grace", "channel", "owner", "schedule", "timezone"]
    kinds = {bid: b["element"]["type"] for bid, b in inputs.items()}
    assert kinds == {
        "name": "plain_text_input", "interval": "plain_text_input", "grace": "plain_text_input",
        "channel": "conversations_select", "owner": "users_select",
        "schedule": "plain_text_input", "timezone": "plain_text_input",
    }
    assert all(b["element"]["action_id"] == bid for bid, b in inputs.items())


def test_only_the_name_is_required_by_slack_itself():
    view = register_modal(default_channel="#ops-alerts", metadata={})
    optional = {b["block_id"]: b["optional"] for b in view["blocks"] if b["type"] == "input"}
    assert optional.pop("name") is False
    assert all(optional.values()), "interval may be empty when a schedule is given; the validator decides"


def test_the_name_is_limited_to_100_characters_and_grace_defaults_to_one_minute():
    view = register_modal(default_channel="#ops-alerts", metadata={})
    assert block(view, "name")["element"]["max_length"] == 100
    assert block(view, "grace")["element"]["initial_value"] == "1m"


def test_the_interval_hint_explains_the_accepted_forms():
    hint = block(register_modal(default_channel="#ops-alerts", metadata={}), "interval")["hint"]["text"]
    assert all(form in hint for form in ("300", "5m", "1h", "1d"))


def test_the_command_channel_and_user_ride_in_private_metadata():
    view = register_modal(default_channel="#ops-alerts", metadata={"channel_id": "C0OPS", "user_id": "U0ADA"})
    assert json.loads(view["private_metadata"]) == {"channel_id": "C0OPS", "user_id": "U0ADA"}


def test_a_default_channel_id_is_preselected_and_a_name_is_named_in_the_hint():
    by_id = block(register_modal(default_channel="C0ALERTS", metadata={}), "channel")
    assert by_id["element"]["initial_conversation"] == "C0ALERTS"
    by_name = block(register_modal(default_channel="#ops-alerts", metadata={}), "channel")
    assert "initial_conversation" not in by_name["element"]
    assert "#ops-alerts" in by_name["hint"]["text"]


def test_a_name_given_with_the_command_prefills_the_form():
    view = register_modal(default_channel="#ops-alerts", metadata={}, name="billing-sync")
    assert block(view, "name")["element"]["initial_value"] == "billing-sync"


def stored_app(**overrides):
    values = dict(
        id=7, name="billing-sync", expected_interval=300, grace_period=90, schedule=None, timezone="UTC",
        channel="C0OPS", owner="U0ADA",
    )
    values.update(overrides)
    return SimpleNamespace(**values)


def test_the_edit_modal_is_the_same_form_filled_with_the_app():
    view = edit_modal(app=stored_app(), metadata={"app_id": 7})
    assert view["callback_id"] == EDIT_CALLBACK
    assert json.loads(view["private_metadata"])["app_id"] == 7
    assert block(view, "name")["element"]["initial_value"] == "billing-sync"
    assert block(view, "interval")["element"]["initial_value"] == "5m"
    assert block(view, "grace")["element"]["initial_value"] == "90s"
    assert block(view, "channel")["element"]["initial_conversation"] == "C0OPS"
    assert block(view, "owner")["element"]["initial_user"] == "U0ADA"


def test_the_edit_modal_shows_a_schedule_and_its_time_zone():
    view = edit_modal(app=stored_app(expected_interval=None, schedule="0 2 * * *", timezone="Europe/Berlin"), metadata={})
    assert "initial_value" not in block(view, "interval")["element"]
    assert block(view, "schedule")["element"]["initial_value"] == "0 2 * * *"
    assert block(view, "timezone")["element"]["initial_value"] == "Europe/Berlin"


def test_durations_are_shown_in_the_shortest_form_the_validator_reads_back():
    assert [duration_input(s) for s in (None, 0, 45, 90, 300, 3600, 5400, 86400)] == [
        "", "0s", "45s", "90s", "5m", "1h", "90m", "1d",
    ]


def test_a_submitted_form_is_read_by_field_name():
    values = {
        "name": {"name": {"type": "plain_text_input", "value": " billing "}},
        "interval": {"interval": {"type": "plain_text_input", "value": " 5m "}},
        "grace": {"grace": {"type": "plain_text_input", "value": None}},
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": "C0OPS"}},
        "owner": {"owner": {"type": "users_select", "selected_user": None}},
        "schedule": {"schedule": {"type": "plain_text_input", "value": "   "}},
    }
    assert submitted_fields(values) == {
        "name": " billing ", "expected_interval": "5m", "grace_period": None, "channel": "C0OPS",
        "owner": None, "schedule": None, "timezone": None,
    }


def test_validator_errors_land_on_the_blocks_that_show_them():
    errors = form_errors({"name": "required", "expected_interval": "too short", "grace_period": "bad", "schedule": "x"})
    assert errors == {"name": "required", "interval": "too short", "grace": "bad", "schedule": "x"}


# --- after registering ----------------------------------------------------------------------------


def test_the_registered_message_has_the_uuid_and_ready_to_paste_curl_lines():
    message = registered_message(summary(), "http://pulser.example:8080/")
    text = all_text(message)
    assert UUID in text and UUID in message["text"]
    ping = f"http://pulser.example:8080/heartbeat/{UUID}"
    for line in (
        f"curl -fsS -m 10 --retry 5 -X POST {ping}",
        f"curl -fsS -m 10 --retry 5 -X POST {ping}/start",
        f"curl -fsS -m 10 --retry 5 -X POST {ping}/fail",
        f"my-job.sh; curl -fsS -m 10 --retry 5 -X POST {ping}/$?",
    ):
        assert line in text
    assert curl_lines("http://h/", UUID)[0].endswith(f"http://h/heartbeat/{UUID}")


def test_the_registered_message_escapes_the_name():
    text = all_text(registered_message(summary(name="<!channel> & co"), "http://h"))
    assert "&lt;!channel&gt; &amp; co" in text
    assert "<!channel>" not in text, "the fallback text is mrkdwn as well"


# --- the list --------------------------------------------------------------------------------------


def test_each_app_has_a_status_line_and_four_buttons_naming_it():
    message = apps_list([summary(app_id=3)])
    assert message["response_type"] == "ephemeral"
    section = block(message, "app_3")["text"]["text"]
    assert "🟢 *up*" in section and "nightly-backup" in section
    assert "every 5 min" in section and "grace 1 min" in section
    assert "Last heartbeat 12 min ago" in section and "<#C0OPS>" in section
    buttons = block(message, "app_actions_3")["elements"]
    assert [b["action_id"] for b in buttons] == [PAUSE, EDIT, DELETE, HEARTBEATS]
    assert {b["value"] for b in buttons} == {"3"}


def test_every_status_has_its_emoji():
    statuses = {"new": "⚪", "up": "🟢", "late": "🟡", "down": "🔴", "paused": "⏸️"}
    apps = [summary(app_id=i, name=s, status=s) for i, s in enumerate(statuses)]
    message = apps_list(apps)
    for i, (status, emoji) in enumerate(statuses.items()):
        assert f"{emoji} *{status}*" in block(message, f"app_{i}")["text"]["text"]


def test_a_paused_app_offers_resume_instead_of_pause():
    buttons = block(apps_list([summary(status="paused")]), "app_actions_1")["elements"]
    assert buttons[0]["action_id"] == RESUME and buttons[0]["text"]["text"] == "Resume"


def test_delete_asks_for_confirmation_in_a_danger_dialog():
    delete = block(apps_list([summary(name="billing")]), "app_actions_1")["elements"][2]
    assert delete["style"] == "danger"
    confirm = delete["confirm"]
    assert confirm["style"] == "danger" and confirm["confirm"]["text"] == "Delete"
    assert "billing" in confirm["text"]["text"] and "404" in confirm["text"]["text"]
    assert len(confirm["title"]["text"]) <= 100 and len(confirm["text"]["text"]) <= 300


def test_down_and_late_apps_come_first_then_by_name():
    apps = [summary(1, "alpha", "up"), summary(2, "beta", "late"), summary(3, "gamma", "down"), summary(4, "Delta", "new")]
    order = [b["block_id"] for b in apps_list(apps)["blocks"] if b.get("block_id", "").startswith("app_") and b["type"] == "section"]
    assert order == ["app_3", "app_2", "app_1", "app_4"]


def test_the_header_counts_down_and_late_apps():
    header = block(apps_list([summary(1, "a", "down"), summary(2, "b", "late"), summary(3, "c", "up")]), "apps_header")
    assert "3 total" in header["text"]["text"] and "🔴 1 down" in header["text"]["text"] and "🟡 1 late" in header["text"]["text"]


def test_a_long_list_stays_within_slacks_50_blocks_and_says_how_many_are_left_out():
    apps = [summary(i, f"app-{i:03d}", "up") for i in range(60)] + [summary(99, "zz-broken", "down")]
    message = apps_list(apps, notice=change_notice("paused", "app-001"))
    assert len(message["blocks"]) <= 50
    shown = [b for b in message["blocks"] if b["type"] == "actions"]
    assert block(message, "app_99"), "a down app is shown even when it sorts last by name"
    text = all_text(message)
    assert f"{61 - len(shown)} more" in text and "/api/applications" in text


def test_the_total_can_exceed_the_apps_given():
    message = apps_list([summary()], total=5000)
    assert "5000 total" in all_text(message) and "4999 more" in all_text(message)


def test_names_cannot_ping_or_format_links():
    message = apps_list([summary(name="<!channel> <@U0BOSS> & <https://evil|x>")])
    section = block(message, "app_1")["text"]["text"]
    assert "<!channel>" not in section and "<@U0BOSS>" not in section and "<https://" not in section
    assert "&lt;!channel&gt; &lt;@U0BOSS&gt; &amp; &lt;https://evil|x&gt;" in section


def test_a_channel_name_is_shown_as_text_and_an_owner_as_a_mention():
    section = block(apps_list([summary(channel="#ops-alerts", owner="U0ADA")]), "app_1")["text"]["text"]
    assert "alerts to #ops-alerts" in section and "owner <@U0ADA>" in section


def test_an_empty_list_says_how_to_register():
    message = apps_list([])
    assert "/pulser register" in all_text(message)
    assert not [b for b in message["blocks"] if b["type"] == "actions"]


def test_a_change_notice_tops_the_list_and_escapes_the_name():
    message = apps_list([summary()], notice=change_notice("deleted", "<!here>"))
    first = message["blocks"][0]
    assert first["type"] == "context" and "Deleted" in first["elements"][0]["text"]
    assert "&lt;!here&gt;" in first["elements"][0]["text"]


# --- heartbeats ------------------------------------------------------------------------------------


def heartbeat(kind: str, second: int, exit_code=None, duration_ms=None) -> dict:
    at = datetime(2024, 5, 1, 12, 0, second, tzinfo=timezone.utc)
    return {"kind": kind, "received_at": at, "exit_code": exit_code, "duration_ms": duration_ms}


def test_heartbeats_show_time_kind_exit_code_and_duration():
    view = heartbeats_list(summary(), [heartbeat("fail", 30, exit_code=2, duration_ms=83_000), heartbeat("start", 10)])
    assert view["type"] == "modal" and "submit" not in view
    first = block(view, "heartbeat_0")["text"]["text"]
    assert "❌ *fail*" in first and "exit code 2" in first and "ran 1 min 23 s" in first
    assert "<!date^1714564830^" in first and "2024-05-01 12:00:30 UTC" in first
    assert "▶️ *start*" in block(view, "heartbeat_1")["text"]["text"]


def test_at_most_ten_heartbeats_are_shown():
    view = heartbeats_list(summary(), [heartbeat("success", i) for i in range(15)])
    assert len([b for b in view["blocks"] if b.get("block_id", "").startswith("heartbeat_")]) == 10


def test_no_heartbeats_says_so():
    view = heartbeats_list(summary(name="<b>"), [])
    assert "No heartbeats yet" in block(view, "heartbeats_none")["text"]["text"]
    assert "&lt;b&gt;" in block(view, "heartbeats_app")["text"]["text"]


# --- refusals --------------------------------------------------------------------------------------


def test_the_refusal_says_who_can():
    message = admin_only("register apps")
    assert message["response_type"] == "ephemeral"
    assert message["text"].startswith(":lock: Only Pulser admins can register apps: workspace admins/owners or users listed in PULSER_ADMINS.")

"""The paging forms and lists are pure data: check the JSON they build and how they read a form."""

from __future__ import annotations

import json

from blocks.escalation import (
    CHANNEL_ADD,
    CHANNEL_DELETE,
    CHANNEL_EDIT,
    CHANNEL_TEST,
    POLICY_DELETE,
    ChannelLine,
    PolicyLine,
    SettingField,
    channel_form,
    channel_modal,
    channels_list,
    person_form,
    person_form_errors,
    person_modal,
    policies_list,
    policy_form_errors,
    setting_block_id,
)

METHODS = [("slack_dm", "Slack DM"), ("sms", "SMS"), ("email", "E-mail")]
EMAIL_FIELDS = [
    SettingField("host", "SMTP server", required=True),
    SettingField("port", "Port", kind="number"),
    SettingField("password", "Password", secret=True),
    SettingField("to", "To", kind="list"),
    SettingField("security", "Security", kind="select", options=("starttls", "tls", "none"), default="starttls"),
]


def block(view: dict, block_id: str) -> dict:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def actions(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_the_person_form_shows_their_rules_and_empty_rows_up_to_five():
    view = person_modal(metadata={"user_id": "U0ADA"}, email="ada@example.com", phone=None,
                        rules=[{"method": "sms", "delay_minutes": 5}], methods=METHODS)
    assert block(view, "email")["element"]["initial_value"] == "ada@example.com"
    assert block(view, "rule_1_method")["element"]["initial_option"]["value"] == "sms"
    assert block(view, "rule_1_delay")["element"]["initial_value"] == "5"
    assert "initial_option" not in block(view, "rule_5_method")["element"]
    assert json.loads(view["private_metadata"]) == {"user_id": "U0ADA"}


def test_the_person_form_reads_filled_rows_and_maps_errors_back_onto_them():
    def row(method, delay):
        return {"type": "static_select", "selected_option": {"value": method} if method else None}, {"value": delay}

    values = {"email": {"email": {"value": " ada@example.com "}}, "phone": {"phone": {"value": None}}}
    for number, (method, delay) in enumerate([("slack_dm", ""), (None, ""), ("sms", "5"), ("none", "9")], start=1):
        select, text = row(method, delay)
        values[f"rule_{number}_method"] = {f"rule_{number}_method": select}
        values[f"rule_{number}_delay"] = {f"rule_{number}_delay": text}
    data, rows, errors = person_form(values)
    assert data == {"contacts": {"email": "ada@example.com", "phone": None},
                    "rules": [{"method": "slack_dm", "delay_minutes": 0}, {"method": "sms", "delay_minutes": 5}]}
    assert (rows, errors) == ([1, 3], {})
    mapped = person_form_errors({"contacts.phone": "required", "rules[1].delay_minutes": "at least 0"}, rows)
    assert mapped == {"phone": "Required", "rule_3_delay": "At least 0"}


def test_minutes_that_are_not_a_number_are_an_error_on_their_row():
    values = {"rule_2_method": {"rule_2_method": {"selected_option": {"value": "email"}}},
              "rule_2_delay": {"rule_2_delay": {"value": "ten"}}}
    assert set(person_form(values)[2]) == {"rule_2_delay"}


def test_a_managed_policy_is_listed_without_buttons_and_delete_asks_first():
    message = policies_list([
        PolicyLine(1, "Prod <!channel>", 0, ["post in #ops"], ["api"]),
        PolicyLine(2, "From file", 1, ["wait 5 min"], managed=True),
    ])
    shown = block(message, "policy_1")["text"]["text"]
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
    assert "Managed by the config file" in block(message, "policy_2")["text"]["text"]
    assert "policy_actions_2" not in json.dumps(message)
    delete = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == POLICY_DELETE)
    assert delete["confirm"]["confirm"]["text"] == "Delete"


def test_step_errors_all_land_on_the_steps_field():
    errors = policy_form_errors({"name": "required", "steps": "a policy of only waits notifies nobody"},
                                ["line 2: no schedule is called 'X'"])
    assert errors == {"name": "Required",
                      "steps": "Line 2: no schedule is called 'X'; a policy of only waits notifies nobody"}


def test_a_channel_form_never_shows_a_secret_and_says_empty_keeps_it():
    view = channel_modal(metadata={}, kind_label="E-mail (SMTP)", fields=EMAIL_FIELDS, name="ops-mail",
                         settings={"host": "smtp.example.com", "password": "hunter2", "to": ["a@x.io", "b@x.io"]},
                         editing=True)
    assert "hunter2" not in json.dumps(view)
    password = block(view, setting_block_id("password"))
    assert password["optional"] is True and "Leave empty to keep it" in password["hint"]["text"]
    assert block(view, setting_block_id("to"))["element"]["initial_value"] == "a@x.io, b@x.io"
    assert block(view, setting_block_id("security"))["element"]["initial_option"]["value"] == "starttls"


def test_a_channel_form_reads_lists_numbers_and_leaves_empty_fields_out():
    def text(value):
        return {"value": value}

    values = {"name": {"name": text("ops-mail")},
              setting_block_id("host"): {setting_block_id("host"): text("smtp.example.com")},
              setting_block_id("port"): {setting_block_id("port"): text("587")},
              setting_block_id("password"): {setting_block_id("password"): text("")},
              setting_block_id("to"): {setting_block_id("to"): text("a@x.io,\nb@x.io")},
              setting_block_id("security"): {setting_block_id("security"): {"selected_option": {"value": "tls"}}}}
    assert channel_form(values, EMAIL_FIELDS) == (
        "ops-mail", {"host": "smtp.example.com", "port": 587, "to": ["a@x.io", "b@x.io"], "security": "tls"}, {},
    )


def test_the_channel_list_shows_settings_as_given_and_offers_each_kind():
    message = channels_list([ChannelLine(3, "ops-hook", "webhook", "Outbound webhook", {"url": "(set)"})],
                            [("webhook", "Outbound webhook"), ("email", "E-mail (SMTP)")])
    assert "`url` (set)" in block(message, "channel_3")["text"]["text"]
    assert actions(message) == [CHANNEL_TEST, CHANNEL_EDIT, CHANNEL_DELETE, CHANNEL_ADD]
    add = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == CHANNEL_ADD)
    assert [o["value"] for o in add["options"]] == ["webhook", "email"]

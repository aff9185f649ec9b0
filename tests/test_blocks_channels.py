"""Channels in messages: a stored channel ID is shown as Slack's link `<#C…>` everywhere (each
reader sees the channel's current name), never as a bare ID; a name kept as typed stays text."""

from __future__ import annotations

from blocks.applications import register_modal
from blocks.events import routes_message
from blocks.kit import channel_ref
from blocks.rules import rules_list


def test_a_channel_id_is_a_link_and_a_name_is_escaped_text():
    assert channel_ref("C0OPS") == "<#C0OPS>" and channel_ref("G0PRIV") == "<#G0PRIV>"
    assert channel_ref("#ops-alerts") == "#ops-alerts"
    assert channel_ref("<!channel>") == "&lt;!channel&gt;"


def test_the_event_routes_notification_text_links_channels_instead_of_showing_ids():
    text = routes_message({"deploy": "C0DEPLOY"}, "C0ALERTS")["text"]
    assert "deploy → <#C0DEPLOY>" in text and "ci → <#C0ALERTS>" in text


def test_the_rules_notification_text_links_the_default_channel():
    assert rules_list([], default_channel="C0ALERTS")["text"].endswith("go to <#C0ALERTS>")


def test_the_register_form_does_not_print_the_default_channels_id_in_its_hint():
    view = register_modal(default_channel="C0ALERTS", metadata={})
    channel = next(b for b in view["blocks"] if b.get("block_id") == "channel")
    assert "C0ALERTS" not in channel["hint"]["text"]
    assert channel["element"]["initial_conversation"] == "C0ALERTS"


def test_a_rule_the_config_file_manages_is_listed_read_only_with_where_to_change_it():
    from blocks.rules import RuleLine

    managed = RuleLine(id=1, position=1, name="payments", conditions="any alert", actions="→ #pay", managed=True)
    mine = RuleLine(id=2, position=2, name="api", conditions="any alert", actions="→ #api")
    blocks = rules_list([managed, mine], default_channel="C0ALERTS")["blocks"]
    shown = [b for b in blocks if b.get("block_id") in ("rule_1", "rule_2", "rule_actions_1", "rule_actions_2")]
    assert [b["block_id"] for b in shown] == ["rule_1", "rule_2", "rule_actions_2"]  # no buttons for the managed one
    assert "Managed by the config file" in shown[0]["text"]["text"]

"""Block Kit on the sandbox page: laid out as Slack lays it out, every control a working form."""

from __future__ import annotations

import json
from html import unescape

from sandbox.blockkit import Controls, attachment_html, blocks_html, colour_of, message_body_html
from sandbox.mrkdwn import Viewer

VIEWER = Viewer(users={"U0ALICE": "alice"}, channels={"C0OPS": "ops"})


def controls(**extra) -> Controls:
    return Controls(
        ctx={"channel_id": "C0OPS", "message_ts": "1.000100", "user_id": "U0ALICE"}, viewer=VIEWER,
        people=[("U0ALICE", "alice"), ("U0BOB", "bob")], rooms=[("C0OPS", "ops")], **extra,
    )


def mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def button(label: str, action_id: str = "go", **extra) -> dict:
    return {"type": "button", "text": plain(label), "action_id": action_id, "value": "v1", **extra}


def render(*blocks: dict, ctl: Controls | None = None) -> str:
    return blocks_html(list(blocks), ctl or controls())


def test_section_fields_are_a_two_column_grid():
    out = render({"type": "section", "fields": [mrkdwn("*Env*\nprod"), mrkdwn("*Owner*\n<@U0ALICE>")]})
    assert '<div class="fields"><div class="field"><b>Env</b><br>prod</div><div class="field"><b>Owner</b><br>' in out
    assert "@alice" in out


def test_a_section_accessory_sits_beside_its_text():
    out = render({"type": "section", "block_id": "s1", "text": mrkdwn("*App*"), "accessory": button("Open")})
    main, accessory = out.split('<div class="accessory">')
    assert "<b>App</b>" in main and "Open</button>" in accessory and 'name="block_id" value="s1"' in accessory


def test_header_divider_context_and_image():
    out = render(
        {"type": "header", "text": plain("Pulser :tada:")},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "image", "image_url": "https://example.com/i.png", "alt_text": "i"}, mrkdwn("_small_")]},
        {"type": "image", "image_url": "https://example.com/big.png", "alt_text": "graph", "title": plain("Latency")},
    )
    assert '<div class="blk header">Pulser 🎉</div>' in out and '<hr class="blk divider">' in out
    assert '<img class="ctx-img" src="https://example.com/i.png"' in out and "<i>small</i>" in out
    assert '<div class="img-title">Latency</div><img class="img-block" src="https://example.com/big.png" alt="graph"' in out


def test_an_image_from_an_unsafe_address_is_not_loaded():
    out = render({"type": "image", "image_url": "javascript:alert(1)", "alt_text": "x"})
    assert "<img" not in out and "javascript" not in out


def test_a_button_is_a_form_that_sends_the_action():
    out = render({"type": "actions", "block_id": "alert_actions", "elements": [button("Ack", "heartbeat_alert_ack", style="primary")]})
    assert out.count('<form class="act" method="post" action="/sandbox/ui/action">') == 1
    for field in ('name="action_id" value="heartbeat_alert_ack"', 'name="block_id" value="alert_actions"',
                  'name="value" value="v1"', 'name="message_ts" value="1.000100"', 'name="action_type" value="button"'):
        assert field in out
    assert 'class="btn primary"' in out


def test_a_danger_button_with_a_confirm_carries_the_dialog():
    confirm = {"title": plain("Delete?"), "text": mrkdwn("Gone for *good*"), "confirm": plain("Delete"),
               "deny": plain("Keep"), "style": "danger"}
    out = render({"type": "actions", "elements": [button("Delete", style="danger", confirm=confirm)]})
    attr = out.split('data-confirm="', 1)[1].split('"', 1)[0]
    assert json.loads(unescape(attr)) == {"title": "Delete?", "text": "Gone for <b>good</b>", "confirm": "Delete",
                                          "deny": "Keep", "style": "danger"}
    assert 'class="btn danger"' in out


def test_a_link_button_opens_its_address():
    out = render({"type": "actions", "elements": [button("Runbook", url="https://example.com/runbook")]})
    assert '<a class="btn" href="https://example.com/runbook"' in out and "<form" not in out


def test_a_static_select_is_a_menu_whose_options_send_at_once():
    select = {"type": "static_select", "action_id": "snooze", "placeholder": plain("Snooze…"),
              "options": [{"text": plain("1 hour"), "value": "3600"}, {"text": plain("1 day"), "value": "86400"}]}
    out = render({"type": "actions", "elements": [select]})
    assert '<details class="menu select"><summary class="btn">Snooze…' in out
    assert out.count('class="menu-item"') == 2
    assert 'name="value" value="3600"' in out and 'name="option_text" value="1 hour"' in out


def test_an_overflow_menu():
    overflow = {"type": "overflow", "action_id": "more", "options": [{"text": plain("Delete"), "value": "d"}]}
    out = render({"type": "section", "text": mrkdwn("x"), "accessory": overflow})
    assert '<details class="menu overflow"><summary class="btn">⋮</summary>' in out and ">Delete</button>" in out


def test_a_users_select_offers_the_workspace_people():
    out = render({"type": "actions", "elements": [{"type": "users_select", "action_id": "who"}]})
    assert 'name="value" value="U0BOB"' in out and ">bob</button>" in out and 'name="action_type" value="users_select"' in out


def test_detached_controls_point_at_forms_outside_the_modal_form():
    ctl = controls(detached=True)
    out = render({"type": "actions", "elements": [button("Test")]}, ctl=ctl)
    assert '<button type="submit" form="act1"' in out and "<form" not in out
    assert ctl.pending[0].startswith('<form id="act1" method="post" action="/sandbox/ui/action">')


def test_rich_text_lists_quotes_and_code():
    block = {"type": "rich_text", "elements": [
        {"type": "rich_text_list", "style": "bullet", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "one", "style": {"bold": True}}]},
            {"type": "rich_text_section", "elements": [{"type": "user", "user_id": "U0ALICE"}]},
        ]},
        {"type": "rich_text_quote", "elements": [{"type": "emoji", "name": "warning"}, {"type": "text", "text": " careful"}]},
        {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "a <b>"}]},
    ]}
    out = render(block)
    assert '<ul style="margin-left:0.0em"><li><b>one</b></li><li><span class="mention" data-user="U0ALICE">@alice</span></li></ul>' in out
    assert "<blockquote>⚠️ careful</blockquote>" in out and '<pre class="code">a &lt;b&gt;</pre>' in out


def test_an_unknown_block_says_what_it_is():
    assert render({"type": "video"}) == '<div class="blk muted">[video block]</div>'


def test_a_message_with_blocks_shows_them_not_its_fallback_text():
    out = message_body_html({"text": "fallback for notifications", "blocks": [{"type": "section", "text": mrkdwn("*shown*")}]}, controls())
    assert "<b>shown</b>" in out and "fallback" not in out


def test_a_message_with_text_and_attachments_shows_both_as_slack_does():
    message = {"text": "🚨 *db* down", "attachments": [{"color": "danger", "blocks": [{"type": "context", "elements": [mrkdwn("details")]}]}]}
    out = message_body_html(message, controls())
    assert out.index("<b>db</b>") < out.index('<div class="attachment" style="border-left-color: #e01e5a">') < out.index("details")


def test_attachment_fields_title_and_footer():
    out = attachment_html({"color": "#2a9d8f", "pretext": "before", "title": "Build", "title_link": "https://ci.example.com",
                           "text": "*ok*", "fields": [{"title": "Env", "value": "prod", "short": True},
                                                       {"title": "Log", "value": "long"}], "footer": "CI"}, controls())
    assert out.startswith('<div class="text">before</div><div class="attachment" style="border-left-color: #2a9d8f">')
    assert '<a href="https://ci.example.com" target="_blank" rel="noopener">Build</a>' in out and "<b>ok</b>" in out
    assert '<div class="field"><b>Env</b><br>prod</div><div class="field wide"><b>Log</b><br>long</div>' in out


def test_attachment_colours():
    assert [colour_of(c) for c in ("good", "warning", "danger", "#abc", "2a9d8f", "red;x", None)] == [
        "#2eb67d", "#ecb22e", "#e01e5a", "#abc", "#2a9d8f", "#dddddd", "#dddddd",
    ]

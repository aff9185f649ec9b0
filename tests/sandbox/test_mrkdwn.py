"""Slack's mrkdwn as the sandbox page shows it: the same text Slack's client would show a person."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from sandbox.mrkdwn import Viewer, mrkdwn_html, plain_html, text_object_html

# 2026-12-07 09:30:00 UTC, a Monday.
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=timezone.utc)
VIEWER = Viewer(users={"U0ALICE": "alice"}, channels={"C0OPS": "ops"}, groups={"S0ONCALL": "oncall"}, now=NOW)


def html(text: str, viewer: Viewer = VIEWER) -> str:
    return mrkdwn_html(text, viewer)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("*down*", "<b>down</b>"),
        ("_slow_", "<i>slow</i>"),
        ("~old~", "<s>old</s>"),
        ("*_both_*", "<b><i>both</i></b>"),
        ("a *b c* d", "a <b>b c</b> d"),
    ],
)
def test_styles_become_markup(text, shown):
    assert html(text) == shown


@pytest.mark.parametrize("text", ["nightly_backup_job", "2*3*4", "* not bold *", "0 2 * * *"])
def test_markers_inside_words_or_next_to_spaces_stay_as_typed(text):
    assert html(text) == text


def test_inline_code_is_not_styled_and_its_escapes_are_shown_as_characters():
    assert html("`*x* &lt;id&gt;`") == "<code>*x* &lt;id&gt;</code>"


def test_a_code_block_keeps_its_lines_and_is_not_styled():
    assert html("run:\n```a *b*\n:x: c```") == 'run:<pre class="code">a *b*\n:x: c</pre>'


def test_quoted_lines_become_one_quote():
    assert html("&gt; one\n&gt; *two*\nafter") == "<blockquote>one<br><b>two</b></blockquote>after"


def test_lines_are_kept():
    assert html("a\nb") == "a<br>b"


def test_a_link_shows_its_label():
    assert html("<https://example.com/a_b|the *docs*>") == (
        '<a href="https://example.com/a_b" target="_blank" rel="noopener">the *docs*</a>'
    )


def test_a_bare_link_shows_its_address():
    assert html("<https://example.com>") == '<a href="https://example.com" target="_blank" rel="noopener">https://example.com</a>'


def test_a_link_to_an_unsafe_scheme_is_only_text():
    assert html("<javascript:alert(1)|click>") == "click"


def test_a_user_mention_shows_the_name():
    assert html("by <@U0ALICE>") == 'by <span class="mention" data-user="U0ALICE">@alice</span>'


def test_an_unknown_user_shows_the_label_or_the_id():
    assert "@bob" in html("<@U0BOB|bob>") and "@U0NOBODY" in html("<@U0NOBODY>")


def test_a_channel_mention_shows_the_name_and_links_to_the_channel():
    assert html("<#C0OPS>") == '<a class="mention" href="/?c=C0OPS">#ops</a>'


@pytest.mark.parametrize("word", ["here", "channel", "everyone"])
def test_special_mentions(word):
    assert html(f"<!{word}>") == f'<span class="mention">@{word}</span>'


def test_a_user_group_shows_its_handle():
    assert html("<!subteam^S0ONCALL>") == '<span class="mention">@oncall</span>'


def test_a_date_is_shown_in_the_viewers_time_zone():
    berlin = Viewer(tz=ZoneInfo("Europe/Berlin"), now=NOW)
    shown = html("<!date^1796635800^{date_num} {time}|fallback>", berlin)  # 2026-12-07 09:30 UTC
    assert ">2026-12-07 10:30 AM<" in shown and "fallback" not in shown


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        ("{date_short_pretty} {time}", "today 9:30 AM"),
        ("{date_pretty}", "today"),
        ("{date_short}", "Dec 7, 2026"),
        ("{date}", "December 7th, 2026"),
        ("{date_long}", "Monday, December 7th, 2026"),
        ("{time_secs}", "9:30:00 AM"),
        ("at {time}!", "at 9:30 AM!"),
    ],
)
def test_date_tokens(token, shown):
    assert f">{shown}<" in html(f"<!date^1796635800^{token}|x>")


def test_yesterday_and_ago():
    day_before = 1796635800 - 86400
    assert ">yesterday<" in html(f"<!date^{day_before}^{{date_pretty}}|x>")
    assert ">1 day ago<" in html(f"<!date^{day_before}^{{ago}}|x>")


def test_a_date_with_a_link_links():
    assert '<a class="date" href="https://example.com"' in html("<!date^1796635800^{date_num}^https://example.com|x>")


def test_a_bad_date_shows_its_fallback():
    assert html("<!date^soon^{date}|next week>") == "next week"


def test_emoji_short_codes_use_slacks_names():
    assert html(":large_green_circle: ok :white_check_mark: :+1::skin-tone-3:") == "🟢 ok ✅ 👍🏼"


def test_unknown_emoji_and_clock_times_stay_as_typed():
    assert html(":not_an_emoji: at 12:30:45") == ":not_an_emoji: at 12:30:45"


def test_escapes_are_shown_as_characters_and_escaped_again_for_the_page():
    assert html("&lt;label&gt; a &amp; b &nbsp;") == "&lt;label&gt; a &amp; b &amp;nbsp;"


def test_raw_markup_never_reaches_the_page():
    shown = html('<img src=x onerror="alert(1)"> "q" <b>x</b>')
    assert "<img" not in shown and "<b>x" not in shown


def test_plain_text_is_escaped_and_gets_emoji_unless_told_not_to():
    assert plain_html("<b> :tada:") == "&lt;b&gt; 🎉"
    assert text_object_html({"type": "plain_text", "text": ":tada: *x*", "emoji": False}, VIEWER) == ":tada: *x*"


def test_a_mrkdwn_text_object_is_formatted():
    assert text_object_html({"type": "mrkdwn", "text": "*x*"}, VIEWER) == "<b>x</b>"

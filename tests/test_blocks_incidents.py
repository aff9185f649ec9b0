"""Incident messages are pure data: check the JSON they build, and that Slack would accept it."""

from datetime import datetime, timedelta, timezone

import pytest

from blocks.incidents import (
    ACK,
    INVESTIGATE,
    RESOLVE,
    RESOLVED_COLOR,
    OPEN,
    RUNBOOK,
    SEVERITY_COLOR,
    SNOOZE,
    SOURCE_LINK,
    IncidentView,
    escalation_post,
    escalation_reply,
    format_mention,
    incident_id_from_block,
    incident_message,
    investigation_thread,
    severity_lowered_reply,
    snooze_minutes,
    status_reply,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
SENTRY_LINK = "https://sentry.io/organizations/acme/issues/42/"


def view(**overrides) -> IncidentView:
    base = dict(
        incident_id=42,
        title="DatabaseError: connection refused",
        description="psycopg.OperationalError: could not connect to server",
        source="sentry",
        service="api",
        env="prod",
        severity="critical",
        status="firing",
        count=100,
        first_seen=NOW - timedelta(minutes=20),
        last_seen=NOW - timedelta(minutes=1),
        link=SENTRY_LINK,
        now=NOW,
    )
    base.update(overrides)
    return IncidentView(**base)


def blocks_of(message: dict) -> list[dict]:
    """Every block as Slack shows them: the top-level ones, then the attachment's."""
    return message.get("blocks", []) + [b for a in message.get("attachments", []) for b in a["blocks"]]


def action_elements(message: dict) -> list[dict]:
    return [e for b in blocks_of(message) if b["type"] == "actions" for e in b["elements"]]


def action_ids(message: dict) -> list[str]:
    return [e["action_id"] for e in action_elements(message)]


def header(message: dict) -> str:
    return next(b["text"]["text"] for b in blocks_of(message) if b["type"] == "header")


def state_line(message: dict) -> str:
    state = [b for b in blocks_of(message) if b.get("block_id") == "incident_state"]
    return " · ".join(e["text"] for e in state[0]["elements"]) if state else ""


def fields(message: dict) -> dict[str, str]:
    facts = next(b for b in blocks_of(message) if b.get("block_id") == "incident_facts")
    return dict(f["text"].split("\n", 1) for f in facts["fields"])


def slack_limit_breaches(message: dict) -> list[str]:
    """Every limit Slack rejects a whole message for, checked on the JSON we would send."""
    breaches = []
    blocks = blocks_of(message)
    if len(blocks) > 50:
        breaches.append(f"{len(blocks)} blocks")
    for block in blocks:
        name = block.get("block_id", block["type"])
        if len(block.get("block_id", "")) > 255:
            breaches.append(f"{name}: block_id")
        text = block.get("text", {}).get("text", "")
        if block["type"] == "header" and len(text) > 150:
            breaches.append(f"{name}: header {len(text)}")
        if block["type"] == "section" and len(text) > 3000:
            breaches.append(f"{name}: section {len(text)}")
        if len(block.get("fields", [])) > 10 or any(len(f["text"]) > 2000 for f in block.get("fields", [])):
            breaches.append(f"{name}: fields")
        if block["type"] == "context" and (
            len(block["elements"]) > 10 or any(len(e["text"]) > 3000 for e in block["elements"])
        ):
            breaches.append(f"{name}: context")
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element["type"] == "button":
                if len(element["text"]["text"]) > 75 or len(element["value"]) > 2000:
                    breaches.append(f"{element['action_id']}: button")
                if len(element.get("url", "")) > 3000:
                    breaches.append(f"{element['action_id']}: url")
                confirm = element.get("confirm")
                if confirm and (len(confirm["title"]["text"]) > 100 or len(confirm["text"]["text"]) > 300):
                    breaches.append(f"{element['action_id']}: confirm")
            for option in element.get("options", []):
                if len(option["text"]["text"]) > 75 or len(option["value"]) > 150:
                    breaches.append(f"{element['action_id']}: option")
    return breaches


# --- the firing message ----------------------------------------------------------------------------


def test_a_firing_critical_incident_is_red_and_its_notification_carries_the_mention_and_title():
    message = incident_message(view(mention="<!here>"))
    assert message["attachments"][0]["color"] == SEVERITY_COLOR["critical"] == "#e01e5a"
    assert message["text"] == "<!here> :red_circle: [CRITICAL] DatabaseError: connection refused — api (prod)"


def test_without_a_mention_the_notification_starts_with_the_severity():
    assert incident_message(view(severity="medium"))["text"].startswith(":large_yellow_circle: [MEDIUM] DatabaseError")


def test_each_severity_has_its_own_colour():
    colours = {s: incident_message(view(severity=s))["attachments"][0]["color"] for s in SEVERITY_COLOR}
    assert len(set(colours.values())) == 5


def test_the_header_shows_emoji_severity_and_title():
    assert header(incident_message(view())) == ":red_circle: [CRITICAL] DatabaseError: connection refused"


def test_a_firing_incident_offers_ack_snooze_resolve_investigate_open_and_the_source_link():
    message = incident_message(view())
    assert action_ids(message) == [ACK, SNOOZE, RESOLVE, INVESTIGATE, OPEN, SOURCE_LINK]
    buttons = [e for e in action_elements(message) if e["type"] == "button"]
    assert {b["value"] for b in buttons} == {"42"}
    assert buttons[0]["style"] == "primary"


def test_resolve_is_red_and_asks_for_confirmation():
    resolve = next(e for e in action_elements(incident_message(view())) if e["action_id"] == RESOLVE)
    assert resolve["style"] == "danger"
    assert resolve["confirm"]["confirm"]["text"] == "Resolve"
    assert "DatabaseError" in resolve["confirm"]["text"]["text"]


def test_snooze_offers_the_four_durations_in_minutes():
    select = next(e for e in action_elements(incident_message(view())) if e["action_id"] == SNOOZE)
    assert [o["value"] for o in select["options"]] == ["snooze:30", "snooze:60", "snooze:240", "snooze:1440"]
    assert [o["text"]["text"] for o in select["options"]] == ["30 min", "1 hour", "4 hours", "24 hours"]


def test_the_snooze_select_can_find_its_incident_from_the_actions_block():
    actions = next(b for b in blocks_of(incident_message(view())) if b["type"] == "actions")
    assert incident_id_from_block(actions["block_id"]) == 42
    assert incident_id_from_block("incident_facts") is None


def test_snooze_values_read_back_only_for_offered_durations():
    assert snooze_minutes("snooze:240") == 240
    assert snooze_minutes("snooze:7") is None
    assert snooze_minutes("42") is None


def test_the_source_link_button_is_named_after_the_source():
    link = next(e for e in action_elements(incident_message(view())) if e["action_id"] == SOURCE_LINK)
    assert link["text"]["text"] == "Open in Sentry" and link["url"] == SENTRY_LINK
    github = incident_message(view(source="github", link="https://github.com/acme/api/actions/runs/9"))
    assert "Open in GitHub" in str(action_elements(github))


def test_a_runbook_url_adds_a_runbook_button():
    message = incident_message(view(runbook_url="https://wiki.example.com/runbooks/db"))
    runbook = next(e for e in action_elements(message) if e["action_id"] == RUNBOOK)
    assert runbook["url"] == "https://wiki.example.com/runbooks/db" and runbook["value"] == "42"


def test_a_link_slack_would_reject_gets_no_button():
    assert SOURCE_LINK not in action_ids(incident_message(view(link="javascript:alert(1)")))
    assert SOURCE_LINK not in action_ids(incident_message(view(link="https://x.example/" + "a" * 3000)))


def test_the_facts_show_service_env_source_count_and_slack_dates():
    facts = fields(incident_message(view()))
    assert facts["*Service*"] == "api" and facts["*Env*"] == "prod" and facts["*Source*"] == "Sentry"
    assert facts["*Count*"] == "×100"
    first_seen = int((NOW - timedelta(minutes=20)).timestamp())
    assert facts["*First seen*"] == f"<!date^{first_seen}^{{date_short_pretty}} {{time}}|2026-03-02T09:40:00Z>"


def test_an_incident_without_service_or_env_leaves_them_out():
    message = incident_message(view(service="", env=""))
    assert "*Service*" not in fields(message) and "*Env*" not in fields(message)
    assert message["text"] == ":red_circle: [CRITICAL] DatabaseError: connection refused"


def test_a_long_description_is_cut_to_about_500_characters():
    message = incident_message(view(description="x" * 2000))
    description = next(b for b in blocks_of(message) if b.get("block_id") == "incident_description")
    assert len(description["text"]["text"]) == 500 and description["text"]["text"].endswith("…")


# --- state notes -----------------------------------------------------------------------------------


def test_an_acked_incident_says_who_and_loses_its_ack_button():
    message = incident_message(view(acked_by="U0BOB", acked_at=NOW - timedelta(minutes=5)))
    assert state_line(message).startswith(":eyes: Acked by <@U0BOB> at <!date^")
    assert action_ids(message) == [SNOOZE, RESOLVE, INVESTIGATE, OPEN, SOURCE_LINK]


def test_a_snooze_is_shown_while_it_lasts():
    message = incident_message(view(snoozed_by="U0BOB", snoozed_until=NOW + timedelta(hours=1)))
    assert "Snoozed by <@U0BOB> until <!date^" in state_line(message)


def test_a_lapsed_snooze_is_not_shown():
    message = incident_message(view(snoozed_by="U0BOB", snoozed_until=NOW - timedelta(minutes=1)))
    assert "Snoozed" not in state_line(message)


def test_short_user_ids_are_mentioned_too():
    assert "Acked by <@U1>" in state_line(incident_message(view(acked_by="U1")))


def test_an_investigated_incident_names_the_investigator_and_loses_its_investigate_button():
    message = incident_message(view(investigator="U0ANN"))
    assert ":mag: Investigating: <@U0ANN>" in state_line(message)
    assert INVESTIGATE not in action_ids(message)


def test_a_spike_reopen_and_escalation_are_noted():
    line = state_line(incident_message(view(spiked=True, reopened_count=2, escalation_level=1)))
    assert "Severity raised: prod spike" in line and "Reopened ×2" in line and "Escalated ×1" in line


def test_a_quiet_firing_incident_has_no_state_line():
    assert state_line(incident_message(view())) == ""


# --- resolved --------------------------------------------------------------------------------------


def test_a_resolved_incident_is_green_without_buttons_but_keeps_open_and_the_links():
    message = incident_message(
        view(status="resolved", resolved_by="U0BOB", resolved_at=NOW, resolve_reason="user",
             runbook_url="https://wiki.example.com/runbooks/db")
    )
    assert message["attachments"][0]["color"] == RESOLVED_COLOR
    assert action_ids(message) == [OPEN, RUNBOOK, SOURCE_LINK]
    assert header(message) == ":white_check_mark: Resolved: [CRITICAL] DatabaseError: connection refused"
    assert state_line(message).startswith(":white_check_mark: Resolved by <@U0BOB> at <!date^")


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("source", "Resolved by the source"),
        ("auto_close", "Auto-closed after no repeats"),
        ("expired", "Closed: superseded by a new incident"),
    ],
)
def test_an_automatic_resolve_says_why(reason, said):
    assert said in state_line(incident_message(view(status="resolved", resolve_reason=reason)))


def test_a_resolved_incident_keeps_who_acked_on_the_record():
    message = incident_message(view(status="resolved", resolve_reason="source", acked_by="U0BOB"))
    assert "Acked by <@U0BOB>" in state_line(message)


def test_a_resolved_incident_without_links_offers_only_open():
    message = incident_message(view(status="resolved", resolve_reason="source", link=None))
    assert action_ids(message) == [OPEN]


def test_block_ids_stay_the_same_across_updates():
    firing = incident_message(view(description="boom"))
    acked = incident_message(view(description="boom", acked_by="U0BOB", count=250, last_seen=NOW))
    ids = lambda m: [b["block_id"] for b in blocks_of(m) if b["block_id"] != "incident_state"]  # noqa: E731
    assert ids(firing) == ids(acked)


# --- safety and limits -----------------------------------------------------------------------------


def mrkdwn_texts(value) -> list[str]:
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" else []
        return own + [t for v in value.values() for t in mrkdwn_texts(v)]
    return [t for v in value for t in mrkdwn_texts(v)] if isinstance(value, list) else []


def test_alert_text_cannot_ping_a_channel():
    message = incident_message(view(title="<!channel> down", description="<!everyone> & <@U1>", service="<!here>"))
    parsed = " ".join([message["text"], *mrkdwn_texts(message)])
    assert "<!channel>" not in parsed and "<!everyone>" not in parsed and "<!here>" not in parsed
    assert "&lt;!channel&gt; down" in message["text"]
    assert header(message) == ":red_circle: [CRITICAL] <!channel> down", "plain_text is shown as typed, never parsed"


def test_titles_longer_than_slack_allows_are_cut():
    message = incident_message(view(title="T" * 500))
    assert len(header(message)) == 150 and header(message).endswith("…")
    assert len(message["text"]) < 250


def test_an_incident_made_of_extremes_stays_within_every_slack_limit():
    huge = view(
        title="<" * 5000, description="<&>" * 5000, service="s" * 5000, env="e" * 5000, count=10**9,
        acked_by="U0BOB", acked_at=NOW, snoozed_by="U0BOB", snoozed_until=NOW + timedelta(days=1),
        investigator="U0ANN", spiked=True, reopened_count=99, escalation_level=9,
        runbook_url="https://wiki.example.com/" + "r" * 2900, link="https://sentry.io/" + "l" * 2900,
        mention="<!subteam^S0ONCALL>",
    )
    assert slack_limit_breaches(incident_message(huge)) == []
    assert slack_limit_breaches(incident_message(view(title="<" * 5000, status="resolved"))) == []
    assert slack_limit_breaches(escalation_post(huge, "<!subteam^S0ONCALL>", 3, "https://acme.slack.com/archives/C1/p1")) == []


# --- investigation thread --------------------------------------------------------------------------


def occurrence(minutes_ago: int, status: str = "firing") -> dict:
    return {
        "received_at": NOW - timedelta(minutes=minutes_ago),
        "status": status,
        "title": f"DatabaseError #{minutes_ago}",
        "description": "could not connect",
    }


def occurrence_lines(reply: dict) -> list[str]:
    section = next(b for b in reply["blocks"] if b["block_id"] == "investigation_occurrences")
    return section["text"]["text"].split("\n")[1:]


def test_the_investigation_thread_says_who_is_investigating():
    reply = investigation_thread(view(), [], "U0ANN")
    assert reply["text"] == "<@U0ANN> is investigating: DatabaseError: connection refused"
    assert reply["blocks"][0]["text"]["text"].startswith(":mag: <@U0ANN> is investigating")


def test_the_investigation_thread_shows_the_full_description_up_to_2500_characters():
    reply = investigation_thread(view(description="d" * 2400), [], "U0ANN")
    description = next(b for b in reply["blocks"] if b["block_id"] == "investigation_description")
    assert description["text"]["text"] == "d" * 2400
    longer = investigation_thread(view(description="d" * 9000), [], "U0ANN")
    assert len(next(b for b in longer["blocks"] if b["block_id"] == "investigation_description")["text"]["text"]) == 2500


def test_the_investigation_thread_shows_at_most_ten_occurrences_newest_first():
    reply = investigation_thread(view(), [occurrence(m) for m in range(1, 16)], "U0ANN")
    lines = occurrence_lines(reply)
    assert len(lines) == 11
    assert "DatabaseError #1 " in lines[0] + " " and "DatabaseError #10 " in lines[9] + " "
    assert lines[-1] == "…and 5 earlier"


def test_occurrences_given_oldest_first_are_still_shown_newest_first():
    reply = investigation_thread(view(), [occurrence(30, "resolved"), occurrence(2)], "U0ANN")
    lines = occurrence_lines(reply)
    assert "#2" in lines[0] and ":white_check_mark: resolved" in lines[1]


def test_the_investigation_thread_lists_labels_and_the_link():
    reply = investigation_thread(view(), [], "U0ANN", labels={"region": "eu", "alertname": "DBDown"})
    text = str(reply["blocks"])
    assert "`alertname=DBDown` `region=eu`" in text
    assert f"<{SENTRY_LINK}|Open in Sentry>" in text


def test_the_investigation_thread_leaves_out_labels_with_empty_values():
    reply = investigation_thread(view(), [], "U0ANN", labels={"env": "", "service": "  ", "team": "payments"})
    labels = next(b for b in reply["blocks"] if b["block_id"] == "investigation_labels")["text"]["text"]
    assert labels == "*Labels* `team=payments`"


def test_the_investigation_thread_has_no_labels_section_when_every_label_is_empty():
    reply = investigation_thread(view(), [], "U0ANN", labels={"env": "", "service": ""})
    assert "investigation_labels" not in [b.get("block_id") for b in reply["blocks"]]


def test_a_huge_investigation_thread_stays_within_slack_limits():
    occurrences = [dict(occurrence(m), title="<" * 900, description="&" * 900) for m in range(40)]
    labels = {f"k{i}" + "<" * 50: ">" * 200 for i in range(200)}
    reply = investigation_thread(view(description="<" * 9000, title="<" * 900), occurrences, "U0ANN", labels=labels)
    assert slack_limit_breaches(reply) == []
    assert "more" in next(b for b in reply["blocks"] if b["block_id"] == "investigation_labels")["text"]["text"]


# --- escalations and plain replies -----------------------------------------------------------------


def test_the_escalation_reply_names_the_target_the_wait_and_the_level():
    reply = escalation_reply(view(), "<!subteam^S0ONCALL>", level=2, levels=3, after_minutes=15)
    assert reply == {"text": ":rotating_light: <!subteam^S0ONCALL> — not acknowledged after 15 min (escalation 2/3)"}


def test_the_escalation_post_pings_the_target_links_the_thread_and_can_be_acked_there():
    post = escalation_post(view(), "<@U0LEAD>", 1, "https://acme.slack.com/archives/C1/p1700000000000100")
    assert post["text"] == (
        "<@U0LEAD> :rotating_light: Escalation (level 1): DatabaseError: connection refused has not been acknowledged"
    )
    assert "<https://acme.slack.com/archives/C1/p1700000000000100|View the incident thread>" in str(post["blocks"])
    assert action_ids(post) == action_ids(incident_message(view()))
    assert {e["value"] for e in action_elements(post) if e["type"] == "button"} == {"42"}


def test_an_escalation_post_of_a_resolved_incident_says_so_and_offers_no_ack_or_resolve():
    post = escalation_post(
        view(status="resolved", resolved_by="U0BOB", resolved_at=NOW, resolve_reason="user"), "<@U0LEAD>", 1, None
    )
    assert "is resolved" in post["text"] and "not been acknowledged" not in str(post)
    assert "Resolved by <@U0BOB>" in str(post["blocks"])
    assert not {ACK, RESOLVE, INVESTIGATE} & set(action_ids(post))


def test_an_escalation_post_of_an_acked_incident_names_the_acker_and_drops_the_ack_button():
    post = escalation_post(view(acked_by="U0BOB", acked_at=NOW), "<@U0LEAD>", 2, None)
    assert "was acknowledged by <@U0BOB>" in str(post["blocks"]) and "not been acknowledged" not in str(post)
    assert ACK not in action_ids(post) and RESOLVE in action_ids(post)


def test_an_escalation_post_of_a_snoozed_incident_says_it_is_snoozed():
    post = escalation_post(view(snoozed_by="U0BOB", snoozed_until=NOW + timedelta(hours=1)), "<@U0LEAD>", 1, None)
    assert "is snoozed" in post["text"] and ":zzz: Snoozed by <@U0BOB>" in str(post["blocks"])


def test_the_escalation_post_without_a_permalink_has_no_thread_link():
    assert "View the incident thread" not in str(escalation_post(view(), "<@U0LEAD>", 1, None))


def test_a_status_reply_is_plain_text():
    assert status_reply("Resolved by the source") == {"text": "Resolved by the source"}


def test_a_lowered_severity_reply_says_from_what_to_what_and_that_the_source_said_so():
    reply = severity_lowered_reply("critical", "medium", source="sentry")
    assert reply == {"text": ":arrow_down: Severity lowered [CRITICAL] → [MEDIUM]: the latest alert from Sentry"}


@pytest.mark.parametrize(
    ("target", "formatted"),
    [
        ("@here", "<!here>"),
        ("@channel", "<!channel>"),
        ("U0BOB", "<@U0BOB>"),
        ("W0BOB", "<@W0BOB>"),
        ("U1", "<@U1>"),
        ("S0ONCALL", "<!subteam^S0ONCALL>"),
        ("<@U0BOB>", "<@U0BOB>"),
        ("<!subteam^S0ONCALL>", "<!subteam^S0ONCALL>"),
        (None, None),
        ("", None),
    ],
)
def test_format_mention(target, formatted):
    assert format_mention(target) == formatted


def test_an_unrecognised_mention_is_shown_but_never_obeyed():
    assert format_mention("bob <!channel") == "bob &lt;!channel"


def test_the_headline_is_a_top_level_block_and_not_repeated_beside_the_colour_bar():
    # Slack shows `text` only when a message has no top-level blocks: text plus an attachment that
    # repeated the headline was read twice.
    message = incident_message(view(mention="<!here>"))
    assert [b["type"] for b in message["blocks"]] == ["section", "header"]
    assert message["blocks"][0]["text"]["text"] == "<!here>"  # in a block, so it still notifies
    assert all(b["type"] != "header" for b in message["attachments"][0]["blocks"])


def test_a_heartbeat_incident_offers_pause_monitoring_with_a_confirmation_naming_the_app():
    from blocks.incidents import PAUSE_MONITORING, PauseOffer

    offer = PauseOffer(app_id=7, app_name="<nightly>-backup")
    [pause] = [e for e in action_elements(incident_message(view(source="heartbeat", pause=offer))) if e["action_id"] == PAUSE_MONITORING]
    assert pause["value"] == "7" and "&lt;nightly&gt;-backup" in pause["confirm"]["text"]["text"]
    resolved = incident_message(view(source="heartbeat", pause=offer, status="resolved", resolved_at=NOW))
    assert PAUSE_MONITORING not in [e["action_id"] for e in action_elements(resolved)], "nothing to pause once resolved"
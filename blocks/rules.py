"""Block Kit for alert routing rules: the `/pulser rules` list and the add/edit modal.

Pure functions over plain values. The handler words each rule (conditions and actions come from
`alerts.routing.describe_*`, already mrkdwn-safe) and passes the domain's severities and source
names in, so nothing here knows the domain. Names people typed go through `escape`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping, Sequence

from blocks.applications import escape
from blocks.kit import channel_ref, context as _context, count_noun, plain as _plain, section as _section, text_input

# --- ids: Bolt routes on these, tests and the handler read forms by them ---------------------------

ADD_CALLBACK = "routing_rule_add"
EDIT_CALLBACK = "routing_rule_edit"

ADD = "rules_add"
EDIT = "rules_edit"
DELETE = "rules_delete"
MOVE_UP = "rules_move_up"
MOVE_DOWN = "rules_move_down"

# Each input's block id (and action id) is the validator's field name, so errors map straight on.
TEXT_FIELDS = (
    "name",
    "envs",
    "services",
    "sources",
    "tags",
    "channel",
    "mention",
    "escalate_after_minutes",
    "escalate_to",
    "escalation_levels",
    "runbook_url",
    "auto_close_minutes",
    "storm_threshold",
    "group_by",
    "escalation_policy",
)
SELECT_FIELDS = ("min_severity", "mention_min_severity")
CHECKBOX_FIELDS = ("continue_matching",)
ANY_SEVERITY = "any"  # the min-severity option for "no condition"; Slack options need a value
CONTINUE_OPTION = "continue"

MAX_MESSAGE_BLOCKS = 50  # Slack rejects a message with more
NAME_MAX = 80


@dataclass(frozen=True)
class RuleLine:
    """One rule as the list shows it: conditions and actions are mrkdwn-ready, the name is not."""

    id: int
    position: int
    name: str
    conditions: str
    actions: str
    managed: bool = False  # defined by the configuration file: read-only here


def _button(text: str, action_id: str, value: str, style: str | None = None, confirm: dict | None = None) -> dict:
    button: dict[str, Any] = {"type": "button", "text": _plain(text), "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


# --- the list ------------------------------------------------------------------------------------


def delete_confirm(name: str) -> dict:
    """Slack's own "are you sure" dialog; plain text, so the name needs no escaping."""
    return {
        "title": _plain("Delete this rule?"),
        "text": _plain(f"Delete “{name}”? Alerts it matched go to the rules below it, or to the default channel."),
        "confirm": _plain("Delete"),
        "deny": _plain("Cancel"),
        "style": "danger",
    }


def _rule_blocks(rule: RuleLine, total: int) -> list[dict]:
    text = f"*{rule.position}. {escape(rule.name)}*\nWhen {rule.conditions}\n{rule.actions}"
    if rule.managed:
        # Edit, Move and Delete would be refused: the file is where this rule changes.
        text += "\n:lock: _Managed by the config file (`PULSER_CONFIG`): change it there._"
        return [_section(text, f"rule_{rule.id}")]
    buttons = [_button("Edit", EDIT, str(rule.id))]
    if rule.position > 1:
        buttons.append(_button("Move up", MOVE_UP, str(rule.id)))
    if rule.position < total:
        buttons.append(_button("Move down", MOVE_DOWN, str(rule.id)))
    buttons.append(_button("Delete", DELETE, str(rule.id), style="danger", confirm=delete_confirm(rule.name)))
    return [
        _section(text, f"rule_{rule.id}"),
        {"type": "actions", "block_id": f"rule_actions_{rule.id}", "elements": buttons},
    ]


def change_notice(change: str, name: str = "", position: int | None = None) -> str:
    """One line on top of a refreshed list saying what just happened (mrkdwn, name escaped)."""
    name = escape(name)
    return {
        "added": f"➕ Added *{name}* at position {position}.",
        "updated": f"✏️ Updated *{name}*.",
        "deleted": f"🗑️ Deleted *{name}*; the rules below it moved up.",
        "moved": f"↕️ Moved *{name}* to position {position}.",
        "missing": "That rule no longer exists; here is the current list.",
    }[change]


def rules_list(
    rules: Sequence[RuleLine],
    *,
    default_channel: str,
    notice: str | None = None,
    max_blocks: int = MAX_MESSAGE_BLOCKS,
) -> dict:
    """The ephemeral `/pulser rules` answer: rules in evaluation order, then the default route.

    Each rule takes two blocks (text, buttons); a list longer than Slack's block limit is cut and
    says how many it left out. `notice` is mrkdwn (see `change_notice`) shown on top.
    """
    ordered = sorted(rules, key=lambda r: r.position)
    total = len(ordered)
    head: list[dict] = [_context(notice)] if notice else []
    if ordered:
        summary = (
            f"*Routing rules* · {total}, checked top to bottom: the first rule that matches an alert "
            "decides where it goes, unless it says *then keep matching*."
        )
    else:
        summary = "*Routing rules* · none yet: every alert goes to the default channel."
    head.append(_section(summary, "rules_header"))
    tail = [
        _section(
            f"*Default* · when no rule matches → {channel_ref(default_channel)}, no mention, no escalation",
            "rule_default",
        ),
        {"type": "actions", "block_id": "rules_add", "elements": [_button("Add rule", ADD, "add", style="primary")]},
    ]
    room = (max_blocks - len(head) - len(tail) - 1) // 2  # one block stays free for the footer
    shown = ordered[:room]
    body = [block for rule in shown for block in _rule_blocks(rule, total)]
    footer = "Only Pulser admins add, edit, move or delete rules; anyone can list them."
    if total > len(shown):
        footer = f"…and {total - len(shown)} more not shown; `GET /api/rules` lists them all. " + footer
    text = f"{count_noun(total, 'routing rule')}; alerts no rule matches go to {channel_ref(default_channel)}"
    return {"response_type": "ephemeral", "text": text, "blocks": head + body + tail + [_context(footer)]}


def admin_only(action: str) -> dict:
    """A polite ephemeral no that says who *can*; `action` reads like 'change routing rules'."""
    return {
        "response_type": "ephemeral",
        "text": f":lock: Only Pulser admins can {action}: workspace admins/owners or users listed in "
        "PULSER_ADMINS. Anyone can see the rules with `/pulser rules`.",
    }


# --- the add / edit modal ------------------------------------------------------------------------


# Every rule field but the name and the channel may be left empty.
_text_input = partial(text_input, optional=True)


def _option(text: str, value: str) -> dict:
    return {"text": _plain(text), "value": value}


def _severity_select(
    field: str, label: str, severities: Sequence[str], initial: str, *, with_any: bool, hint: str
) -> dict:
    options = [_option("Any severity", ANY_SEVERITY)] if with_any else []
    options += [_option(s if s == severities[-1] else f"{s} or higher", s) for s in severities]
    chosen = next(o for o in options if o["value"] == initial)
    return {
        "type": "input",
        "block_id": field,
        "label": _plain(label),
        "optional": False,
        "hint": _plain(hint),
        "element": {"type": "static_select", "action_id": field, "options": options, "initial_option": chosen},
    }


def _continue_checkbox(checked: bool) -> dict:
    option = _option("Keep matching the rules below (the alert also goes to their channels)", CONTINUE_OPTION)
    element: dict[str, Any] = {"type": "checkboxes", "action_id": "continue_matching", "options": [option]}
    if checked:
        element["initial_options"] = [option]
    return {"type": "input", "block_id": "continue_matching", "label": _plain("After a match"), "optional": True,
            "element": element}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def rule_modal(
    *,
    metadata: Mapping[str, Any],
    severities: Sequence[str],
    source_names: Sequence[str],
    rule: Any = None,
    policy_name: str | None = None,
) -> dict:
    """The form, empty (add) or filled with `rule` (anything with the rule's editable fields) and
    the name of the escalation policy it names. `metadata` (where the list was, which rule) rides
    along in private_metadata."""
    editing = rule is not None

    def current(field: str) -> str:
        return _text(getattr(rule, field)) if editing else ""

    tags = ", ".join(f"{k}={v}" for k, v in (rule.tags.items() if editing else ()))
    blocks = [
        _text_input("name", "Name", initial=current("name"), placeholder="API errors in production",
                    optional=False, max_length=NAME_MAX, hint="Up to 80 characters; the list shows it."),
        _context("*When* an alert matches all of these (leave a field empty to match anything):"),
        _text_input("envs", "Environments", initial=", ".join(rule.envs) if editing else "",
                    placeholder="production, staging", hint="Comma-separated; prod means production."),
        _severity_select("min_severity", "Severity", severities,
                         (rule.min_severity or ANY_SEVERITY) if editing else ANY_SEVERITY, with_any=True,
                         hint="The incident's severity, after a spike bumped it."),
        _text_input("services", "Services", initial=", ".join(rule.services) if editing else "",
                    placeholder="api, billing",
                    hint="Sentry project, Alertmanager service or job, GitHub repository; comma-separated."),
        _text_input("sources", "Sources", initial=", ".join(rule.sources) if editing else "",
                    placeholder=", ".join(source_names[:2]), hint=f"Any of {', '.join(source_names)}."),
        _text_input("tags", "Tags", initial=tags, placeholder="team=payments, region=eu",
                    hint="key=value pairs; the alert must carry every one (Alertmanager labels, Sentry tags)."),
        _continue_checkbox(bool(editing and rule.continue_matching)),
        _context("*Then* post it here:"),
        _text_input("channel", "Channel", initial=current("channel"), placeholder="#api-alerts",
                    optional=False, hint="#name or a channel ID like C012ABCDEF; invite Pulser to private channels."),
        _text_input("mention", "Mention", initial=current("mention"), placeholder="@here",
                    hint="@here, @channel, a user ID (U…) or a user-group ID (S…). Empty: nobody."),
        _severity_select("mention_min_severity", "Mention from", severities,
                         rule.mention_min_severity if editing else "high", with_any=False,
                         hint="Quieter incidents are posted without the mention."),
        _text_input("escalate_after_minutes", "Escalate after (minutes)",
                    initial=current("escalate_after_minutes"), placeholder="15",
                    hint="When nobody acks: 15, 90, 2h; 1 minute to 7 days. Empty: never."),
        _text_input("escalate_to", "Escalate to", initial=current("escalate_to"), placeholder="U012ABCDEF",
                    hint="A user ID (U…) or a user-group ID (S…)."),
        _text_input("escalation_levels", "Escalations", initial=current("escalation_levels") or "1",
                    placeholder="1", hint="How many times to escalate while nobody acks, 1–10."),
        _text_input("runbook_url", "Runbook link", initial=current("runbook_url"),
                    placeholder="https://wiki.example.com/runbooks/api"),
        _text_input("auto_close_minutes", "Auto-close after (minutes)", initial=current("auto_close_minutes"),
                    placeholder="240", hint="Resolve when quiet this long: 60, 4h, 1d; up to 30 days. Empty: never."),
        _text_input("storm_threshold", "Storm digest after (new incidents a minute)", initial=current("storm_threshold"),
                    placeholder="4", hint="More new incidents a minute than this fold into one digest message. "
                    "0: never fold. Empty: Pulser's default."),
        _text_input("group_by", "Group by labels", initial=", ".join(rule.group_by) if editing else "",
                    placeholder="alertname, service", hint="Alerts sharing these labels' values are one incident "
                    "that lists them and resolves when all have. Empty: one incident per problem."),
        _text_input("escalation_policy", "Escalation policy", initial=policy_name or "", placeholder="Monitoring L1-L3",
                    hint="Who is paged, how and when, until somebody acks: a policy's name from /pulser escalation. "
                    "Empty: none."),
    ]
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK if editing else ADD_CALLBACK,
        "title": _plain("Edit routing rule" if editing else "Add routing rule"),
        "submit": _plain("Save" if editing else "Add"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps(dict(metadata), separators=(",", ":")),
        "blocks": blocks,
    }


def submitted_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """A submitted form's `view.state.values` by validator field: text (None when empty), the
    selects' values, the checkbox as a bool."""
    def action(field: str) -> dict:
        actions = values.get(field) or {}
        return actions.get(field) or next(iter(actions.values()), None) or {}

    out: dict[str, Any] = {}
    for field in TEXT_FIELDS:
        raw = action(field).get("value")
        if raw is not None and field != "name":  # the validator trims names and says when one is blank
            raw = raw.strip() or None
        out[field] = raw
    for field in SELECT_FIELDS:
        out[field] = (action(field).get("selected_option") or {}).get("value")
    for field in CHECKBOX_FIELDS:
        out[field] = bool(action(field).get("selected_options"))
    return out


def form_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """Validator errors keyed by the blocks that show them; a field without a block lands on name."""
    known = set(TEXT_FIELDS) | set(SELECT_FIELDS) | set(CHECKBOX_FIELDS)
    out: dict[str, str] = {}
    for field, message in errors.items():
        field = "escalation_policy" if field == "escalation_policy_id" else field
        block = field if field in known else "name"
        out[block] = f"{out[block]} {message}" if block in out else message
    return out

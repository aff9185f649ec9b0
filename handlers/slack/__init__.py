"""Slack listeners (commands, actions, views, events), registered on the Bolt app by `register_all`."""

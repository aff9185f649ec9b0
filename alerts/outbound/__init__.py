"""Everything Pulser sends to Slack, from the database outboxes to the Web API."""

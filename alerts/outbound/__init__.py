"""Everything Pulser sends to Slack, from the database outboxes to the Web API.

How a message travels: whatever decides that Slack must be told (the alert pipeline — which the
heartbeat watcher and writer feed too —, a click) commits an outbox row in the transaction of its state change —
`incident_messages` (and, in a storm, the channel's `storm_digests` row instead), `notifications`,
`platform_events`. One sender per outbox (`incidents`, `events`, each an
`OutboxLoop` woken by NOTIFY) claims due rows, most severe first, naming itself as the claimer
(`storage.workers`: a dead claimer's rows are taken over within seconds), renders the row's
current state and calls Slack through `slack.SlackDelivery` or the app client. Both use the
process's one HTTP session (`paced_session`), which spends from Slack's rate limits kept in
Postgres (`budget`) before each call; a call over budget is rescheduled in the database, never
slept on by an outbox. The answer is recorded on the row: its `ts`, or when to try again and why.
"""

-- Missed and failed heartbeats are incidents now (source `heartbeat`): the watcher and the heartbeat
-- writer ingest them through the alert pipeline in the transaction that marks the app down or up,
-- and the incident notifier delivers them like every incident. Their old path is gone.
--
-- The `notifications` table stays: incident thread replies and one-off posts (escalations, notes,
-- recoveries, "cannot post in #x") still go through it, and /health, GET /api/delivery and the
-- App Home's "last Slack delivery" read its counts. Only its heartbeat rows go:
--
-- * Heartbeat alerts still pending at upgrade are dropped, not delivered: nothing renders them any
--   more. An app that is down at upgrade stays down (its state is untouched) and is shown as such
--   in /pulser apps; its old alert message stays as it is, and its recovery resolves no incident.
--   Its next outage opens an incident.
-- * Delivered heartbeat alerts were kept only so a recovery could edit them in place; an incident
--   does that now, so they go too.
DELETE FROM notifications WHERE kind IN ('heartbeat_down', 'heartbeat_fail', 'heartbeat_recovered');

-- The Slack address of an app's current outage message: the incident's messages hold it now.
ALTER TABLE applications DROP COLUMN IF EXISTS alert_channel, DROP COLUMN IF EXISTS alert_ts;

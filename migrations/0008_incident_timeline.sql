-- The incident timeline: what the database did not keep yet.
--
-- Already kept: every occurrence (alert_occurrences, the newest 50 per incident and, from now on,
-- the first one too), every click and system action (audit_log, target 'incident:<id>'), thread
-- replies (notifications.incident_id), the posted and escalation messages (incident_messages).
-- Missing: notes people add to an incident, and an index for listing occurrences by time.

CREATE TABLE incident_notes (
    id          bigserial   PRIMARY KEY,
    incident_id bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    author      text        NOT NULL,  -- a Slack user ID, or 'api'
    text        text        NOT NULL CHECK (char_length(text) BETWEEN 1 AND 3000),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX incident_notes_incident_idx ON incident_notes (incident_id, id);

-- The inbox and the API list incidents newest first and filter by when they were last seen.
CREATE INDEX incidents_last_seen_idx ON incidents (last_seen DESC);

-- An escalation post (the fresh channel message that pages the next person) is a message of its
-- incident like the routed one: rendered from the incident's current state by the same outbox, so
-- an incident acked or resolved after it escalated never leaves a post that still says "not
-- acknowledged" with live buttons. `escalation_of` is the routed message it escalates; routed
-- messages stay one per channel, escalation posts may be several.

ALTER TABLE incident_messages
    ADD COLUMN escalation_of bigint REFERENCES incident_messages (id) ON DELETE CASCADE;

ALTER TABLE incident_messages DROP CONSTRAINT incident_messages_channel_key;

CREATE UNIQUE INDEX incident_messages_channel_key ON incident_messages (incident_id, channel)
    WHERE escalation_of IS NULL;

-- group_by on routing rules, with Alertmanager's meaning: alerts a rule matches that share the
-- values of the listed labels are one incident, which lists its member alerts (each firing or
-- resolved) and resolves when all of them have.

ALTER TABLE routing_rules ADD COLUMN group_by text[] NOT NULL DEFAULT '{}';

CREATE TABLE incident_members (
    incident_id bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    member_key  text        NOT NULL,  -- the alert's own key: source, service, env, fingerprint
    title       text        NOT NULL,
    service     text        NOT NULL,
    env         text        NOT NULL,
    severity    text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    count       integer     NOT NULL DEFAULT 1,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (incident_id, member_key)
);

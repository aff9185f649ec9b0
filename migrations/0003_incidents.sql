-- The alert pipeline: routing rules, incidents (alert groups) and their Slack messages,
-- occurrences, silences, inhibition rules and the Slack delivery log.

-- Ordered routing rules. Empty arrays / NULL conditions match anything.
CREATE TABLE routing_rules (
    id                     bigserial   PRIMARY KEY,
    position               integer     NOT NULL,
    name                   text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 80),
    envs                   text[]      NOT NULL DEFAULT '{}',
    min_severity           text        CHECK (min_severity IN ('info', 'low', 'medium', 'high', 'critical')),
    services               text[]      NOT NULL DEFAULT '{}',
    sources                text[]      NOT NULL DEFAULT '{}',
    tags                   jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- {"key": "value"}: all must match
    continue_matching      boolean     NOT NULL DEFAULT false,
    channel                text        NOT NULL,
    mention                text,       -- '@here', '@channel', a user ID 'U…' or a user-group ID 'S…'
    mention_min_severity   text        NOT NULL DEFAULT 'high'
                           CHECK (mention_min_severity IN ('info', 'low', 'medium', 'high', 'critical')),
    escalate_after_minutes integer     CHECK (escalate_after_minutes BETWEEN 1 AND 10080),
    escalate_to            text,       -- a user ID 'U…' or a user-group ID 'S…'
    escalation_levels      integer     NOT NULL DEFAULT 1 CHECK (escalation_levels BETWEEN 1 AND 10),
    runbook_url            text,
    auto_close_minutes     integer     CHECK (auto_close_minutes BETWEEN 1 AND 43200),
    created_by             text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT routing_rules_position_key UNIQUE (position) DEFERRABLE INITIALLY DEFERRED
);

-- An incident is one alert group: every occurrence with the same group_key inside the window.
CREATE TABLE incidents (
    id                 bigserial   PRIMARY KEY,
    group_key          text        NOT NULL,
    source             text        NOT NULL,
    service            text        NOT NULL,
    env                text        NOT NULL,
    fingerprint        text        NOT NULL,
    title              text        NOT NULL,
    description        text        NOT NULL DEFAULT '',
    link               text,
    labels             jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- what silences and inhibition match
    source_severity    text        NOT NULL,  -- the highest severity the source reported
    severity           text        NOT NULL,  -- effective: source severity, bumped once on a prod spike
    status             text        NOT NULL DEFAULT 'firing' CHECK (status IN ('firing', 'resolved')),
    version            integer     NOT NULL DEFAULT 1,  -- bumped on every change a message shows
    count              integer     NOT NULL DEFAULT 1,
    first_seen         timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL,
    spike_window_start timestamptz NOT NULL,
    spike_window_count integer     NOT NULL DEFAULT 1,
    spiked_at          timestamptz,
    last_alert         jsonb       NOT NULL,
    suppressed_by      text,       -- 'silence:<id>' / 'inhibition:<id>' while held back from Slack
    acked_by           text,
    acked_at           timestamptz,
    snoozed_by         text,
    snoozed_until      timestamptz,
    investigator       text,
    investigating_at   timestamptz,
    resolved_by        text,
    resolved_at        timestamptz,
    resolve_reason     text        CHECK (resolve_reason IN ('source', 'user', 'auto_close', 'expired')),
    reopened_count     integer     NOT NULL DEFAULT 0,
    auto_close_minutes integer,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- One open incident per key, enforced here so that concurrent workers cannot open two.
CREATE UNIQUE INDEX incidents_one_firing_per_key ON incidents (group_key) WHERE status = 'firing';
CREATE INDEX incidents_key_idx ON incidents (group_key, id DESC);
CREATE INDEX incidents_firing_labels_idx ON incidents USING gin (labels) WHERE status = 'firing';
CREATE INDEX incidents_auto_close_idx ON incidents (last_seen)
    WHERE status = 'firing' AND auto_close_minutes IS NOT NULL;
CREATE INDEX incidents_suppressed_idx ON incidents (id) WHERE status = 'firing' AND suppressed_by IS NOT NULL;

-- One Slack message per incident per matched route. render_due_at is the outbox: when set, the
-- message must be posted (no slack_ts yet) or updated in place; repeats push it no earlier than
-- last_rendered_at + debounce, so a burst becomes a handful of chat.update calls.
CREATE TABLE incident_messages (
    id                     bigserial   PRIMARY KEY,
    incident_id            bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    rule_id                bigint      REFERENCES routing_rules (id) ON DELETE SET NULL,  -- NULL: default route
    channel                text        NOT NULL,
    mention                text,
    mention_min_severity   text        NOT NULL DEFAULT 'high',
    runbook_url            text,
    escalate_after_minutes integer,
    escalate_to            text,
    escalation_levels      integer     NOT NULL DEFAULT 0,
    escalation_level       integer     NOT NULL DEFAULT 0,
    next_escalation_at     timestamptz,
    slack_channel          text,
    slack_ts               text,
    render_due_at          timestamptz,
    rendered_version       integer     NOT NULL DEFAULT 0,
    last_rendered_at       timestamptz,
    attempts               integer     NOT NULL DEFAULT 0,
    last_error             text,
    failed                 boolean     NOT NULL DEFAULT false,  -- gave up: an error no retry fixes
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT incident_messages_channel_key UNIQUE (incident_id, channel)
);

CREATE INDEX incident_messages_due_idx ON incident_messages (render_due_at) WHERE render_due_at IS NOT NULL;
CREATE INDEX incident_messages_slack_idx ON incident_messages (slack_channel, slack_ts);
CREATE INDEX incident_messages_escalation_idx ON incident_messages (next_escalation_at)
    WHERE next_escalation_at IS NOT NULL;

-- Every alert that landed in an incident (firing or resolved), for Investigate's "last occurrences".
CREATE TABLE alert_occurrences (
    id          bigserial   PRIMARY KEY,
    incident_id bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    received_at timestamptz NOT NULL,
    status      text        NOT NULL,
    alert       jsonb       NOT NULL
);

CREATE INDEX alert_occurrences_incident_idx ON alert_occurrences (incident_id, id DESC);

-- Alertmanager-style silences: matchers [{"name", "op", "value"}], op one of = != =~ !~.
CREATE TABLE silences (
    id         bigserial   PRIMARY KEY,
    matchers   jsonb       NOT NULL,
    comment    text        NOT NULL DEFAULT '',
    created_by text        NOT NULL,
    starts_at  timestamptz NOT NULL DEFAULT now(),
    ends_at    timestamptz NOT NULL,
    expired_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);

CREATE INDEX silences_ends_idx ON silences (ends_at);

-- While an incident matching source_matchers fires, alerts matching target_matchers whose `equal`
-- labels have the same values are held back.
CREATE TABLE inhibition_rules (
    id              bigserial   PRIMARY KEY,
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 80),
    source_matchers jsonb       NOT NULL,
    target_matchers jsonb       NOT NULL,
    equal           text[]      NOT NULL DEFAULT '{}',
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Every Slack Web API call the pipeline makes: what, where, for which incident, how it went.
CREATE TABLE slack_deliveries (
    id              bigserial   PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    method          text        NOT NULL,
    channel         text,
    incident_id     bigint,
    notification_id bigint,
    ok              boolean     NOT NULL,
    error           text,
    latency_ms      real        NOT NULL
);

CREATE INDEX slack_deliveries_at_idx ON slack_deliveries (at DESC);
CREATE INDEX slack_deliveries_ok_idx ON slack_deliveries (ok, at DESC);

-- Thread replies about an incident (escalations, Investigate details, notes) go through the outbox.
ALTER TABLE notifications ADD COLUMN incident_id bigint REFERENCES incidents (id) ON DELETE CASCADE;
CREATE INDEX notifications_incident_idx ON notifications (incident_id) WHERE incident_id IS NOT NULL;

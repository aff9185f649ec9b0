-- Paging beyond Slack: outbound channels (e-mail, Discord, Teams, webhook, GitHub issue, Twilio
-- SMS, PagerDuty), the durable outbox that delivers to them, escalation policies that routing
-- rules name, and each incident's run through its policy, step by step, on the record.

-- An outbound channel: one configured destination. `settings` holds its secrets too (an SMTP
-- password, a webhook URL, a routing key): they are needed to send, and are never shown back
-- (the API and Slack show which are set, not their values).
CREATE TABLE outbound_channels (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 80),
    kind       text        NOT NULL CHECK (kind IN ('email', 'discord', 'teams', 'webhook', 'github', 'twilio', 'pagerduty')),
    settings   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    managed_by text        CHECK (managed_by IN ('config')),
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- An escalation policy: ordered steps, the whole list repeated `repeat` more times while nobody
-- acknowledges.
CREATE TABLE escalation_policies (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 80),
    repeat     integer     NOT NULL DEFAULT 0 CHECK (repeat BETWEEN 0 AND 10),
    managed_by text        CHECK (managed_by IN ('config')),
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One step: wait, or notify somebody somewhere, optionally only from a severity up.
--   wait          wait_minutes
--   slack_channel target = a channel ID or #name; mention optional
--   user          target = a Slack user ID; reached by their personal notification rules
--   oncall        target = a schedule's name; whoever is on call then, by their personal rules
--   user_group    target = a Slack user-group ID, mentioned in the incident's channels
--   outbound      channel_id = an outbound channel
CREATE TABLE escalation_steps (
    id           bigserial PRIMARY KEY,
    policy_id    bigint    NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
    position     integer   NOT NULL CHECK (position >= 1),
    kind         text      NOT NULL CHECK (kind IN ('wait', 'slack_channel', 'user', 'oncall', 'user_group', 'outbound')),
    wait_minutes integer   CHECK (wait_minutes BETWEEN 1 AND 1440),
    target       text,
    mention      text,
    channel_id   bigint    REFERENCES outbound_channels (id) ON DELETE RESTRICT,
    min_severity text      CHECK (min_severity IN ('info', 'low', 'medium', 'high', 'critical')),
    UNIQUE (policy_id, position),
    CHECK ((kind = 'wait') = (wait_minutes IS NOT NULL)),
    CHECK ((kind = 'outbound') = (channel_id IS NOT NULL)),
    CHECK (kind IN ('wait', 'outbound') OR target IS NOT NULL)
);

ALTER TABLE routing_rules
    ADD COLUMN escalation_policy_id bigint REFERENCES escalation_policies (id) ON DELETE RESTRICT;

-- An incident's walk through one policy. `next_position` is the next step to take, `round` how
-- many times the list was taken already; due_at is when (NULL once stopped or finished). Claimed
-- like every outbox row: SKIP LOCKED, and a dead claimer's rows are taken over.
CREATE TABLE incident_escalations (
    id            bigserial   PRIMARY KEY,
    incident_id   bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    policy_id     bigint      NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
    next_position integer     NOT NULL DEFAULT 1,
    round         integer     NOT NULL DEFAULT 0,
    due_at        timestamptz,
    status        text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped', 'finished')),
    stopped_by    text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (incident_id, policy_id)
);

CREATE INDEX incident_escalations_due_idx ON incident_escalations (due_at) WHERE status = 'active';

-- A person being paged for an incident, walking their own notification rules (Slack DM now, SMS
-- after 5 min, e-mail after 10 …). One per incident and person: paging somebody twice (two steps,
-- two rounds) goes on where their rules stand rather than starting over.
CREATE TABLE personal_pages (
    id            bigserial   PRIMARY KEY,
    incident_id   bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    user_id       text        NOT NULL,
    reason        text        NOT NULL,  -- "L2 · on call for Primary"
    next_position integer     NOT NULL DEFAULT 1,
    due_at        timestamptz,
    status        text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped', 'finished')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (incident_id, user_id)
);

CREATE INDEX personal_pages_due_idx ON personal_pages (due_at) WHERE status = 'active';

-- How each person wants to be reached when paged, in order. A person without rules gets a Slack
-- DM. `delay_minutes` is counted from the page (0 = at once).
CREATE TABLE notification_rules (
    user_id       text    NOT NULL,
    position      integer NOT NULL CHECK (position >= 1),
    method        text    NOT NULL CHECK (method IN ('slack_dm', 'sms', 'email')),
    delay_minutes integer NOT NULL DEFAULT 0 CHECK (delay_minutes BETWEEN 0 AND 1440),
    PRIMARY KEY (user_id, position)
);

CREATE TABLE user_contacts (
    user_id    text        PRIMARY KEY,
    email      text,
    phone      text,       -- E.164
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The outbox for everything that is not a Slack channel message: one row per message to send.
-- `idempotency_key` makes the step that wrote it safe to run twice (a sweep taken over after a
-- crash, two replicas): the second INSERT does nothing. The row is the delivery log too: how many
-- tries, the last error, what the service answered.
CREATE TABLE outbound_deliveries (
    id              bigserial   PRIMARY KEY,
    idempotency_key text        NOT NULL UNIQUE,
    method          text        NOT NULL DEFAULT 'channel' CHECK (method IN ('channel', 'slack_dm', 'sms', 'email')),
    channel_id      bigint      REFERENCES outbound_channels (id) ON DELETE CASCADE,  -- the transport; NULL for a Slack DM
    incident_id     bigint      REFERENCES incidents (id) ON DELETE CASCADE,          -- NULL: a test
    action          text        NOT NULL CHECK (action IN ('trigger', 'escalate', 'acknowledge', 'resolve', 'test')),
    recipient       text,       -- a person's address, number or Slack user ID (personal pages)
    reason          text,       -- which step or rule sent it
    severity        text        NOT NULL DEFAULT 'medium',
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    claimed_until   timestamptz,
    last_error      text,
    detail          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE INDEX outbound_deliveries_due_idx ON outbound_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbound_deliveries_incident_idx ON outbound_deliveries (incident_id, id);
CREATE INDEX outbound_deliveries_failed_idx ON outbound_deliveries (finished_at DESC) WHERE status = 'failed';

-- What a channel needs to find its earlier message for an incident: the GitHub issue number to
-- comment on and close, the PagerDuty dedup key.
CREATE TABLE outbound_refs (
    channel_id  bigint NOT NULL REFERENCES outbound_channels (id) ON DELETE CASCADE,
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    ref         text   NOT NULL,
    PRIMARY KEY (channel_id, incident_id)
);

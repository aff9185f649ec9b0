-- Heartbeat monitoring: registered applications, their heartbeat history, the notification outbox
-- and the audit log of interactive actions.

CREATE TABLE applications (
    id                bigserial   PRIMARY KEY,
    uuid              uuid        NOT NULL UNIQUE,
    name              text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- Seconds between heartbeats; NULL when a cron schedule says when they are due.
    expected_interval integer     CHECK (expected_interval BETWEEN 10 AND 2678400),
    grace_period      integer     NOT NULL DEFAULT 0 CHECK (grace_period BETWEEN 0 AND 2678400),
    schedule          text,
    timezone          text        NOT NULL DEFAULT 'UTC',
    channel           text        NOT NULL,
    owner             text,
    is_active         boolean     NOT NULL DEFAULT true,
    -- Health as last decided: new (never pinged), up, down. "late" and "paused" are derived on read.
    state             text        NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'up', 'down')),
    last_heartbeat    timestamptz,
    last_start        timestamptz,
    last_duration_ms  bigint,
    due_at            timestamptz,  -- when the next heartbeat is expected
    next_deadline     timestamptz,  -- due_at + grace: past it, the app is down
    down_since        timestamptz,
    snoozed_until     timestamptz,
    alert_channel     text,         -- the Slack message of the current (or last) outage
    alert_ts          text,
    created_by        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    CHECK (expected_interval IS NOT NULL OR schedule IS NOT NULL)
);

CREATE UNIQUE INDEX applications_name_key ON applications (lower(name)) WHERE deleted_at IS NULL;
-- The watcher's question: which active, up apps have passed their deadline, earliest first?
CREATE INDEX applications_watch_idx ON applications (next_deadline)
    WHERE deleted_at IS NULL AND is_active AND state = 'up';

CREATE TABLE heartbeats (
    id           bigserial   PRIMARY KEY,
    app_id       bigint      NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN ('success', 'start', 'fail')),
    exit_code    integer,
    received_at  timestamptz NOT NULL DEFAULT now(),
    client_time  text,        -- what the client claimed; stored, never trusted
    duration_ms  bigint,      -- start → success/fail
    method       text        NOT NULL DEFAULT 'POST',
    remote_addr  text,
    user_agent   text,
    body         text,
    metadata     jsonb
);

CREATE INDEX heartbeats_app_idx ON heartbeats (app_id, id DESC);

-- Outbox: a notification is written in the same transaction as the state change that causes it,
-- then delivered to Slack (and retried) by the notifier.
CREATE TABLE notifications (
    id              bigserial   PRIMARY KEY,
    kind            text        NOT NULL,
    app_id          bigint      REFERENCES applications (id) ON DELETE CASCADE,
    payload         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'suppressed', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    slack_channel   text,
    slack_ts        text
);

CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';

CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    actor       text        NOT NULL,       -- Slack user ID, or 'api' / 'system'
    action      text        NOT NULL,       -- e.g. application.register, heartbeat_alert.ack
    target_type text        NOT NULL,
    target_id   text,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, at DESC);

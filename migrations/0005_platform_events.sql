-- ChatOps: platform events (CI, deploys, error rates, scheduled tasks, manual triggers, and the audit
-- of every interactive action), routing of events to channels by type, deployable services and
-- deploy requests with their approval.

CREATE TABLE platform_events (
    id            bigserial   PRIMARY KEY,
    event_type    text        NOT NULL,  -- ci | deploy | error_rate | scheduled_task | manual | action
    status        text        NOT NULL DEFAULT '',  -- passed/failed, started/completed/failed, exceeded, ok/failed, …
    service       text        NOT NULL DEFAULT '',
    env           text        NOT NULL DEFAULT '',
    severity      text        NOT NULL DEFAULT 'info'
                  CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    title         text        NOT NULL,
    link          text,
    occurred_at   timestamptz NOT NULL,       -- the sender's claim
    received_at   timestamptz NOT NULL DEFAULT now(),
    correlation   text,                       -- events with the same key share one Slack message (a deployment's id)
    actor         text,                       -- who did it (Slack user ID for actions; sender's name otherwise)
    details       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    envelope_pk   bigint,                     -- the ledger row it came from, if any
    slack_channel text,
    slack_ts      text,
    render_due_at timestamptz,                -- outbox: post (no ts) or update the message
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text
);

CREATE INDEX platform_events_type_idx ON platform_events (event_type, received_at DESC);
CREATE INDEX platform_events_correlation_idx ON platform_events (correlation, id DESC) WHERE correlation IS NOT NULL;
CREATE INDEX platform_events_due_idx ON platform_events (render_due_at) WHERE render_due_at IS NOT NULL;
CREATE INDEX platform_events_slack_idx ON platform_events (slack_channel, slack_ts);

-- Which channel each event type goes to; a type without a row goes to SLACK_CHANNEL.
CREATE TABLE event_routes (
    event_type text        PRIMARY KEY,
    channel    text        NOT NULL,
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Services `/pulser deploy` can deploy, and how.
CREATE TABLE deploy_services (
    id               bigserial   PRIMARY KEY,
    name             text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 80),
    action_type      text        NOT NULL CHECK (action_type IN ('github_workflow', 'heroku_promotion', 'webhook')),
    action           jsonb       NOT NULL,  -- github: {repo, workflow, ref}; heroku: {pipeline, from_app, to_apps}; webhook: {url}
    default_env      text        NOT NULL DEFAULT 'production',
    requires_approval boolean    NOT NULL DEFAULT false,
    channel          text,       -- the deploy channel; NULL: the route of event type "deploy"
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX deploy_services_name_key ON deploy_services (lower(name));

CREATE TABLE deploy_requests (
    id            bigserial   PRIMARY KEY,
    service_id    bigint      NOT NULL REFERENCES deploy_services (id) ON DELETE CASCADE,
    env           text        NOT NULL,
    ref           text        NOT NULL DEFAULT '',
    reason        text        NOT NULL DEFAULT '',
    requested_by  text        NOT NULL,
    status        text        NOT NULL DEFAULT 'pending_approval'
                  CHECK (status IN ('pending_approval', 'approved', 'rejected', 'triggered', 'trigger_failed')),
    decided_by    text,
    decided_at    timestamptz,
    trigger_error text,
    event_id      bigint      REFERENCES platform_events (id) ON DELETE SET NULL,  -- its Slack message
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The App Home's 24-hour figures.
CREATE INDEX alert_occurrences_received_idx ON alert_occurrences (received_at);
CREATE INDEX incidents_first_seen_idx ON incidents (first_seen);

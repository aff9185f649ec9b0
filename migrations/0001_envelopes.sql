-- The envelope ledger: every inbound envelope (Slack, webhooks, platform events) is recorded here
-- before it is processed. The natural key makes a redelivery a no-op; status/attempts/next_attempt_at
-- drive the retry worker.
CREATE TABLE envelopes (
    id              bigserial PRIMARY KEY,
    source          text        NOT NULL,
    scope           text        NOT NULL DEFAULT '',
    envelope_id     text        NOT NULL,
    kind            text        NOT NULL DEFAULT '',
    payload         jsonb       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status          text        NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'processed', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    claimed_by      text,
    claimed_at      timestamptz,
    -- When the worker may (re)try the row: a lease for rows being processed, a backoff for failed
    -- ones, NULL once processed or given up.
    next_attempt_at timestamptz,
    received_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    CONSTRAINT envelopes_natural_key UNIQUE (source, scope, envelope_id)
);

CREATE INDEX envelopes_due_idx ON envelopes (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX envelopes_source_received_idx ON envelopes (source, received_at DESC);

-- Slack's rate limits as budgets every Pulser process spends from, and per-channel storm digests.

-- One row per budget ("chat.postMessage C0123", "chat.update", …): a GCRA token bucket kept as
-- its theoretical arrival time. Two processes on one Postgres spend from the same row, so
-- together they stay inside one workspace's limits.
CREATE TABLE slack_budgets (
    scope text        PRIMARY KEY,
    tat   timestamptz NOT NULL DEFAULT '-infinity'
);

-- Spend one call from every named budget, or from none of them. Returns 0 when the call may go
-- now, else how many seconds until all of them allow it (nothing is spent then). `steps` is each
-- budget's seconds per call, `tolerances` how far ahead of real time it may run (the burst).
CREATE FUNCTION slack_spend(scopes text[], steps float8[], tolerances float8[]) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    t    timestamptz := clock_timestamp();
    wait float8 := 0;
    i    integer;
    cur  timestamptz;
BEGIN
    INSERT INTO slack_budgets (scope) SELECT unnest(scopes) ON CONFLICT (scope) DO NOTHING;
    FOR i IN 1 .. coalesce(array_length(scopes, 1), 0) LOOP
        SELECT greatest(tat, t) INTO cur FROM slack_budgets WHERE scope = scopes[i] FOR UPDATE;
        wait := greatest(wait, extract(epoch FROM cur - t) - tolerances[i]);
    END LOOP;
    IF wait > 0 THEN
        RETURN wait;
    END IF;
    FOR i IN 1 .. coalesce(array_length(scopes, 1), 0) LOOP
        UPDATE slack_budgets SET tat = greatest(tat, t) + make_interval(secs => steps[i]) WHERE scope = scopes[i];
    END LOOP;
    RETURN 0;
END
$$;

-- A storm: new incidents for one channel arrived faster than its routing rule's threshold, so
-- further ones fold into this one message (updated in place) instead of a post each.
CREATE TABLE storm_digests (
    id               bigserial   PRIMARY KEY,
    channel          text        NOT NULL,
    opened_at        timestamptz NOT NULL,
    last_folded_at   timestamptz NOT NULL,
    closed_at        timestamptz,
    own_criticals    integer     NOT NULL DEFAULT 0,  -- criticals posted on their own during the storm
    version          integer     NOT NULL DEFAULT 1,
    rendered_version integer     NOT NULL DEFAULT 0,
    slack_channel    text,
    slack_ts         text,
    render_due_at    timestamptz,
    last_rendered_at timestamptz,
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX storm_digests_one_open_per_channel ON storm_digests (channel) WHERE closed_at IS NULL;
CREATE INDEX storm_digests_due_idx ON storm_digests (render_due_at) WHERE render_due_at IS NOT NULL;

-- A message that arrived during a storm is one of its digest's (digest_id). A folded one is not
-- posted on its own: the digest counts it and names it (named_at: when a thread reply of the
-- digest did). A critical may still be posted on its own (digest_id set, folded false).
ALTER TABLE incident_messages
    ADD COLUMN digest_id bigint REFERENCES storm_digests (id) ON DELETE SET NULL,
    ADD COLUMN folded    boolean NOT NULL DEFAULT false,
    ADD COLUMN named_at  timestamptz;

CREATE INDEX incident_messages_digest_idx ON incident_messages (digest_id, id) WHERE digest_id IS NOT NULL;
CREATE INDEX incident_messages_channel_created_idx ON incident_messages (channel, created_at)
    WHERE escalation_of IS NULL;

-- Per routing rule: how many new incidents a minute a channel takes one by one before the rest
-- fold into a digest (NULL: the default; 0: never fold).
ALTER TABLE routing_rules
    ADD COLUMN storm_threshold integer CHECK (storm_threshold BETWEEN 0 AND 1000);

-- Every running Pulser process says it is alive every few seconds. Work a process claimed (a
-- webhook being processed, a message being posted) is taken over by another process as soon as
-- the claimer has stopped saying so — seconds after a kill -9, not when a 5-minute lease ends.
CREATE TABLE pulser_workers (
    name       text        PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE incident_messages ADD COLUMN claimed_by text;
ALTER TABLE storm_digests ADD COLUMN claimed_by text;
ALTER TABLE notifications ADD COLUMN claimed_by text;

CREATE INDEX envelopes_in_flight_idx ON envelopes (claimed_by) WHERE status = 'received' AND claimed_by IS NOT NULL;
CREATE INDEX incident_messages_claimed_idx ON incident_messages (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX notifications_claimed_idx ON notifications (claimed_by) WHERE claimed_by IS NOT NULL AND status = 'pending';

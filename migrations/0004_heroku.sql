-- Heroku monitoring: settings changed from Slack, and what was last seen of each app.

-- One row: the environment gives first values; /heroku-status config changes them.
CREATE TABLE heroku_settings (
    id               boolean     PRIMARY KEY DEFAULT true CHECK (id),
    apps             text[]      NOT NULL DEFAULT '{}',
    channel          text        NOT NULL,
    interval_minutes integer     NOT NULL CHECK (interval_minutes BETWEEN 1 AND 60),
    last_cycle_at    timestamptz,  -- claimed by the process that polls this cycle
    updated_by       text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The last observation of each app, so a restart neither misses nor repeats an alert.
CREATE TABLE app_state (
    app                  text        PRIMARY KEY,
    last_release_version integer,
    dynos                jsonb       NOT NULL DEFAULT '{}'::jsonb,   -- name → {type, state}
    config_hash          text,                                      -- sha256 over the keyed name → value digests
    config_key_id        text,                                      -- which key made them (changes with HEROKU_API_KEY)
    addons               jsonb       NOT NULL DEFAULT '{}'::jsonb,   -- name → {state, service, plan, since}
    state                jsonb       NOT NULL,                       -- everything detection compares with
    last_poll_at         timestamptz,
    last_poll_error      text,
    last_error_at        timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- The outcome of an action taken from the message (e.g. a rollback), shown on it.
ALTER TABLE incidents ADD COLUMN action_note text;
-- Where the incident goes when no rule matches (Heroku alerts use the channel set for Heroku).
ALTER TABLE incidents ADD COLUMN default_channel text;

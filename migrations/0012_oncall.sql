-- On-call schedules (alerts/oncall): who is on call at a time, for people, for Slack and for the
-- escalation policies that page "the current on-call of a schedule".
--
-- A schedule has layers (rotations, or calendars imported by URL), overrides and swaps. Shifts are
-- not stored: they are computed from the layers when asked (alerts/oncall/rotation.py); only what
-- cannot be computed is kept: the imported calendars' events as last fetched, and which shift
-- starts have been announced to their person.

CREATE TABLE oncall_schedules (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL,
    time_zone   text        NOT NULL,            -- IANA, checked with zoneinfo before it is stored
    feed_token  text        NOT NULL UNIQUE,     -- the secret of GET /schedules/{feed_token}.ics
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    managed_by  text        CHECK (managed_by IN ('config'))
);
CREATE UNIQUE INDEX oncall_schedules_name ON oncall_schedules (lower(name));

-- Layers in priority order: position 1 is the bottom; a higher position wins where it has someone.
-- A PUT of the schedule replaces them all.
CREATE TABLE oncall_layers (
    schedule_id    bigint   NOT NULL REFERENCES oncall_schedules (id) ON DELETE CASCADE,
    position       integer  NOT NULL CHECK (position >= 1),
    name           text     NOT NULL,
    kind           text     NOT NULL CHECK (kind IN ('rotation', 'imported')),
    -- a rotation
    members        text[]   NOT NULL DEFAULT '{}',
    shift_count    integer,                       -- e.g. 1
    shift_unit     text     CHECK (shift_unit IN ('hours', 'days', 'weeks')),
    handoff_time   time,                          -- local wall-clock time of the hand-off
    start_date     date,                          -- the first shift starts then, at handoff_time
    restrict_days  smallint[],                    -- ISO weekdays 1 (Monday) … 7 on call, NULL: every day
    restrict_from  time,                          -- local hours on call, NULL: all day
    restrict_to    time,                          -- restrict_to <= restrict_from: across midnight
    -- an imported calendar
    ical_url       text,
    PRIMARY KEY (schedule_id, position),
    CHECK (kind <> 'rotation' OR (shift_count >= 1 AND shift_unit IS NOT NULL AND handoff_time IS NOT NULL
                                  AND start_date IS NOT NULL AND cardinality(members) >= 1)),
    CHECK (kind <> 'imported' OR ical_url IS NOT NULL)
);

-- One row per imported calendar URL of a schedule: the fetch state. It outlives a PUT that keeps
-- the URL, so the last good copy survives edits of the other layers.
CREATE TABLE oncall_calendars (
    schedule_id     bigint      NOT NULL REFERENCES oncall_schedules (id) ON DELETE CASCADE,
    url             text        NOT NULL,
    fetched_at      timestamptz,                  -- last attempt
    last_success_at timestamptz,                  -- the events below are from then
    last_error      text,                         -- NULL after a good fetch; shown, never the URL
    claimed_until   timestamptz,                  -- a replica fetching it now
    event_count     integer     NOT NULL DEFAULT 0,
    unmatched       integer     NOT NULL DEFAULT 0,  -- events no Slack user was found for
    PRIMARY KEY (schedule_id, url)
);

-- The last good copy of an imported calendar, expanded (recurrences included) over a window.
CREATE TABLE oncall_imported_events (
    schedule_id bigint      NOT NULL,
    url         text        NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    user_id     text,                             -- NULL: no Slack user found for it
    label       text        NOT NULL DEFAULT '',  -- the event's summary
    FOREIGN KEY (schedule_id, url) REFERENCES oncall_calendars (schedule_id, url) ON DELETE CASCADE,
    CHECK (ends_at > starts_at)
);
CREATE INDEX oncall_imported_events_window ON oncall_imported_events (schedule_id, url, starts_at);

-- E-mail → Slack user, as users.lookupByEmail answered (user_id NULL: no such user), and the
-- names shown in the iCal feed.
CREATE TABLE oncall_people (
    key        text        PRIMARY KEY,            -- 'email:<lower-case address>' or 'user:<U…>'
    user_id    text,
    name       text,
    checked_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE oncall_overrides (
    id          bigserial   PRIMARY KEY,
    schedule_id bigint      NOT NULL REFERENCES oncall_schedules (id) ON DELETE CASCADE,
    user_id     text        NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX oncall_overrides_window ON oncall_overrides (schedule_id, starts_at);

-- A swap: the shift of from_user that starts at shift_start (in any layer) is to_user's.
CREATE TABLE oncall_swaps (
    id          bigserial   PRIMARY KEY,
    schedule_id bigint      NOT NULL REFERENCES oncall_schedules (id) ON DELETE CASCADE,
    shift_start timestamptz NOT NULL,
    from_user   text        NOT NULL,
    to_user     text        NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (schedule_id, shift_start, from_user)
);

-- "Your shift starts now" DMs: one row per shift, inserted ON CONFLICT DO NOTHING by whichever
-- replica gets there first; only the one whose insert took sends.
CREATE TABLE oncall_shift_notices (
    schedule_id bigint      NOT NULL REFERENCES oncall_schedules (id) ON DELETE CASCADE,
    user_id     text        NOT NULL,
    shift_start timestamptz NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, user_id, shift_start)
);

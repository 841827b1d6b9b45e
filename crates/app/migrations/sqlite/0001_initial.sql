-- Initial schema (SQLite). Never edit once landed: add a new numbered file instead.
-- Instants are epoch milliseconds (BIGINT); booleans are INTEGER 0/1 (sqlx Any cannot
-- decode SQLite BOOLEAN); JSON is stored as TEXT, byte for byte as hashed.

CREATE TABLE agencies (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    acronym       TEXT NOT NULL UNIQUE,
    email_domains TEXT NOT NULL,            -- JSON array of lowercase domains
    created_at    BIGINT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'helpdesk', 'validator', 'agency')),
    agency_id     BIGINT REFERENCES agencies (id),
    reports_to    BIGINT REFERENCES users (id),  -- the escalation ladder
    password_hash TEXT,                          -- Argon2id PHC string; NULL: no password login
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    CHECK ((role = 'agency') = (agency_id IS NOT NULL))
);

-- Bearer tokens for programs and session cookies for the web UI: the secret is shown once
-- and only its SHA-256 is kept.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    kind         TEXT NOT NULL CHECK (kind IN ('api', 'session')),
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,                       -- sessions expire; API tokens until revoked
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Consecutive failed logins per address: each further attempt waits longer.
CREATE TABLE login_failures (
    email         TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    last_failure  BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);

CREATE TABLE procedures (
    id             INTEGER PRIMARY KEY,
    homoclave      TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    agency_id      BIGINT NOT NULL REFERENCES agencies (id),
    url            TEXT NOT NULL,
    responsible_id BIGINT NOT NULL REFERENCES users (id),
    created_at     BIGINT NOT NULL
);

CREATE TABLE slo_policies (
    version        INTEGER PRIMARY KEY,
    effective_from BIGINT NOT NULL,
    body           TEXT NOT NULL,               -- JSON SloPolicy, as copied into incidents
    created_at     BIGINT NOT NULL,
    created_by     BIGINT REFERENCES users (id)
);

-- Last folio number handed out per year: INC-YYYY-NNNNNN is unique and never reused.
CREATE TABLE folio_counters (
    year        INTEGER PRIMARY KEY,
    last_number BIGINT NOT NULL
);

-- The record: append-only, one hash chain per incident.
CREATE TABLE incident_events (
    folio     TEXT NOT NULL,
    seq       BIGINT NOT NULL,                  -- 1, 2, ... per incident
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,                    -- JSON Actor
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,                    -- JSON data of the change
    prev_hash TEXT NOT NULL,                    -- hash of seq - 1; 64 zeros for seq 1
    hash      TEXT NOT NULL,                    -- SHA-256 over the canonical encoding
    PRIMARY KEY (folio, seq)
);

CREATE TRIGGER incident_events_no_update BEFORE UPDATE ON incident_events
BEGIN
    SELECT RAISE(ABORT, 'incident_events is append-only');
END;

CREATE TRIGGER incident_events_no_delete BEFORE DELETE ON incident_events
BEGIN
    SELECT RAISE(ABORT, 'incident_events is append-only');
END;

-- Projection of the events, updated in the same transaction as each append.
CREATE TABLE incidents (
    folio            TEXT PRIMARY KEY,
    agency_id        BIGINT NOT NULL REFERENCES agencies (id),
    state            TEXT NOT NULL,
    severity         TEXT,
    kind             TEXT NOT NULL,
    channel          TEXT NOT NULL,
    reported_at      BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    escalation_level INTEGER NOT NULL,
    breached         BIGINT NOT NULL DEFAULT 0, -- a clock was breached as of the last event
    breach_due_at    BIGINT,                    -- earliest instant a running clock breaches
    version          BIGINT NOT NULL,           -- number of events; optimistic concurrency
    last_hash        TEXT NOT NULL,             -- hash of event `version`
    body             TEXT NOT NULL              -- JSON Incident
);
CREATE INDEX incidents_agency_state ON incidents (agency_id, state);
CREATE INDEX incidents_state_reported ON incidents (state, reported_at);

CREATE TABLE incident_procedures (
    folio        TEXT NOT NULL REFERENCES incidents (folio),
    procedure_id BIGINT NOT NULL REFERENCES procedures (id),
    PRIMARY KEY (folio, procedure_id)
);
CREATE INDEX incident_procedures_procedure ON incident_procedures (procedure_id);

-- SLO timers: the next instant something is due per incident, written with the event
-- that changed it; claimed with a lease by the scheduler.
CREATE TABLE timers (
    folio       TEXT PRIMARY KEY REFERENCES incidents (folio),
    due_at      BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT
);
CREATE INDEX timers_due ON timers (due_at);

-- One row per executed planned action (incident, clock, kind, level): the unique key
-- makes a second firing impossible.
CREATE TABLE fired_actions (
    action_key TEXT PRIMARY KEY,
    folio      TEXT NOT NULL REFERENCES incidents (folio),
    seq        BIGINT NOT NULL,
    fired_at   BIGINT NOT NULL
);

-- Outbound notifications, written with the event that caused them.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    folio           TEXT REFERENCES incidents (folio),
    seq             BIGINT,                     -- the causing event
    kind            TEXT NOT NULL,              -- template name
    recipients      TEXT NOT NULL,              -- JSON {to: [], cc: []}
    payload         TEXT NOT NULL,              -- JSON template data
    message_id      TEXT NOT NULL UNIQUE,       -- deterministic: a re-send is the same message
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_pending ON outbox (state, next_attempt_at);

-- API idempotency: a retried request with the same key and body gets the first answer.
CREATE TABLE idempotency_keys (
    user_id      BIGINT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Instance-wide settings that must survive restarts and be shared by instances, such as
-- the secret that signs the one-click links in emails.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One-click links already used: each works once.
CREATE TABLE used_links (
    nonce   TEXT PRIMARY KEY,
    folio   TEXT NOT NULL,
    used_at BIGINT NOT NULL
);

-- Every email received: recorded on its incident, acted on, or waiting in the help desk's
-- triage queue. Nothing received is lost.
CREATE TABLE inbound_messages (
    id          INTEGER PRIMARY KEY,
    received_at BIGINT NOT NULL,
    message_id  TEXT,
    sender      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    folio       TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('acknowledged', 'resolution_notified', 'recorded', 'new_incident', 'triage')),
    reason      TEXT,
    excerpt     TEXT NOT NULL,
    raw_sha256  TEXT                            -- the same bytes received twice are one message
);
CREATE UNIQUE INDEX inbound_messages_raw ON inbound_messages (raw_sha256);
CREATE INDEX inbound_messages_folio ON inbound_messages (folio);
CREATE INDEX inbound_messages_outcome ON inbound_messages (outcome, received_at);

-- The portal side (issue 14): webhook subscriptions (admin), their deliveries written in
-- the same transaction as the incident events that cause them (a transactional outbox,
-- like the mail outbox), every delivery attempt (the delivery log), and the banner checks
-- (fetch the procedure's page after the agency reports the banner shown).

CREATE TABLE webhook_subscriptions (
    id               INTEGER PRIMARY KEY,
    url              TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    events           TEXT NOT NULL,             -- ',procedure.button,incident.state,'
    secret           TEXT NOT NULL,             -- whsec_ + base64
    previous_secret  TEXT,                      -- still signs until previous_until
    previous_until   BIGINT,
    active           INTEGER NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    created_by       BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    subscription_id  BIGINT NOT NULL REFERENCES webhook_subscriptions (id),
    message_id       TEXT NOT NULL,             -- webhook-id: the same on every retry
    event_type       TEXT NOT NULL,
    folio            TEXT,
    payload          TEXT NOT NULL,             -- the JSON body, exactly as signed and sent
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    UNIQUE (subscription_id, message_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, id);
-- The claim's "first pending of its subscription and incident".
CREATE INDEX webhook_deliveries_in_line ON webhook_deliveries (subscription_id, folio, id)
    WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES webhook_deliveries (id),
    at           BIGINT NOT NULL,
    status       BIGINT,                        -- the receiver's HTTP status, if it answered
    error        TEXT,
    duration_ms  BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

CREATE TABLE banner_checks (
    id           INTEGER PRIMARY KEY,
    folio        TEXT NOT NULL REFERENCES incidents (folio),
    seq          BIGINT NOT NULL,               -- the banner_set event checked
    due_at       BIGINT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'found', 'missing', 'skipped')),
    attempts     BIGINT NOT NULL DEFAULT 0,     -- looks that could not tell (the page did not answer)
    lease_owner  TEXT,
    lease_until  BIGINT,
    checked_at   BIGINT,
    detail       TEXT,
    UNIQUE (folio, seq)
);
CREATE INDEX banner_checks_pending ON banner_checks (state, due_at);

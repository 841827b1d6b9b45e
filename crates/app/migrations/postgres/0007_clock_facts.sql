-- SLO reports (issue 13): one row per clock of each incident, its figures and what a report
-- groups it by, written in the same transaction as the events that change it (see
-- crates/core/src/facts.rs) and compared with a replay by `audit verify`.

CREATE TABLE clock_facts (
    folio            TEXT NOT NULL REFERENCES incidents (folio),
    clock            TEXT NOT NULL,             -- report, ack, resolution, validation, report_form
    round            INTEGER NOT NULL,          -- validation round; 0 for the others
    agency_id        BIGINT NOT NULL,
    severity         TEXT,                      -- at the last event that changed the clock
    policy_version   BIGINT,
    dismissed        INTEGER NOT NULL,          -- the incident was dismissed: not measured
    target_s         BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    accumulated_ms   BIGINT NOT NULL,           -- running time of the finished segments
    running_since    BIGINT,                    -- start of the running segment, if running
    stopped_at       BIGINT,
    breached_at      BIGINT,
    outcome_at       BIGINT,                    -- breached_at, else stopped_at
    escalation_level BIGINT NOT NULL,
    PRIMARY KEY (folio, clock, round)
);
-- A period's clocks, read in outcome order.
CREATE INDEX clock_facts_outcome ON clock_facts (outcome_at);
-- The what-if reads the clocks that stopped in a period.
CREATE INDEX clock_facts_stopped ON clock_facts (stopped_at);

-- Incidents stored before this table get their rows from a replay of their events the
-- next time the database is opened for writing; this marker says that is still to do
-- (store/facts.rs removes it once done), so later starts do not look again.
INSERT INTO settings (key, value) VALUES ('clock_facts_fill', 'pending');

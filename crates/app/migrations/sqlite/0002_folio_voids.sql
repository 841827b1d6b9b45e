-- Folios reserved and never used are recorded, so that every number from 1 to the highest
-- used is an incident or a void (issue 10, item 13: an unexplained gap is a finding).
-- Booleans are INTEGER 0/1 (sqlx Any cannot decode SQLite BOOLEAN).

-- Each block of numbers a process reserved: who holds it and until when. Numbers of a
-- block whose lease is still running belong to a live process and are not gaps yet.
CREATE TABLE folio_blocks (
    year         INTEGER NOT NULL,
    first_number BIGINT NOT NULL,
    last_number  BIGINT NOT NULL,
    owner        TEXT NOT NULL,                 -- the reserving process (pid and start instant)
    reserved_at  BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL,               -- no number handed out after this unless renewed
    settled      INTEGER NOT NULL DEFAULT 0,    -- 1: every number is an incident or a void
    PRIMARY KEY (year, first_number)
);
CREATE INDEX folio_blocks_unsettled ON folio_blocks (settled, lease_until);

-- A folio that was reserved and will never be an incident, and why.
CREATE TABLE folio_voids (
    folio     TEXT PRIMARY KEY,                 -- INC-YYYY-NNNNNN
    year      INTEGER NOT NULL,
    number    BIGINT NOT NULL,
    voided_at BIGINT NOT NULL,
    reason    TEXT NOT NULL,
    UNIQUE (year, number)
);

CREATE TRIGGER folio_voids_no_update BEFORE UPDATE ON folio_voids
BEGIN
    SELECT RAISE(ABORT, 'folio_voids is append-only');
END;

CREATE TRIGGER folio_voids_no_delete BEFORE DELETE ON folio_voids
BEGIN
    SELECT RAISE(ABORT, 'folio_voids is append-only');
END;

-- A void folio never becomes an incident (a last guard; folios.rs keeps it from being
-- handed out).
CREATE TRIGGER incidents_not_void BEFORE INSERT ON incidents
WHEN EXISTS (SELECT 1 FROM folio_voids WHERE folio = NEW.folio)
BEGIN
    SELECT RAISE(ABORT, 'folio is void');
END;

-- Numbers reserved before this migration have no block: one expired, unsettled block per
-- year covers them, so the next start records the unused ones as void.
INSERT INTO folio_blocks (year, first_number, last_number, owner, reserved_at, lease_until)
SELECT year, 1, last_number, 'antes de la migración 0002', 0, 0
FROM folio_counters WHERE last_number > 0;

-- Catalogue administration (issue 12): every change an administrator makes to agencies,
-- users, procedures and SLO policies is recorded, with the document before and after, in
-- the same transaction as the change. Agencies and procedures are deactivated instead of
-- deleted (incidents keep pointing at them). Booleans are INTEGER 0/1 (sqlx Any cannot
-- decode SQLite BOOLEAN).

ALTER TABLE agencies ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE procedures ADD COLUMN active INTEGER NOT NULL DEFAULT 1;

CREATE TABLE admin_changes (
    id        INTEGER PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor_id  BIGINT NOT NULL,                  -- a user id; 0 = the command-line operator
    entity    TEXT NOT NULL CHECK (entity IN ('agency', 'user', 'procedure', 'policy')),
    entity_id BIGINT NOT NULL,                  -- for a policy, its version
    action    TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deactivated', 'reactivated', 'imported')),
    before    TEXT,                             -- JSON document; NULL for a creation
    after     TEXT                              -- JSON document
);
CREATE INDEX admin_changes_entity ON admin_changes (entity, entity_id, id);
CREATE INDEX admin_changes_at ON admin_changes (at);

-- The emails of one incident, for its page (and the per-incident order of the outbox),
-- without scanning the whole outbox.
CREATE INDEX outbox_folio ON outbox (folio, id);

-- Received mail the help desk can act on (issue #12).
--
-- raw: the message's bytes as received (at most MAX_MESSAGE_BYTES, 10 MB), so the help
-- desk can read what the sender really wrote; NULL for messages received before this
-- migration and for ones too large to keep. BLOB: lossless, and sqlx's Any driver maps
-- it to Vec<u8> on both backends (BLOB on SQLite).
--
-- triaged_*: how the help desk resolved a message that landed in triage. The row keeps
-- outcome 'triage' (what the router decided on receipt, never rewritten); a resolution
-- is a second fact with its own who and when. The queue is outcome = 'triage' AND
-- triaged_at IS NULL. Nothing is deleted.
ALTER TABLE inbound_messages ADD COLUMN raw BYTEA;
ALTER TABLE inbound_messages ADD COLUMN triaged_at BIGINT;
ALTER TABLE inbound_messages ADD COLUMN triaged_by BIGINT;                  -- users.id (0: the command line's operator)
ALTER TABLE inbound_messages ADD COLUMN triage_action TEXT CHECK (triage_action IN ('attached', 'opened', 'discarded'));
ALTER TABLE inbound_messages ADD COLUMN triage_note TEXT;                   -- the discard reason, or the help desk's note
-- The pending queue, newest first, without scanning resolved rows.
CREATE INDEX inbound_messages_triage ON inbound_messages (outcome, triaged_at, id);

-- The scheduler's "when to look again" (store/timers.rs, `next_timer`): the end of the
-- earliest lease still running, found in this index instead of by reading every timer.
-- Only leased timers are in it (a firing frees its lease), so it stays as small as the
-- batches in flight.
CREATE INDEX timers_lease ON timers (lease_until) WHERE lease_until IS NOT NULL;

-- Commit throughput: NOTIFY takes a database-wide lock that is held until commit, so notifying
-- transactions commit one at a time, each waiting for the previous one's fsync. One
-- notification per store at a time is enough to wake idle members: a producer that finds
-- another transaction notifying for the same store skips its own. Busy members claim again
-- as soon as they finish a batch, and an idle member's poll (2 s by default) still finds the
-- rare commit that lands just after it went back to sleep.
CREATE OR REPLACE FUNCTION depot.notify_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Two-int advisory keys: 0x44455054 ("DEPT") keeps them apart from producers' group locks.
    PERFORM pg_notify('depot_messages', s.store)
    FROM (SELECT DISTINCT n.store FROM new_messages n) s
    WHERE pg_try_advisory_xact_lock(1145392212, hashtext(s.store));
    RETURN NULL;
END
$$;

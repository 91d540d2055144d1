-- No wake-up lost to the debounced NOTIFY. Since 0004 an insert skips its NOTIFY while another
-- transaction is sending one for the same store. If the skipping insert commits only after the
-- member woken by the other one has made its last claim, nothing announces it, and its messages
-- wait for the member's idle poll (2 s by default).
--
-- Now an insert that skips holds a shared advisory lock on (0x44455055 "DEPU", hashtext(store))
-- until it commits or rolls back. A member about to go idle asks depot.has_unannounced_inserts
-- first: true while such an insert is on its way, and the member looks again in a moment
-- instead of sleeping. Asked before the member's claim, false means every insert that skipped
-- its NOTIFY had ended (a commit is visible before its locks are released), so the claim sees
-- their messages. The insert takes the shared lock first and then tries the NOTIFY lock once
-- more: if that second try fails, a NOTIFY is on its way whose commit comes after the shared
-- lock was taken, and the member it wakes will look and see this insert; if it succeeds, the
-- insert notifies itself. An insert never waits for a look: if a look holds the lock (in
-- someone's open transaction), the insert notifies instead.
-- Shared locks do not conflict with one another: inserts still commit side by side.
-- Left as it was: an insert that skipped because of one that then rolled back is announced by
-- nobody, and waits for the idle poll.
CREATE OR REPLACE FUNCTION depot.notify_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT DISTINCT n.store FROM new_messages n ORDER BY 1 LOOP
        PERFORM depot.hold_store(s.store);
        -- Two-int advisory keys: 0x44455054 ("DEPT") keeps them apart from producers' group locks.
        IF pg_try_advisory_xact_lock(1145392212, hashtext(s.store)) THEN
            PERFORM pg_notify('depot_messages', s.store);
        ELSIF NOT pg_try_advisory_xact_lock_shared(1145392213, hashtext(s.store)) THEN
            -- A look holds it (in someone's open transaction): announce rather than wait.
            PERFORM pg_notify('depot_messages', s.store);
        ELSIF pg_try_advisory_xact_lock(1145392212, hashtext(s.store)) THEN
            -- The NOTIFY this insert was about to skip for has ended meanwhile.
            PERFORM pg_notify('depot_messages', s.store);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- True while an insert into `p_store` that skipped its NOTIFY has not yet committed or rolled
-- back. Never waits: the lock is only tried, and released when the asking transaction ends (at
-- once for a statement on its own, as members ask).
CREATE FUNCTION depot.has_unannounced_inserts(p_store text) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT NOT pg_try_advisory_xact_lock(1145392213, hashtext(p_store))
$$;

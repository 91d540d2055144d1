-- What one INSERT into depot.messages costs the server beyond the row (issue 20: a producer
-- storing one message at a time). Same rules, same errors, less work per statement.
-- (The headers check stays a SQL function that PostgreSQL inlines: as PL/pgSQL it cost an
-- INSERT about 17 µs less to start but every row it checks about 0.5 µs more, and a claim of
-- 100 rewrites, and so checks, 100 rows.)
--
-- The store check without a row lock. depot.hold_store locked the store's row FOR KEY SHARE,
-- which writes the row (and its WAL) in every storing transaction, turns into a MultiXact
-- when producers store at once, and runs as SECURITY DEFINER with its own search_path.
-- In READ COMMITTED (every producer's and node's mode) an insert now takes a shared
-- advisory lock on the store's name (0x44455056 "DEPV", hashtext(store)), held to its commit,
-- and then looks the store up; deleting or renaming a store takes that lock exclusively
-- before it looks for the store's messages (stores_keep_messages below). Either the insert
-- comes first, and the delete waits for its commit and then sees its messages, or the delete
-- comes first, and the insert waits for it and then finds no store. Shared locks do not
-- conflict: inserts still commit side by side. Other isolation levels keep the row lock,
-- whose conflict PostgreSQL reports as a serialization failure there.
-- A single store per statement (nearly every one) is read with min/max, without sorting.
CREATE OR REPLACE FUNCTION depot.notify_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    first_store text;
    last_store text;
    s record;
BEGIN
    SELECT min(n.store), max(n.store) INTO first_store, last_store FROM new_messages n;
    IF first_store IS NULL THEN
        RETURN NULL;
    END IF;
    IF first_store = last_store THEN
        PERFORM depot.announce_store(first_store);
        RETURN NULL;
    END IF;
    FOR s IN SELECT DISTINCT n.store FROM new_messages n ORDER BY 1 LOOP
        PERFORM depot.announce_store(s.store);
    END LOOP;
    RETURN NULL;
END
$$;

-- Checks that `p_store` is declared (keeping it so until this transaction ends) and sends the
-- store's NOTIFY unless another insert is sending one (0008 explains the three tries).
CREATE FUNCTION depot.announce_store(p_store text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') = 'read committed' THEN
        PERFORM pg_advisory_xact_lock_shared(1145392214, hashtext(p_store));
        IF NOT EXISTS (SELECT 1 FROM depot.stores s WHERE s.name = p_store) THEN
            PERFORM depot.hold_store(p_store);  -- raises the undeclared store's error
        END IF;
    ELSE
        PERFORM depot.hold_store(p_store);
    END IF;
    -- Two-int advisory keys: 0x44455054 ("DEPT") keeps them apart from producers' group locks.
    IF pg_try_advisory_xact_lock(1145392212, hashtext(p_store)) THEN
        PERFORM pg_notify('depot_messages', p_store);
    ELSIF NOT pg_try_advisory_xact_lock_shared(1145392213, hashtext(p_store)) THEN
        -- A look holds it (in someone's open transaction): announce rather than wait.
        PERFORM pg_notify('depot_messages', p_store);
    ELSIF pg_try_advisory_xact_lock(1145392212, hashtext(p_store)) THEN
        -- The NOTIFY this insert was about to skip for has ended meanwhile.
        PERFORM pg_notify('depot_messages', p_store);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION depot.stores_keep_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.name IS NOT DISTINCT FROM OLD.name THEN
        RETURN NULL;
    END IF;
    -- Waits for inserts into the store that are on their way (see notify_messages above).
    PERFORM pg_advisory_xact_lock(1145392214, hashtext(OLD.name));
    IF TG_OP = 'UPDATE' THEN
        UPDATE depot.messages SET store = NEW.name WHERE store = OLD.name;
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM depot.messages m WHERE m.store = OLD.name) THEN
        RAISE EXCEPTION 'store "%" still holds messages', OLD.name
            USING ERRCODE = 'foreign_key_violation',
                  HINT = format('purge it first: SELECT depot.purge_store(%L)', OLD.name);
    END IF;
    RETURN NULL;
END
$$;

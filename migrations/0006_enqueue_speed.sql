-- Enqueue speed. Two costs of a batched insert that the bare INSERT does not pay:
--
-- 1. The messages → stores foreign key checked every row on its own: a lookup and a KEY SHARE
--    row lock per message, about a third of the cost of a 100-row insert. The rule is the same
--    now but checked once per store per statement (the insert trigger below), once per row only
--    for the rare UPDATE that moves messages to another store, and on the stores side by
--    triggers that cascade a rename and refuse to delete a store that still holds messages.
--    Locking is what a foreign key takes: KEY SHARE on the store row until commit, so a store
--    cannot be deleted under a transaction that is adding messages to it.
-- 2. store_batch answers row by row from PL/pgSQL and looks up idempotency keys for every row.
--    A batch without idempotency keys is now one INSERT … SELECT FROM unnest: with no ids, a
--    plain INSERT … RETURNING; with ids (producers give every message its id before the first
--    try, so that a late commit and its retry store one message), ON CONFLICT DO NOTHING, and an
--    id already stored answers created = false, as the general path does.

ALTER TABLE depot.messages DROP CONSTRAINT messages_store_fkey;

-- Raises what a foreign key would, naming the store, when `store` is not declared; otherwise
-- holds KEY SHARE on its row until the transaction ends.
CREATE FUNCTION depot.hold_store(p_store text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM depot.stores s WHERE s.name = p_store FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'store "%" is not declared', p_store
            USING ERRCODE = 'foreign_key_violation',
                  HINT = format('declare it first: depot stores add %s   (or INSERT INTO depot.stores (name) VALUES (%L))',
                                quote_ident(p_store), p_store);
    END IF;
END
$$;

-- After each INSERT statement: every store named exists (once per store, in name order so two
-- inserts cannot deadlock on the locks), then the debounced NOTIFY of 0004.
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
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- An UPDATE that sets `store` (moving a message, renaming a store) checks the new name per row.
CREATE FUNCTION depot.check_message_store() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.store IS DISTINCT FROM OLD.store THEN
        PERFORM depot.hold_store(NEW.store);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_store_exists AFTER UPDATE OF store ON depot.messages
FOR EACH ROW EXECUTE FUNCTION depot.check_message_store();

-- The stores side of the old foreign key: a rename carries the messages along (ON UPDATE
-- CASCADE), and a store that still holds messages cannot be deleted (NO ACTION).
CREATE FUNCTION depot.stores_keep_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.name IS DISTINCT FROM OLD.name THEN
            UPDATE depot.messages SET store = NEW.name WHERE store = OLD.name;
        END IF;
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

CREATE TRIGGER stores_keep_messages AFTER UPDATE OF name OR DELETE ON depot.stores
FOR EACH ROW EXECUTE FUNCTION depot.stores_keep_messages();

-- store_batch (the 9-argument form of 0002) with the two one-statement paths above.
CREATE OR REPLACE FUNCTION depot.store_batch(
    p_store            text,
    p_payloads         bytea[],
    p_headers          jsonb[],
    p_content_types    text[],
    p_priorities       integer[],
    p_delays_ms        bigint[],
    p_group_keys       text[],
    p_idempotency_keys text[],
    p_ids              uuid[]
) RETURNS TABLE (id uuid, created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM depot.stores s WHERE s.name = p_store) THEN
        RAISE EXCEPTION 'store "%" is not declared', p_store
            USING ERRCODE = 'undefined_object',
                  HINT = format('declare it first: depot stores add %s   (or INSERT INTO depot.stores (name) VALUES (%L))',
                                quote_ident(p_store), p_store);
    END IF;
    -- Producers of one group take turns until commit (see the 8-argument form in 0001).
    IF cardinality(array_remove(p_group_keys, NULL)) > 0 THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_store || E'\x1f' || g.key, 0))
        FROM (SELECT DISTINCT k AS key FROM unnest(p_group_keys) AS k WHERE k IS NOT NULL ORDER BY 1) g;
    END IF;
    IF coalesce(cardinality(array_remove(p_ids, NULL)), 0) = 0
       AND coalesce(cardinality(array_remove(p_idempotency_keys, NULL)), 0) = 0 THEN
        -- No ids and no keys: RETURNING gives the rows in the order they were inserted.
        RETURN QUERY
        INSERT INTO depot.messages AS m (store, payload, headers, content_type, priority, available_at, group_key)
        SELECT p_store, coalesce(u.payload, ''), coalesce(u.headers, '{}'), u.content_type, coalesce(u.priority, 0),
               now() + greatest(coalesce(u.delay_ms, 0), 0) * interval '1 millisecond', u.group_key
        FROM unnest(p_payloads, p_headers, p_content_types, p_priorities, p_delays_ms, p_group_keys)
             WITH ORDINALITY AS u (payload, headers, content_type, priority, delay_ms, group_key, ord)
        ORDER BY u.ord
        RETURNING m.id, true;
        RETURN;
    END IF;
    IF coalesce(cardinality(array_remove(p_idempotency_keys, NULL)), 0) = 0 THEN
        -- Ids but no idempotency keys: one INSERT … SELECT as well. Ids given by the caller (producers assign
        -- them so that a late commit and its retry store one message) are kept; an id already
        -- stored comes back with created = false.
        RETURN QUERY
        WITH input AS (
            SELECT u.ord, coalesce(p_ids[u.ord], gen_random_uuid()) AS new_id, coalesce(u.payload, '') AS payload,
                   coalesce(u.headers, '{}') AS headers, u.content_type, coalesce(u.priority, 0) AS priority,
                   greatest(coalesce(u.delay_ms, 0), 0) AS delay_ms, u.group_key
            FROM unnest(p_payloads, p_headers, p_content_types, p_priorities, p_delays_ms, p_group_keys)
                 WITH ORDINALITY AS u (payload, headers, content_type, priority, delay_ms, group_key, ord)
        ),
        inserted AS (
            INSERT INTO depot.messages AS m (id, store, payload, headers, content_type, priority, available_at, group_key)
            SELECT i.new_id, p_store, i.payload, i.headers, i.content_type, i.priority,
                   now() + i.delay_ms * interval '1 millisecond', i.group_key
            FROM input i
            ORDER BY i.ord
            ON CONFLICT ON CONSTRAINT messages_pkey DO NOTHING
            RETURNING m.id
        )
        SELECT i.new_id, x.id IS NOT NULL FROM input i LEFT JOIN inserted x ON x.id = i.new_id ORDER BY i.ord;
        RETURN;
    END IF;
    FOR r IN
        WITH input AS (
            SELECT u.ord, coalesce(p_ids[u.ord], gen_random_uuid()) AS new_id, coalesce(u.payload, '') AS payload,
                   coalesce(u.headers, '{}') AS headers, u.content_type, coalesce(u.priority, 0) AS priority,
                   greatest(coalesce(u.delay_ms, 0), 0) AS delay_ms, u.group_key, u.idem
            FROM unnest(p_payloads, p_headers, p_content_types, p_priorities, p_delays_ms, p_group_keys, p_idempotency_keys)
                 WITH ORDINALITY AS u (payload, headers, content_type, priority, delay_ms, group_key, idem, ord)
        ),
        keyed AS (
            INSERT INTO depot.idempotency_keys AS k (store, key, message_id)
            SELECT p_store, i.idem, i.new_id FROM input i WHERE i.idem IS NOT NULL ORDER BY i.idem, i.ord
            ON CONFLICT DO NOTHING
            RETURNING k.key, k.message_id
        ),
        inserted AS (
            INSERT INTO depot.messages AS m (id, store, payload, headers, content_type, priority, available_at, group_key, idempotency_key)
            SELECT i.new_id, p_store, i.payload, i.headers, i.content_type, i.priority,
                   now() + i.delay_ms * interval '1 millisecond', i.group_key, i.idem
            FROM input i
            WHERE i.idem IS NULL OR EXISTS (SELECT 1 FROM keyed k WHERE k.message_id = i.new_id)
            ORDER BY i.ord
            ON CONFLICT ON CONSTRAINT messages_pkey DO NOTHING  -- the same message moved twice
            RETURNING m.id
        )
        SELECT i.ord, i.idem, i.new_id,
               k.message_id AS new_key_id,
               CASE WHEN i.idem IS NOT NULL THEN
                   (SELECT e.message_id FROM depot.idempotency_keys e WHERE e.store = p_store AND e.key = i.idem)
               END AS old_key_id,
               EXISTS (SELECT 1 FROM inserted x WHERE x.id = i.new_id) AS was_inserted
        FROM input i LEFT JOIN keyed k ON k.key = i.idem
        ORDER BY i.ord
    LOOP
        IF r.idem IS NULL THEN
            id := r.new_id;
            created := r.was_inserted;
        ELSE
            created := r.new_key_id IS NOT DISTINCT FROM r.new_id AND r.was_inserted;
            id := coalesce(r.new_key_id, r.old_key_id);
            IF id IS NULL THEN
                SELECT e.message_id INTO id FROM depot.idempotency_keys e WHERE e.store = p_store AND e.key = r.idem;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

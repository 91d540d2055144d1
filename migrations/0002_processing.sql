-- Rules for processor and endpoint rows, and the notifications nodes follow.
-- The database refuses a row that no node could run, with a message naming the column;
-- every change to a processor or endpoint, and every new message, wakes the nodes.

-- NULL when `expression` is a cron expression Depot can run, else why not.
-- Five fields (minute hour day-of-month month day-of-week) or six (seconds first, as Quartz).
-- Each field: `*`, `?`, N, N-M, and lists of those, each optionally `/STEP`.
CREATE FUNCTION depot.cron_problem(expression text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    -- Any whitespace separates and surrounds fields (tabs and newlines too), as in the Swift parser.
    fields text[] := regexp_split_to_array(regexp_replace(expression, '^\s+|\s+$', '', 'g'), '\s+');
    names  text[];
    lows   int[];
    highs  int[];
    part   text;
    bounds text[];
    i      int;
BEGIN
    IF array_length(fields, 1) = 5 THEN
        names := ARRAY['minute', 'hour', 'day-of-month', 'month', 'day-of-week'];
        lows := ARRAY[0, 0, 1, 1, 0];  highs := ARRAY[59, 23, 31, 12, 7];
    ELSIF array_length(fields, 1) = 6 THEN
        names := ARRAY['second', 'minute', 'hour', 'day-of-month', 'month', 'day-of-week'];
        lows := ARRAY[0, 0, 0, 1, 1, 0];  highs := ARRAY[59, 59, 23, 31, 12, 7];
    ELSE
        RETURN format('has %s fields; write 5 (minute hour day month weekday) or 6 (second first), e.g. ''*/5 * * * *''',
                      coalesce(array_length(fields, 1), 0));
    END IF;
    FOR i IN 1 .. array_length(fields, 1) LOOP
        IF fields[i] = '' THEN
            RETURN format('%s field is empty', names[i]);
        END IF;
        FOREACH part IN ARRAY string_to_array(fields[i], ',') LOOP
            bounds := regexp_match(part, '^(?:\*|\?|([0-9]{1,2})(?:-([0-9]{1,2}))?)(?:/([0-9]{1,2}))?$');
            IF bounds IS NULL THEN
                RETURN format('%s field "%s" is not *, ?, N, N-M or a list of them with an optional /STEP', names[i], fields[i]);
            END IF;
            IF (bounds[1] IS NOT NULL AND bounds[1]::int NOT BETWEEN lows[i] AND highs[i])
               OR (bounds[2] IS NOT NULL AND bounds[2]::int NOT BETWEEN lows[i] AND highs[i]) THEN
                RETURN format('%s field "%s" is outside %s-%s', names[i], fields[i], lows[i], highs[i]);
            END IF;
            IF bounds[2] IS NOT NULL AND bounds[2]::int < bounds[1]::int THEN
                RETURN format('%s field "%s" is a range that runs backwards', names[i], fields[i]);
            END IF;
            IF bounds[3] IS NOT NULL AND bounds[3]::int = 0 THEN
                RETURN format('%s field "%s" has a step of 0', names[i], fields[i]);
            END IF;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;

-- Raises check_violation naming the table and column; the hint says how to fix it.
CREATE FUNCTION depot.refuse(tbl text, col text, problem text, hint text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% %', tbl, col, problem USING ERRCODE = 'check_violation', COLUMN = col, TABLE = tbl, HINT = hint;
END
$$;

CREATE FUNCTION depot.processors_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    problem text;
    bookkeeping text[] := ARRAY['is_active', 'deactivated_reason', 'updated_at'];
BEGIN
    -- Switching a processor off (and saying why) is always allowed, even for a row written
    -- before these rules: it is how a node disables a row it cannot run.
    IF TG_OP = 'UPDATE' AND NOT NEW.is_active AND (to_jsonb(NEW) - bookkeeping) = (to_jsonb(OLD) - bookkeeping) THEN
        NEW.updated_at := now();
        RETURN NEW;
    END IF;
    IF NEW.name IS NULL OR char_length(NEW.name) NOT BETWEEN 1 AND 200 OR NEW.name ~ '[[:cntrl:]/]' THEN
        PERFORM depot.refuse('processors', 'name', format('"%s" is not a usable name', NEW.name),
            '1 to 200 characters, no control characters and no "/"');
    END IF;
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('forwarding', 'sampling', 'failover-forwarding') THEN
        PERFORM depot.refuse('processors', 'kind', format('"%s" is not a processor kind', NEW.kind),
            'use forwarding, sampling or failover-forwarding');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM depot.stores s WHERE s.name = NEW.store) THEN
        PERFORM depot.refuse('processors', 'store', format('names store "%s", which is not declared', NEW.store),
            format('declare it first: INSERT INTO depot.stores (name) VALUES (%L)', NEW.store));
    END IF;
    IF NEW.kind = 'forwarding' AND NEW.target_endpoint IS NULL THEN
        PERFORM depot.refuse('processors', 'target_endpoint', 'is required for a forwarding processor',
            'name a row of depot.endpoints');
    END IF;
    IF NEW.target_endpoint IS NOT NULL AND NOT EXISTS (SELECT 1 FROM depot.endpoints e WHERE e.name = NEW.target_endpoint) THEN
        PERFORM depot.refuse('processors', 'target_endpoint', format('names endpoint "%s", which does not exist', NEW.target_endpoint),
            'INSERT INTO depot.endpoints (name, url) VALUES (...) first');
    END IF;
    IF NEW.kind = 'failover-forwarding' AND NEW.target_store IS NULL THEN
        PERFORM depot.refuse('processors', 'target_store', 'is required for a failover-forwarding processor',
            'name the store messages move into');
    END IF;
    IF NEW.target_store IS NOT NULL AND NEW.target_store = NEW.store THEN
        PERFORM depot.refuse('processors', 'target_store', 'is the processor''s own store', 'name another store');
    END IF;
    IF NEW.target_store IS NOT NULL AND NOT EXISTS (SELECT 1 FROM depot.stores s WHERE s.name = NEW.target_store) THEN
        PERFORM depot.refuse('processors', 'target_store', format('names store "%s", which is not declared', NEW.target_store),
            'declare it in depot.stores first');
    END IF;
    IF NEW.fail_store IS NOT NULL AND NEW.fail_store = NEW.store THEN
        PERFORM depot.refuse('processors', 'fail_store', 'is the processor''s own store',
            'name another store, or set fail_store to NULL to dead-letter');
    END IF;
    IF NEW.fail_store IS NOT NULL AND NOT EXISTS (SELECT 1 FROM depot.stores s WHERE s.name = NEW.fail_store) THEN
        PERFORM depot.refuse('processors', 'fail_store', format('names store "%s", which is not declared', NEW.fail_store),
            'declare it in depot.stores first, or set fail_store to NULL to dead-letter');
    END IF;
    IF NEW.kind = 'sampling' AND NEW.handler IS NULL THEN
        PERFORM depot.refuse('processors', 'handler', 'is required for a sampling processor',
            'name a registered handler: log, drop or call:ENDPOINT in the stock binary');
    END IF;
    IF NEW.member_count < 1 THEN
        PERFORM depot.refuse('processors', 'member_count', format('is %s; it must be at least 1', NEW.member_count),
            'set is_active = false to stop a processor');
    END IF;
    IF NEW.interval_ms < 0 THEN
        PERFORM depot.refuse('processors', 'interval_ms', format('is %s; it must be 0 (as fast as the target takes them) or more', NEW.interval_ms), NULL);
    END IF;
    IF NEW.batch_size NOT BETWEEN 1 AND 10000 THEN
        PERFORM depot.refuse('processors', 'batch_size', format('is %s; it must be between 1 and 10000', NEW.batch_size), NULL);
    END IF;
    IF NEW.concurrency NOT BETWEEN 1 AND 10000 THEN
        PERFORM depot.refuse('processors', 'concurrency', format('is %s; it must be between 1 and 10000', NEW.concurrency), NULL);
    END IF;
    IF NEW.retry_interval_ms < 0 THEN
        PERFORM depot.refuse('processors', 'retry_interval_ms', format('is %s; it must be 0 or more', NEW.retry_interval_ms), NULL);
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(NEW.non_retry_status_codes) c WHERE c IS NULL OR c NOT BETWEEN 100 AND 599) THEN
        PERFORM depot.refuse('processors', 'non_retry_status_codes', format('%s holds something that is not an HTTP status', NEW.non_retry_status_codes),
            'list statuses between 100 and 599, e.g. ''{400,422}''');
    END IF;
    IF NEW.cron IS NOT NULL THEN
        problem := depot.cron_problem(NEW.cron);
        IF problem IS NOT NULL THEN
            PERFORM depot.refuse('processors', 'cron', format('"%s" %s', NEW.cron, problem),
                'e.g. ''*/5 * * * *'' (every 5 minutes) or ''*/10 * * * * *'' (every 10 seconds); NULL uses interval_ms');
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.is_active AND NOT OLD.is_active THEN
        NEW.deactivated_reason := NULL;   -- reactivated: the old reason no longer applies
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER processors_check BEFORE INSERT OR UPDATE ON depot.processors
FOR EACH ROW EXECUTE FUNCTION depot.processors_check();

CREATE FUNCTION depot.endpoints_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.url IS NULL OR NEW.url !~ '^https?://[^/?#@[:space:]]+(:[0-9]{1,5})?([/?#][^[:space:]]*)?$' THEN
        PERFORM depot.refuse('endpoints', 'url', format('"%s" is not an http:// or https:// URL', NEW.url),
            'e.g. http://orders.internal:8080/orders');
    END IF;
    IF NEW.method IS NULL OR NEW.method NOT IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE') THEN
        PERFORM depot.refuse('endpoints', 'method', format('"%s" is not a method Depot delivers with', NEW.method),
            'use POST (the default), PUT, PATCH, DELETE or GET');
    END IF;
    IF NEW.timeout_ms IS NULL OR NEW.timeout_ms < 1 THEN
        PERFORM depot.refuse('endpoints', 'timeout_ms', format('is %s; it must be at least 1', NEW.timeout_ms), 'the default is 30000');
    END IF;
    IF NOT depot.headers_are_strings(NEW.headers) THEN
        PERFORM depot.refuse('endpoints', 'headers', 'must be a JSON object of strings', 'e.g. ''{"Authorization": "Bearer ..."}''');
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER endpoints_check BEFORE INSERT OR UPDATE ON depot.endpoints
FOR EACH ROW EXECUTE FUNCTION depot.endpoints_check();

-- Nodes LISTEN on depot_config and reconcile on any change; once per statement, not per row.
CREATE FUNCTION depot.notify_config() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('depot_config', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER processors_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON depot.processors
FOR EACH STATEMENT EXECUTE FUNCTION depot.notify_config();
CREATE TRIGGER endpoints_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON depot.endpoints
FOR EACH STATEMENT EXECUTE FUNCTION depot.notify_config();

-- Idle members LISTEN on depot_messages and wake when their store gets messages. One
-- notification per store per statement (and PostgreSQL folds repeats within a transaction).
CREATE FUNCTION depot.notify_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('depot_messages', s.store) FROM (SELECT DISTINCT n.store FROM new_messages n) s;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_notify AFTER INSERT ON depot.messages
REFERENCING NEW TABLE AS new_messages
FOR EACH STATEMENT EXECUTE FUNCTION depot.notify_messages();

-- store_batch with ids: a message that moves between stores (failover-forwarding, fail_store)
-- keeps its id, and moving it twice (a node died between the two steps) stores it once.
-- A NULL id means a new one. The 8-argument form remains for existing callers.
CREATE FUNCTION depot.store_batch(
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
    PERFORM pg_advisory_xact_lock(hashtextextended(p_store || E'\x1f' || g.key, 0))
    FROM (SELECT DISTINCT k AS key FROM unnest(p_group_keys) AS k WHERE k IS NOT NULL ORDER BY 1) g;
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
               (SELECT e.message_id FROM depot.idempotency_keys e WHERE e.store = p_store AND e.key = i.idem) AS old_key_id,
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

-- The 8-argument form now forwards to the one above, so there is one implementation.
CREATE OR REPLACE FUNCTION depot.store_batch(
    p_store            text,
    p_payloads         bytea[],
    p_headers          jsonb[],
    p_content_types    text[],
    p_priorities       integer[],
    p_delays_ms        bigint[],
    p_group_keys       text[],
    p_idempotency_keys text[]
) RETURNS TABLE (id uuid, created boolean)
LANGUAGE sql AS $$
    SELECT b.id, b.created FROM depot.store_batch(p_store, p_payloads, p_headers, p_content_types, p_priorities,
                                                  p_delays_ms, p_group_keys, p_idempotency_keys, NULL::uuid[]) AS b
$$;

-- Depot's schema: stores, messages, dead letters, and the rows that configure endpoints,
-- processors and nodes. Forward-only: later changes are new files, never edits to this one.

CREATE SCHEMA IF NOT EXISTS depot;

-- A named place messages wait. Declared before use: storing into an undeclared store fails.
CREATE TABLE depot.stores (
    name                text PRIMARY KEY
        CONSTRAINT stores_name_valid CHECK (char_length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    kind                text NOT NULL DEFAULT 'postgres'
        CONSTRAINT stores_kind_valid CHECK (kind IN ('postgres', 'memory', 'journal')),
    -- Where a producer's message goes when the write to this store fails.
    failover_store      text REFERENCES depot.stores (name) ON UPDATE CASCADE ON DELETE SET NULL,
    guaranteed_delivery boolean NOT NULL DEFAULT false,
    description         text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stores_failover_is_another_store CHECK (failover_store IS DISTINCT FROM name),
    CONSTRAINT stores_guaranteed_delivery_needs_failover_store
        CHECK (NOT guaranteed_delivery OR failover_store IS NOT NULL)
);

-- Header values are strings: the Swift side reads them as [String: String].
CREATE FUNCTION depot.headers_are_strings(headers jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_typeof(headers) = 'object'
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(headers) AS h WHERE jsonb_typeof(h.value) <> 'string')
$$;

-- Messages waiting in postgres-kind stores. A row leaves only when its consumer acks it or
-- it is moved to depot.dead_letters.
CREATE TABLE depot.messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Arrival order: "oldest first" and in-group order follow seq, never the clock.
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    store           text NOT NULL REFERENCES depot.stores (name) ON UPDATE CASCADE,
    payload         bytea NOT NULL DEFAULT '',
    headers         jsonb NOT NULL DEFAULT '{}'
        CONSTRAINT messages_headers_are_strings CHECK (depot.headers_are_strings(headers)),
    content_type    text,
    priority        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Not claimable before this: delays and retry back-off.
    available_at    timestamptz NOT NULL DEFAULT now(),
    -- Claims so far; a claim counts even if its lease then expires.
    attempts        integer NOT NULL DEFAULT 0,
    -- Messages sharing a group key are delivered one at a time, in seq order.
    group_key       text,
    idempotency_key text,
    -- The lease: who holds the message and until when. NULL or past = free to claim.
    locked_by       text,
    locked_until    timestamptz,
    last_error      text
);

-- The claim's ORDER BY (priority first, then oldest) within a store.
CREATE INDEX messages_claim_order ON depot.messages (store, priority DESC, seq);
-- "Is there an earlier message in my group?" for the one-at-a-time group rule.
CREATE INDEX messages_group_order ON depot.messages (store, group_key, seq) WHERE group_key IS NOT NULL;

-- Idempotency keys outlive their messages, so a producer's retry after delivery stores nothing twice.
CREATE TABLE depot.idempotency_keys (
    store      text NOT NULL,
    key        text NOT NULL,
    message_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, key)
);

-- Messages taken out of line by policy (attempts exhausted, a non-retry status, an operator).
CREATE TABLE depot.dead_letters (
    id              uuid PRIMARY KEY,
    store           text NOT NULL REFERENCES depot.stores (name) ON UPDATE CASCADE,
    payload         bytea NOT NULL,
    headers         jsonb NOT NULL DEFAULT '{}',
    content_type    text,
    priority        integer NOT NULL DEFAULT 0,
    group_key       text,
    idempotency_key text,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL,
    reason          text NOT NULL,
    last_error      text,
    status_code     integer,
    processor       text,
    node            text,
    dead_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_store ON depot.dead_letters (store, dead_at);

-- HTTP back ends that forwarding processors deliver to.
CREATE TABLE depot.endpoints (
    name       text PRIMARY KEY,
    url        text NOT NULL,
    method     text NOT NULL DEFAULT 'POST',
    timeout_ms integer NOT NULL DEFAULT 30000,
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Message processors: what to consume, where to deliver, and how to behave on failure.
CREATE TABLE depot.processors (
    name                   text PRIMARY KEY,
    kind                   text NOT NULL,
    store                  text NOT NULL REFERENCES depot.stores (name) ON UPDATE CASCADE,
    target_endpoint        text REFERENCES depot.endpoints (name) ON UPDATE CASCADE,
    target_store           text REFERENCES depot.stores (name) ON UPDATE CASCADE,
    handler                text,
    interval_ms            integer NOT NULL DEFAULT 1000,
    cron                   text,
    batch_size             integer NOT NULL DEFAULT 1,
    concurrency            integer NOT NULL DEFAULT 1,
    retry_interval_ms      integer NOT NULL DEFAULT 1000,
    max_delivery_attempts  integer NOT NULL DEFAULT 4,
    max_delivery_drop      boolean NOT NULL DEFAULT false,
    fail_store             text REFERENCES depot.stores (name) ON UPDATE CASCADE,
    non_retry_status_codes integer[] NOT NULL DEFAULT '{}',
    reply_handler          text,
    fault_handler          text,
    deactivate_handler     text,
    is_active              boolean NOT NULL DEFAULT true,
    member_count           integer NOT NULL DEFAULT 1,
    pinned_servers         text[] NOT NULL DEFAULT '{}',
    deactivated_reason     text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Worker nodes and their heartbeats.
CREATE TABLE depot.nodes (
    name         text PRIMARY KEY,
    host         text,
    pid          integer,
    version      text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Stores messages in one statement and returns, in input order, each message's id and whether
-- it was created (false: its idempotency key was seen before, and the first message's id is returned).
-- Every producer path (the Swift library, depot.store, the CLI) goes through here.
CREATE FUNCTION depot.store_batch(
    p_store            text,
    p_payloads         bytea[],
    p_headers          jsonb[],
    p_content_types    text[],
    p_priorities       integer[],
    p_delays_ms        bigint[],
    p_group_keys       text[],
    p_idempotency_keys text[]
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
    -- Producers of one group take turns until commit, so a group's seq order is its commit
    -- order and a claim never sees a later message of a group before an earlier one commits.
    -- Sorted, so two batches naming the same groups lock them in the same order.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_store || E'\x1f' || g.key, 0))
    FROM (SELECT DISTINCT k AS key FROM unnest(p_group_keys) AS k WHERE k IS NOT NULL ORDER BY 1) g;
    FOR r IN
        WITH input AS (
            SELECT u.ord, gen_random_uuid() AS new_id, coalesce(u.payload, '') AS payload,
                   coalesce(u.headers, '{}') AS headers, u.content_type, coalesce(u.priority, 0) AS priority,
                   greatest(coalesce(u.delay_ms, 0), 0) AS delay_ms, u.group_key, u.idem
            FROM unnest(p_payloads, p_headers, p_content_types, p_priorities, p_delays_ms, p_group_keys, p_idempotency_keys)
                 WITH ORDINALITY AS u (payload, headers, content_type, priority, delay_ms, group_key, idem, ord)
        ),
        keyed AS (
            -- ON CONFLICT DO NOTHING: a key seen before (or twice in this batch) claims nothing new.
            INSERT INTO depot.idempotency_keys AS k (store, key, message_id)
            -- Key order, not input order: two batches sharing keys lock them in the same order
            -- and cannot deadlock. Within a batch the first occurrence of a key still wins.
            SELECT p_store, i.idem, i.new_id FROM input i WHERE i.idem IS NOT NULL ORDER BY i.idem, i.ord
            ON CONFLICT DO NOTHING
            RETURNING k.key, k.message_id
        ),
        inserted AS (
            INSERT INTO depot.messages (id, store, payload, headers, content_type, priority, available_at, group_key, idempotency_key)
            SELECT i.new_id, p_store, i.payload, i.headers, i.content_type, i.priority,
                   now() + i.delay_ms * interval '1 millisecond', i.group_key, i.idem
            FROM input i
            WHERE i.idem IS NULL OR EXISTS (SELECT 1 FROM keyed k WHERE k.message_id = i.new_id)
            ORDER BY i.ord  -- seq follows the producer's order
            RETURNING 1
        )
        SELECT i.ord, i.idem, i.new_id,
               k.message_id AS new_key_id,
               (SELECT e.message_id FROM depot.idempotency_keys e WHERE e.store = p_store AND e.key = i.idem) AS old_key_id,
               (SELECT count(*) FROM inserted) AS inserted_count
        FROM input i LEFT JOIN keyed k ON k.key = i.idem
        ORDER BY i.ord
    LOOP
        IF r.idem IS NULL THEN
            id := r.new_id;
            created := true;
        ELSE
            created := r.new_key_id IS NOT DISTINCT FROM r.new_id;
            id := coalesce(r.new_key_id, r.old_key_id);
            IF id IS NULL THEN
                -- Another transaction committed this key after our statement began: read it now.
                SELECT e.message_id INTO id FROM depot.idempotency_keys e WHERE e.store = p_store AND e.key = r.idem;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The psql-friendly producer: SELECT depot.store('orders', '\x00ff'::bytea, '{"k":"v"}');
CREATE FUNCTION depot.store(
    store           text,
    payload         bytea,
    headers         jsonb DEFAULT '{}',
    content_type    text DEFAULT 'application/octet-stream',
    priority        integer DEFAULT 0,
    delay           interval DEFAULT '0',
    group_key       text DEFAULT NULL,
    idempotency_key text DEFAULT NULL
) RETURNS uuid
LANGUAGE sql AS $$
    SELECT b.id FROM depot.store_batch(
        store, ARRAY[payload], ARRAY[headers], ARRAY[content_type], ARRAY[priority],
        ARRAY[(extract(epoch FROM delay) * 1000)::bigint], ARRAY[group_key], ARRAY[idempotency_key]) AS b
$$;

-- Text payload: SELECT depot.store('orders', 'hello');
CREATE FUNCTION depot.store(
    store           text,
    payload         text,
    headers         jsonb DEFAULT '{}',
    content_type    text DEFAULT 'text/plain; charset=utf-8',
    priority        integer DEFAULT 0,
    delay           interval DEFAULT '0',
    group_key       text DEFAULT NULL,
    idempotency_key text DEFAULT NULL
) RETURNS uuid
LANGUAGE sql AS $$
    SELECT depot.store(store, convert_to(payload, 'UTF8'), headers, content_type, priority, delay, group_key, idempotency_key)
$$;

-- JSON payload: SELECT depot.store('orders', '{"order": 7}'::jsonb);
CREATE FUNCTION depot.store(
    store           text,
    payload         jsonb,
    headers         jsonb DEFAULT '{}',
    content_type    text DEFAULT 'application/json',
    priority        integer DEFAULT 0,
    delay           interval DEFAULT '0',
    group_key       text DEFAULT NULL,
    idempotency_key text DEFAULT NULL
) RETURNS uuid
LANGUAGE sql AS $$
    SELECT depot.store(store, convert_to(payload::text, 'UTF8'), headers, content_type, priority, delay, group_key, idempotency_key)
$$;

-- One row per store: what waits, what is leased, what died.
CREATE VIEW depot.store_stats AS
SELECT s.name AS store,
       s.kind,
       coalesce(m.ready, 0) AS ready,
       coalesce(m.delayed, 0) AS delayed,
       coalesce(m.in_flight, 0) AS in_flight,
       coalesce(d.dead_letters, 0) AS dead_letters,
       m.oldest_ready_age_seconds
FROM depot.stores s
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.leased) AS in_flight,
           count(*) FILTER (WHERE NOT x.leased AND x.available_at <= now()) AS ready,
           count(*) FILTER (WHERE NOT x.leased AND x.available_at > now()) AS delayed,
           extract(epoch FROM now() - min(x.created_at) FILTER (WHERE NOT x.leased AND x.available_at <= now()))::float8
               AS oldest_ready_age_seconds
    FROM (SELECT coalesce(mm.locked_until > now(), false) AS leased, mm.available_at, mm.created_at
          FROM depot.messages mm WHERE mm.store = s.name) x
) m ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS dead_letters FROM depot.dead_letters dl WHERE dl.store = s.name
) d ON true;

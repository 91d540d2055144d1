-- The SQL admin surface: views of stores, processors and nodes, and functions to activate,
-- deactivate, resend, purge and peek. Everything here must stay cheap on a store holding
-- millions of messages: no full count on any view, estimates (flagged) where exact counts cost.

-- What nodes report with each heartbeat, so views can say who runs what and whether it is alive.
ALTER TABLE depot.nodes
    -- Processor name → members running it on this node (Node.runningProcessors()).
    ADD COLUMN processors jsonb NOT NULL DEFAULT '{}',
    -- How often the node beats; alive = a heartbeat within 3 intervals. NULL (an older node): 5000.
    ADD COLUMN heartbeat_interval_ms integer;

-- Per processor, node and minute: what the node's members did. Each node adds the deltas of its
-- counters every heartbeat (one upsert) and prunes rows older than an hour, so the table holds
-- at most processors × nodes × 60 rows whatever the traffic.
-- No foreign key to depot.processors: a node's failover drains have no row, and the history of
-- a deleted processor may still be read for an hour.
CREATE TABLE depot.processor_stats (
    processor     text NOT NULL,
    node          text NOT NULL,
    minute        timestamptz NOT NULL,
    delivered     bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    -- The most recent failure reason this node saw for this processor in this minute.
    last_error    text,
    last_error_at timestamptz,
    PRIMARY KEY (processor, minute, node)
);
-- The hourly prune by minute alone.
CREATE INDEX processor_stats_minute ON depot.processor_stats (minute);

-- Newest dead letters first across every store (depot dead-letters): without it each listing
-- sorts the whole table. Dead-lettering is rare, so the extra index write costs little.
CREATE INDEX dead_letters_dead_at ON depot.dead_letters (dead_at);

-- Whether a node's heartbeat is recent: within 3 of its intervals (5 s when it did not say).
CREATE FUNCTION depot.node_alive(heartbeat_at timestamptz, heartbeat_interval_ms integer) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT heartbeat_at > now() - 3 * coalesce(heartbeat_interval_ms, 5000) * interval '1 millisecond'
$$;

-- One row per node.
CREATE VIEW depot.node_status AS
SELECT n.name,
       n.host,
       n.pid,
       n.version,
       n.started_at,
       n.heartbeat_at,
       depot.node_alive(n.heartbeat_at, n.heartbeat_interval_ms) AS alive,
       n.processors,
       coalesce((SELECT sum(v::int) FROM jsonb_each_text(n.processors) AS p (k, v)), 0)::int AS members,
       n.heartbeat_interval_ms
FROM depot.nodes n;

-- One row per processor: its state, the live nodes running it and what they did lately.
-- "Lately" is the minute buckets that began within the last 5 minutes (the current minute and
-- the four before it); last_error is the newest failure kept (an hour).
CREATE VIEW depot.processor_status AS
SELECT p.name,
       p.kind,
       p.store,
       p.is_active AS active,
       p.deactivated_reason,
       coalesce(r.nodes, '{}') AS nodes,
       coalesce(s.delivered, 0)::bigint AS delivered_5m,
       coalesce(s.failed, 0)::bigint AS failed_5m,
       coalesce(s.dead_lettered, 0)::bigint AS dead_lettered_5m,
       e.last_error,
       e.last_error_at
FROM depot.processors p
LEFT JOIN LATERAL (
    SELECT jsonb_object_agg(n.name, n.processors -> p.name ORDER BY n.name) AS nodes
    FROM depot.nodes n
    WHERE n.processors ? p.name AND depot.node_alive(n.heartbeat_at, n.heartbeat_interval_ms)
) r ON true
LEFT JOIN LATERAL (
    SELECT sum(ps.delivered) AS delivered, sum(ps.failed) AS failed, sum(ps.dead_lettered) AS dead_lettered
    FROM depot.processor_stats ps
    WHERE ps.processor = p.name AND ps.minute > now() - interval '5 minutes'
) s ON true
LEFT JOIN LATERAL (
    SELECT ps.last_error, ps.last_error_at
    FROM depot.processor_stats ps
    WHERE ps.processor = p.name AND ps.last_error_at IS NOT NULL
    ORDER BY ps.last_error_at DESC
    LIMIT 1
) e ON true;

-- Rows of `tbl` whose `store` column is `store`, as the planner's statistics estimate them
-- (ANALYZE's most-common-values share of the table's current size). NULL when the statistics
-- do not know the store (never analyzed, or too rare to be a common value).
CREATE FUNCTION depot.estimated_store_rows(tbl regclass, store text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (
        -- reltuples per page times the pages the table has now, as the planner scales it.
        (c.reltuples / greatest(c.relpages, 1)) * (pg_relation_size(c.oid) / current_setting('block_size')::int)
        * st.most_common_freqs[array_position(st.most_common_vals::text::text[], store)]
    )::bigint
    FROM pg_class c
    JOIN pg_namespace ns ON ns.oid = c.relnamespace
    JOIN pg_stats st ON st.schemaname = ns.nspname AND st.tablename = c.relname AND st.attname = 'store'
    WHERE c.oid = tbl AND c.reltuples > 0
$$;

-- One store's depth, for depot.store_stats.
--
-- Why not count(*): a count reads every row of the store, seconds on a store of millions, and
-- store_stats is what dashboards and /metrics poll. Instead the store's first 100,001 rows in
-- delivery order (the claim index, messages_claim_order) are read and classified; a store with
-- no more is counted exactly. A bigger store's total comes from the planner's statistics
-- (depot.estimated_store_rows; never less than what was read), the rows beyond the first
-- 100,000 are split between ready and delayed in the proportion seen in the first ones, and
-- `estimated` says so. In-flight rows and the oldest ready message sit at the head of the line
-- (claims take it in this order), so those two stay exact in practice; a store whose head holds
-- more than 100,000 newer higher-priority messages reports the oldest ready among those.
-- Why no index for in-flight rows: it would put an index write on every claim and release, the
-- hottest statements in Depot, to speed up a view that does not need it.
-- Dead letters are counted the same way, through dead_letters_store (an index-only scan).
--
-- Why a function with SET jit = off: inlined into the view, the planner multiplies this by its
-- guess at depot.stores' rows (hundreds: so small a table is never analyzed) and switches JIT
-- on, which then compiles for half a second to save a few milliseconds. Planned on its own, per
-- store, it costs what it reads.
CREATE FUNCTION depot.store_depth(store text)
RETURNS TABLE (ready bigint, delayed bigint, in_flight bigint, dead_letters bigint, oldest_ready timestamptz, estimated boolean)
LANGUAGE sql STABLE ROWS 1 SET jit = off AS $$
    SELECT (h.ready + round(h.beyond * h.ready_share))::bigint,
           (h.delayed + h.beyond - round(h.beyond * h.ready_share))::bigint,
           h.in_flight,
           d.dead_letters,
           h.oldest_ready,
           h.read > 100000 OR d.capped
    FROM (
        SELECT c.*,
               -- Rows past the ones read: none for a store counted exactly.
               CASE WHEN c.read > 100000
                    THEN greatest(coalesce(depot.estimated_store_rows('depot.messages', store_depth.store), 0) - c.read, 0)
                    ELSE 0 END AS beyond,
               CASE WHEN c.ready + c.delayed = 0 THEN 1.0 ELSE c.ready::numeric / (c.ready + c.delayed) END AS ready_share
        FROM (
            SELECT count(*) AS read,
                   count(*) FILTER (WHERE x.leased) AS in_flight,
                   count(*) FILTER (WHERE NOT x.leased AND x.available_at <= now()) AS ready,
                   count(*) FILTER (WHERE NOT x.leased AND x.available_at > now()) AS delayed,
                   min(x.created_at) FILTER (WHERE NOT x.leased AND x.available_at <= now()) AS oldest_ready
            FROM (SELECT coalesce(m.locked_until > now(), false) AS leased, m.available_at, m.created_at
                  FROM depot.messages m
                  WHERE m.store = store_depth.store
                  ORDER BY m.priority DESC, m.seq  -- the head of the line, through the claim index
                  LIMIT 100001) x
        ) c
    ) h
    CROSS JOIN (
        SELECT CASE WHEN y.read > 100000
                    THEN greatest(coalesce(depot.estimated_store_rows('depot.dead_letters', store_depth.store), 0), y.read)
                    ELSE y.read END AS dead_letters,
               y.read > 100000 AS capped
        FROM (SELECT count(*) AS read
              FROM (SELECT 1 FROM depot.dead_letters dl WHERE dl.store = store_depth.store LIMIT 100001) z) y
    ) d
$$;

-- One row per store: what waits, what is leased, what died (see depot.store_depth for how it
-- stays cheap). `estimated` is true when a count is an estimate.
CREATE OR REPLACE VIEW depot.store_stats AS
SELECT s.name AS store,
       s.kind,
       d.ready,
       d.delayed,
       d.in_flight,
       d.dead_letters,
       extract(epoch FROM now() - d.oldest_ready)::float8 AS oldest_ready_age_seconds,
       d.estimated
FROM depot.stores s
CROSS JOIN LATERAL depot.store_depth(s.name) d;

-- Raises undefined_object for a processor that has no row, with where to look.
CREATE FUNCTION depot.require_processor(name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM depot.processors p WHERE p.name = require_processor.name) THEN
        RAISE EXCEPTION 'processor "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM depot.processors (or depot processors) lists them; names are case-sensitive';
    END IF;
END
$$;

-- Raises undefined_object for a store that is not declared.
CREATE FUNCTION depot.require_store(name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF name IS NULL OR NOT EXISTS (SELECT 1 FROM depot.stores s WHERE s.name = require_store.name) THEN
        RAISE EXCEPTION 'store "%" is not declared', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM depot.stores (or depot stores) lists them; names are case-sensitive';
    END IF;
END
$$;

-- Starts a processor on every node that may run it, with a fresh round of delivery attempts.
-- True when it was inactive; false when it was already active.
CREATE FUNCTION depot.activate_processor(name text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM depot.require_processor(name);
    -- The guard makes a second call a no-op that says so (and wakes no node).
    UPDATE depot.processors p SET is_active = true WHERE p.name = activate_processor.name AND NOT p.is_active;
    RETURN FOUND;
END
$$;

-- Stops a processor on every node (they finish or release what they hold), saying why.
-- True when it was active; false when it was already inactive (its first reason is kept).
CREATE FUNCTION depot.deactivate_processor(name text, reason text DEFAULT 'deactivated by an operator') RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM depot.require_processor(name);
    UPDATE depot.processors p SET is_active = false, deactivated_reason = coalesce(reason, 'deactivated by an operator')
    WHERE p.name = deactivate_processor.name AND p.is_active;
    RETURN FOUND;
END
$$;

-- Moves dead letters back into their stores: same id, attempts 0, available now, after what is
-- already waiting. NULL store = every store; NULL ids = every dead letter (of that store).
-- Returns how many moved. A dead letter whose id is already a message again stays put (ON
-- CONFLICT): it is never stored twice, and never deleted without having gone back.
CREATE FUNCTION depot.resend_dead_letters(store text DEFAULT NULL, ids uuid[] DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    moved integer;
BEGIN
    IF store IS NOT NULL THEN
        PERFORM depot.require_store(store);
    END IF;
    -- Grouped messages are stored under their group's lock, as store_batch does, so a group's
    -- seq order stays its commit order. Sorted, so two callers lock in the same order.
    PERFORM pg_advisory_xact_lock(hashtextextended(g.store || E'\x1f' || g.group_key, 0))
    FROM (SELECT DISTINCT d.store, d.group_key FROM depot.dead_letters d
          WHERE d.group_key IS NOT NULL
            AND (resend_dead_letters.store IS NULL OR d.store = resend_dead_letters.store)
            AND (resend_dead_letters.ids IS NULL OR d.id = ANY (resend_dead_letters.ids))
          ORDER BY 1, 2) g;
    -- One statement: a dead letter leaves only if its message went back in.
    WITH picked AS (
        SELECT d.* FROM depot.dead_letters d
        WHERE (resend_dead_letters.store IS NULL OR d.store = resend_dead_letters.store)
          AND (resend_dead_letters.ids IS NULL OR d.id = ANY (resend_dead_letters.ids))
        ORDER BY d.dead_at, d.id
        FOR UPDATE  -- a concurrent resend or purge of the same rows waits, then finds them gone
    ),
    back AS (
        INSERT INTO depot.messages AS m (id, store, payload, headers, content_type, priority, created_at, available_at,
                                         attempts, group_key, idempotency_key, last_error)
        SELECT p.id, p.store, p.payload, p.headers, p.content_type, p.priority, p.created_at, now(),
               0, p.group_key, p.idempotency_key, p.last_error
        FROM picked p
        ORDER BY p.dead_at, p.id  -- they go back in the order they died
        ON CONFLICT (id) DO NOTHING
        RETURNING m.id
    ),
    gone AS (
        DELETE FROM depot.dead_letters d USING back b WHERE d.id = b.id RETURNING 1
    )
    SELECT count(*) INTO moved FROM gone;
    RETURN moved;
END
$$;

-- Deletes dead letters for good. NULL store = every store; NULL ids = all (of that store).
CREATE FUNCTION depot.purge_dead_letters(store text DEFAULT NULL, ids uuid[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint;
BEGIN
    IF store IS NOT NULL THEN
        PERFORM depot.require_store(store);
    END IF;
    DELETE FROM depot.dead_letters d
    WHERE (purge_dead_letters.store IS NULL OR d.store = purge_dead_letters.store)
      AND (purge_dead_letters.ids IS NULL OR d.id = ANY (purge_dead_letters.ids));
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

-- Deletes every message of a store, in flight or not (a consumer's later ack finds nothing).
-- Its dead letters stay: depot.purge_dead_letters(store) removes those.
CREATE FUNCTION depot.purge_store(store text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint;
BEGIN
    PERFORM depot.require_store(store);
    DELETE FROM depot.messages m WHERE m.store = purge_store.store;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

-- The first `max_bytes` bytes of a payload as text: as is when they are UTF-8 (a character cut
-- at the end is dropped), else escaped (bytea 'escape' format: \ooo for non-printing bytes).
-- "…" marks a payload that was cut.
CREATE FUNCTION depot.payload_preview(payload bytea, max_bytes integer DEFAULT 200) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    head   bytea := substring(payload FROM 1 FOR max_bytes);
    suffix text := CASE WHEN length(payload) > max_bytes THEN '…' ELSE '' END;
    cut    integer;
BEGIN
    -- A UTF-8 character is at most 4 bytes, so at most 3 of a cut one remain at the end.
    FOR cut IN 0 .. CASE WHEN suffix = '' THEN 0 ELSE 3 END LOOP
        BEGIN
            RETURN convert_from(substring(head FROM 1 FOR length(head) - cut), 'UTF8') || suffix;
        EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
            NULL;  -- not UTF-8 (yet): try one byte shorter, then escape
        END;
    END LOOP;
    RETURN encode(head, 'escape') || suffix;
END
$$;

-- The next `n` messages of a store in delivery order (priority, then arrival), whatever their
-- state, without claiming them. Reads n rows through the claim index.
CREATE FUNCTION depot.peek(store text, n integer DEFAULT 10)
RETURNS TABLE (id uuid, state text, priority integer, attempts integer, created_at timestamptz,
               available_at timestamptz, content_type text, group_key text, headers jsonb, preview text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM depot.require_store(store);
    IF n IS NULL OR n NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'peek n is %; it must be between 1 and 10000', n
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. SELECT * FROM depot.peek(''orders'', 20)';
    END IF;
    RETURN QUERY
    SELECT m.id,
           CASE WHEN m.locked_until > now() THEN 'in_flight'
                WHEN m.available_at > now() THEN 'delayed'
                ELSE 'ready' END,
           m.priority, m.attempts, m.created_at, m.available_at, m.content_type, m.group_key, m.headers,
           depot.payload_preview(m.payload)
    FROM depot.messages m
    WHERE m.store = peek.store
    ORDER BY m.priority DESC, m.seq
    LIMIT n;
END
$$;

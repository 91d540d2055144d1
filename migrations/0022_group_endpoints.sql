-- Aggregating and resequencing processors send to an endpoint (issue 24): a row sets either
-- target_store (as before) or target_endpoint, never both. With target_endpoint the release still
-- commits in one statement into a store, the processor's hand-off store (named by
-- depot.processor_handoff_store: the processor's name and "/handoff", which no other processor
-- row can be named, since processor names hold no "/"); the same processor then delivers from
-- there to the endpoint with the forwarding rules (retry_interval_ms, max_delivery_attempts,
-- max_delivery_drop, fail_store, non_retry_status_codes). So the group side stays exactly once
-- and the endpoint gets each release at least once, as from any forwarding processor. The row
-- check declares the hand-off store when the row is written (a postgres store, described as the
-- hand-off); it stays when the processor is removed, with whatever still waits in it.
--
-- A resequencing row may set correlation_key instead of correlation_header: one fixed key for
-- every message of its store, so the whole store is one sequence (Synapse's resequence message
-- store, which the Synapse import maps here). The node sets each claimed message's group_key to it
-- in the transaction that places the message, and depot.group_resequence correlates by group key.
--
-- Speed (the aggregating processor): depot.group_aggregate adds a claimed batch to its groups
-- with one statement per step instead of one depot.group_add per group, and it and
-- depot.group_resequence find the claimed members by id alone (below).
--
-- Also: depot.prune() removes depot.sequence_gaps rows older than the new setting
-- sequence_gap_retention (7 days), so that table no longer grows for ever.

ALTER TABLE depot.processors ADD COLUMN correlation_key text;

-- The store an aggregating or resequencing processor with a target_endpoint releases into.
CREATE FUNCTION depot.processor_handoff_store(p_processor text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_processor || '/handoff'
$$;

CREATE OR REPLACE FUNCTION depot.processors_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    problem text;
    bookkeeping text[] := ARRAY['is_active', 'deactivated_reason', 'updated_at'];
    v_handoff text;
    v_handoff_kind text;
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
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('forwarding', 'sampling', 'failover-forwarding', 'aggregating', 'resequencing') THEN
        PERFORM depot.refuse('processors', 'kind', format('"%s" is not a processor kind', NEW.kind),
            'use forwarding, sampling, failover-forwarding, aggregating or resequencing');
    END IF;
    IF NEW.kind IN ('aggregating', 'resequencing') AND NEW.target_store IS NULL AND NEW.target_endpoint IS NULL THEN
        PERFORM depot.refuse('processors', 'target_store', format('is required for %s %s processor, or target_endpoint',
                CASE NEW.kind WHEN 'aggregating' THEN 'an' ELSE 'a' END, NEW.kind),
            'name the store released messages go to, or set target_endpoint to send them to an endpoint');
    END IF;
    IF NEW.kind IN ('aggregating', 'resequencing') AND NEW.target_store IS NOT NULL AND NEW.target_endpoint IS NOT NULL THEN
        PERFORM depot.refuse('processors', 'target_endpoint', format('is set with target_store; %s %s processor sends to one of them',
                CASE NEW.kind WHEN 'aggregating' THEN 'an' ELSE 'a' END, NEW.kind),
            'set target_store = NULL to send to the endpoint (through the hand-off store), or target_endpoint = NULL');
    END IF;
    IF NEW.kind = 'aggregating' AND NEW.release_size IS NULL AND NEW.release_count_header IS NULL AND NEW.group_timeout_ms IS NULL THEN
        PERFORM depot.refuse('processors', 'release_size', 'is required for an aggregating processor without release_count_header or group_timeout_ms',
            'e.g. 1000: a group is released when it holds that many messages');
    END IF;
    IF NEW.kind = 'resequencing' AND NEW.sequence_header IS NULL THEN
        PERFORM depot.refuse('processors', 'sequence_header', 'is required for a resequencing processor',
            'name the header holding each message''s sequence number, e.g. ''Depot-Sequence-Number'' (the default when the column is left out)');
    END IF;
    IF NEW.sequence_header IS NOT NULL AND char_length(NEW.sequence_header) NOT BETWEEN 1 AND 200 THEN
        PERFORM depot.refuse('processors', 'sequence_header', 'must be 1 to 200 characters',
            'e.g. ''Depot-Sequence-Number''');
    END IF;
    IF NEW.gap_timeout_ms IS NOT NULL AND NEW.gap_timeout_ms < 0 THEN
        PERFORM depot.refuse('processors', 'gap_timeout_ms', format('is %s; it must be 0 or more, or NULL to wait for every gap to fill', NEW.gap_timeout_ms),
            'e.g. 30000: a message held 30 s behind a missing number goes out, and the gap is recorded');
    END IF;
    IF NEW.output_format IS NULL OR NEW.output_format NOT IN ('json_array', 'ndjson', 'concatenated') THEN
        PERFORM depot.refuse('processors', 'output_format', format('is %s', coalesce(quote_literal(NEW.output_format), 'NULL')),
            'use ''json_array'' (the default), ''ndjson'' or ''concatenated''');
    END IF;
    IF NEW.group_timeout_ms IS NOT NULL AND NEW.group_timeout_ms < 0 THEN
        PERFORM depot.refuse('processors', 'group_timeout_ms', format('is %s; it must be 0 or more, or NULL for none', NEW.group_timeout_ms),
            'e.g. 60000: a group that waited a minute is released with what it holds');
    END IF;
    IF NEW.group_timeout_from IS NULL OR NEW.group_timeout_from NOT IN ('first', 'last') THEN
        PERFORM depot.refuse('processors', 'group_timeout_from', format('is %s', coalesce(quote_literal(NEW.group_timeout_from), 'NULL')),
            'use ''first'' (since the group''s first message) or ''last'' (since its last change)');
    END IF;
    IF NEW.group_timeout_action IS NULL OR NEW.group_timeout_action NOT IN ('send', 'dead_letter') THEN
        PERFORM depot.refuse('processors', 'group_timeout_action', format('is %s', coalesce(quote_literal(NEW.group_timeout_action), 'NULL')),
            'use ''send'' (release what the group holds) or ''dead_letter'' (move its members to the dead letters)');
    END IF;
    IF NEW.release_count_header IS NOT NULL AND char_length(NEW.release_count_header) NOT BETWEEN 1 AND 200 THEN
        PERFORM depot.refuse('processors', 'release_count_header', 'must be 1 to 200 characters, or NULL',
            'e.g. ''Depot-Group-Count''');
    END IF;
    IF NEW.release_size IS NOT NULL AND NEW.release_size < 1 THEN
        PERFORM depot.refuse('processors', 'release_size', format('is %s; it must be at least 1', NEW.release_size),
            'e.g. 1000: a group is released when it holds that many messages');
    END IF;
    IF NEW.correlation_header IS NOT NULL AND char_length(NEW.correlation_header) NOT BETWEEN 1 AND 200 THEN
        PERFORM depot.refuse('processors', 'correlation_header', 'must be 1 to 200 characters, or NULL for the message''s group key',
            'e.g. ''Correlation-Id''');
    END IF;
    IF NEW.correlation_key IS NOT NULL AND NEW.kind <> 'resequencing' THEN
        PERFORM depot.refuse('processors', 'correlation_key', format('is set on %s processor; it is for resequencing processors',
                CASE NEW.kind WHEN 'aggregating' THEN 'an ' ELSE 'a ' END || NEW.kind),
            'set correlation_key = NULL');
    END IF;
    IF NEW.correlation_key IS NOT NULL AND NEW.correlation_header IS NOT NULL THEN
        PERFORM depot.refuse('processors', 'correlation_key', 'is set with correlation_header; a resequencer correlates by one of them',
            'set correlation_key = NULL to correlate by the header, or correlation_header = NULL to make the whole store one sequence');
    END IF;
    IF NEW.correlation_key IS NOT NULL AND char_length(NEW.correlation_key) NOT BETWEEN 1 AND 200 THEN
        PERFORM depot.refuse('processors', 'correlation_key', 'must be 1 to 200 characters, or NULL',
            'e.g. the store''s name: every message of the store is then one sequence');
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
    IF NEW.kind IN ('aggregating', 'resequencing') AND NEW.target_endpoint IS NOT NULL THEN
        v_handoff := depot.processor_handoff_store(NEW.name);
        SELECT s.kind INTO v_handoff_kind FROM depot.stores s WHERE s.name = v_handoff;
        IF NOT FOUND THEN
            INSERT INTO depot.stores (name, description)
            VALUES (v_handoff, format('hand-off of %s processor %s to endpoint %s', NEW.kind, NEW.name, NEW.target_endpoint));
        ELSIF v_handoff_kind <> 'postgres' THEN
            PERFORM depot.refuse('processors', 'target_endpoint', format('needs the hand-off store "%s", which is declared with kind %s', v_handoff, v_handoff_kind),
                format('the hand-off store must be a postgres store: UPDATE depot.stores SET kind = ''postgres'' WHERE name = %L', v_handoff));
        END IF;
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
-- depot.sequence_gaps kept every gap for ever. A gap row is what an operator reads to learn which
-- numbers a resequencer skipped (the released message's Depot-Sequence-Gap header says it too);
-- a week covers a weekend and the week after, like idempotency_key_retention's default.
ALTER TABLE depot.settings ADD COLUMN sequence_gap_retention interval NOT NULL DEFAULT '7 days'
    CONSTRAINT sequence_gap_retention_positive CHECK (sequence_gap_retention > interval '0');

-- The prune walks the oldest gaps first instead of reading the whole table.
CREATE INDEX sequence_gaps_recorded_at ON depot.sequence_gaps (recorded_at);

-- 0009's prune, also removing up to p_limit gaps recorded longer than sequence_gap_retention ago
-- (oldest first). Its result gains a column, so it is dropped and created again.
DROP FUNCTION depot.prune(integer);
CREATE FUNCTION depot.prune(p_limit integer DEFAULT 10000)
RETURNS TABLE (idempotency_keys integer, dead_nodes integer, sequence_gaps integer)
LANGUAGE sql AS $$
    WITH settings AS (SELECT idempotency_key_retention, dead_node_retention, sequence_gap_retention FROM depot.settings),
    expired AS (
        SELECT k.ctid FROM depot.idempotency_keys k
        WHERE k.created_at < now() - (SELECT idempotency_key_retention FROM settings)
          AND NOT EXISTS (SELECT 1 FROM depot.messages m WHERE m.id = k.message_id)
        ORDER BY k.created_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ),
    keys AS (
        DELETE FROM depot.idempotency_keys k USING expired e WHERE k.ctid = e.ctid RETURNING 1
    ),
    nodes AS (
        DELETE FROM depot.nodes n
        WHERE n.heartbeat_at < now() - (SELECT dead_node_retention FROM settings)
          AND NOT depot.node_alive(n.heartbeat_at, n.heartbeat_interval_ms)
        RETURNING 1
    ),
    old_gaps AS (
        SELECT g.id FROM depot.sequence_gaps g
        WHERE g.recorded_at < now() - (SELECT sequence_gap_retention FROM settings)
        ORDER BY g.recorded_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ),
    gaps AS (
        DELETE FROM depot.sequence_gaps g USING old_gaps o WHERE g.id = o.id RETURNING 1
    )
    SELECT (SELECT count(*) FROM keys)::integer, (SELECT count(*) FROM nodes)::integer, (SELECT count(*) FROM gaps)::integer
$$;

-- 0020's group_aggregate, set-based: one statement per step for the whole batch instead of one
-- depot.group_add per group. With members spread over many groups (a batch of 100 touching 100
-- groups) the per-group calls were most of the processor's time. The claimed members are found
-- by id alone: `(m.store = p_store) IS TRUE` keeps the store's condition out of the index scan,
-- where the planner, misled by statistics taken while the store was small, ANDed the primary
-- key with all of the store's entries in messages_claim_order. Each group is written once per
-- batch (one upsert that locks, grows and touches it), not twice: message_groups.updated_at is
-- indexed, so every write is a new index entry in each of its three indexes. Same results as
-- before: groups are created or locked in key order (so two members never wait on each other in
-- a circle), a completed group starts again, a member already in a group is not added twice,
-- the largest count a member's p_count_header carries becomes the group's condition, and every
-- group that reaches its count (else p_release_size) is released by depot.group_release, in key
-- order. Messages without a correlation key stay leased, for the caller to dead-letter.
CREATE OR REPLACE FUNCTION depot.group_aggregate(p_store text, p_consumer text, p_ids uuid[], p_correlation_header text,
                                                 p_release_size integer, p_target_store text, p_count_header text DEFAULT NULL,
                                                 p_format text DEFAULT 'json_array')
RETURNS TABLE (group_key text, released_id uuid, released_size bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_keys text[];
    v_payloads bytea[];
    v_headers jsonb[];
    v_types text[];
    v_ids uuid[];
    v_groups text[];
    v_restart text[];
    v_recount text[];
    v_bad text;
    g record;
BEGIN
    IF p_release_size < 1 THEN
        PERFORM depot.group_refuse('release_size', format('must be at least 1, got %s', coalesce(p_release_size::text, 'NULL')),
                                   'e.g. 1000, or NULL to release only by p_count_header or timeout');
    END IF;
    IF p_target_store IS NULL THEN
        PERFORM depot.group_refuse('target_store', 'is NULL', 'name the store released groups go to');
    END IF;
    WITH taken AS (
        DELETE FROM depot.messages m
        WHERE m.id = ANY(p_ids) AND (m.store = p_store) IS TRUE AND m.locked_by = p_consumer
          AND coalesce(m.headers ->> p_correlation_header, m.group_key) IS NOT NULL
        RETURNING coalesce(m.headers ->> p_correlation_header, m.group_key) AS key, m.seq, m.id, m.payload, m.headers, m.content_type
    )
    SELECT array_agg(t.key ORDER BY t.key, t.seq), array_agg(t.payload ORDER BY t.key, t.seq), array_agg(t.headers ORDER BY t.key, t.seq),
           array_agg(t.content_type ORDER BY t.key, t.seq), array_agg(t.id ORDER BY t.key, t.seq)
    INTO v_keys, v_payloads, v_headers, v_types, v_ids
    FROM taken t;
    IF v_keys IS NULL THEN
        RETURN;
    END IF;
    v_groups := ARRAY(SELECT DISTINCT k FROM unnest(v_keys) AS k ORDER BY k);
    SELECT k INTO v_bad FROM unnest(v_groups) AS k WHERE char_length(k) NOT BETWEEN 1 AND 1000 LIMIT 1;
    IF FOUND THEN
        PERFORM depot.group_check(p_store, v_bad);
    END IF;
    PERFORM depot.hold_store(p_store);  -- names an undeclared store, as storing a message does
    -- Each group created, or locked and grown, in key order, by one upsert: its size grows by its
    -- members in the batch, its condition becomes the largest count a member's p_count_header
    -- carries (a count that is not a plain number is ignored rather than failing the batch).
    WITH counted AS (
        SELECT u.key,
               count(*) AS n,
               max(CASE WHEN p_count_header IS NOT NULL AND u.headers ->> p_count_header ~ '^[0-9]{1,18}$'
                        THEN (u.headers ->> p_count_header)::bigint END)::text AS count
        FROM unnest(v_keys, v_headers) AS u (key, headers)
        GROUP BY u.key
    ),
    grown AS (
        INSERT INTO depot.message_groups AS m (store, group_key, size, condition)
        SELECT p_store, c.key, c.n, c.count FROM counted c ORDER BY c.key
        ON CONFLICT (store, group_key) DO UPDATE
        SET size = m.size + EXCLUDED.size, condition = coalesce(EXCLUDED.condition, m.condition), updated_at = now()
        WHERE NOT m.complete
        RETURNING m.group_key
    )
    SELECT array_agg(c.key ORDER BY c.key) INTO v_restart FROM counted c WHERE c.key NOT IN (SELECT g.group_key FROM grown g);
    -- A completed group (locked by the upsert, not grown) starts again: the aggregator's 'new_group'.
    IF v_restart IS NOT NULL THEN
        DELETE FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = ANY(v_restart);
        INSERT INTO depot.message_groups (store, group_key, size, condition)
        SELECT p_store, u.key, count(*),
               max(CASE WHEN p_count_header IS NOT NULL AND u.headers ->> p_count_header ~ '^[0-9]{1,18}$'
                        THEN (u.headers ->> p_count_header)::bigint END)::text
        FROM unnest(v_keys, v_headers) AS u (key, headers)
        WHERE u.key = ANY(v_restart)
        GROUP BY u.key ORDER BY u.key;
    END IF;
    -- The members, in their groups' key order and the store's order within a group. A group
    -- where a member was not inserted (its id is in a group already: counted above, not added)
    -- gets its size counted again.
    WITH added AS (
        INSERT INTO depot.group_messages AS m (store, group_key, id, payload, headers, content_type)
        SELECT p_store, u.key, u.id, u.payload, coalesce(u.headers, '{}'), u.content_type
        FROM unnest(v_keys, v_payloads, v_headers, v_types, v_ids) WITH ORDINALITY AS u (key, payload, headers, content_type, id, ord)
        ORDER BY u.ord
        ON CONFLICT (store, id) DO NOTHING
        RETURNING m.group_key
    ),
    expected AS (
        SELECT u.key, count(*) AS n FROM unnest(v_keys) AS u (key) GROUP BY u.key
    ),
    actual AS (
        SELECT a.group_key, count(*) AS n FROM added a GROUP BY a.group_key
    )
    SELECT array_agg(e.key) INTO v_recount FROM expected e LEFT JOIN actual a ON a.group_key = e.key
    WHERE e.n <> coalesce(a.n, 0);
    IF v_recount IS NOT NULL THEN
        UPDATE depot.message_groups m
        SET size = (SELECT count(*) FROM depot.group_messages x WHERE x.store = p_store AND x.group_key = m.group_key)
        WHERE m.store = p_store AND m.group_key = ANY(v_recount);
    END IF;
    FOR g IN
        SELECT m.group_key AS key, m.size FROM depot.message_groups m
        WHERE m.store = p_store AND m.group_key = ANY(v_groups)
          AND m.size >= coalesce(CASE WHEN m.condition ~ '^[0-9]{1,18}$' THEN m.condition::bigint END, p_release_size)
        ORDER BY m.group_key
    LOOP
        group_key := g.key;
        released_id := depot.group_release(p_store, g.key, p_target_store, p_format);
        released_size := g.size;
        RETURN NEXT;
    END LOOP;
END
$$;

-- 0020's group_resequence with the same change to how it finds the claimed members: by id alone,
-- the store checked as a filter (see group_aggregate above). Otherwise as it was.
CREATE OR REPLACE FUNCTION depot.group_resequence(p_store text, p_consumer text, p_ids uuid[], p_correlation_header text, p_sequence_header text, p_timeout_ms bigint, p_target_store text, p_processor text DEFAULT NULL::text)
 RETURNS TABLE(group_key text, released integer, dead_lettered integer, gaps text[])
 LANGUAGE plpgsql
AS $$
DECLARE
    v_keys text[];
    v_payloads bytea[];
    v_headers jsonb[];
    v_types text[];
    v_ids uuid[];
    n integer;
    i integer := 1;
    j integer;
BEGIN
    IF p_sequence_header IS NULL THEN
        PERFORM depot.group_refuse('sequence_header', 'is NULL', 'e.g. ''Depot-Sequence-Number''');
    END IF;
    IF p_target_store IS NULL THEN
        PERFORM depot.group_refuse('target_store', 'is NULL', 'name the store messages go to in order');
    END IF;
    WITH taken AS (
        DELETE FROM depot.messages m
        WHERE m.id = ANY(p_ids) AND (m.store = p_store) IS TRUE AND m.locked_by = p_consumer
          AND coalesce(m.headers ->> p_correlation_header, m.group_key) IS NOT NULL
          AND depot.sequence_number(m.headers, p_sequence_header) IS NOT NULL
        RETURNING coalesce(m.headers ->> p_correlation_header, m.group_key) AS key, m.seq, m.id, m.payload, m.headers, m.content_type
    )
    SELECT array_agg(t.key ORDER BY t.key, t.seq), array_agg(t.payload ORDER BY t.key, t.seq), array_agg(t.headers ORDER BY t.key, t.seq),
           array_agg(t.content_type ORDER BY t.key, t.seq), array_agg(t.id ORDER BY t.key, t.seq)
    INTO v_keys, v_payloads, v_headers, v_types, v_ids
    FROM taken t;
    n := coalesce(cardinality(v_keys), 0);
    WHILE i <= n LOOP
        j := i;
        WHILE j < n AND v_keys[j + 1] = v_keys[i] LOOP
            j := j + 1;
        END LOOP;
        PERFORM depot.group_add(p_store, v_keys[i], v_payloads[i:j], v_headers[i:j], v_types[i:j], v_ids[i:j], 'new_group');
        RETURN QUERY SELECT v_keys[i], r.released, r.dead_lettered, r.gaps
        FROM depot.group_resequence_release(p_store, v_keys[i], p_sequence_header, p_timeout_ms, p_target_store, p_processor) r;
        i := j + 1;
    END LOOP;
END
$$;

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

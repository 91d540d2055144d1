-- A consumer API in SQL, for applications in any language and for psql: claim, ack, release,
-- extend a lease, dead-letter. Each is one statement with the Swift store's semantics and guards
-- (PostgresStore): a claim is a lease counted as an attempt, priority first then arrival, a group
-- one message at a time; every change is guarded by the lease holder's name, so a consumer whose
-- lease ran out cannot ack, release or dead-letter a message someone else now holds.

-- Refuses a consumer name or a lease Depot could not honour, naming the argument.
CREATE FUNCTION depot.require_consumer(consumer text, lease interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF consumer IS NULL OR length(consumer) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'consumer must be a name of 1 to 200 characters, got %', coalesce(quote_literal(consumer), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'name the consumer, e.g. ''billing-worker-1''';
    END IF;
    IF lease IS NULL OR lease <= interval '0' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease must be longer than 0 and at most 1 day, got %', coalesce(lease::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. interval ''30 seconds''';
    END IF;
END
$$;

-- Leases up to p_limit ready messages of p_store to p_consumer for p_lease and returns them
-- (RETURNING has no order: ORDER BY priority DESC, seq to hand them out in delivery order).
-- The statement is PostgresStore's claim, planned the way the store plans it: sorting off, so it
-- walks messages_claim_order whatever the statistics say (ClaimPlan), and a custom plan each call
-- with the limit known (a generic plan would guess a tenth of the table).
CREATE FUNCTION depot.claim(p_store text, p_consumer text, p_limit integer DEFAULT 1, p_lease interval DEFAULT interval '30 seconds')
RETURNS SETOF depot.messages
LANGUAGE plpgsql
SET enable_sort = off
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    PERFORM depot.require_store(p_store);
    PERFORM depot.require_consumer(p_consumer, p_lease);
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'limit is %; it must be between 1 and 10000', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. SELECT * FROM depot.claim(''orders'', ''worker-1'', 100)';
    END IF;
    RETURN QUERY
    WITH next AS (
        SELECT m.ctid FROM depot.messages m
        WHERE m.store = p_store AND (m.locked_until IS NULL OR m.locked_until <= now())
          AND m.available_at <= now()
          AND (m.group_key IS NULL OR NOT EXISTS (
                SELECT 1 FROM depot.messages e
                WHERE e.store = m.store AND e.group_key = m.group_key
                  AND (e.seq < m.seq OR e.locked_until > now())))
        ORDER BY m.priority DESC, m.seq LIMIT p_limit FOR UPDATE SKIP LOCKED
    )
    UPDATE depot.messages m
    SET locked_by = p_consumer, locked_until = now() + p_lease, attempts = m.attempts + 1
    FROM next WHERE m.ctid = next.ctid
    RETURNING m.*;
END
$$;

-- Removes the messages p_consumer holds; returns how many. Ids it no longer holds are left alone.
CREATE FUNCTION depot.ack(p_ids uuid[], p_consumer text) RETURNS integer
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM depot.messages WHERE id = ANY(p_ids) AND locked_by = p_consumer RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;

-- Gives a held message back, claimable again after p_retry_in, recording p_error if given.
-- False when p_consumer no longer holds it.
CREATE FUNCTION depot.release(p_id uuid, p_consumer text, p_retry_in interval DEFAULT interval '0', p_error text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql AS $$
    WITH released AS (
        UPDATE depot.messages
        SET locked_by = NULL, locked_until = NULL, available_at = now() + greatest(coalesce(p_retry_in, interval '0'), interval '0'),
            last_error = coalesce(p_error, last_error)
        WHERE id = p_id AND locked_by = p_consumer
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM released)
$$;

-- Pushes the leases p_consumer holds on p_ids to p_lease from now; returns how many.
CREATE FUNCTION depot.extend_lease(p_ids uuid[], p_consumer text, p_lease interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    extended integer;
BEGIN
    PERFORM depot.require_consumer(p_consumer, p_lease);
    UPDATE depot.messages SET locked_until = now() + p_lease WHERE id = ANY(p_ids) AND locked_by = p_consumer;
    GET DIAGNOSTICS extended = ROW_COUNT;
    RETURN extended;
END
$$;

-- Moves a message p_consumer holds to depot.dead_letters with p_reason, in one statement: it
-- leaves the store only if it lands there. False when p_consumer no longer holds it.
CREATE FUNCTION depot.dead_letter(p_id uuid, p_consumer text, p_reason text) RETURNS boolean
LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM depot.messages WHERE id = p_id AND locked_by = p_consumer
        RETURNING id, store, payload, headers, content_type, priority, group_key, idempotency_key, created_at, attempts, last_error
    ),
    dead AS (
        INSERT INTO depot.dead_letters (id, store, payload, headers, content_type, priority, group_key,
            idempotency_key, created_at, attempts, reason, last_error, processor, node)
        SELECT id, store, payload, headers, content_type, priority, group_key, idempotency_key, created_at,
               attempts, coalesce(p_reason, 'dead-lettered by ' || p_consumer), last_error, NULL, p_consumer
        FROM gone
        ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, last_error = excluded.last_error,
            processor = excluded.processor, node = excluded.node, attempts = excluded.attempts, dead_at = now()
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM dead)
$$;

-- Per-message operations for operators: browse a store page by page, and delete, retry now or
-- move single messages. What a consumer holds (a live lease) is refused unless forced, so an
-- operator never pulls a message from under a delivery by accident.

-- Where a message stands: in_flight (leased), delayed (available later), or ready.
CREATE FUNCTION depot.message_state(locked_until timestamptz, available_at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN locked_until > now() THEN 'in_flight' WHEN available_at > now() THEN 'delayed' ELSE 'ready' END
$$;

-- A page of p_store's messages in delivery order (priority first, then arrival), optionally only
-- those in p_state and whose headers contain p_headers. p_after is the cursor of the last row of
-- the previous page ("priority:seq"): each page starts where the last ended by the claim index,
-- so a page deep in a store of millions costs what the first does.
CREATE FUNCTION depot.browse(p_store text, p_state text DEFAULT NULL, p_headers jsonb DEFAULT NULL,
                             p_after text DEFAULT NULL, p_limit integer DEFAULT 100)
RETURNS TABLE (cursor text, id uuid, state text, priority integer, attempts integer, created_at timestamptz,
               available_at timestamptz, locked_by text, content_type text, group_key text, headers jsonb, preview text)
LANGUAGE plpgsql STABLE
SET enable_sort = off
AS $$
DECLARE
    v_priority integer;
    v_seq bigint;
BEGIN
    PERFORM depot.require_store(p_store);
    IF p_state IS NOT NULL AND p_state NOT IN ('ready', 'delayed', 'in_flight') THEN
        RAISE EXCEPTION 'state is %; it must be ready, delayed or in_flight (or NULL for all)', quote_literal(p_state)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'limit is %; it must be between 1 and 10000', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_after IS NOT NULL THEN
        IF p_after !~ '^-?[0-9]{1,10}:[0-9]{1,19}$' THEN
            RAISE EXCEPTION 'cursor % is not one browse returned (priority:seq)', quote_literal(p_after)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'pass the cursor column of the last row of the previous page';
        END IF;
        v_priority := split_part(p_after, ':', 1)::integer;
        v_seq := split_part(p_after, ':', 2)::bigint;
    END IF;
    RETURN QUERY
    WITH page AS (
        (SELECT m.* FROM depot.messages m
         WHERE m.store = p_store AND p_after IS NOT NULL AND m.priority = v_priority AND m.seq > v_seq
           AND (p_state IS NULL OR depot.message_state(m.locked_until, m.available_at) = p_state)
           AND (p_headers IS NULL OR m.headers @> p_headers)
         ORDER BY m.priority DESC, m.seq LIMIT p_limit)
        UNION ALL
        (SELECT m.* FROM depot.messages m
         WHERE m.store = p_store AND (p_after IS NULL OR m.priority < v_priority)
           AND (p_state IS NULL OR depot.message_state(m.locked_until, m.available_at) = p_state)
           AND (p_headers IS NULL OR m.headers @> p_headers)
         ORDER BY m.priority DESC, m.seq LIMIT p_limit)
    )
    SELECT p.priority || ':' || p.seq, p.id, depot.message_state(p.locked_until, p.available_at), p.priority, p.attempts,
           p.created_at, p.available_at, p.locked_by, p.content_type, p.group_key, p.headers, depot.payload_preview(p.payload)
    FROM page p
    ORDER BY p.priority DESC, p.seq
    LIMIT p_limit;
END
$$;

-- Refuses ids that are not messages, and (unless p_force) ids leased to a consumer right now,
-- naming them; p_what says what was asked ("delete", "retry", "move").
CREATE FUNCTION depot.require_messages(p_ids uuid[], p_force boolean, p_what text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    missing uuid[];
    leased uuid[];
BEGIN
    IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RAISE EXCEPTION '% needs at least one message id', p_what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(i) INTO missing FROM unnest(p_ids) AS i WHERE NOT EXISTS (SELECT 1 FROM depot.messages m WHERE m.id = i);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'no message % in any store: nothing was changed', array_to_string(missing, ', ')
            USING ERRCODE = 'undefined_object', HINT = 'it may have been delivered already; depot.browse lists what waits';
    END IF;
    IF NOT coalesce(p_force, false) THEN
        SELECT array_agg(m.id) INTO leased FROM depot.messages m WHERE m.id = ANY(p_ids) AND m.locked_until > now();
        IF leased IS NOT NULL THEN
            RAISE EXCEPTION 'message % is being delivered (leased to a consumer): nothing was changed', array_to_string(leased, ', ')
                USING ERRCODE = 'object_in_use', HINT = format('wait for the delivery, or %s it anyway with p_force => true (depot messages … --force)', p_what);
        END IF;
    END IF;
END
$$;

-- Deletes messages for good (not to the dead letters); returns how many.
CREATE FUNCTION depot.delete_messages(p_ids uuid[], p_force boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    deleted integer;
BEGIN
    PERFORM depot.require_messages(p_ids, p_force, 'delete');
    DELETE FROM depot.messages WHERE id = ANY(p_ids);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

-- Makes messages claimable now, attempts reset (a forced one loses its lease); wakes the
-- stores' idle members. Returns how many.
CREATE FUNCTION depot.retry_now(p_ids uuid[], p_force boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM depot.require_messages(p_ids, p_force, 'retry');
    UPDATE depot.messages SET available_at = now(), attempts = 0, locked_by = NULL, locked_until = NULL
    WHERE id = ANY(p_ids);
    GET DIAGNOSTICS changed = ROW_COUNT;
    PERFORM pg_notify('depot_messages', s.store) FROM (SELECT DISTINCT store FROM depot.messages WHERE id = ANY(p_ids)) s;
    RETURN changed;
END
$$;

-- Moves messages into p_to_store under their ids, ready now with attempts reset; wakes its
-- idle members. Returns how many.
CREATE FUNCTION depot.move_messages(p_ids uuid[], p_to_store text, p_force boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    moved integer;
BEGIN
    PERFORM depot.require_store(p_to_store);
    PERFORM depot.require_messages(p_ids, p_force, 'move');
    UPDATE depot.messages SET store = p_to_store, available_at = now(), attempts = 0, locked_by = NULL, locked_until = NULL
    WHERE id = ANY(p_ids);
    GET DIAGNOSTICS moved = ROW_COUNT;
    PERFORM pg_notify('depot_messages', p_to_store);
    RETURN moved;
END
$$;

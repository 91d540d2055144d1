-- Spring Integration's MessageGroupStore in rows: messages gathered in named groups within a
-- store, for aggregators, resequencers and anyone correlating messages across nodes. A group's
-- metadata is its own row, so size, condition and the complete flag are read without touching
-- its messages (Spring's lazy load); the messages wait in depot.group_messages, in arrival
-- order (seq), apart from depot.messages: they are held, never claimed.
--
-- Every change to a group goes through its row, locked FOR NO KEY UPDATE: adds, removals and
-- polls on one group from any number of nodes take turns, so `size` is always the count of its
-- messages and a release strategy that reads it after an add sees every earlier add.

CREATE TABLE depot.message_groups (
    store                  text NOT NULL REFERENCES depot.stores (name) ON UPDATE CASCADE,
    group_key              text NOT NULL
        CONSTRAINT message_groups_group_key_valid CHECK (char_length(group_key) BETWEEN 1 AND 1000),
    -- The count of its rows in depot.group_messages, kept by the functions below.
    size                   bigint NOT NULL DEFAULT 0 CONSTRAINT message_groups_size_valid CHECK (size >= 0),
    -- Free text a release strategy reads instead of iterating the messages (Spring 5.5).
    condition              text,
    -- Released: later messages are refused or start a new group, as the caller says.
    complete               boolean NOT NULL DEFAULT false,
    -- A resequencer's progress: the last sequence number it let out.
    last_released_sequence bigint NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, group_key)
);

-- The reaper's scans: groups of a store by age, or by idleness.
CREATE INDEX message_groups_created ON depot.message_groups (store, created_at);
CREATE INDEX message_groups_updated ON depot.message_groups (store, updated_at);

CREATE TABLE depot.group_messages (
    store        text NOT NULL,
    group_key    text NOT NULL,
    -- Order within the group; streaming pages by it (keyset), never by OFFSET.
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    -- Unique within the store: adding the same message again (a redelivery) stores nothing.
    id           uuid NOT NULL,
    payload      bytea NOT NULL DEFAULT '',
    headers      jsonb NOT NULL DEFAULT '{}'
        CONSTRAINT group_messages_headers_are_strings CHECK (depot.headers_are_strings(headers)),
    content_type text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, group_key, seq),
    CONSTRAINT group_messages_id_once UNIQUE (store, id),
    CONSTRAINT group_messages_group FOREIGN KEY (store, group_key)
        REFERENCES depot.message_groups (store, group_key) ON UPDATE CASCADE ON DELETE CASCADE
);

-- Raises invalid_parameter_value naming the argument, with a hint saying how to fix it.
CREATE FUNCTION depot.group_refuse(arg text, problem text, hint text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% %', arg, problem USING ERRCODE = 'invalid_parameter_value', HINT = hint;
END
$$;

-- The checks every group function makes on its store and group arguments.
CREATE FUNCTION depot.group_check(p_store text, p_group text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_store IS NULL THEN
        PERFORM depot.group_refuse('store', 'is NULL', 'name a declared store, e.g. ''orders''');
    END IF;
    IF p_group IS NULL OR char_length(p_group) NOT BETWEEN 1 AND 1000 THEN
        PERFORM depot.group_refuse('group_key', format('must be 1 to 1000 characters, got %s',
                                   coalesce(format('%s characters', char_length(p_group)), 'NULL')),
                                   'give every group a non-empty key, e.g. an order number');
    END IF;
END
$$;

-- Adds messages to a group in one statement, creating the group. Arrays are parallel, one
-- element per message, in arrival order; headers, content types and ids may be NULL (no headers,
-- no content type, a new id). A message whose id the store's groups already hold is skipped.
-- p_when_complete says what a completed group does with more messages: 'refuse' (nothing is
-- added, refused = true) or 'new_group' (the completed group and whatever it still holds go,
-- and a new group of that key begins with these messages).
CREATE FUNCTION depot.group_add(
    p_store text, p_group text, p_payloads bytea[], p_headers jsonb[] DEFAULT NULL,
    p_content_types text[] DEFAULT NULL, p_ids uuid[] DEFAULT NULL, p_when_complete text DEFAULT 'refuse')
RETURNS TABLE (group_key text, size bigint, condition text, complete boolean, last_released_sequence bigint,
               created_at timestamptz, updated_at timestamptz, added integer, refused boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    g depot.message_groups;
    n integer := coalesce(cardinality(p_payloads), 0);
    stored integer;
BEGIN
    PERFORM depot.group_check(p_store, p_group);
    IF p_when_complete IS NULL OR p_when_complete NOT IN ('refuse', 'new_group') THEN
        PERFORM depot.group_refuse('when_complete', format('is %s', coalesce(quote_literal(p_when_complete), 'NULL')),
                                   'use ''refuse'' (a completed group takes no more) or ''new_group'' (it starts again)');
    END IF;
    IF p_payloads IS NULL OR array_position(p_payloads, NULL) IS NOT NULL THEN
        PERFORM depot.group_refuse('payloads', 'is NULL or holds a NULL', 'give every message a payload; an empty one is ''''::bytea');
    END IF;
    IF cardinality(p_headers) <> n OR cardinality(p_content_types) <> n OR cardinality(p_ids) <> n THEN
        PERFORM depot.group_refuse('headers, content_types, ids', format('must each be NULL or hold %s elements, one per payload', n),
                                   'pass parallel arrays: element i of each belongs to message i');
    END IF;
    SELECT * INTO g FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = p_group FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM depot.hold_store(p_store);  -- names an undeclared store, as storing a message does
        INSERT INTO depot.message_groups (store, group_key) VALUES (p_store, p_group) ON CONFLICT DO NOTHING;
        SELECT * INTO g FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = p_group FOR NO KEY UPDATE;
    END IF;
    IF g.complete THEN
        IF p_when_complete = 'refuse' THEN
            RETURN QUERY SELECT g.group_key, g.size, g.condition, g.complete, g.last_released_sequence,
                                g.created_at, g.updated_at, 0, true;
            RETURN;
        END IF;
        DELETE FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = p_group;
        INSERT INTO depot.message_groups (store, group_key) VALUES (p_store, p_group);
    END IF;
    INSERT INTO depot.group_messages (store, group_key, id, payload, headers, content_type)
    SELECT p_store, p_group, coalesce(u.id, gen_random_uuid()), u.payload, coalesce(u.headers, '{}'), u.content_type
    FROM unnest(p_payloads, coalesce(p_headers, array_fill(NULL::jsonb, ARRAY[n])),
                coalesce(p_content_types, array_fill(NULL::text, ARRAY[n])), coalesce(p_ids, array_fill(NULL::uuid, ARRAY[n])))
         WITH ORDINALITY AS u (payload, headers, content_type, id, ord)
    ORDER BY u.ord
    ON CONFLICT (store, id) DO NOTHING;
    GET DIAGNOSTICS stored = ROW_COUNT;
    UPDATE depot.message_groups m SET size = m.size + stored, updated_at = now()
    WHERE m.store = p_store AND m.group_key = p_group
    RETURNING m.* INTO g;
    RETURN QUERY SELECT g.group_key, g.size, g.condition, g.complete, g.last_released_sequence,
                        g.created_at, g.updated_at, stored, false;
END
$$;

-- One page of a group's messages after sequence p_after, in order: stream a group of any size
-- by passing the last seq of each page into the next (keyset paging over the primary key).
CREATE FUNCTION depot.group_page(p_store text, p_group text, p_after bigint DEFAULT 0, p_limit integer DEFAULT 500)
RETURNS SETOF depot.group_messages
LANGUAGE sql STABLE AS $$
    SELECT * FROM depot.group_messages m
    WHERE m.store = p_store AND m.group_key = p_group AND m.seq > p_after
    ORDER BY m.seq LIMIT p_limit
$$;

-- Removes the messages p_ids from a group; returns how many it held.
CREATE FUNCTION depot.group_remove_messages(p_store text, p_group text, p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    removed integer;
BEGIN
    PERFORM depot.group_check(p_store, p_group);
    PERFORM 1 FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = p_group FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    DELETE FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = p_group AND m.id = ANY(p_ids);
    GET DIAGNOSTICS removed = ROW_COUNT;
    UPDATE depot.message_groups m SET size = m.size - removed, updated_at = now()
    WHERE m.store = p_store AND m.group_key = p_group AND removed > 0;
    RETURN removed;
END
$$;

-- Removes a group and its messages; false when there was none.
CREATE FUNCTION depot.group_remove(p_store text, p_group text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM depot.group_check(p_store, p_group);
    DELETE FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = p_group;
    RETURN FOUND;
END
$$;

-- Sets (or, with NULL, clears) a group's condition; false when there is no such group.
CREATE FUNCTION depot.group_set_condition(p_store text, p_group text, p_condition text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM depot.group_check(p_store, p_group);
    UPDATE depot.message_groups m SET condition = p_condition, updated_at = now()
    WHERE m.store = p_store AND m.group_key = p_group;
    RETURN FOUND;
END
$$;

-- Marks a group complete (released); false when there is no such group.
CREATE FUNCTION depot.group_complete(p_store text, p_group text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM depot.group_check(p_store, p_group);
    UPDATE depot.message_groups m SET complete = true, updated_at = now()
    WHERE m.store = p_store AND m.group_key = p_group;
    RETURN FOUND;
END
$$;

-- Records the last sequence number a resequencer released; false when there is no such group.
CREATE FUNCTION depot.group_set_last_released(p_store text, p_group text, p_sequence bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM depot.group_check(p_store, p_group);
    IF p_sequence IS NULL OR p_sequence < 0 THEN
        PERFORM depot.group_refuse('last_released_sequence', format('must be 0 or more, got %s', coalesce(p_sequence::text, 'NULL')),
                                   'pass the sequence number of the last message let out');
    END IF;
    UPDATE depot.message_groups m SET last_released_sequence = p_sequence, updated_at = now()
    WHERE m.store = p_store AND m.group_key = p_group;
    RETURN FOUND;
END
$$;

-- How many groups a store holds, and how many messages are in them (Spring's
-- getMessageGroupCount and getMessageCountForAllMessageGroups), from the group rows alone.
CREATE FUNCTION depot.group_counts(p_store text, OUT groups bigint, OUT messages bigint)
LANGUAGE sql STABLE AS $$
    SELECT count(*), coalesce(sum(m.size), 0)::bigint FROM depot.message_groups m WHERE m.store = p_store
$$;

-- Takes and removes the first message of a group (Spring's pollMessageFromGroup); no row when
-- the group is empty or absent. Pollers of one group take turns on its row.
CREATE FUNCTION depot.group_poll(p_store text, p_group text) RETURNS SETOF depot.group_messages
LANGUAGE plpgsql AS $$
DECLARE
    taken depot.group_messages;
BEGIN
    PERFORM depot.group_check(p_store, p_group);
    PERFORM 1 FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = p_group FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    DELETE FROM depot.group_messages m
    WHERE (m.store, m.group_key, m.seq) = (
        SELECT f.store, f.group_key, f.seq FROM depot.group_messages f
        WHERE f.store = p_store AND f.group_key = p_group ORDER BY f.seq LIMIT 1)
    RETURNING m.* INTO taken;
    IF taken.id IS NULL THEN
        RETURN;
    END IF;
    UPDATE depot.message_groups m SET size = m.size - 1, updated_at = now()
    WHERE m.store = p_store AND m.group_key = p_group;
    RETURN NEXT taken;
END
$$;

-- Spring's reaper for SQL users: removes up to p_limit groups of a store whose created_at (or,
-- with p_idle, updated_at) is more than p_timeout ago, and returns them as they were. Groups
-- another transaction holds are skipped (SKIP LOCKED), so nodes reaping at once never take one
-- group twice. The Swift API locks and removes one group at a time around its callback instead.
CREATE FUNCTION depot.group_expire(p_store text, p_timeout interval, p_idle boolean DEFAULT false, p_limit integer DEFAULT 100)
RETURNS SETOF depot.message_groups
LANGUAGE plpgsql AS $$
BEGIN
    IF p_timeout IS NULL OR p_timeout < interval '0' THEN
        PERFORM depot.group_refuse('timeout', format('must be 0 or more, got %s', coalesce(p_timeout::text, 'NULL')),
                                   'e.g. interval ''5 minutes''');
    END IF;
    IF p_limit IS NULL OR p_limit < 1 THEN
        PERFORM depot.group_refuse('limit', format('must be at least 1, got %s', coalesce(p_limit::text, 'NULL')), 'e.g. 100');
    END IF;
    RETURN QUERY
    DELETE FROM depot.message_groups m
    WHERE (m.store, m.group_key) IN (
        SELECT e.store, e.group_key FROM depot.message_groups e
        WHERE e.store = p_store
          AND CASE WHEN p_idle THEN e.updated_at ELSE e.created_at END < now() - p_timeout
        ORDER BY CASE WHEN p_idle THEN e.updated_at ELSE e.created_at END
        LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING m.*;
END
$$;

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
    CONSTRAINT group_messages_id_once UNIQUE (store, id)
);

-- A group's messages go with it, whoever deletes the group (a function, the reaper, an
-- operator's DELETE), once per statement: what ON DELETE CASCADE would do, without the foreign
-- key's check and KEY SHARE lock on the group row for every message added (an add already holds
-- that row; the functions are the only writers of depot.group_messages).
CREATE FUNCTION depot.message_groups_delete_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM depot.group_messages m USING gone g WHERE m.store = g.store AND m.group_key = g.group_key;
    RETURN NULL;
END
$$;

CREATE TRIGGER message_groups_delete_messages AFTER DELETE ON depot.message_groups
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION depot.message_groups_delete_messages();

-- A renamed store (depot.stores' ON UPDATE CASCADE) or group key carries its messages along.
CREATE FUNCTION depot.message_groups_rename_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE depot.group_messages m SET store = NEW.store, group_key = NEW.group_key
    WHERE m.store = OLD.store AND m.group_key = OLD.group_key;
    RETURN NULL;
END
$$;

CREATE TRIGGER message_groups_rename_messages AFTER UPDATE OF store, group_key ON depot.message_groups
FOR EACH ROW WHEN (OLD.store IS DISTINCT FROM NEW.store OR OLD.group_key IS DISTINCT FROM NEW.group_key)
EXECUTE FUNCTION depot.message_groups_rename_messages();

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

-- The aggregating processor (Spring's aggregator): it correlates its store's messages by the
-- header correlation_header names (NULL: the message's group key), keeps each group in its
-- store's groups, and when a group holds release_size messages sends one message (the members'
-- payloads as a JSON array) to target_store. This replaces 0002's row check with the same rules
-- plus the kind and its columns (below).
-- release_count_header names a header whose value, on any member, is how many messages its
-- group holds in all (Spring's FileMarker END with its line count; the marker may come first):
-- it becomes the group's condition, and the group is released at that size instead.
-- group_timeout_ms releases a group that waited that long since its first message (or, with
-- group_timeout_from = 'last', since its last change) whatever its size: group_timeout_action
-- 'send' sends what is there, 'dead_letter' moves its members to the dead letters.
ALTER TABLE depot.processors ADD COLUMN release_size integer, ADD COLUMN correlation_header text,
    ADD COLUMN release_count_header text, ADD COLUMN group_timeout_ms bigint,
    ADD COLUMN group_timeout_from text NOT NULL DEFAULT 'first', ADD COLUMN group_timeout_action text NOT NULL DEFAULT 'send';

CREATE OR REPLACE FUNCTION depot.processors_check() RETURNS trigger
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
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('forwarding', 'sampling', 'failover-forwarding', 'aggregating') THEN
        PERFORM depot.refuse('processors', 'kind', format('"%s" is not a processor kind', NEW.kind),
            'use forwarding, sampling, failover-forwarding or aggregating');
    END IF;
    IF NEW.kind = 'aggregating' AND NEW.target_store IS NULL THEN
        PERFORM depot.refuse('processors', 'target_store', 'is required for an aggregating processor',
            'name the store released groups go to');
    END IF;
    IF NEW.kind = 'aggregating' AND NEW.release_size IS NULL AND NEW.release_count_header IS NULL AND NEW.group_timeout_ms IS NULL THEN
        PERFORM depot.refuse('processors', 'release_size', 'is required for an aggregating processor without release_count_header or group_timeout_ms',
            'e.g. 1000: a group is released when it holds that many messages');
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


-- A payload as one element of a released group's JSON array: JSON as JSON when its content type
-- says JSON (application/json, application/*+json) and it parses; otherwise its text as a string;
-- bytes that are not UTF-8 text (or hold NUL) as a base64 string. Never raises, so one odd
-- member cannot stop its group's release and leave the batch that completed it retried for ever.
CREATE FUNCTION depot.payload_json(p_payload bytea, p_content_type text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    body text;
BEGIN
    BEGIN
        body := convert_from(p_payload, 'UTF8');
    EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
        RETURN to_jsonb(encode(p_payload, 'base64'));
    END;
    IF p_content_type ~* '^application/([a-z0-9.+-]*\+)?json' THEN
        BEGIN
            RETURN body::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            RETURN to_jsonb(body);
        END;
    END IF;
    RETURN to_jsonb(body);
END
$$;

-- Releases a group: one message into p_target_store holding the members' payloads as a JSON
-- array in arrival order (depot.payload_json), their headers merged (a later member's value wins) with Depot-Group and
-- Depot-Group-Size; then the group and its members go. Both in the caller's transaction, so a
-- release is committed with the removal of its members or not at all. Returns the new id.
CREATE FUNCTION depot.group_release(p_store text, p_group text, p_target_store text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    released uuid := gen_random_uuid();
    body jsonb;
BEGIN
    -- The members as they usually are (UTF-8, valid JSON where the type says JSON) in one pass
    -- and one subtransaction; only a group holding an odd member pays depot.payload_json's two
    -- subtransactions per member.
    BEGIN
        SELECT coalesce(jsonb_agg(CASE WHEN m.content_type ~* '^application/([a-z0-9.+-]*\+)?json'
                                       THEN convert_from(m.payload, 'UTF8')::jsonb
                                       ELSE to_jsonb(convert_from(m.payload, 'UTF8')) END ORDER BY m.seq), '[]')
        INTO body FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = p_group;
    EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character OR invalid_text_representation THEN
        SELECT coalesce(jsonb_agg(depot.payload_json(m.payload, m.content_type) ORDER BY m.seq), '[]')
        INTO body FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = p_group;
    END;
    INSERT INTO depot.messages (id, store, payload, headers, content_type)
    SELECT released, p_target_store, convert_to(body::text, 'UTF8'),
           coalesce((SELECT jsonb_object_agg(h.key, h.value ORDER BY g.seq)
                     FROM depot.group_messages g, jsonb_each(g.headers) h
                     WHERE g.store = p_store AND g.group_key = p_group), '{}')
             || jsonb_build_object('Depot-Group', p_group, 'Depot-Group-Size', count(*)::text),
           'application/json'
    FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = p_group;
    DELETE FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = p_group;
    RETURN released;
END
$$;

-- An aggregating member's step for a claimed batch, in one transaction: the messages p_consumer
-- still holds leave the store and join their groups (one depot.group_add per group, groups in
-- key order so two members never wait on each other in a circle), and every group that reaches
-- its size is released (depot.group_release): the count a member's p_count_header carried (kept
-- as the group's condition, so members after the marker need not carry it), else p_release_size.
-- A message is in the store or in its group,
-- never both and never neither; a group is released once, by whichever add completed it.
-- Messages without a correlation key stay leased, for the caller to dead-letter. Returns one
-- row per release.
CREATE FUNCTION depot.group_aggregate(p_store text, p_consumer text, p_ids uuid[], p_correlation_header text,
                                      p_release_size integer, p_target_store text, p_count_header text DEFAULT NULL)
RETURNS TABLE (group_key text, released_id uuid, released_size bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_keys text[];
    v_payloads bytea[];
    v_headers jsonb[];
    v_types text[];
    v_ids uuid[];
    n integer;
    i integer := 1;
    j integer;
    v_size bigint;
    v_condition text;
    v_count text;
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
        WHERE m.id = ANY(p_ids) AND m.store = p_store AND m.locked_by = p_consumer
          AND coalesce(m.headers ->> p_correlation_header, m.group_key) IS NOT NULL
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
        SELECT a.size, a.condition INTO v_size, v_condition
        FROM depot.group_add(p_store, v_keys[i], v_payloads[i:j], v_headers[i:j], v_types[i:j], v_ids[i:j], 'new_group') a;
        -- A count that is not a plain number is ignored rather than failing the batch.
        SELECT max((h ->> p_count_header)::bigint)::text INTO v_count FROM unnest(v_headers[i:j]) h WHERE h ->> p_count_header ~ '^[0-9]{1,18}$';
        IF v_count IS NOT NULL THEN
            PERFORM depot.group_set_condition(p_store, v_keys[i], v_count);
            v_condition := v_count;
        END IF;
        IF v_size >= coalesce(CASE WHEN v_condition ~ '^[0-9]{1,18}$' THEN v_condition::bigint END, p_release_size) THEN
            group_key := v_keys[i];
            released_id := depot.group_release(p_store, v_keys[i], p_target_store);
            released_size := v_size;
            RETURN NEXT;
        END IF;
        i := j + 1;
    END LOOP;
END
$$;

-- Spring's group timeout for an aggregating processor: up to p_limit groups of p_store that
-- waited p_timeout_ms since their first message (p_from_last: since their last change), not held
-- by another transaction (SKIP LOCKED), are released as they are ('send'; an empty group is simply
-- removed) or their members moved to the dead letters ('dead_letter', reason 'group expired').
-- Each group's outcome and the removal of its members commit together. One row per group.
CREATE FUNCTION depot.group_release_expired(p_store text, p_timeout_ms bigint, p_from_last boolean, p_action text,
                                            p_target_store text, p_processor text DEFAULT NULL, p_limit integer DEFAULT 100)
RETURNS TABLE (group_key text, released_id uuid, released_size bigint, action text)
LANGUAGE plpgsql AS $$
DECLARE
    g record;
BEGIN
    IF p_timeout_ms IS NULL OR p_timeout_ms < 0 THEN
        PERFORM depot.group_refuse('timeout_ms', format('must be 0 or more, got %s', coalesce(p_timeout_ms::text, 'NULL')), 'e.g. 60000');
    END IF;
    IF p_action IS NULL OR p_action NOT IN ('send', 'dead_letter') THEN
        PERFORM depot.group_refuse('action', format('is %s', coalesce(quote_literal(p_action), 'NULL')), 'use ''send'' or ''dead_letter''');
    END IF;
    FOR g IN
        SELECT e.group_key AS key, e.size FROM depot.message_groups e
        WHERE e.store = p_store
          AND CASE WHEN p_from_last THEN e.updated_at ELSE e.created_at END < now() - p_timeout_ms * interval '1 millisecond'
        ORDER BY CASE WHEN p_from_last THEN e.updated_at ELSE e.created_at END
        LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        group_key := g.key;
        released_size := g.size;
        released_id := NULL;
        action := p_action;
        IF p_action = 'send' AND g.size > 0 THEN
            released_id := depot.group_release(p_store, g.key, p_target_store);
        ELSE
            INSERT INTO depot.dead_letters (id, store, payload, headers, content_type, group_key, created_at, attempts,
                                            reason, last_error, processor)
            SELECT m.id, p_store, m.payload, m.headers, m.content_type, m.group_key, m.created_at, 1, 'group expired',
                   format('group "%s" held %s messages after %s ms', g.key, g.size, p_timeout_ms), p_processor
            FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = g.key
            ON CONFLICT (id) DO NOTHING;
            DELETE FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = g.key;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

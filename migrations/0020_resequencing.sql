-- The resequencing processor (Spring's resequencer): it correlates its store's messages as the
-- aggregating processor does (correlation_header; NULL: the message's group key) and lets each
-- group's messages out into target_store one by one in the order of the number in the header
-- sequence_header names, starting after the group's last_released_sequence (0 for a new group,
-- so numbers start at 1). A message whose predecessor has not come is held in the group; once
-- the oldest held message of a group waited gap_timeout_ms (NULL: wait for ever), the missing
-- numbers before it are skipped, what the group holds goes out in order as far as it runs, and
-- the gap is recorded (depot.sequence_gaps, and a Depot-Sequence-Gap header on the message let out
-- after it). A number at or below the last released (a duplicate, or one that came after its gap
-- was skipped) is dead-lettered, saying so.
--
-- Also here, the aggregating processor's output_format (below, with the release functions it
-- changes). This replaces 0014's row check with the same rules plus the kind and the columns.
ALTER TABLE depot.processors ADD COLUMN sequence_header text DEFAULT 'Depot-Sequence-Number',
    ADD COLUMN gap_timeout_ms bigint, ADD COLUMN output_format text NOT NULL DEFAULT 'json_array';

-- Where operators see the gaps a resequencer skipped: one row per gap, kept until deleted.
CREATE TABLE depot.sequence_gaps (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store         text NOT NULL,
    group_key     text NOT NULL,
    -- The missing numbers, both included.
    first_missing bigint NOT NULL,
    last_missing  bigint NOT NULL,
    -- The message let out after the gap, carrying Depot-Sequence-Gap.
    released_id   uuid NOT NULL,
    processor     text,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sequence_gaps_group ON depot.sequence_gaps (store, group_key);

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
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('forwarding', 'sampling', 'failover-forwarding', 'aggregating', 'resequencing') THEN
        PERFORM depot.refuse('processors', 'kind', format('"%s" is not a processor kind', NEW.kind),
            'use forwarding, sampling, failover-forwarding, aggregating or resequencing');
    END IF;
    IF NEW.kind = 'aggregating' AND NEW.target_store IS NULL THEN
        PERFORM depot.refuse('processors', 'target_store', 'is required for an aggregating processor',
            'name the store released groups go to');
    END IF;
    IF NEW.kind = 'aggregating' AND NEW.release_size IS NULL AND NEW.release_count_header IS NULL AND NEW.group_timeout_ms IS NULL THEN
        PERFORM depot.refuse('processors', 'release_size', 'is required for an aggregating processor without release_count_header or group_timeout_ms',
            'e.g. 1000: a group is released when it holds that many messages');
    END IF;
    IF NEW.kind = 'resequencing' AND NEW.target_store IS NULL THEN
        PERFORM depot.refuse('processors', 'target_store', 'is required for a resequencing processor',
            'name the store messages go to in order');
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

-- A message's sequence number: the header p_header as a number from 1 up, else NULL (missing, not
-- a plain decimal, or too long).
CREATE FUNCTION depot.sequence_number(p_headers jsonb, p_header text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_headers ->> p_header ~ '^[0-9]{1,18}$' AND (p_headers ->> p_header)::bigint >= 1
                THEN (p_headers ->> p_header)::bigint END
$$;

-- Lets a group's held messages out into p_target_store, in sequence order, as far as they run
-- without a gap; a gap is skipped only up to the highest number held at least p_timeout_ms (NULL:
-- never). A released message keeps its id, payload, headers and content type, with the group key as
-- its group_key (so a processor on the target delivers each group one at a time, in this order)
-- and Depot-Sequence-Gap ('7', or '3-5') when numbers before it were skipped; each gap is a row of
-- depot.sequence_gaps. A held number at or below the last released, or none at all, is
-- dead-lettered. Locks the group row, so releases of one group from any node take turns, and the
-- releases, the removals and the new last_released_sequence commit in the caller's transaction
-- together. One row: how many went out, how many were dead-lettered, and the gaps.
CREATE FUNCTION depot.group_resequence_release(p_store text, p_group text, p_sequence_header text, p_timeout_ms bigint,
                                               p_target_store text, p_processor text DEFAULT NULL)
RETURNS TABLE (released integer, dead_lettered integer, gaps text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_deadline bigint;
    m record;
    v_release uuid[] := '{}';
    v_gap_from bigint[] := '{}';   -- parallel to v_release: the first number skipped before it, or NULL
    v_gap_to bigint[] := '{}';
    v_dead uuid[] := '{}';
BEGIN
    SELECT g.last_released_sequence INTO v_last FROM depot.message_groups g
    WHERE g.store = p_store AND g.group_key = p_group FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 0, 0, '{}'::text[];
        RETURN;
    END IF;
    IF p_timeout_ms IS NOT NULL THEN
        SELECT max(depot.sequence_number(h.headers, p_sequence_header)) INTO v_deadline FROM depot.group_messages h
        WHERE h.store = p_store AND h.group_key = p_group AND h.created_at <= now() - p_timeout_ms * interval '1 millisecond';
    END IF;
    -- In number order (arrival order among equal numbers: the first of a duplicate goes out).
    FOR m IN
        SELECT h.id, depot.sequence_number(h.headers, p_sequence_header) AS n FROM depot.group_messages h
        WHERE h.store = p_store AND h.group_key = p_group
        ORDER BY 2 NULLS FIRST, h.seq
    LOOP
        IF m.n IS NULL OR m.n <= v_last THEN
            v_dead := v_dead || m.id;
        ELSIF m.n = v_last + 1 OR m.n <= v_deadline THEN
            v_release := v_release || m.id;
            v_gap_from := v_gap_from || CASE WHEN m.n > v_last + 1 THEN v_last + 1 END;
            v_gap_to := v_gap_to || CASE WHEN m.n > v_last + 1 THEN m.n - 1 END;
            v_last := m.n;
        ELSE
            EXIT;
        END IF;
    END LOOP;
    IF cardinality(v_dead) > 0 THEN
        INSERT INTO depot.dead_letters (id, store, payload, headers, content_type, group_key, created_at, attempts,
                                        reason, last_error, processor)
        SELECT h.id, p_store, h.payload, h.headers, h.content_type, h.group_key, h.created_at, 1,
               CASE WHEN n.n IS NULL THEN 'no sequence number' ELSE 'sequence number already passed' END,
               CASE WHEN n.n IS NULL THEN format('message has no header "%s" holding a number from 1 up', p_sequence_header)
                    ELSE format('sequence number %s of group "%s" came after it was released or skipped as a gap', n.n, p_group) END,
               p_processor
        FROM depot.group_messages h, LATERAL (SELECT depot.sequence_number(h.headers, p_sequence_header) AS n) n
        WHERE h.store = p_store AND h.group_key = p_group AND h.id = ANY(v_dead)
        ON CONFLICT (id) DO NOTHING;
    END IF;
    IF cardinality(v_release) > 0 THEN
        -- Producers to the target's lane of this group take turns with us (as depot.store_batch
        -- does), so its seq order is its commit order.
        PERFORM pg_advisory_xact_lock(hashtextextended(p_target_store || E'\x1f' || p_group, 0));
        -- ORDER BY: the target's seq (arrival order) is drawn row by row in this order.
        INSERT INTO depot.messages (id, store, payload, headers, content_type, group_key)
        SELECT h.id, p_target_store, h.payload,
               CASE WHEN r.gap_from IS NULL THEN h.headers
                    ELSE h.headers || jsonb_build_object('Depot-Sequence-Gap',
                             CASE WHEN r.gap_from = r.gap_to THEN r.gap_from::text ELSE r.gap_from || '-' || r.gap_to END) END,
               h.content_type, p_group
        FROM unnest(v_release, v_gap_from, v_gap_to) WITH ORDINALITY AS r (id, gap_from, gap_to, ord)
        JOIN depot.group_messages h ON h.store = p_store AND h.group_key = p_group AND h.id = r.id
        ORDER BY r.ord;
        INSERT INTO depot.sequence_gaps (store, group_key, first_missing, last_missing, released_id, processor)
        SELECT p_store, p_group, r.gap_from, r.gap_to, r.id, p_processor
        FROM unnest(v_release, v_gap_from, v_gap_to) AS r (id, gap_from, gap_to) WHERE r.gap_from IS NOT NULL;
    END IF;
    IF cardinality(v_release) + cardinality(v_dead) > 0 THEN
        DELETE FROM depot.group_messages h WHERE h.store = p_store AND h.id = ANY(v_release || v_dead);
        UPDATE depot.message_groups g SET size = g.size - cardinality(v_release) - cardinality(v_dead),
                                          last_released_sequence = v_last, updated_at = now()
        WHERE g.store = p_store AND g.group_key = p_group;
    END IF;
    RETURN QUERY
    SELECT cardinality(v_release), cardinality(v_dead),
           coalesce(array_agg(CASE WHEN r.gap_from = r.gap_to THEN r.gap_from::text ELSE r.gap_from || '-' || r.gap_to END), '{}')
    FROM unnest(v_gap_from, v_gap_to) AS r (gap_from, gap_to) WHERE r.gap_from IS NOT NULL;
END
$$;

-- A resequencing member's step for a claimed batch, in one transaction: the messages p_consumer
-- still holds that carry a correlation key and a sequence number leave the store and join their
-- groups (groups in key order, so two members never wait on each other in a circle), and each
-- group lets out what now runs in order (depot.group_resequence_release). A message is in the
-- store, in its group or in the target, never two of them and never none, whichever node dies
-- when. Messages without a key or a number stay leased, for the caller to dead-letter. One row
-- per group touched.
CREATE FUNCTION depot.group_resequence(p_store text, p_consumer text, p_ids uuid[], p_correlation_header text,
                                       p_sequence_header text, p_timeout_ms bigint, p_target_store text,
                                       p_processor text DEFAULT NULL)
RETURNS TABLE (group_key text, released integer, dead_lettered integer, gaps text[])
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
BEGIN
    IF p_sequence_header IS NULL THEN
        PERFORM depot.group_refuse('sequence_header', 'is NULL', 'e.g. ''Depot-Sequence-Number''');
    END IF;
    IF p_target_store IS NULL THEN
        PERFORM depot.group_refuse('target_store', 'is NULL', 'name the store messages go to in order');
    END IF;
    WITH taken AS (
        DELETE FROM depot.messages m
        WHERE m.id = ANY(p_ids) AND m.store = p_store AND m.locked_by = p_consumer
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

-- The gap timeout for groups no batch touches: up to p_limit groups of p_store holding a message
-- that waited p_timeout_ms, not held by another transaction (SKIP LOCKED: nodes looking at once
-- never take one group twice), each let out past its gaps as depot.group_resequence_release
-- does. One row per group.
CREATE FUNCTION depot.group_resequence_expired(p_store text, p_sequence_header text, p_timeout_ms bigint, p_target_store text,
                                               p_processor text DEFAULT NULL, p_limit integer DEFAULT 100)
RETURNS TABLE (group_key text, released integer, dead_lettered integer, gaps text[])
LANGUAGE plpgsql AS $$
DECLARE
    g record;
BEGIN
    IF p_timeout_ms IS NULL OR p_timeout_ms < 0 THEN
        PERFORM depot.group_refuse('timeout_ms', format('must be 0 or more, got %s', coalesce(p_timeout_ms::text, 'NULL')), 'e.g. 30000');
    END IF;
    -- Only groups holding messages (size > 0): a resequencer's group row stays, empty, between
    -- messages, to remember its last released number.
    FOR g IN
        SELECT e.group_key AS key FROM depot.message_groups e
        WHERE e.store = p_store AND e.size > 0
          AND (SELECT min(h.created_at) FROM depot.group_messages h WHERE h.store = e.store AND h.group_key = e.group_key)
              <= now() - p_timeout_ms * interval '1 millisecond'
        ORDER BY e.updated_at
        LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        RETURN QUERY SELECT g.key, r.released, r.dead_lettered, r.gaps
        FROM depot.group_resequence_release(p_store, g.key, p_sequence_header, p_timeout_ms, p_target_store, p_processor) r;
    END LOOP;
END
$$;

-- The aggregate's form, a processor column (output_format) and an argument of the release
-- functions: 'json_array' (0014's, the default: the members' payloads as one JSON array,
-- application/json), 'ndjson' (each member as one line of JSON, as it would be an element of the
-- array, application/x-ndjson) or 'concatenated' (the members' payload bytes one after another,
-- with their content type when they all share one, else application/octet-stream). 0014's
-- release functions are replaced by ones that take it last, defaulting to 'json_array', so that
-- calls written for 0014 mean what they meant.

DROP FUNCTION depot.group_aggregate(text, text, uuid[], text, integer, text, text);
DROP FUNCTION depot.group_release_expired(text, bigint, boolean, text, text, text, integer);
DROP FUNCTION depot.group_release(text, text, text);

-- Releases a group: one message into p_target_store holding the members' payloads in arrival
-- order in the form p_format names (above), their headers merged (a later member's value wins)
-- with Depot-Group and Depot-Group-Size; then the group and its members go. Both in the caller's
-- transaction, so a release is committed with the removal of its members or not at all. Returns
-- the new id.
CREATE FUNCTION depot.group_release(p_store text, p_group text, p_target_store text, p_format text DEFAULT 'json_array') RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    released uuid := gen_random_uuid();
    body_json jsonb;
    body bytea;
    v_type text;
BEGIN
    IF p_format IS NULL OR p_format NOT IN ('json_array', 'ndjson', 'concatenated') THEN
        PERFORM depot.group_refuse('format', format('is %s', coalesce(quote_literal(p_format), 'NULL')),
                                   'use ''json_array'', ''ndjson'' or ''concatenated''');
    END IF;
    IF p_format = 'concatenated' THEN
        SELECT coalesce(string_agg(m.payload, ''::bytea ORDER BY m.seq), ''::bytea),
               CASE WHEN count(*) > 0 AND count(DISTINCT coalesce(m.content_type, '')) = 1 THEN min(m.content_type)
                    ELSE 'application/octet-stream' END
        INTO body, v_type FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = p_group;
    ELSE
        -- The members as they usually are (UTF-8, valid JSON where the type says JSON) in one pass
        -- and one subtransaction; only a group holding an odd member pays depot.payload_json's two
        -- subtransactions per member.
        BEGIN
            SELECT coalesce(jsonb_agg(CASE WHEN m.content_type ~* '^application/([a-z0-9.+-]*\+)?json'
                                           THEN convert_from(m.payload, 'UTF8')::jsonb
                                           ELSE to_jsonb(convert_from(m.payload, 'UTF8')) END ORDER BY m.seq), '[]')
            INTO body_json FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = p_group;
        EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character OR invalid_text_representation THEN
            SELECT coalesce(jsonb_agg(depot.payload_json(m.payload, m.content_type) ORDER BY m.seq), '[]')
            INTO body_json FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = p_group;
        END;
        IF p_format = 'ndjson' THEN
            -- jsonb's text is one line: a newline inside a string is written \n.
            SELECT convert_to(coalesce(string_agg(e.value::text || E'\n', '' ORDER BY e.ord), ''), 'UTF8')
            INTO body FROM jsonb_array_elements(body_json) WITH ORDINALITY AS e (value, ord);
            v_type := 'application/x-ndjson';
        ELSE
            body := convert_to(body_json::text, 'UTF8');
            v_type := 'application/json';
        END IF;
    END IF;
    INSERT INTO depot.messages (id, store, payload, headers, content_type)
    SELECT released, p_target_store, body,
           coalesce((SELECT jsonb_object_agg(h.key, h.value ORDER BY g.seq)
                     FROM depot.group_messages g, jsonb_each(g.headers) h
                     WHERE g.store = p_store AND g.group_key = p_group), '{}')
             || jsonb_build_object('Depot-Group', p_group, 'Depot-Group-Size', count(*)::text),
           v_type
    FROM depot.group_messages m WHERE m.store = p_store AND m.group_key = p_group;
    DELETE FROM depot.message_groups m WHERE m.store = p_store AND m.group_key = p_group;
    RETURN released;
END
$$;

-- 0014's group_aggregate, passing p_format to depot.group_release.
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
                                      p_release_size integer, p_target_store text, p_count_header text DEFAULT NULL,
                                      p_format text DEFAULT 'json_array')
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
            released_id := depot.group_release(p_store, v_keys[i], p_target_store, p_format);
            released_size := v_size;
            RETURN NEXT;
        END IF;
        i := j + 1;
    END LOOP;
END
$$;

-- 0014's group_release_expired, passing p_format to depot.group_release.
-- Spring's group timeout for an aggregating processor: up to p_limit groups of p_store that
-- waited p_timeout_ms since their first message (p_from_last: since their last change), not held
-- by another transaction (SKIP LOCKED), are released as they are ('send'; an empty group is simply
-- removed) or their members moved to the dead letters ('dead_letter', reason 'group expired').
-- Each group's outcome and the removal of its members commit together. One row per group.
CREATE FUNCTION depot.group_release_expired(p_store text, p_timeout_ms bigint, p_from_last boolean, p_action text,
                                            p_target_store text, p_processor text DEFAULT NULL, p_limit integer DEFAULT 100,
                                            p_format text DEFAULT 'json_array')
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
            released_id := depot.group_release(p_store, g.key, p_target_store, p_format);
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

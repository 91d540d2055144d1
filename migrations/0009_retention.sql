-- What a crash or a long life leaves behind is pruned by the nodes, for as long as a setting says.
--
-- Idempotency keys outlive their messages so that a producer's retry after delivery stores
-- nothing twice; until now they were kept for ever and the table grew with every keyed message.
-- A key is now kept for idempotency_key_retention after it was first seen, and longer while its
-- message is still in a store (a key whose message waits is never pruned).
-- A node killed with -9 never removes its depot.nodes row: depot.node_status shows it alive =
-- false after 3 heartbeat intervals, and the row goes once it has been silent for dead_node_retention.
-- Operators change either with UPDATE depot.settings SET … (the one row).
CREATE TABLE depot.settings (
    one                       boolean PRIMARY KEY DEFAULT true CHECK (one),
    idempotency_key_retention interval NOT NULL DEFAULT '7 days'
        CONSTRAINT idempotency_key_retention_positive CHECK (idempotency_key_retention > interval '0'),
    dead_node_retention       interval NOT NULL DEFAULT '1 hour'
        CONSTRAINT dead_node_retention_at_least_a_minute CHECK (dead_node_retention >= interval '1 minute')
);
INSERT INTO depot.settings DEFAULT VALUES;

-- The prune walks the oldest keys first instead of reading the whole table.
CREATE INDEX idempotency_keys_created_at ON depot.idempotency_keys (created_at);

-- Removes up to p_limit expired idempotency keys (oldest first, only those whose message has
-- left its store) and every node row silent for longer than dead_node_retention. Returns how
-- many of each went. Nodes call it about once a minute, again at once while it removed p_limit keys.
CREATE FUNCTION depot.prune(p_limit integer DEFAULT 10000)
RETURNS TABLE (idempotency_keys integer, dead_nodes integer)
LANGUAGE sql AS $$
    WITH settings AS (SELECT idempotency_key_retention, dead_node_retention FROM depot.settings),
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
    )
    SELECT (SELECT count(*) FROM keys)::integer, (SELECT count(*) FROM nodes)::integer
$$;

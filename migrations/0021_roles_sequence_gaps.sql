-- The roles of 0018 cover the table 0020 added: depot.sequence_gaps, where resequencing
-- processors record the numbers they skipped, is written by nodes and managed by admins.
-- depot.grant_roles() is restated whole (forward-only migrations restate functions; the schema
-- snapshot shows the live one) and run again; it grants to whichever of the roles exist.

CREATE OR REPLACE FUNCTION depot.grant_roles() RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    granted text[] := '{}';
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'depot_producer') THEN
        GRANT USAGE ON SCHEMA depot TO depot_producer;
        -- The 8-argument store_batch and depot.store forward here; they are executable by
        -- PUBLIC already, as functions are by default, and touch no table themselves.
        GRANT EXECUTE ON FUNCTION depot.store_batch(text, bytea[], jsonb[], text[], integer[], bigint[], text[], text[], uuid[])
            TO depot_producer;
        granted := granted || 'depot_producer'::text;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'depot_node') THEN
        GRANT USAGE ON SCHEMA depot TO depot_node;
        -- Claims, acks, releases, dead letters, moves, ingress inserts (COPY too), groups,
        -- the cluster pace, heartbeats and the per-minute statistics.
        GRANT SELECT, INSERT, UPDATE, DELETE ON depot.messages, depot.dead_letters, depot.message_groups,
            depot.group_messages, depot.processor_pace, depot.nodes, depot.processor_stats, depot.sequence_gaps TO depot_node;
        -- depot.prune removes expired keys; its FOR UPDATE SKIP LOCKED needs UPDATE.
        GRANT SELECT, UPDATE, DELETE ON depot.idempotency_keys TO depot_node;
        -- Configuration it follows, and the schema version it checks at start.
        GRANT SELECT ON depot.stores, depot.endpoints, depot.processors, depot.settings,
            depot.schema_migrations, depot.store_stats, depot.node_status, depot.processor_status TO depot_node;
        -- A processor that stops itself (attempts exhausted without the drop policy).
        GRANT UPDATE (is_active, deactivated_reason) ON depot.processors TO depot_node;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA depot TO depot_node;
        GRANT EXECUTE ON FUNCTION depot.hold_store(text) TO depot_node;
        GRANT EXECUTE ON FUNCTION depot.store_batch(text, bytea[], jsonb[], text[], integer[], bigint[], text[], text[], uuid[])
            TO depot_node;
        granted := granted || 'depot_node'::text;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'depot_admin') THEN
        GRANT USAGE ON SCHEMA depot TO depot_admin;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA depot TO depot_admin;
        -- The migrations' record is the owner's alone.
        REVOKE INSERT, UPDATE, DELETE ON depot.schema_migrations FROM depot_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA depot TO depot_admin;
        GRANT EXECUTE ON FUNCTION depot.hold_store(text) TO depot_admin;
        GRANT EXECUTE ON FUNCTION depot.store_batch(text, bytea[], jsonb[], text[], integer[], bigint[], text[], text[], uuid[])
            TO depot_admin;
        granted := granted || 'depot_admin'::text;
    END IF;
    RETURN granted;
END
$$;

SELECT depot.grant_roles();

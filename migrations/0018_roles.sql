-- Roles that give each part of Depot only what it needs, and producers limited to named stores.
--
--   depot_producer  stores messages through depot.store / depot.store_batch and nothing else:
--                   no table privileges, so it reads no message, no idempotency key, no row.
--   depot_node      what `depot node` does: claim, ack, release, dead-letter, move, heartbeat,
--                   pace, groups, pruning, HTTP ingress; it reads configuration rows, never writes them
--                   (except a processor's is_active and deactivated_reason, which a node sets when
--                   a processor stops itself).
--   depot_admin     every row of every table (stores, endpoints, processors, producer_stores,
--                   settings, messages, dead letters): the CLI's admin commands and the admin
--                   functions. Never the schema itself: only the owner that runs depot migrate
--                   creates, alters or drops.
--
-- All three are NOLOGIN: an operator makes login roles that are members of them
-- (CREATE ROLE app LOGIN PASSWORD '…' IN ROLE depot_producer).

-- Roles belong to the cluster, not the database: they are made only when missing, and another
-- database on the same cluster (or a migrate racing this one there: the advisory lock is per
-- database) may make them first. A migrating user that may not create roles (neither superuser
-- nor CREATEROLE) skips them with a WARNING rather than failing: nodes refuse to start on a
-- schema that lacks a migration, so an error here would stop every upgrade of a database whose
-- owner lacks CREATEROLE, though nothing else in Depot needs the roles. Whoever may create roles
-- makes them later (CREATE ROLE depot_producer NOLOGIN; …) and the owner then runs
-- SELECT depot.grant_roles(); `depot migrate` says so when they are missing.
DO $$
DECLARE
    r text;
    may_create boolean := (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user);
BEGIN
    FOREACH r IN ARRAY ARRAY['depot_producer', 'depot_node', 'depot_admin'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        IF NOT may_create THEN
            RAISE WARNING 'role % not created: % may not create roles', r, current_user
                USING HINT = format('as a superuser or a CREATEROLE user: CREATE ROLE %I NOLOGIN; then, as %I: SELECT depot.grant_roles();',
                                    r, current_user);
            CONTINUE;
        END IF;
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- made meanwhile by a migrate of another database on this cluster
        END;
    END LOOP;
END
$$;

-- Which stores a producer may store into. A row with store NULL allows every store. A role
-- may store into a store when it, or a role it inherits from, has a row for that store or a
-- NULL row — or when it may INSERT into depot.messages itself (the owner, superusers,
-- depot_node, depot_admin), since a limit could not hold such a role anyway.
-- No rows means no store: a depot_producer member stores nowhere until an admin names its
-- stores, so a forgotten limit fails closed with an error that says what to insert.
CREATE TABLE depot.producer_stores (
    role  name NOT NULL,
    store text REFERENCES depot.stores (name) ON UPDATE CASCADE ON DELETE CASCADE,
    CONSTRAINT producer_stores_once UNIQUE NULLS NOT DISTINCT (role, store)
);

-- A row naming a role that does not exist would allow nothing, silently: refuse it instead.
CREATE FUNCTION depot.producer_stores_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = NEW.role) THEN
        RAISE EXCEPTION 'depot.producer_stores.role: role "%" does not exist', NEW.role
            USING ERRCODE = 'undefined_object',
                  HINT = format('create it first: CREATE ROLE %I LOGIN PASSWORD ''…'' IN ROLE depot_producer', NEW.role);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER producer_stores_check BEFORE INSERT OR UPDATE ON depot.producer_stores
FOR EACH ROW EXECUTE FUNCTION depot.producer_stores_check();

-- The role a statement runs as, seen from inside a SECURITY DEFINER function (where
-- current_user is the function's owner): the role SET ROLE chose, else the login role.
-- A session can only SET ROLE to a role it is a member of, so this cannot be forged.
CREATE FUNCTION depot.calling_role() RETURNS name
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('role'), 'none'), session_user)::name
$$;

-- Whether role p_role may store into store p_store (see depot.producer_stores). Operators may
-- ask it too: SELECT depot.producer_may_store('app', 'orders').
CREATE FUNCTION depot.producer_may_store(p_role name, p_store text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT has_table_privilege(p_role, 'depot.messages', 'INSERT')
        OR EXISTS (SELECT 1 FROM depot.producer_stores g JOIN pg_roles r ON r.rolname = g.role
                   WHERE (g.store IS NULL OR g.store = p_store) AND pg_has_role(p_role, r.oid, 'USAGE'))
$$;

-- Every producer path (depot.store, the 8-argument store_batch, the Swift library) ends in the
-- 9-argument store_batch. It is renamed and wrapped: the wrapper runs as the owner (SECURITY
-- DEFINER), so a producer needs no privilege on depot.messages, depot.idempotency_keys or
-- depot.stores, and it refuses a store the calling role may not use before it looks at
-- anything else (so a refused role learns nothing, not even whether the store exists).
-- search_path is pinned: a definer function must not resolve names in a schema the caller made.
-- SQLSTATE 42D01 (class 42, access rule violation): distinct from the 42501 of a missing table
-- privilege and the 42704 of an undeclared store, so a client can tell the three apart.
ALTER FUNCTION depot.store_batch(text, bytea[], jsonb[], text[], integer[], bigint[], text[], text[], uuid[])
    RENAME TO store_batch_unchecked;

CREATE FUNCTION depot.store_batch(
    p_store            text,
    p_payloads         bytea[],
    p_headers          jsonb[],
    p_content_types    text[],
    p_priorities       integer[],
    p_delays_ms        bigint[],
    p_group_keys       text[],
    p_idempotency_keys text[],
    p_ids              uuid[]
) RETURNS TABLE (id uuid, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_role name := depot.calling_role();
BEGIN
    IF NOT depot.producer_may_store(v_role, p_store) THEN
        RAISE EXCEPTION 'role "%" may not store into store "%"', v_role, p_store
            USING ERRCODE = '42D01',
                  HINT = format('an admin allows it: INSERT INTO depot.producer_stores (role, store) VALUES (%L, %L)',
                                v_role, p_store);
    END IF;
    RETURN QUERY
    SELECT b.id, b.created
    FROM depot.store_batch_unchecked(p_store, p_payloads, p_headers, p_content_types, p_priorities,
                                     p_delays_ms, p_group_keys, p_idempotency_keys, p_ids) AS b;
END
$$;

-- The unchecked body is only for the wrapper (it runs as the owner, who may always call it).
REVOKE EXECUTE ON FUNCTION depot.store_batch_unchecked(text, bytea[], jsonb[], text[], integer[], bigint[], text[], text[], uuid[])
    FROM PUBLIC;

-- Every insert into depot.messages (and every move to another store) takes KEY SHARE on the
-- store's row through hold_store, and a row lock needs UPDATE on depot.stores: as the owner
-- now, so that a node needs no UPDATE on the stores it only reads. Not for PUBLIC: it would
-- tell a producer which stores exist.
ALTER FUNCTION depot.hold_store(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION depot.hold_store(text) FROM PUBLIC;

-- Grants the three roles what they need on every table, view, sequence and function that
-- needs one; skips a role that does not exist. Returns the roles it granted to. Run by the
-- migration, and again by the owner after the roles were made by hand. A later migration that
-- adds a table replaces this function with the table in it and calls it again.
CREATE FUNCTION depot.grant_roles() RETURNS text[]
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
            depot.group_messages, depot.processor_pace, depot.nodes, depot.processor_stats TO depot_node;
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

-- Granting is the owner's business: nobody else may run it.
REVOKE EXECUTE ON FUNCTION depot.grant_roles() FROM PUBLIC;

SELECT depot.grant_roles();

-- The claim → ack cycle. Measured with 8 consumers claiming 100 and acking 100 per loop
-- (fsync on, synchronous_commit on, 2 cores): see the commit that added this file.

-- Every UPDATE evaluates every CHECK constraint on the new row, so messages_headers_are_strings
-- ran on each claim, lease extension and release: a call into the SQL-function executor per
-- row (its NOT EXISTS subquery keeps it from being inlined), a third of a claim's time. Same
-- answer for every input (objects whose values are all strings; NULL for NULL), written as
-- one expression the planner inlines into the constraint. Strict mode: a value that is an
-- array is not unwrapped into its elements; silent: a non-object is false, not an error.
CREATE OR REPLACE FUNCTION depot.headers_are_strings(headers jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_typeof(headers) = 'object'
       AND NOT jsonb_path_exists(headers, 'strict $.* ? (@.type() != "string")', '{}', true)
$$;

-- fillfactor 50: a claim updates only unindexed columns (locked_by, locked_until, attempts),
-- so with room on the page the new version is a HOT update and no index gets an entry. Rows
-- are claimed a page at a time (neighbours in seq), so a page needs room for a second version
-- of every row on it: at the default of 100 almost no claim was HOT, and each claimed message
-- left two entries in each index for scans to walk past until vacuum. At 50, 95% of claims
-- are HOT. The cost is disk: a backlog takes twice the pages. Applies to pages written from
-- now on; a queue's pages turn over as it drains.
--
-- Autovacuum: acked messages are dead tuples whose index entries stay at the head of
-- messages_claim_order until vacuum removes them, and every claim starts its index scan there,
-- so the claim slows down as they pile up. The default trigger (20% of the table dead) lets a
-- backlog of a million leave 200,000 behind; vacuum this table once 10,000 are dead, whatever
-- its size, and unthrottled (it reads mostly cached pages, and a slow vacuum is the costlier
-- one here). The server's autovacuum_naptime (1 min by default) still bounds how often it runs.
ALTER TABLE depot.messages SET (
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0
);

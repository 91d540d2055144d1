-- MI's store connection settings: after max_store_connection_attempts failed attempts in a row
-- to reach the database, a processor stops and is deactivated with the reason (written once
-- the database answers again); -1, the default, keeps trying for as long as the node runs.
-- store_connection_retry_interval_ms is the wait between those attempts.
ALTER TABLE depot.processors
    ADD COLUMN max_store_connection_attempts integer NOT NULL DEFAULT -1
        CONSTRAINT processors_max_store_connection_attempts CHECK (max_store_connection_attempts = -1 OR max_store_connection_attempts >= 1),
    ADD COLUMN store_connection_retry_interval_ms integer NOT NULL DEFAULT 1000
        CONSTRAINT processors_store_connection_retry_interval CHECK (store_connection_retry_interval_ms BETWEEN 10 AND 3600000);

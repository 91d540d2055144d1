-- In order through retries (WSO2 MI's forwarding processor): with processors.in_order a
-- processor delivers only the message at the head of its store, one at a time across every node
-- and member; a head waiting for its retry holds back everything behind it, and the head leased
-- by a node that died is taken over when its lease runs out.
ALTER TABLE depot.processors ADD COLUMN in_order boolean NOT NULL DEFAULT false;

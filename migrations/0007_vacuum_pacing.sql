-- Autovacuum of depot.messages paced again (the server's autovacuum_vacuum_cost_delay, 2 ms by
-- default) instead of 0005's unthrottled runs. On a small machine an unthrottled vacuum takes a
-- core from the producers, while drains (which need the vacuum) do not gain from the speed
-- (the figures are in the commit that added this file). The early start of 0005 (a vacuum every
-- 10,000 dead rows) stays.
ALTER TABLE depot.messages RESET (autovacuum_vacuum_cost_delay);

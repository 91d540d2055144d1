-- Autovacuum of depot.messages paced again (the server's autovacuum_vacuum_cost_delay, 2 ms by
-- default) instead of 0005's unthrottled runs. On a small machine an unthrottled vacuum takes a
-- core from the producers: measured with `depot bench --quick` on 2 cores, single enqueue with
-- 8 producers went from 41–44% to 64–70% of the bare INSERT and HTTP ingress from 4,600–5,100
-- to 5,400–6,700 msg/s, while drains (which need the vacuum) stayed within their run-to-run
-- spread. The early start of 0005 (a vacuum every 10,000 dead rows) stays.
ALTER TABLE depot.messages RESET (autovacuum_vacuum_cost_delay);

-- The docker-compose cluster's demo rows (the `setup` service runs this with psql after
-- `depot migrate`). Plain SQL, one transaction, and safe to run again: every row is
-- ON CONFLICT DO NOTHING, so rows an operator has since changed are left as they are.
--
--   docker compose run --rm setup        apply it again
BEGIN;

-- Seed 002, load balancing: one store, three endpoints on the three echo back ends, and
-- three forwarding processors on the store, one per endpoint. Every node runs all three, so
-- the messages spread over echo-1, echo-2 and echo-3. As in the seed, each processor forwards
-- one message a second per node; UPDATE depot.processors SET interval_ms = 0 for full speed.
INSERT INTO depot.stores (name, description)
VALUES ('JMSMS', 'seed 002: load balancing over three back ends')
ON CONFLICT (name) DO NOTHING;

INSERT INTO depot.endpoints (name, url) VALUES
    ('SimpleStockQuoteService1', 'http://echo-1:9000/services/SimpleStockQuoteService'),
    ('SimpleStockQuoteService2', 'http://echo-2:9000/services/SimpleStockQuoteService'),
    ('SimpleStockQuoteService3', 'http://echo-3:9000/services/SimpleStockQuoteService')
ON CONFLICT (name) DO NOTHING;

INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, retry_interval_ms) VALUES
    ('Forwarder1', 'forwarding', 'JMSMS', 'SimpleStockQuoteService1', 1000, 1000),
    ('Forwarder2', 'forwarding', 'JMSMS', 'SimpleStockQuoteService2', 1000, 1000),
    ('Forwarder3', 'forwarding', 'JMSMS', 'SimpleStockQuoteService3', 1000, 1000)
ON CONFLICT (name) DO NOTHING;

-- Seed 004, asynchronous messaging: producers POST payment requests to any node's HTTP
-- ingress (POST /stores/PaymentRequestMessageStore/messages answers 202); a sampling
-- processor takes them each second and its call:SettlePaymentEP handler sends each one to the
-- settlement back end (echo-3 here) and logs the reply in the node's log.
INSERT INTO depot.stores (name, description)
VALUES ('PaymentRequestMessageStore', 'seed 004: payment requests from HTTP ingress')
ON CONFLICT (name) DO NOTHING;

INSERT INTO depot.endpoints (name, url)
VALUES ('SettlePaymentEP', 'http://echo-3:9000/settle-payment')
ON CONFLICT (name) DO NOTHING;

INSERT INTO depot.processors (name, kind, store, handler, interval_ms, concurrency)
VALUES ('PaymentRequestProcessor', 'sampling', 'PaymentRequestMessageStore', 'call:SettlePaymentEP', 1000, 1)
ON CONFLICT (name) DO NOTHING;

COMMIT;

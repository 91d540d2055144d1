-- One pace for the cluster: processors.rate_limit (messages per second, NULL = none) holds for
-- every node and member together, through a token bucket row per processor. No coordinator:
-- each member takes tokens in one short statement before it claims, and the row lock orders the
-- takers. The bucket holds at most a tenth of a second's messages (at least one), so nothing
-- bursts beyond that at any moment; an UPDATE of rate_limit applies at the next take.
ALTER TABLE depot.processors ADD COLUMN rate_limit double precision
    CONSTRAINT processors_rate_limit_positive CHECK (rate_limit IS NULL OR (rate_limit > 0 AND rate_limit <= 1000000));

CREATE TABLE depot.processor_pace (
    processor   text PRIMARY KEY,
    tokens      double precision NOT NULL,
    refilled_at timestamptz NOT NULL
);

-- The bucket's size for a rate: a tenth of a second's messages, at least one.
CREATE FUNCTION depot.pace_bucket(p_rate double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT greatest(1, p_rate / 10) $$;

-- Takes up to p_wanted messages' worth of tokens for processor p_processor. granted: how many
-- it may claim now (p_wanted when it has no rate_limit); wait_ms: when granted is 0, how long
-- until a token is due. The clock is read after the row lock is taken, so a taker that waited
-- for another never counts the same time twice.
CREATE FUNCTION depot.take_pace(p_processor text, p_wanted integer)
RETURNS TABLE (granted integer, wait_ms integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_rate double precision;
    v_tokens double precision;
BEGIN
    SELECT p.rate_limit INTO v_rate FROM depot.processors p WHERE p.name = p_processor;
    IF v_rate IS NULL THEN
        RETURN QUERY SELECT p_wanted, 0;
        RETURN;
    END IF;
    INSERT INTO depot.processor_pace AS s (processor, tokens, refilled_at)
    VALUES (p_processor, depot.pace_bucket(v_rate), clock_timestamp())
    ON CONFLICT (processor) DO UPDATE SET
        tokens = least(depot.pace_bucket(v_rate),
                       s.tokens + v_rate * greatest(0, extract(epoch FROM clock_timestamp() - s.refilled_at))),
        refilled_at = greatest(s.refilled_at, clock_timestamp())
    RETURNING s.tokens INTO v_tokens;
    granted := least(p_wanted, floor(v_tokens))::integer;
    IF granted > 0 THEN
        UPDATE depot.processor_pace SET tokens = tokens - granted WHERE processor = p_processor;
        wait_ms := 0;
    ELSE
        wait_ms := greatest(1, ceil(1000 * (1 - v_tokens) / v_rate))::integer;
    END IF;
    RETURN NEXT;
END $$;

-- Gives back tokens taken but not used (the store had fewer messages than granted).
CREATE FUNCTION depot.return_pace(p_processor text, p_unused integer) RETURNS void
LANGUAGE sql AS $$
    UPDATE depot.processor_pace s
    SET tokens = least(depot.pace_bucket(p.rate_limit), s.tokens + p_unused)
    FROM depot.processors p
    WHERE s.processor = p_processor AND p.name = p_processor AND p.rate_limit IS NOT NULL AND p_unused > 0
$$;

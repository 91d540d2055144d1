-- Plans that must not depend on when depot.messages was last analysed.
--
-- store_depth reads a store's first 100,001 rows in claim order (ORDER BY priority DESC, seq
-- LIMIT 100001). On a table never analysed, or analysed while small, the planner expects a few
-- rows and reads the whole store through a bitmap scan and sorts it, a store of millions for
-- every poll of store_stats (dashboards, /metrics), until autovacuum analyses the table. With
-- sorting priced out the one plan left without a sort is the ordered scan of
-- messages_claim_order, which stops at the limit. Scoped to the function (its own SET), as the
-- claim's is to its transaction (ClaimPlan); jit stays off.
ALTER FUNCTION depot.store_depth(text) SET enable_sort = off;

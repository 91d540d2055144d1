-- Vacuum truncates depot.messages again: 0026's vacuum_truncate = false is taken back.
--
-- It kept the node's vacuum from waiting seconds for the table's exclusive lock under a steady
-- mixed load (more vacuums, fewer dead rows at the head of the claim index), but it made message
-- groups aggregate four times slower once earlier load had come and gone: `depot bench --only
-- burst,mixed,sql-consumer,groups` on one server aggregated 100,000 messages in groups of 100 at
-- 4,229, 5,401, 4,159 and 3,295 msg/s without truncation and 17,923 and 18,459 with it (the
-- groups scenario alone: 21,743 and 22,102), the time spent in depot.group_aggregate on the CPU.
-- Until that is understood, the table is back to PostgreSQL's default.
ALTER TABLE depot.messages RESET (vacuum_truncate);

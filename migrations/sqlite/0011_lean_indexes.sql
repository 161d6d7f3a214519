-- Every reply writes an outbox row and every message an inbox row, and each index on them is
-- another b-tree to update (and another page for the WAL and the checkpoint to write). Three
-- indexes held an entry for every row only to find the few that have a value: plain replies
-- have no dedupe key and no provider id until sent, and unprocessed messages no processed_at.
-- Partial, they hold only the rows their lookups can match (each lookup compares the column
-- with `=` or `<`, which implies `is not null`, so SQLite and PostgreSQL still use them).
-- The PostgreSQL twin is migrations/postgres/0011_lean_indexes.sql.
drop index outbox_dedupe;
create unique index outbox_dedupe on outbox (dedupe_key) where dedupe_key is not null;
drop index outbox_provider;
create index outbox_provider on outbox (channel, provider_id) where provider_id is not null;
drop index inbox_processed;
create index inbox_processed on inbox (processed_at) where processed_at is not null;

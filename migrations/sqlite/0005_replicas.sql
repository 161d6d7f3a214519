-- What running several dispatchers needs (SQLite). The PostgreSQL twin is
-- migrations/postgres/0005_replicas.sql: keep both in step.

-- The claim lease of an outbox row in `sending`: until then its dispatcher owns it; after,
-- any dispatcher may claim it again (its owner died or hangs). A dispatcher that takes over a
-- channel puts the channel's `sending` rows back to pending at once.
alter table outbox add column claimed_until integer;

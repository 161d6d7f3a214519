-- Officer tokens may expire (`seva officer add --expires-in DAYS`): a stolen token stops
-- working on its own even if nobody notices the theft. NULL: valid until revoked. The
-- SQLite twin is migrations/sqlite/0009_officer_expiry.sql.
alter table officers add column expires_at bigint;

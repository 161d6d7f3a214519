-- Retention and anonymous tips (PostgreSQL). The twin is migrations/sqlite/0006_retention.sql: keep
-- both in step.

-- Anonymous tips (SEVA_ANONYMOUS_CATEGORIES): filed without the citizen's name and phone.
-- `pseudonym` is what officers see instead: an HMAC of the citizen id under SEVA_PSEUDONYM_KEY,
-- stable across one citizen's tips and not reversible without the key. `anonymous` stays as a
-- statistic when the pseudonym is purged.
alter table reports add column anonymous bigint not null default 0;
alter table reports add column pseudonym text;
-- Set by `seva report purge`: the personal fields are gone, the statistics stay.
alter table reports add column personal_data_purged_at bigint;
create index reports_purge on reports (updated_at) where personal_data_purged_at is null;

-- The periodic retention job looks for drafts idle for 24 hours and for payloads older than
-- SEVA_PAYLOAD_RETENTION_DAYS.
create index conversations_idle on conversations (updated_at);
create index inbox_processed on inbox (processed_at);
create index outbox_created on outbox (created_at);
create index whatsapp_media_created on whatsapp_media (created_at);

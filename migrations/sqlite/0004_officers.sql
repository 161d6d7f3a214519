-- Officers, the audit log, and what the report lifecycle records (SQLite). The PostgreSQL twin
-- is migrations/postgres/0004_officers.sql: keep both in step.

-- Officer API tokens (`seva officer add`). Only the SHA-256 of a token is kept; one officer
-- name may hold several tokens, and `seva officer revoke NAME` revokes them all.
-- `scope` is `state`, `district:<id>` or `station:<id>` (ids of SEVA_STATIONS_CSV).
create table officers (
    id integer primary key,
    name text not null,
    scope text not null,
    token_hash text not null unique,
    created_at integer not null,
    revoked_at integer
);
create index officers_name on officers (name);

-- Every officer read and change of a report: who (officer name, or `cli`), when, what, which
-- report. `detail` is JSON (filters of a listing, the status moved to, the attachment number).
create table audit_log (
    id integer primary key,
    actor text not null,
    officer_id integer references officers (id),
    action text not null,
    reference text,
    detail text,
    at integer not null
);
create index audit_log_reference on audit_log (reference, id);
create index audit_log_at on audit_log (at);

-- What a status change needs to keep: the closing reason and, for a lost item marked found,
-- the found report that matched it.
alter table reports add column close_reason text;
alter table reports add column found_ref text;
create index reports_district on reports (district_id, status);
create index reports_created on reports (created_at, id);

-- History rows are status changes (`status`) or transfers between stations (`transfer`,
-- keeping the status); each keeps what the change carried.
alter table report_history add column action text not null default 'status';
alter table report_history add column fir_number text;
alter table report_history add column reason text;
alter table report_history add column found_ref text;
alter table report_history add column from_station text;
alter table report_history add column to_station text;

-- One notification per (report change, recipient): pushes, station alerts and events carry a
-- key derived from the history row, so nothing can enqueue the same notice twice. NULL (every
-- plain reply) never conflicts.
alter table outbox add column dedupe_key text;
create unique index outbox_dedupe on outbox (dedupe_key);

-- Possible lost ↔ found matches, found when either report is filed (same item type and
-- district, compatible dates, equal IMEI or document tail when both are given). A match links
-- the two reports and notifies once; it changes no status: an officer confirms.
create table report_matches (
    lost_report_id integer not null references reports (id),
    found_report_id integer not null references reports (id),
    matched_at integer not null,
    primary key (lost_report_id, found_report_id)
);
create index report_matches_found on report_matches (found_report_id);

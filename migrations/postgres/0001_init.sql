-- Seva's first schema (PostgreSQL). Times are unix seconds (bigint) as in the SQLite twin,
-- migrations/sqlite/0001_init.sql, so both stores share their row shapes; keep both in step.

-- One row per channel identity: a Telegram user id, a WhatsApp wa_id (or business-scoped user
-- id), or a `seva chat --as` name. Logs name citizens by `id`, never by phone.
create table citizens (
    id bigint generated always as identity primary key,
    channel text not null,
    external_id text not null,
    lang text,
    phone text,
    pushes_enabled boolean not null default true,
    unreachable boolean not null default false,
    created_at bigint not null,
    last_inbound_at bigint,
    unique (channel, external_id)
);

-- The dialogue state of each citizen: flows::state::Conversation as JSON.
create table conversations (
    citizen_id bigint primary key references citizens (id),
    state jsonb not null,
    updated_at bigint not null
);

-- Every inbound message, stored before the provider is acknowledged. The id is the arrival
-- order; the provider id makes redeliveries a no-op.
create table inbox (
    id bigint generated always as identity primary key,
    channel text not null,
    provider_id text not null,
    citizen_id bigint not null references citizens (id),
    payload jsonb not null,
    received_at bigint not null,
    processed_at bigint,
    error text,
    unique (channel, provider_id)
);
create index inbox_unprocessed on inbox (citizen_id, id) where processed_at is null;

-- Filed reports (complaints, lost and found items). `draft_id` makes filing idempotent;
-- `citizen_id` is null once the citizen deleted their data.
create table reports (
    id bigint generated always as identity primary key,
    reference text not null unique,
    draft_id text not null unique,
    kind text not null check (kind in ('complaint', 'lost', 'found')),
    citizen_id bigint references citizens (id),
    category text not null,
    description text,
    identifier text,
    occurred_on date,
    place jsonb,
    district_id text,
    station_id text,
    name text,
    phone text,
    custody text,
    lang text not null,
    status text not null,
    fir_number text,
    created_at bigint not null,
    updated_at bigint not null
);
create index reports_citizen on reports (citizen_id, created_at);
create index reports_station on reports (station_id, status);

-- Every status change of a report: who, when, the public note (sent to the citizen) and the
-- internal note (never sent).
create table report_history (
    id bigint generated always as identity primary key,
    report_id bigint not null references reports (id),
    status text not null,
    note text,
    internal_note text,
    actor text not null,
    at bigint not null
);
create index report_history_report on report_history (report_id, id);

-- Files the citizen sent with a report, numbered from 1 in the order sent.
create table attachments (
    report_id bigint not null references reports (id),
    n integer not null,
    kind text not null,
    file_id text not null,
    mime text,
    caption text,
    primary key (report_id, n)
);

-- Every outbound message, written in the transaction that caused it and drained by the
-- dispatcher (claimed with for update skip locked). `content` is abstract (a flows Reply),
-- rendered at send time. The id is the order in which one recipient's messages leave.
create table outbox (
    id bigint generated always as identity primary key,
    citizen_id bigint references citizens (id),
    channel text not null,
    recipient text not null,
    kind text not null check (kind in ('reply', 'push', 'alert', 'event')),
    content jsonb not null,
    lang text,
    status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'dead')),
    attempts integer not null default 0,
    next_attempt_at bigint not null,
    provider_id text,
    last_error text,
    created_at bigint not null,
    sent_at bigint
);
create index outbox_due on outbox (status, next_attempt_at);
create index outbox_recipient on outbox (channel, recipient, id);
create index outbox_citizen on outbox (citizen_id);

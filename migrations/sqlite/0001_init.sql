-- Seva's first schema (SQLite). Times are unix seconds (integer); JSON is stored as text.
-- The PostgreSQL twin is migrations/postgres/0001_init.sql: keep both in step.

-- One row per channel identity: a Telegram user id, a WhatsApp wa_id (or business-scoped user
-- id), or a `seva chat --as` name. Logs name citizens by `id`, never by phone.
create table citizens (
    id integer primary key,
    channel text not null,
    external_id text not null,
    lang text,
    phone text,
    pushes_enabled integer not null default 1,
    unreachable integer not null default 0,
    created_at integer not null,
    last_inbound_at integer,
    unique (channel, external_id)
);

-- The dialogue state of each citizen: flows::state::Conversation as JSON.
create table conversations (
    citizen_id integer primary key references citizens (id),
    state text not null,
    updated_at integer not null
);

-- Every inbound message, stored before the provider is acknowledged. The id is the arrival
-- order (autoincrement: never reused); the provider id makes redeliveries a no-op.
create table inbox (
    id integer primary key autoincrement,
    channel text not null,
    provider_id text not null,
    citizen_id integer not null references citizens (id),
    payload text not null,
    received_at integer not null,
    processed_at integer,
    error text,
    unique (channel, provider_id)
);
create index inbox_unprocessed on inbox (citizen_id, id) where processed_at is null;

-- Filed reports (complaints, lost and found items). `draft_id` makes filing idempotent;
-- `citizen_id` is null once the citizen deleted their data.
create table reports (
    id integer primary key,
    reference text not null unique,
    draft_id text not null unique,
    kind text not null check (kind in ('complaint', 'lost', 'found')),
    citizen_id integer references citizens (id),
    category text not null,
    description text,
    identifier text,
    occurred_on text,
    place text,
    district_id text,
    station_id text,
    name text,
    phone text,
    custody text,
    lang text not null,
    status text not null,
    fir_number text,
    created_at integer not null,
    updated_at integer not null
);
create index reports_citizen on reports (citizen_id, created_at);
create index reports_station on reports (station_id, status);

-- Every status change of a report: who, when, the public note (sent to the citizen) and the
-- internal note (never sent).
create table report_history (
    id integer primary key,
    report_id integer not null references reports (id),
    status text not null,
    note text,
    internal_note text,
    actor text not null,
    at integer not null
);
create index report_history_report on report_history (report_id, id);

-- Files the citizen sent with a report, numbered from 1 in the order sent.
create table attachments (
    report_id integer not null references reports (id),
    n integer not null,
    kind text not null,
    file_id text not null,
    mime text,
    caption text,
    primary key (report_id, n)
);

-- Every outbound message, written in the transaction that caused it and drained by the
-- dispatcher. `content` is abstract (a flows Reply as JSON), rendered at send time. The id is
-- the order in which one recipient's messages leave.
create table outbox (
    id integer primary key autoincrement,
    citizen_id integer references citizens (id),
    channel text not null,
    recipient text not null,
    kind text not null check (kind in ('reply', 'push', 'alert', 'event')),
    content text not null,
    lang text,
    status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'dead')),
    attempts integer not null default 0,
    next_attempt_at integer not null,
    provider_id text,
    last_error text,
    created_at integer not null,
    sent_at integer
);
create index outbox_due on outbox (status, next_attempt_at);
create index outbox_recipient on outbox (channel, recipient, id);
create index outbox_citizen on outbox (citizen_id);

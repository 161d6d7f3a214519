-- WhatsApp channel state (PostgreSQL). The SQLite twin is migrations/sqlite/0002_whatsapp.sql.

-- Delivery receipts from WhatsApp status webhooks, per outbox row (matched by the wamid the send
-- returned, or by the outbox id echoed in `biz_opaque_callback_data`). Times are Meta's.
alter table outbox add column delivered_at bigint;
alter table outbox add column read_at bigint;
alter table outbox add column failed_at bigint;
-- `<code>: <title>` of the last failed status (Meta's words; never personal data).
alter table outbox add column failure text;

-- The 24-hour customer-service window. Set when Seva learned the window was closed for this row
-- (its own 23 h 50 min rule, or a 131047 in a send answer or a failed status), to the citizen's
-- latest inbox id at that moment: until an inbox row with a higher id arrives (the citizen wrote
-- again; ids only grow, so no clock is compared), the row goes out only as its template, or waits.
alter table outbox add column wa_wait_after_inbox bigint;
-- Set once when the row was turned into its approved status template (spec §2.9); from then on
-- it is always sent as the template.
alter table outbox add column wa_templated_at bigint;
-- Request bodies of this row already accepted by Meta (a long reply is several messages), so a
-- retry after a later part failed does not resend the earlier ones.
alter table outbox add column wa_parts_sent bigint not null default 0;

create index outbox_provider on outbox (channel, provider_id);
-- "Has the citizen written since?" is a look at their latest inbox id.
create index inbox_citizen on inbox (citizen_id, id);

-- Failed statuses already applied, unique on the wamid: Meta delivers webhooks at least once,
-- and a 131047 must turn its row into a template once only.
create table whatsapp_failures (
    provider_id text primary key,
    outbox_id bigint references outbox (id),
    code bigint not null,
    title text,
    at bigint not null
);

-- Media citizens sent (photos, documents, voice notes, videos): downloaded in the background
-- while the media id is valid (7 days) into SEVA_MEDIA_DIR. `media_id` is what the report's
-- attachment row holds as `file_id`; `path` is the local copy once downloaded.
create table whatsapp_media (
    media_id text primary key,
    citizen_id bigint not null references citizens (id),
    kind text not null,
    mime text,
    status text not null default 'pending' check (status in ('pending', 'downloading', 'done', 'failed')),
    path text,
    bytes bigint,
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null
);
create index whatsapp_media_due on whatsapp_media (status, next_attempt_at);
create index whatsapp_media_citizen on whatsapp_media (citizen_id);

-- Telegram's own bookkeeping (PostgreSQL). The SQLite twin is migrations/sqlite/0003_telegram.sql:
-- keep both in step.

-- The latest change of a Telegram citizen's reachability (`citizens.unreachable`): a private
-- chat's `my_chat_member` going to `kicked`/`member`, a 403 from sendMessage, or a message
-- from the citizen. A change applies only when (changed_at, update_id) is newer than the one
-- recorded here, so an update Telegram redelivers, or delivers late, cannot undo a newer one.
-- `update_id` is 0 for changes Seva observed itself (a 403).
create table telegram_reachability (
    citizen_id bigint primary key references citizens (id),
    changed_at bigint not null,
    update_id bigint not null
);

-- Group, supergroup and channel chats the bot has seen. Seva works in private chats; each such
-- chat is told so once (`told_at`), however many messages it sends.
create table telegram_group_chats (
    chat_id bigint primary key,
    first_seen_at bigint not null,
    told_at bigint
);

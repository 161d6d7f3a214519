-- Two lookups walked rows that only pile up with time, so they slowed down as history grew.
-- The SQLite twin is migrations/sqlite/0010_bounded_lookups.sql.

-- The dispatcher's claim checks, for each due row, whether an earlier row of the same
-- recipient is still pending or sending. On the full (channel, recipient, id) index that
-- walked every row the recipient was ever sent (a claim of 128 rows, ~100 sent rows per
-- recipient: 4.0 ms; on this index: 0.33 ms). This index holds only the rows in flight.
-- Nothing else looked rows up by recipient without a status, so the full index goes.
drop index outbox_recipient;
create index outbox_active on outbox (channel, recipient, id) where status in ('pending', 'sending');

-- A lost or found report looks for open reports of the other kind, same item type and
-- district, newest first. On (district_id, status) that read and sorted every open report
-- of the district, complaints included; here it reads the newest candidates only.
create index reports_match on reports (district_id, kind, category, id);

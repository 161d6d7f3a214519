//! Group commit: the messages of many citizens stored, answered and marked processed in one
//! transaction with a handful of statements, however many messages it holds.
//!
//! Each statement is a round trip (to sqlx's SQLite worker thread, or over the network to
//! PostgreSQL), and under load the round trips, not the work in them, were the cost: one
//! message alone took about ten. A batch takes the same ten for all its messages together.
//! [`Store::admit_batch`] opens the transaction; the runtime runs each citizen's turn on it
//! ([`Batch::turn`], effects write through the [`Turn`] as usual) and hands the turn's plain
//! writes (replies, processed marks, the conversation) back to be written together at
//! [`Batch::commit`].

use foldhash::{HashMap, HashMapExt, HashSet};

use super::sql;
use flows::message::{Channel, Inbound};

use super::multi_row::{padded, padded_list, statement_text, value_rows, values_source};
use super::ride_along::OpenBatch;
use super::{
    Backend, CITIZEN_COLUMNS, CLAIM_LEASE, Citizen, InboxPayload, InboxRow, NewOutbox, OutboxRow,
    OutboxStatus, ROWS_PER_STATEMENT, Result, Store, StoreError, Turn, Tx, bind_outbox_columns,
    citizen_from_row, corrupt, placeholders, positional, write_send_records,
};

/// What admitting a batch did with one of its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchAdmission {
    /// Stored in the batch's transaction (kept only if it commits).
    New { citizen: usize, inbox_id: i64 },
    /// Its provider id was stored before (or earlier in this same batch): nothing changed.
    Duplicate { citizen_id: i64 },
}

/// An open write transaction holding every citizen of a batch (SQLite: the whole database;
/// PostgreSQL: the citizens' rows, locked by their upsert in one sorted order, so two
/// replicas' batches cannot deadlock on each other). Dropped without [`Batch::commit`], it
/// rolls back.
pub struct Batch {
    tx: Option<Tx>,
    store: Store,
    /// The batch's citizens as of their upsert; [`BatchAdmission::New::citizen`] indexes it.
    pub citizens: Vec<Citizen>,
    /// WhatsApp rows waiting for the window that became due because their citizen wrote.
    pub woke: u64,
    wrote_outbox: bool,
    /// Counts the batch as open for send records to ride along ([`super::ride_along`]).
    _open: Option<OpenBatch>,
    /// Rows to write at commit, each with whether it may be written already claimed
    /// ([`Batch::enqueue_claimed`]).
    outbox: Vec<(NewOutbox, bool)>,
    /// When [`Store::admit_batch`] stored the batch's messages (their `received_at`).
    admitted_at: i64,
    /// Inbox ids of the messages [`Store::admit_batch`] stored processed.
    stored_processed: HashSet<i64>,
    processed: Vec<(i64, Option<&'static str>)>,
    conversations: Vec<(i64, String)>,
}

impl Store {
    /// Opens a batch's transaction: upserts its citizens (moving their `last_inbound_at`, and
    /// on WhatsApp clearing `unreachable`, as [`Store::admit`] does for one) and stores its
    /// messages, unique on their provider ids, in the order given (so one citizen's inbox ids
    /// follow their messages' order). A message whose provider id is already stored is a
    /// [`BatchAdmission::Duplicate`] and changes nothing: its citizen's upsert is undone by
    /// rolling back and admitting the rest again.
    ///
    /// The messages of citizens not marked unreachable are stored processed: the batch runs
    /// their turns before it commits, and a batch that fails rolls back. Only the turn's note
    /// (if any) is written later, and the unprocessed-message index never holds them.
    pub async fn admit_batch(
        &self,
        msgs: &[&Inbound],
        now: i64,
    ) -> Result<(Batch, Vec<BatchAdmission>)> {
        let payloads = msgs
            .iter()
            .map(|m| serde_json::to_string(m).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let mut answers: Vec<Option<BatchAdmission>> = vec![None; msgs.len()];
        loop {
            // Repeats within the batch are duplicates of their first copy.
            let mut first_of: HashMap<(Channel, &str), usize> = HashMap::new();
            let mut todo = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                if answers[i].is_some() {
                    continue;
                }
                if first_of.insert((m.channel, &m.provider_id), i).is_none() {
                    todo.push(i);
                }
            }
            let mut tx = self.write().await?;
            let open = self.ride_along.as_ref().map(|r| r.open_batch());
            let citizens = upsert_citizens(&mut tx, self.backend, msgs, &todo, now).await?;
            let index: HashMap<(Channel, &str), usize> = citizens
                .iter()
                .enumerate()
                .map(|(n, c)| ((c.channel, c.external_id.as_str()), n))
                .collect();
            let citizen_of = |i: usize| index[&(msgs[i].channel, msgs[i].sender.as_str())];
            let stored = insert_inbox(
                &mut tx,
                self.backend,
                msgs,
                &payloads,
                &todo,
                |i| {
                    let citizen = &citizens[citizen_of(i)];
                    (citizen.id, (!citizen.unreachable).then_some(now))
                },
                now,
            )
            .await?;
            if stored.len() < todo.len() {
                for &i in &todo {
                    if !stored.contains_key(&(msgs[i].channel, msgs[i].provider_id.as_str())) {
                        answers[i] = Some(BatchAdmission::Duplicate {
                            citizen_id: citizens[citizen_of(i)].id,
                        });
                    }
                }
                tx.rollback().await?;
                continue;
            }
            for (i, m) in msgs.iter().enumerate() {
                let key = (m.channel, m.provider_id.as_str());
                match (&answers[i], stored.get(&key)) {
                    (Some(_), _) => {}
                    (None, Some(&inbox_id)) if first_of[&key] == i => {
                        answers[i] = Some(BatchAdmission::New {
                            citizen: citizen_of(i),
                            inbox_id,
                        });
                    }
                    (None, _) => {
                        answers[i] = Some(BatchAdmission::Duplicate {
                            citizen_id: citizens[citizen_of(i)].id,
                        });
                    }
                }
            }
            let whatsapp: Vec<&str> = citizens
                .iter()
                .filter(|c| c.channel == Channel::Whatsapp)
                .map(|c| c.external_id.as_str())
                .collect();
            let woke = super::whatsapp::wake_waiting_all(&mut tx, &whatsapp, now).await?;
            let stored_processed = todo
                .iter()
                .filter(|&&i| !citizens[citizen_of(i)].unreachable)
                .filter_map(|&i| stored.get(&(msgs[i].channel, msgs[i].provider_id.as_str())))
                .copied()
                .collect();
            let batch = Batch {
                tx: Some(tx),
                store: self.clone(),
                citizens,
                woke,
                wrote_outbox: woke > 0,
                _open: open,
                outbox: Vec::new(),
                admitted_at: now,
                stored_processed,
                processed: Vec::new(),
                conversations: Vec::new(),
            };
            let answers = answers
                .into_iter()
                .map(|a| a.expect("every message is answered"))
                .collect();
            return Ok((batch, answers));
        }
    }
}

/// One statement for every citizen of the batch, sorted so that concurrent batches lock the
/// same rows in the same order.
async fn upsert_citizens(
    tx: &mut Tx,
    backend: Backend,
    msgs: &[&Inbound],
    todo: &[usize],
    now: i64,
) -> Result<Vec<Citizen>> {
    let mut latest: HashMap<(Channel, &str), i64> = HashMap::new();
    for &i in todo {
        let m = msgs[i];
        // As in `Store::admit`: when the citizen wrote, as far as it is plausible.
        let written = if m.sent_at > 0 {
            m.sent_at.min(now)
        } else {
            now
        };
        let at = latest
            .entry((m.channel, m.sender.as_str()))
            .or_insert(written);
        *at = (*at).max(written);
    }
    let mut keys: Vec<_> = latest.into_iter().collect();
    keys.sort_by(|a, b| (a.0.0.as_str(), a.0.1).cmp(&(b.0.0.as_str(), b.0.1)));
    let mut citizens = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let sql = statement_text("batch citizens", backend, padded(chunk.len()), || {
            let values = value_rows(padded(chunk.len()), 4, |n| {
                format!("(${}, ${}, 1, 0, ${}, ${})", n[0], n[1], n[2], n[3])
            });
            let source = values_source(&values, 1);
            positional(
                backend,
                format!(
                    "insert into citizens (channel, external_id, pushes_enabled, unreachable, created_at, last_inbound_at) \
                 {source} on conflict (channel, external_id) do update set \
                 last_inbound_at = case when coalesce(citizens.last_inbound_at, 0) > excluded.last_inbound_at \
                 then citizens.last_inbound_at else excluded.last_inbound_at end, \
                 unreachable = case when excluded.channel = 'whatsapp' then 0 else citizens.unreachable end \
                 returning {CITIZEN_COLUMNS}"
                ),
            )
        });
        let mut query = sql::query(&sql);
        for ((channel, sender), written) in chunk {
            query = query
                .bind(channel.as_str())
                .bind(*sender)
                .bind(now)
                .bind(*written);
        }
        for _ in chunk.len()..padded(chunk.len()) {
            query = query
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(None::<i64>);
        }
        for row in query.fetch_all(&mut **tx).await? {
            citizens.push(citizen_from_row(&row)?);
        }
    }
    Ok(citizens)
}

/// Stores the messages not yet stored, each with its citizen id and `processed_at`; returns
/// the inbox id of each one stored now, by (channel, provider id).
async fn insert_inbox<'m>(
    tx: &mut Tx,
    backend: Backend,
    msgs: &[&'m Inbound],
    payloads: &[String],
    todo: &[usize],
    citizen: impl Fn(usize) -> (i64, Option<i64>),
    now: i64,
) -> Result<HashMap<(Channel, &'m str), i64>> {
    let mut stored = HashMap::with_capacity(todo.len());
    for chunk in todo.chunks(ROWS_PER_STATEMENT) {
        let sql = statement_text("batch inbox", backend, padded(chunk.len()), || {
            let values = value_rows(padded(chunk.len()), 6, |n| {
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    n[0], n[1], n[2], n[3], n[4], n[5]
                )
            });
            positional(
                backend,
                format!(
                    "insert into inbox (channel, provider_id, citizen_id, payload, received_at, processed_at) \
                 {} on conflict (channel, provider_id) do nothing returning id, channel, provider_id",
                    values_source(&values, 1)
                ),
            )
        });
        let mut query = sql::query(&sql);
        for &i in chunk {
            let m = msgs[i];
            let (citizen_id, processed_at) = citizen(i);
            query = query
                .bind(m.channel.as_str())
                .bind(&m.provider_id)
                .bind(citizen_id)
                .bind(&payloads[i])
                .bind(now)
                .bind(processed_at);
        }
        for _ in chunk.len()..padded(chunk.len()) {
            query = query
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(None::<i64>);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let channel: String = row.try_get("channel")?;
            let provider_id: String = row.try_get("provider_id")?;
            let Some(&i) = chunk.iter().find(|&&i| {
                msgs[i].channel.as_str() == channel && msgs[i].provider_id == provider_id
            }) else {
                return Err(corrupt("inbox row of the batch", &provider_id));
            };
            stored.insert(
                (msgs[i].channel, msgs[i].provider_id.as_str()),
                row.try_get("id")?,
            );
        }
    }
    Ok(stored)
}

/// The unprocessed messages of `n` citizens (`$1`…), oldest first, from the partial index
/// `inbox_unprocessed`, which holds only those. Without statistics SQLite would rather take
/// `inbox_citizen` and walk every message each citizen ever sent: a quarter of a millisecond
/// per batch once citizens have written a few hundred. PostgreSQL's planner knows the sizes.
pub(super) fn leftovers_sql(backend: Backend, n: usize) -> String {
    let hint = match backend {
        Backend::Sqlite => " indexed by inbox_unprocessed",
        Backend::Postgres => "",
    };
    positional(
        backend,
        format!(
            "select citizen_id, id, received_at, payload from inbox{hint} \
             where citizen_id in ({}) and processed_at is null order by id",
            placeholders(1, n)
        ),
    )
}

impl Batch {
    /// The turn of `citizens[citizen]` on the batch's transaction; give it back with
    /// [`Batch::end_turn`] before the next.
    pub fn turn(&mut self, citizen: usize) -> Result<Turn> {
        let tx = self
            .tx
            .take()
            .ok_or(StoreError::Corrupt("a batch turn is already open".into()))?;
        Ok(Turn::new(tx, self.citizens[citizen].clone(), &self.store))
    }

    /// Takes the transaction back from a turn (its writes stay in it).
    pub fn end_turn(&mut self, turn: Turn) {
        let (tx, wrote_outbox) = turn.into_parts();
        self.tx = Some(tx);
        self.wrote_outbox |= wrote_outbox;
    }

    /// The messages waiting for each of these citizens' turns, in arrival order, and their
    /// stored conversation. `held` are the messages this batch stored, as (citizen id, inbox
    /// id, message): they are taken as they are rather than read back, after any older
    /// message of their citizen still unprocessed (left by a turn that failed, or a crash),
    /// which is read with its payload. Citizens with nothing waiting are left out.
    pub async fn waiting_and_conversations(
        &mut self,
        citizen_ids: &[i64],
        mut held: Vec<(i64, i64, Inbound)>,
    ) -> Result<HashMap<i64, (Vec<InboxRow>, Option<String>)>> {
        let mut out: HashMap<i64, (Vec<InboxRow>, Option<String>)> = citizen_ids
            .iter()
            .map(|&id| (id, (Vec::new(), None)))
            .collect();
        let backend = self.store.backend;
        let admitted_at = self.admitted_at;
        let tx = self.tx()?;
        for chunk in citizen_ids.chunks(ROWS_PER_STATEMENT) {
            let ids = padded_list(chunk);
            let sql = statement_text("batch conversations", backend, ids.len(), || {
                positional(
                    backend,
                    format!(
                        "select citizen_id, state from conversations where citizen_id in ({})",
                        placeholders(1, ids.len())
                    ),
                )
            });
            let mut query = sql::query(&sql);
            for &id in &ids {
                query = query.bind(id);
            }
            for row in query.fetch_all(&mut **tx).await? {
                if let Some(entry) = out.get_mut(&row.try_get::<i64, _>("citizen_id")?) {
                    entry.1 = row.try_get("state")?;
                }
            }
            let sql = statement_text("batch leftovers", backend, ids.len(), || {
                leftovers_sql(backend, ids.len())
            });
            let mut query = sql::query(&sql);
            for id in &ids {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut **tx).await? {
                if let Some(entry) = out.get_mut(&row.try_get::<i64, _>("citizen_id")?) {
                    entry.0.push(InboxRow {
                        id: row.try_get("id")?,
                        payload: InboxPayload::Stored(row.try_get("payload")?),
                        received_at: row.try_get("received_at")?,
                    });
                }
            }
        }
        held.sort_by_key(|h| h.1);
        for (citizen_id, id, message) in held {
            if let Some(entry) = out.get_mut(&citizen_id) {
                entry.0.push(InboxRow {
                    id,
                    payload: InboxPayload::Held(message),
                    received_at: admitted_at,
                });
            }
        }
        out.retain(|_, (rows, _)| !rows.is_empty());
        Ok(out)
    }

    /// Whether the batch wrote outbox rows other than the replies handed to
    /// [`Batch::enqueue`]: a turn's effects (station alerts, events, pushes) or WhatsApp rows
    /// that were waiting for the window.
    pub fn wrote_beyond_replies(&self) -> bool {
        self.wrote_outbox
    }

    /// A reply (or other outbox row) to write at commit, after everything written before.
    pub fn enqueue(&mut self, row: NewOutbox) {
        self.outbox.push((row, false));
    }

    /// Like [`Batch::enqueue`], but the row is written already claimed (`sending`, leased
    /// as [`Store::claim_due`] leases) when nothing holds it back: it is the first row of
    /// this commit for its recipient, and the recipient has no pending or sending row
    /// before it. [`Batch::commit`] returns the rows it wrote so, for the caller to send
    /// at once instead of a dispatcher claiming them.
    pub fn enqueue_claimed(&mut self, row: NewOutbox) {
        self.outbox.push((row, true));
    }

    /// Marks an inbox row processed at commit; `note` says why it was not run through the
    /// dialogue. A message the batch stored processed needs a write only for its note.
    pub fn mark_processed(&mut self, inbox_id: i64, note: Option<&'static str>) {
        if note.is_some() || !self.stored_processed.contains(&inbox_id) {
            self.processed.push((inbox_id, note));
        }
    }

    /// The citizen's conversation as of the end of their turn, saved at commit.
    pub fn save_conversation(&mut self, citizen_id: i64, state: String) {
        self.conversations.push((citizen_id, state));
    }

    fn tx(&mut self) -> Result<&mut Tx> {
        self.tx
            .as_mut()
            .ok_or(StoreError::Corrupt("a batch turn is still open".into()))
    }

    /// Writes what the turns handed back and commits; the fleet's dispatchers are woken if
    /// anything went to the outbox that nobody claimed. Returns the rows written claimed
    /// ([`Batch::enqueue_claimed`]), each with its position among the rows enqueued.
    /// `answered` says whether a `sending` row's provider has already accepted it (only its
    /// record is still to be written): such a row no longer holds its recipient's next one.
    pub async fn commit(
        mut self,
        now: i64,
        answered: impl Fn(i64) -> bool,
    ) -> Result<Vec<(usize, OutboxRow)>> {
        let outbox = std::mem::take(&mut self.outbox);
        let processed = std::mem::take(&mut self.processed);
        let conversations = std::mem::take(&mut self.conversations);
        let turns_wrote_outbox = self.wrote_outbox;
        let backend = self.store.backend;
        let riders = self.store.ride_along.as_ref().map(|r| r.take());
        let tx = self.tx()?;
        if let Some(riders) = &riders {
            write_send_records(tx, backend, &riders.rows).await?;
        }
        let claimable = claimable_rows(tx, backend, &outbox, answered).await?;
        let (claimed, pending): (Vec<usize>, Vec<usize>) =
            (0..outbox.len()).partition(|i| claimable.contains(i));
        let mut written = Vec::with_capacity(claimed.len());
        for chunk in claimed.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<&NewOutbox> = chunk.iter().map(|&i| &outbox[i].0).collect();
            let ids = insert_outbox_rows(tx, backend, &rows, now, Some(now + CLAIM_LEASE)).await?;
            for (&i, id) in chunk.iter().zip(ids) {
                written.push((i, claimed_row(&outbox[i].0, id, now)));
            }
        }
        for chunk in pending.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<&NewOutbox> = chunk.iter().map(|&i| &outbox[i].0).collect();
            insert_outbox_rows(tx, backend, &rows, now, None).await?;
        }
        let wrote_outbox = turns_wrote_outbox || !pending.is_empty();
        let mut notes: Vec<Option<&str>> = processed.iter().map(|p| p.1).collect();
        notes.sort();
        notes.dedup();
        for note in notes {
            let ids: Vec<i64> = processed
                .iter()
                .filter(|p| p.1 == note)
                .map(|p| p.0)
                .collect();
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let chunk = padded_list(chunk);
                let sql = statement_text("batch processed", backend, chunk.len(), || {
                    positional(
                        backend,
                        format!(
                            "update inbox set processed_at = $1, error = $2 where id in ({})",
                            placeholders(3, chunk.len())
                        ),
                    )
                });
                let mut query = sql::query(&sql).bind(now).bind(note);
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut **tx).await?;
            }
        }
        for chunk in conversations.chunks(ROWS_PER_STATEMENT) {
            let sql = statement_text(
                "batch conversations save",
                backend,
                padded(chunk.len()),
                || {
                    let values = value_rows(padded(chunk.len()), 3, |n| {
                        format!("(${}, ${}, ${})", n[0], n[1], n[2])
                    });
                    positional(
                        backend,
                        format!(
                            "insert into conversations (citizen_id, state, updated_at) {} \
                     on conflict (citizen_id) do update set state = excluded.state, updated_at = excluded.updated_at",
                            values_source(&values, 1)
                        ),
                    )
                },
            );
            let mut query = sql::query(&sql);
            for (citizen_id, state) in chunk {
                query = query.bind(*citizen_id).bind(state).bind(now);
            }
            for _ in chunk.len()..padded(chunk.len()) {
                query = query.bind(None::<i64>).bind(None::<&str>).bind(None::<i64>);
            }
            query.execute(&mut **tx).await?;
        }
        let tx = self.tx.take().expect("checked above");
        tx.commit().await?;
        if let Some(riders) = riders {
            riders.committed();
        }
        if wrote_outbox {
            self.store.wake_fleet();
        }
        Ok(written)
    }
}

/// Which of `outbox` (by position) may be written claimed: asked for, first of their
/// recipient in the list, and their recipient has no pending row and no sending row its
/// provider has not `answered` (rows the turns wrote in this transaction included). One
/// statement per channel.
async fn claimable_rows(
    tx: &mut Tx,
    backend: Backend,
    outbox: &[(NewOutbox, bool)],
    answered: impl Fn(i64) -> bool,
) -> Result<Vec<usize>> {
    let mut first: HashMap<(Channel, &str), usize> = HashMap::new();
    for (i, (row, _)) in outbox.iter().enumerate() {
        first
            .entry((row.channel, row.recipient.as_str()))
            .or_insert(i);
    }
    let mut wanted: Vec<usize> = outbox
        .iter()
        .enumerate()
        .filter(|(i, (row, claimable))| {
            *claimable && first[&(row.channel, row.recipient.as_str())] == *i
        })
        .map(|(i, _)| i)
        .collect();
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let mut channels: Vec<Channel> = wanted.iter().map(|&i| outbox[i].0.channel).collect();
    channels.sort_by_key(|c| c.as_str());
    channels.dedup();
    for channel in channels {
        let recipients: Vec<&str> = wanted
            .iter()
            .map(|&i| &outbox[i].0)
            .filter(|row| row.channel == channel)
            .map(|row| row.recipient.as_str())
            .collect();
        for chunk in recipients.chunks(ROWS_PER_STATEMENT) {
            let chunk = padded_list(chunk);
            // `status in ('pending', 'sending')` word for word: SQLite then uses the partial
            // index `outbox_active`.
            let sql = statement_text("batch claimable", backend, chunk.len(), || {
                positional(
                    backend,
                    format!(
                        "select recipient, id, status from outbox where channel = $1 and recipient in ({}) \
                         and status in ('pending', 'sending')",
                        placeholders(2, chunk.len())
                    ),
                )
            });
            let mut query = sql::query(&sql).bind(channel.as_str());
            for recipient in &chunk {
                query = query.bind(*recipient);
            }
            let mut busy: Vec<String> = Vec::new();
            for r in query.fetch_all(&mut **tx).await? {
                let status: String = r.try_get("status")?;
                if status == OutboxStatus::Sending.as_str() && answered(r.try_get("id")?) {
                    continue;
                }
                busy.push(r.try_get("recipient")?);
            }
            wanted.retain(|&i| {
                let row = &outbox[i].0;
                row.channel != channel || !busy.contains(&row.recipient)
            });
        }
    }
    Ok(wanted)
}

/// Writes `rows` in order: pending, or claimed until `claimed_until`. Returns their ids, in
/// the same order.
async fn insert_outbox_rows(
    tx: &mut Tx,
    backend: Backend,
    rows: &[&NewOutbox],
    now: i64,
    claimed_until: Option<i64>,
) -> Result<Vec<i64>> {
    let status = if claimed_until.is_some() {
        "sending"
    } else {
        "pending"
    };
    let name = if claimed_until.is_some() {
        "batch outbox claimed"
    } else {
        "batch outbox pending"
    };
    let sql = statement_text(name, backend, padded(rows.len()), || {
        let values = value_rows(padded(rows.len()), 9, |n| {
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, '{status}', 0, ${}, ${}, ${})",
                n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8]
            )
        });
        let returning = if claimed_until.is_some() {
            " returning id, channel, recipient"
        } else {
            ""
        };
        positional(
            backend,
            format!(
                "insert into outbox (citizen_id, channel, recipient, kind, content, lang, status, attempts, \
             next_attempt_at, created_at, claimed_until) {}{returning}",
                values_source(&values, 2)
            ),
        )
    });
    let mut query = sql::query(&sql);
    for row in rows {
        query = bind_outbox_columns(query, row)
            .bind(now)
            .bind(now)
            .bind(claimed_until);
    }
    for _ in rows.len()..padded(rows.len()) {
        query = query
            .bind(None::<i64>)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(None::<i64>)
            .bind(None::<i64>)
            .bind(None::<i64>);
    }
    if claimed_until.is_none() {
        query.execute(&mut **tx).await?;
        return Ok(Vec::new());
    }
    // A multi-row insert's `returning` order is not promised: rows are matched by recipient,
    // which is unique among claimed rows.
    let mut ids: HashMap<(String, String), i64> = HashMap::with_capacity(rows.len());
    for r in query.fetch_all(&mut **tx).await? {
        ids.insert(
            (r.try_get("channel")?, r.try_get("recipient")?),
            r.try_get("id")?,
        );
    }
    rows.iter()
        .map(|row| {
            ids.get(&(row.channel.as_str().to_owned(), row.recipient.clone()))
                .copied()
                .ok_or_else(|| corrupt("claimed outbox row of the batch", &row.recipient))
        })
        .collect()
}

/// The row [`insert_outbox_rows`] wrote claimed, as a claim would have returned it.
fn claimed_row(row: &NewOutbox, id: i64, now: i64) -> OutboxRow {
    OutboxRow {
        id,
        citizen_id: row.citizen_id,
        channel: row.channel,
        recipient: row.recipient.clone(),
        kind: row.kind,
        content: row.content.clone(),
        lang: row.lang,
        status: OutboxStatus::Sending,
        attempts: 0,
        next_attempt_at: now,
        provider_id: None,
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}

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

use std::collections::HashMap;

use flows::Lang;
use flows::message::{Channel, Inbound};
use sqlx::Row;

use super::{
    CITIZEN_COLUMNS, Citizen, InboxPayload, InboxRow, NewOutbox, ROWS_PER_STATEMENT, Result, Store,
    StoreError, Turn, Tx, citizen_from_row, corrupt, placeholders,
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
    outbox: Vec<NewOutbox>,
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
            let citizens = upsert_citizens(&mut tx, msgs, &todo, now).await?;
            let index: HashMap<(Channel, &str), usize> = citizens
                .iter()
                .enumerate()
                .map(|(n, c)| ((c.channel, c.external_id.as_str()), n))
                .collect();
            let citizen_of = |i: usize| index[&(msgs[i].channel, msgs[i].sender.as_str())];
            let stored =
                insert_inbox(&mut tx, msgs, &payloads, &todo, &citizens, &index, now).await?;
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
            let batch = Batch {
                tx: Some(tx),
                store: self.clone(),
                citizens,
                woke,
                wrote_outbox: woke > 0,
                outbox: Vec::new(),
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
        let values = value_rows(chunk.len(), 3, |n| {
            format!("(${}, ${}, 1, 0, $1, ${})", n[0], n[1], n[2])
        });
        let sql = format!(
            "insert into citizens (channel, external_id, pushes_enabled, unreachable, created_at, last_inbound_at) \
             values {values} on conflict (channel, external_id) do update set \
             last_inbound_at = case when coalesce(citizens.last_inbound_at, 0) > excluded.last_inbound_at \
             then citizens.last_inbound_at else excluded.last_inbound_at end, \
             unreachable = case when excluded.channel = 'whatsapp' then 0 else citizens.unreachable end \
             returning {CITIZEN_COLUMNS}"
        );
        let mut query = sqlx::query(&sql).bind(now);
        for ((channel, sender), written) in chunk {
            query = query.bind(channel.as_str()).bind(*sender).bind(*written);
        }
        for row in query.fetch_all(&mut **tx).await? {
            citizens.push(citizen_from_row(&row)?);
        }
    }
    Ok(citizens)
}

/// Stores the messages not yet stored; returns the inbox id of each one stored now, by
/// (channel, provider id).
async fn insert_inbox<'m>(
    tx: &mut Tx,
    msgs: &[&'m Inbound],
    payloads: &[String],
    todo: &[usize],
    citizens: &[Citizen],
    index: &HashMap<(Channel, &str), usize>,
    now: i64,
) -> Result<HashMap<(Channel, &'m str), i64>> {
    let mut stored = HashMap::with_capacity(todo.len());
    for chunk in todo.chunks(ROWS_PER_STATEMENT) {
        let values = value_rows(chunk.len(), 4, |n| {
            format!("(${}, ${}, ${}, ${}, $1)", n[0], n[1], n[2], n[3])
        });
        let sql = format!(
            "insert into inbox (channel, provider_id, citizen_id, payload, received_at) values {values} \
             on conflict (channel, provider_id) do nothing returning id, channel, provider_id"
        );
        let mut query = sqlx::query(&sql).bind(now);
        for &i in chunk {
            let m = msgs[i];
            let citizen = &citizens[index[&(m.channel, m.sender.as_str())]];
            query = query
                .bind(m.channel.as_str())
                .bind(&m.provider_id)
                .bind(citizen.id)
                .bind(&payloads[i]);
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

/// `count` rows of `width` numbered placeholders each, after the statement's shared `$1`.
fn value_rows(count: usize, width: usize, row: impl Fn(&[usize]) -> String) -> String {
    let mut out = String::with_capacity(count * (width * 5 + 8));
    let mut n: Vec<usize> = vec![0; width];
    for r in 0..count {
        for (k, slot) in n.iter_mut().enumerate() {
            *slot = 2 + r * width + k;
        }
        if r > 0 {
            out.push_str(", ");
        }
        out.push_str(&row(&n));
    }
    out
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

    /// The unprocessed messages (in arrival order) and stored conversation of each of these
    /// citizens. `held` are the messages this batch stored (by inbox id): they are taken from
    /// it rather than read back; only older ones (stored by a turn that failed, or before a
    /// crash) have their payload read, in a second statement.
    pub async fn unprocessed_and_conversations(
        &mut self,
        citizen_ids: &[i64],
        mut held: HashMap<i64, Inbound>,
    ) -> Result<HashMap<i64, (Vec<InboxRow>, Option<String>)>> {
        let mut out: HashMap<i64, (Vec<InboxRow>, Option<String>)> = HashMap::new();
        let mut older: Vec<i64> = Vec::new();
        let tx = self.tx()?;
        for chunk in citizen_ids.chunks(ROWS_PER_STATEMENT) {
            let list = placeholders(1, chunk.len());
            let sql = format!(
                "select i.citizen_id, i.id, i.received_at, c.state from inbox i \
                 left join conversations c on c.citizen_id = i.citizen_id \
                 where i.citizen_id in ({list}) and i.processed_at is null order by i.id"
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut **tx).await? {
                let entry = out
                    .entry(row.try_get("citizen_id")?)
                    .or_insert_with(|| (Vec::new(), None));
                if entry.0.is_empty() {
                    entry.1 = row.try_get("state")?;
                }
                let id: i64 = row.try_get("id")?;
                let payload = match held.remove(&id) {
                    Some(message) => InboxPayload::Held(message),
                    None => {
                        older.push(id);
                        InboxPayload::Stored(String::new())
                    }
                };
                entry.0.push(InboxRow {
                    id,
                    payload,
                    received_at: row.try_get("received_at")?,
                });
            }
        }
        if older.is_empty() {
            return Ok(out);
        }
        let mut payloads: HashMap<i64, String> = HashMap::with_capacity(older.len());
        for chunk in older.chunks(ROWS_PER_STATEMENT) {
            let list = placeholders(1, chunk.len());
            let sql = format!("select id, payload from inbox where id in ({list})");
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut **tx).await? {
                payloads.insert(row.try_get("id")?, row.try_get("payload")?);
            }
        }
        for row in out.values_mut().flat_map(|(rows, _)| rows.iter_mut()) {
            if let InboxPayload::Stored(json) = &mut row.payload {
                *json = payloads.remove(&row.id).unwrap_or_default();
            }
        }
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
        self.outbox.push(row);
    }

    /// Marks an inbox row processed at commit; `note` says why it was not run through the
    /// dialogue.
    pub fn mark_processed(&mut self, inbox_id: i64, note: Option<&'static str>) {
        self.processed.push((inbox_id, note));
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
    /// anything went to the outbox.
    pub async fn commit(mut self, now: i64) -> Result<()> {
        let outbox = std::mem::take(&mut self.outbox);
        let processed = std::mem::take(&mut self.processed);
        let conversations = std::mem::take(&mut self.conversations);
        let wrote_outbox = self.wrote_outbox || !outbox.is_empty();
        let tx = self.tx()?;
        for chunk in outbox.chunks(ROWS_PER_STATEMENT) {
            let values = value_rows(chunk.len(), 6, |n| {
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, 'pending', 0, $1, $1)",
                    n[0], n[1], n[2], n[3], n[4], n[5]
                )
            });
            let sql = format!(
                "insert into outbox (citizen_id, channel, recipient, kind, content, lang, status, attempts, \
                 next_attempt_at, created_at) values {values}"
            );
            let mut query = sqlx::query(&sql).bind(now);
            for row in chunk {
                query = query
                    .bind(row.citizen_id)
                    .bind(row.channel.as_str())
                    .bind(&row.recipient)
                    .bind(row.kind.as_str())
                    .bind(&row.content)
                    .bind(row.lang.map(Lang::code));
            }
            query.execute(&mut **tx).await?;
        }
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
                let list = placeholders(3, chunk.len());
                let sql =
                    format!("update inbox set processed_at = $1, error = $2 where id in ({list})");
                let mut query = sqlx::query(&sql).bind(now).bind(note);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut **tx).await?;
            }
        }
        for chunk in conversations.chunks(ROWS_PER_STATEMENT) {
            let values = value_rows(chunk.len(), 2, |n| format!("(${}, ${}, $1)", n[0], n[1]));
            let sql = format!(
                "insert into conversations (citizen_id, state, updated_at) values {values} \
                 on conflict (citizen_id) do update set state = excluded.state, updated_at = excluded.updated_at"
            );
            let mut query = sqlx::query(&sql).bind(now);
            for (citizen_id, state) in chunk {
                query = query.bind(*citizen_id).bind(state);
            }
            query.execute(&mut **tx).await?;
        }
        let tx = self.tx.take().expect("checked above");
        tx.commit().await?;
        if wrote_outbox {
            self.store.wake_fleet();
        }
        Ok(())
    }
}

//! Group commit: the messages of many citizens stored, answered and marked processed in one
//! transaction with a handful of statements, however many messages it holds.
//!
//! Each statement is a round trip (to sqlx's SQLite worker thread, or over the network to
//! PostgreSQL), and under load the round trips, not the work in them, were the cost: one
//! message alone took about ten. A batch runs in four steps — `begin`, admission, the turns'
//! writes, `commit` — and on SQLite each step's statements go to the connection's thread in
//! one call ([`Steps`]). [`Store::admit_batch`] opens the transaction; the runtime runs each
//! citizen's turn on it ([`Batch::turn`], effects write through the [`Turn`] as usual) and
//! hands the turn's plain writes (replies, processed marks, the conversation) back to be
//! written together at [`Batch::commit`].

use std::collections::HashMap;

use flows::Lang;
use flows::message::{Channel, Inbound};
use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{Either, Row};

use super::{
    Backend, CITIZEN_COLUMNS, Citizen, InboxRow, NewOutbox, Result, Store, StoreError, Turn, Tx,
    citizen_from_row, corrupt,
};

/// Rows per multi-row statement: far below SQLite's 32,766 and PostgreSQL's 65,535 binds.
const ROWS_PER_STATEMENT: usize = 500;

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
    /// Each citizen's unprocessed messages (arrival order) and stored conversation, read
    /// during admission.
    waiting: HashMap<i64, (Vec<InboxRow>, Option<String>)>,
    wrote_outbox: bool,
    outbox: Vec<NewOutbox>,
    processed: Vec<(i64, Option<&'static str>)>,
    conversations: Vec<(i64, String)>,
}

/// A value bound to a [`Steps`] statement.
enum Value<'a> {
    Int(i64),
    Text(&'a str),
    MaybeInt(Option<i64>),
    MaybeText(Option<&'a str>),
}

/// One step's statements with their values, numbered for how they run: on SQLite all in one
/// call (one hop to the connection's thread; sqlx binds `$N` to the call's N-th value in every
/// statement of it), on PostgreSQL one statement per round trip (its protocol takes one
/// statement with parameters at a time), each numbered from `$1`.
struct Steps<'a> {
    backend: Backend,
    calls: Vec<(String, Vec<Value<'a>>)>,
    sql: String,
    values: Vec<Value<'a>>,
}

/// What one statement of a [`Steps`] returned.
#[derive(Default)]
struct Outcome {
    rows: Vec<AnyRow>,
    affected: u64,
}

impl<'a> Steps<'a> {
    fn new(backend: Backend) -> Self {
        Steps {
            backend,
            calls: Vec::new(),
            sql: String::new(),
            values: Vec::new(),
        }
    }

    /// Binds a value; returns its placeholder (for this statement only).
    fn bind(&mut self, value: Value<'a>) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    fn end_statement(&mut self) {
        match self.backend {
            Backend::Sqlite => self.sql.push_str(";\n"),
            Backend::Postgres => {
                let sql = std::mem::take(&mut self.sql);
                let values = std::mem::take(&mut self.values);
                self.calls.push((sql, values));
            }
        }
    }

    /// Runs every statement in order; one [`Outcome`] per statement.
    async fn run(mut self, tx: &mut Tx) -> Result<Vec<Outcome>> {
        if !self.sql.is_empty() {
            let sql = std::mem::take(&mut self.sql);
            let values = std::mem::take(&mut self.values);
            self.calls.push((sql, values));
        }
        let mut outcomes = Vec::new();
        for (sql, values) in &self.calls {
            let mut query = sqlx::query(sql);
            for v in values {
                query = match v {
                    Value::Int(n) => query.bind(*n),
                    Value::Text(s) => query.bind(*s),
                    Value::MaybeInt(n) => query.bind(*n),
                    Value::MaybeText(s) => query.bind(*s),
                };
            }
            // Deprecated in sqlx 0.8 because only SQLite takes several statements with
            // parameters in one call (launchbadge/sqlx#3108); still how 0.8 reads them one by
            // one. Should a later sqlx drop it, SQLite runs one call per statement like
            // PostgreSQL (`end_statement`), at one hop each.
            #[allow(deprecated)]
            let mut results = query.fetch_many(&mut **tx);
            let mut current = Outcome::default();
            while let Some(item) = results.try_next().await? {
                match item {
                    Either::Right(row) => current.rows.push(row),
                    Either::Left(done) => {
                        current.affected = done.rows_affected();
                        outcomes.push(std::mem::take(&mut current));
                    }
                }
            }
        }
        Ok(outcomes)
    }
}

/// `$a, $b, …`: one placeholder per value.
fn list<'a, T>(steps: &mut Steps<'a>, items: &[T], value: impl Fn(&T) -> Value<'a>) -> String {
    items
        .iter()
        .map(|item| steps.bind(value(item)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Opens a batch's transaction: upserts its citizens (moving their `last_inbound_at`, and
    /// on WhatsApp clearing `unreachable`, as [`Store::admit`] does for one), stores its
    /// messages, unique on their provider ids, in the order given (so one citizen's inbox ids
    /// follow their messages' order), makes the citizens' WhatsApp rows waiting for the window
    /// due, and reads each citizen's waiting messages and conversation. A message whose
    /// provider id is already stored is a [`BatchAdmission::Duplicate`] and changes nothing:
    /// its citizen's upsert is undone by rolling back and admitting the rest again.
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
            let keys = citizen_keys(msgs, &todo, now);
            let mut tx = self.write().await?;
            let (upserted, inserted, woke, waiting) = if keys.is_empty() {
                // Everything left was a duplicate: nothing to write or read.
                Default::default()
            } else {
                let mut steps = Steps::new(self.backend);
                upsert_citizens(&mut steps, &keys, now);
                insert_inbox(&mut steps, msgs, &payloads, &todo, now);
                wake_waiting(&mut steps, &keys, now);
                unprocessed_and_conversations(&mut steps, &keys);
                let mut outcomes = steps.run(&mut tx).await?.into_iter();
                // One outcome per statement, in the order written; each list may span several.
                let mut take = |statements: usize| {
                    let mut merged = Outcome::default();
                    for o in outcomes.by_ref().take(statements) {
                        merged.rows.extend(o.rows);
                        merged.affected += o.affected;
                    }
                    merged
                };
                (
                    take(keys.len().div_ceil(ROWS_PER_STATEMENT)),
                    take(todo.len().div_ceil(ROWS_PER_STATEMENT)),
                    take(1),
                    take(1),
                )
            };

            let citizens = upserted
                .rows
                .iter()
                .map(citizen_from_row)
                .collect::<Result<Vec<_>>>()?;
            let index: HashMap<(Channel, &str), usize> = citizens
                .iter()
                .enumerate()
                .map(|(n, c)| ((c.channel, c.external_id.as_str()), n))
                .collect();
            let citizen_of = |i: usize| {
                index
                    .get(&(msgs[i].channel, msgs[i].sender.as_str()))
                    .copied()
                    .ok_or_else(|| corrupt("citizen of the batch", &msgs[i].provider_id))
            };
            let mut stored: HashMap<(Channel, &str), i64> = HashMap::new();
            for row in &inserted.rows {
                let channel: String = row.try_get("channel")?;
                let provider_id: String = row.try_get("provider_id")?;
                let Some(&i) = todo.iter().find(|&&i| {
                    msgs[i].channel.as_str() == channel && msgs[i].provider_id == provider_id
                }) else {
                    return Err(corrupt("inbox row of the batch", &provider_id));
                };
                stored.insert(
                    (msgs[i].channel, msgs[i].provider_id.as_str()),
                    row.try_get("id")?,
                );
            }
            if stored.len() < todo.len() {
                for &i in &todo {
                    if !stored.contains_key(&(msgs[i].channel, msgs[i].provider_id.as_str())) {
                        answers[i] = Some(BatchAdmission::Duplicate {
                            citizen_id: citizens[citizen_of(i)?].id,
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
                            citizen: citizen_of(i)?,
                            inbox_id,
                        });
                    }
                    (None, _) => {
                        answers[i] = Some(BatchAdmission::Duplicate {
                            citizen_id: citizens[citizen_of(i)?].id,
                        });
                    }
                }
            }
            let mut by_citizen: HashMap<i64, (Vec<InboxRow>, Option<String>)> = HashMap::new();
            for row in &waiting.rows {
                let entry = by_citizen
                    .entry(row.try_get("citizen_id")?)
                    .or_insert_with(|| (Vec::new(), None));
                if entry.0.is_empty() {
                    entry.1 = row.try_get("state")?;
                }
                entry.0.push(InboxRow {
                    id: row.try_get("id")?,
                    payload: row.try_get("payload")?,
                    received_at: row.try_get("received_at")?,
                });
            }
            let batch = Batch {
                tx: Some(tx),
                store: self.clone(),
                citizens,
                woke: woke.affected,
                waiting: by_citizen,
                wrote_outbox: woke.affected > 0,
                outbox: Vec::new(),
                processed: Vec::new(),
                conversations: Vec::new(),
            };
            let answers = answers
                .into_iter()
                .map(|a| a.ok_or_else(|| corrupt("batch admission", "unanswered message")))
                .collect::<Result<Vec<_>>>()?;
            return Ok((batch, answers));
        }
    }
}

/// A citizen of the batch: channel, sender, and the latest plausible time they wrote.
type CitizenKey<'m> = (Channel, &'m str, i64);

/// The batch's citizens, sorted so that concurrent batches lock the same rows in the same
/// order.
fn citizen_keys<'m>(msgs: &[&'m Inbound], todo: &[usize], now: i64) -> Vec<CitizenKey<'m>> {
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
    let mut keys: Vec<CitizenKey> = latest.into_iter().map(|((c, s), w)| (c, s, w)).collect();
    keys.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
    keys
}

/// `(channel = $a and external_id = $b) or …`: the batch's citizens, by their unique key.
fn citizens_filter<'a>(steps: &mut Steps<'a>, keys: &[CitizenKey<'a>]) -> String {
    keys.iter()
        .map(|(channel, sender, _)| {
            let c = steps.bind(Value::Text(channel.as_str()));
            let s = steps.bind(Value::Text(sender));
            format!("(channel = {c} and external_id = {s})")
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The upsert, returning every citizen of the batch (one statement per 500).
fn upsert_citizens<'a>(steps: &mut Steps<'a>, keys: &[CitizenKey<'a>], now: i64) {
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let at = steps.bind(Value::Int(now));
        let values = chunk
            .iter()
            .map(|(channel, sender, written)| {
                let c = steps.bind(Value::Text(channel.as_str()));
                let s = steps.bind(Value::Text(sender));
                let w = steps.bind(Value::Int(*written));
                format!("({c}, {s}, 1, 0, {at}, {w})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        steps.push(&format!(
            "insert into citizens (channel, external_id, pushes_enabled, unreachable, created_at, last_inbound_at) \
             values {values} on conflict (channel, external_id) do update set \
             last_inbound_at = case when coalesce(citizens.last_inbound_at, 0) > excluded.last_inbound_at \
             then citizens.last_inbound_at else excluded.last_inbound_at end, \
             unreachable = case when excluded.channel = 'whatsapp' then 0 else citizens.unreachable end \
             returning {CITIZEN_COLUMNS}"
        ));
        steps.end_statement();
    }
}

/// The messages not yet stored, returning the id of each one stored now; a provider id
/// stored before returns nothing.
fn insert_inbox<'a>(
    steps: &mut Steps<'a>,
    msgs: &[&'a Inbound],
    payloads: &'a [String],
    todo: &[usize],
    now: i64,
) {
    for chunk in todo.chunks(ROWS_PER_STATEMENT) {
        let at = steps.bind(Value::Int(now));
        let values = chunk
            .iter()
            .map(|&i| {
                let m = msgs[i];
                let c = steps.bind(Value::Text(m.channel.as_str()));
                let p = steps.bind(Value::Text(&m.provider_id));
                let s = steps.bind(Value::Text(&m.sender));
                let j = steps.bind(Value::Text(&payloads[i]));
                format!(
                    "({c}, {p}, (select id from citizens where channel = {c} and external_id = {s}), {j}, {at})"
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        steps.push(&format!(
            "insert into inbox (channel, provider_id, citizen_id, payload, received_at) values {values} \
             on conflict (channel, provider_id) do nothing returning id, channel, provider_id"
        ));
        steps.end_statement();
    }
}

/// The citizens wrote: their WhatsApp rows waiting for the window are due now (as
/// `whatsapp::wake_waiting` does for one).
fn wake_waiting<'a>(steps: &mut Steps<'a>, keys: &[CitizenKey<'a>], now: i64) {
    let recipients: Vec<&str> = keys
        .iter()
        .filter(|k| k.0 == Channel::Whatsapp)
        .map(|k| k.1)
        .collect();
    // A statement that matches nothing keeps the step's outcomes in their places.
    let recipients = if recipients.is_empty() {
        vec![""]
    } else {
        recipients
    };
    let at = steps.bind(Value::Int(now));
    let channel = steps.bind(Value::Text(Channel::Whatsapp.as_str()));
    let list = list(steps, &recipients, |r| Value::Text(*r));
    steps.push(&format!(
        "update outbox set next_attempt_at = {at} where channel = {channel} and recipient in ({list}) \
         and status = 'pending' and wa_wait_after_inbox is not null and next_attempt_at > {at}"
    ));
    steps.end_statement();
}

/// Every citizen's unprocessed messages in arrival order, each with the citizen's stored
/// conversation.
fn unprocessed_and_conversations<'a>(steps: &mut Steps<'a>, keys: &[CitizenKey<'a>]) {
    let citizens = citizens_filter(steps, keys);
    steps.push(&format!(
        "select i.citizen_id, i.id, i.payload, i.received_at, c.state from inbox i \
         left join conversations c on c.citizen_id = i.citizen_id \
         where i.citizen_id in (select id from citizens where {citizens}) \
         and i.processed_at is null order by i.id"
    ));
    steps.end_statement();
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

    /// Takes the transaction back from a turn (its writes stay in it); the turn's citizen, as
    /// its effects changed them, is returned.
    pub fn end_turn(&mut self, turn: Turn) -> Citizen {
        let (tx, citizen, wrote_outbox) = turn.into_parts();
        self.tx = Some(tx);
        self.wrote_outbox |= wrote_outbox;
        citizen
    }

    /// The citizen's unprocessed messages (in arrival order) and stored conversation, as
    /// admission read them; `None` when they have none.
    pub fn take_waiting(&mut self, citizen_id: i64) -> Option<(Vec<InboxRow>, Option<String>)> {
        self.waiting.remove(&citizen_id)
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

    /// Writes what the turns handed back and commits; the fleet's dispatchers are woken if
    /// anything went to the outbox.
    pub async fn commit(mut self, now: i64) -> Result<()> {
        let outbox = std::mem::take(&mut self.outbox);
        let processed = std::mem::take(&mut self.processed);
        let conversations = std::mem::take(&mut self.conversations);
        let wrote_outbox = self.wrote_outbox || !outbox.is_empty();
        let mut steps = Steps::new(self.store.backend);
        for chunk in outbox.chunks(ROWS_PER_STATEMENT) {
            let at = steps.bind(Value::Int(now));
            let values = chunk
                .iter()
                .map(|row| {
                    let citizen = steps.bind(Value::MaybeInt(row.citizen_id));
                    let channel = steps.bind(Value::Text(row.channel.as_str()));
                    let recipient = steps.bind(Value::Text(&row.recipient));
                    let kind = steps.bind(Value::Text(row.kind.as_str()));
                    let content = steps.bind(Value::Text(&row.content));
                    let lang = steps.bind(Value::MaybeText(row.lang.map(Lang::code)));
                    format!(
                        "({citizen}, {channel}, {recipient}, {kind}, {content}, {lang}, 'pending', 0, {at}, {at})"
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            steps.push(&format!(
                "insert into outbox (citizen_id, channel, recipient, kind, content, lang, status, attempts, \
                 next_attempt_at, created_at) values {values}"
            ));
            steps.end_statement();
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
                let at = steps.bind(Value::Int(now));
                let error = steps.bind(Value::MaybeText(note));
                let ids = list(&mut steps, chunk, |id| Value::Int(*id));
                steps.push(&format!(
                    "update inbox set processed_at = {at}, error = {error} where id in ({ids})"
                ));
                steps.end_statement();
            }
        }
        for chunk in conversations.chunks(ROWS_PER_STATEMENT) {
            let at = steps.bind(Value::Int(now));
            let values = chunk
                .iter()
                .map(|(citizen_id, state)| {
                    let c = steps.bind(Value::Int(*citizen_id));
                    let s = steps.bind(Value::Text(state));
                    format!("({c}, {s}, {at})")
                })
                .collect::<Vec<_>>()
                .join(", ");
            steps.push(&format!(
                "insert into conversations (citizen_id, state, updated_at) values {values} \
                 on conflict (citizen_id) do update set state = excluded.state, updated_at = excluded.updated_at"
            ));
            steps.end_statement();
        }
        let mut tx = self
            .tx
            .take()
            .ok_or(StoreError::Corrupt("a batch turn is still open".into()))?;
        steps.run(&mut tx).await?;
        tx.commit().await?;
        if wrote_outbox {
            self.store.wake_fleet();
        }
        Ok(())
    }
}

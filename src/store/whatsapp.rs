//! The WhatsApp channel's SQL: the 24-hour window and template state of outbox rows, delivery
//! statuses, and the media download queue (`migrations/*/0002_whatsapp.sql`).

use super::sql::{self, Row};
use flows::message::{Channel, MediaKind};
use webhook::{DeliveryStatus, StatusKind};

use super::multi_row::{padded_list, statement_text};
use super::{Backend, ROWS_PER_STATEMENT, Result, Store, Tx, placeholders};

/// What the WhatsApp sender needs to know about an outbox row before sending it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WhatsappSendState {
    /// The recipient citizen's last inbound message (Meta's timestamp, unix seconds).
    pub last_inbound_at: Option<i64>,
    /// Set when the window was found closed for this row: the citizen's latest inbox id then.
    /// Until a newer one arrives, the row goes out only as its template, or waits.
    pub wait_after_inbox: Option<i64>,
    /// The citizen's latest inbox id now.
    pub last_inbox_id: Option<i64>,
    /// Set once the row was turned into its status template.
    pub templated_at: Option<i64>,
    /// Request bodies of this row already accepted by Meta.
    pub parts_sent: u32,
}

/// What applying one delivery status did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusApplied {
    /// No WhatsApp outbox row has that wamid (or outbox id).
    Unknown,
    /// Recorded on the row (delivered/read times; a failure of a row not currently `sent`).
    Recorded { outbox_id: i64 },
    /// This failed status was applied before: nothing changed.
    Duplicate { outbox_id: i64 },
    /// A 131047 failure: the row is pending again, marked as outside the window, so the sender
    /// turns it into its template (once) or lets it wait for the citizen.
    Reengage { outbox_id: i64 },
    /// Any other failure: the row is a dead letter.
    Dead { outbox_id: i64 },
}

/// A media download claimed by one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaJob {
    pub media_id: String,
    pub kind: MediaKind,
    pub mime: Option<String>,
    /// Attempts before this one.
    pub attempts: u32,
    pub created_at: i64,
}

/// One row of the media queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    pub media_id: String,
    pub citizen_id: i64,
    pub kind: String,
    pub mime: Option<String>,
    /// `pending`, `downloading`, `done` or `failed`.
    pub status: String,
    /// The local file, once downloaded.
    pub path: Option<String>,
    pub bytes: Option<i64>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Photo => "photo",
        MediaKind::Document => "document",
        MediaKind::Voice => "voice",
        MediaKind::Video => "video",
        MediaKind::Sticker => "sticker",
    }
}

fn kind_of(s: &str) -> Option<MediaKind> {
    Some(match s {
        "photo" => MediaKind::Photo,
        "document" => MediaKind::Document,
        "voice" => MediaKind::Voice,
        "video" => MediaKind::Video,
        "sticker" => MediaKind::Sticker,
        _ => return None,
    })
}

/// The latest inbox id of an outbox row's recipient, as a SQL expression (0 when they never
/// wrote): what a "window closed" mark waits to see exceeded.
const LAST_INBOX_OF_RECIPIENT: &str = "coalesce((select max(i.id) from inbox i join citizens c \
     on c.id = i.citizen_id where c.channel = outbox.channel and c.external_id = outbox.recipient), 0)";

/// `n` citizens' WhatsApp rows waiting for the window that are not due yet ($1 now, $2 the
/// channel, $3… the recipients).
fn waiting(n: usize) -> String {
    format!(
        "channel = $2 and recipient in ({}) and status = 'pending' \
         and wa_wait_after_inbox is not null and next_attempt_at > $1",
        placeholders(3, n)
    )
}

/// The citizen wrote: their rows waiting for the window are due now. Returns how many.
pub(super) async fn wake_waiting(tx: &mut Tx, recipient: &str, now: i64) -> Result<u64> {
    wake_waiting_all(tx, std::slice::from_ref(&recipient), now).await
}

/// [`wake_waiting`] for several citizens at once.
pub(super) async fn wake_waiting_all(tx: &mut Tx, recipients: &[&str], now: i64) -> Result<u64> {
    let mut woke = 0;
    for chunk in recipients.chunks(ROWS_PER_STATEMENT) {
        let chunk = padded_list(chunk);
        // The same text on both backends.
        let sql = statement_text("wake waiting", Backend::Sqlite, chunk.len(), || {
            format!(
                "update outbox set next_attempt_at = $1 where {}",
                waiting(chunk.len())
            )
        });
        let mut q = sql::query(&sql).bind(now).bind(Channel::Whatsapp.as_str());
        for r in chunk {
            q = q.bind(r);
        }
        woke += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(woke)
}

/// The columns of [`WhatsappSendState`], from an outbox row `o` and its recipient citizen `c`.
const SEND_STATE: &str = "select o.id, o.wa_wait_after_inbox, o.wa_templated_at, o.wa_parts_sent, \
     c.last_inbound_at, (select max(i.id) from inbox i where i.citizen_id = c.id) as last_inbox_id \
     from outbox o left join citizens c on c.channel = o.channel and c.external_id = o.recipient";

fn send_state(r: &Row) -> Result<WhatsappSendState> {
    Ok(WhatsappSendState {
        last_inbound_at: r.try_get("last_inbound_at")?,
        wait_after_inbox: r.try_get("wa_wait_after_inbox")?,
        last_inbox_id: r.try_get("last_inbox_id")?,
        templated_at: r.try_get("wa_templated_at")?,
        parts_sent: r
            .try_get::<i64, _>("wa_parts_sent")?
            .clamp(0, u32::MAX as i64) as u32,
    })
}

impl Store {
    /// The window and template state of an outbox row (`None` when the row does not exist).
    pub async fn whatsapp_send_state(&self, outbox_id: i64) -> Result<Option<WhatsappSendState>> {
        let row = sql::query(&format!("{SEND_STATE} where o.id = $1"))
            .bind(outbox_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(send_state).transpose()
    }

    /// [`Store::whatsapp_send_state`] of several rows in one statement (per
    /// [`ROWS_PER_STATEMENT`] ids): the dispatcher's claimed batch, read before its sends start.
    /// Rows that do not exist are left out.
    pub async fn whatsapp_send_states(
        &self,
        outbox_ids: &[i64],
    ) -> Result<Vec<(i64, WhatsappSendState)>> {
        let mut states = Vec::with_capacity(outbox_ids.len());
        for ids in outbox_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "{SEND_STATE} where o.id in ({})",
                placeholders(1, ids.len())
            );
            let mut q = sql::query(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await? {
                states.push((r.try_get("id")?, send_state(&r)?));
            }
        }
        Ok(states)
    }

    /// Marks the row as outside the window until the citizen writes a message newer than
    /// `last_inbox_id`: the latest one the sender's decision saw (its [`WhatsappSendState`]),
    /// not the latest one now, so a message that arrived after that read still reopens the
    /// row (the second look after it makes the row due). A mark already there is kept.
    pub async fn whatsapp_close_window(
        &self,
        outbox_id: i64,
        last_inbox_id: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sql::query(
            "update outbox set wa_wait_after_inbox = coalesce(wa_wait_after_inbox, $1) where id = $2",
        )
        .bind(last_inbox_id.unwrap_or(0))
        .bind(outbox_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The citizen wrote since the window closed for this row: it may be sent as it is again.
    pub async fn whatsapp_reopen_window(&self, outbox_id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sql::query("update outbox set wa_wait_after_inbox = null where id = $1")
            .bind(outbox_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns the row into its template, once: the first time is kept.
    pub async fn whatsapp_mark_templated(&self, outbox_id: i64, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sql::query(
            "update outbox set wa_templated_at = coalesce(wa_templated_at, $1), wa_parts_sent = 0 where id = $2",
        )
        .bind(now)
        .bind(outbox_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that the first `parts` request bodies of the row were accepted.
    pub async fn whatsapp_set_parts_sent(&self, outbox_id: i64, parts: u32) -> Result<()> {
        let mut tx = self.write().await?;
        sql::query("update outbox set wa_parts_sent = $1 where id = $2")
            .bind(parts as i64)
            .bind(outbox_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A second look after citizens wrote (their messages' own transactions made waiting rows
    /// due and the citizens reachable, see [`Store::admit`]): rows that were `sending` then
    /// and have since been marked as outside the window become due now, and a send that
    /// failed meanwhile as "not a WhatsApp user" is overruled. One read for all of them (per
    /// [`ROWS_PER_STATEMENT`]), and a write only for the few that have something to
    /// change. Returns how many rows became due.
    pub async fn whatsapp_wake_waiting_all(&self, recipients: &[String], now: i64) -> Result<u64> {
        let mut woken = 0;
        for chunk in recipients.chunks(ROWS_PER_STATEMENT) {
            let list = placeholders(3, chunk.len());
            let sql = format!(
                "select external_id from citizens where channel = $2 and external_id in ({list}) \
                 and unreachable <> 0 union select recipient from outbox where {}",
                waiting(chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql)
                .bind(now)
                .bind(Channel::Whatsapp.as_str());
            for r in chunk {
                q = q.bind(r);
            }
            let due = q.fetch_all(&self.pool).await?;
            if due.is_empty() {
                continue;
            }
            let due: Vec<&str> = due.iter().map(String::as_str).collect();
            let mut tx = self.write().await?;
            let sql = format!(
                "update citizens set unreachable = 0 where channel = $1 and external_id in ({}) \
                 and unreachable <> 0",
                placeholders(2, due.len())
            );
            let mut q = sql::query(&sql).bind(Channel::Whatsapp.as_str());
            for r in &due {
                q = q.bind(*r);
            }
            q.execute(&mut *tx).await?;
            let n = wake_waiting_all(&mut tx, &due, now).await?;
            tx.commit().await?;
            // Per chunk rather than once at the end: a later chunk may fail.
            if n > 0 {
                self.wake_fleet();
            }
            woken += n;
        }
        Ok(woken)
    }

    /// [`Store::whatsapp_wake_waiting_all`] for one citizen.
    pub async fn whatsapp_wake_waiting(&self, recipient: &str, now: i64) -> Result<u64> {
        self.whatsapp_wake_waiting_all(&[recipient.to_owned()], now)
            .await
    }

    /// The citizen cannot be reached on WhatsApp (131026: not a WhatsApp user).
    pub async fn whatsapp_mark_unreachable(&self, recipient: &str) -> Result<()> {
        let mut tx = self.write().await?;
        sql::query("update citizens set unreachable = 1 where channel = $1 and external_id = $2")
            .bind(Channel::Whatsapp.as_str())
            .bind(recipient)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies one delivery status to its outbox row, found by wamid or else by the outbox id
    /// echoed in `biz_opaque_callback_data` (a long reply's earlier parts have their own
    /// wamids). Delivered and read times are kept from their first report (and read implies
    /// delivered, which Meta may skip). A failed status is applied once per wamid: 131047
    /// makes a `sent` row pending again, marked outside the window; any other failure makes
    /// it dead.
    pub async fn whatsapp_apply_status(
        &self,
        status: &DeliveryStatus,
        now: i64,
    ) -> Result<StatusApplied> {
        let at = if status.timestamp > 0 {
            status.timestamp
        } else {
            now
        };
        let mut tx = self.write().await?;
        // PostgreSQL: the row is locked until commit, so a status on another replica, or the
        // dispatcher's record of a send, cannot interleave with this one.
        let lock = self.backend.for_update();
        let sql = format!(
            "select id, status, wa_templated_at from outbox where channel = $1 and provider_id = $2 \
             order by id desc limit 1{lock}"
        );
        let mut row = sql::query(&sql)
            .bind(Channel::Whatsapp.as_str())
            .bind(&status.provider_id)
            .fetch_optional(&mut *tx)
            .await?;
        if row.is_none()
            && let Some(id) = status
                .biz_opaque_callback_data
                .as_deref()
                .and_then(|o| o.trim().parse::<i64>().ok())
        {
            let sql = format!(
                "select id, status, wa_templated_at from outbox where channel = $1 and id = $2 \
                 and provider_id is not null{lock}"
            );
            row = sql::query(&sql)
                .bind(Channel::Whatsapp.as_str())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(StatusApplied::Unknown);
        };
        let outbox_id: i64 = row.try_get("id")?;
        let row_status: String = row.try_get("status")?;
        let templated: Option<i64> = row.try_get("wa_templated_at")?;
        let applied = match status.status {
            StatusKind::Sent => StatusApplied::Recorded { outbox_id },
            StatusKind::Delivered => {
                sql::query(
                    "update outbox set delivered_at = coalesce(delivered_at, $1) where id = $2",
                )
                .bind(at)
                .bind(outbox_id)
                .execute(&mut *tx)
                .await?;
                StatusApplied::Recorded { outbox_id }
            }
            StatusKind::Read => {
                sql::query(
                    "update outbox set read_at = coalesce(read_at, $1), delivered_at = coalesce(delivered_at, $2) \
                     where id = $3",
                )
                .bind(at)
                .bind(at)
                .bind(outbox_id)
                .execute(&mut *tx)
                .await?;
                StatusApplied::Recorded { outbox_id }
            }
            StatusKind::Failed => {
                let (code, title) = status
                    .errors
                    .first()
                    .map(|(c, t)| (*c, t.chars().take(120).collect::<String>()))
                    .unwrap_or((0, String::new()));
                let first: Option<String> = sql::query_scalar(
                    "insert into whatsapp_failures (provider_id, outbox_id, code, title, at) values ($1, $2, $3, $4, $5) \
                     on conflict (provider_id) do nothing returning provider_id",
                )
                .bind(&status.provider_id)
                .bind(outbox_id)
                .bind(code)
                .bind(&title)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
                if first.is_none() {
                    tx.rollback().await?;
                    return Ok(StatusApplied::Duplicate { outbox_id });
                }
                let failure = format!("{code}: {title}");
                sql::query("update outbox set failed_at = $1, failure = $2 where id = $3")
                    .bind(at)
                    .bind(&failure)
                    .bind(outbox_id)
                    .execute(&mut *tx)
                    .await?;
                if row_status != "sent" {
                    StatusApplied::Recorded { outbox_id }
                } else if status.is_reengagement_failure() && templated.is_none() {
                    let sql = format!(
                        "update outbox set status = 'pending', next_attempt_at = $1, wa_parts_sent = 0, \
                         wa_wait_after_inbox = {LAST_INBOX_OF_RECIPIENT}, last_error = $2 where id = $3"
                    );
                    sql::query(&sql)
                        .bind(now)
                        .bind(format!(
                            "delivery failed ({failure}): outside the 24-hour window"
                        ))
                        .bind(outbox_id)
                        .execute(&mut *tx)
                        .await?;
                    super::wakeup::wake_dispatchers(&mut tx, self.backend).await?;
                    StatusApplied::Reengage { outbox_id }
                } else {
                    sql::query("update outbox set status = 'dead', last_error = $1 where id = $2")
                        .bind(format!("delivery failed: {failure}"))
                        .bind(outbox_id)
                        .execute(&mut *tx)
                        .await?;
                    StatusApplied::Dead { outbox_id }
                }
            }
        };
        tx.commit().await?;
        Ok(applied)
    }

    // ---- media -------------------------------------------------------------------------

    /// Queues a media download (a redelivered message queues nothing new). Returns whether it
    /// was new.
    pub async fn whatsapp_media_register(
        &self,
        media_id: &str,
        citizen_id: i64,
        kind: MediaKind,
        mime: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let n = sql::query(
            "insert into whatsapp_media (media_id, citizen_id, kind, mime, status, attempts, next_attempt_at, \
             created_at, updated_at) values ($1, $2, $3, $4, 'pending', 0, $5, $6, $7) on conflict (media_id) do nothing",
        )
        .bind(media_id)
        .bind(citizen_id)
        .bind(kind_name(kind))
        .bind(mime)
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Claims due downloads (`media_id` only that one), marking them `downloading`. Claims
    /// older than `stale_before` (a crashed worker's) are taken back first.
    pub async fn whatsapp_media_claim(
        &self,
        media_id: Option<&str>,
        now: i64,
        stale_before: i64,
        limit: u32,
    ) -> Result<Vec<MediaJob>> {
        let mut tx = self.write().await?;
        sql::query(
            "update whatsapp_media set status = 'pending' where status = 'downloading' and updated_at < $1",
        )
        .bind(stale_before)
        .execute(&mut *tx)
        .await?;
        let filter = if media_id.is_some() {
            " and media_id = $4"
        } else {
            ""
        };
        let sql = format!(
            "update whatsapp_media set status = 'downloading', updated_at = $1 where media_id in \
             (select media_id from whatsapp_media where status = 'pending' and next_attempt_at <= $2{filter} \
             order by next_attempt_at limit $3{}) returning media_id, kind, mime, attempts, created_at",
            self.backend.skip_locked()
        );
        let mut q = sql::query(&sql).bind(now).bind(now).bind(i64::from(limit));
        if let Some(id) = media_id {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(MediaJob {
                    media_id: r.try_get("media_id")?,
                    kind: kind_of(&kind).ok_or_else(|| super::corrupt("media kind", &kind))?,
                    mime: r.try_get("mime")?,
                    attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// A download finished: the local copy is at `path`. `false` when the row is gone (the
    /// citizen deleted their data, or retention removed it, during the download): the file
    /// is then the caller's to remove.
    pub async fn whatsapp_media_done(
        &self,
        media_id: &str,
        path: &str,
        bytes: u64,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let updated = sql::query(
            "update whatsapp_media set status = 'done', path = $1, bytes = $2, attempts = attempts + 1, \
             last_error = null, updated_at = $3 where media_id = $4",
        )
        .bind(path)
        .bind(bytes.min(i64::MAX as u64) as i64)
        .bind(now)
        .bind(media_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(updated > 0)
    }

    /// A download failed: try again at `retry_at`, or (`None`) give up.
    pub async fn whatsapp_media_failed(
        &self,
        media_id: &str,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        let (status, next) = match retry_at {
            Some(at) => ("pending", at),
            None => ("failed", now),
        };
        let mut tx = self.write().await?;
        sql::query(
            "update whatsapp_media set status = $1, next_attempt_at = $2, attempts = attempts + 1, last_error = $3, \
             updated_at = $4 where media_id = $5",
        )
        .bind(status)
        .bind(next)
        .bind(error)
        .bind(now)
        .bind(media_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One media id's download record (the officer API serves `path`).
    pub async fn whatsapp_media(&self, media_id: &str) -> Result<Option<MediaRecord>> {
        let row = sql::query(
            "select media_id, citizen_id, kind, mime, status, path, bytes, attempts, last_error \
             from whatsapp_media where media_id = $1",
        )
        .bind(media_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(MediaRecord {
                media_id: r.try_get("media_id")?,
                citizen_id: r.try_get("citizen_id")?,
                kind: r.try_get("kind")?,
                mime: r.try_get("mime")?,
                status: r.try_get("status")?,
                path: r.try_get("path")?,
                bytes: r.try_get("bytes")?,
                attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
                last_error: r.try_get("last_error")?,
            })
        })
        .transpose()
    }
}

//! What Seva forgets, and when (spec §6 "Private", "Accountable"): drafts abandoned for 24
//! hours, raw payloads after `SEVA_PAYLOAD_RETENTION_DAYS`, the personal data of reports closed
//! or returned long ago (`seva report purge`). Every statement is conditional on what it
//! removes, so replicas running the same job at once do the work once and a second run finds
//! nothing left.

use super::sql;

use super::{Result, Store, Tx};

/// A WhatsApp media row that was deleted: its downloaded file (if any) is the caller's to
/// remove from `SEVA_MEDIA_DIR`, after the database no longer points at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFile {
    pub media_id: String,
    /// Where the download was written, when it finished.
    pub path: Option<String>,
}

/// What one payload retention round blanked or deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadsPurged {
    /// Inbox rows whose payload was blanked (their provider ids stay, for deduplication).
    pub inbox: u64,
    /// Sent or dead outbox rows whose content was blanked.
    pub outbox: u64,
    /// Media rows no report points at any more.
    pub media: Vec<MediaFile>,
}

/// What `seva report purge` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportsPurged {
    pub reports: u64,
    pub media: Vec<MediaFile>,
}

/// Reports are purged this many per transaction, so a first purge of years of reports does
/// not hold one long transaction.
const PURGE_BATCH: i64 = 200;

/// Deletes the media rows matching `filter` (with `$1`, `$2`, … bound to `binds`) and returns
/// them.
pub(super) async fn delete_media_returning(
    tx: &mut Tx,
    filter: &str,
    binds: &[i64],
) -> Result<Vec<MediaFile>> {
    let sql = format!("delete from whatsapp_media where {filter} returning media_id, path");
    let mut q = sql::query(&sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| {
            Ok(MediaFile {
                media_id: r.try_get("media_id")?,
                path: r.try_get("path")?,
            })
        })
        .collect()
}

impl Store {
    /// Citizens whose stored conversation holds a draft and has not changed since
    /// `idle_since`, oldest first: candidates for [`crate::runtime::Runtime::purge_idle_drafts`],
    /// which decides under the citizen's lock.
    pub async fn idle_drafts(&self, idle_since: i64, limit: u32) -> Result<Vec<i64>> {
        sql::query_scalar(
            "select citizen_id from conversations where updated_at < $1 and state like '%\"draft\":%' \
             order by updated_at limit $2",
        )
        .bind(idle_since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
    }

    /// Blanks what citizens wrote and what Seva sent them once it is no longer needed: the
    /// payloads of inbox rows processed before `handled_before` (the row and its provider id
    /// stay, so a late redelivery is still a duplicate), the content of outbox rows sent or
    /// dead and created before it, and WhatsApp media no report points at, received before
    /// `media_before`. Pending and in-flight rows are never touched.
    pub async fn purge_payloads(
        &self,
        handled_before: i64,
        media_before: i64,
    ) -> Result<PayloadsPurged> {
        let mut tx = self.write().await?;
        // Rows a citizen's turn holds ("delete my data" blanks them too) are skipped, not
        // waited for: the next round gets them, and no lock order can deadlock the two.
        let skip = self.backend.skip_locked();
        let inbox = sql::query(&format!(
            "update inbox set payload = '{{}}' where id in (select id from inbox where processed_at \
             is not null and processed_at < $1 and payload <> '{{}}'{skip})"
        ))
        .bind(handled_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outbox = sql::query(&format!(
            "update outbox set content = 'null' where id in (select id from outbox where status in \
             ('sent', 'dead') and created_at < $1 and content <> 'null'{skip})"
        ))
        .bind(handled_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let media = delete_media_returning(
            &mut tx,
            "created_at < $1 and status <> 'downloading' and not exists \
             (select 1 from attachments a where a.file_id = whatsapp_media.media_id)",
            &[media_before],
        )
        .await?;
        tx.commit().await?;
        Ok(PayloadsPurged {
            inbox,
            outbox,
            media,
        })
    }

    /// Removes the personal data of reports closed or returned before `closed_before` (their
    /// last change): description, IMEI or document tail, place, name, phone, pseudonym, the
    /// link to the citizen, attachments and their media rows, and the notes of their history.
    /// What stays is anonymous: kind, category, district, station, status, dates, FIR number
    /// and the history's statuses. Idempotent: purged reports are marked and skipped.
    pub async fn purge_reports(&self, closed_before: i64, now: i64) -> Result<ReportsPurged> {
        let mut done = ReportsPurged::default();
        loop {
            let mut tx = self.write().await?;
            let sql = format!(
                "select id from reports where personal_data_purged_at is null \
                 and status in ('closed', 'returned') and updated_at < $1 order by id limit $2{}",
                self.backend.for_update()
            );
            let ids: Vec<i64> = sql::query_scalar(&sql)
                .bind(closed_before)
                .bind(PURGE_BATCH)
                .fetch_all(&mut *tx)
                .await?;
            for id in &ids {
                purge_report(&mut tx, *id, now, &mut done.media).await?;
            }
            tx.commit().await?;
            done.reports += ids.len() as u64;
            if (ids.len() as i64) < PURGE_BATCH {
                return Ok(done);
            }
        }
    }
}

async fn purge_report(tx: &mut Tx, id: i64, now: i64, media: &mut Vec<MediaFile>) -> Result<()> {
    // A media file another (unpurged) report still points at stays.
    media.extend(
        delete_media_returning(
            tx,
            "media_id in (select file_id from attachments where report_id = $1) and not exists \
             (select 1 from attachments a where a.file_id = whatsapp_media.media_id and a.report_id <> $2)",
            &[id, id],
        )
        .await?,
    );
    for sql in [
        "delete from attachments where report_id = $1",
        "update report_history set note = null, internal_note = null where report_id = $1",
    ] {
        sql::query(sql).bind(id).execute(&mut **tx).await?;
    }
    sql::query(
        "update reports set description = null, identifier = null, place = null, name = null, \
         phone = null, pseudonym = null, citizen_id = null, personal_data_purged_at = $1 where id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

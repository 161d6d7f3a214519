//! Transaction 2: one citizen's turn. Every method acts for [`Turn::citizen`] only, so a lookup
//! can never see another citizen's report.

use super::sql::{self, Row};
use flows::Lang;
use flows::effect::NewReport;
use flows::reference::{Reference, ReportKind};

use super::{
    Backend, CITIZEN_COLUMNS, Citizen, InboxPayload, InboxRow, NewOutbox, Result, Store,
    StoreError, Tx, citizen_from_row, corrupt, insert_outbox,
};

/// An open write transaction holding one citizen's lock. Dropped without [`Turn::commit`], it
/// rolls back.
pub struct Turn {
    tx: Tx,
    citizen: Citizen,
    backend: Backend,
    /// For waking the fleet's dispatchers after the commit.
    store: Store,
    /// Whether this turn wrote outbox rows (the fleet's dispatchers are woken at commit).
    wrote_outbox: bool,
}

/// What filing a report did.
#[derive(Debug, Clone, PartialEq)]
pub enum Filing {
    /// Filed now (`new`), or earlier under the same draft id (then with that first reference).
    Filed {
        reference: Reference,
        station_id: Option<String>,
        new: bool,
    },
    /// Another report already has this reference: draw a new one and file again.
    ReferenceTaken,
}

/// A report as its citizen may see it, with raw timestamps (the runtime localizes them).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub reference: Reference,
    pub kind: ReportKind,
    pub status: String,
    pub station_id: Option<String>,
    pub fir_number: Option<String>,
    pub updated_at: i64,
    /// Oldest first: (status, unix seconds).
    pub history: Vec<(String, i64)>,
}

/// A serde enum's wire name (`with_me`, `photo`), for text columns.
fn wire_name<T: serde::Serialize>(value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        other => Err(StoreError::Corrupt(format!("not a plain enum: {other:?}"))),
    }
}

const REPORT_COLUMNS: &str = "id, reference, kind, status, station_id, fir_number, updated_at";

impl Turn {
    pub(super) fn new(tx: Tx, citizen: Citizen, store: &Store) -> Turn {
        Turn {
            tx,
            citizen,
            backend: store.backend,
            store: store.clone(),
            wrote_outbox: false,
        }
    }

    /// The transaction back (for the next citizen of a [`super::Batch`]), and whether this
    /// turn wrote outbox rows.
    pub(super) fn into_parts(self) -> (Tx, bool) {
        (self.tx, self.wrote_outbox)
    }

    /// The citizen as of the lock, with this turn's own changes applied.
    pub fn citizen(&self) -> &Citizen {
        &self.citizen
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        if self.wrote_outbox {
            self.store.wake_fleet();
        }
        Ok(())
    }

    /// The fleet's dispatchers are woken at commit.
    pub(super) fn wrote_outbox(&mut self) {
        self.wrote_outbox = true;
    }

    /// Marks the start of one message's work, so a failure can undo just that message.
    pub async fn savepoint(&mut self) -> Result<()> {
        sql::query("savepoint message")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn release_savepoint(&mut self) -> Result<()> {
        sql::query("release savepoint message")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Undoes everything since [`Turn::savepoint`] (including changes to [`Turn::citizen`])
    /// and ends the savepoint.
    pub async fn rollback_to_savepoint(&mut self) -> Result<()> {
        sql::query("rollback to savepoint message")
            .execute(&mut *self.tx)
            .await?;
        sql::query("release savepoint message")
            .execute(&mut *self.tx)
            .await?;
        let sql = format!("select {CITIZEN_COLUMNS} from citizens where id = $1");
        let row = sql::query(&sql)
            .bind(self.citizen.id)
            .fetch_one(&mut *self.tx)
            .await?;
        self.citizen = citizen_from_row(&row)?;
        Ok(())
    }

    /// The citizen's unprocessed messages in arrival order and, when there are any, the stored
    /// conversation JSON: one round trip for what every turn reads first.
    pub async fn unprocessed_and_conversation(
        &mut self,
    ) -> Result<(Vec<InboxRow>, Option<String>)> {
        let rows = sql::query(
            "select i.id, i.payload, i.received_at, c.state from inbox i \
             left join conversations c on c.citizen_id = i.citizen_id \
             where i.citizen_id = $1 and i.processed_at is null order by i.id",
        )
        .bind(self.citizen.id)
        .fetch_all(&mut *self.tx)
        .await?;
        let state = match rows.first() {
            Some(r) => r.try_get("state")?,
            None => None,
        };
        let rows = rows
            .iter()
            .map(|r| {
                Ok(InboxRow {
                    id: r.try_get("id")?,
                    payload: InboxPayload::Stored(r.try_get("payload")?),
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok((rows, state))
    }

    /// Whether the citizen has messages waiting for a turn.
    pub async fn has_unprocessed(&mut self) -> Result<bool> {
        let row = sql::query(
            "select id from inbox where citizen_id = $1 and processed_at is null limit 1",
        )
        .bind(self.citizen.id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.is_some())
    }

    /// `error` notes why a message could not be handled (it is not retried).
    pub async fn mark_processed(
        &mut self,
        inbox_id: i64,
        now: i64,
        error: Option<&str>,
    ) -> Result<()> {
        sql::query(
            "update inbox set processed_at = $1, error = $2 where id = $3 and citizen_id = $4",
        )
        .bind(now)
        .bind(error)
        .bind(inbox_id)
        .bind(self.citizen.id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The stored conversation JSON, if any.
    pub async fn conversation(&mut self) -> Result<Option<String>> {
        sql::query_scalar("select state from conversations where citizen_id = $1")
            .bind(self.citizen.id)
            .fetch_optional(&mut *self.tx)
            .await
    }

    pub async fn save_conversation(&mut self, state: &str, now: i64) -> Result<()> {
        sql::query(
            "insert into conversations (citizen_id, state, updated_at) values ($1, $2, $3) \
             on conflict (citizen_id) do update set state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(self.citizen.id)
        .bind(state)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores the citizen's language (a statement only when it changes).
    pub async fn set_lang(&mut self, lang: Lang) -> Result<()> {
        if self.citizen.lang == Some(lang) {
            return Ok(());
        }
        sql::query("update citizens set lang = $1 where id = $2")
            .bind(lang.code())
            .bind(self.citizen.id)
            .execute(&mut *self.tx)
            .await?;
        self.citizen.lang = Some(lang);
        Ok(())
    }

    /// Stores the citizen's phone (a statement only when it changes).
    pub async fn set_phone(&mut self, phone: &str) -> Result<()> {
        if self.citizen.phone.as_deref() == Some(phone) {
            return Ok(());
        }
        sql::query("update citizens set phone = $1 where id = $2")
            .bind(phone)
            .bind(self.citizen.id)
            .execute(&mut *self.tx)
            .await?;
        self.citizen.phone = Some(phone.to_owned());
        Ok(())
    }

    pub async fn set_pushes(&mut self, enabled: bool) -> Result<()> {
        sql::query("update citizens set pushes_enabled = $1 where id = $2")
            .bind(i64::from(enabled))
            .bind(self.citizen.id)
            .execute(&mut *self.tx)
            .await?;
        self.citizen.pushes_enabled = enabled;
        Ok(())
    }

    /// Files a report for this citizen with its first history row and attachments, and (in
    /// this same transaction) the station's alert and the `report.created` event. Idempotent
    /// on `draft_id`: a draft filed before answers with its first reference.
    pub async fn file_report(
        &mut self,
        report: &NewReport,
        now: i64,
        notices: super::Notices<'_>,
    ) -> Result<Filing> {
        self.file_report_as(report, None, now, notices).await
    }

    /// [`Turn::file_report`], for an anonymous tip with the `pseudonym` officers see instead
    /// of the citizen's name and number (neither is stored for a tip).
    pub async fn file_report_as(
        &mut self,
        report: &NewReport,
        pseudonym: Option<&str>,
        now: i64,
        notices: super::Notices<'_>,
    ) -> Result<Filing> {
        let place = report
            .place
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let custody = report.custody.as_ref().map(wire_name).transpose()?;
        let status = crate::lifecycle::initial_status(report.kind);
        // `on conflict do nothing` rather than catching the error: PostgreSQL aborts the whole
        // transaction on a failed insert. Both unique keys, the reference and the draft id,
        // end here; which one it was is looked up only then, so a first filing (the usual
        // case) is one statement. It returns the whole row: the station's alert, the event and
        // the lost and found match are built from it without reading it back.
        let sql = format!(
            "insert into reports (reference, draft_id, kind, citizen_id, category, description, identifier, \
             occurred_on, place, district_id, station_id, name, phone, custody, lang, status, created_at, updated_at, \
             anonymous, pseudonym) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
             on conflict do nothing returning {}",
            super::reports::REPORT_COLUMNS
        );
        let inserted = sql::query(&sql)
            .bind(report.reference.to_string())
            .bind(&report.draft_id)
            .bind(report.kind.as_str())
            .bind(self.citizen.id)
            .bind(&report.category)
            .bind(&report.description)
            .bind(&report.identifier)
            .bind(report.occurred_on.map(|d| d.format("%Y-%m-%d").to_string()))
            .bind(place)
            .bind(&report.district_id)
            .bind(&report.station_id)
            .bind(report.name.as_deref().filter(|_| !report.anonymous))
            .bind(report.phone.as_deref().filter(|_| !report.anonymous))
            .bind(custody)
            .bind(report.lang.code())
            .bind(status)
            .bind(now)
            .bind(now)
            .bind(i64::from(report.anonymous))
            .bind(pseudonym.filter(|_| report.anonymous))
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(inserted) = inserted else {
            return self.filed_before(&report.draft_id).await;
        };
        let filed = super::reports::report_from_row(&inserted)?;
        let id = filed.id;

        sql::query(
            "insert into report_history (report_id, status, actor, at) values ($1, $2, 'citizen', $3)",
        )
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        for (n, a) in report.attachments.iter().enumerate() {
            sql::query(
                "insert into attachments (report_id, n, kind, file_id, mime, caption) values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(n as i64 + 1)
            .bind(wire_name(&a.kind)?)
            .bind(&a.file_id)
            .bind(&a.mime)
            .bind(&a.caption)
            .execute(&mut *self.tx)
            .await?;
        }
        super::reports::report_filed(&mut self.tx, self.backend, &filed, notices, now).await?;
        self.wrote_outbox = true;
        Ok(Filing::Filed {
            reference: report.reference,
            station_id: report.station_id.clone(),
            new: true,
        })
    }

    /// Why a filing inserted nothing: the draft was filed before (answered with its first
    /// reference), or else another report holds the reference just drawn.
    async fn filed_before(&mut self, draft_id: &str) -> Result<Filing> {
        let existing = sql::query("select reference, station_id from reports where draft_id = $1")
            .bind(draft_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = existing else {
            return Ok(Filing::ReferenceTaken);
        };
        let reference: String = row.try_get("reference")?;
        Ok(Filing::Filed {
            reference: Reference::parse(&reference)
                .map_err(|_| corrupt("reference", &reference))?,
            station_id: row.try_get("station_id")?,
            new: false,
        })
    }

    /// This citizen's report with that reference; someone else's is `None`, like a missing one.
    pub async fn own_report(&mut self, reference: &Reference) -> Result<Option<StoredReport>> {
        let sql = format!(
            "select {REPORT_COLUMNS} from reports where reference = $1 and citizen_id = $2"
        );
        let row = sql::query(&sql)
            .bind(reference.to_string())
            .bind(self.citizen.id)
            .fetch_optional(&mut *self.tx)
            .await?;
        match row {
            Some(row) => Ok(Some(self.report_with_history(&row).await?)),
            None => Ok(None),
        }
    }

    /// This citizen's latest reports, newest first.
    pub async fn own_reports(&mut self, limit: u32) -> Result<Vec<StoredReport>> {
        let sql = format!(
            "select {REPORT_COLUMNS} from reports where citizen_id = $1 order by created_at desc, id desc limit $2"
        );
        let rows = sql::query(&sql)
            .bind(self.citizen.id)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.report_with_history(row).await?);
        }
        Ok(out)
    }

    /// When this citizen filed their reports after `since` (unix seconds), newest first, at
    /// most `limit` of them (`crate::limits` counts them against the daily limit).
    pub async fn filed_since(&mut self, since: i64, limit: u32) -> Result<Vec<i64>> {
        let times = sql::query_scalar(
            "select created_at from reports where citizen_id = $1 and created_at > $2 \
             order by created_at desc limit $3",
        )
        .bind(self.citizen.id)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(times)
    }

    async fn report_with_history(&mut self, row: &Row) -> Result<StoredReport> {
        let id: i64 = row.try_get("id")?;
        let reference: String = row.try_get("reference")?;
        let kind: String = row.try_get("kind")?;
        let history =
            sql::query(
                "select status, at from report_history where report_id = $1 and action = 'status' order by id",
            )
                .bind(id)
                .fetch_all(&mut *self.tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("at")?)))
                .collect::<Result<Vec<(String, i64)>>>()?;
        Ok(StoredReport {
            reference: Reference::parse(&reference)
                .map_err(|_| corrupt("reference", &reference))?,
            kind: ReportKind::parse(&kind).ok_or_else(|| corrupt("report kind", &kind))?,
            status: row.try_get("status")?,
            station_id: row.try_get("station_id")?,
            fir_number: row.try_get("fir_number")?,
            updated_at: row.try_get("updated_at")?,
            history,
        })
    }

    /// "Delete my data": blanks the personal fields of the citizen's reports and unlinks them
    /// (they stay as anonymous statistics), drops attachments and the WhatsApp media the
    /// citizen sent (the returned files are the caller's to remove from disk), the
    /// conversation and the phone, and blanks the text of messages already handled.
    /// Unprocessed messages are left for their own turn; the language stays so the citizen is
    /// still answered in it.
    pub async fn delete_my_data(&mut self) -> Result<Vec<super::MediaFile>> {
        let id = self.citizen.id;
        let media = super::retention::delete_media_returning(
            &mut self.tx,
            "citizen_id = $1 or media_id in (select a.file_id from attachments a \
             join reports r on r.id = a.report_id where r.citizen_id = $2)",
            &[id, id],
        )
        .await?;
        let statements = [
            "delete from attachments where report_id in (select id from reports where citizen_id = $1)",
            "update reports set name = null, phone = null, description = null, identifier = null, place = null, \
             pseudonym = null, citizen_id = null where citizen_id = $1",
            "delete from conversations where citizen_id = $1",
            "update citizens set phone = null where id = $1",
            "update inbox set payload = '{}' where citizen_id = $1 and processed_at is not null",
            "update outbox set content = 'null' where citizen_id = $1 and status in ('sent', 'dead')",
        ];
        for sql in statements {
            sql::query(sql).bind(id).execute(&mut *self.tx).await?;
        }
        self.citizen.phone = None;
        Ok(media)
    }

    /// Writes an outbox row in this transaction.
    pub async fn enqueue(&mut self, row: &NewOutbox, now: i64) -> Result<i64> {
        self.wrote_outbox = true;
        insert_outbox(&mut self.tx, row, now).await
    }
}

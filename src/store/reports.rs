//! Reports as officers see them: scoped queries, status changes and transfers (each one
//! transaction with its history row, audit row and notifications), officer tokens and the
//! audit log.
//!
//! Every change writes, in the same transaction as the change itself, the citizen's push, the
//! station alert and the back-office event as outbox rows. Each of those rows carries a
//! `dedupe_key` derived from the history row that caused it (unique in the database), so one
//! change yields at most one notification per recipient however often anything is retried.

use flows::Lang;
use flows::delivery::OutboxContent;
use flows::message::Channel;
use flows::reference::{Reference, ReportKind};
use flows::stations::Directory;

use super::sql::{self, Row};

use super::{
    Backend, Citizen, OutboxKind, Result, Store, StoreError, Tx, citizen_from_row, corrupt,
    numbered,
};
use crate::lifecycle::{self, Change, ChangeError};
use crate::officer::notices;

/// The outbox recipient of back-office events (the URL is the sender's configuration).
pub const EVENTS_RECIPIENT: &str = "backoffice";

/// What writing a report's notifications needs to know besides the database: the station
/// directory (alert chat ids and languages, station names) and whether back-office events are
/// configured (`SEVA_EVENTS_URL`).
#[derive(Debug, Clone, Copy)]
pub struct Notices<'a> {
    pub stations: &'a Directory,
    pub events: bool,
}

/// The part of the state an officer token may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every report.
    State,
    /// Reports of one district (`district_id`).
    District(String),
    /// Reports of one police station or control room (`station_id`).
    Station(String),
}

impl Scope {
    /// Reads `state`, `district:<id>` or `station:<id>`.
    pub fn parse(s: &str) -> Option<Scope> {
        let s = s.trim();
        if s == "state" {
            return Some(Scope::State);
        }
        let (what, id) = s.split_once(':')?;
        let id = id.trim();
        if id.is_empty() {
            return None;
        }
        match what.trim() {
            "district" => Some(Scope::District(id.to_owned())),
            "station" => Some(Scope::Station(id.to_owned())),
            _ => None,
        }
    }

    /// Whether a report of this district and station is inside the scope.
    pub fn covers(&self, district_id: Option<&str>, station_id: Option<&str>) -> bool {
        match self {
            Scope::State => true,
            Scope::District(d) => district_id == Some(d.as_str()),
            Scope::Station(s) => station_id == Some(s.as_str()),
        }
    }

    /// A SQL condition on `reports` and the value it binds, if any (`?` is numbered later).
    fn sql(&self) -> (&'static str, Option<&str>) {
        match self {
            Scope::State => ("1 = 1", None),
            Scope::District(d) => ("district_id = ?", Some(d)),
            Scope::Station(s) => ("station_id = ?", Some(s)),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::State => f.write_str("state"),
            Scope::District(d) => write!(f, "district:{d}"),
            Scope::Station(s) => write!(f, "station:{s}"),
        }
    }
}

/// An officer token's owner, as the API sees it after authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct Officer {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
}

/// Who acts on a report: an officer through the API, or the shell (`cli`).
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub name: String,
    pub officer_id: Option<i64>,
    pub scope: Scope,
}

impl Actor {
    /// The shell: `seva report …` runs with the whole state in scope.
    pub fn cli() -> Actor {
        Actor {
            name: "cli".to_owned(),
            officer_id: None,
            scope: Scope::State,
        }
    }
}

impl From<&Officer> for Actor {
    fn from(o: &Officer) -> Actor {
        Actor {
            name: o.name.clone(),
            officer_id: Some(o.id),
            scope: o.scope.clone(),
        }
    }
}

/// A report with everything an officer may see of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRecord {
    pub id: i64,
    pub reference: Reference,
    pub kind: ReportKind,
    /// `None` once the citizen deleted their data.
    pub citizen_id: Option<i64>,
    pub category: String,
    pub description: Option<String>,
    pub identifier: Option<String>,
    /// `YYYY-MM-DD`.
    pub occurred_on: Option<String>,
    /// JSON of a `flows::effect::Place`.
    pub place: Option<String>,
    pub district_id: Option<String>,
    pub station_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub custody: Option<String>,
    pub lang: Lang,
    pub status: String,
    pub fir_number: Option<String>,
    pub close_reason: Option<String>,
    pub found_ref: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Filed as an anonymous tip: no name or phone was ever stored.
    pub anonymous: bool,
    /// What officers see of an anonymous tipster; `None` once purged or deleted.
    pub pseudonym: Option<String>,
    /// When `seva report purge` removed the personal fields.
    pub personal_data_purged_at: Option<i64>,
}

/// One row of a report's history: a status change or a transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub id: i64,
    /// `status` or `transfer`.
    pub action: String,
    /// The status after the change (a transfer keeps it).
    pub status: String,
    pub note: Option<String>,
    pub internal_note: Option<String>,
    pub actor: String,
    pub at: i64,
    pub fir_number: Option<String>,
    pub reason: Option<String>,
    pub found_ref: Option<String>,
    pub from_station: Option<String>,
    pub to_station: Option<String>,
}

/// A file the citizen sent with a report.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRecord {
    pub n: i64,
    pub kind: String,
    /// The provider's file id, or the stored file's path once downloaded.
    pub file_id: String,
    pub mime: Option<String>,
    pub caption: Option<String>,
}

/// A report with its history (oldest first), attachments and possible lost ↔ found matches.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDetail {
    pub report: ReportRecord,
    pub history: Vec<HistoryEntry>,
    pub attachments: Vec<AttachmentRecord>,
    /// References of the reports matched with this one (found ones for a lost item, lost
    /// ones for a found item), oldest match first.
    pub matches: Vec<String>,
}

/// Which reports a listing wants; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportFilter {
    pub status: Option<String>,
    pub station_id: Option<String>,
    pub district_id: Option<String>,
    pub kind: Option<ReportKind>,
    /// Filed at or after (unix seconds).
    pub from: Option<i64>,
    /// Filed before (unix seconds).
    pub to: Option<i64>,
    /// Only reports with a smaller id (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// What a status change or transfer did.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub report: ReportRecord,
    /// The history row written.
    pub history: HistoryEntry,
    /// The status before the change.
    pub from_status: String,
    /// Whether a push to the citizen was enqueued (not when they stopped pushes or deleted
    /// their data).
    pub pushed: bool,
    /// Whether a station alert was enqueued.
    pub alerted: bool,
    /// Whether a back-office event was enqueued.
    pub event: bool,
}

/// Why a status change or transfer was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeFailure {
    /// Missing, or outside the actor's scope: the two are never told apart.
    #[error("report not found")]
    NotFound,
    #[error(transparent)]
    Rule(#[from] ChangeError),
    #[error("`{field}` does not apply to a change to {status}")]
    UnexpectedField { field: &'static str, status: String },
    #[error("found_ref {0:?} is not the reference of a found-item report")]
    BadFoundRef(String),
    #[error("the report is closed; a closed report cannot be transferred")]
    Closed,
    #[error("unknown station {0:?}")]
    UnknownStation(String),
    #[error("the report is already at station {0}")]
    SameStation(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ChangeFailure {
    fn from(e: sqlx::Error) -> Self {
        ChangeFailure::Store(e.into())
    }
}

/// What the audit log keeps of one officer read or change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub officer_id: Option<i64>,
    pub action: String,
    pub reference: Option<String>,
    /// JSON.
    pub detail: Option<String>,
    pub at: i64,
}

pub(super) const REPORT_COLUMNS: &str = "id, reference, kind, citizen_id, category, description, identifier, \
     occurred_on, place, district_id, station_id, name, phone, custody, lang, status, fir_number, \
     close_reason, found_ref, created_at, updated_at, anonymous, pseudonym, personal_data_purged_at";

const HISTORY_COLUMNS: &str = "id, action, status, note, internal_note, actor, at, fir_number, \
     reason, found_ref, from_station, to_station";

pub(super) fn report_from_row(r: &Row) -> Result<ReportRecord> {
    let reference: String = r.try_get("reference")?;
    let kind: String = r.try_get("kind")?;
    let lang: String = r.try_get("lang")?;
    Ok(ReportRecord {
        id: r.try_get("id")?,
        reference: Reference::parse(&reference).map_err(|_| corrupt("reference", &reference))?,
        kind: ReportKind::parse(&kind).ok_or_else(|| corrupt("report kind", &kind))?,
        citizen_id: r.try_get("citizen_id")?,
        category: r.try_get("category")?,
        description: r.try_get("description")?,
        identifier: r.try_get("identifier")?,
        occurred_on: r.try_get("occurred_on")?,
        place: r.try_get("place")?,
        district_id: r.try_get("district_id")?,
        station_id: r.try_get("station_id")?,
        name: r.try_get("name")?,
        phone: r.try_get("phone")?,
        custody: r.try_get("custody")?,
        lang: Lang::from_code(&lang).ok_or_else(|| corrupt("language", &lang))?,
        status: r.try_get("status")?,
        fir_number: r.try_get("fir_number")?,
        close_reason: r.try_get("close_reason")?,
        found_ref: r.try_get("found_ref")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        anonymous: super::flag(r, "anonymous")?,
        pseudonym: r.try_get("pseudonym")?,
        personal_data_purged_at: r.try_get("personal_data_purged_at")?,
    })
}

fn history_from_row(r: &Row) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: r.try_get("id")?,
        action: r.try_get("action")?,
        status: r.try_get("status")?,
        note: r.try_get("note")?,
        internal_note: r.try_get("internal_note")?,
        actor: r.try_get("actor")?,
        at: r.try_get("at")?,
        fir_number: r.try_get("fir_number")?,
        reason: r.try_get("reason")?,
        found_ref: r.try_get("found_ref")?,
        from_station: r.try_get("from_station")?,
        to_station: r.try_get("to_station")?,
    })
}

/// A trimmed, non-empty value.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl Store {
    /// Stores a new officer token (its SHA-256, never the token itself), valid until revoked.
    pub async fn add_officer(
        &self,
        name: &str,
        scope: &Scope,
        token_hash: &str,
        now: i64,
    ) -> Result<i64> {
        self.add_officer_until(name, scope, token_hash, now, None)
            .await
    }

    /// Stores a new officer token that stops working at `expires_at` (unix seconds), or is
    /// valid until revoked with `None`.
    pub async fn add_officer_until(
        &self,
        name: &str,
        scope: &Scope,
        token_hash: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let mut tx = self.write().await?;
        let id = sql::query_scalar(
            "insert into officers (name, scope, token_hash, created_at, expires_at) \
             values ($1, $2, $3, $4, $5) returning id",
        )
        .bind(name)
        .bind(scope.to_string())
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Revokes every live token of that officer name; returns how many.
    pub async fn revoke_officer(&self, name: &str, now: i64) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = sql::query(
            "update officers set revoked_at = $1 where name = $2 and revoked_at is null",
        )
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// The officer whose live token (neither revoked nor expired at `now`) has this SHA-256
    /// (hex).
    pub async fn officer_by_token_hash(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<Officer>> {
        let row = sql::query(
            "select id, name, scope from officers where token_hash = $1 and revoked_at is null \
             and (expires_at is null or expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let scope: String = row.try_get("scope")?;
        Ok(Some(Officer {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            scope: Scope::parse(&scope).ok_or_else(|| corrupt("officer scope", &scope))?,
        }))
    }

    /// Writes one audit row: `actor` did `action` (on `reference`), with JSON `detail`.
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        reference: Option<&str>,
        detail: &serde_json::Value,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        insert_audit(&mut tx, actor, action, reference, detail, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The audit log, oldest first; only the rows of one report when `reference` is given.
    pub async fn audit_log(&self, reference: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>> {
        let sql = match reference {
            Some(_) => {
                "select id, actor, officer_id, action, reference, detail, at from audit_log \
                 where reference = $1 order by id limit $2"
            }
            None => {
                "select id, actor, officer_id, action, reference, detail, at from audit_log \
                 order by id limit $1"
            }
        };
        let mut q = sql::query(sql);
        if let Some(r) = reference {
            q = q.bind(r);
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    actor: r.try_get("actor")?,
                    officer_id: r.try_get("officer_id")?,
                    action: r.try_get("action")?,
                    reference: r.try_get("reference")?,
                    detail: r.try_get("detail")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// Reports inside `scope` matching `filter`, newest first (by id, which is filing order).
    pub async fn list_reports(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<ReportRecord>> {
        // Text and integer values interleave: keep them in one ordered list.
        enum Bind {
            Text(String),
            Int(i64),
        }
        let (scope_sql, scope_value) = scope.sql();
        let mut sql = format!("select {REPORT_COLUMNS} from reports where {scope_sql}");
        let mut binds: Vec<Bind> = scope_value
            .map(|v| Bind::Text(v.to_owned()))
            .into_iter()
            .collect();
        let texts = [
            ("status = ?", filter.status.clone()),
            ("station_id = ?", filter.station_id.clone()),
            ("district_id = ?", filter.district_id.clone()),
            ("kind = ?", filter.kind.map(|k| k.as_str().to_owned())),
        ];
        for (clause, value) in texts {
            if let Some(v) = value {
                sql.push_str(" and ");
                sql.push_str(clause);
                binds.push(Bind::Text(v));
            }
        }
        let ints = [
            ("created_at >= ?", filter.from),
            ("created_at < ?", filter.to),
            ("id < ?", filter.before_id),
        ];
        for (clause, value) in ints {
            if let Some(v) = value {
                sql.push_str(" and ");
                sql.push_str(clause);
                binds.push(Bind::Int(v));
            }
        }
        sql.push_str(" order by id desc limit ?");
        let sql = numbered(&sql);
        let mut q = sql::query(&sql);
        for b in binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(report_from_row).collect()
    }

    /// One report with its history and attachments, if it exists and is inside `scope`.
    pub async fn report_detail(
        &self,
        scope: &Scope,
        reference: &Reference,
    ) -> Result<Option<ReportDetail>> {
        let mut conn = self.pool.acquire().await?;
        let Some(report) = scoped_report(&mut conn, scope, reference, "").await? else {
            return Ok(None);
        };
        let sql = format!(
            "select {HISTORY_COLUMNS} from report_history where report_id = $1 order by id"
        );
        let history = sql::query(&sql)
            .bind(report.id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(history_from_row)
            .collect::<Result<Vec<_>>>()?;
        let attachments = sql::query(
            "select n, kind, file_id, mime, caption from attachments where report_id = $1 order by n",
        )
        .bind(report.id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(AttachmentRecord {
                n: r.try_get("n")?,
                kind: r.try_get("kind")?,
                file_id: r.try_get("file_id")?,
                mime: r.try_get("mime")?,
                caption: r.try_get("caption")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let matches = sql::query_scalar(
            "select r.reference from report_matches m join reports r on r.id = \
             (case when m.lost_report_id = $1 then m.found_report_id else m.lost_report_id end) \
             where m.lost_report_id = $2 or m.found_report_id = $3 order by m.matched_at, r.id",
        )
        .bind(report.id)
        .bind(report.id)
        .bind(report.id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(Some(ReportDetail {
            report,
            history,
            attachments,
            matches,
        }))
    }

    /// Changes a report's status as spec §3 allows, in one transaction: the lifecycle check,
    /// the report, its history row, the audit row, the citizen's push and the back-office
    /// event. A report outside the actor's scope is [`ChangeFailure::NotFound`].
    pub async fn change_status(
        &self,
        actor: &Actor,
        reference: &Reference,
        change: &Change,
        notices: Notices<'_>,
        now: i64,
    ) -> Result<Changed, ChangeFailure> {
        let mut tx = self.write().await?;
        let report = scoped_report(&mut *tx, &actor.scope, reference, self.backend.for_update())
            .await?
            .ok_or(ChangeFailure::NotFound)?;
        let to = change.status.trim().to_owned();
        let change = Change {
            status: to.clone(),
            note: given(&change.note),
            internal_note: given(&change.internal_note),
            fir_number: given(&change.fir_number),
            reason: given(&change.reason),
            found_ref: given(&change.found_ref),
        };
        lifecycle::check(report.kind, &report.status, &change)?;
        // Only the fields the new status takes (spec §5): anything else is a caller's mistake
        // that would otherwise be silently dropped.
        let unexpected = [
            ("fir_number", &change.fir_number, "fir_registered"),
            ("reason", &change.reason, lifecycle::CLOSED),
            ("found_ref", &change.found_ref, "found"),
        ]
        .into_iter()
        .find(|(_, value, takes)| value.is_some() && to != *takes);
        if let Some((field, _, _)) = unexpected {
            return Err(ChangeFailure::UnexpectedField { field, status: to });
        }
        let found_ref = match &change.found_ref {
            None => None,
            Some(typed) => {
                let r = Reference::parse(typed)
                    .ok()
                    .filter(|r| r.kind() == ReportKind::Found)
                    .ok_or_else(|| ChangeFailure::BadFoundRef(typed.clone()))?;
                let exists: Option<i64> =
                    sql::query_scalar("select id from reports where reference = $1")
                        .bind(r.to_string())
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    return Err(ChangeFailure::BadFoundRef(typed.clone()));
                }
                Some(r.to_string())
            }
        };

        sql::query(
            "update reports set status = $1, updated_at = $2, \
             fir_number = coalesce($3, fir_number), close_reason = coalesce($4, close_reason), \
             found_ref = coalesce($5, found_ref) where id = $6",
        )
        .bind(&to)
        .bind(now)
        .bind(&change.fir_number)
        .bind(&change.reason)
        .bind(&found_ref)
        .bind(report.id)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "insert into report_history (report_id, action, status, note, internal_note, actor, at, \
             fir_number, reason, found_ref) values ($1, 'status', $2, $3, $4, $5, $6, $7, $8, $9) \
             returning {HISTORY_COLUMNS}"
        );
        let history = sql::query(&sql)
            .bind(report.id)
            .bind(&to)
            .bind(&change.note)
            .bind(&change.internal_note)
            .bind(&actor.name)
            .bind(now)
            .bind(&change.fir_number)
            .bind(&change.reason)
            .bind(&found_ref)
            .fetch_one(&mut *tx)
            .await?;
        let history = history_from_row(&history)?;
        let history_id = history.id;
        insert_audit(
            &mut tx,
            actor,
            "report.status",
            Some(&report.reference.to_string()),
            &serde_json::json!({ "from": report.status, "to": to, "history_id": history_id }),
            now,
        )
        .await?;
        let updated = reload(&mut tx, report.id).await?;

        let citizen = push_recipient(&mut tx, &updated).await?;
        let mut pushed = false;
        if let Some(citizen) = citizen {
            let lang = citizen.lang.unwrap_or(updated.lang);
            let station = station_name(notices.stations, updated.station_id.as_deref(), lang);
            let content = notices::status_push(
                lang,
                &updated.reference.to_string(),
                &to,
                &station,
                change.fir_number.as_deref(),
                change.note.as_deref(),
            );
            pushed = enqueue_push(&mut tx, &citizen, lang, &content, history_id, now).await?;
        }
        let mut event = false;
        if notices.events {
            let body = notices::event(
                "report.status_changed",
                now,
                &updated,
                notices.stations,
                Some(serde_json::json!({
                    "from": report.status,
                    "to": to,
                    "note": change.note,
                    "fir_number": change.fir_number,
                    "reason": change.reason,
                    "found_ref": found_ref,
                    "actor": actor.name,
                })),
            );
            event =
                enqueue_event(&mut tx, &updated, body, format!("event:{history_id}"), now).await?;
        }
        if pushed || event {
            super::wakeup::wake_dispatchers(&mut tx, self.backend).await?;
        }
        tx.commit().await?;
        Ok(Changed {
            report: updated,
            history,
            from_status: report.status,
            pushed,
            alerted: false,
            event,
        })
    }

    /// Moves an open report to another station, keeping its status, in one transaction: the
    /// report, a `transfer` history row, the audit row, an alert to the new station, a push to
    /// the citizen and a `report.transferred` event. The old station's tokens lose sight of it.
    pub async fn transfer_report(
        &self,
        actor: &Actor,
        reference: &Reference,
        to_station: &str,
        note: Option<&str>,
        notices: Notices<'_>,
        now: i64,
    ) -> Result<Changed, ChangeFailure> {
        let mut tx = self.write().await?;
        let report = scoped_report(&mut *tx, &actor.scope, reference, self.backend.for_update())
            .await?
            .ok_or(ChangeFailure::NotFound)?;
        if !lifecycle::is_open(&report.status) {
            return Err(ChangeFailure::Closed);
        }
        let to_station = to_station.trim();
        let station = notices
            .stations
            .station(to_station)
            .ok_or_else(|| ChangeFailure::UnknownStation(to_station.to_owned()))?;
        if report.station_id.as_deref() == Some(to_station) {
            return Err(ChangeFailure::SameStation(to_station.to_owned()));
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty());

        sql::query(
            "update reports set station_id = $1, district_id = $2, updated_at = $3 where id = $4",
        )
        .bind(&station.id)
        .bind(&station.district_id)
        .bind(now)
        .bind(report.id)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "insert into report_history (report_id, action, status, note, actor, at, from_station, \
             to_station) values ($1, 'transfer', $2, $3, $4, $5, $6, $7) returning {HISTORY_COLUMNS}"
        );
        let history = sql::query(&sql)
            .bind(report.id)
            .bind(&report.status)
            .bind(note)
            .bind(&actor.name)
            .bind(now)
            .bind(&report.station_id)
            .bind(&station.id)
            .fetch_one(&mut *tx)
            .await?;
        let history = history_from_row(&history)?;
        let history_id = history.id;
        insert_audit(
            &mut tx,
            actor,
            "report.transfer",
            Some(&report.reference.to_string()),
            &serde_json::json!({
                "from_station": report.station_id,
                "to_station": station.id,
                "history_id": history_id,
            }),
            now,
        )
        .await?;
        let updated = reload(&mut tx, report.id).await?;

        let alerted = enqueue_alert(
            &mut tx,
            &updated,
            notices.stations,
            true,
            format!("alert:{history_id}"),
            now,
        )
        .await?;
        let mut pushed = false;
        if let Some(citizen) = push_recipient(&mut tx, &updated).await? {
            let lang = citizen.lang.unwrap_or(updated.lang);
            let content = notices::transfer_push(
                lang,
                &updated.reference.to_string(),
                &updated.status,
                station.name(lang),
                note,
            );
            pushed = enqueue_push(&mut tx, &citizen, lang, &content, history_id, now).await?;
        }
        let mut event = false;
        if notices.events {
            let body = notices::event(
                "report.transferred",
                now,
                &updated,
                notices.stations,
                Some(serde_json::json!({
                    "from_station": report.station_id,
                    "to_station": station.id,
                    "note": note,
                    "actor": actor.name,
                })),
            );
            event =
                enqueue_event(&mut tx, &updated, body, format!("event:{history_id}"), now).await?;
        }
        if pushed || alerted || event {
            super::wakeup::wake_dispatchers(&mut tx, self.backend).await?;
        }
        tx.commit().await?;
        Ok(Changed {
            report: updated,
            history,
            from_status: report.status,
            pushed,
            alerted,
            event,
        })
    }
}

/// Inside the filing transaction (`Turn::file_report`): the new report's station alert and
/// its `report.created` event.
pub(super) async fn report_filed(
    tx: &mut Tx,
    backend: Backend,
    report: &ReportRecord,
    notices: Notices<'_>,
    now: i64,
) -> Result<()> {
    let report_id = report.id;
    enqueue_alert(
        tx,
        report,
        notices.stations,
        false,
        format!("alert:filed:{report_id}"),
        now,
    )
    .await?;
    if notices.events {
        let body = notices::event("report.created", now, report, notices.stations, None);
        enqueue_event(tx, report, body, format!("event:filed:{report_id}"), now).await?;
    }
    match_lost_and_found(tx, backend, report, notices, now).await?;
    Ok(())
}

/// How far after a loss a find may be, in days, to count as a possible match.
const MATCH_WINDOW_DAYS: i64 = 180;

/// At most this many matches are linked and notified for one new report.
const MAX_MATCHES: usize = 5;

/// Whether a lost and a found report may be the same item (spec §2.5): the caller has
/// already required the same item type and district. The find is on or after the loss and
/// within [`MATCH_WINDOW_DAYS`] (when both dates are known), and when both reports carry an
/// identifier, they agree: the whole IMEI for a phone, the last 4 characters of a document
/// number (stored masked).
pub fn may_match(lost: &ReportRecord, found: &ReportRecord) -> bool {
    let date = |d: &Option<String>| {
        d.as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    if let (Some(lost_on), Some(found_on)) = (date(&lost.occurred_on), date(&found.occurred_on)) {
        let days = (found_on - lost_on).num_days();
        if !(0..=MATCH_WINDOW_DAYS).contains(&days) {
            return false;
        }
    }
    match (lost.identifier.as_deref(), found.identifier.as_deref()) {
        (Some(a), Some(b)) => {
            let tail = |s: &str| {
                let chars: Vec<char> = s
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                let keep = if lost.category == "mobile" {
                    chars.len()
                } else {
                    4
                };
                chars[chars.len().saturating_sub(keep)..].to_vec()
            };
            tail(a) == tail(b)
        }
        _ => true,
    }
}

/// The kind a lost or found report is matched against, and the statement reading the
/// candidates ($1 that kind, $2 the item type, $3 the district, $4 the report itself);
/// `None` for a complaint.
pub(super) fn match_candidates_sql(kind: ReportKind) -> Option<(&'static str, String)> {
    let (other_kind, open) = match kind {
        ReportKind::Complaint => return None,
        ReportKind::Lost => ("found", "status in ('registered', 'deposited')"),
        ReportKind::Found => ("lost", "status = 'registered'"),
    };
    let sql = format!(
        "select {REPORT_COLUMNS} from reports where kind = $1 and category = $2 and district_id = $3 \
         and {open} and id <> $4 order by id desc limit 100"
    );
    Some((other_kind, sql))
}

/// Links a newly filed lost (or found) report with open found (or lost) reports that may be
/// the same item, and notifies once per link: the lost item's owner (unless they stopped
/// updates) and the Telegram chats of both reports' stations. No status changes.
async fn match_lost_and_found(
    tx: &mut Tx,
    backend: Backend,
    report: &ReportRecord,
    notices: Notices<'_>,
    now: i64,
) -> Result<usize> {
    let Some((other_kind, sql)) = match_candidates_sql(report.kind) else {
        return Ok(0);
    };
    let Some(district) = report.district_id.as_deref() else {
        return Ok(0);
    };
    // PostgreSQL: two lost and found reports of one item type and district filed at the same
    // moment (two citizens, two replicas) would each miss the other, uncommitted. A found one
    // is matched alone per item type and district (the lock, held to the commit, exclusive),
    // as SQLite's single writer does. Lost ones share it: two lost reports never match each
    // other, and a city's many lost phones would otherwise file one batch at a time. Two
    // batches that each hold it shared and then want it alone deadlock; PostgreSQL fails one,
    // and its messages are handled one by one, as after any failed batch.
    if backend == Backend::Postgres {
        let lock = match report.kind {
            ReportKind::Found => "pg_advisory_xact_lock",
            _ => "pg_advisory_xact_lock_shared",
        };
        sql::query(&format!(
            "select {lock}(hashtextextended('seva:match:' || $1 || ':' || $2, 0))"
        ))
        .bind(&report.category)
        .bind(district)
        .execute(&mut **tx)
        .await?;
    }
    let rows = sql::query(&sql)
        .bind(other_kind)
        .bind(&report.category)
        .bind(district)
        .bind(report.id)
        .fetch_all(&mut **tx)
        .await?;
    let mut linked = 0;
    for row in &rows {
        let other = report_from_row(row)?;
        let (lost, found) = match report.kind {
            ReportKind::Lost => (report, &other),
            _ => (&other, report),
        };
        if !may_match(lost, found) {
            continue;
        }
        let inserted = sql::query(
            "insert into report_matches (lost_report_id, found_report_id, matched_at) values ($1, $2, $3) \
             on conflict do nothing",
        )
        .bind(lost.id)
        .bind(found.id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        linked += 1;
        let pair = format!("{}:{}", lost.id, found.id);
        if let Some(citizen) = push_recipient(tx, lost).await? {
            let lang = citizen.lang.unwrap_or(lost.lang);
            let station = station_name(notices.stations, lost.station_id.as_deref(), lang);
            let content =
                notices::match_push(lang, &lost.reference.to_string(), &lost.status, &station);
            enqueue_once(
                tx,
                &NewNotice {
                    citizen_id: Some(citizen.id),
                    channel: citizen.channel,
                    recipient: &citizen.external_id,
                    kind: OutboxKind::Push,
                    content: &content,
                    lang: Some(lang),
                    key: format!("match:{pair}:{}", citizen.id),
                },
                now,
            )
            .await?;
        }
        let mut chats = Vec::new();
        for station_id in [lost.station_id.as_deref(), found.station_id.as_deref()] {
            let Some(station) = station_id.and_then(|id| notices.stations.station(id)) else {
                continue;
            };
            let Some(chat_id) = station.telegram_chat_id else {
                continue;
            };
            if chats.contains(&chat_id) {
                continue;
            }
            chats.push(chat_id);
            let lang = station.alert_language;
            let content = notices::match_alert(
                lang,
                lost.kind,
                &lost.category,
                &lost.reference.to_string(),
                &found.reference.to_string(),
            );
            enqueue_once(
                tx,
                &NewNotice {
                    citizen_id: None,
                    channel: Channel::Telegram,
                    recipient: &chat_id.to_string(),
                    kind: OutboxKind::Alert,
                    content: &content,
                    lang: Some(lang),
                    key: format!("match-alert:{pair}:{chat_id}"),
                },
                now,
            )
            .await?;
        }
        if linked >= MAX_MATCHES {
            break;
        }
    }
    if linked > 0 {
        tracing::info!(
            reference = %report.reference,
            matches = linked,
            "possible lost and found matches linked"
        );
    }
    Ok(linked)
}

/// The report with this reference if `scope` covers it. `lock` is appended to the `select`
/// ([`Backend::for_update`] before a change).
async fn scoped_report<'c>(
    conn: impl Into<sql::Target<'c>>,
    scope: &Scope,
    reference: &Reference,
    lock: &str,
) -> Result<Option<ReportRecord>> {
    let sql = format!("select {REPORT_COLUMNS} from reports where reference = $1{lock}");
    let row = sql::query(&sql)
        .bind(reference.to_string())
        .fetch_optional(conn)
        .await?;
    let Some(report) = row.as_ref().map(report_from_row).transpose()? else {
        return Ok(None);
    };
    Ok(scope
        .covers(report.district_id.as_deref(), report.station_id.as_deref())
        .then_some(report))
}

async fn reload(tx: &mut Tx, id: i64) -> Result<ReportRecord> {
    let sql = format!("select {REPORT_COLUMNS} from reports where id = $1");
    let row = sql::query(&sql).bind(id).fetch_one(&mut **tx).await?;
    report_from_row(&row)
}

/// The citizen to push to: none once they deleted their data or stopped pushes.
async fn push_recipient(tx: &mut Tx, report: &ReportRecord) -> Result<Option<Citizen>> {
    let Some(id) = report.citizen_id else {
        return Ok(None);
    };
    let sql = format!(
        "select {} from citizens where id = $1",
        super::CITIZEN_COLUMNS
    );
    let row = sql::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    let citizen = row.as_ref().map(citizen_from_row).transpose()?;
    Ok(citizen.filter(|c| c.pushes_enabled))
}

/// A station's name in `lang`, or its id when the directory no longer knows it.
fn station_name(stations: &Directory, id: Option<&str>, lang: Lang) -> String {
    match id {
        Some(id) => stations
            .station(id)
            .map(|s| s.name(lang).to_owned())
            .unwrap_or_else(|| id.to_owned()),
        None => "-".to_owned(),
    }
}

struct NewNotice<'a> {
    citizen_id: Option<i64>,
    channel: Channel,
    recipient: &'a str,
    kind: OutboxKind,
    content: &'a OutboxContent,
    lang: Option<Lang>,
    /// Unique in the outbox: a second notice with the same key is not written.
    key: String,
}

/// Writes the notice unless one with its key exists; returns whether it was written.
/// The one push a history row earns its citizen, on the channel they filed from; keyed on the
/// history row so retries never write a second one.
async fn enqueue_push(
    tx: &mut Tx,
    citizen: &Citizen,
    lang: Lang,
    content: &OutboxContent,
    history_id: i64,
    now: i64,
) -> Result<bool> {
    enqueue_once(
        tx,
        &NewNotice {
            citizen_id: Some(citizen.id),
            channel: citizen.channel,
            recipient: &citizen.external_id,
            kind: OutboxKind::Push,
            content,
            lang: Some(lang),
            key: format!("push:{history_id}:{}", citizen.id),
        },
        now,
    )
    .await
}

async fn enqueue_once(tx: &mut Tx, notice: &NewNotice<'_>, now: i64) -> Result<bool> {
    let content =
        serde_json::to_string(notice.content).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id: Option<i64> = sql::query_scalar(
        "insert into outbox (citizen_id, channel, recipient, kind, content, lang, status, attempts, \
         next_attempt_at, created_at, dedupe_key) values ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $9) \
         on conflict (dedupe_key) where dedupe_key is not null do nothing returning id",
    )
    .bind(notice.citizen_id)
    .bind(notice.channel.as_str())
    .bind(notice.recipient)
    .bind(notice.kind.as_str())
    .bind(content)
    .bind(notice.lang.map(Lang::code))
    .bind(now)
    .bind(now)
    .bind(&notice.key)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.is_some())
}

/// An alert to the report's station's Telegram chat, when it has one.
async fn enqueue_alert(
    tx: &mut Tx,
    report: &ReportRecord,
    stations: &Directory,
    transferred: bool,
    key: String,
    now: i64,
) -> Result<bool> {
    let Some(station) = report
        .station_id
        .as_deref()
        .and_then(|id| stations.station(id))
    else {
        return Ok(false);
    };
    let Some(chat_id) = station.telegram_chat_id else {
        return Ok(false);
    };
    let lang = station.alert_language;
    let content = notices::station_alert(
        lang,
        report.kind,
        &report.category,
        &report.reference.to_string(),
        station.name(lang),
        transferred,
    );
    enqueue_once(
        tx,
        &NewNotice {
            citizen_id: None,
            channel: Channel::Telegram,
            recipient: &chat_id.to_string(),
            kind: OutboxKind::Alert,
            content: &content,
            lang: Some(lang),
            key,
        },
        now,
    )
    .await
}

/// A back-office event row. It names the citizen so "delete my data" blanks it once sent.
async fn enqueue_event(
    tx: &mut Tx,
    report: &ReportRecord,
    body: serde_json::Value,
    key: String,
    now: i64,
) -> Result<bool> {
    let content = OutboxContent {
        reply: Default::default(),
        template: None,
        event: Some(body),
    };
    enqueue_once(
        tx,
        &NewNotice {
            citizen_id: report.citizen_id,
            channel: Channel::Events,
            recipient: EVENTS_RECIPIENT,
            kind: OutboxKind::Event,
            content: &content,
            lang: None,
            key,
        },
        now,
    )
    .await
}

async fn insert_audit(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    reference: Option<&str>,
    detail: &serde_json::Value,
    now: i64,
) -> Result<()> {
    sql::query(
        "insert into audit_log (actor, officer_id, action, reference, detail, at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&actor.name)
    .bind(actor.officer_id)
    .bind(action)
    .bind(reference)
    .bind(detail.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_and_print_the_same() {
        for s in ["state", "district:patna", "station:patna-kotwali"] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "district:", "city:x", "station"] {
            assert!(Scope::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_scope_covers_its_own_reports_only() {
        let station = Scope::Station("a".into());
        assert!(station.covers(Some("d"), Some("a")));
        assert!(!station.covers(Some("d"), Some("b")));
        assert!(!station.covers(None, None));
        let district = Scope::District("d".into());
        assert!(district.covers(Some("d"), Some("b")));
        assert!(!district.covers(Some("e"), Some("a")));
        assert!(Scope::State.covers(None, None));
    }
}

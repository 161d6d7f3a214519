//! The officer API's JSON: what it answers and what it accepts. The OpenAPI document is
//! generated from these types.

use flows::stations::Directory;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::lifecycle;
use crate::store::{AttachmentRecord, HistoryEntry, ReportDetail, ReportRecord};

/// Unix seconds as RFC 3339 in UTC (`2026-11-28T12:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An error: a stable `code` for programs and a `message` for people.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"code": "illegal_transition", "message": "cannot move from submitted to under_inquiry; allowed next: acknowledged, closed"}))]
pub struct ErrorJson {
    /// One of `unauthorized`, `not_found`, `invalid_query`, `invalid_cursor`, `invalid_json`,
    /// `unknown_status`, `illegal_transition`, `fir_number_required`, `reason_required`,
    /// `unexpected_field`, `invalid_found_ref`, `report_closed`, `unknown_station`,
    /// `same_station`, `attachment_unavailable`, `internal`.
    pub code: String,
    pub message: String,
}

/// A report in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportSummary {
    /// `K-XXXX-XXXX-X`.
    #[schema(example = "C-7K3Q-9XM4-R")]
    pub reference: String,
    /// `complaint`, `lost` or `found`.
    pub kind: String,
    /// Complaint category (`theft`, `cyber`, …) or item type (`mobile`, `id_document`, …).
    pub category: String,
    pub status: String,
    pub station_id: Option<String>,
    /// The station's English name from the stations file.
    pub station_name: Option<String>,
    pub district_id: Option<String>,
    pub fir_number: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
}

impl ReportSummary {
    pub fn from_record(r: &ReportRecord, stations: &Directory) -> ReportSummary {
        ReportSummary {
            reference: r.reference.to_string(),
            kind: r.kind.as_str().to_owned(),
            category: r.category.clone(),
            status: r.status.clone(),
            station_id: r.station_id.clone(),
            station_name: station_name(r, stations),
            district_id: r.district_id.clone(),
            fir_number: r.fir_number.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

fn station_name(r: &ReportRecord, stations: &Directory) -> Option<String> {
    r.station_id
        .as_deref()
        .and_then(|id| stations.station(id))
        .map(|s| s.name_en.clone())
}

/// A report with everything the citizen told (personal fields are `null` once the citizen
/// deleted their data). The back-office events carry the same object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportJson {
    #[schema(example = "C-7K3Q-9XM4-R")]
    pub reference: String,
    /// `complaint`, `lost` or `found`.
    pub kind: String,
    pub category: String,
    pub status: String,
    /// The statuses this report may move to next (spec §3); empty once closed.
    pub allowed_next: Vec<String>,
    pub station_id: Option<String>,
    pub station_name: Option<String>,
    pub district_id: Option<String>,
    /// What happened, or the item's description.
    pub description: Option<String>,
    /// A phone's IMEI, or a document number's last 4 characters.
    pub identifier: Option<String>,
    /// `YYYY-MM-DD`.
    pub occurred_on: Option<String>,
    /// `{"type": "address", "text": …}` or `{"type": "location", "latitude": …, "longitude": …}`.
    #[schema(value_type = Option<Object>)]
    pub place: Option<serde_json::Value>,
    pub name: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    /// Found items: `with_me` or `at_station`.
    pub custody: Option<String>,
    /// The language the citizen filed in: `hi` or `en`.
    pub lang: String,
    pub fir_number: Option<String>,
    pub close_reason: Option<String>,
    /// Lost items marked found: the found-item report that matched.
    pub found_ref: Option<String>,
    /// True once the citizen asked for their data to be deleted.
    pub citizen_data_deleted: bool,
    /// An anonymous tip: `name` and `phone` were never stored; `citizen_pseudonym` stands
    /// for the citizen.
    pub anonymous: bool,
    /// For anonymous tips, a stable code per citizen (`anon-…`): the same citizen's tips
    /// share it; it cannot be turned back into a phone number. `null` once purged.
    #[schema(example = "anon-7K3Q9XM4RT")]
    pub citizen_pseudonym: Option<String>,
    /// When `seva report purge` removed the personal fields (RFC 3339, UTC).
    pub personal_data_purged_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ReportJson {
    pub fn from_record(r: &ReportRecord, stations: &Directory) -> ReportJson {
        ReportJson {
            reference: r.reference.to_string(),
            kind: r.kind.as_str().to_owned(),
            category: r.category.clone(),
            status: r.status.clone(),
            allowed_next: lifecycle::allowed_next(r.kind, &r.status)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            station_id: r.station_id.clone(),
            station_name: station_name(r, stations),
            district_id: r.district_id.clone(),
            description: r.description.clone(),
            identifier: r.identifier.clone(),
            occurred_on: r.occurred_on.clone(),
            place: r
                .place
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            name: r.name.clone(),
            phone: r.phone.clone(),
            custody: r.custody.clone(),
            lang: r.lang.code().to_owned(),
            fir_number: r.fir_number.clone(),
            close_reason: r.close_reason.clone(),
            found_ref: r.found_ref.clone(),
            citizen_data_deleted: r.citizen_id.is_none() && r.personal_data_purged_at.is_none(),
            anonymous: r.anonymous,
            citizen_pseudonym: r.pseudonym.clone(),
            personal_data_purged_at: r.personal_data_purged_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// One change in a report's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryJson {
    /// `status` (a status change, or the filing) or `transfer` (a move between stations).
    pub action: String,
    /// The status after the change; a transfer keeps it.
    pub status: String,
    /// The public note, sent to the citizen.
    pub note: Option<String>,
    /// The internal note, never sent to the citizen.
    pub internal_note: Option<String>,
    /// Officer name, `cli`, or `citizen` for the filing.
    pub actor: String,
    pub at: String,
    pub fir_number: Option<String>,
    pub reason: Option<String>,
    pub found_ref: Option<String>,
    pub from_station: Option<String>,
    pub to_station: Option<String>,
}

impl From<&HistoryEntry> for HistoryJson {
    fn from(h: &HistoryEntry) -> HistoryJson {
        HistoryJson {
            action: h.action.clone(),
            status: h.status.clone(),
            note: h.note.clone(),
            internal_note: h.internal_note.clone(),
            actor: h.actor.clone(),
            at: rfc3339(h.at),
            fir_number: h.fir_number.clone(),
            reason: h.reason.clone(),
            found_ref: h.found_ref.clone(),
            from_station: h.from_station.clone(),
            to_station: h.to_station.clone(),
        }
    }
}

/// A file the citizen sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentJson {
    /// 1, 2, … in the order sent.
    pub n: i64,
    /// `photo`, `document`, `voice`, `video` or `sticker`.
    pub kind: String,
    pub mime: Option<String>,
    pub caption: Option<String>,
    /// Where to fetch it (same token).
    pub url: String,
}

impl AttachmentJson {
    pub fn from_record(reference: &str, a: &AttachmentRecord) -> AttachmentJson {
        AttachmentJson {
            n: a.n,
            kind: a.kind.clone(),
            mime: a.mime.clone(),
            caption: a.caption.clone(),
            url: format!("/api/v1/reports/{reference}/attachments/{}", a.n),
        }
    }
}

/// One report with its history (oldest first), attachments and possible matches.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportDetailJson {
    pub report: ReportJson,
    pub history: Vec<HistoryJson>,
    pub attachments: Vec<AttachmentJson>,
    /// Lost ↔ found reports that may be the same item (found automatically, notified once;
    /// an officer confirms by marking the lost item `found` with `found_ref`).
    pub matches: Vec<String>,
}

impl ReportDetailJson {
    pub fn from_detail(d: &ReportDetail, stations: &Directory) -> ReportDetailJson {
        let reference = d.report.reference.to_string();
        ReportDetailJson {
            report: ReportJson::from_record(&d.report, stations),
            history: d.history.iter().map(HistoryJson::from).collect(),
            attachments: d
                .attachments
                .iter()
                .map(|a| AttachmentJson::from_record(&reference, a))
                .collect(),
            matches: d.matches.clone(),
        }
    }
}

/// A page of reports, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportList {
    pub reports: Vec<ReportSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of `GET /api/v1/reports`; every one narrows the list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this status (`submitted`, `registered`, `closed`, …).
    pub status: Option<String>,
    /// Only this station id.
    pub station: Option<String>,
    /// Only this district id.
    pub district: Option<String>,
    /// Only this kind: `complaint`, `lost` or `found`.
    pub kind: Option<String>,
    /// Filed on or after this day (`YYYY-MM-DD`, in `SEVA_TIMEZONE`).
    pub from: Option<String>,
    /// Filed on or before this day (`YYYY-MM-DD`, in `SEVA_TIMEZONE`).
    pub to: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// `POST /api/v1/reports/{reference}/status`. Send only the fields the new status takes:
/// `fir_number` for `fir_registered` (required), `reason` for `closed` (required), `found_ref`
/// for a lost item's `found` (optional).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    #[schema(example = "acknowledged")]
    pub status: String,
    /// Sent to the citizen with the update.
    pub note: Option<String>,
    /// Kept in the history, never sent to the citizen.
    pub internal_note: Option<String>,
    pub fir_number: Option<String>,
    pub reason: Option<String>,
    pub found_ref: Option<String>,
}

/// `POST /api/v1/reports/{reference}/transfer`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The id of the station (from the stations file) to move the report to.
    #[schema(example = "patna-kotwali")]
    pub station: String,
    /// Sent to the citizen with the news of the transfer.
    pub note: Option<String>,
}

/// What a status change or transfer did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeResult {
    /// The report after the change.
    pub report: ReportJson,
    /// The history entry written.
    pub change: HistoryJson,
    /// Whether the citizen will be notified (not when they stopped updates or deleted their
    /// data).
    pub citizen_notified: bool,
    /// Whether a station chat was alerted (transfers to a station with a Telegram chat).
    pub station_alerted: bool,
}

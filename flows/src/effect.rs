//! Effects: what the engine asks the runtime to do, and the results fed back into `step`.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::Lang;
use crate::reference::{Reference, ReportKind};

/// Work the runtime does inside the citizen's turn. Effects that produce data answer with an
/// [`EffectResult`], given back to `step` as [`crate::engine::Input::Result`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Remember the citizen's language.
    SetLanguage { lang: Lang },
    /// Remember the citizen's confirmed mobile number (E.164).
    SetPhone { phone: String },
    /// File a report. Idempotent on `draft_id`: filing the same draft twice yields the first
    /// reference. Answered with [`EffectResult::Filed`].
    FileReport { report: Box<NewReport> },
    /// Look up a reference on behalf of this citizen. Answered with [`EffectResult::Report`];
    /// a report filed by someone else answers `None`, exactly like a missing one.
    LookupReport { reference: Reference },
    /// The citizen's latest reports. Answered with [`EffectResult::MyReports`].
    ListMyReports,
    /// Stop (`false`) or resume (`true`) status pushes to this citizen.
    SetPushes { enabled: bool },
    /// Remove the citizen's personal data and conversation, keeping anonymous statistics.
    DeleteMyData,
    /// May the citizen start another report of `kind` now? Asked when a report journey
    /// starts, so a citizen over the daily limit hears it before typing anything. Answered
    /// with [`EffectResult::ReportLimit`].
    CheckReportLimit { kind: ReportKind },
}

/// Results of effects, fed back into `step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EffectResult {
    Filed {
        reference: Reference,
        station: Option<String>,
    },
    Report {
        report: Option<ReportView>,
    },
    MyReports {
        reports: Vec<ReportView>,
    },
    /// Whether a report of `kind` may be started: `refused` is `None` when it may.
    ReportLimit {
        kind: ReportKind,
        refused: Option<ReportRefusal>,
    },
}

/// Why a new report cannot be started now: the citizen already filed `filed` reports in the
/// last 24 hours, and may file again from `until` (local time in `SEVA_TIMEZONE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRefusal {
    pub filed: u32,
    pub until: NaiveDateTime,
}

/// Where something happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Place {
    Location {
        latitude: f64,
        longitude: f64,
        label: Option<String>,
    },
    Address {
        text: String,
    },
}

/// Where a found item is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Custody {
    WithMe,
    AtStation,
}

/// A file the citizen sent with the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: crate::message::MediaKind,
    pub file_id: String,
    pub mime: Option<String>,
    pub caption: Option<String>,
}

/// A report ready to be filed: everything the journey collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewReport {
    /// Unique per draft, so a repeated confirm files once.
    pub draft_id: String,
    pub reference: Reference,
    pub kind: ReportKind,
    /// Complaint category or item type id (e.g. `theft`, `mobile`).
    pub category: String,
    pub description: Option<String>,
    /// IMEI (validated) or a masked document number (last 4 characters only).
    pub identifier: Option<String>,
    pub occurred_on: Option<NaiveDate>,
    pub place: Option<Place>,
    pub district_id: Option<String>,
    pub station_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub custody: Option<Custody>,
    pub attachments: Vec<Attachment>,
    pub lang: Lang,
    /// An anonymous tip: no name and no phone; officers see a pseudonym of the citizen.
    #[serde(default)]
    pub anonymous: bool,
}

/// What a citizen may see of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportView {
    pub reference: Reference,
    pub kind: ReportKind,
    /// Status id, e.g. `submitted`, `fir_registered`.
    pub status: String,
    pub station_en: Option<String>,
    pub station_hi: Option<String>,
    /// Local date of the last change.
    pub updated_on: NaiveDate,
    pub fir_number: Option<String>,
    /// Oldest first: (status, local date).
    pub history: Vec<(String, NaiveDate)>,
}

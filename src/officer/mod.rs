//! The officer API (spec §5), JSON under `/api/v1`, and its shell twins (`seva officer …`,
//! `seva report …`).
//!
//! * [`auth`] — bearer tokens: made by `seva officer add`, stored as SHA-256.
//! * [`model`] — the JSON answered and accepted; the OpenAPI document is generated from it.
//! * [`error`] — every refusal as `{code, message}` with a stable code.
//! * [`notices`] — what a change sends: citizen pushes, station alerts, back-office events.
//! * [`commands`] — the CLI commands.
//! * [`throttle`] — wrong tokens slowed per client address (429 with `Retry-After`).
//!
//! Scope: a token sees the reports of its station, its district or the whole state. A report
//! outside the scope answers exactly like a missing one (404). Every read and every change,
//! refused ones included, is written to the audit log.

pub mod auth;
pub mod commands;
pub mod error;
pub mod model;
pub mod notices;
pub mod throttle;

use std::path::{Path as FsPath, PathBuf};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use flows::reference::{Reference, ReportKind};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use self::auth::Authed;
use self::error::ApiError;
use self::model::*;
use self::throttle::AuthThrottle;
use crate::lifecycle::Change;
use crate::runtime::Runtime;
use crate::store::{Actor, ChangeFailure, Officer, ReportFilter};

/// Page size of `GET /api/v1/reports` when `limit` is not given, and the largest allowed.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// What the officer routes share.
#[derive(Clone)]
pub struct ApiState {
    pub runtime: Runtime,
    /// `SEVA_MEDIA_DIR`: where downloaded attachments are kept.
    pub media_dir: PathBuf,
    /// Wrong tokens per client address.
    pub throttle: AuthThrottle,
}

/// The `/api/v1` routes. Serve them with connect info (`SocketAddr`) so wrong tokens can be
/// counted per client address.
pub fn router(runtime: Runtime, media_dir: PathBuf, throttle: AuthThrottle) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/reports", get(list_reports))
        .route("/api/v1/reports/{reference}", get(get_report))
        .route("/api/v1/reports/{reference}/status", post(change_status))
        .route(
            "/api/v1/reports/{reference}/transfer",
            post(transfer_report),
        )
        .route(
            "/api/v1/reports/{reference}/attachments/{n}",
            get(get_attachment),
        )
        .with_state(ApiState {
            runtime,
            media_dir,
            throttle,
        })
}

/// The OpenAPI 3 document of the officer API, generated from the handlers and types below.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Seva officer API",
        version = "1.0.0",
        description = "Police station officers' view of citizen reports: list, read, change \
                       status, transfer. Bearer tokens come from `seva officer add`. A report \
                       outside the token's scope answers 404, exactly like a missing one."
    ),
    paths(list_reports, get_report, change_status, transfer_report, get_attachment),
    components(schemas(
        ErrorJson,
        ReportSummary,
        ReportJson,
        HistoryJson,
        AttachmentJson,
        ReportDetailJson,
        ReportList,
        StatusRequest,
        TransferRequest,
        ChangeResult
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "reports", description = "Citizen reports in the token's scope"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A reference from the path, read leniently; one that cannot be read is simply not found.
fn reference(typed: &str) -> Result<Reference, ApiError> {
    Reference::parse(typed).map_err(|_| ApiError::NotFound)
}

/// The start of a local day in `tz`, as unix seconds.
fn day_start(tz: Tz, day: NaiveDate) -> i64 {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight).earliest() {
        Some(t) => t.timestamp(),
        None => midnight.and_utc().timestamp(),
    }
}

/// The filter a listing's query asks for.
pub fn filter(p: &ListParams, tz: Tz) -> Result<ReportFilter, ApiError> {
    let date = |name: &str, v: &Option<String>| -> Result<Option<NaiveDate>, ApiError> {
        v.as_deref()
            .map(|s| {
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
                    ApiError::bad_request("invalid_query", format!("`{name}` must be YYYY-MM-DD"))
                })
            })
            .transpose()
    };
    let kind = p
        .kind
        .as_deref()
        .map(|k| {
            ReportKind::parse(k.trim()).ok_or_else(|| {
                ApiError::bad_request("invalid_query", "`kind` must be complaint, lost or found")
            })
        })
        .transpose()?;
    let before_id = p
        .cursor
        .as_deref()
        .map(|c| {
            c.trim()
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| ApiError::bad_request("invalid_cursor", "unknown cursor"))
        })
        .transpose()?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(ReportFilter {
        status: text(&p.status),
        station_id: text(&p.station),
        district_id: text(&p.district),
        kind,
        from: date("from", &p.from)?.map(|d| day_start(tz, d)),
        to: date("to", &p.to)?
            .and_then(|d| d.succ_opt())
            .map(|d| day_start(tz, d)),
        before_id,
        limit,
    })
}

/// List reports in the token's scope, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/reports",
    tag = "reports",
    params(ListParams),
    responses(
        (status = 200, description = "A page of reports", body = ReportList),
        (status = 400, description = "Unreadable filter or cursor", body = ErrorJson),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorJson),
        (status = 429, description = "Too many wrong tokens from this address; wait for Retry-After", body = ErrorJson)
    )
)]
async fn list_reports(
    State(state): State<ApiState>,
    Authed(officer): Authed,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ReportList>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let mut filter = filter(&params, state.runtime.timezone())?;
    let limit = filter.limit;
    // One more than asked tells whether another page follows.
    filter.limit = limit + 1;
    let store = state.runtime.store();
    let mut rows = store
        .list_reports(&officer.scope, &filter)
        .await
        .map_err(ApiError::internal)?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let references: Vec<String> = rows.iter().map(|r| r.reference.to_string()).collect();
    let detail = serde_json::json!({
        "filter": {
            "status": params.status, "station": params.station, "district": params.district,
            "kind": params.kind, "from": params.from, "to": params.to, "cursor": params.cursor,
            "limit": limit,
        },
        "references": references,
    });
    audit(&state, &officer, "report.list", None, detail).await?;
    let stations = state.runtime.stations();
    Ok(Json(ReportList {
        reports: rows
            .iter()
            .map(|r| ReportSummary::from_record(r, stations))
            .collect(),
        next_cursor,
    }))
}

/// One report with its history and attachments.
#[utoipa::path(
    get,
    path = "/api/v1/reports/{reference}",
    tag = "reports",
    params(("reference" = String, Path, description = "The report's reference, e.g. C-7K3Q-9XM4-R")),
    responses(
        (status = 200, description = "The report", body = ReportDetailJson),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorJson),
        (status = 429, description = "Too many wrong tokens from this address; wait for Retry-After", body = ErrorJson),
        (status = 404, description = "No such report in the token's scope", body = ErrorJson)
    )
)]
async fn get_report(
    State(state): State<ApiState>,
    Authed(officer): Authed,
    Path(typed): Path<String>,
) -> Result<Json<ReportDetailJson>, ApiError> {
    let detail = match reference(&typed) {
        Ok(r) => state
            .runtime
            .store()
            .report_detail(&officer.scope, &r)
            .await
            .map_err(ApiError::internal)?,
        Err(_) => None,
    };
    let shown = normalized(&typed);
    let found = detail.is_some();
    audit(
        &state,
        &officer,
        "report.read",
        Some(&shown),
        serde_json::json!({ "found": found }),
    )
    .await?;
    let detail = detail.ok_or(ApiError::NotFound)?;
    Ok(Json(ReportDetailJson::from_detail(
        &detail,
        state.runtime.stations(),
    )))
}

/// The reference as stored when it can be read, else the typed text cut short (for the log).
fn normalized(typed: &str) -> String {
    match Reference::parse(typed) {
        Ok(r) => r.to_string(),
        Err(_) => typed.chars().take(32).collect(),
    }
}

/// Change a report's status (spec §3). Illegal changes are refused naming the allowed ones.
#[utoipa::path(
    post,
    path = "/api/v1/reports/{reference}/status",
    tag = "reports",
    params(("reference" = String, Path, description = "The report's reference")),
    request_body = StatusRequest,
    responses(
        (status = 200, description = "Changed; the citizen is notified", body = ChangeResult),
        (status = 400, description = "Unreadable JSON", body = ErrorJson),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorJson),
        (status = 429, description = "Too many wrong tokens from this address; wait for Retry-After", body = ErrorJson),
        (status = 404, description = "No such report in the token's scope", body = ErrorJson),
        (status = 409, description = "Not allowed from the current status (`illegal_transition`)", body = ErrorJson),
        (status = 422, description = "Missing or unexpected data (`fir_number_required`, `reason_required`, `unknown_status`, `unexpected_field`, `invalid_found_ref`)", body = ErrorJson)
    )
)]
async fn change_status(
    State(state): State<ApiState>,
    Authed(officer): Authed,
    Path(typed): Path<String>,
    body: Result<Json<StatusRequest>, JsonRejection>,
) -> Result<Json<ChangeResult>, ApiError> {
    let reference = reference(&typed)?;
    let Json(req) = body.map_err(|e| ApiError::bad_request("invalid_json", e.body_text()))?;
    let change = Change {
        status: req.status,
        note: req.note,
        internal_note: req.internal_note,
        fir_number: req.fir_number,
        reason: req.reason,
        found_ref: req.found_ref,
    };
    let actor = Actor::from(&officer);
    let runtime = &state.runtime;
    let result = runtime
        .store()
        .change_status(
            &actor,
            &reference,
            &change,
            runtime.notices(),
            runtime.clock().now(),
        )
        .await;
    let changed = refusal_audited(&state, &officer, "report.status", &reference, result).await?;
    runtime.wake().notify_one();
    tracing::info!(
        officer = officer.id,
        reference = %reference,
        from = %changed.from_status,
        to = %changed.report.status,
        "report status changed"
    );
    Ok(Json(ChangeResult {
        report: ReportJson::from_record(&changed.report, runtime.stations()),
        change: HistoryJson::from(&changed.history),
        citizen_notified: changed.pushed,
        station_alerted: changed.alerted,
    }))
}

/// Move an open report to another station; its status stays.
#[utoipa::path(
    post,
    path = "/api/v1/reports/{reference}/transfer",
    tag = "reports",
    params(("reference" = String, Path, description = "The report's reference")),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "Transferred; the new station is alerted and the citizen told", body = ChangeResult),
        (status = 400, description = "Unreadable JSON", body = ErrorJson),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorJson),
        (status = 429, description = "Too many wrong tokens from this address; wait for Retry-After", body = ErrorJson),
        (status = 404, description = "No such report in the token's scope", body = ErrorJson),
        (status = 409, description = "Closed, or already at that station (`report_closed`, `same_station`)", body = ErrorJson),
        (status = 422, description = "Unknown station (`unknown_station`)", body = ErrorJson)
    )
)]
async fn transfer_report(
    State(state): State<ApiState>,
    Authed(officer): Authed,
    Path(typed): Path<String>,
    body: Result<Json<TransferRequest>, JsonRejection>,
) -> Result<Json<ChangeResult>, ApiError> {
    let reference = reference(&typed)?;
    let Json(req) = body.map_err(|e| ApiError::bad_request("invalid_json", e.body_text()))?;
    let actor = Actor::from(&officer);
    let runtime = &state.runtime;
    let result = runtime
        .store()
        .transfer_report(
            &actor,
            &reference,
            &req.station,
            req.note.as_deref(),
            runtime.notices(),
            runtime.clock().now(),
        )
        .await;
    let changed = refusal_audited(&state, &officer, "report.transfer", &reference, result).await?;
    runtime.wake().notify_one();
    tracing::info!(
        officer = officer.id,
        reference = %reference,
        to_station = ?changed.report.station_id,
        "report transferred"
    );
    Ok(Json(ChangeResult {
        report: ReportJson::from_record(&changed.report, runtime.stations()),
        change: HistoryJson::from(&changed.history),
        citizen_notified: changed.pushed,
        station_alerted: changed.alerted,
    }))
}

/// A file the citizen sent with the report, as it was stored.
#[utoipa::path(
    get,
    path = "/api/v1/reports/{reference}/attachments/{n}",
    tag = "reports",
    params(
        ("reference" = String, Path, description = "The report's reference"),
        ("n" = u32, Path, description = "The attachment's number, from 1")
    ),
    responses(
        (status = 200, description = "The file, with its MIME type", content_type = "application/octet-stream"),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorJson),
        (status = 429, description = "Too many wrong tokens from this address; wait for Retry-After", body = ErrorJson),
        (status = 404, description = "No such report or attachment in the token's scope (`not_found`), or its file is not stored here (`attachment_unavailable`)", body = ErrorJson)
    )
)]
async fn get_attachment(
    State(state): State<ApiState>,
    Authed(officer): Authed,
    Path((typed, n)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let detail = match (reference(&typed), n.parse::<i64>()) {
        (Ok(r), Ok(_)) => state
            .runtime
            .store()
            .report_detail(&officer.scope, &r)
            .await
            .map_err(ApiError::internal)?,
        _ => None,
    };
    let attachment = detail.as_ref().and_then(|d| {
        let n: i64 = n.parse().ok()?;
        d.attachments.iter().find(|a| a.n == n)
    });
    audit(
        &state,
        &officer,
        "attachment.read",
        Some(&normalized(&typed)),
        serde_json::json!({ "n": n, "found": attachment.is_some() }),
    )
    .await?;
    let (Some(detail), Some(attachment)) = (&detail, attachment) else {
        return Err(ApiError::NotFound);
    };
    let path = stored_file(&state.media_dir, &attachment.file_id)
        .ok_or(ApiError::AttachmentUnavailable)?;
    let bytes = tokio::fs::read(&path).await.map_err(ApiError::internal)?;
    let mime = attachment
        .mime
        .as_deref()
        .and_then(|m| HeaderValue::from_str(m).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let disposition = format!(
        "attachment; filename=\"{}-{}{ext}\"",
        detail.report.reference, attachment.n
    );
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, mime);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// The stored file of an attachment inside `media_dir`: its `file_id` is the file's path once
/// downloaded, or the provider's media id the download was named after (`<id>.<ext>`).
/// Nothing outside `media_dir` is ever served.
pub fn stored_file(media_dir: &FsPath, file_id: &str) -> Option<PathBuf> {
    let dir = media_dir.canonicalize().ok()?;
    let inside = |p: PathBuf| -> Option<PathBuf> {
        let p = p.canonicalize().ok()?;
        (p.starts_with(&dir) && p.is_file()).then_some(p)
    };
    let given = FsPath::new(file_id);
    let direct = if given.is_absolute() {
        given.to_path_buf()
    } else {
        dir.join(given)
    };
    if let Some(p) = inside(direct) {
        return Some(p);
    }
    let plain_name = !file_id.is_empty()
        && file_id.len() <= 256
        && !file_id.starts_with('.')
        && file_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !plain_name {
        return None;
    }
    std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(file_id))
        .and_then(inside)
}

async fn audit(
    state: &ApiState,
    officer: &Officer,
    action: &str,
    reference: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    let now = state.runtime.clock().now();
    state
        .runtime
        .store()
        .audit(&Actor::from(officer), action, reference, &detail, now)
        .await
        .map_err(ApiError::internal)
}

/// Passes a change's outcome through; a refused change is written to the audit log first
/// (a successful one was audited inside its own transaction).
async fn refusal_audited<T>(
    state: &ApiState,
    officer: &Officer,
    action: &str,
    reference: &Reference,
    result: Result<T, ChangeFailure>,
) -> Result<T, ApiError> {
    match result {
        Ok(v) => Ok(v),
        Err(failure) => {
            let error = ApiError::from(failure);
            if !matches!(error, ApiError::Internal) {
                audit(
                    state,
                    officer,
                    action,
                    Some(&reference.to_string()),
                    serde_json::json!({ "refused": error.code() }),
                )
                .await?;
            }
            Err(error)
        }
    }
}

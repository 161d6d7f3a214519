//! The officer API's one error type: every refusal maps to an HTTP status and a stable code.
//! Internal errors are logged and answered with a fixed message, never echoed.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::model::ErrorJson;
use crate::lifecycle::ChangeError;
use crate::store::ChangeFailure;

#[derive(Debug)]
pub enum ApiError {
    /// No token, an unknown one or a revoked one.
    Unauthorized,
    /// Missing, or outside the token's scope: answered the same.
    NotFound,
    /// A request that cannot be read (query, JSON, cursor).
    BadRequest {
        code: &'static str,
        message: String,
    },
    /// A well-formed request the rules refuse (422) or the report's state refuses (409).
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// The attachment exists but its file is not stored here.
    AttachmentUnavailable,
    /// Too many wrong tokens from this client address ([`super::throttle`]).
    TooManyAttempts {
        retry_after_secs: u64,
    },
    Internal,
}

impl ApiError {
    /// Logs the cause (never sent to the client) and answers 500.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "officer API failed");
        ApiError::Internal
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::BadRequest { code, .. } | ApiError::Refused { code, .. } => code,
            ApiError::AttachmentUnavailable => "attachment_unavailable",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::Internal => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound | ApiError::AttachmentUnavailable => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Refused { status, .. } => *status,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Unauthorized => {
                "a valid officer token is required: Authorization: Bearer <token>".to_owned()
            }
            ApiError::NotFound => "no report with this reference".to_owned(),
            ApiError::BadRequest { message, .. } | ApiError::Refused { message, .. } => {
                message.clone()
            }
            ApiError::AttachmentUnavailable => {
                "this attachment's file is not stored on this server (not downloaded yet)"
                    .to_owned()
            }
            ApiError::TooManyAttempts { retry_after_secs } => format!(
                "too many wrong tokens from this address; try again in {retry_after_secs} seconds"
            ),
            ApiError::Internal => "internal error; it has been logged".to_owned(),
        }
    }
}

/// The status and stable code of a refused change; `None` for a missing report and for
/// internal errors, which answer as such.
pub fn refusal(f: &ChangeFailure) -> Option<(StatusCode, &'static str)> {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    Some(match f {
        ChangeFailure::NotFound | ChangeFailure::Store(_) => return None,
        ChangeFailure::Rule(rule) => match rule {
            ChangeError::NotAllowed { .. } => (StatusCode::CONFLICT, "illegal_transition"),
            ChangeError::UnknownStatus(_) => (unprocessable, "unknown_status"),
            ChangeError::FirNumberRequired => (unprocessable, "fir_number_required"),
            ChangeError::ReasonRequired => (unprocessable, "reason_required"),
        },
        ChangeFailure::UnexpectedField { .. } => (unprocessable, "unexpected_field"),
        ChangeFailure::BadFoundRef(_) => (unprocessable, "invalid_found_ref"),
        ChangeFailure::Closed => (StatusCode::CONFLICT, "report_closed"),
        ChangeFailure::UnknownStation(_) => (unprocessable, "unknown_station"),
        ChangeFailure::SameStation(_) => (StatusCode::CONFLICT, "same_station"),
    })
}

impl From<ChangeFailure> for ApiError {
    fn from(f: ChangeFailure) -> ApiError {
        match (refusal(&f), f) {
            (Some((status, code)), f) => ApiError::Refused {
                status,
                code,
                message: f.to_string(),
            },
            (None, ChangeFailure::Store(e)) => ApiError::internal(e),
            (None, _) => ApiError::NotFound,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorJson {
            code: self.code().to_owned(),
            message: self.message(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        match self {
            ApiError::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"seva\""),
                );
            }
            ApiError::TooManyAttempts { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

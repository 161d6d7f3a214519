//! Seva's HTTP surface. For now liveness and readiness; the channel adapters' webhook routes
//! and the officer API are merged in here as they land.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::runtime::Runtime;

/// The routes, sharing one [`Runtime`].
pub fn router(runtime: Runtime) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(runtime)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers and its migrations are applied.
async fn readyz(State(runtime): State<Runtime>) -> (StatusCode, &'static str) {
    match runtime.store().ready().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
    }
}

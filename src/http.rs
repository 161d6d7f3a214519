//! Seva's own HTTP routes — `/healthz`, `/readyz`, `/metrics` — and the layer that measures
//! every route (webhooks and the officer API are merged in by `serve`).
//!
//! * `GET /healthz`: the process answers (liveness).
//! * `GET /readyz`: the database answers and every migration is applied, and the process is
//!   not draining; 503 otherwise, so a load balancer stops sending.
//! * `GET /metrics`: Prometheus text format ([`crate::metrics`]); the outbox gauges are
//!   refreshed from the database at each scrape.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics;
use crate::runtime::Runtime;

/// The longest a scrape waits for the outbox figures; the previous ones are served after.
const OUTBOX_REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the process is draining, and whether anything has probed `/readyz` (only then is
/// there a load balancer to tell before the listener closes).
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

#[derive(Default)]
struct ReadinessInner {
    draining: AtomicBool,
    probed: AtomicBool,
}

impl Readiness {
    pub fn new() -> Readiness {
        metrics::set_draining(false);
        Readiness::default()
    }

    /// From now on `/readyz` answers 503.
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        metrics::set_draining(true);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Whether `/readyz` has been asked at least once.
    pub fn probed(&self) -> bool {
        self.inner.probed.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Ops {
    runtime: Runtime,
    readiness: Readiness,
}

/// `/healthz`, `/readyz` and `/metrics`, sharing one [`Runtime`].
pub fn router(runtime: Runtime, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_route))
        .with_state(Ops { runtime, readiness })
}

/// Measures every request of `app` (count, latency, in flight) by method and route template.
/// Call it on the fully merged router.
pub fn instrument(app: Router) -> Router {
    app.layer(middleware::from_fn(measure))
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: not draining, the database answers and its migrations are applied.
async fn readyz(State(ops): State<Ops>) -> (StatusCode, &'static str) {
    ops.readiness.inner.probed.store(true, Ordering::SeqCst);
    if ops.readiness.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    match ops.runtime.store().ready().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
    }
}

async fn metrics_route(State(ops): State<Ops>) -> Response {
    let store = ops.runtime.store();
    let now = ops.runtime.clock().now();
    match tokio::time::timeout(OUTBOX_REFRESH_TIMEOUT, metrics::refresh_outbox(store, now)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "outbox gauges not refreshed"),
        Err(_) => tracing::warn!("outbox gauges not refreshed: the database is slow"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(),
    )
        .into_response()
}

/// Counts a request out of the in-flight gauge even when its future is dropped.
struct InFlightGuard;

impl InFlightGuard {
    fn enter() -> InFlightGuard {
        metrics::http_in_flight(1.0);
        InFlightGuard
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        metrics::http_in_flight(-1.0);
    }
}

async fn measure(request: Request, next: Next) -> Response {
    // The route template, never the path itself: paths carry report references.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let _in_flight = InFlightGuard::enter();
    let response = next.run(request).await;
    metrics::http_request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A bounded label: the usual methods by name, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

//! Prometheus metrics, served at `GET /metrics` in the text exposition format (0.0.4).
//!
//! A small hand-rolled registry rather than the `metrics` + `metrics-exporter-prometheus`
//! crates: Seva has a fixed, short list of series, and a couple of hundred lines here cost
//! less than a new dependency tree to build on every machine, while keeping every name, label
//! and bucket visible in one file. Like the log subscriber, the registry is process-wide: the
//! runtime, the dispatcher, the channels and the HTTP layer record through the functions
//! below, and [`render`] writes everything out.
//!
//! Labels never carry personal data or unbounded values: channels, message types, journeys,
//! report kinds, provider error codes, HTTP methods and route *templates*
//! (`/api/v1/reports/{reference}`, never a reference itself).
//!
//! | series | type | labels |
//! | --- | --- | --- |
//! | `seva_inbound_total` | counter | `channel`, `type` |
//! | `seva_inbound_duplicates_total` | counter | `channel` |
//! | `seva_dialogue_steps_total` | counter | `journey` |
//! | `seva_messages_failed_total` | counter | `reason` |
//! | `seva_reports_filed_total` | counter | `kind`, `channel` |
//! | `seva_outbox_depth` | gauge | `channel`, `kind` (pending and sending rows) |
//! | `seva_outbox_oldest_age_seconds` | gauge | `channel`, `kind` (oldest pending or sending row) |
//! | `seva_outbox_dead` | gauge | `channel`, `kind` |
//! | `seva_outbox_sends_total` | counter | `channel`, `kind`, `outcome` |
//! | `seva_provider_errors_total` | counter | `channel`, `code` |
//! | `seva_http_requests_total` | counter | `method`, `route`, `status` |
//! | `seva_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `seva_http_requests_in_flight` | gauge | |
//! | `seva_officer_requests_total` | counter | `method`, `route`, `status` |
//! | `seva_draining` | gauge | |
//! | `seva_citizen_limited_total` | counter | `limit` (`messages`, `reports`) |
//! | `seva_officer_auth_throttled_total` | counter | |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use flows::delivery::SendOutcome;
use flows::message::{Body, Channel, MediaKind};
use flows::state::{Conversation, Step};

use crate::store::{OutboxKind, OutboxStatus, OutboxTally, Store, StoreError};

/// Label values, in the order of the family's label names.
type Key = Vec<String>;

struct Counter {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Key, u64>>,
}

impl Counter {
    const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Counter {
        Counter {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    fn add(&self, values: &[&str], n: u64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let key = values.iter().map(|v| (*v).to_owned()).collect();
        let mut map = lock(&self.values);
        *map.entry(key).or_insert(0) += n;
    }

    fn get(&self, values: &[&str]) -> u64 {
        let key: Key = values.iter().map(|v| (*v).to_owned()).collect();
        lock(&self.values).get(&key).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        for (key, value) in lock(&self.values).iter() {
            sample(out, self.name, self.labels, key, None, &value.to_string());
        }
    }
}

struct Gauge {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Key, f64>>,
}

impl Gauge {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Gauge {
        Gauge {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn set(&self, values: &[&str], value: f64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let key = values.iter().map(|v| (*v).to_owned()).collect();
        lock(&self.values).insert(key, value);
    }

    fn add(&self, values: &[&str], delta: f64) {
        let key = values.iter().map(|v| (*v).to_owned()).collect();
        *lock(&self.values).entry(key).or_insert(0.0) += delta;
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "gauge");
        for (key, value) in lock(&self.values).iter() {
            sample(out, self.name, self.labels, key, None, &number(*value));
        }
    }
}

#[derive(Default)]
struct Observations {
    /// Per bucket, not cumulative; one more for `+Inf`.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

struct Histogram {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    bounds: &'static [f64],
    values: Mutex<BTreeMap<Key, Observations>>,
}

impl Histogram {
    const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Histogram {
        Histogram {
            name,
            help,
            labels,
            bounds,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn observe(&self, values: &[&str], value: f64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let key = values.iter().map(|v| (*v).to_owned()).collect();
        let mut map = lock(&self.values);
        let obs = map.entry(key).or_insert_with(|| Observations {
            buckets: vec![0; self.bounds.len() + 1],
            ..Observations::default()
        });
        let slot = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        obs.buckets[slot] += 1;
        obs.sum += value;
        obs.count += 1;
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        let bucket = format!("{}_bucket", self.name);
        for (key, obs) in lock(&self.values).iter() {
            let mut cumulative = 0;
            for (i, n) in obs.buckets.iter().enumerate() {
                cumulative += n;
                let le = match self.bounds.get(i) {
                    Some(b) => number(*b),
                    None => "+Inf".to_owned(),
                };
                sample(
                    out,
                    &bucket,
                    self.labels,
                    key,
                    Some(&le),
                    &cumulative.to_string(),
                );
            }
            let sum = format!("{}_sum", self.name);
            sample(out, &sum, self.labels, key, None, &number(obs.sum));
            let count = format!("{}_count", self.name);
            sample(out, &count, self.labels, key, None, &obs.count.to_string());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a counter map that is still fine to read.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &[&str],
    values: &[String],
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    let mut pairs: Vec<(&str, &str)> = labels
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .collect();
    if let Some(le) = le {
        pairs.push(("le", le));
    }
    if !pairs.is_empty() {
        out.push('{');
        for (i, (label, value)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// Latency buckets in seconds: webhooks answer in milliseconds, officer listings may take
/// longer on a large database.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static INBOUND: Counter = Counter::new(
    "seva_inbound_total",
    "Inbound citizen messages stored, by channel and message type.",
    &["channel", "type"],
);
static DUPLICATES: Counter = Counter::new(
    "seva_inbound_duplicates_total",
    "Inbound messages redelivered by the provider and ignored as already stored.",
    &["channel"],
);
static STEPS: Counter = Counter::new(
    "seva_dialogue_steps_total",
    "Messages handled by the dialogue, by the journey the citizen was on.",
    &["journey"],
);
static FAILED: Counter = Counter::new(
    "seva_messages_failed_total",
    "Messages that could not be handled and were answered with an apology, by reason.",
    &["reason"],
);
static FILED: Counter = Counter::new(
    "seva_reports_filed_total",
    "Reports filed, by kind and the citizen's channel.",
    &["kind", "channel"],
);
static OUTBOX_DEPTH: Gauge = Gauge::new(
    "seva_outbox_depth",
    "Outbox rows not yet delivered (pending or sending), by channel and kind; refreshed at each scrape.",
    &["channel", "kind"],
);
static OUTBOX_AGE: Gauge = Gauge::new(
    "seva_outbox_oldest_age_seconds",
    "Age of the oldest undelivered (pending or sending) outbox row, by channel and kind; 0 when none.",
    &["channel", "kind"],
);
static OUTBOX_DEAD: Gauge = Gauge::new(
    "seva_outbox_dead",
    "Dead-letter outbox rows (see `seva outbox list --dead`), by channel and kind.",
    &["channel", "kind"],
);
static SENDS: Counter = Counter::new(
    "seva_outbox_sends_total",
    "Outbox send attempts by channel, kind and outcome (sent, retry_after, transient, permanent).",
    &["channel", "kind", "outcome"],
);
static PROVIDER_ERRORS: Counter = Counter::new(
    "seva_provider_errors_total",
    "Error answers from a provider (Graph API, Bot API, event receiver), by channel and code.",
    &["channel", "code"],
);
static HTTP_REQUESTS: Counter = Counter::new(
    "seva_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    &["method", "route", "status"],
);
static HTTP_LATENCY: Histogram = Histogram::new(
    "seva_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    &["method", "route"],
    &LATENCY_BUCKETS,
);
static HTTP_IN_FLIGHT: Gauge = Gauge::new(
    "seva_http_requests_in_flight",
    "HTTP requests being answered right now.",
    &[],
);
static OFFICER: Counter = Counter::new(
    "seva_officer_requests_total",
    "Officer API requests (/api/v1), by method, route template and status.",
    &["method", "route", "status"],
);
static DRAINING: Gauge = Gauge::new(
    "seva_draining",
    "1 while the process drains after SIGTERM (readiness answers 503), else 0.",
    &[],
);

static CITIZEN_LIMITED: Counter = Counter::new(
    "seva_citizen_limited_total",
    "Citizen messages held back (over SEVA_CITIZEN_MESSAGES_PER_MINUTE) and new reports refused \
     (over SEVA_CITIZEN_REPORTS_PER_DAY), by limit.",
    &["limit"],
);
static OFFICER_AUTH_THROTTLED: Counter = Counter::new(
    "seva_officer_auth_throttled_total",
    "Officer API requests refused with 429 because their address sent too many wrong tokens.",
    &[],
);

/// Every channel, for gauges that must say 0 when a channel has nothing.
const CHANNELS: [Channel; 4] = [
    Channel::Whatsapp,
    Channel::Telegram,
    Channel::Terminal,
    Channel::Events,
];

const OUTBOX_KINDS: [OutboxKind; 4] = [
    OutboxKind::Reply,
    OutboxKind::Push,
    OutboxKind::Alert,
    OutboxKind::Event,
];

/// The text exposition of every series.
pub fn render() -> String {
    let mut out = String::with_capacity(8 * 1024);
    INBOUND.render(&mut out);
    DUPLICATES.render(&mut out);
    STEPS.render(&mut out);
    FAILED.render(&mut out);
    FILED.render(&mut out);
    OUTBOX_DEPTH.render(&mut out);
    OUTBOX_AGE.render(&mut out);
    OUTBOX_DEAD.render(&mut out);
    SENDS.render(&mut out);
    PROVIDER_ERRORS.render(&mut out);
    HTTP_REQUESTS.render(&mut out);
    HTTP_LATENCY.render(&mut out);
    HTTP_IN_FLIGHT.render(&mut out);
    OFFICER.render(&mut out);
    DRAINING.render(&mut out);
    CITIZEN_LIMITED.render(&mut out);
    OFFICER_AUTH_THROTTLED.render(&mut out);
    out
}

/// The `type` label of an inbound message.
pub fn body_type(body: &Body) -> &'static str {
    match body {
        Body::Text { .. } => "text",
        Body::Choice { .. } => "choice",
        Body::Location { .. } => "location",
        Body::Contact { .. } => "contact",
        Body::Media { kind, .. } => match kind {
            MediaKind::Photo => "photo",
            MediaKind::Document => "document",
            MediaKind::Voice => "voice",
            MediaKind::Video => "video",
            MediaKind::Sticker => "sticker",
        },
        Body::Unsupported { .. } => "unsupported",
    }
}

/// A new inbound message was stored.
pub fn inbound(channel: Channel, body: &Body) {
    INBOUND.inc(&[channel.as_str(), body_type(body)]);
}

/// A provider redelivered a message already stored.
pub fn duplicate(channel: Channel) {
    DUPLICATES.inc(&[channel.as_str()]);
}

/// The journey a conversation is on: a report journey by its kind (`complaint`, `lost`,
/// `found`), or `language`, `status`, `delete`, `resume`, `menu`.
pub fn journey_of(state: &Conversation) -> &'static str {
    if let Some(draft) = &state.draft
        && state.in_journey()
    {
        return draft.kind.as_str();
    }
    match state.step {
        Step::Language { .. } => "language",
        Step::StatusAsk => "status",
        Step::DeleteConfirm => "delete",
        Step::ResumeOffer { .. } => "resume",
        Step::New | Step::Menu | Step::Ask { .. } | Step::Review | Step::EditPick => "menu",
    }
}

/// The journey one dialogue step belongs to: where it left the citizen, or, for the step
/// that ended a journey (filed, cancelled), the journey it ended.
pub fn journey(before: &Conversation, after: &Conversation) -> &'static str {
    match journey_of(after) {
        "menu" => match journey_of(before) {
            j @ ("complaint" | "lost" | "found" | "status" | "delete") => j,
            _ => "menu",
        },
        j => j,
    }
}

/// One message went through the dialogue.
pub fn dialogue_step(journey: &str) {
    STEPS.inc(&[journey]);
}

/// A message could not be handled (`reason`: store, payload, engine_panic, …).
pub fn message_failed(reason: &str) {
    FAILED.inc(&[reason]);
}

/// A new report was filed (not a repeated "confirm").
pub fn report_filed(kind: &str, channel: Channel) {
    FILED.inc(&[kind, channel.as_str()]);
}

/// A citizen hit a limit (`messages` or `reports`, see `crate::limits`).
pub fn citizen_limited(limit: &'static str) {
    CITIZEN_LIMITED.inc(&[limit]);
}

/// An officer API request was refused for too many wrong tokens from its address.
pub fn officer_auth_throttled() {
    OFFICER_AUTH_THROTTLED.inc(&[]);
}

/// The dispatcher recorded an attempt's outcome.
pub fn outbox_send(channel: Channel, kind: OutboxKind, outcome: &SendOutcome) {
    let label = match outcome {
        SendOutcome::Sent { .. } => "sent",
        SendOutcome::RetryAfter { .. } => "retry_after",
        SendOutcome::Transient { .. } => "transient",
        SendOutcome::Permanent { .. } => "permanent",
    };
    SENDS.inc(&[channel.as_str(), kind.as_str(), label]);
}

/// A provider answered a send with an error: counted by its code.
pub fn provider_error(channel: Channel, code: &str) {
    PROVIDER_ERRORS.inc(&[channel.as_str(), &clip_code(code)]);
}

/// What the provider answered to one call; errors are counted by [`provider_code`].
pub fn provider_outcome(channel: Channel, outcome: &SendOutcome) {
    if let Some(code) = provider_code(channel, outcome) {
        provider_error(channel, &code);
    }
}

/// The error code of a provider's answer: the code the classifier kept (`190`, `131026`,
/// `403`, `http_400`, …); `429` for Telegram's and the event receiver's "retry after" and
/// `throttled` for the Graph API's throttling codes; for a transient failure, Meta's `(#code)`
/// or the HTTP status when the reason names one, else `transient`. `None` for a success.
pub fn provider_code(channel: Channel, outcome: &SendOutcome) -> Option<String> {
    match outcome {
        SendOutcome::Sent { .. } => None,
        SendOutcome::Permanent { code, .. } => Some(code.clone()),
        SendOutcome::RetryAfter { .. } => Some(match channel {
            Channel::Whatsapp => "throttled".to_owned(),
            _ => "429".to_owned(),
        }),
        SendOutcome::Transient { reason } => Some(
            meta_code(reason)
                .or_else(|| http_status(reason))
                .unwrap_or_else(|| "transient".to_owned()),
        ),
    }
}

/// `(#131000) Something went wrong` → `131000`.
fn meta_code(reason: &str) -> Option<String> {
    let start = reason.find("(#")? + 2;
    let digits: String = reason[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty() && reason[start + digits.len()..].starts_with(')')).then_some(digits)
}

/// `… HTTP 503` or `409 conflict` → the status.
fn http_status(reason: &str) -> Option<String> {
    let after_http = reason.find("HTTP ").map(|i| &reason[i + 5..]);
    let candidate = after_http.unwrap_or(reason);
    let digits: String = candidate.chars().take_while(char::is_ascii_digit).collect();
    let standalone = candidate[digits.len()..]
        .chars()
        .next()
        .is_none_or(|c| !c.is_ascii_alphanumeric());
    (digits.len() == 3 && standalone).then_some(digits)
}

/// Codes come from classifiers with bounded vocabularies; this only guards the label.
fn clip_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(32)
        .collect()
}

/// An HTTP request was answered.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let status = status.to_string();
    HTTP_REQUESTS.inc(&[method, route, &status]);
    HTTP_LATENCY.observe(&[method, route], elapsed.as_secs_f64());
    if route.starts_with("/api/v1/") {
        OFFICER.inc(&[method, route, &status]);
    }
}

/// One more (or one fewer) request in flight.
pub fn http_in_flight(delta: f64) {
    HTTP_IN_FLIGHT.add(&[], delta);
}

/// Draining started (or, for a fresh server, has not).
pub fn set_draining(draining: bool) {
    DRAINING.set(&[], if draining { 1.0 } else { 0.0 });
}

/// One channel's and kind's outbox figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxFigures {
    pub depth: u64,
    pub dead: u64,
    pub oldest_created_at: Option<i64>,
}

/// The outbox gauges from the store's counts.
pub async fn refresh_outbox(store: &Store, now: i64) -> Result<(), StoreError> {
    let tallies = store.outbox_tallies().await?;
    set_outbox(&outbox_figures(&tallies), now);
    Ok(())
}

/// Figures per channel and kind, every pair present (a drained queue must read 0, not vanish).
pub fn outbox_figures(tallies: &[OutboxTally]) -> Vec<(Channel, OutboxKind, OutboxFigures)> {
    let mut out = Vec::with_capacity(CHANNELS.len() * OUTBOX_KINDS.len());
    for channel in CHANNELS {
        for kind in OUTBOX_KINDS {
            let mut f = OutboxFigures::default();
            for t in tallies
                .iter()
                .filter(|t| t.channel == channel && t.kind == kind)
            {
                match t.status {
                    OutboxStatus::Pending | OutboxStatus::Sending => {
                        f.depth += t.count;
                        f.oldest_created_at = Some(
                            f.oldest_created_at
                                .map_or(t.oldest_created_at, |o| o.min(t.oldest_created_at)),
                        );
                    }
                    OutboxStatus::Dead => f.dead += t.count,
                    OutboxStatus::Sent => {}
                }
            }
            out.push((channel, kind, f));
        }
    }
    out
}

fn set_outbox(figures: &[(Channel, OutboxKind, OutboxFigures)], now: i64) {
    for (channel, kind, f) in figures {
        let labels = [channel.as_str(), kind.as_str()];
        OUTBOX_DEPTH.set(&labels, f.depth as f64);
        OUTBOX_DEAD.set(&labels, f.dead as f64);
        let age = f.oldest_created_at.map_or(0, |t| (now - t).max(0));
        OUTBOX_AGE.set(&labels, age as f64);
    }
}

/// A counter's value, for tests.
pub fn counter(name: &str, labels: &[&str]) -> u64 {
    let family = [
        &INBOUND,
        &DUPLICATES,
        &STEPS,
        &FAILED,
        &FILED,
        &SENDS,
        &PROVIDER_ERRORS,
        &HTTP_REQUESTS,
        &OFFICER,
    ]
    .into_iter()
    .find(|c| c.name == name);
    family.map_or(0, |c| c.get(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets_with_sum_and_count() {
        static H: Histogram = Histogram::new("t_seconds", "help", &["route"], &[0.1, 1.0]);
        H.observe(&["/a"], 0.05);
        H.observe(&["/a"], 0.5);
        H.observe(&["/a"], 3.0);
        let mut out = String::new();
        H.render(&mut out);
        assert!(out.contains("# TYPE t_seconds histogram\n"), "{out}");
        assert!(
            out.contains("t_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("t_seconds_sum{route=\"/a\"} 3.55\n"), "{out}");
        assert!(out.contains("t_seconds_count{route=\"/a\"} 3\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        static C: Counter = Counter::new("t_total", "help", &["x"]);
        C.inc(&["a\"b\\c\nd"]);
        let mut out = String::new();
        C.render(&mut out);
        assert!(out.contains("t_total{x=\"a\\\"b\\\\c\\nd\"} 1\n"), "{out}");
    }

    #[test]
    fn provider_codes_come_from_the_classified_answer() {
        let permanent = |code: &str| SendOutcome::Permanent {
            code: code.to_owned(),
            reason: String::new(),
        };
        let transient = |reason: &str| SendOutcome::Transient {
            reason: reason.to_owned(),
        };
        let wa = Channel::Whatsapp;
        let tg = Channel::Telegram;
        assert_eq!(provider_code(wa, &permanent("190")).as_deref(), Some("190"));
        assert_eq!(provider_code(tg, &permanent("403")).as_deref(), Some("403"));
        let wait = SendOutcome::RetryAfter { secs: 3 };
        assert_eq!(provider_code(tg, &wait).as_deref(), Some("429"));
        assert_eq!(provider_code(wa, &wait).as_deref(), Some("throttled"));
        let meta = transient("(#131000) Something went wrong — details");
        assert_eq!(provider_code(wa, &meta).as_deref(), Some("131000"));
        assert_eq!(
            provider_code(Channel::Events, &transient("receiver answered HTTP 503")).as_deref(),
            Some("503")
        );
        assert_eq!(
            provider_code(tg, &transient("409 conflict")).as_deref(),
            Some("409")
        );
        assert_eq!(
            provider_code(wa, &transient("connection failed")).as_deref(),
            Some("transient")
        );
        let sent = SendOutcome::Sent {
            provider_id: "x".into(),
        };
        assert_eq!(provider_code(wa, &sent), None);
    }

    #[test]
    fn a_step_that_ends_a_journey_counts_for_that_journey() {
        use flows::reference::ReportKind;
        use flows::state::{Draft, Field};
        let menu = Conversation {
            step: Step::Menu,
            ..Conversation::default()
        };
        let asking = Conversation {
            step: Step::Ask {
                field: Field::Description,
                page: 0,
                editing: false,
            },
            draft: Some(Draft::new("d".into(), ReportKind::Lost)),
            ..Conversation::default()
        };
        assert_eq!(journey(&menu, &asking), "lost");
        assert_eq!(journey(&asking, &menu), "lost");
        assert_eq!(journey(&menu, &menu), "menu");
        let status = Conversation {
            step: Step::StatusAsk,
            ..Conversation::default()
        };
        assert_eq!(journey(&menu, &status), "status");
        assert_eq!(journey(&status, &menu), "status");
    }
}

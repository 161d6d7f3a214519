//! The closed loop: N virtual citizens, each sending its next message only after every reply
//! to the previous one reached the fake provider API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::sync::mpsc;

use crate::fake::{Arrival, Routes};
use crate::journeys::{self, Journey, Kind};
use crate::target::{APP_SECRET, PHONE_NUMBER_ID, WEBHOOK_SECRET};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Whatsapp,
    /// Telegram updates POSTed to the target's webhook.
    Telegram,
    /// The same updates, fetched by the target with `getUpdates` long polling from the fake
    /// (Seva's mode when `TELEGRAM_WEBHOOK_URL` is unset: the README's way to run it).
    TelegramPolling,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Telegram => "telegram",
            Channel::TelegramPolling => "telegram-polling",
        }
    }

    /// Whether a citizen's message goes out as a webhook POST (which the target answers).
    pub fn is_webhook(self) -> bool {
        self != Channel::TelegramPolling
    }
}

/// Delivers citizens' messages to a target as the provider would: POSTed to its webhook, or
/// queued at the fake for its `getUpdates`.
pub struct Driver {
    pub channel: Channel,
    url: String,
    http: reqwest::Client,
    pub routes: Arc<Routes>,
    next_message: AtomicU64,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Driver {
    pub fn new(
        channel: Channel,
        base: &str,
        routes: Arc<Routes>,
        timeout: Duration,
    ) -> Result<Driver, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .pool_max_idle_per_host(4096)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        let path = match channel {
            Channel::Whatsapp => "/webhook/whatsapp",
            Channel::Telegram | Channel::TelegramPolling => "/webhook/telegram",
        };
        if channel == Channel::TelegramPolling {
            routes.clear_updates();
        }
        Ok(Driver {
            channel,
            url: format!("{base}{path}"),
            http,
            routes,
            next_message: AtomicU64::new(1),
        })
    }

    /// The provider's recipient for citizen `id`: a wa_id or a Telegram chat id.
    pub fn recipient(&self, id: u64) -> String {
        match self.channel {
            Channel::Whatsapp => format!("91{}", 7_000_000_000 + id),
            Channel::Telegram | Channel::TelegramPolling => (1_000_000 + id).to_string(),
        }
    }

    /// The webhook request body for one typed message.
    pub fn body(&self, id: u64, text: &str) -> Vec<u8> {
        let n = self.next_message.fetch_add(1, Ordering::Relaxed);
        let value = match self.channel {
            Channel::Whatsapp => {
                let wa_id = self.recipient(id);
                json!({
                    "object": "whatsapp_business_account",
                    "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
                        "messaging_product": "whatsapp",
                        "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
                        "contacts": [{ "profile": { "name": "Citizen" }, "wa_id": wa_id }],
                        "messages": [{ "from": wa_id, "id": format!("wamid.LOADIN{n:016X}"),
                            "timestamp": unix_now().to_string(), "type": "text", "text": { "body": text } }],
                    }}]}],
                })
            }
            Channel::Telegram | Channel::TelegramPolling => telegram_update(n, id, text),
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// Sends one message as the provider would: POSTed (signed, or with the webhook secret),
    /// `Ok` on a 2xx answer; or, for long polling, queued for the target's next `getUpdates`.
    pub async fn post(&self, id: u64, text: &str) -> Result<(), String> {
        if self.channel == Channel::TelegramPolling {
            self.routes
                .push_update(|update_id| telegram_update(update_id, id, text).to_string());
            return Ok(());
        }
        let body = self.body(id, text);
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json");
        request = match self.channel {
            Channel::Whatsapp => request.header(
                "x-hub-signature-256",
                webhook::signature::sign(APP_SECRET.as_bytes(), &body),
            ),
            Channel::Telegram | Channel::TelegramPolling => {
                request.header("x-telegram-bot-api-secret-token", WEBHOOK_SECRET)
            }
        };
        let response = request.body(body).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let _ = response.bytes().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {status}"))
        }
    }
}

/// A Telegram update: citizen `id` typed `text` in their private chat with the bot.
fn telegram_update(update_id: u64, id: u64, text: &str) -> serde_json::Value {
    let user = 1_000_000 + id;
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": unix_now(),
            "from": { "id": user, "is_bot": false, "first_name": "Citizen", "language_code": "en" },
            "chat": { "id": user, "type": "private", "first_name": "Citizen" },
            "text": text,
        }
    })
}

/// The text typed for a step: the script's, or the reference the complaint received.
fn typed<'a>(step: &'a str, reference: Option<&'a str>) -> &'a str {
    if step == journeys::REFERENCE {
        reference.unwrap_or(journeys::PLACEHOLDER_REFERENCE)
    } else {
        step
    }
}

/// Whether a journey reached its end: a report reference for complaints and lost items, the
/// reference's status for a status check.
fn journey_outcome(kind: Kind, last: &[String], reference: Option<&str>) -> (bool, Option<String>) {
    let found = last.iter().find_map(|t| journeys::find_reference(t));
    match kind {
        Kind::Complaint | Kind::Lost => (found.is_some(), found),
        Kind::Status => (
            reference.is_some_and(|r| last.iter().any(|t| t.contains(r))),
            None,
        ),
    }
}

/// One citizen through a cycle slowly, counting the replies to each step (the count is
/// complete once no reply came for `quiet`). Fails when a journey does not complete.
pub async fn calibrate(
    driver: &Driver,
    id: u64,
    quiet: Duration,
    verbose: bool,
) -> Result<Vec<Journey>, String> {
    let mut plan = journeys::cycle();
    let recipient = driver.recipient(id);
    let mut rx = driver.routes.register(&recipient);
    let mut reference: Option<String> = None;
    let mut transcript = String::new();
    for journey in &mut plan {
        let mut last = Vec::new();
        for (i, step) in journey.steps.iter().enumerate() {
            let text = typed(step, reference.as_deref());
            transcript.push_str(&format!("> {text}\n"));
            driver.post(id, text).await?;
            let first = tokio::time::timeout(Duration::from_secs(15), rx.recv())
                .await
                .ok()
                .flatten()
                .ok_or_else(|| format!("no reply to {text:?}; so far:\n{transcript}"))?;
            let mut texts = vec![first.text];
            while let Ok(Some(more)) = tokio::time::timeout(quiet, rx.recv()).await {
                texts.push(more.text);
            }
            for t in &texts {
                transcript.push_str(&format!("< {}\n", t.replace('\n', "\n< ")));
            }
            journey.replies[i] = texts.len();
            last = texts;
        }
        let (ok, found) = journey_outcome(journey.kind, &last, reference.as_deref());
        if !ok {
            driver.routes.unregister(&recipient);
            return Err(format!(
                "the {} journey did not complete:\n{transcript}",
                journey.kind.as_str()
            ));
        }
        if journey.kind == Kind::Complaint {
            reference = found;
        }
    }
    driver.routes.unregister(&recipient);
    if verbose {
        eprintln!(
            "calibration transcript ({}):\n{transcript}",
            driver.channel.as_str()
        );
    }
    Ok(plan)
}

/// What the load does.
pub struct LoadSpec {
    pub citizens: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    /// A pause after each step's replies (0: as fast as the target answers).
    pub think: Duration,
    /// Check that journeys really end in a reference (off for the echo gateway).
    pub check_outcomes: bool,
    /// Identities start here (distinct per run against the same database).
    pub first_identity: u64,
    /// One message per identity (see `--first-contact-only`).
    pub first_contact_only: bool,
}

/// What a load run measured (over the measurement window, after the warm-up).
#[derive(Debug, Default, Clone)]
pub struct Measured {
    pub window: Duration,
    /// Replies that reached the fake in the window.
    pub replies: u64,
    /// Webhook POST sent → last reply of that step at the fake, for steps inside the window.
    pub latencies_us: Vec<u32>,
    /// Webhook POST sent → its 2xx answer.
    pub ack_us: Vec<u32>,
    /// Non-2xx answers and failed requests (whole run).
    pub errors: u64,
    /// Steps whose replies did not all come within the timeout (whole run).
    pub timeouts: u64,
    /// Replies beyond those expected (whole run).
    pub unexpected: u64,
    /// Journeys completed in the window: complaint, lost item, status check.
    pub journeys: [u64; 3],
    /// Journeys that ended without their reference (whole run).
    pub failed_journeys: u64,
    pub first_error: Option<String>,
}

impl Measured {
    fn merge(&mut self, other: Measured) {
        self.replies += other.replies;
        self.latencies_us.extend(other.latencies_us);
        self.ack_us.extend(other.ack_us);
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.unexpected += other.unexpected;
        for (a, b) in self.journeys.iter_mut().zip(other.journeys) {
            *a += b;
        }
        self.failed_journeys += other.failed_journeys;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn replies_per_sec(&self) -> f64 {
        self.replies as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

struct Window {
    from: Instant,
    to: Instant,
    stop: AtomicBool,
    next_identity: AtomicU64,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.from && t <= self.to
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.to
    }
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// Waits for `n` replies; the arrival time of the last, or `None` on timeout.
async fn replies(
    rx: &mut mpsc::UnboundedReceiver<Arrival>,
    n: usize,
    deadline: tokio::time::Instant,
    window: &Window,
    local: &mut Measured,
    texts: &mut Vec<String>,
) -> Option<Instant> {
    let mut last = None;
    for _ in 0..n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(a)) => {
                if window.contains(a.at) {
                    local.replies += 1;
                }
                last = Some(a.at);
                texts.push(a.text);
            }
            _ => return None,
        }
    }
    last
}

async fn citizen(
    driver: Arc<Driver>,
    plan: Arc<Vec<Journey>>,
    spec: Arc<LoadSpec>,
    window: Arc<Window>,
) -> Measured {
    let mut local = Measured::default();
    while !window.stopping() {
        let id = window.next_identity.fetch_add(1, Ordering::Relaxed);
        let recipient = driver.recipient(id);
        let mut rx = driver.routes.register(&recipient);
        let mut reference: Option<String> = None;
        'cycle: for journey in plan.iter() {
            let mut texts = Vec::new();
            for (step, expected) in journey.steps.iter().zip(&journey.replies) {
                if window.stopping() {
                    break 'cycle;
                }
                while rx.try_recv().is_ok() {
                    local.unexpected += 1;
                }
                let text = typed(step, reference.as_deref());
                let t0 = Instant::now();
                if let Err(e) = driver.post(id, text).await {
                    local.errors += 1;
                    local.first_error.get_or_insert(e);
                    break 'cycle;
                }
                let acked = Instant::now();
                if window.contains(t0) && driver.channel.is_webhook() {
                    local.ack_us.push(micros(acked - t0));
                }
                texts.clear();
                let deadline = tokio::time::Instant::from_std(t0 + spec.timeout);
                let Some(last) = replies(
                    &mut rx, *expected, deadline, &window, &mut local, &mut texts,
                )
                .await
                else {
                    local.timeouts += 1;
                    break 'cycle;
                };
                if window.contains(t0) && window.contains(last) {
                    local
                        .latencies_us
                        .push(micros(last.saturating_duration_since(t0)));
                }
                if !spec.think.is_zero() {
                    tokio::time::sleep(spec.think).await;
                }
                if spec.first_contact_only {
                    break 'cycle;
                }
            }
            let (ok, found) = if spec.check_outcomes {
                journey_outcome(journey.kind, &texts, reference.as_deref())
            } else {
                (true, Some(journeys::PLACEHOLDER_REFERENCE.to_owned()))
            };
            if !ok {
                local.failed_journeys += 1;
                break;
            }
            if journey.kind == Kind::Complaint {
                reference = found;
            }
            if window.contains(Instant::now()) {
                let slot = match journey.kind {
                    Kind::Complaint => 0,
                    Kind::Lost => 1,
                    Kind::Status => 2,
                };
                local.journeys[slot] += 1;
            }
        }
        driver.routes.unregister(&recipient);
    }
    local
}

/// Runs the load: `spec.citizens` citizens for warm-up + duration, then waits for those
/// mid-step (at most the step timeout).
pub async fn run(driver: Arc<Driver>, plan: Vec<Journey>, spec: LoadSpec) -> Measured {
    let start = Instant::now();
    let window = Arc::new(Window {
        from: start + spec.warmup,
        to: start + spec.warmup + spec.duration,
        stop: AtomicBool::new(false),
        next_identity: AtomicU64::new(spec.first_identity),
    });
    let plan = Arc::new(plan);
    let spec = Arc::new(spec);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..spec.citizens {
        tasks.spawn(citizen(
            driver.clone(),
            plan.clone(),
            spec.clone(),
            window.clone(),
        ));
    }
    let mut total = Measured {
        window: spec.duration,
        ..Default::default()
    };
    while let Some(done) = tasks.join_next().await {
        if let Ok(m) = done {
            total.merge(m);
        }
    }
    window.stop.store(true, Ordering::Relaxed);
    total
}

/// The `p`-th percentile (0–100) of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_values() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 51);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[], 99.0), 0);
    }

    #[test]
    fn webhook_bodies_are_signed_payloads_seva_can_parse() {
        let routes = Arc::new(Routes::default());
        let wa = Driver::new(
            Channel::Whatsapp,
            "http://127.0.0.1:9",
            routes.clone(),
            Duration::from_secs(1),
        )
        .unwrap();
        let body = wa.body(7, "hello");
        let parsed = webhook::parse(&body).unwrap();
        assert_eq!(parsed.messages.len(), 1);
        assert_eq!(parsed.messages[0].sender, "917000000007");
        let tg = Driver::new(
            Channel::Telegram,
            "http://127.0.0.1:9",
            routes,
            Duration::from_secs(1),
        )
        .unwrap();
        let update: serde_json::Value = serde_json::from_slice(&tg.body(7, "hi")).unwrap();
        assert_eq!(update["message"]["chat"]["id"], 1_000_007);
    }

    #[test]
    fn outcomes_need_the_reference() {
        let filed = vec!["Reference number: C-7K3Q-9XM4-R".to_owned()];
        assert_eq!(
            journey_outcome(Kind::Complaint, &filed, None),
            (true, Some("C-7K3Q-9XM4-R".to_owned()))
        );
        assert!(journey_outcome(Kind::Status, &filed, Some("C-7K3Q-9XM4-R")).0);
        assert!(!journey_outcome(Kind::Status, &filed, Some("L-7K3Q-9XM4-R")).0);
    }
}

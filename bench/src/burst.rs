//! `seva-load burst`: a fan-out of status pushes (as a batch of officers' status changes
//! writes them) drains through Seva's outbox at the configured Telegram rate while virtual
//! citizens keep talking to it. Reports the drain's rate as a ratio to the configured one, the
//! busiest second, and the citizens' reply latency during the drain: the two lanes' promise
//! that replies are never stuck behind bulk pushes, measured.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flows::Lang;
use flows::delivery::OutboxContent;
use flows::message::Channel as SevaChannel;
use flows::reply::{Reply, Text};
use serde::Serialize;
use seva::store::{NewOutbox, OutboxKind, Store};

use crate::fake::Fake;
use crate::load::{self, Channel, Driver, LoadSpec, percentile};
use crate::target::{self, SevaOptions, Target};

/// Chat ids of the burst's recipients (far from the virtual citizens' ids).
const FIRST_CHAT: i64 = 8_000_000_000;

/// What `seva-load burst` is told.
pub struct BurstSpec {
    pub seva: PathBuf,
    pub stations: PathBuf,
    /// `sqlite` or a PostgreSQL server URL.
    pub database: String,
    pub pushes: usize,
    /// `SEVA_TELEGRAM_MPS` for the run.
    pub mps: u32,
    pub citizens: usize,
    pub pin: Option<String>,
    pub timeout: Duration,
}

/// What one burst measured.
#[derive(Debug, Serialize)]
pub struct BurstReport {
    pub database: String,
    pub pushes: usize,
    pub delivered: usize,
    pub configured_mps: u32,
    /// Pushes and replies per second over the drain, first push to last.
    pub sends_per_sec: f64,
    /// `sends_per_sec` / `configured_mps`.
    pub ratio_to_configured: f64,
    /// The most sends (pushes and replies) in any one second of the drain.
    pub busiest_second: usize,
    pub drain_secs: f64,
    pub replies: u64,
    pub reply_p50_ms: f64,
    pub reply_p99_ms: f64,
    pub reply_max_ms: f64,
    pub timeouts: u64,
    pub errors: u64,
}

pub async fn run(spec: BurstSpec, tmp: &std::path::Path) -> Result<BurstReport, String> {
    let fake = Fake::start().await.map_err(|e| e.to_string())?;
    let mut pg = None;
    let url = if spec.database == "sqlite" {
        format!("sqlite://{}", tmp.join("burst/seva.db").display())
    } else {
        let name = format!("seva_burst_{}", std::process::id());
        let url = target::create_postgres_db(&spec.database, &name)?;
        pg = Some(name);
        url
    };
    let result = drain(&spec, &fake, &url, tmp).await;
    if let Some(name) = pg {
        target::drop_postgres_db(&spec.database, &name);
    }
    result
}

async fn drain(
    spec: &BurstSpec,
    fake: &Fake,
    url: &str,
    tmp: &std::path::Path,
) -> Result<BurstReport, String> {
    let listen = target::free_port().map_err(|e| e.to_string())?;
    let media = tmp.join("burst/media");
    let opts = SevaOptions {
        binary: &spec.seva,
        database_url: url,
        stations_csv: &spec.stations,
        media_dir: &media,
        graph_url: fake.graph_url(),
        telegram_url: fake.telegram_url(),
        telegram_polling: false,
        rust_log: None,
    };
    let mut spawn = opts.spawn(listen, spec.pin.clone(), tmp.join("burst.log"));
    // The provider's overall pace at the setting under test; per chat, no limit (each push
    // goes to a different chat, and the citizens must not be slowed by their own pacing).
    for (key, value) in &mut spawn.env {
        if key == "SEVA_TELEGRAM_MPS" {
            *value = spec.mps.to_string();
        }
    }
    let target = Target::start(spawn).await?;
    let driver = Arc::new(Driver::new(
        Channel::Telegram,
        &format!("http://{}", target.addr),
        fake.routes.clone(),
        spec.timeout,
    )?);
    let plan = load::calibrate(&driver, 1, Duration::from_millis(250), false).await?;

    let store = Store::connect(url).await.map_err(|e| e.to_string())?;
    let content = OutboxContent::reply(Reply::text(Text::new("cmd-help")));
    let content = serde_json::to_string(&content).map_err(|e| e.to_string())?;
    let rows: Vec<NewOutbox> = (0..spec.pushes as i64)
        .map(|i| NewOutbox {
            citizen_id: None,
            channel: SevaChannel::Telegram,
            recipient: (FIRST_CHAT + i).to_string(),
            kind: OutboxKind::Push,
            content: content.clone(),
            lang: Some(Lang::Hi),
        })
        .collect();

    // The citizens talk from before the burst until after it has drained.
    let expected = Duration::from_secs_f64(spec.pushes as f64 / f64::from(spec.mps.max(1)));
    let load_spec = LoadSpec {
        citizens: spec.citizens,
        warmup: Duration::ZERO,
        duration: expected + Duration::from_secs(2),
        timeout: spec.timeout,
        think: Duration::ZERO,
        check_outcomes: true,
        first_identity: 1_000,
        first_contact_only: false,
    };
    let load_started = Instant::now();
    let load_ends = load_started + load_spec.duration;
    let citizens = tokio::spawn(load::run(driver, plan, load_spec));
    tokio::time::sleep(Duration::from_millis(500)).await;
    fake.routes.time_strays();
    let now = load::unix_now() as i64;
    store
        .enqueue_all(&rows, now)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    let deadline = Instant::now() + expected * 3 + Duration::from_secs(10);
    while fake.routes.stray_times().len() < spec.pushes && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let measured = citizens.await.map_err(|e| e.to_string())?;
    target.stop().await;

    let mut pushes = fake.routes.stray_times();
    pushes.sort();
    let (first, last) = match (pushes.first(), pushes.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => return Err("no push arrived".to_owned()),
    };
    // Replies share the provider's pace: those sent while the drain ran, at the citizens'
    // mean rate over the part of the drain they were talking in.
    let talking = last
        .min(load_ends)
        .saturating_duration_since(first.max(load_started));
    let replies_in_drain =
        measured.replies as f64 * talking.as_secs_f64() / measured.window.as_secs_f64().max(1e-9);
    let drain_secs = (last - first).as_secs_f64().max(1e-9);
    let sends_per_sec = (pushes.len() as f64 - 1.0 + replies_in_drain) / drain_secs;
    let mut lat = measured.latencies_us.clone();
    lat.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    Ok(BurstReport {
        database: spec.database.clone(),
        pushes: spec.pushes,
        delivered: pushes.len(),
        configured_mps: spec.mps,
        sends_per_sec,
        ratio_to_configured: sends_per_sec / f64::from(spec.mps.max(1)),
        busiest_second: busiest_second(&pushes),
        drain_secs,
        replies: measured.replies,
        reply_p50_ms: ms(percentile(&lat, 50.0)),
        reply_p99_ms: ms(percentile(&lat, 99.0)),
        reply_max_ms: ms(lat.last().copied().unwrap_or(0)),
        timeouts: measured.timeouts,
        errors: measured.errors,
    })
}

/// The most arrivals in any one-second window of sorted `times`.
pub fn busiest_second(times: &[Instant]) -> usize {
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_second_counts_a_sliding_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [
            at(0),
            at(10),
            at(20),
            at(1500),
            at(1600),
            at(1700),
            at(1800),
            at(2400),
        ];
        assert_eq!(
            busiest_second(&times),
            5,
            "1500..2499 holds five, 0..999 three"
        );
        assert_eq!(busiest_second(&[]), 0);
    }
}

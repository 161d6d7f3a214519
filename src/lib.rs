//! Seva: police citizen services on Telegram and WhatsApp, in Hindi and English.
//!
//! Adapters translate; the engine (`flows`) decides; the store remembers; the outbox delivers.
//!
//! * [`config`] — settings from the environment and `SEVA_CONFIG`; secrets print as `***`.
//! * [`lifecycle`] — which report status may follow which, and what each change needs.
//! * [`stations`] — the district and station directory from `SEVA_STATIONS_CSV`.
//! * [`store`] — every SQL statement: citizens, inbox, conversations, reports, outbox.
//! * [`runtime`] — the inbound path: accept (transaction 1), process (transaction 2), sweep.
//! * [`outbox`] — the dispatcher and the [`outbox::ChannelSender`] trait channels implement.
//! * [`channels`] — the channel adapters wired to the runtime: sinks, senders, routes, tasks.
//! * [`chat`] — `seva chat`, the terminal channel.
//! * [`limits`] — per-citizen abuse limits (messages per minute, reports per day);
//!   [`client_ip`] — the client address behind trusted proxies.
//! * [`officer`] — the officer API under `/api/v1`, its tokens, audit log and shell commands.
//! * [`http`] — the HTTP routes `/healthz`, `/readyz` and `/metrics`, and the layer that
//!   measures every route (webhooks and the officer API merge in).
//! * [`metrics`] — the Prometheus series; [`drain`] — background work shutdown waits for.
//! * [`privacy`] — the retention job (idle drafts, old payloads), `seva report purge`, and
//!   the pseudonyms of anonymous tips.
//! * [`cli`] — the `seva` command line.
//! * [`clock`], [`logging`] — the injectable clock; log setup.

pub mod channels;
pub mod chat;
pub mod cli;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod drain;
pub mod http;
pub mod lifecycle;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod officer;
pub mod outbox;
pub mod privacy;
pub mod runtime;
pub mod stations;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flows::message::Channel;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::outbox::{ChannelSender, Dispatcher};
use crate::runtime::Runtime;
use crate::store::Store;

/// How often `serve` looks for messages stored but not processed (a failed or crashed turn).
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Anything that stops a `seva` command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("stations: {0}")]
    Stations(#[from] stations::StationsError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

/// The channel senders `config` enables; the terminal channel is delivered by `seva chat`
/// itself, not by `serve`.
pub fn senders(config: &Config) -> Vec<Arc<dyn ChannelSender>> {
    channels::senders(config)
}

/// `seva serve`: the HTTP server on `listener`, the outbox dispatcher, the sweeper and the
/// retention job ([`privacy::run`]), until
/// `shutdown` resolves; then drains within `SEVA_SHUTDOWN_GRACE`:
///
/// 1. `/readyz` answers 503 — for `SEVA_DRAIN_DELAY` if something has probed it (a load
///    balancer), while everything else is still served;
/// 2. the listener closes; requests in flight are answered; background tasks stop (the
///    dispatcher after its current round, the sweeper between sweeps, Telegram polling);
/// 3. the citizens' turns those requests started are finished;
/// 4. the database is closed. Whatever is still running when the grace period is over is
///    abandoned (its transaction rolls back; the next start picks it up) and `Ok` returned.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let senders = senders(&config);
    run_with(config, listener, shutdown, senders).await
}

/// [`run`] with the given senders (tests pass fakes).
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    senders: Vec<Arc<dyn ChannelSender>>,
) -> Result<(), Error> {
    let store = Store::open(&config.database_url).await?;
    let stations = stations::load(&config.stations_csv)?;
    tracing::info!(
        districts = stations.districts().len(),
        stations = stations.all().len(),
        file = %config.stations_csv.display(),
        "stations loaded"
    );
    let runtime = Runtime::builder(store.clone())
        .stations(stations)
        .timezone(config.timezone)
        .events(config.events.is_some())
        .privacy(&config.privacy)
        .media_dir(config.media_dir.clone())
        .limits(limits::CitizenLimits::from_config(&config.limits))
        .build();
    describe_channels(&config);

    let mut dispatcher = Dispatcher::new(store.clone(), senders, runtime.clock().clone());
    if let Some(wa) = &config.whatsapp {
        dispatcher = dispatcher.with_pace(Channel::Whatsapp, wa.mps);
    }
    if let Some(tg) = &config.telegram {
        dispatcher = dispatcher.with_pace(Channel::Telegram, tg.mps);
    }
    let channels: Vec<&str> = dispatcher.channels().iter().map(|c| c.as_str()).collect();
    tracing::info!(channels = ?channels, "outbox dispatcher sends on these channels");

    let (stop_tx, stop_rx) = watch::channel(false);
    let dispatch = tokio::spawn(
        dispatcher
            .with_replies_wake(runtime.replies_wake())
            .with_handoff(runtime.handoff())
            .run(runtime.wake(), stop_rx.clone()),
    );
    let sweeper = tokio::spawn(sweep(runtime.clone(), stop_rx.clone()));
    let checkpoints = {
        let store = store.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move { store.checkpoint_wal(stop).await })
    };
    let retention = tokio::spawn(privacy::run(
        runtime.clone(),
        config.privacy.payload_retention_days,
        stop_rx.clone(),
    ));
    let mut channel_tasks = tokio::task::JoinSet::new();
    channels::spawn_tasks(&config, &runtime, stop_rx.clone(), &mut channel_tasks);

    let address = listener.local_addr()?;
    let readiness = http::Readiness::new();
    let (close_tx, mut close_rx) = watch::channel(false);
    let app = http::router(runtime.clone(), readiness.clone())
        .merge(channels::routes(&config, &runtime))
        .merge(officer::router(
            runtime.clone(),
            config.media_dir.clone(),
            officer::throttle::AuthThrottle::from_config(&config.limits),
        ));
    // Connect info: the officer API counts wrong tokens per client address.
    let app = http::instrument(app).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = close_rx.wait_for(|close| *close).await;
    });
    let mut server = tokio::spawn(async move { server.await });
    tracing::info!(%address, "seva is listening");

    let early = tokio::select! {
        () = shutdown => None,
        result = &mut server => Some(result),
    };
    let grace = config.shutdown_grace;
    let deadline = Instant::now() + grace;
    readiness.drain();
    if early.is_none() && readiness.probed() {
        let delay = config.drain_delay.min(grace / 2);
        tracing::info!(
            ?delay,
            ?grace,
            "draining: /readyz answers 503 before the listener closes"
        );
        tokio::time::sleep(delay).await;
    }
    tracing::info!(
        ?grace,
        "shutting down: no new connections; finishing work in flight"
    );
    let _ = close_tx.send(true);
    let _ = stop_tx.send(true);
    let drain = async {
        let served = match early {
            Some(result) => result,
            None => server.await,
        };
        // No request is in flight now, and polling has stopped: no new turn can start.
        while channel_tasks.join_next().await.is_some() {}
        let turns = runtime.in_flight().running();
        if turns > 0 {
            tracing::info!(turns, "waiting for citizens' turns in flight");
        }
        runtime.in_flight().idle().await;
        let _ = dispatch.await;
        let _ = sweeper.await;
        let _ = checkpoints.await;
        let _ = retention.await;
        served
    };
    // A little of the grace is kept for closing the database and the process.
    let reserve = (grace / 10).min(Duration::from_secs(1));
    let served = tokio::time::timeout_at((deadline - reserve).into(), drain).await;
    if served.is_err() {
        tracing::warn!(
            ?grace,
            turns = runtime.in_flight().running(),
            "shutdown grace period over; stopping anyway (unfinished work is picked up at the next start)"
        );
    }
    // A connection still held by abandoned work must not hold the exit past the grace.
    let closing = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    if tokio::time::timeout(closing, store.close()).await.is_err() {
        tracing::warn!("database not closed cleanly; its journal makes that safe");
    }
    match served {
        Ok(Ok(Ok(()))) => {
            tracing::info!("seva stopped");
            Ok(())
        }
        Ok(Ok(Err(e))) => Err(Error::Io(e)),
        Ok(Err(join)) => Err(Error::Io(std::io::Error::other(join))),
        Err(_) => Ok(()),
    }
}

/// Sweeps at start (what a crash left behind) and every [`SWEEP_EVERY`] until stopped.
async fn sweep(runtime: Runtime, mut stop: watch::Receiver<bool>) {
    loop {
        match runtime.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(messages = n, "sweeper processed waiting messages"),
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

fn describe_channels(config: &Config) {
    match &config.whatsapp {
        Some(_) => {
            tracing::info!("channel whatsapp: configured (webhook at /webhook/whatsapp)")
        }
        None => tracing::info!("channel whatsapp: off (WHATSAPP_APP_SECRET unset)"),
    }
    match &config.telegram {
        Some(tg) => {
            let mode = if tg.webhook_url.is_some() {
                "webhook"
            } else {
                "long polling"
            };
            tracing::info!(mode, "channel telegram: configured");
        }
        None => tracing::info!("channel telegram: off (TELEGRAM_BOT_TOKEN unset)"),
    }
    match &config.events {
        Some(_) => tracing::info!("back-office events: on (signed POSTs to SEVA_EVENTS_URL)"),
        None => tracing::info!("back-office events: off (SEVA_EVENTS_URL unset)"),
    }
    let l = &config.limits;
    tracing::info!(
        citizen_messages_per_minute = l.citizen_messages_per_minute,
        citizen_reports_per_day = l.citizen_reports_per_day,
        officer_auth_failures = l.officer_auth_failures,
        officer_auth_window_secs = l.officer_auth_window.as_secs_f64(),
        trusted_proxies = %l.trusted_proxies,
        "abuse limits (0: off)"
    );
}

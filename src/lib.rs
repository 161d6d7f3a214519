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
//! * [`officer`] — the officer API under `/api/v1`, its tokens, audit log and shell commands.
//! * [`http`] — the HTTP routes `/healthz` and `/readyz` (webhooks and the officer API merge in).
//! * [`cli`] — the `seva` command line.
//! * [`clock`], [`logging`] — the injectable clock; log setup.

pub mod channels;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod lifecycle;
pub mod logging;
pub mod officer;
pub mod outbox;
pub mod runtime;
pub mod stations;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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

/// `seva serve`: the HTTP server on `listener`, the outbox dispatcher and the sweeper, until
/// `shutdown` resolves; then drains for at most `SEVA_SHUTDOWN_GRACE`.
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
    let dispatch = tokio::spawn(dispatcher.run(runtime.wake(), stop_rx.clone()));
    let sweeper = tokio::spawn(sweep(runtime.clone(), stop_rx.clone()));
    let mut channel_tasks = tokio::task::JoinSet::new();
    channels::spawn_tasks(&config, &runtime, stop_rx.clone(), &mut channel_tasks);

    let address = listener.local_addr()?;
    let mut server_stop = stop_rx.clone();
    let app = http::router(runtime.clone())
        .merge(channels::routes(&config, &runtime))
        .merge(officer::router(runtime.clone(), config.media_dir.clone()));
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    });
    let mut server = tokio::spawn(async move { server.await });
    tracing::info!(%address, "seva is listening");

    let early = tokio::select! {
        () = shutdown => None,
        result = &mut server => Some(result),
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let drain = async {
        let served = match early {
            Some(result) => result,
            None => server.await,
        };
        let _ = dispatch.await;
        let _ = sweeper.await;
        while channel_tasks.join_next().await.is_some() {}
        served
    };
    let served = tokio::time::timeout(config.shutdown_grace, drain).await;
    store.close().await;
    match served {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(Error::Io(e)),
        Ok(Err(join)) => Err(Error::Io(std::io::Error::other(join))),
        Err(_) => {
            tracing::warn!(grace = ?config.shutdown_grace, "shutdown grace period over; stopping anyway");
            Ok(())
        }
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
}

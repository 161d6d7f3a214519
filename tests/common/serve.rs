//! `seva serve` inside the test process: settings from a list (never the process
//! environment), a fresh loopback port, a stop that checks the server ended cleanly, and the
//! waits and reads the server tests share.

use std::net::SocketAddr;
use std::time::Duration;

use seva::config::Config;
use sqlx::AnyPool;

use super::TestDb;

/// The settings every in-process server needs on `db`: its database, the example stations,
/// a media directory in its tempdir, a short shutdown grace.
pub fn base_settings(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("SEVA_DATABASE_URL", db.url.clone()),
        (
            "SEVA_STATIONS_CSV",
            format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR")),
        ),
        (
            "SEVA_MEDIA_DIR",
            db.dir.path().join("media").display().to_string(),
        ),
        ("SEVA_SHUTDOWN_GRACE", "5".to_owned()),
    ]
}

/// A configuration from exactly these settings.
pub fn config(settings: Vec<(&'static str, String)>) -> Config {
    Config::load(&move |key| {
        settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

/// A client that never goes through a proxy (only loopback here).
pub fn loopback_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A running `seva::run`.
pub struct Serving {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), seva::Error>>>,
}

impl Serving {
    /// Starts `seva serve` with `config` on 127.0.0.1:0 and waits until `/healthz` answers.
    pub async fn start(config: Config) -> Serving {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(seva::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let http = loopback_client();
        for _ in 0..100 {
            if http
                .get(format!("http://{addr}/healthz"))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Serving {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and checks it ended without an error.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops")
                .unwrap();
            assert!(result.is_ok(), "{result:?}");
        }
    }
}

pub async fn count(pool: &AnyPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Waits until every stored message is processed and no outbox row is pending or sending.
pub async fn settled(pool: &AnyPool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let unprocessed = count(
            pool,
            "select count(*) from inbox where processed_at is null",
        )
        .await;
        let unsent = count(
            pool,
            "select count(*) from outbox where status in ('pending', 'sending')",
        )
        .await;
        if unprocessed == 0 && unsent == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not settled: {unprocessed} unprocessed, {unsent} unsent"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The stored conversation of the citizen with this channel identity, as JSON.
pub async fn conversation_of(pool: &AnyPool, external_id: &str) -> serde_json::Value {
    let state: String = sqlx::query_scalar(
        "select state from conversations c join citizens z on z.id = c.citizen_id \
         where z.external_id = $1",
    )
    .bind(external_id)
    .fetch_one(pool)
    .await
    .unwrap();
    serde_json::from_str(&state).unwrap()
}

//! The Telegram end-to-end harness: a tempdir database with a stations CSV whose Kotwali
//! station has an alert chat, the real server (`seva::run` on 127.0.0.1:0) against the fake
//! Bot API, and citizens who type, tap and wait for answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bot::testing::FakeBotApi;
use flows::Lang;
use flows::delivery::OutboxContent;
use flows::message::Channel;
use flows::reply::{Reply, Text};
use serde_json::Value;
use seva::config::Config;
use seva::store::{NewOutbox, OutboxKind, Store};
use sqlx::AnyPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::TestDb;

pub const TOKEN: &str = "4242:seva-telegram-test";
pub const WAIT: Duration = Duration::from_secs(20);
pub const SECRET: &str = "s3cret_Webhook-token";
/// The Telegram chat of Kotwali police station in the test directory (an alert chat).
pub const ALERT_CHAT: i64 = -100_777;

/// A tempdir with the database and a stations CSV whose Kotwali station has an alert chat.
pub struct Env {
    pub db: TestDb,
    pub db_url: String,
    pub stations: PathBuf,
}

impl Env {
    pub fn new(db: TestDb) -> Env {
        let db_url = db.url.clone();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/stations.example.csv");
        let csv = std::fs::read_to_string(example).unwrap();
        let csv = csv.replace(
            "patna-kotwali,patna,Patna,पटना,Kotwali,कोतवाली,station,hi,,",
            &format!("patna-kotwali,patna,Patna,पटना,Kotwali,कोतवाली,station,hi,{ALERT_CHAT},"),
        );
        assert!(csv.contains(&ALERT_CHAT.to_string()), "example CSV changed");
        let stations = db.dir.path().join("stations.csv");
        std::fs::write(&stations, csv).unwrap();
        Env {
            db,
            db_url,
            stations,
        }
    }

    pub fn config(&self, api: &FakeBotApi, extra: &[(&str, String)]) -> Config {
        let mut vars: Vec<(String, String)> = vec![
            ("SEVA_DATABASE_URL".into(), self.db_url.clone()),
            (
                "SEVA_STATIONS_CSV".into(),
                self.stations.display().to_string(),
            ),
            (
                "SEVA_MEDIA_DIR".into(),
                self.db.dir.path().join("media").display().to_string(),
            ),
            ("SEVA_SHUTDOWN_GRACE".into(), "5".into()),
            ("TELEGRAM_BOT_TOKEN".into(), api.token().to_owned()),
            ("TELEGRAM_API_URL".into(), api.url()),
            // Fast chats keep the tests quick; pacing itself has unit tests.
            ("SEVA_TELEGRAM_CHAT_MPS".into(), "50".into()),
        ];
        for (k, v) in extra {
            vars.retain(|(key, _)| key != k);
            vars.push(((*k).to_owned(), v.clone()));
        }
        Config::load(&move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
            .unwrap()
    }

    pub async fn db(&self) -> AnyPool {
        self.db.pool().await
    }
}

/// A running `seva serve`.
pub struct Server {
    pub stop: oneshot::Sender<()>,
    pub task: JoinHandle<Result<(), seva::Error>>,
}

impl Server {
    pub async fn start(env: &Env, api: &FakeBotApi, extra: &[(&str, String)]) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Server::start_on(listener, env.config(api, extra)).await
    }

    pub async fn start_on(listener: tokio::net::TcpListener, config: Config) -> Server {
        let address = listener.local_addr().unwrap();
        assert!(address.ip().is_loopback());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(seva::run(config, listener, async move {
            let _ = stopped.await;
        }));
        Server { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("serve stops")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}

/// One citizen talking to the bot through the fake.
pub struct Citizen<'a> {
    pub api: &'a FakeBotApi,
    pub user: i64,
}

impl Citizen<'_> {
    pub fn texts(&self) -> Vec<String> {
        self.api.sent_texts(self.user)
    }

    /// Waits until a message sent after the first `from` contains `needle`; returns the texts
    /// sent since `from`, joined.
    pub async fn wait(&self, from: usize, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let texts = self.texts();
            let new = texts.get(from..).unwrap_or_default();
            if new.iter().any(|t| t.contains(needle)) {
                return new.join("\n---\n");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "citizen {} never got {needle:?}; after message {from} the bot sent:\n{}",
                self.user,
                new.join("\n---\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn say(&self, text: &str, expect: &str) -> String {
        let from = self.texts().len();
        self.api.push_text(self.user, text);
        self.wait(from, expect).await
    }

    /// The newest message of ours that still shows a button sending `data`.
    pub fn message_with_button(&self, data: &str) -> i64 {
        self.api
            .sent_messages(self.user)
            .iter()
            .rev()
            .find(|m| buttons(m).iter().any(|b| b == data))
            .and_then(|m| m["message_id"].as_i64())
            .unwrap_or_else(|| panic!("no message shows a {data:?} button"))
    }

    /// Taps the button `data` on the newest message showing it; returns the update id.
    pub async fn tap(&self, data: &str, expect: &str) -> (u32, String) {
        let message_id = self.message_with_button(data);
        self.tap_on(message_id, data, expect).await
    }

    pub async fn tap_on(&self, message_id: i64, data: &str, expect: &str) -> (u32, String) {
        let from = self.texts().len();
        let update = self.api.push_callback(self.user, message_id, data);
        (update, self.wait(from, expect).await)
    }

    pub async fn location(&self, latitude: f64, longitude: f64, expect: &str) -> String {
        let from = self.texts().len();
        self.api.push_location(self.user, latitude, longitude);
        self.wait(from, expect).await
    }

    pub async fn contact(&self, phone: &str, owner: i64, expect: &str) -> String {
        let from = self.texts().len();
        self.api.push_contact(self.user, phone, Some(owner));
        self.wait(from, expect).await
    }

    pub async fn photo(&self, file_id: &str, expect: &str) -> String {
        let from = self.texts().len();
        self.api.push_photo(self.user, file_id, None);
        self.wait(from, expect).await
    }

    /// The `sendMessage` calls to this chat, as sent (reply keyboards included).
    pub fn send_calls(&self) -> Vec<Value> {
        self.api
            .calls("sendMessage")
            .into_iter()
            .filter(|c| c["chat_id"].as_i64() == Some(self.user))
            .collect()
    }

    /// The reply keyboard of the newest `sendMessage` to this chat whose text contains `needle`.
    pub fn reply_keyboard(&self, needle: &str) -> Value {
        self.send_calls()
            .into_iter()
            .rev()
            .find(|c| c["text"].as_str().is_some_and(|t| t.contains(needle)))
            .map(|c| c["reply_markup"].clone())
            .unwrap_or_else(|| panic!("no message containing {needle:?}"))
    }
}

/// The callback data of a message's inline buttons.
pub fn buttons(message: &Value) -> Vec<String> {
    message["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_owned))
        .collect()
}

/// The reference after `marker` in `text` (`C-XXXX-XXXX-X`).
pub fn reference_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in {text}"))
        + marker.len();
    let reference: String = text[start..].chars().take(13).collect();
    assert!(
        flows::reference::Reference::parse(&reference).is_ok(),
        "not a reference: {reference:?}"
    );
    reference
}

pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn unreachable(db: &AnyPool, user: i64) -> Option<bool> {
    let flag: Option<i64> = sqlx::query_scalar(
        "select unreachable from citizens where channel = 'telegram' and external_id = $1",
    )
    .bind(user.to_string())
    .fetch_optional(db)
    .await
    .unwrap();
    flag.map(|f| f != 0)
}

pub async fn citizen_id(db: &AnyPool, user: i64) -> i64 {
    sqlx::query_scalar("select id from citizens where channel = 'telegram' and external_id = $1")
        .bind(user.to_string())
        .fetch_one(db)
        .await
        .unwrap()
}

/// Writes a status-push-like outbox row for the citizen, as an officer's change would.
pub async fn enqueue_push(env: &Env, citizen_id: i64, user: i64) -> i64 {
    enqueue_pushes(env, &[(Some(citizen_id), user)]).await[0]
}

/// Writes one status-push-like row per `(citizen, chat)`, in order, as a batch of officers'
/// changes would; returns their outbox ids.
pub async fn enqueue_pushes(env: &Env, to: &[(Option<i64>, i64)]) -> Vec<i64> {
    let store = Store::connect(&env.db_url).await.unwrap();
    let content = OutboxContent::reply(Reply::text(Text::new("cmd-help")));
    let content = serde_json::to_string(&content).unwrap();
    let rows: Vec<NewOutbox> = to
        .iter()
        .map(|(citizen_id, user)| NewOutbox {
            citizen_id: *citizen_id,
            channel: Channel::Telegram,
            recipient: user.to_string(),
            kind: OutboxKind::Push,
            content: content.clone(),
            lang: Some(Lang::En),
        })
        .collect();
    let ids = store
        .enqueue_all(&rows, chrono::Utc::now().timestamp())
        .await;
    let ids = ids.unwrap();
    store.close().await;
    ids
}

pub async fn outbox_status(db: &AnyPool, id: i64) -> (String, Option<String>) {
    sqlx::query_as("select status, last_error from outbox where id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

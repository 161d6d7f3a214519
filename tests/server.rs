//! `seva serve` as a library call: the real server on 127.0.0.1:0, stopped cleanly.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeSender, Harness};
use flows::message::Channel;
use seva::config::Config;
use seva::outbox::ChannelSender;

fn config(h: &Harness) -> Config {
    let url = h.url.clone();
    let stations = format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR"));
    let media = h.dir.path().join("media").display().to_string();
    Config::load(&move |key| match key {
        "SEVA_DATABASE_URL" => Some(url.clone()),
        "SEVA_STATIONS_CSV" => Some(stations.clone()),
        "SEVA_MEDIA_DIR" => Some(media.clone()),
        "SEVA_SHUTDOWN_GRACE" => Some("5".to_owned()),
        _ => None,
    })
    .unwrap()
}

/// A client that can only reach loopback addresses.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn serve_answers_health_and_readiness_delivers_the_outbox_and_stops_cleanly() {
    for h in common::backends().await {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        assert!(address.ip().is_loopback());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let fake = FakeSender::new(Channel::Terminal);
        let senders: Vec<Arc<dyn ChannelSender>> = vec![fake.clone()];
        let server = tokio::spawn(seva::run_with(
            config(&h),
            listener,
            async move {
                let _ = stopped.await;
            },
            senders,
        ));

        let http = client();
        let health = http
            .get(format!("http://{address}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let ready = http
            .get(format!("http://{address}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        assert_eq!(ready.text().await.unwrap(), "ready");

        // A turn taken by another process on the same file (here: another runtime) is delivered
        // by serve's dispatcher at its next poll.
        let rt = h.runtime();
        rt.handle(&common::text("asha", "m1", "hello"))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while fake.delivered().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "serve's dispatcher did not deliver"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        stop.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert!(
            http.get(format!("http://{address}/healthz"))
                .send()
                .await
                .is_err(),
            "still listening"
        );
    }
}

#[tokio::test]
async fn readiness_fails_without_migrations() {
    for db in common::TestDb::all().await {
        let store = seva::store::Store::connect(&db.url).await.unwrap();
        assert!(store.ready().await.is_err());
        store.migrate().await.unwrap();
        assert!(store.ready().await.is_ok());
    }
}

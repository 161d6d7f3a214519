//! Retention (spec §6 "Private", "Accountable"): what Seva forgets, and when, on SQLite and on
//! PostgreSQL when one is available.
//!
//! * A draft abandoned for 24 hours is purged by the retention job even if the citizen never
//!   returns; a citizen writing at that moment keeps their own turn.
//! * Raw inbox payloads and outbox contents go after `SEVA_PAYLOAD_RETENTION_DAYS`; a late
//!   redelivery of a blanked message is still recognised; unattached media goes too.
//! * `seva report purge --older-than` removes the personal data of reports closed or returned
//!   long ago (media files included), keeps the statistics, is idempotent, and the officer
//!   API shows the purged report without personal fields.
//! * "Delete my data" removes the citizen's WhatsApp media rows and downloaded files.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, backends};
use flows::message::{Channel, Inbound, MediaKind};
use flows::reference::Reference;
use serde_json::Value;
use seva::config::Config;
use seva::lifecycle::Change;
use seva::officer::auth::{hash_token, new_token};
use seva::privacy::retention_round;
use seva::runtime::{Accepted, Engine, Runtime};
use seva::store::{Actor, Notices, Scope, SendRecord};
use sqlx::AnyPool;

const DAY: i64 = 24 * 60 * 60;
const DESCRIPTION: &str = "Two men took my purse near the temple gate";

fn media_dir(h: &Harness) -> PathBuf {
    let dir = h.dir.path().join("media");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A runtime with the real dialogue engine and `SEVA_MEDIA_DIR` in the harness's tempdir.
fn real_runtime(h: &Harness) -> Runtime {
    Runtime::builder(h.store.clone())
        .stations(common::example_stations())
        .clock(h.clock())
        .media_dir(media_dir(h))
        .build()
}

/// The scripted engine of tests/common, with `SEVA_MEDIA_DIR` in the harness's tempdir.
fn scripted_runtime(h: &Harness) -> Runtime {
    Runtime::builder(h.store.clone())
        .stations(common::example_stations())
        .clock(h.clock())
        .engine(Arc::new(common::scripted) as Engine)
        .media_dir(media_dir(h))
        .build()
}

fn says(sender: &str, channel: Channel, n: u32, text: &str) -> Inbound {
    Inbound {
        channel,
        ..common::text(sender, &format!("{sender}-{n}"), text)
    }
}

async fn conversation(pool: &AnyPool, citizen_id: i64) -> String {
    sqlx::query_scalar("select state from conversations where citizen_id = $1")
        .bind(citizen_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Meena starts a complaint in English and types what happened; returns her citizen id.
async fn start_a_draft(rt: &Runtime, who: &str) -> i64 {
    let mut id = 0;
    for (n, text) in ["hello", "2", "1", "1", DESCRIPTION].iter().enumerate() {
        id = rt
            .handle(&says(who, Channel::Terminal, n as u32, text))
            .await
            .unwrap()
            .citizen_id();
    }
    id
}

#[tokio::test]
async fn a_draft_abandoned_for_24_hours_is_purged_even_if_the_citizen_never_returns() {
    for h in backends().await {
        let rt = real_runtime(&h);
        let pool = h.db().await;
        let meena = start_a_draft(&rt, "meena").await;
        assert!(conversation(&pool, meena).await.contains(DESCRIPTION));

        h.advance(23 * 3600);
        assert_eq!(retention_round(&rt, 30).await.unwrap().drafts, 0);
        assert!(
            conversation(&pool, meena).await.contains(DESCRIPTION),
            "a draft idle 23 hours is kept"
        );

        h.advance(2 * 3600);
        assert_eq!(retention_round(&rt, 30).await.unwrap().drafts, 1);
        let state = conversation(&pool, meena).await;
        assert!(
            !state.contains(DESCRIPTION) && !state.contains("\"draft\""),
            "the abandoned draft is gone: {state}"
        );
        assert_eq!(retention_round(&rt, 30).await.unwrap().drafts, 0);

        // When she does come back, she is told, and is at the menu.
        rt.handle(&says("meena", Channel::Terminal, 9, "hello"))
            .await
            .unwrap();
        let replies = common::replies(&pool, meena).await;
        assert_eq!(replies.last().unwrap().0, "draft-expired", "{replies:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_writing_while_the_purge_runs_keeps_their_own_turn() {
    for h in backends().await {
        let rt = real_runtime(&h);
        let pool = h.db().await;
        let meena = start_a_draft(&rt, "meena").await;
        h.advance(25 * 3600);

        // Her turn holds her lock (as a turn on another replica would) when the purge comes,
        // and it sees her as active again: the purge waits for it, then leaves the draft.
        let mut turn = h.store.lock_citizen(meena).await.unwrap();
        let purge = tokio::spawn({
            let rt = rt.clone();
            async move { rt.purge_idle_drafts().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !purge.is_finished(),
            "the purge waits for the citizen's lock"
        );
        let stored = turn.conversation().await.unwrap().unwrap();
        let mut state: flows::state::Conversation = serde_json::from_str(&stored).unwrap();
        state.last_seen = h.time();
        turn.save_conversation(&state.to_json(), h.time())
            .await
            .unwrap();
        turn.commit().await.unwrap();
        assert_eq!(purge.await.unwrap(), 0);
        assert!(conversation(&pool, meena).await.contains(DESCRIPTION));

        // A message stored but not yet processed: the purge leaves it to her turn, whose
        // engine drops the expired draft itself and tells her.
        h.advance(25 * 3600);
        let accepted = rt
            .accept(&says("meena", Channel::Terminal, 20, "hello"))
            .await
            .unwrap();
        assert!(matches!(accepted, Accepted::New { .. }));
        assert_eq!(rt.purge_idle_drafts().await.unwrap(), 0);
        assert!(conversation(&pool, meena).await.contains(DESCRIPTION));
        rt.process(meena).await.unwrap();
        assert!(!conversation(&pool, meena).await.contains(DESCRIPTION));
        let replies = common::replies(&pool, meena).await;
        assert_eq!(replies.last().unwrap().0, "draft-expired", "{replies:?}");
    }
}

/// A media row for `citizen_id`, downloaded into `dir` as `<media_id>.jpg`; returns the file.
async fn downloaded_media(h: &Harness, dir: &Path, media_id: &str, citizen_id: i64) -> PathBuf {
    let path = dir.join(format!("{media_id}.jpg"));
    std::fs::write(&path, [0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
    h.store
        .whatsapp_media_register(
            media_id,
            citizen_id,
            MediaKind::Photo,
            Some("image/jpeg"),
            h.time(),
        )
        .await
        .unwrap();
    assert!(
        h.store
            .whatsapp_media_done(media_id, &path.display().to_string(), 4, h.time())
            .await
            .unwrap()
    );
    path
}

async fn media_rows(pool: &AnyPool) -> Vec<String> {
    sqlx::query_scalar("select media_id from whatsapp_media order by media_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn payloads_past_retention_are_blanked_and_a_late_redelivery_is_still_recognised() {
    for h in backends().await {
        let rt = scripted_runtime(&h);
        let pool = h.db().await;
        let dir = media_dir(&h);
        let old = says("919800000001", Channel::Whatsapp, 1, DESCRIPTION);
        let asha = rt.handle(&old).await.unwrap().citizen_id();
        // The reply to it was sent; a later one is still waiting for the provider.
        let sent: Vec<i64> = sqlx::query_scalar("select id from outbox where citizen_id = $1")
            .bind(asha)
            .fetch_all(&pool)
            .await
            .unwrap();
        for id in &sent {
            let record = SendRecord::Sent {
                provider_id: format!("wamid.{id}"),
            };
            h.store
                .record_send(*id, &record, 1, h.time())
                .await
                .unwrap();
        }
        // Media sent while drafting and never filed, and media a report points at.
        let loose = downloaded_media(&h, &dir, "loose-1", asha).await;
        let attached = downloaded_media(&h, &dir, "photo-1", asha).await;
        rt.handle(&says("919800000001", Channel::Whatsapp, 2, "file d1"))
            .await
            .unwrap();
        sqlx::query("update outbox set status = 'pending' where id > $1")
            .bind(sent.iter().max().copied().unwrap_or(0))
            .execute(&pool)
            .await
            .unwrap();

        h.advance(29 * DAY);
        let early = retention_round(&rt, 30).await.unwrap();
        assert_eq!((early.inbox, early.outbox, early.media), (0, 0, 0));

        h.advance(2 * DAY);
        let recent = says("919800000001", Channel::Whatsapp, 3, "still here");
        rt.handle(&recent).await.unwrap();
        let done = retention_round(&rt, 30).await.unwrap();
        assert_eq!(
            (done.inbox, done.outbox, done.media),
            (2, sent.len() as u64, 1)
        );

        let payloads: Vec<(String, String)> =
            sqlx::query_as("select provider_id, payload from inbox order by id")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(payloads[0], (old.provider_id.clone(), "{}".to_owned()));
        assert!(payloads[2].1.contains("still here"), "{payloads:?}");
        let outbox: Vec<(String, String)> =
            sqlx::query_as("select status, content from outbox order by id")
                .fetch_all(&pool)
                .await
                .unwrap();
        for (status, content) in &outbox {
            match status.as_str() {
                "sent" | "dead" => assert_eq!(content, "null", "{outbox:?}"),
                _ => assert_ne!(content, "null", "a waiting message keeps its content"),
            }
        }
        assert_eq!(media_rows(&pool).await, ["photo-1"]);
        assert!(!loose.exists() && attached.exists());

        // Meta redelivers the old message a month late: it is still a duplicate.
        let again = rt.handle(&old).await.unwrap();
        assert_eq!(again, Accepted::Duplicate { citizen_id: asha });
        assert_eq!(retention_round(&rt, 30).await.unwrap().inbox, 0);
    }
}

#[tokio::test]
async fn delete_my_data_removes_the_citizens_whatsapp_media_and_files() {
    for h in backends().await {
        let rt = scripted_runtime(&h);
        let pool = h.db().await;
        let dir = media_dir(&h);
        let asha = rt
            .handle(&says("919800000001", Channel::Whatsapp, 1, "file d1"))
            .await
            .unwrap()
            .citizen_id();
        let ravi = rt
            .handle(&says("919800000002", Channel::Whatsapp, 1, "hello"))
            .await
            .unwrap()
            .citizen_id();
        // The photo of her report, one from an unfinished draft, and Ravi's.
        let files = [
            downloaded_media(&h, &dir, "photo-1", asha).await,
            downloaded_media(&h, &dir, "draft-9", asha).await,
        ];
        let ravis = downloaded_media(&h, &dir, "ravi-1", ravi).await;

        rt.handle(&says("919800000001", Channel::Whatsapp, 2, "forget"))
            .await
            .unwrap();
        assert_eq!(media_rows(&pool).await, ["ravi-1"]);
        for f in &files {
            assert!(!f.exists(), "{} is still on disk", f.display());
        }
        assert!(ravis.exists(), "another citizen's media stays");
        let attachments: i64 = sqlx::query_scalar("select count(*) from attachments")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(attachments, 0);

        // A download that finishes after the deletion does not bring the file back.
        assert!(
            !h.store
                .whatsapp_media_done("draft-9", "/nowhere/draft-9.jpg", 4, h.time())
                .await
                .unwrap()
        );
    }
}

/// `seva report purge …` against the harness's database; returns (exit ok, stdout, stderr).
async fn purge_cli(h: &Harness, args: &[&str], retention_days: &str) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_seva"))
        .args(["report", "purge"])
        .args(args)
        .env_clear()
        .env("SEVA_DATABASE_URL", &h.url)
        .env("SEVA_MEDIA_DIR", media_dir(h))
        .env(
            "SEVA_STATIONS_CSV",
            format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR")),
        )
        .env("SEVA_REPORT_RETENTION_DAYS", retention_days)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Files the scripted engine's complaint (tests/common `report`: a name, a phone, a place,
/// a photo) for Asha with its own downloaded photo `media-<draft>`; returns its reference.
async fn file(h: &Harness, rt: &Runtime, draft: &str) -> Reference {
    let n = rand::random::<u32>();
    let asha = rt
        .handle(&says(
            "919800000001",
            Channel::Whatsapp,
            n,
            &format!("file {draft}"),
        ))
        .await
        .unwrap()
        .citizen_id();
    let pool = h.db().await;
    let reference: String = sqlx::query_scalar("select reference from reports where draft_id = $1")
        .bind(draft)
        .fetch_one(&pool)
        .await
        .unwrap();
    let media = format!("media-{draft}");
    sqlx::query(
        "update attachments set file_id = $1 where report_id = (select id from reports where draft_id = $2)",
    )
    .bind(&media)
    .bind(draft)
    .execute(&pool)
    .await
    .unwrap();
    downloaded_media(h, &media_dir(h), &media, asha).await;
    Reference::parse(&reference).unwrap()
}

/// Closes the report with notes for the citizen and the file, then dates its last change
/// `days_ago` days before the real clock (`seva report purge` runs on it).
async fn close(h: &Harness, reference: &Reference, days_ago: i64) {
    let stations = common::example_stations();
    let change = Change {
        status: "closed".into(),
        note: Some("Your purse was found; call Head Constable Ravi on 9812345670".into()),
        internal_note: Some("Suspect Mohan of Ward 12 questioned".into()),
        reason: Some("resolved".into()),
        ..Change::default()
    };
    let notices = Notices {
        stations: &stations,
        events: false,
    };
    h.store
        .change_status(&Actor::cli(), reference, &change, notices, h.time())
        .await
        .unwrap();
    age(h, reference, days_ago).await;
}

async fn age(h: &Harness, reference: &Reference, days_ago: i64) {
    sqlx::query("update reports set updated_at = $1 where reference = $2")
        .bind(chrono::Utc::now().timestamp() - days_ago * DAY)
        .bind(reference.to_string())
        .execute(&h.db().await)
        .await
        .unwrap();
}

type Personal = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

async fn personal(pool: &AnyPool, reference: &Reference) -> Personal {
    sqlx::query_as(
        "select name, phone, description, place, identifier, citizen_id from reports where reference = $1",
    )
    .bind(reference.to_string())
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The officer API's view of one report, from `seva serve` on this database.
async fn officer_view(h: &Harness, reference: &Reference) -> Value {
    let token = new_token();
    h.store
        .add_officer(
            "Inspector Rao",
            &Scope::State,
            &hash_token(&token),
            h.time(),
        )
        .await
        .unwrap();
    let vars: Vec<(&str, String)> = vec![
        ("SEVA_DATABASE_URL", h.url.clone()),
        (
            "SEVA_STATIONS_CSV",
            format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR")),
        ),
        ("SEVA_MEDIA_DIR", media_dir(h).display().to_string()),
        ("SEVA_SHUTDOWN_GRACE", "2".to_owned()),
    ];
    let config =
        Config::load(&move |key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(seva::run(config, listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let view: Value = http
        .get(format!("http://{addr}/api/v1/reports/{reference}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_purge_removes_personal_data_keeps_statistics_and_is_idempotent() {
    for h in backends().await {
        let rt = scripted_runtime(&h);
        let pool = h.db().await;
        let dir = media_dir(&h);
        let old = file(&h, &rt, "old").await;
        let recent = file(&h, &rt, "recent").await;
        let open = file(&h, &rt, "open").await;
        close(&h, &old, 100).await;
        close(&h, &recent, 10).await;
        age(&h, &open, 100).await;

        let (ok, out, err) = purge_cli(&h, &["--older-than", "90d"], "365").await;
        assert!(ok, "{err}");
        assert_eq!(out, "1", "{err}");

        assert_eq!(
            personal(&pool, &old).await,
            (None, None, None, None, None, None)
        );
        let kept: (
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Option<i64>,
        ) = sqlx::query_as(
            "select kind, category, station_id, district_id, status, personal_data_purged_at \
                 from reports where reference = $1",
        )
        .bind(old.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (
                &kept.0[..],
                &kept.1[..],
                kept.2.as_deref(),
                kept.3.as_deref(),
                &kept.4[..]
            ),
            (
                "complaint",
                "theft",
                Some("patna-kotwali"),
                Some("patna"),
                "closed"
            )
        );
        assert!(kept.5.is_some());
        let history: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "select h.status, h.note, h.internal_note from report_history h join reports r \
             on r.id = h.report_id where r.reference = $1 order by h.id",
        )
        .bind(old.to_string())
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            history,
            [
                ("submitted".into(), None, None),
                ("closed".into(), None, None)
            ]
        );
        assert_eq!(media_rows(&pool).await, ["media-open", "media-recent"]);
        assert!(!dir.join("media-old.jpg").exists());
        assert!(dir.join("media-recent.jpg").exists());
        // A report closed recently and an open one keep everything.
        for r in [&recent, &open] {
            assert_eq!(personal(&pool, r).await.0.as_deref(), Some("Asha"));
        }

        // Idempotent; then the configured retention when no age is given.
        let (_, out, _) = purge_cli(&h, &["--older-than", "90d"], "365").await;
        assert_eq!(out, "0");
        let (ok, out, err) = purge_cli(&h, &[], "5").await;
        assert!(ok, "{err}");
        assert_eq!(out, "1", "{err}");
        assert_eq!(personal(&pool, &recent).await.0, None);
        assert_eq!(personal(&pool, &open).await.0.as_deref(), Some("Asha"));
        let (ok, _, err) = purge_cli(&h, &["--older-than", "soon"], "365").await;
        assert!(!ok && err.contains("not an age"), "{err}");

        let view = officer_view(&h, &old).await;
        let report = &view["report"];
        for field in ["name", "phone", "description", "place", "identifier"] {
            assert!(report[field].is_null(), "{field} in {view:#}");
        }
        assert!(report["personal_data_purged_at"].is_string(), "{view:#}");
        assert_eq!(report["citizen_data_deleted"], false);
        assert_eq!(report["category"], "theft");
        assert_eq!(report["status"], "closed");
        assert_eq!(view["attachments"], serde_json::json!([]));
        let text = view.to_string();
        assert!(
            !text.contains("9812345670") && !text.contains("Mohan"),
            "{view:#}"
        );
    }
}

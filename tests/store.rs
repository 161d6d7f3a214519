//! The store as several processes share it, on both backends: paired migrations that give the
//! same schema, one citizen's turn at a time across stores (separate pools, as replicas have),
//! outbox claims that never hand a row to two dispatchers, claim leases, and leadership.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, Kind, TestDb, text};
use flows::Lang;
use flows::message::Channel;
use flows::reply::{Reply, Text};
use seva::store::{Claim, NewOutbox, OutboxKind, SendRecord, Store};
use sqlx::AnyPool;
use tokio::sync::watch;

fn migration_names(backend: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_two_migration_folders_hold_the_same_file_names() {
    let sqlite = migration_names("sqlite");
    let postgres = migration_names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres must pair up"
    );
    for name in &sqlite {
        assert!(name.ends_with(".sql"), "{name}");
    }
}

/// Table → column → (not null, part of the primary key).
type Schema = BTreeMap<String, BTreeMap<String, bool>>;

async fn sqlite_schema(pool: &AnyPool) -> (Schema, BTreeSet<String>) {
    let tables: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' \
         and name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for t in tables {
        let columns: Vec<(String, i64, i64)> =
            sqlx::query_as("select name, \"notnull\", pk from pragma_table_info($1)")
                .bind(&t)
                .fetch_all(pool)
                .await
                .unwrap();
        schema.insert(
            t,
            columns
                .into_iter()
                // A primary key column is never null (an `integer primary key` is the rowid).
                .map(|(c, not_null, pk)| (c, not_null != 0 || pk != 0))
                .collect(),
        );
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'index' and sql is not null",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    (schema, indexes.into_iter().collect())
}

async fn postgres_schema(pool: &AnyPool) -> (Schema, BTreeSet<String>) {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "select table_name::text, column_name::text, is_nullable::text from information_schema.columns \
         where table_schema = current_schema() and table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (t, c, nullable) in columns {
        schema.entry(t).or_default().insert(c, nullable == "NO");
    }
    // Indexes made by `create index` (not those of primary keys and unique constraints).
    let indexes: Vec<String> = sqlx::query_scalar(
        "select i.indexname::text from pg_indexes i where i.schemaname = current_schema() \
         and not exists (select 1 from pg_constraint k where k.conname = i.indexname)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    (schema, indexes.into_iter().collect())
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_tables_columns_nullability_and_indexes() {
    let Some(pg) = TestDb::postgres().await else {
        return;
    };
    let sqlite = TestDb::sqlite();
    for db in [&sqlite, &pg] {
        let store = db.open().await;
        store.ready().await.unwrap();
        store.close().await;
    }
    let (lite_schema, lite_indexes) = sqlite_schema(&sqlite.pool().await).await;
    let (pg_schema, pg_indexes) = postgres_schema(&pg.pool().await).await;
    assert!(
        lite_schema["outbox"].contains_key("claimed_until"),
        "{lite_schema:?}"
    );
    assert!(lite_indexes.contains("outbox_dedupe"), "{lite_indexes:?}");
    assert_eq!(lite_schema, pg_schema);
    assert_eq!(lite_indexes, pg_indexes);
    // Opening again applies nothing new.
    pg.open().await.ready().await.unwrap();
}

/// Two stores on one database, as two replicas (or `serve` and `seva chat`) have.
async fn twin(h: &Harness) -> Store {
    Store::connect(&h.url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn citizens_are_processed_once_and_in_order_by_two_stores_taking_turns() {
    for h in common::backends().await {
        let runtimes = [h.runtime(), h.runtime_on(twin(&h).await)];
        let mut tasks = Vec::new();
        for who in 0..12 {
            let runtimes = runtimes.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("c{who}");
                let mut citizen = 0;
                for i in 0..8 {
                    // Alternate messages reach alternate replicas; a few twice.
                    let rt = &runtimes[(who + i) % 2];
                    let msg = text(&name, &format!("{name}-{i}"), &format!("{name} says {i}"));
                    citizen = rt.handle(&msg).await.unwrap().citizen_id();
                    if i % 3 == 0 {
                        runtimes[(who + i + 1) % 2].handle(&msg).await.unwrap();
                    }
                }
                (name, citizen)
            }));
        }
        let db = h.db().await;
        for task in tasks {
            let (name, citizen) = task.await.unwrap();
            let said: Vec<serde_json::Value> = common::replies(&db, citizen)
                .await
                .into_iter()
                .map(|(_, arg)| arg)
                .collect();
            let expected: Vec<serde_json::Value> = (0..8)
                .map(|i| serde_json::json!(format!("{name} says {i}")))
                .collect();
            assert_eq!(said, expected, "{name} on {}", h.kind.name());
        }
        let (inbox, open): (i64, i64) =
            sqlx::query_as("select count(*), count(*) - count(processed_at) from inbox")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!((inbox, open), (12 * 8, 0));
    }
}

fn reply(to: &str) -> NewOutbox {
    NewOutbox {
        citizen_id: None,
        channel: Channel::Telegram,
        recipient: to.to_owned(),
        kind: OutboxKind::Reply,
        content: serde_json::to_string(&Reply::text(Text::new("help"))).unwrap(),
        lang: Some(Lang::En),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_never_claim_one_row_and_keep_each_recipients_order() {
    for h in common::backends().await {
        for i in 0..240 {
            h.store
                .enqueue(&reply(&format!("r{}", i % 30)), h.time())
                .await
                .unwrap();
        }
        let stores = [h.store.clone(), twin(&h).await];
        let now = h.time();
        let claimed: Arc<std::sync::Mutex<Vec<(i64, String)>>> = Arc::default();
        let mut tasks = Vec::new();
        for store in stores {
            let claimed = claimed.clone();
            tasks.push(tokio::spawn(async move {
                let channels = [Channel::Telegram];
                let claim = Claim {
                    channels: &channels,
                    recipient: None,
                    lane: None,
                    limit: 7,
                };
                loop {
                    let rows = store.claim_due(&claim, now).await.unwrap();
                    if rows.is_empty() {
                        // The other dispatcher may still hold rows that keep later ones back.
                        let left = store.list_outbox(false, 1).await.unwrap();
                        if left.is_empty() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    for row in rows {
                        claimed
                            .lock()
                            .unwrap()
                            .push((row.id, row.recipient.clone()));
                        let sent = SendRecord::Sent {
                            provider_id: format!("p{}", row.id),
                        };
                        store.record_send(row.id, &sent, 1, now).await.unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let claimed = claimed.lock().unwrap().clone();
        let mut ids: Vec<i64> = claimed.iter().map(|(id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 240, "{} on {}", claimed.len(), h.kind.name());
        assert_eq!(claimed.len(), 240, "a row was claimed twice");
        let mut per_recipient: HashMap<String, Vec<i64>> = HashMap::new();
        for (id, to) in claimed {
            per_recipient.entry(to).or_default().push(id);
        }
        for (to, ids) in per_recipient {
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{to}: {ids:?}");
        }
    }
}

#[tokio::test]
async fn a_row_whose_claim_lease_ran_out_is_claimed_again() {
    for h in common::backends().await {
        let id = h.store.enqueue(&reply("A"), h.time()).await.unwrap();
        let channels = [Channel::Telegram];
        let claim = Claim {
            channels: &channels,
            recipient: None,
            lane: None,
            limit: 10,
        };
        let first = h.store.claim_due(&claim, h.time()).await.unwrap();
        assert_eq!(first.len(), 1);
        // Its dispatcher died: nobody records the send. Within the lease nobody takes it.
        h.advance(seva::store::CLAIM_LEASE - 1);
        assert!(
            h.store
                .claim_due(&claim, h.time())
                .await
                .unwrap()
                .is_empty()
        );
        // After it, another dispatcher does.
        h.advance(2);
        let again = h.store.claim_due(&claim, h.time()).await.unwrap();
        assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
        assert_eq!(again[0].attempts, 0);
        // A taking-over dispatcher puts rows left sending back to pending at once.
        assert_eq!(
            h.store
                .reset_sending(&[Channel::Telegram], None)
                .await
                .unwrap(),
            1
        );
        assert_eq!(h.store.claim_due(&claim, h.time()).await.unwrap().len(), 1);
    }
}

async fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_leads_a_role_and_another_takes_over_within_seconds() {
    for h in common::backends().await {
        let other = twin(&h).await;
        let (stop_a, stop_a_rx) = watch::channel(false);
        let (stop_b, stop_b_rx) = watch::channel(false);
        let a = h.store.lead("dispatch:telegram", stop_a_rx);
        until("a leads", Duration::from_secs(5), || a.is_leader()).await;
        let b = other.lead("dispatch:telegram", stop_b_rx.clone());
        let b_other_role = other.lead("dispatch:whatsapp", stop_b_rx);
        if h.kind == Kind::Sqlite {
            // One process owns a SQLite file: every lead is held at once.
            assert!(b.is_leader() && b_other_role.is_leader());
            continue;
        }
        until("b leads another role", Duration::from_secs(5), || {
            b_other_role.is_leader()
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(a.is_leader() && !b.is_leader(), "one leader per role");

        let gone = tokio::time::Instant::now();
        stop_a.send(true).unwrap();
        until("a steps down", Duration::from_secs(5), || !a.is_leader()).await;
        until("b takes over", Duration::from_secs(6), || b.is_leader()).await;
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "{:?}",
            gone.elapsed()
        );
        stop_b.send(true).unwrap();
        until("b steps down", Duration::from_secs(5), || !b.is_leader()).await;
    }
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_and_both_backends_enforce_foreign_keys() {
    for h in common::backends().await {
        if h.kind == Kind::Sqlite {
            let mode: String = sqlx::query_scalar("pragma journal_mode")
                .fetch_one(&h.db().await)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
        }
        let orphan = NewOutbox {
            citizen_id: Some(999_999),
            ..reply("A")
        };
        assert!(
            h.store.enqueue(&orphan, h.time()).await.is_err(),
            "a row for a citizen that does not exist on {}",
            h.kind.name()
        );
    }
}

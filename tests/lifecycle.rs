//! The report lifecycle through the store (spec §3): each change is one transaction with its
//! history row, audit row and notifications; illegal changes are refused and change nothing.
//! Reports are filed through the runtime with the scripted engine.

mod common;

use std::sync::Arc;

use common::{Harness, text};
use flows::Lang;
use flows::delivery::OutboxContent;
use flows::reference::Reference;
use flows::stations::Directory;
use seva::lifecycle::Change;
use seva::runtime::{Engine, Runtime};
use seva::store::{Actor, ChangeFailure, Scope};

/// The example district, with Telegram chats for two stations (Kotwali in Hindi, Gandhi
/// Maidan in English).
fn stations() -> Directory {
    let path = format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR"));
    let csv = std::fs::read_to_string(path)
        .unwrap()
        .replace(
            "patna-kotwali,patna,Patna,पटना,Kotwali,कोतवाली,station,hi,,",
            "patna-kotwali,patna,Patna,पटना,Kotwali,कोतवाली,station,hi,-1001,",
        )
        .replace(
            "patna-gandhi-maidan,patna,Patna,पटना,Gandhi Maidan,गांधी मैदान,station,hi,,",
            "patna-gandhi-maidan,patna,Patna,पटना,Gandhi Maidan,गांधी मैदान,station,en,-1002,",
        );
    seva::stations::parse(csv.as_bytes(), "test.csv").unwrap()
}

fn runtime(h: &Harness, events: bool) -> Runtime {
    Runtime::builder(h.store.clone())
        .stations(stations())
        .clock(h.clock())
        .engine(Arc::new(common::scripted) as Engine)
        .events(events)
        .build()
}

/// Files a complaint (at Kotwali) for terminal citizen `who`, in `lang`; returns its reference.
async fn file(h: &Harness, rt: &Runtime, who: &str, lang: &str, draft: &str) -> Reference {
    rt.handle(&text(
        who,
        &format!("{draft}-lang"),
        &format!("lang {lang}"),
    ))
    .await
    .unwrap();
    rt.handle(&text(who, draft, &format!("file {draft}")))
        .await
        .unwrap();
    let reference: String = sqlx::query_scalar("select reference from reports where draft_id = $1")
        .bind(draft)
        .fetch_one(&h.db().await)
        .await
        .unwrap();
    Reference::parse(&reference).unwrap()
}

fn to(status: &str) -> Change {
    Change {
        status: status.to_owned(),
        ..Default::default()
    }
}

async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&h.db().await)
        .await
        .unwrap()
}

/// (kind, channel, recipient, lang, content) of the outbox rows that are not replies.
async fn notices(h: &Harness) -> Vec<(String, String, String, Option<String>, OutboxContent)> {
    let rows: Vec<(String, String, String, Option<String>, String)> = sqlx::query_as(
        "select kind, channel, recipient, lang, content from outbox where kind <> 'reply' order by id",
    )
    .fetch_all(&h.db().await)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(k, c, r, l, content)| (k, c, r, l, serde_json::from_str(&content).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complaint_walks_its_row_with_history_and_one_push_per_change() {
    for h in common::backends().await {
        let rt = runtime(&h, false);
        let reference = file(&h, &rt, "asha", "en", "d1").await;
        let actor = Actor::cli();
        let store = &h.store;

        let steps = [
            Change {
                note: Some("We have your complaint.".into()),
                internal_note: Some("assign to SI Verma".into()),
                ..to("acknowledged")
            },
            to("under_inquiry"),
            Change {
                fir_number: Some(" 123/2026 ".into()),
                ..to("fir_registered")
            },
            Change {
                reason: Some("charge sheet filed".into()),
                ..to("closed")
            },
        ];
        for (i, change) in steps.iter().enumerate() {
            h.advance(60);
            let changed = store
                .change_status(&actor, &reference, change, rt.notices(), h.time())
                .await
                .unwrap();
            assert_eq!(changed.report.status, change.status);
            assert!(changed.pushed, "step {i} pushes");
            assert_eq!(changed.history.actor, "cli");
            assert_eq!(changed.history.at, h.time());
        }

        let detail = store
            .report_detail(&Scope::State, &reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.report.fir_number.as_deref(), Some("123/2026"));
        assert_eq!(
            detail.report.close_reason.as_deref(),
            Some("charge sheet filed")
        );
        let trail: Vec<&str> = detail.history.iter().map(|e| e.status.as_str()).collect();
        assert_eq!(
            trail,
            [
                "submitted",
                "acknowledged",
                "under_inquiry",
                "fir_registered",
                "closed"
            ]
        );
        assert_eq!(detail.history[0].actor, "citizen");
        assert_eq!(
            detail.history[1].note.as_deref(),
            Some("We have your complaint.")
        );
        assert_eq!(
            detail.history[1].internal_note.as_deref(),
            Some("assign to SI Verma")
        );

        let pushes: Vec<_> = notices(&h)
            .await
            .into_iter()
            .filter(|n| n.0 == "push")
            .collect();
        assert_eq!(pushes.len(), 4, "one push per change");
        let (_, channel, recipient, lang, first) = &pushes[0];
        assert_eq!(
            (channel.as_str(), recipient.as_str(), lang.as_deref()),
            ("terminal", "asha", Some("en"))
        );
        let ids: Vec<&str> = first.reply.texts.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            ["push-status", "push-note"],
            "the internal note is never sent"
        );
        assert!(!serde_json::to_string(first).unwrap().contains("SI Verma"));
        let fir = &pushes[2].4;
        assert!(fir.reply.texts.iter().any(|t| t.id == "push-fir"));
        assert_eq!(
            fir.template.as_ref().unwrap().note,
            "FIR number: 123/2026",
            "the template's note carries the FIR number"
        );

        // Closed is final.
        let err = store
            .change_status(
                &actor,
                &reference,
                &Change {
                    reason: Some("again".into()),
                    ..to("closed")
                },
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ChangeFailure::Rule(_)),
            "{err}: closed is final"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_illegal_change_is_refused_naming_the_allowed_statuses_and_changes_nothing() {
    for h in common::backends().await {
        let rt = runtime(&h, true);
        let reference = file(&h, &rt, "asha", "hi", "d1").await;
        let before = count(&h, "select count(*) from outbox").await;

        let err = h
            .store
            .change_status(
                &Actor::cli(),
                &reference,
                &to("fir_registered"),
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot move from submitted to fir_registered; allowed next: acknowledged, closed"
        );
        for (change, message) in [
            (to("closed"), "closing a report needs a reason"),
            (
                to("deposited"),
                "deposited is not a status of this kind of report",
            ),
            (
                Change {
                    fir_number: Some("1/2026".into()),
                    ..to("acknowledged")
                },
                "`fir_number` does not apply to a change to acknowledged",
            ),
        ] {
            let err = h
                .store
                .change_status(&Actor::cli(), &reference, &change, rt.notices(), h.time())
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), message);
        }
        assert_eq!(count(&h, "select count(*) from outbox").await, before);
        assert_eq!(count(&h, "select count(*) from report_history").await, 1);
        let status: String = sqlx::query_scalar("select status from reports")
            .fetch_one(&h.db().await)
            .await
            .unwrap();
        assert_eq!(status, "submitted");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fir_registered_needs_a_number() {
    for h in common::backends().await {
        let rt = runtime(&h, false);
        let reference = file(&h, &rt, "asha", "en", "d1").await;
        for s in ["acknowledged", "under_inquiry"] {
            h.store
                .change_status(&Actor::cli(), &reference, &to(s), rt.notices(), h.time())
                .await
                .unwrap();
        }
        let blank = Change {
            fir_number: Some("   ".into()),
            ..to("fir_registered")
        };
        let err = h
            .store
            .change_status(&Actor::cli(), &reference, &blank, rt.notices(), h.time())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "fir_registered needs an FIR number (fir_number)"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_item_found_names_the_found_report() {
    for h in common::backends().await {
        let rt = runtime(&h, false);
        // The scripted engine files complaints; make a lost and a found report from them.
        let lost = file(&h, &rt, "asha", "en", "lost").await;
        let found = file(&h, &rt, "ravi", "en", "found").await;
        let lost_ref = Reference::generate(flows::reference::ReportKind::Lost, [1; 8]);
        let found_ref = Reference::generate(flows::reference::ReportKind::Found, [2; 8]);
        let db = h.db().await;
        for (old, new, kind) in [(lost, lost_ref, "lost"), (found, found_ref, "found")] {
            sqlx::query(
                "update reports set reference = $1, kind = $2, status = 'registered' where reference = $3",
            )
            .bind(new.to_string())
            .bind(kind)
            .bind(old.to_string())
            .execute(&db)
            .await
            .unwrap();
        }

        let bad = Change {
            found_ref: Some(lost_ref.to_string()),
            ..to("found")
        };
        let err = h
            .store
            .change_status(&Actor::cli(), &lost_ref, &bad, rt.notices(), h.time())
            .await
            .unwrap_err();
        assert!(matches!(err, ChangeFailure::BadFoundRef(_)), "{err}");

        let typed = found_ref.to_string().to_lowercase().replace('-', "");
        let good = Change {
            found_ref: Some(typed),
            ..to("found")
        };
        let changed = h
            .store
            .change_status(&Actor::cli(), &lost_ref, &good, rt.notices(), h.time())
            .await
            .unwrap();
        assert_eq!(
            changed.report.found_ref.as_deref(),
            Some(found_ref.to_string().as_str())
        );
        assert_eq!(
            changed.history.found_ref.as_deref(),
            Some(found_ref.to_string().as_str())
        );
        h.store
            .change_status(
                &Actor::cli(),
                &lost_ref,
                &to("returned"),
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_push_after_stop_or_after_delete_my_data() {
    for h in common::backends().await {
        let rt = runtime(&h, false);
        let stopped = file(&h, &rt, "asha", "en", "d1").await;
        let forgotten = file(&h, &rt, "ravi", "en", "d2").await;
        rt.handle(&text("asha", "m-stop", "stop")).await.unwrap();
        rt.handle(&text("ravi", "m-forget", "forget"))
            .await
            .unwrap();

        for reference in [stopped, forgotten] {
            let changed = h
                .store
                .change_status(
                    &Actor::cli(),
                    &reference,
                    &to("acknowledged"),
                    rt.notices(),
                    h.time(),
                )
                .await
                .unwrap();
            assert!(!changed.pushed);
        }
        assert_eq!(
            count(&h, "select count(*) from outbox where kind = 'push'").await,
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_report_alerts_its_station_chat_in_the_stations_language_and_emits_created() {
    for h in common::backends().await {
        let rt = runtime(&h, true);
        let reference = file(&h, &rt, "asha", "en", "d1").await;
        // Filing the same draft again files nothing and alerts nobody twice.
        rt.handle(&text("asha", "again", "file d1")).await.unwrap();

        let all = notices(&h).await;
        assert_eq!(all.len(), 2, "{all:?}");
        let (kind, channel, recipient, lang, alert) = &all[0];
        assert_eq!(
            (
                kind.as_str(),
                channel.as_str(),
                recipient.as_str(),
                lang.as_deref()
            ),
            ("alert", "telegram", "-1001", Some("hi"))
        );
        let rendered = flows::catalog::Catalog::global().render(Lang::Hi, &alert.reply);
        assert_eq!(
            rendered.body,
            format!("कोतवाली के लिए नई शिकायत {reference}। प्रकार: चोरी।")
        );
        let (kind, channel, recipient, _, event) = &all[1];
        assert_eq!(
            (kind.as_str(), channel.as_str(), recipient.as_str()),
            ("event", "events", "backoffice")
        );
        let event = event.event.as_ref().unwrap();
        assert_eq!(event["type"], "report.created");
        assert_eq!(event["version"], 1);
        assert_eq!(event["occurred_at"], "2026-11-28T12:00:00Z");
        assert_eq!(event["report"]["reference"], reference.to_string());
        assert_eq!(event["report"]["station_id"], "patna-kotwali");
        assert_eq!(event["report"]["status"], "submitted");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_events_configured_no_event_is_written() {
    for h in common::backends().await {
        let rt = runtime(&h, false);
        let reference = file(&h, &rt, "asha", "en", "d1").await;
        h.store
            .change_status(
                &Actor::cli(),
                &reference,
                &to("acknowledged"),
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap();
        assert_eq!(
            count(&h, "select count(*) from outbox where kind = 'event'").await,
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_keeps_the_status_alerts_the_new_station_tells_the_citizen_and_moves_scope() {
    for h in common::backends().await {
        let rt = runtime(&h, true);
        let reference = file(&h, &rt, "asha", "hi", "d1").await;
        h.store
            .change_status(
                &Actor::cli(),
                &reference,
                &to("acknowledged"),
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap();
        let kotwali = Scope::Station("patna-kotwali".into());
        let gandhi = Scope::Station("patna-gandhi-maidan".into());
        let officer = Actor {
            scope: kotwali.clone(),
            ..Actor::cli()
        };

        for (station, expected) in [
            (
                "patna-kotwali",
                "the report is already at station patna-kotwali",
            ),
            ("nowhere", "unknown station \"nowhere\""),
        ] {
            let err = h
                .store
                .transfer_report(&officer, &reference, station, None, rt.notices(), h.time())
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), expected);
        }

        h.advance(30);
        let changed = h
            .store
            .transfer_report(
                &officer,
                &reference,
                "patna-gandhi-maidan",
                Some("Nearer to the place"),
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap();
        assert_eq!(changed.report.status, "acknowledged");
        assert_eq!(changed.history.action, "transfer");
        assert_eq!(
            changed.history.from_station.as_deref(),
            Some("patna-kotwali")
        );
        assert!(changed.alerted && changed.pushed);

        assert!(
            h.store
                .report_detail(&kotwali, &reference)
                .await
                .unwrap()
                .is_none(),
            "the old station loses access"
        );
        assert!(
            h.store
                .report_detail(&gandhi, &reference)
                .await
                .unwrap()
                .is_some()
        );

        let all = notices(&h).await;
        let last: Vec<_> = all.iter().rev().take(3).rev().collect();
        let (kind, _, recipient, lang, alert) = last[0];
        assert_eq!(
            (kind.as_str(), recipient.as_str(), lang.as_deref()),
            ("alert", "-1002", Some("en"))
        );
        assert_eq!(
            flows::catalog::Catalog::global()
                .render(Lang::En, &alert.reply)
                .body,
            format!("Transferred to Gandhi Maidan: complaint {reference}. Category: Theft.")
        );
        let (kind, _, _, lang, push) = last[1];
        assert_eq!((kind.as_str(), lang.as_deref()), ("push", Some("hi")));
        let body = flows::catalog::Catalog::global()
            .render(Lang::Hi, &push.reply)
            .body;
        assert_eq!(
            body,
            format!(
                "आपकी रिपोर्ट {reference} गांधी मैदान को भेज दी गई है।\n\nपुलिस की टिप्पणी: Nearer to the place"
            )
        );
        assert_eq!(
            last[2].4.event.as_ref().unwrap()["type"],
            "report.transferred"
        );

        // The citizen's own status view lists status changes, not the transfer.
        rt.handle(&text("asha", "m-check", &format!("check {reference}")))
            .await
            .unwrap();
        let replies = common::replies(&h.db().await, 1).await;
        let json = replies.last().unwrap().1.as_str().unwrap().to_owned();
        let result: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(result["report"]["history"].as_array().unwrap().len(), 2);

        // A closed report stays where it is.
        h.store
            .change_status(
                &Actor::cli(),
                &reference,
                &Change {
                    reason: Some("resolved".into()),
                    ..to("closed")
                },
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap();
        let err = h
            .store
            .transfer_report(
                &Actor::cli(),
                &reference,
                "patna-kotwali",
                None,
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ChangeFailure::Closed));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notice_key_is_unique_so_a_change_notifies_each_recipient_once() {
    for h in common::backends().await {
        let rt = runtime(&h, true);
        let reference = file(&h, &rt, "asha", "en", "d1").await;
        let changed = h
            .store
            .change_status(
                &Actor::cli(),
                &reference,
                &to("acknowledged"),
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap();
        let db = h.db().await;
        let keys: Vec<String> = sqlx::query_scalar(
            "select dedupe_key from outbox where dedupe_key is not null order by id",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let hid = changed.history.id;
        assert!(keys.contains(&format!("push:{hid}:1")), "{keys:?}");
        assert!(keys.contains(&format!("event:{hid}")), "{keys:?}");
        // Whatever retries, the database refuses a second notice for the same change.
        let again = sqlx::query(
            "insert into outbox (channel, recipient, kind, content, next_attempt_at, created_at, dedupe_key) \
             values ('terminal', 'asha', 'push', '{}', 0, 0, $1)",
        )
        .bind(format!("push:{hid}:1"))
        .execute(&db)
        .await;
        assert!(again.is_err());
        // And the same change again is refused by the rules, notifying nobody.
        assert!(
            h.store
                .change_status(
                    &Actor::cli(),
                    &reference,
                    &to("acknowledged"),
                    rt.notices(),
                    h.time()
                )
                .await
                .is_err()
        );
        assert_eq!(
            count(&h, "select count(*) from outbox where kind = 'push'").await,
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_are_audited_with_who_what_and_when() {
    for h in common::backends().await {
        let rt = runtime(&h, false);
        let reference = file(&h, &rt, "asha", "en", "d1").await;
        h.advance(5);
        h.store
            .change_status(
                &Actor::cli(),
                &reference,
                &to("acknowledged"),
                rt.notices(),
                h.time(),
            )
            .await
            .unwrap();
        let log = h
            .store
            .audit_log(Some(&reference.to_string()), 10)
            .await
            .unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].actor.as_str(), log[0].action.as_str(), log[0].at),
            ("cli", "report.status", h.time())
        );
        let detail: serde_json::Value =
            serde_json::from_str(log[0].detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["from"], "submitted");
        assert_eq!(detail["to"], "acknowledged");
    }
}

/// Files a lost or found item report for terminal citizen `who` straight through the filing
/// transaction (the scripted engine only files complaints).
#[allow(clippy::too_many_arguments)]
async fn file_item(
    h: &Harness,
    rt: &Runtime,
    who: &str,
    kind: flows::reference::ReportKind,
    category: &str,
    identifier: Option<&str>,
    on: (i32, u32, u32),
    station: &str,
) -> Reference {
    let (mut turn, report) = item_turn(h, who, kind, category, identifier, on, station).await;
    turn.file_report(&report, h.time(), rt.notices())
        .await
        .unwrap();
    turn.commit().await.unwrap();
    report.reference
}

/// The turn of terminal citizen `who` (their row locked) and the lost or found item report
/// it would file.
async fn item_turn(
    h: &Harness,
    who: &str,
    kind: flows::reference::ReportKind,
    category: &str,
    identifier: Option<&str>,
    on: (i32, u32, u32),
    station: &str,
) -> (seva::store::Turn, flows::effect::NewReport) {
    let citizen = h
        .store
        .ensure_citizen(flows::message::Channel::Terminal, who, h.time())
        .await
        .unwrap();
    let reference = Reference::generate(kind, rand::random());
    let report = flows::effect::NewReport {
        kind,
        category: category.to_owned(),
        identifier: identifier.map(str::to_owned),
        occurred_on: chrono::NaiveDate::from_ymd_opt(on.0, on.1, on.2),
        station_id: Some(station.to_owned()),
        custody: None,
        attachments: Vec::new(),
        ..common::report(&format!("{who}-{category}-{}", reference), reference)
    };
    (h.store.lock_citizen(citizen.id).await.unwrap(), report)
}

/// PostgreSQL (SQLite's single writer files one report at a time anyway): lost reports of
/// one item type and district, filed at the same moment, do not wait for each other (they
/// cannot match each other), but a found one filed meanwhile waits for them to commit, and
/// then sees and links them.
#[tokio::test(flavor = "multi_thread")]
async fn lost_items_file_side_by_side_and_a_found_one_waits_to_see_them() {
    use flows::reference::ReportKind::{Found, Lost};
    let Some(db) = common::TestDb::postgres().await else {
        return;
    };
    let h = Harness::on(db).await;
    let rt = runtime(&h, false);
    const IMEI: &str = "490154203237518";
    let on = (2026, 11, 20);
    let (mut first, first_report) =
        item_turn(&h, "asha", Lost, "mobile", Some(IMEI), on, "patna-kotwali").await;
    first
        .file_report(&first_report, h.time(), rt.notices())
        .await
        .unwrap();

    // The first lost phone is filed and not committed: a second one goes through.
    let (mut second, second_report) = item_turn(
        &h,
        "ravi",
        Lost,
        "mobile",
        Some("356938035643809"),
        on,
        "patna-kotwali",
    )
    .await;
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        second.file_report(&second_report, h.time(), rt.notices()),
    )
    .await
    .expect("a lost report waited for another lost one")
    .unwrap();
    second.commit().await.unwrap();

    // A found phone waits for the first lost one's commit, then links to it.
    let (mut found_turn, found_report) = item_turn(
        &h,
        "meena",
        Found,
        "mobile",
        Some(IMEI),
        (2026, 11, 25),
        "patna-gandhi-maidan",
    )
    .await;
    let filing = async {
        found_turn
            .file_report(&found_report, h.time(), rt.notices())
            .await
            .unwrap();
        found_turn.commit().await.unwrap();
        std::time::Instant::now()
    };
    let committing = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let at = std::time::Instant::now();
        first.commit().await.unwrap();
        at
    };
    let (filed_at, committed_at) = tokio::join!(filing, committing);
    assert!(
        filed_at > committed_at,
        "a found report did not wait for an uncommitted lost one"
    );
    let matches = h
        .store
        .report_detail(&Scope::State, &first_report.reference)
        .await
        .unwrap()
        .unwrap()
        .matches;
    assert_eq!(matches, [found_report.reference.to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_found_phone_with_the_same_imei_is_linked_to_the_lost_one_and_notifies_once() {
    use flows::reference::ReportKind::{Found, Lost};
    for h in common::backends().await {
        let rt = runtime(&h, false);
        const IMEI: &str = "490154203237518";
        rt.handle(&text("asha", "l1", "lang hi")).await.unwrap();
        let lost = file_item(
            &h,
            &rt,
            "asha",
            Lost,
            "mobile",
            Some(IMEI),
            (2026, 11, 20),
            "patna-kotwali",
        )
        .await;
        let other_phone = file_item(
            &h,
            &rt,
            "ravi",
            Lost,
            "mobile",
            Some("356938035643809"),
            (2026, 11, 20),
            "patna-kotwali",
        )
        .await;
        let wallet = file_item(
            &h,
            &rt,
            "ravi",
            Lost,
            "wallet",
            None,
            (2026, 11, 20),
            "patna-kotwali",
        )
        .await;
        let before = notices(&h).await.len();

        let found = file_item(
            &h,
            &rt,
            "meena",
            Found,
            "mobile",
            Some(IMEI),
            (2026, 11, 25),
            "patna-gandhi-maidan",
        )
        .await;
        let new: Vec<_> = notices(&h).await.into_iter().skip(before).collect();
        // The found report's own alert, then the owner's push and both stations' alerts.
        let summary: Vec<(&str, &str, Option<&str>)> = new
            .iter()
            .map(|(k, _, r, l, _)| (k.as_str(), r.as_str(), l.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("alert", "-1002", Some("en")),
                ("push", "asha", Some("hi")),
                ("alert", "-1001", Some("hi")),
                ("alert", "-1002", Some("en")),
            ]
        );
        let catalog = flows::catalog::Catalog::global();
        assert_eq!(
            catalog.render(Lang::Hi, &new[1].4.reply).body,
            format!(
                "पाई गई एक वस्तु आपकी खोई वस्तु की रिपोर्ट {lost} से मेल खा सकती है। कोतवाली आपसे संपर्क करेगा।"
            )
        );
        assert_eq!(
            catalog.render(Lang::En, &new[3].4.reply).body,
            format!(
                "Possible match: found item report {found} and lost item report {lost} (Mobile phone). Please check both reports."
            )
        );

        let detail = |r: Reference| {
            let store = h.store.clone();
            async move {
                store
                    .report_detail(&Scope::State, &r)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        assert_eq!(detail(lost).await.matches, [found.to_string()]);
        assert_eq!(detail(found).await.matches, [lost.to_string()]);
        assert!(detail(other_phone).await.matches.is_empty());
        assert!(detail(wallet).await.matches.is_empty());
        assert_eq!(
            detail(lost).await.report.status,
            "registered",
            "a match changes no status"
        );

        // Filing the same found report again (a repeated confirm) notifies nobody twice.
        let count_before = notices(&h).await.len();
        let citizen = h
            .store
            .ensure_citizen(flows::message::Channel::Terminal, "meena", h.time())
            .await
            .unwrap();
        let again = flows::effect::NewReport {
            kind: Found,
            category: "mobile".into(),
            identifier: Some(IMEI.into()),
            ..common::report(&format!("meena-mobile-{found}"), found)
        };
        let mut turn = h.store.lock_citizen(citizen.id).await.unwrap();
        turn.file_report(&again, h.time(), rt.notices())
            .await
            .unwrap();
        turn.commit().await.unwrap();
        assert_eq!(notices(&h).await.len(), count_before);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn matching_needs_compatible_dates_and_equal_document_tails() {
    use flows::reference::ReportKind::{Found, Lost};
    for h in common::backends().await {
        let rt = runtime(&h, false);
        let card = file_item(
            &h,
            &rt,
            "asha",
            Lost,
            "id_document",
            Some("XXXXXXXX1234"),
            (2026, 11, 20),
            "patna-kotwali",
        )
        .await;
        // Found before it was lost: not the same item.
        let early = file_item(
            &h,
            &rt,
            "ravi",
            Found,
            "id_document",
            Some("XXXX1234"),
            (2026, 11, 19),
            "patna-kotwali",
        )
        .await;
        let other_tail = file_item(
            &h,
            &rt,
            "ravi",
            Found,
            "id_document",
            Some("XXXX9999"),
            (2026, 11, 21),
            "patna-kotwali",
        )
        .await;
        let same_tail = file_item(
            &h,
            &rt,
            "meena",
            Found,
            "id_document",
            Some("XXXXXX1234"),
            (2026, 11, 22),
            "patna-kotwali",
        )
        .await;
        let matches = h
            .store
            .report_detail(&Scope::State, &card)
            .await
            .unwrap()
            .unwrap()
            .matches;
        assert_eq!(matches, [same_tail.to_string()]);
        let _ = (early, other_tail);
    }
}

/// A filing whose reference another report already holds files nothing and asks for a new
/// draw; the same draft filed again answers with its first reference and files nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_taken_reference_is_drawn_again_and_a_refiled_draft_keeps_its_first() {
    use seva::store::Filing;
    for h in common::backends().await {
        let rt = runtime(&h, false);
        let citizen = h
            .store
            .ensure_citizen(flows::message::Channel::Terminal, "asha", h.time())
            .await
            .unwrap();
        let first = Reference::generate(flows::reference::ReportKind::Complaint, [7; 8]);
        let second = Reference::generate(flows::reference::ReportKind::Complaint, [8; 8]);
        let file = |report: flows::effect::NewReport| {
            let (store, rt, now) = (h.store.clone(), rt.clone(), h.time());
            async move {
                let mut turn = store.lock_citizen(citizen.id).await.unwrap();
                let filing = turn.file_report(&report, now, rt.notices()).await.unwrap();
                turn.commit().await.unwrap();
                filing
            }
        };
        let filed = file(common::report("draft-a", first)).await;
        assert!(matches!(filed, Filing::Filed { new: true, reference, .. } if reference == first));

        // Another draft that drew the same reference.
        let taken = file(common::report("draft-b", first)).await;
        assert_eq!(taken, Filing::ReferenceTaken, "{:?}", h.kind);

        // The first draft confirmed again, with a fresh draw: the first reference stands.
        let again = file(common::report("draft-a", second)).await;
        assert!(
            matches!(again, Filing::Filed { new: false, reference, .. } if reference == first),
            "{again:?}"
        );
        let reports: i64 = sqlx::query_scalar("select count(*) from reports")
            .fetch_one(&h.db().await)
            .await
            .unwrap();
        assert_eq!(reports, 1, "{:?}", h.kind);
    }
}

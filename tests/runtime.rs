//! The inbound path against a real SQLite file: accept (transaction 1), process (transaction 2),
//! sweep. The dialogue engine is scripted (see `common::scripted`) so effects are exact.

mod common;

use common::{FIXED_REFERENCE, Harness, example_stations, replies, text};
use flows::Lang;
use flows::effect::EffectResult;
use seva::runtime::{ERROR_REPLY_ID, Handled, Runtime};
use seva::store::{Accepted, Store};

/// The message ids of the citizen's replies, in order.
async fn reply_ids(db: &sqlx::AnyPool, citizen_id: i64) -> Vec<String> {
    replies(db, citizen_id)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// The citizen's `result` replies, decoded.
async fn results(h: &Harness, citizen_id: i64) -> Vec<EffectResult> {
    replies(&h.db().await, citizen_id)
        .await
        .into_iter()
        .filter(|(id, _)| id == "result")
        .map(|(_, json)| serde_json::from_str(json.as_str().unwrap()).unwrap())
        .collect()
}

fn filed_reference(r: &EffectResult) -> String {
    match r {
        EffectResult::Filed { reference, .. } => reference.to_string(),
        other => panic!("not a filing: {other:?}"),
    }
}

#[tokio::test]
async fn a_redelivered_message_is_stored_once_and_changes_nothing() {
    for h in common::backends().await {
        let rt = h.runtime();
        let first = rt.accept(&text("asha", "wamid.1", "hello")).await.unwrap();
        let Accepted::New { citizen_id, .. } = first else {
            panic!("{first:?}")
        };

        h.advance(60);
        let again = rt
            .accept(&text("asha", "wamid.1", "hello, changed"))
            .await
            .unwrap();
        assert_eq!(again, Accepted::Duplicate { citizen_id });

        let db = h.db().await;
        let inbox: Vec<String> = sqlx::query_scalar("select payload from inbox")
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(inbox.len(), 1);
        assert!(
            inbox[0].contains("\"hello\""),
            "the first payload stays: {}",
            inbox[0]
        );
        let last: i64 = sqlx::query_scalar("select last_inbound_at from citizens")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(
            last,
            common::START,
            "a duplicate does not touch the citizen"
        );
        let citizens: i64 = sqlx::query_scalar("select count(*) from citizens")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(citizens, 1);

        // The same id on another channel is another message.
        let mut other = text("asha", "wamid.1", "hello");
        other.channel = flows::message::Channel::Whatsapp;
        assert!(matches!(
            rt.accept(&other).await.unwrap(),
            Accepted::New { .. }
        ));
    }
}

#[tokio::test]
async fn one_citizens_messages_are_processed_in_arrival_order_in_one_turn() {
    for h in common::backends().await {
        let rt = h.runtime();
        let mut citizen = 0;
        for (i, word) in ["first", "second", "third"].iter().enumerate() {
            citizen = rt
                .accept(&text("asha", &format!("m{i}"), word))
                .await
                .unwrap()
                .citizen_id();
        }
        let done = rt.process(citizen).await.unwrap();
        assert_eq!((done.messages, done.failed, done.replies), (3, 0, 3));

        let said: Vec<_> = replies(&h.db().await, citizen)
            .await
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        assert_eq!(said, ["first", "second", "third"]);
        let db = h.db().await;
        let open: i64 = sqlx::query_scalar("select count(*) from inbox where processed_at is null")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(open, 0);
        let state: String =
            sqlx::query_scalar("select state from conversations where citizen_id = $1")
                .bind(citizen)
                .fetch_one(&db)
                .await
                .unwrap();
        assert!(state.contains("\"menu\""), "{state}");

        // Nothing left: a second call is a no-op.
        assert_eq!(rt.process(citizen).await.unwrap().messages, 0);
    }
}

#[tokio::test]
async fn filing_the_same_draft_twice_files_once_with_the_first_reference() {
    for h in common::backends().await {
        let rt = h.runtime();
        let citizen = rt
            .handle(&text("asha", "m1", "file draft-1"))
            .await
            .unwrap()
            .citizen_id();
        rt.handle(&text("asha", "m2", "file draft-1"))
            .await
            .unwrap();

        let filed = results(&h, citizen).await;
        assert_eq!(filed.len(), 2);
        assert_eq!(filed_reference(&filed[0]), filed_reference(&filed[1]));
        assert!(
            matches!(&filed[0], EffectResult::Filed { station: Some(s), .. } if s == "patna-kotwali"),
            "the engine gets the station id: {filed:?}"
        );

        let db = h.db().await;
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("select reference, status, citizen_id from reports")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(
            rows,
            [(filed_reference(&filed[0]), "submitted".to_owned(), citizen)]
        );
        let history: Vec<(String, String)> =
            sqlx::query_as("select status, actor from report_history")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(history, [("submitted".to_owned(), "citizen".to_owned())]);
        let attachments: Vec<(i64, String, String)> =
            sqlx::query_as("select n, kind, file_id from attachments")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(attachments, [(1, "photo".to_owned(), "photo-1".to_owned())]);
    }
}

#[tokio::test]
async fn a_taken_reference_is_replaced_by_a_fresh_one() {
    for h in common::backends().await {
        let rt = h.runtime();
        let citizen = rt
            .handle(&text("asha", "m1", "file-fixed draft-1"))
            .await
            .unwrap()
            .citizen_id();
        rt.handle(&text("asha", "m2", "file-fixed draft-2"))
            .await
            .unwrap();

        let filed = results(&h, citizen).await;
        assert_eq!(filed_reference(&filed[0]), FIXED_REFERENCE);
        let second = filed_reference(&filed[1]);
        assert_ne!(second, FIXED_REFERENCE);
        assert!(
            second.starts_with("C-") && flows::reference::Reference::parse(&second).is_ok(),
            "{second}"
        );
        let db = h.db().await;
        let count: i64 = sqlx::query_scalar("select count(*) from reports")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(count, 2);
    }
}

#[tokio::test]
async fn looking_up_another_citizens_report_answers_like_a_missing_one() {
    for h in common::backends().await {
        let rt = h.runtime();
        let asha = rt
            .handle(&text("asha", "a1", "file-fixed draft-1"))
            .await
            .unwrap()
            .citizen_id();
        h.advance(3600);
        rt.handle(&text("asha", "a2", &format!("check {FIXED_REFERENCE}")))
            .await
            .unwrap();
        let ravi = rt
            .handle(&text("ravi", "r1", &format!("check {FIXED_REFERENCE}")))
            .await
            .unwrap()
            .citizen_id();
        rt.handle(&text("ravi", "r2", "check L-7K3Q-9XM4-K"))
            .await
            .unwrap();

        let theirs = results(&h, ravi).await;
        assert_eq!(
            theirs,
            [
                EffectResult::Report { report: None },
                EffectResult::Report { report: None }
            ]
        );

        let own = results(&h, asha).await;
        let EffectResult::Report { report: Some(view) } = &own[1] else {
            panic!("{own:?}")
        };
        assert_eq!(view.reference.to_string(), FIXED_REFERENCE);
        assert_eq!(view.status, "submitted");
        assert_eq!(view.station_en.as_deref(), Some("Kotwali"));
        assert_eq!(view.station_hi.as_deref(), Some("कोतवाली"));
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert_eq!(view.updated_on, day);
        assert_eq!(view.history, [("submitted".to_owned(), day)]);
    }
}

#[tokio::test]
async fn dates_are_local_to_seva_timezone() {
    for h in common::backends().await {
        let rt = h.runtime();
        // 20:00 UTC is 01:30 the next day in India.
        h.advance(8 * 3600);
        rt.handle(&text("asha", "a1", "file-fixed draft-1"))
            .await
            .unwrap();
        let asha = rt
            .handle(&text("asha", "a2", &format!("check {FIXED_REFERENCE}")))
            .await
            .unwrap()
            .citizen_id();
        let own = results(&h, asha).await;
        let EffectResult::Report { report: Some(view) } = &own[1] else {
            panic!("{own:?}")
        };
        assert_eq!(
            view.updated_on,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
        );
    }
}

#[tokio::test]
async fn my_reports_lists_the_latest_five_newest_first() {
    for h in common::backends().await {
        let rt = h.runtime();
        for i in 0..7 {
            h.advance(60);
            rt.handle(&text("asha", &format!("f{i}"), &format!("file d{i}")))
                .await
                .unwrap();
        }
        rt.handle(&text("ravi", "r1", "file ravi-1")).await.unwrap();
        let asha = rt
            .handle(&text("asha", "mine", "mine"))
            .await
            .unwrap()
            .citizen_id();
        let all = results(&h, asha).await;
        let filed: Vec<String> = all[..7].iter().map(filed_reference).collect();
        let EffectResult::MyReports { reports } = &all[7] else {
            panic!("{all:?}")
        };
        let listed: Vec<String> = reports.iter().map(|r| r.reference.to_string()).collect();
        let newest: Vec<String> = filed.iter().rev().take(5).cloned().collect();
        assert_eq!(listed, newest);
    }
}

#[tokio::test]
async fn a_failing_message_is_answered_and_does_not_block_the_next() {
    for h in common::backends().await {
        let rt = h.runtime();
        let citizen = rt
            .accept(&text("asha", "m1", "lang hi"))
            .await
            .unwrap()
            .citizen_id();
        rt.accept(&text("asha", "m2", "boom")).await.unwrap();
        rt.accept(&text("asha", "m3", "after")).await.unwrap();
        let done = rt.process(citizen).await.unwrap();
        assert_eq!((done.messages, done.failed), (3, 1));

        let said = reply_ids(&h.db().await, citizen).await;
        assert_eq!(said, [ERROR_REPLY_ID, "echo"]);
        let db = h.db().await;
        let notes: Vec<(String, Option<String>)> =
            sqlx::query_as("select provider_id, error from inbox order by id")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(notes[0], ("m1".to_owned(), None));
        assert!(
            notes[1]
                .1
                .as_deref()
                .unwrap_or_default()
                .contains("panicked"),
            "{notes:?}"
        );
        assert_eq!(notes[2], ("m3".to_owned(), None));
        // The language set before the failure stays, and the apology is in it.
        let lang: Vec<(Option<String>,)> = sqlx::query_as("select lang from outbox order by id")
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(lang, [(Some("hi".to_owned()),), (Some("hi".to_owned()),)]);
    }
}

#[tokio::test]
async fn a_message_stored_and_processed_in_one_commit_is_answered_once_in_order() {
    for h in common::backends().await {
        let rt = h.runtime();
        // An earlier message stored alone (a crash before its turn) is answered first.
        let citizen = rt
            .accept(&text("asha", "m1", "lang hi"))
            .await
            .unwrap()
            .citizen_id();
        let handled = rt
            .accept_and_process(&text("asha", "m2", "hello"))
            .await
            .unwrap();
        assert!(
            matches!(handled, Handled::Processed { citizen_id, .. } if citizen_id == citizen),
            "{handled:?}"
        );
        let again = rt
            .accept_and_process(&text("asha", "m2", "hello"))
            .await
            .unwrap();
        assert_eq!(
            again,
            Handled::Duplicate {
                citizen_id: citizen
            }
        );
        let said = reply_ids(&h.db().await, citizen).await;
        assert_eq!(
            said,
            ["echo"],
            "lang sets the language silently, hello echoes"
        );
        // m1 ran first: the echo is in the language it set.
        let lang: Vec<(Option<String>,)> = sqlx::query_as("select lang from outbox")
            .fetch_all(&h.db().await)
            .await
            .unwrap();
        assert_eq!(lang, [(Some("hi".to_owned()),)]);
        // Both were marked processed: nothing is left for a later turn.
        assert_eq!(rt.process(citizen).await.unwrap().messages, 0);
    }
}

#[tokio::test]
async fn a_message_that_fails_in_its_own_commit_is_stored_alone_and_answered_with_an_apology() {
    for h in common::backends().await {
        let rt = h.runtime();
        let handled = rt
            .accept_and_process(&text("asha", "m1", "boom"))
            .await
            .unwrap();
        let Handled::Stored { citizen_id, .. } = handled else {
            panic!("{handled:?}")
        };
        let db = h.db().await;
        let stored: Vec<(String, Option<i64>)> =
            sqlx::query_as("select provider_id, processed_at from inbox")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(stored, [("m1".to_owned(), None)]);
        assert!(replies(&db, citizen_id).await.is_empty());
        // The caller's turn isolates the message and apologizes, once.
        let done = rt.process(citizen_id).await.unwrap();
        assert_eq!((done.messages, done.failed), (1, 1));
        let said = reply_ids(&db, citizen_id).await;
        assert_eq!(said, [ERROR_REPLY_ID]);
    }
}

#[tokio::test]
async fn effects_that_change_the_citizen_persist() {
    for h in common::backends().await {
        let rt = h.runtime();
        let citizen = rt
            .handle(&text("asha", "m1", "lang hi"))
            .await
            .unwrap()
            .citizen_id();
        rt.handle(&text("asha", "m2", "stop")).await.unwrap();
        let c = h.store.citizen(citizen).await.unwrap().unwrap();
        assert_eq!(c.lang, Some(Lang::Hi));
        assert!(!c.pushes_enabled);
    }
}

#[tokio::test]
async fn delete_my_data_blanks_personal_fields_and_unlinks_reports() {
    for h in common::backends().await {
        let rt = h.runtime();
        let citizen = rt
            .handle(&text("asha", "m1", "file-fixed draft-1"))
            .await
            .unwrap()
            .citizen_id();
        rt.handle(&text("asha", "m2", "forget")).await.unwrap();

        let db = h.db().await;
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            String,
            String,
        );
        let row: Row = sqlx::query_as(
            "select name, phone, description, place, citizen_id, category, status from reports",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(
            row,
            (
                None,
                None,
                None,
                None,
                None,
                "theft".to_owned(),
                "submitted".to_owned()
            )
        );
        let attachments: i64 = sqlx::query_scalar("select count(*) from attachments")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(attachments, 0);
        let first: String =
            sqlx::query_scalar("select payload from inbox where provider_id = 'm1'")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(first, "{}");
        assert_eq!(h.store.citizen(citizen).await.unwrap().unwrap().phone, None);

        // Their report is no longer theirs.
        rt.handle(&text("asha", "m3", &format!("check {FIXED_REFERENCE}")))
            .await
            .unwrap();
        let last = results(&h, citizen).await.pop().unwrap();
        assert_eq!(last, EffectResult::Report { report: None });
    }
}

#[tokio::test]
async fn an_unreadable_state_restarts_the_conversation_politely() {
    for h in common::backends().await {
        let rt = h.runtime();
        let citizen = rt
            .handle(&text("asha", "m1", "hello"))
            .await
            .unwrap()
            .citizen_id();
        let db = h.db().await;
        sqlx::query("update conversations set state = '{\"version\": 0}'")
            .execute(&db)
            .await
            .unwrap();
        rt.handle(&text("asha", "m2", "hello again")).await.unwrap();
        rt.handle(&text("asha", "m3", "and again")).await.unwrap();
        let said = reply_ids(&db, citizen).await;
        assert_eq!(said, ["echo", "state-reset", "echo"]);
    }
}

#[tokio::test]
async fn a_crash_after_accept_loses_nothing_and_processes_once() {
    for h in common::backends().await {
        let citizen = {
            let rt = h.runtime();
            let citizen = rt
                .accept(&text("asha", "m1", "before the crash"))
                .await
                .unwrap()
                .citizen_id();
            h.store.close().await;
            citizen
        };

        let store = Store::open(&h.url).await.unwrap();
        let rt = h.runtime_on(store);
        assert_eq!(rt.sweep().await.unwrap(), 1);
        assert_eq!(rt.sweep().await.unwrap(), 0);
        let said = replies(&h.db().await, citizen).await;
        assert_eq!(
            said,
            [("echo".to_owned(), serde_json::json!("before the crash"))]
        );
    }
}

#[tokio::test]
async fn citizens_are_processed_concurrently_each_in_order() {
    for h in common::backends().await {
        let rt = h.runtime();
        let mut tasks = Vec::new();
        for who in ["a", "b", "c", "d"] {
            let rt = rt.clone();
            tasks.push(tokio::spawn(async move {
                let mut citizen = 0;
                for i in 0..5 {
                    let msg = text(who, &format!("{who}{i}"), &format!("{who}-{i}"));
                    citizen = rt.handle(&msg).await.unwrap().citizen_id();
                }
                citizen
            }));
        }
        let db = h.db().await;
        for (task, who) in tasks.into_iter().zip(["a", "b", "c", "d"]) {
            let citizen = task.await.unwrap();
            let said: Vec<_> = replies(&db, citizen)
                .await
                .into_iter()
                .map(|(_, a)| a)
                .collect();
            let want: Vec<_> = (0..5)
                .map(|i| serde_json::json!(format!("{who}-{i}")))
                .collect();
            assert_eq!(said, want);
        }
    }
}

/// Many citizens writing at once share commits (group commit); each is still answered once,
/// in order, and a redelivery racing its original is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizens_writing_at_once_are_each_answered_once_in_order() {
    for h in common::backends().await {
        let rt = h.runtime();
        let mut tasks = Vec::new();
        for c in 0..30 {
            let rt = rt.clone();
            tasks.push(tokio::spawn(async move {
                let who = format!("c{c}");
                let first = text(&who, &format!("{who}-1"), &format!("{who} one"));
                // The original and its redelivery race for the same batch.
                let (a, b) =
                    tokio::join!(rt.accept_and_process(&first), rt.accept_and_process(&first));
                let second = rt
                    .accept_and_process(&text(&who, &format!("{who}-2"), &format!("{who} two")))
                    .await
                    .unwrap();
                (who, [a.unwrap(), b.unwrap(), second])
            }));
        }
        let db = h.db().await;
        for task in tasks {
            let (who, handled) = task.await.unwrap();
            let processed = handled
                .iter()
                .filter(|h| matches!(h, Handled::Processed { .. }))
                .count();
            let duplicates = handled
                .iter()
                .filter(|h| matches!(h, Handled::Duplicate { .. }))
                .count();
            assert_eq!((processed, duplicates), (2, 1), "{who}: {handled:?}");
            let citizen = handled[2].citizen_id();
            let said: Vec<_> = replies(&db, citizen)
                .await
                .into_iter()
                .map(|(_, a)| a)
                .collect();
            assert_eq!(
                said,
                [
                    serde_json::json!(format!("{who} one")),
                    serde_json::json!(format!("{who} two"))
                ],
                "{who}"
            );
        }
        let waiting: i64 =
            sqlx::query_scalar("select count(*) from inbox where processed_at is null")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(waiting, 0);
        // Batches write their multi-row statements padded to a few sizes: the padding
        // must not become rows.
        for (table, want) in [
            ("citizens", 30),
            ("inbox", 60),
            ("conversations", 30),
            ("outbox", 60),
        ] {
            let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
                .fetch_one(&db)
                .await
                .unwrap();
            assert_eq!(n, want, "{table}");
        }
    }
}

/// A Telegram polling batch: several citizens' messages, one of them twice, handed over
/// together. Every message is answered by the time the call returns (the transport then
/// moves its offset), each citizen's in the order given, the redelivery once.
#[tokio::test]
async fn a_batch_handed_over_together_is_answered_at_once_each_citizen_in_order() {
    for h in common::backends().await {
        let rt = h.runtime();
        let batch = [
            text("asha", "a1", "lang hi"),
            text("ravi", "r1", "ravi one"),
            text("asha", "a2", "asha two"),
            text("asha", "a1", "lang hi"),
            text("ravi", "r2", "ravi two"),
        ];
        let refs: Vec<&flows::message::Inbound> = batch.iter().collect();
        let handled: Vec<Handled> = rt
            .accept_and_process_all(&refs)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(handled.len(), 5);
        let (asha, ravi) = (handled[0].citizen_id(), handled[1].citizen_id());
        let duplicates: Vec<usize> = (0..5)
            .filter(|&i| matches!(handled[i], Handled::Duplicate { .. }))
            .collect();
        // The two copies of a1 are one message: which copy is called the duplicate does not
        // matter to the transport, only that the other is answered.
        assert!(duplicates == [0] || duplicates == [3], "{handled:?}");
        assert_eq!(handled[3].citizen_id(), asha);
        let db = h.db().await;
        let said = |citizen| {
            let db = db.clone();
            async move {
                replies(&db, citizen)
                    .await
                    .into_iter()
                    .map(|(_, a)| a)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(said(asha).await, [serde_json::json!("asha two")]);
        assert_eq!(
            said(ravi).await,
            [serde_json::json!("ravi one"), serde_json::json!("ravi two")]
        );
        // a1 ran before a2: the echo is in the language a1 set.
        let lang: Option<String> =
            sqlx::query_scalar("select lang from outbox where citizen_id = $1")
                .bind(asha)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(lang.as_deref(), Some("hi"));
        let waiting: i64 =
            sqlx::query_scalar("select count(*) from inbox where processed_at is null")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(waiting, 0, "nothing is left for a later turn");
        assert!(rt.accept_and_process_all(&[]).await.is_empty());
    }
}

/// A message the engine cannot handle fails its whole batch; the batch is undone and its
/// messages handled one by one, so the others are answered as if it were not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_message_does_not_cost_the_others_sharing_its_commit() {
    for h in common::backends().await {
        let rt = h.runtime();
        let mut tasks = Vec::new();
        for c in 0..12 {
            let rt = rt.clone();
            tasks.push(tokio::spawn(async move {
                let who = format!("c{c}");
                let body = if c == 5 {
                    "boom".to_owned()
                } else {
                    format!("{who} hi")
                };
                let handled = rt
                    .accept_and_process(&text(&who, &who, &body))
                    .await
                    .unwrap();
                (c, body, handled)
            }));
        }
        let db = h.db().await;
        for task in tasks {
            let (c, body, handled) = task.await.unwrap();
            if c == 5 {
                // As alone: stored, its turn left to the caller, which apologizes once.
                let Handled::Stored { citizen_id, .. } = handled else {
                    panic!("{handled:?}")
                };
                assert!(replies(&db, citizen_id).await.is_empty());
                let done = rt.process(citizen_id).await.unwrap();
                assert_eq!((done.messages, done.failed), (1, 1));
                assert_eq!(reply_ids(&db, citizen_id).await, [ERROR_REPLY_ID]);
            } else {
                let Handled::Processed { citizen_id, .. } = handled else {
                    panic!("{c}: {handled:?}")
                };
                let said: Vec<_> = replies(&db, citizen_id)
                    .await
                    .into_iter()
                    .map(|(_, a)| a)
                    .collect();
                assert_eq!(said, [serde_json::json!(body)]);
            }
        }
    }
}

/// Each runtime keeps the conversations it saved, parsed; the row is still the truth. A
/// citizen whose messages alternate between two replicas is answered as by one.
#[tokio::test]
async fn a_conversation_moved_on_by_another_replica_continues_from_its_row() {
    for h in common::backends().await {
        let replica = || {
            Runtime::builder(h.store.clone())
                .stations(example_stations())
                .clock(h.clock())
                .build()
        };
        let (one, a, b) = (replica(), replica(), replica());
        // Hello, English, the complaint journey, its first answer, back to the menu.
        let said = ["hello", "1", "1", "hi", "menu"];
        let mut alone = 0;
        let mut shared = 0;
        for (n, words) in said.iter().enumerate() {
            alone = one
                .handle(&text("asha", &format!("one{n}"), words))
                .await
                .unwrap()
                .citizen_id();
            let rt = if n % 2 == 0 { &a } else { &b };
            shared = rt
                .handle(&text("ravi", &format!("two{n}"), words))
                .await
                .unwrap()
                .citizen_id();
        }
        let db = h.db().await;
        let expected = reply_ids(&db, alone).await;
        // The journey went somewhere: a replica going by its own stale copy would have taken
        // the second "1" as the language again.
        assert!(expected.len() >= said.len(), "{expected:?}");
        assert_eq!(
            expected.iter().filter(|id| id.contains("language")).count(),
            1,
            "{expected:?}"
        );
        assert_eq!(reply_ids(&db, shared).await, expected);
    }
}

//! The Telegram channel end to end: the real server (`seva::run` on 127.0.0.1:0, SQLite in a
//! tempdir) against the in-process fake Bot API (`bot::testing::FakeBotApi`), which speaks
//! Telegram's JSON, error bodies included. Polling and webhook modes, whole journeys with
//! button presses, contact and location, blocked citizens, 429, restarts. Loopback only.

use std::time::Duration;

use bot::testing::{FakeBotApi, FakeError};
use serde_json::Value;
use seva::config::Config;

mod common;

use common::TestDb;
use common::telegram::*;

#[tokio::test]
async fn polling_a_whole_complaint_in_hindi_with_buttons_contact_location_photo_and_a_deep_link() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[]).await;
        let asha = Citizen {
            api: &api,
            user: 111,
        };

        // Start-up: the webhook is removed keeping pending updates, and the command menu is
        // registered in English (default) and Hindi.
        let commands = api
            .wait_for_calls("setMyCommands", 2, WAIT)
            .await
            .into_iter()
            .collect::<Vec<_>>();
        let english = commands
            .iter()
            .find(|c| c.get("language_code").is_none())
            .expect("default (English) commands");
        let hindi = commands
            .iter()
            .find(|c| c["language_code"] == "hi")
            .expect("Hindi commands");
        let names: Vec<&str> = english["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["command"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["start", "help", "cancel", "language", "status"]);
        assert_eq!(
            english["commands"][0]["description"],
            "Start or go to the main menu"
        );
        assert_eq!(
            hindi["commands"][0]["description"],
            "शुरू करें या मुख्य मेनू पर जाएं"
        );
        let deleted = api.wait_for_calls("deleteWebhook", 1, WAIT).await;
        assert_ne!(deleted[0]["drop_pending_updates"], true);

        asha.say("/start", "अपनी भाषा चुनें").await;
        let greeting = asha.message_with_button("lang:hi");
        asha.tap("lang:hi", "आप क्या करना चाहते हैं").await;
        // The pressed keyboard is removed and the press answered.
        wait_for("the pressed keyboard is removed", || async {
            api.message(greeting)
                .is_some_and(|m| m.get("reply_markup").is_none())
        })
        .await;
        assert!(!api.calls("answerCallbackQuery").is_empty());

        let menu = asha.message_with_button("menu:complaint");
        asha.tap("menu:complaint", "आपकी शिकायत किस बारे में है").await;
        // The same old menu pressed again: the engine says it has expired and asks again.
        asha.tap_on(menu, "menu:complaint", "यह मेनू पुराना हो गया है")
            .await;
        asha.tap("cat:theft", "क्या हुआ?").await;
        asha.say(
            "बाज़ार में खड़ी मेरी साइकिल दिन में चोरी हो गई। मदद चाहिए।",
            "यह कब हुआ?",
        )
        .await;
        asha.tap("when:yesterday", "यह कहां हुआ?").await;
        // "Share location" is a reply-keyboard button, labelled in Hindi.
        let keyboard = asha.reply_keyboard("यह कहां हुआ?");
        assert_eq!(keyboard["keyboard"][0][0]["request_location"], true);
        assert_eq!(keyboard["keyboard"][0][0]["text"], "📍 अपनी लोकेशन भेजें");
        let nearest = asha.location(25.6117, 85.1379, "सबसे पास का थाना").await;
        assert!(nearest.contains("कोतवाली"), "{nearest}");
        asha.tap("st:patna-kotwali", "आपका पूरा नाम?").await;
        asha.say("रमेश कुमार", "मोबाइल नंबर").await;
        let keyboard = asha.reply_keyboard("मोबाइल नंबर");
        assert_eq!(keyboard["keyboard"][0][0]["request_contact"], true);
        assert_eq!(keyboard["keyboard"][0][0]["text"], "📱 अपना नंबर भेजें");
        // Somebody else's contact card is refused; the citizen's own is accepted.
        asha.contact("+91 98123 00000", 999, "अपना ही नंबर").await;
        asha.contact("919812300001", 111, "फोटो").await;
        asha.photo("AgAC-bill-photo", "जोड़ दिया गया (1)").await;
        asha.tap("done", "सहमत").await;
        let review = asha.tap("consent:yes", "जांच लें").await.1;
        assert!(review.contains("25.61170"), "{review}");
        assert!(review.contains("+91 98123 00001"), "{review}");
        let review_message = asha.message_with_button("review:confirm");
        let filed = asha.tap("review:confirm", "संदर्भ संख्या").await.1;
        let reference = reference_after(&filed, "संदर्भ संख्या: ");
        assert!(reference.starts_with("C-"));

        // A stale "confirm" press files nothing more.
        asha.tap_on(review_message, "review:confirm", "यह मेनू पुराना हो गया है")
            .await;

        let db = env.db().await;
        let (count, station, phone, place): (i64, String, String, String) = sqlx::query_as(
            "select count(*), max(station_id), max(phone), max(place) from reports where reference = $1",
        )
        .bind(&reference)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(count, 1);
        assert_eq!(station, "patna-kotwali");
        assert_eq!(phone, "+919812300001");
        assert!(place.contains("25.6117"), "{place}");
        let reports: i64 = sqlx::query_scalar("select count(*) from reports")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(reports, 1, "filed once");
        let attachment: String =
            sqlx::query_scalar("select file_id from attachments a join reports r on r.id = a.report_id where r.reference = $1")
                .bind(&reference)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(attachment, "AgAC-bill-photo");

        // The deep link from a status message opens that report's status.
        let status = asha
            .say(&format!("/start status_{reference}"), "स्थिति")
            .await;
        assert!(status.contains(&reference), "{status}");

        // Every button press was answered.
        let presses = api
            .call_log()
            .iter()
            .filter(|c| c.method == "answerCallbackQuery")
            .count();
        assert!(presses >= 9, "{presses} presses answered");
        // Nothing was sent twice and nothing is left undelivered (once the dispatcher recorded
        // the last send Telegram answered).
        let undelivered = || async {
            let n: i64 = sqlx::query_scalar(
                "select count(*) from outbox where channel = 'telegram' and status <> 'sent' and kind <> 'alert'",
            )
            .fetch_one(&db)
            .await
            .unwrap();
            n
        };
        wait_for("every reply recorded sent", || async {
            undelivered().await == 0
        })
        .await;
        assert_eq!(undelivered().await, 0);
        server.stop().await;
    }
}

#[tokio::test]
async fn polling_a_found_item_in_english_then_my_reports() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[]).await;
        let amit = Citizen {
            api: &api,
            user: 222,
        };
        amit.say("hi", "Choose your language").await;
        amit.tap("lang:en", "What would you like to do?").await;
        amit.tap("menu:found", "What did you find?").await;
        amit.tap("item:wallet", "Describe what you found").await;
        amit.say(
            "Brown leather wallet with a bus pass",
            "When did you find it?",
        )
        .await;
        amit.tap("when:today", "Where did you find it?").await;
        assert_eq!(
            amit.reply_keyboard("Where did you find it?")["keyboard"][0][0]["text"],
            "📍 Share my location"
        );
        amit.say("Near Patna Junction, platform 1", "Which police station")
            .await;
        amit.tap("not-sure", "Where is the item now?").await;
        amit.tap("custody:with_me", "Your full name?").await;
        amit.say("Amit Singh", "Your mobile number?").await;
        assert_eq!(
            amit.reply_keyboard("Your mobile number?")["keyboard"][0][0]["text"],
            "📱 Share my number"
        );
        let review = amit.say("98765 43210", "Please check your").await;
        assert!(review.contains("Wallet"), "{review}");
        let filed = amit.tap("review:confirm", "Reference number").await.1;
        let reference = reference_after(&filed, "Reference number: ");
        assert!(reference.starts_with("F-"), "{reference}");
        assert!(filed.contains("Control Room"), "{filed}");
        let mine = amit.tap("menu:mine", &reference).await.1;
        assert!(mine.contains(&reference));
        server.stop().await;
    }
}

/// Updates that queued while Seva was down come in one `getUpdates` batch: several citizens,
/// one of them twice, and a group chat between. Each is answered before the next call's
/// offset confirms the whole batch, each citizen's in order.
#[tokio::test]
async fn polling_a_batch_from_several_chats_answers_each_in_order() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let first = api.push_text(301, "hi");
        api.push_text(302, "hi");
        api.push_group_text(-500, 304, "hello bot");
        let last = api.push_text(301, "English");
        let server = Server::start(&env, &api, &[]).await;
        wait_for("the batch confirmed", || async {
            api.offsets().contains(&Some(i64::from(last) + 1))
        })
        .await;
        let db = env.db().await;
        let unprocessed: i64 =
            sqlx::query_scalar("select count(*) from inbox where processed_at is null")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(unprocessed, 0, "answered before the offset moved");
        let (asha, ravi) = (
            Citizen {
                api: &api,
                user: 301,
            },
            Citizen {
                api: &api,
                user: 302,
            },
        );
        asha.wait(0, "What would you like to do?").await;
        ravi.wait(0, "Choose your language").await;
        let said = asha.texts();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].contains("Choose your language"), "{said:?}");
        assert!(said[1].contains("What would you like to do?"), "{said:?}");
        assert_eq!(ravi.texts().len(), 1);
        wait_for("the group's one line", || async {
            api.sent_texts(-500).len() == 1
        })
        .await;
        let offsets = api.offsets();
        assert_eq!(offsets[0], None, "{offsets:?}");
        assert!(
            !offsets.contains(&Some(i64::from(first) + 1)),
            "one batch, confirmed whole: {offsets:?}"
        );
        assert_eq!(api.pending_updates(), 0);
        server.stop().await;
    }
}

#[tokio::test]
async fn webhook_mode_a_lost_item_in_english_and_the_secret_is_checked() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let hook = format!("http://{address}/webhook/telegram");
        let config = env.config(
            &api,
            &[
                ("TELEGRAM_WEBHOOK_URL", hook.clone()),
                ("TELEGRAM_WEBHOOK_SECRET", SECRET.to_owned()),
            ],
        );
        let server = Server::start_on(listener, config).await;

        // setWebhook with the secret, at start; no polling in webhook mode.
        let set = api.wait_for_calls("setWebhook", 1, WAIT).await;
        assert_eq!(set[0]["url"], hook.as_str());
        assert_eq!(set[0]["secret_token"], SECRET);
        api.wait_for_calls("setMyCommands", 2, WAIT).await;

        // A wrong or missing secret is refused before anything is stored.
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let update = serde_json::json!({ "update_id": 900_001, "message": {
            "message_id": 1, "date": 1_700_000_000, "text": "/start",
            "from": { "id": 333, "is_bot": false, "first_name": "Sunita", "language_code": "en" },
            "chat": { "id": 333, "type": "private", "first_name": "Sunita" } } });
        for secret in [Some("wrong"), None] {
            let mut request = http.post(&hook).json(&update);
            if let Some(secret) = secret {
                request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
            }
            assert_eq!(request.send().await.unwrap().status(), 401);
        }
        let db = env.db().await;
        let stored: i64 = sqlx::query_scalar("select count(*) from inbox")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(stored, 0);

        // The fake delivers updates to the webhook with the right secret, as Telegram does.
        let sunita = Citizen {
            api: &api,
            user: 333,
        };
        sunita.say("/start", "Choose your language").await;
        assert!(
            api.webhook_deliveries().iter().all(|(_, s)| *s == 200),
            "{:?}",
            api.webhook_deliveries()
        );
        sunita.tap("lang:en", "What would you like to do?").await;
        sunita
            .say("mera phone kho gaya", "What did you lose?")
            .await;
        sunita.tap("item:mobile", "IMEI").await;
        sunita.say("4901 5420 3237 518", "Describe the item").await;
        sunita
            .say(
                "Black Redmi Note 12, blue back cover",
                "When did you lose it?",
            )
            .await;
        sunita.tap("when:yesterday", "Where did you lose it?").await;
        sunita
            .location(25.6196, 85.1452, "nearest police station")
            .await;
        sunita
            .tap("st:patna-gandhi-maidan", "Your full name?")
            .await;
        sunita.say("Sunita Devi", "Your mobile number?").await;
        sunita
            .contact("+919876543210", 333, "Please check your")
            .await;
        let filed = sunita.tap("review:confirm", "Reference number").await.1;
        let reference = reference_after(&filed, "Reference number: ");
        assert!(reference.starts_with("L-"), "{reference}");
        assert!(
            api.calls("getUpdates").is_empty(),
            "no polling in webhook mode"
        );

        // The same update delivered again is stored once and answered once.
        let before = sunita.texts().len();
        let status = http
            .post(&hook)
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .json(&serde_json::json!({ "update_id": 1, "message": {
                "message_id": 1, "date": 1_700_000_000, "text": "/start",
                "from": { "id": 333, "is_bot": false, "first_name": "Sunita" },
                "chat": { "id": 333, "type": "private" } } }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(sunita.texts().len(), before, "a duplicate is not answered");
        server.stop().await;
    }
}

#[tokio::test]
async fn webhook_mode_refuses_to_start_without_a_secret() {
    let vars = [
        ("TELEGRAM_BOT_TOKEN", "1:x"),
        (
            "TELEGRAM_WEBHOOK_URL",
            "https://seva.example.org/webhook/telegram",
        ),
    ];
    let err = Config::load(&|key| {
        vars.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap_err();
    assert!(err.to_string().contains("TELEGRAM_WEBHOOK_SECRET"), "{err}");
    // Nor with a secret Telegram would refuse.
    let err = Config::load(&|key| match key {
        "TELEGRAM_WEBHOOK_SECRET" => Some("not allowed!".to_owned()),
        _ => vars
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned()),
    })
    .unwrap_err();
    assert!(err.to_string().contains("TELEGRAM_WEBHOOK_SECRET"), "{err}");

    // `seva serve` itself exits with that error before listening or calling Telegram.
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_seva"))
        .arg("serve")
        .env_clear()
        .env("TELEGRAM_BOT_TOKEN", "1:x")
        .env(
            "TELEGRAM_WEBHOOK_URL",
            "https://seva.example.org/webhook/telegram",
        )
        .env(
            "SEVA_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("seva.db").display()),
        )
        .env("SEVA_LISTEN", "127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TELEGRAM_WEBHOOK_SECRET"), "{stderr}");
    assert!(!dir.path().join("seva.db").exists(), "nothing was started");
}

#[tokio::test]
async fn a_citizen_who_blocked_the_bot_is_marked_unreachable_and_gets_nothing_more() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[]).await;
        let ravi = Citizen {
            api: &api,
            user: 444,
        };
        ravi.say("/start", "Choose your language").await;
        let db = env.db().await;
        assert_eq!(unreachable(&db, 444).await, Some(false));

        // The next reply meets a 403: the citizen is marked unreachable, the row is dead.
        api.fail_next("sendMessage", FakeError::Blocked);
        let calls_before = ravi.send_calls().len();
        api.push_callback(444, ravi.message_with_button("lang:en"), "lang:en");
        wait_for("the citizen is marked unreachable", || async {
            unreachable(&db, 444).await == Some(true)
        })
        .await;
        let dead = || async {
            let dead: Vec<String> = sqlx::query_scalar(
                "select last_error from outbox where recipient = '444' and status = 'dead' order by id",
            )
            .fetch_all(&db)
            .await
            .unwrap();
            dead
        };
        // The dispatcher records the row just after the sender marked the citizen.
        wait_for("the row that met the 403 is dead", || async {
            !dead().await.is_empty()
        })
        .await;
        let dead = dead().await;
        assert!(!dead.is_empty() && dead[0].starts_with("403"), "{dead:?}");

        // A status push now is not even tried.
        let citizen = citizen_id(&db, 444).await;
        let push = enqueue_push(&env, citizen, 444).await;
        wait_for("the push is given up", || async {
            outbox_status(&db, push).await.0 == "dead"
        })
        .await;
        let (_, error) = outbox_status(&db, push).await;
        assert!(error.unwrap().contains("unreachable"));
        assert_eq!(
            ravi.send_calls().len(),
            calls_before + 1,
            "only the send that met the 403"
        );

        // Writing again shows they unblocked the bot (even if Telegram's `member` update is late).
        ravi.say("menu", "What would you like to do?").await;
        assert_eq!(unreachable(&db, 444).await, Some(false));
        server.stop().await;
    }
}

#[tokio::test]
async fn my_chat_member_kicked_stops_sends_and_member_again_resumes_them() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[]).await;
        let neha = Citizen {
            api: &api,
            user: 555,
        };
        neha.say("/start", "Choose your language").await;
        let db = env.db().await;
        let citizen = citizen_id(&db, 555).await;

        api.push_membership(555, false);
        wait_for("kicked marks unreachable", || async {
            unreachable(&db, 555).await == Some(true)
        })
        .await;
        let calls = neha.send_calls().len();
        let push = enqueue_push(&env, citizen, 555).await;
        wait_for("the push to a blocked citizen is dead", || async {
            outbox_status(&db, push).await.0 == "dead"
        })
        .await;
        assert_eq!(neha.send_calls().len(), calls, "nothing sent while blocked");

        let from = neha.texts().len();
        api.push_membership(555, true);
        wait_for("member clears it", || async {
            unreachable(&db, 555).await == Some(false)
        })
        .await;
        // The push refused while she had blocked the bot reaches her now, once.
        neha.wait(from, "Help and emergency numbers").await;
        wait_for("the refused push is sent after all", || async {
            outbox_status(&db, push).await.0 == "sent"
        })
        .await;
        assert_eq!(neha.texts().len(), from + 1);
        let from = neha.texts().len();
        let push = enqueue_push(&env, citizen, 555).await;
        neha.wait(from, "Help and emergency numbers").await;
        // The dispatcher records the send just after Telegram answered it.
        wait_for("the push is recorded sent", || async {
            outbox_status(&db, push).await.0 == "sent"
        })
        .await;

        // A membership update Telegram delivers again (older than the latest) changes nothing.
        let kicked_again = api.push_update(serde_json::json!({ "my_chat_member": {
            "chat": { "id": 555, "type": "private", "first_name": "Neha" },
            "from": { "id": 555, "is_bot": false, "first_name": "Neha" },
            "date": 1_000,
            "old_chat_member": { "user": { "id": 4242, "is_bot": true, "first_name": "Seva" }, "status": "member" },
            "new_chat_member": { "user": { "id": 4242, "is_bot": true, "first_name": "Seva" }, "status": "kicked", "until_date": 0 } } }));
        wait_for("the old update is confirmed", || async {
            api.offsets()
                .iter()
                .any(|o| o.is_some_and(|o| o > i64::from(kicked_again)))
        })
        .await;
        assert_eq!(unreachable(&db, 555).await, Some(false));
        server.stop().await;
    }
}

#[tokio::test]
async fn a_membership_change_dated_in_the_future_does_not_outrank_a_later_block() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[]).await;
        let neha = Citizen {
            api: &api,
            user: 556,
        };
        neha.say("/start", "Choose your language").await;
        let db = env.db().await;
        let bot = serde_json::json!({ "id": api.bot_id(), "is_bot": true, "first_name": "Seva" });
        // "member" dated in the year 2100, then a genuine "kicked" dated now.
        api.push_update(serde_json::json!({ "my_chat_member": {
            "chat": { "id": 556, "type": "private", "first_name": "Neha" },
            "from": { "id": 556, "is_bot": false, "first_name": "Neha" },
            "date": 4_102_444_800i64,
            "old_chat_member": { "user": bot, "status": "kicked", "until_date": 0 },
            "new_chat_member": { "user": bot, "status": "member" },
        }}));
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.push_membership(556, false);
        wait_for("the later block counts", || async {
            unreachable(&db, 556).await == Some(true)
        })
        .await;
        server.stop().await;
    }
}

#[tokio::test]
async fn a_429_is_waited_out_and_the_message_then_arrives_once() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[]).await;
        let kiran = Citizen {
            api: &api,
            user: 666,
        };
        api.fail_next("sendMessage", FakeError::RetryAfter(1));
        kiran.say("/start", "Choose your language").await;
        let attempts: Vec<_> = api
            .call_log()
            .into_iter()
            .filter(|c| c.method == "sendMessage" && c.params["chat_id"] == 666)
            .collect();
        assert_eq!(attempts.len(), 2, "one refused, one delivered");
        let gap = attempts[1].at.duration_since(attempts[0].at);
        assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
        assert_eq!(kiran.texts().len(), 1, "delivered once");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_restart_mid_conversation_loses_nothing_and_repeats_nothing() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let first = Server::start(&env, &api, &[]).await;
        let mohan = Citizen {
            api: &api,
            user: 777,
        };
        mohan.say("/start", "अपनी भाषा चुनें").await;
        mohan.tap("lang:hi", "आप क्या करना चाहते हैं").await;
        let (complaint_press, _) = mohan.tap("menu:complaint", "आपकी शिकायत किस बारे में है").await;
        first.stop().await;
        assert_eq!(api.pending_updates(), 0, "everything stored was confirmed");

        // While Seva is down the citizen presses on; Telegram also hands out again an update
        // Seva had stored (as if the confirmation had been lost in a crash).
        api.push_callback(777, mohan.message_with_button("cat:theft"), "cat:theft");
        assert!(api.redeliver(complaint_press));
        let polls_before = api.offsets().len();

        let second = Server::start(&env, &api, &[]).await;
        mohan.wait(0, "क्या हुआ?").await;
        assert_eq!(
            api.offsets()[polls_before],
            None,
            "polling restarts without a stored offset"
        );
        mohan.say("मेरा मोबाइल बस में चोरी हो गया।", "यह कब हुआ?").await;

        let texts = mohan.texts();
        let count = |needle: &str| texts.iter().filter(|t| t.contains(needle)).count();
        assert_eq!(count("आपकी शिकायत किस बारे में है"), 1, "{texts:#?}");
        assert_eq!(count("क्या हुआ?"), 1, "{texts:#?}");
        assert_eq!(count("यह कब हुआ?"), 1, "{texts:#?}");

        let db = env.db().await;
        let citizen = citizen_id(&db, 777).await;
        let (inbox, unprocessed): (i64, i64) = sqlx::query_as(
            "select count(*), count(*) - count(processed_at) from inbox where citizen_id = $1",
        )
        .bind(citizen)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!((inbox, unprocessed), (5, 0));
        let rows: i64 = sqlx::query_scalar(
            "select count(*) from outbox where citizen_id = $1 and status = 'sent'",
        )
        .bind(citizen)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(
            rows as usize,
            mohan.send_calls().len(),
            "each row sent once"
        );
        second.stop().await;
    }
}

#[tokio::test]
async fn a_group_chat_gets_one_polite_line_and_a_station_alert_chat_none() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[]).await;
        const GROUP: i64 = -42_001;
        api.push_group_text(GROUP, 888, "/start");
        api.push_group_text(ALERT_CHAT, 888, "/start");
        let line = api.wait_for_calls("sendMessage", 1, WAIT).await;
        assert_eq!(line[0]["chat_id"], GROUP);
        let text = line[0]["text"].as_str().unwrap();
        assert!(
            text.contains("निजी चैट") && text.contains("private chat"),
            "{text}"
        );

        // More messages in the same group: no more lines.
        api.push_group_text(GROUP, 889, "hello?");
        let other = Citizen {
            api: &api,
            user: 889,
        };
        other.say("/start", "Choose your language").await;
        let to_groups: Vec<Value> = api
            .calls("sendMessage")
            .into_iter()
            .filter(|c| c["chat_id"].as_i64().is_some_and(|id| id < 0))
            .collect();
        assert_eq!(to_groups.len(), 1, "{to_groups:?}");
        let db = env.db().await;
        let citizens: i64 = sqlx::query_scalar("select count(*) from citizens")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(citizens, 1, "group members are not citizens");
        server.stop().await;
    }
}

#[tokio::test]
async fn one_chat_is_paced_after_a_short_burst() {
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[("SEVA_TELEGRAM_CHAT_MPS", "2".into())]).await;
        let leela = Citizen {
            api: &api,
            user: 999,
        };
        leela.say("/start", "Choose your language").await;
        let db = env.db().await;
        let citizen = citizen_id(&db, 999).await;
        tokio::time::sleep(Duration::from_secs(2)).await; // the burst is back
        for _ in 0..6 {
            enqueue_push(&env, citizen, 999).await;
        }
        wait_for("six pushes delivered", || async {
            leela.texts().len() == 7
        })
        .await;
        let times: Vec<_> = api
            .call_log()
            .into_iter()
            .filter(|c| c.method == "sendMessage" && c.params["chat_id"] == 999)
            .map(|c| c.at)
            .skip(1)
            .collect();
        // Three at once, then one every half second.
        let span = times[5].duration_since(times[0]);
        assert!(span >= Duration::from_millis(1400), "{span:?}");
        assert!(span < Duration::from_secs(5), "{span:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn replicas_on_postgres_poll_one_at_a_time_and_another_takes_over() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = Env::new(db);
    let api = FakeBotApi::start(TOKEN).await;
    let first = Server::start(&env, &api, &[]).await;
    let asha = Citizen {
        api: &api,
        user: 777,
    };
    asha.say("/start", "Choose your language").await;

    // A second replica on the same database does not poll while the first does (Telegram
    // would answer one of them 409).
    let second = Server::start(&env, &api, &[]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.calls("deleteWebhook").len(), 1, "one poller");

    // The first stops: the second takes the lead within seconds and answers.
    first.stop().await;
    let from = asha.texts().len();
    api.push_text(777, "/help");
    asha.wait(from, "112").await;
    assert_eq!(
        api.calls("deleteWebhook").len(),
        2,
        "the second replica polls now"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let helps = asha.texts()[from..]
        .iter()
        .filter(|t| t.contains("112"))
        .count();
    assert_eq!(helps, 1, "answered once");
    second.stop().await;
}

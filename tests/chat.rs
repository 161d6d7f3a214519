//! `seva chat` end to end: the compiled binary, a database in a tempdir, stdin piped in.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use flows::Lang;
use flows::catalog::Catalog;
use flows::reply::{Reply, Text};
use sqlx::AnyPool;

mod common;

use common::TestDb;

struct Chat {
    db: TestDb,
}

impl Chat {
    fn new(db: TestDb) -> Chat {
        Chat { db }
    }

    fn url(&self) -> String {
        self.db.url.clone()
    }

    /// Runs `seva chat ARGS` with `input` on stdin; returns stdout. Fails the test on a non-zero
    /// exit, printing stderr.
    fn run(&self, args: &[&str], input: &[u8]) -> String {
        let stations = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/stations.example.csv");
        let mut child = Command::new(env!("CARGO_BIN_EXE_seva"))
            .arg("chat")
            .args(args)
            .env_clear()
            .env("SEVA_DATABASE_URL", self.url())
            .env("SEVA_STATIONS_CSV", stations)
            .current_dir(self.db.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "seva chat failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    async fn db(&self) -> AnyPool {
        self.db.pool().await
    }
}

fn say(lang: Lang, id: &str) -> String {
    Catalog::global().text(lang, &Text::new(id))
}

#[tokio::test]
async fn a_complaint_filed_in_hindi_is_checked_from_a_second_session_and_hidden_from_others() {
    for db in common::TestDb::all().await {
        let chat = Chat::new(db);
        let filing = [
            "नमस्ते",
            "1", // हिन्दी
            "शिकायत",
            "चोरी",
            "बाज़ार से मेरी साइकिल चोरी हो गई",
            "आज",
            "कंकड़बाग बाज़ार",
            "2", // कोतवाली (1 is "not sure")
            "आशा",
            "9123456789",
            "हो गया", // no attachments
            "हाँ",     // consent
            "1",      // confirm
        ];
        let out = chat.run(
            &["--as", "asha"],
            format!("{}\n", filing.join("\n")).as_bytes(),
        );
        assert!(out.contains(&say(Lang::Hi, "menu-prompt")), "{out}");
        let filed = common::references(&out);
        assert_eq!(filed.len(), 1, "one reference printed: {out}");
        let reference = &filed[0];
        assert!(reference.starts_with("C-"), "{reference}");

        let db = chat.db().await;
        let report: (String, String, String, String, String) = sqlx::query_as(
            "select r.status, r.station_id, r.lang, c.channel, c.external_id \
             from reports r join citizens c on c.id = r.citizen_id where r.reference = $1",
        )
        .bind(reference)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(
            report,
            (
                "submitted".into(),
                "patna-kotwali".into(),
                "hi".into(),
                "terminal".into(),
                "asha".into()
            )
        );

        // Later, as the same citizen, typed loosely: no language question, the status in Hindi.
        let loose = reference.to_lowercase().replace('-', " ");
        let out = chat.run(&["--as", "asha"], format!("स्थिति\n{loose}\n").as_bytes());
        assert!(!out.contains(&say(Lang::Hi, "language-prompt")), "{out}");
        assert!(out.contains(&format!("{reference} (")), "{out}");
        assert!(
            out.contains("कोतवाली") && out.contains(&say(Lang::Hi, "status-submitted")),
            "{out}"
        );

        // Another citizen gets exactly the unknown-reference answer.
        let out = chat.run(
            &["--as", "ravi", "--lang", "hi"],
            format!("स्थिति\n{reference}\n").as_bytes(),
        );
        assert!(out.contains(&say(Lang::Hi, "status-not-found")), "{out}");
        assert!(!out.contains(&format!("{reference} (")), "{out}");
    }
}

#[tokio::test]
async fn lang_skips_the_language_question_and_is_remembered() {
    for db in common::TestDb::all().await {
        let chat = Chat::new(db);
        let out = chat.run(&["--lang", "en"], b"menu\n");
        let menu_en = say(Lang::En, "menu-prompt");
        assert!(out.contains(&menu_en), "{out}");
        assert!(!out.contains(&say(Lang::En, "language-prompt")), "{out}");

        // Invalid UTF-8 is just a message the bot does not understand.
        let out = chat.run(&[], b"\xff\xfe\nmenu\n");
        assert!(out.contains(&menu_en), "{out}");
        assert!(!out.contains(&say(Lang::Hi, "menu-prompt")), "{out}");

        let db = chat.db().await;
        let citizens: Vec<(String, Option<String>)> =
            sqlx::query_as("select external_id, lang from citizens")
                .fetch_all(&db)
                .await
                .unwrap();
        assert_eq!(citizens, [("local".to_owned(), Some("en".to_owned()))]);
        let unsent: i64 = sqlx::query_scalar("select count(*) from outbox where status <> 'sent'")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(unsent, 0);
    }
}

#[tokio::test]
async fn a_push_for_a_terminal_citizen_is_shown_when_they_next_open_chat() {
    for db in common::TestDb::all().await {
        let chat = Chat::new(db);
        chat.run(&["--as", "asha", "--lang", "hi"], b"");
        let store = seva::store::Store::open(&chat.url()).await.unwrap();
        let citizen = store
            .find_citizen(flows::message::Channel::Terminal, "asha")
            .await
            .unwrap()
            .unwrap();
        let push = Reply::text(Text::new("status-prompt"));
        let id = store
            .enqueue(
                &seva::store::NewOutbox {
                    citizen_id: Some(citizen.id),
                    channel: flows::message::Channel::Terminal,
                    recipient: "asha".to_owned(),
                    kind: seva::store::OutboxKind::Push,
                    content: serde_json::to_string(&push).unwrap(),
                    lang: Some(Lang::Hi),
                },
                chrono::Utc::now().timestamp(),
            )
            .await
            .unwrap();

        let other = chat.run(&["--as", "ravi"], b"");
        assert!(
            !other.contains(&say(Lang::Hi, "status-prompt")),
            "not someone else's: {other}"
        );
        let out = chat.run(&["--as", "asha"], b"");
        assert_eq!(out.trim(), say(Lang::Hi, "status-prompt"));
        let row = store.outbox_row(id).await.unwrap().unwrap();
        assert_eq!(row.status, seva::store::OutboxStatus::Sent);
        let again = chat.run(&["--as", "asha"], b"");
        assert_eq!(again, "", "shown once");
    }
}

#[tokio::test]
async fn a_draft_resumes_after_a_restart_on_the_same_database() {
    for db in common::TestDb::all().await {
        let chat = Chat::new(db);
        // First process: half a lost-item report in English, then the process exits.
        let out = chat.run(
            &["--as", "meera", "--lang", "en"],
            b"lost\nwallet\nbrown leather wallet\n",
        );
        assert!(
            out.contains(&say(Lang::En, "ask-when-lost").replace("{ $max }", "")),
            "{out}"
        );

        // A new process on the same file picks up the same question: the draft survived.
        let out = chat.run(
            &["--as", "meera"],
            b"yesterday\nPatna Junction\n2\nMeera\n9123456780\n1\n",
        );
        assert!(!out.contains(&say(Lang::En, "language-prompt")), "{out}");
        let filed = common::references(&out);
        assert_eq!(filed.len(), 1, "{out}");
        assert!(filed[0].starts_with("L-"), "{}", filed[0]);

        let db = chat.db().await;
        let (description,): (String,) =
            sqlx::query_as("select description from reports where reference = $1")
                .bind(&filed[0])
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(description, "brown leather wallet");
    }
}

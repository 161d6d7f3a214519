//! Outgoing WhatsApp messages: the exact Graph API request bodies for each reply kind, and the
//! Graph client against the in-process fake Graph API on 127.0.0.1 (its successes and Meta's
//! documented errors). Nothing here reaches the internet.

use std::time::Duration;

use flows::catalog::{Rendered, RenderedChoice};
use flows::delivery::{SendOutcome, TemplateParams};
use flows::reply::Hint;
use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;
use webhook::graph::{GraphClient, MediaError, Secret, classify};
use webhook::render::{
    self, Recipient, render, render_template, shorten, split_text, template_param, width,
};
use webhook::testing::{FakeError, FakeGraph};

const TOKEN: &str = "EAAG-test-token-never-printed";
const PNID: &str = "106540352242922";
const TO: &str = "919876543210";

fn phone() -> Recipient {
    Recipient::Phone(TO.into())
}

fn choice(id: &str, short: &str, full: &str) -> RenderedChoice {
    RenderedChoice {
        id: id.into(),
        short: short.into(),
        full: full.into(),
    }
}

fn reply(body: &str, choices: Vec<RenderedChoice>, hint: Option<Hint>) -> Rendered {
    Rendered {
        body: body.into(),
        choices,
        hint,
    }
}

// ---- render -------------------------------------------------------------------------------

#[test]
fn plain_text_is_a_text_message_with_the_outbox_id() {
    let out = render(
        &phone(),
        &reply("नमस्ते! Seva में आपका स्वागत है।", vec![], None),
        "outbox:7",
    );
    assert_eq!(
        out,
        vec![json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": "text",
            "text": { "preview_url": false, "body": "नमस्ते! Seva में आपका स्वागत है।" },
            "biz_opaque_callback_data": "outbox:7",
        })]
    );
}

#[test]
fn a_business_scoped_user_is_addressed_by_recipient_not_to() {
    let to = Recipient::for_sender("US.13491208655302741918");
    assert_eq!(to, Recipient::User("US.13491208655302741918".into()));
    assert_eq!(Recipient::for_sender("919876543210"), phone());
    assert_eq!(Recipient::for_sender("+919876543210"), phone());
    let out = render(&to, &reply("Hello", vec![], None), "outbox:1");
    assert_eq!(out[0]["recipient"], "US.13491208655302741918");
    assert!(out[0].get("to").is_none());
}

#[test]
fn a_long_text_is_split_on_line_boundaries_into_several_messages() {
    let line = "यह एक लंबी पंक्ति है जो बार-बार दोहराई जाती है।"; // 47 chars
    let text = vec![line; 200].join("\n");
    assert!(width(&text) > 4096 * 2);
    let out = render(&phone(), &reply(&text, vec![], None), "outbox:9");
    assert_eq!(out.len(), 3);
    let bodies: Vec<&str> = out
        .iter()
        .map(|m| m["text"]["body"].as_str().unwrap())
        .collect();
    for b in &bodies {
        assert!(width(b) <= 4096);
        assert!(
            b.starts_with(line) && b.ends_with(line),
            "split inside a line"
        );
    }
    assert_eq!(bodies.join("\n"), text);
    assert!(
        out.iter()
            .all(|m| m["biz_opaque_callback_data"] == "outbox:9")
    );
}

#[test]
fn a_5000_character_single_word_is_split_without_losing_anything() {
    let text = "क्ष".repeat(2000); // 6000 UTF-16 units, no spaces
    let parts = split_text(&text, 4096);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts.concat(), text);
    assert!(
        parts
            .iter()
            .all(|p| p.starts_with('क') && !p.ends_with('\u{094D}'))
    );
}

#[test]
fn up_to_three_choices_are_reply_buttons_with_numbered_lines_in_the_body() {
    let r = reply(
        "क्या आप यह शिकायत दर्ज करना चाहते हैं?",
        vec![
            choice("confirm:yes", "हाँ, दर्ज करें", "हाँ, शिकायत दर्ज करें"),
            choice("confirm:edit", "बदलें", "कुछ बदलना है"),
        ],
        None,
    );
    let out = render(&phone(), &r, "outbox:3");
    assert_eq!(
        out,
        vec![json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": { "text": "क्या आप यह शिकायत दर्ज करना चाहते हैं?\n\n1. हाँ, शिकायत दर्ज करें\n2. कुछ बदलना है" },
                "action": { "buttons": [
                    { "type": "reply", "reply": { "id": "confirm:yes", "title": "हाँ, दर्ज करें" } },
                    { "type": "reply", "reply": { "id": "confirm:edit", "title": "बदलें" } },
                ] },
            },
            "biz_opaque_callback_data": "outbox:3",
        })]
    );
}

#[test]
fn button_titles_are_shortened_on_grapheme_boundaries_and_ids_kept() {
    let long = "साइबर धोखाधड़ी की शिकायत"; // 24 chars
    let r = reply("चुनें", vec![choice("cat:cyber", long, long)], None);
    let out = render(&phone(), &r, "o");
    let b = &out[0]["interactive"]["action"]["buttons"][0]["reply"];
    assert_eq!(b["id"], "cat:cyber");
    let title = b["title"].as_str().unwrap();
    assert!(width(title) <= 20, "{title}");
    assert!(title.ends_with('…'));
    let kept = title.trim_end_matches('…');
    assert!(long.starts_with(kept));
    assert!(long[kept.len()..].graphemes(true).next().is_some());
    assert!(!kept.ends_with('\u{094D}') && !kept.ends_with('\u{093C}'));
}

#[test]
fn duplicate_button_titles_are_numbered_so_meta_accepts_them() {
    let r = reply(
        "Which?",
        vec![
            choice("a", "Same", "Same one"),
            choice("b", "Same", "Same two"),
        ],
        None,
    );
    let out = render(&phone(), &r, "o");
    let buttons = out[0]["interactive"]["action"]["buttons"]
        .as_array()
        .unwrap();
    assert_eq!(buttons[0]["reply"]["title"], "1. Same");
    assert_eq!(buttons[1]["reply"]["title"], "2. Same");
}

#[test]
fn a_choice_id_given_twice_falls_back_to_numbered_text() {
    // Meta refuses two buttons (or list rows) with one id; a press could not be told apart.
    for n in [2, 5] {
        let mut choices: Vec<_> = (0..n)
            .map(|i| choice(&format!("c:{i}"), &format!("Option {i}"), "x"))
            .collect();
        choices.push(choice("c:0", "Again", "Again"));
        let out = render(&phone(), &reply("Which?", choices, None), "o");
        assert!(out.iter().all(|m| m["type"] == "text"), "{out:?}");
        let text = out[0]["text"]["body"].as_str().unwrap();
        assert!(text.contains(&format!("{}. Again", n + 1)), "{text}");
    }
}

#[test]
fn four_to_ten_choices_are_a_list_with_descriptions_for_cut_labels() {
    let choices = vec![
        choice("cat:theft", "Theft", "Theft"),
        choice("cat:cyber", "Cyber / online fraud", "Cyber or online fraud"),
        choice("cat:harass", "Harassment or threat", "Harassment or threat"),
        choice("cat:women", "Women's safety", "Women's safety"),
        choice(
            "cat:missing",
            "Missing person (urgent cases)",
            "Missing person (urgent cases)",
        ),
    ];
    let r = reply("What is the complaint about?", choices, None);
    let out = render(&phone(), &r, "outbox:5");
    assert_eq!(
        out,
        vec![json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": { "text": "What is the complaint about?\n\n1. Theft\n2. Cyber or online fraud\n3. Harassment or threat\n4. Women's safety\n5. Missing person (urgent cases)" },
                "action": {
                    "button": "Choose an option",
                    "sections": [{ "title": "Options", "rows": [
                        { "id": "cat:theft", "title": "Theft" },
                        { "id": "cat:cyber", "title": "Cyber / online fraud", "description": "Cyber or online fraud" },
                        { "id": "cat:harass", "title": "Harassment or threat" },
                        { "id": "cat:women", "title": "Women's safety" },
                        { "id": "cat:missing", "title": "Missing person (urgent…", "description": "Missing person (urgent cases)" },
                    ] }],
                },
            },
            "biz_opaque_callback_data": "outbox:5",
        })]
    );
}

#[test]
fn a_hindi_list_has_hindi_labels() {
    let choices: Vec<_> = (1..=4)
        .map(|i| {
            choice(
                &format!("s:{i}"),
                &format!("थाना {i}"),
                &format!("थाना {i}"),
            )
        })
        .collect();
    let out = render(&phone(), &reply("थाना चुनें", choices, None), "o");
    assert_eq!(out[0]["interactive"]["action"]["button"], "विकल्प चुनें");
    assert_eq!(
        out[0]["interactive"]["action"]["sections"][0]["title"],
        "विकल्प"
    );
}

#[test]
fn more_than_ten_choices_show_nine_rows_and_a_more_row_with_every_number_in_the_body() {
    let choices: Vec<_> = (1..=12)
        .map(|i| {
            choice(
                &format!("station:{i}"),
                &format!("Station {i}"),
                &format!("Station {i}"),
            )
        })
        .collect();
    let out = render(
        &phone(),
        &reply("Pick your police station", choices, None),
        "o",
    );
    assert_eq!(out.len(), 1);
    let rows = out[0]["interactive"]["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[8]["id"], "station:9");
    assert_eq!(rows[9]["id"], "more:10");
    assert_eq!(rows[9]["title"], "More options…");
    assert_eq!(
        rows[9]["description"],
        "Type a number (10–12) from the message"
    );
    let body = out[0]["interactive"]["body"]["text"].as_str().unwrap();
    assert!(body.contains("\n10. Station 10\n11. Station 11\n12. Station 12"));
    assert!(render::MORE_PREFIX == "more:");
}

#[test]
fn a_location_request_keeps_the_numbered_choices_in_its_body() {
    let r = reply(
        "Where did it happen? Share your location or type the address.",
        vec![choice("skip", "Skip", "Skip this")],
        Some(Hint::AskLocation),
    );
    let out = render(&phone(), &r, "outbox:11");
    assert_eq!(
        out,
        vec![json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": "interactive",
            "interactive": {
                "type": "location_request_message",
                "body": { "text": "Where did it happen? Share your location or type the address.\n\n1. Skip this" },
                "action": { "name": "send_location" },
            },
            "biz_opaque_callback_data": "outbox:11",
        })]
    );
}

#[test]
fn asking_for_a_contact_is_plain_text_on_whatsapp() {
    let out = render(
        &phone(),
        &reply(
            "Is this your mobile number? +91 98765 43210",
            vec![],
            Some(Hint::AskContact),
        ),
        "o",
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "text");
}

#[test]
fn ids_whatsapp_would_refuse_fall_back_to_numbered_text() {
    let long_id = "x".repeat(257);
    let out = render(
        &phone(),
        &reply("Pick", vec![choice(&long_id, "A", "A")], None),
        "o",
    );
    assert_eq!(out[0]["type"], "text");
    assert_eq!(out[0]["text"]["body"], "Pick\n\n1. A");
    let dup = vec![choice("same", "A", "A"), choice("same", "B", "B")];
    assert_eq!(
        render(&phone(), &reply("Pick", dup, None), "o")[0]["type"],
        "text"
    );
}

#[test]
fn a_body_too_long_for_buttons_sends_the_text_first_and_keeps_the_choices_with_the_buttons() {
    let long = "विवरण ".repeat(300); // 1800 chars
    let r = reply(
        long.trim(),
        vec![choice("yes", "Yes", "Yes"), choice("no", "No", "No")],
        None,
    );
    let out = render(&phone(), &r, "o");
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["type"], "text");
    assert_eq!(out[1]["type"], "interactive");
    let body = out[1]["interactive"]["body"]["text"].as_str().unwrap();
    assert!(width(body) <= 1024);
    assert!(body.ends_with("1. Yes\n2. No"));
}

#[test]
fn an_empty_reply_sends_nothing() {
    assert!(render(&phone(), &reply("", vec![], None), "o").is_empty());
}

#[test]
fn template_parameters_are_single_shortened_lines() {
    let params = TemplateParams {
        reference: "C-7K3Q-9XM4-R".into(),
        status: "FIR\tregistered".into(),
        station: "Kotwali    Police\nStation".into(),
        note: "".into(),
    };
    let v = render_template(&phone(), "seva_status_update", "hi", &params, "outbox:12");
    assert_eq!(
        v,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": "template",
            "template": {
                "name": "seva_status_update",
                "language": { "code": "hi" },
                "components": [{ "type": "body", "parameters": [
                    { "type": "text", "text": "C-7K3Q-9XM4-R" },
                    { "type": "text", "text": "FIR registered" },
                    { "type": "text", "text": "Kotwali Police Station" },
                    { "type": "text", "text": "-" },
                ] }],
            },
            "biz_opaque_callback_data": "outbox:12",
        })
    );
    let note = template_param(&"जाँच जारी है। ".repeat(100), render::TEMPLATE_NOTE_MAX);
    assert!(width(&note) <= render::TEMPLATE_NOTE_MAX && note.ends_with('…'));
    assert!(!note.contains('\n') && !note.contains("    "));
    assert_eq!(template_param(" \n\t ", 10), "-");
}

#[test]
fn devanagari_is_never_cut_inside_a_cluster() {
    let samples = [
        "क्षमा करें, श्रीमान् त्रिपाठी जी",
        "स्त्री सुरक्षा हेल्पलाइन",
        "पुलिस स्टेशन — कोतवाली, पटना (ज़िला नियंत्रण कक्ष)",
        "👩🏽‍💻 साइबर धोखाधड़ी 🇮🇳",
        "द्वितीय क्ष त्र ज्ञ श्र",
    ];
    for s in samples {
        let clusters: Vec<&str> = s.graphemes(true).collect();
        for max in 1..=width(s) + 1 {
            let out = shorten(s, max);
            assert!(width(&out) <= max, "{out:?} is wider than {max}");
            if width(s) <= max {
                assert_eq!(out, s);
                continue;
            }
            let kept = out
                .strip_suffix('…')
                .expect("shortened text ends with an ellipsis");
            assert!(s.starts_with(kept));
            // The kept part ends on a cluster boundary of the original.
            let mut boundary = 0;
            let mut ok = kept.is_empty();
            for c in &clusters {
                boundary += c.len();
                if boundary == kept.len() || kept.trim_end().len() == boundary {
                    ok = true;
                }
            }
            assert!(ok, "{kept:?} does not end on a grapheme boundary of {s:?}");
            // A virama may end the kept text only where the word ended (श्रीमान्), never
            // where a conjunct continues.
            let next = s[kept.len()..].chars().next();
            assert!(
                !kept.ends_with('\u{094D}') || next.is_some_and(char::is_whitespace),
                "{kept:?} cuts a conjunct"
            );
            assert!(!kept.ends_with('\u{200D}'), "{kept:?} ends with a joiner");
        }
    }
}

// ---- Graph client against the fake Graph API -----------------------------------------------

async fn client(fake: &FakeGraph) -> GraphClient {
    GraphClient::new(fake.url(), PNID, Secret::new(TOKEN))
}

#[tokio::test]
async fn a_send_posts_the_body_with_the_bearer_token_and_returns_the_wamid() {
    let fake = FakeGraph::start().await;
    let c = client(&fake).await;
    let body = render(&phone(), &reply("Hello", vec![], None), "outbox:1").remove(0);
    let outcome = c.send(&body).await;
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/v23.0/{PNID}/messages"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("user-agent").is_some());
    assert_eq!(r.body.as_ref(), Some(&body));
    assert_eq!(
        outcome,
        SendOutcome::Sent {
            provider_id: r.wamid.clone().unwrap()
        }
    );
    assert!(r.wamid.as_deref().unwrap().starts_with("wamid."));
    assert_eq!(fake.messages(), vec![body]);
    assert_eq!(fake.texts(), vec!["Hello".to_owned()]);
}

#[tokio::test]
async fn each_graph_error_is_classified() {
    let rows: Vec<(&str, FakeError, SendOutcome)> = vec![
        (
            "131047 (24-hour window closed) is permanent with its code, for the template fallback",
            FakeError::ReEngagement,
            SendOutcome::Permanent {
                code: "131047".into(),
                reason: String::new(),
            },
        ),
        (
            "130429 (throughput) is waited out",
            FakeError::RateLimit,
            SendOutcome::RetryAfter { secs: 2 },
        ),
        (
            "131056 (pair rate) waits about 6 s",
            FakeError::PairRateLimit,
            SendOutcome::RetryAfter { secs: 6 },
        ),
        (
            "131048 (spam rate) throttles hard",
            FakeError::SpamRateLimit,
            SendOutcome::RetryAfter { secs: 300 },
        ),
        (
            "190 (token expired) is permanent with its code",
            FakeError::TokenExpired,
            SendOutcome::Permanent {
                code: "190".into(),
                reason: String::new(),
            },
        ),
        (
            "131026 (not a WhatsApp user) is permanent",
            FakeError::NotWhatsappUser,
            SendOutcome::Permanent {
                code: "131026".into(),
                reason: String::new(),
            },
        ),
        (
            "100 (invalid parameter) is permanent",
            FakeError::InvalidParameter,
            SendOutcome::Permanent {
                code: "100".into(),
                reason: String::new(),
            },
        ),
        (
            "a 500 is transient",
            FakeError::ServerError,
            SendOutcome::Transient {
                reason: String::new(),
            },
        ),
        (
            "a proxy's HTML 502 is transient",
            FakeError::Raw {
                status: 502,
                body: "<html>Bad Gateway</html>".into(),
            },
            SendOutcome::Transient {
                reason: String::new(),
            },
        ),
        (
            "a bare 429 is waited out",
            FakeError::Raw {
                status: 429,
                body: String::new(),
            },
            SendOutcome::RetryAfter { secs: 5 },
        ),
        (
            "131051 (unsupported type) is permanent",
            FakeError::Api {
                status: 400,
                code: 131051,
                title: "Unsupported message type".into(),
                details: "x".into(),
            },
            SendOutcome::Permanent {
                code: "131051".into(),
                reason: String::new(),
            },
        ),
        (
            "131000 (something went wrong) is transient",
            FakeError::Api {
                status: 500,
                code: 131000,
                title: "Something went wrong".into(),
                details: "x".into(),
            },
            SendOutcome::Transient {
                reason: String::new(),
            },
        ),
        (
            "80007 (WABA rate limit) is waited out",
            FakeError::Api {
                status: 400,
                code: 80007,
                title: "Rate limit issues".into(),
                details: "x".into(),
            },
            SendOutcome::RetryAfter { secs: 60 },
        ),
    ];
    let fake = FakeGraph::start().await;
    let c = client(&fake).await;
    let body = render(&phone(), &reply("Hi", vec![], None), "o").remove(0);
    let mut failures = Vec::new();
    for (behaviour, err, expected) in rows {
        fake.fail_next(err);
        let got = c.send(&body).await;
        let same = match (&got, &expected) {
            (
                SendOutcome::Permanent { code: a, reason },
                SendOutcome::Permanent { code: b, .. },
            ) => a == b && !reason.is_empty(),
            (SendOutcome::Transient { reason }, SendOutcome::Transient { .. }) => {
                !reason.is_empty()
            }
            (a, b) => a == b,
        };
        let leaks = format!("{got:?}").contains(TOKEN);
        if !same || leaks {
            failures.push(format!("{behaviour}: got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // After the scripted failures, sends succeed again.
    assert!(matches!(c.send(&body).await, SendOutcome::Sent { .. }));
    assert_eq!(fake.messages().len(), 1);
}

#[test]
fn classification_follows_codes_and_retry_after() {
    let err = |code: i64| {
        format!(r#"{{"error":{{"message":"(#{code}) x","type":"OAuthException","code":{code}}}}}"#)
    };
    assert_eq!(
        classify(400, Some(30), err(130429).as_bytes()),
        SendOutcome::RetryAfter { secs: 30 }
    );
    assert_eq!(
        classify(400, None, err(4).as_bytes()),
        SendOutcome::RetryAfter { secs: 60 }
    );
    assert!(
        matches!(classify(400, None, err(131009).as_bytes()), SendOutcome::Permanent { code, .. } if code == "131009")
    );
    assert!(matches!(
        classify(503, None, err(131016).as_bytes()),
        SendOutcome::Transient { .. }
    ));
    assert!(matches!(
        classify(500, None, err(999_999).as_bytes()),
        SendOutcome::Transient { .. }
    ));
    assert!(matches!(
        classify(400, None, err(999_999).as_bytes()),
        SendOutcome::Permanent { .. }
    ));
    assert!(
        matches!(classify(404, None, b"not json"), SendOutcome::Permanent { code, .. } if code == "http_404")
    );
    assert!(matches!(
        classify(200, None, br#"{"messages":[]}"#),
        SendOutcome::Transient { .. }
    ));
    assert_eq!(
        classify(200, None, br#"{"messaging_product":"whatsapp","messages":[{"id":"wamid.X","message_status":"held_for_quality_assessment"}]}"#),
        SendOutcome::Sent { provider_id: "wamid.X".into() }
    );
}

#[tokio::test]
async fn a_wrong_token_is_a_permanent_190() {
    let fake = FakeGraph::start().await;
    fake.require_token("the-real-token");
    let c = client(&fake).await;
    let got = c
        .send(&render(&phone(), &reply("Hi", vec![], None), "o")[0])
        .await;
    assert!(
        matches!(&got, SendOutcome::Permanent { code, .. } if code == "190"),
        "{got:?}"
    );
}

#[tokio::test]
async fn an_unreachable_api_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = GraphClient::new(format!("http://{addr}/v23.0"), PNID, Secret::new(TOKEN));
    let got = c.send(&json!({ "messaging_product": "whatsapp" })).await;
    assert!(matches!(&got, SendOutcome::Transient { .. }), "{got:?}");
    assert!(!format!("{got:?}").contains(TOKEN));
}

#[tokio::test]
async fn mark_read_posts_a_read_status_and_is_not_affected_by_scripted_failures() {
    let fake = FakeGraph::start().await;
    let c = client(&fake).await;
    fake.fail_next(FakeError::ServerError);
    c.mark_read("wamid.IN1").await.unwrap();
    assert_eq!(fake.read_receipts(), vec!["wamid.IN1".to_owned()]);
    let r = &fake.requests()[0];
    assert_eq!(
        r.body,
        Some(
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1" })
        )
    );
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn wait_for_returns_once_enough_messages_arrived() {
    let fake = FakeGraph::start().await;
    let c = client(&fake).await;
    let body = render(&phone(), &reply("Hi", vec![], None), "o").remove(0);
    let sender = {
        let body = body.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                assert!(matches!(c.send(&body).await, SendOutcome::Sent { .. }));
            }
        })
    };
    let got = fake.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    sender.await.unwrap();
    let wamids: std::collections::HashSet<_> = fake
        .requests()
        .into_iter()
        .filter_map(|r| r.wamid)
        .collect();
    assert_eq!(wamids.len(), 3, "wamids are fresh");
}

#[tokio::test]
async fn media_is_downloaded_in_two_steps_with_the_token() {
    let fake = FakeGraph::start().await;
    let jpeg = vec![0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    fake.add_media("1479537139650973", "image/jpeg", jpeg.clone());
    let c = client(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let path = c
        .download_media(
            "1479537139650973",
            dir.path(),
            5 * 1024 * 1024,
            &["image/*"],
        )
        .await
        .unwrap();
    assert_eq!(path, dir.path().join("1479537139650973.jpg"));
    assert_eq!(std::fs::read(&path).unwrap(), jpeg);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/v23.0/1479537139650973");
    assert_eq!(reqs[1].path, "/media/1479537139650973");
    for r in &reqs {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert!(r.header("user-agent").is_some());
    }
    // No partial file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn media_over_the_size_or_outside_the_types_is_refused() {
    let fake = FakeGraph::start().await;
    fake.add_media("111", "audio/ogg; codecs=opus", vec![0u8; 2048]);
    fake.add_media("222", "application/zip", vec![0u8; 10]);
    let c = client(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let allowed = ["image/*", "audio/ogg", "application/pdf"];
    let err = c
        .download_media("111", dir.path(), 1024, &allowed)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MediaError::TooLarge {
            size: 2048,
            max: 1024
        }
    );
    assert!(!err.is_retryable());
    let ok = c
        .download_media("111", dir.path(), 4096, &allowed)
        .await
        .unwrap();
    assert_eq!(ok.extension().unwrap(), "ogg");
    let err = c
        .download_media("222", dir.path(), 4096, &allowed)
        .await
        .unwrap_err();
    assert_eq!(err, MediaError::MimeNotAllowed("application/zip".into()));
    let err = c
        .download_media("333", dir.path(), 4096, &allowed)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MediaError::Api { code, retryable: false, .. } if code == "100"),
        "{err:?}"
    );
    assert_eq!(
        c.download_media("../etc/passwd", dir.path(), 4096, &allowed)
            .await
            .unwrap_err(),
        MediaError::BadId
    );
    assert_eq!(fake.requests().len(), 5, "the bad id never reached the API");
}

#[test]
fn rendered_bodies_are_valid_graph_requests() {
    // Every rendered body names the product and a recipient; none carries an empty text.
    let cases = [
        reply("a", vec![], None),
        reply("b", vec![choice("x", "X", "X")], None),
        reply(
            "c",
            (0..6)
                .map(|i| choice(&format!("i{i}"), "T", &format!("T{i}")))
                .collect(),
            None,
        ),
        reply("d", vec![], Some(Hint::AskLocation)),
    ];
    for r in cases {
        for v in render(&phone(), &r, "o") {
            assert_eq!(v["messaging_product"], "whatsapp");
            assert_eq!(v["recipient_type"], "individual");
            assert_eq!(v["to"], TO);
            let text = webhook::testing::message_text(&v);
            assert!(!text.is_empty(), "{v}");
            let _: &Value = &v;
        }
    }
}

#[test]
fn choices_without_a_body_still_have_a_body_of_numbered_lines() {
    let out = render(
        &phone(),
        &reply(
            "",
            vec![choice("a", "A", "Apple"), choice("b", "B", "Banana")],
            None,
        ),
        "o",
    );
    assert_eq!(out[0]["interactive"]["body"]["text"], "1. Apple\n2. Banana");
}

mod limits {
    use super::*;
    use proptest::prelude::*;

    /// Text mixing Devanagari (with viramas and nuktas), Latin, digits, emoji and whitespace.
    fn text() -> impl Strategy<Value = String> {
        text_of(0..300)
    }

    fn label() -> impl Strategy<Value = String> {
        text_of(0..20)
    }

    fn text_of(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("क्ष".to_owned()),
                Just("श्री".to_owned()),
                Just("ज़".to_owned()),
                Just("थाना".to_owned()),
                Just("police".to_owned()),
                Just("👩🏽‍💻".to_owned()),
                Just(" ".to_owned()),
                Just("\n".to_owned()),
                "[a-z0-9]{1,12}",
            ],
            len,
        )
        .prop_map(|v| v.concat())
    }

    fn without_whitespace(s: &str) -> String {
        s.split_whitespace().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn shorten_fits_and_is_a_prefix(s in text(), max in 1usize..60) {
            let out = shorten(&s, max);
            prop_assert!(width(&out) <= max);
            let kept = out.strip_suffix('…').unwrap_or(&out);
            prop_assert!(s.starts_with(kept));
        }

        #[test]
        fn split_text_fits_and_loses_nothing_but_whitespace(s in text(), max in 8usize..200) {
            let parts = split_text(&s, max);
            for p in &parts {
                prop_assert!(width(p) <= max, "{p:?} wider than {max}");
                let virama_ok = !p.ends_with('\u{094D}')
                    || s.contains(&format!("{p} "))
                    || s.contains(&format!("{p}\n"))
                    || s.ends_with(p.as_str());
                prop_assert!(virama_ok, "{:?} cuts a conjunct", p);
            }
            prop_assert_eq!(without_whitespace(&parts.concat()), without_whitespace(&s));
        }

        #[test]
        fn rendered_widgets_respect_whatsapp_limits(
            body in text(),
            labels in proptest::collection::vec((label(), label()), 0..14),
        ) {
            let choices: Vec<_> = labels
                .iter()
                .enumerate()
                .map(|(i, (short, full))| choice(&format!("c{i}"), short, full))
                .collect();
            for v in render(&phone(), &reply(&body, choices, None), "o") {
                match v["type"].as_str().unwrap() {
                    "text" => prop_assert!(width(v["text"]["body"].as_str().unwrap()) <= 4096),
                    "interactive" => {
                        let i = &v["interactive"];
                        let b = i["body"]["text"].as_str().unwrap();
                        prop_assert!(!b.is_empty() && width(b) <= 1024);
                        if let Some(buttons) = i["action"]["buttons"].as_array() {
                            prop_assert!(buttons.len() <= 3);
                            for btn in buttons {
                                let t = btn["reply"]["title"].as_str().unwrap();
                                prop_assert!(!t.trim().is_empty() && width(t) <= 20, "{t:?}");
                            }
                        }
                        if let Some(sections) = i["action"]["sections"].as_array() {
                            let rows = sections[0]["rows"].as_array().unwrap();
                            prop_assert!(rows.len() <= 10);
                            for r in rows {
                                let t = r["title"].as_str().unwrap();
                                prop_assert!(!t.trim().is_empty() && width(t) <= 24, "{t:?}");
                                if let Some(d) = r.get("description") {
                                    prop_assert!(width(d.as_str().unwrap()) <= 72);
                                }
                            }
                        }
                    }
                    other => prop_assert!(false, "unexpected type {other}"),
                }
            }
        }
    }
}

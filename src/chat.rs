//! `seva chat`: a citizen in the terminal, on the same runtime and database as `serve`.
//!
//! Each stdin line is one message from the terminal citizen named by `--as`. Replies are
//! written to the outbox like any channel's and delivered to stdout by the dispatcher with the
//! [`TerminalSender`], so a push written while the citizen was away is shown at the next start.

use std::io::IsTerminal;
use std::sync::Arc;

use flows::Lang;
use flows::message::{Body, Channel, Inbound, SenderHints};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::config::Config;
use crate::outbox::Dispatcher;
use crate::outbox::terminal::TerminalSender;
use crate::runtime::Runtime;
use crate::store::Store;

/// The terminal citizen when `--as` is not given.
pub const DEFAULT_CITIZEN: &str = "local";

#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// The citizen's language, set before the first message (skips the language question).
    pub lang: Option<Lang>,
    /// The terminal citizen's name (`--as`).
    pub as_id: String,
}

/// Runs a chat session on stdin and stdout.
pub async fn run(config: &Config, opts: &ChatOptions) -> Result<(), crate::Error> {
    let store = Store::open(&config.database_url).await?;
    let stations = crate::stations::load(&config.stations_csv)?;
    let runtime = Runtime::builder(store.clone())
        .stations(stations)
        .timezone(config.timezone)
        .events(config.events.is_some())
        .privacy(&config.privacy)
        .media_dir(config.media_dir.clone())
        .build();
    if std::io::stdin().is_terminal() {
        eprintln!(
            "seva chat as `{}`: type a message and press Enter; Ctrl-D ends the session.",
            opts.as_id
        );
    }
    let input = BufReader::new(tokio::io::stdin());
    let result = session(&runtime, opts, input, TerminalSender::stdout()).await;
    store.close().await;
    result
}

/// One session: shows what is waiting for the citizen, then answers each line of `input`.
pub async fn session(
    runtime: &Runtime,
    opts: &ChatOptions,
    mut input: impl AsyncBufRead + Unpin,
    out: TerminalSender,
) -> Result<(), crate::Error> {
    let store = runtime.store();
    let clock = runtime.clock();
    let citizen = store
        .ensure_citizen(Channel::Terminal, &opts.as_id, clock.now())
        .await?;
    if let Some(lang) = opts.lang {
        let mut turn = store.lock_citizen(citizen.id).await?;
        turn.set_lang(lang).await?;
        turn.commit().await?;
    }
    let dispatcher = Dispatcher::new(store.clone(), vec![Arc::new(out)], clock.clone());
    // Only this citizen's terminal rows: another `seva chat --as` may be running.
    store
        .reset_sending(&[Channel::Terminal], Some(&opts.as_id))
        .await?;
    // Messages a crashed session stored but never answered come first.
    runtime.process(citizen.id).await?;
    dispatcher
        .deliver_to(Channel::Terminal, &opts.as_id)
        .await?;

    let session = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        // Invalid UTF-8 is the citizen's typo, not a reason to end the session.
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        n += 1;
        let msg = Inbound {
            channel: Channel::Terminal,
            sender: opts.as_id.clone(),
            provider_id: format!("chat-{session}-{n}"),
            sent_at: clock.now(),
            body: Body::Text {
                text: text.to_owned(),
            },
            hints: SenderHints::default(),
        };
        runtime.handle(&msg).await?;
        dispatcher
            .deliver_to(Channel::Terminal, &opts.as_id)
            .await?;
    }
    Ok(())
}

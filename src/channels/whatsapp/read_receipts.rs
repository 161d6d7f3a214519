//! Read receipts, at most about one per citizen per [`RECEIPT_WINDOW`].
//!
//! Marking a message as read marks every earlier message of the conversation read too, so a
//! citizen writing several messages in a row needs one receipt, for the latest. A citizen's
//! first message after a quiet window is marked at once; the ones that follow within the
//! window are marked together, by the latest, when it ends. The blue ticks are then at most a
//! window late, and a busy moment costs the Graph API one call per citizen per window instead
//! of one per message (a receipt is an HTTP request of its own, as costly as a reply).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use webhook::GraphClient;

use crate::runtime::Runtime;

/// How late a receipt for a citizen's later messages may be.
const RECEIPT_WINDOW: Duration = Duration::from_secs(1);

pub(super) struct ReadReceipts {
    graph: GraphClient,
    runtime: Runtime,
    /// Citizens (by `wa_id`) marked in the current window, with their latest message since,
    /// if any, to mark when it ends. The task that ends windows runs while it is not empty.
    recent: Mutex<HashMap<String, Option<String>>>,
}

impl ReadReceipts {
    pub(super) fn new(graph: GraphClient, runtime: Runtime) -> Arc<Self> {
        Arc::new(ReadReceipts {
            graph,
            runtime,
            recent: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Option<String>>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `wamid`, from `wa_id`, as read: now, or with their later messages at the end of
    /// the window.
    pub(super) fn mark(self: &Arc<Self>, wa_id: &str, wamid: String) {
        let mut recent = self.lock();
        if let Some(pending) = recent.get_mut(wa_id) {
            *pending = Some(wamid);
            return;
        }
        let start = recent.is_empty();
        recent.insert(wa_id.to_owned(), None);
        drop(recent);
        self.send(wamid);
        if start {
            let this = self.clone();
            tokio::spawn(async move { this.run().await });
        }
    }

    async fn run(&self) {
        loop {
            tokio::time::sleep(RECEIPT_WINDOW).await;
            let mut due: Vec<String> = Vec::new();
            // A citizen with a message to mark starts a new window; a quiet one leaves. When
            // nobody is left (nothing was due), this task stops, and the next `mark`, finding
            // nobody, starts another.
            self.lock().retain(|_, pending| match pending.take() {
                Some(wamid) => {
                    due.push(wamid);
                    true
                }
                None => false,
            });
            let stop = due.is_empty();
            for wamid in due {
                self.send(wamid);
            }
            if stop {
                return;
            }
        }
    }

    /// Shutdown waits for a receipt already started; one still waiting for its window's end
    /// is not sent (the citizen's next message marks it).
    fn send(&self, wamid: String) {
        let graph = self.graph.clone();
        self.runtime.spawn_tracked(async move {
            if let Err(outcome) = graph.mark_read(&wamid).await {
                tracing::info!(?outcome, "whatsapp read receipt not sent");
            }
        });
    }
}

//! Work started in the background that shutdown waits for: [`InFlight`].
//!
//! A webhook answers 200 once its message is stored and runs the citizen's turn afterwards,
//! in a spawned task. On SIGTERM, `serve` first lets in-flight requests finish, then waits
//! (within `SEVA_SHUTDOWN_GRACE`) for the turns those requests started, so a turn is not cut
//! off half way. (Nothing would be lost if it were: the turn's transaction rolls back and the
//! next start's sweeper runs it again. Finishing it is simply faster for the citizen.)

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Counts tasks spawned through it; [`InFlight::idle`] waits until none is left.
#[derive(Clone, Default)]
pub struct InFlight {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

/// Held by one tracked task; dropping it (the task ended, or was cancelled) counts it out.
struct Guard {
    inner: Arc<Inner>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.inner.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl InFlight {
    pub fn new() -> InFlight {
        InFlight::default()
    }

    /// Spawns `task` on the current runtime, counted until it ends. The count goes up before
    /// this returns, so a caller that then waits for [`idle`](Self::idle) sees it.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let guard = Guard {
            inner: self.inner.clone(),
        };
        tokio::spawn(async move {
            let _guard = guard;
            task.await;
        })
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Resolves once no tracked task is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_tracked_task() {
        let tasks = InFlight::new();
        tasks.idle().await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = rx.await;
        });
        tasks.spawn(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        assert_eq!(tasks.running(), 2);
        let waiting = tokio::spawn({
            let tasks = tasks.clone();
            async move { tasks.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one task is still running");
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tasks.running(), 0);
    }
}

//! Downloads the media citizens send (photos, documents, voice notes, videos) while their
//! media ids are valid (Meta keeps them 7 days), into `SEVA_MEDIA_DIR/<media_id>.<ext>` (the
//! name the officer API finds an attachment's `file_id` under).
//!
//! The sink queues a download row (`whatsapp_media`) for each media message it stores and
//! starts the first attempt at once, in the background; a failed attempt that may succeed later
//! (network, 5xx, throttling, an expired download URL) is retried with backoff by
//! [`MediaFetcher::run`], which also picks up whatever a restart left behind. The conversation
//! never waits for any of this: the report's attachment holds the media id, and the officer API
//! finds the local copy through [`crate::store::Store::whatsapp_media`].
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/media/>

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flows::message::MediaKind;
use tokio::sync::watch;
use webhook::{GraphClient, MediaError};

use crate::clock::Clock;
use crate::store::{MediaJob, Store, StoreError};

/// How often the worker looks for due retries.
const POLL: Duration = Duration::from_secs(5);

/// Downloads claimed per round.
const BATCH: u32 = 4;

/// A claim older than this belonged to a worker that crashed: it is taken back.
const STALE_CLAIM_SECS: i64 = 10 * 60;

/// Meta keeps a webhook's media id for 7 days; past that a download cannot succeed.
const MEDIA_ID_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// Size and MIME limits per kind: Meta's own limits for what a user can send, with the
/// document types a police report can use.
pub fn limits(kind: MediaKind) -> Option<(u64, &'static [&'static str])> {
    const MB: u64 = 1024 * 1024;
    match kind {
        MediaKind::Photo => Some((5 * MB, &["image/jpeg", "image/png", "image/webp"])),
        MediaKind::Voice => Some((16 * MB, &["audio/*"])),
        MediaKind::Video => Some((16 * MB, &["video/mp4", "video/3gpp"])),
        MediaKind::Document => Some((
            100 * MB,
            &[
                "application/pdf",
                "image/*",
                "text/plain",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ],
        )),
        // The dialogue ignores stickers: nothing to keep.
        MediaKind::Sticker => None,
    }
}

/// When to retry a failed download, and when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRetry {
    /// Wait after the first failure; each further failure waits four times longer.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// Attempts after which a download is given up.
    pub max_attempts: u32,
}

impl Default for MediaRetry {
    fn default() -> Self {
        MediaRetry {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
            max_attempts: 12,
        }
    }
}

impl MediaRetry {
    /// The wait after the `failures`-th failure (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 4u32.saturating_pow(failures.saturating_sub(1).min(15));
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// Downloads queued media. Cheap to share behind an `Arc`.
pub struct MediaFetcher {
    graph: GraphClient,
    store: Store,
    dir: PathBuf,
    clock: Clock,
    retry: MediaRetry,
}

impl MediaFetcher {
    /// Files go to `media_dir` itself, named `<media_id>.<ext>`.
    pub fn new(graph: GraphClient, store: Store, media_dir: &Path) -> MediaFetcher {
        MediaFetcher {
            graph,
            store,
            dir: media_dir.to_path_buf(),
            clock: Clock::system(),
            retry: MediaRetry::default(),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> MediaFetcher {
        self.clock = clock;
        self
    }

    pub fn with_retry(mut self, retry: MediaRetry) -> MediaFetcher {
        self.retry = retry;
        self
    }

    /// Where downloaded files are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a download for a stored message (idempotent: a redelivered message queues
    /// nothing new). Stickers are not kept.
    pub async fn register(
        &self,
        media_id: &str,
        citizen_id: i64,
        kind: MediaKind,
        mime: Option<&str>,
    ) -> Result<bool, StoreError> {
        if limits(kind).is_none() {
            return Ok(false);
        }
        self.store
            .whatsapp_media_register(media_id, citizen_id, kind, mime, self.clock.now())
            .await
    }

    /// Tries one queued download now, if it is due and no one else holds it.
    pub async fn fetch(&self, media_id: &str) {
        let now = self.clock.now();
        match self
            .store
            .whatsapp_media_claim(Some(media_id), now, now - STALE_CLAIM_SECS, 1)
            .await
        {
            Ok(jobs) => {
                for job in jobs {
                    self.download(job).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "media download could not be claimed"),
        }
    }

    /// Runs every due download once; returns how many it tried.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let jobs = self
            .store
            .whatsapp_media_claim(None, now, now - STALE_CLAIM_SECS, BATCH)
            .await?;
        let n = jobs.len();
        for job in jobs {
            self.download(job).await;
        }
        Ok(n)
    }

    /// Retries due downloads until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let busy = match self.run_once().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "media download round failed");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                changed = stop.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn download(&self, job: MediaJob) {
        let Some((max_bytes, allowed)) = limits(job.kind) else {
            self.record(&job, Err(MediaError::MimeNotAllowed("sticker".into())))
                .await;
            return;
        };
        let result = self
            .graph
            .download_media(&job.media_id, &self.dir, max_bytes, allowed)
            .await;
        self.record(&job, result).await;
    }

    async fn record(&self, job: &MediaJob, result: Result<PathBuf, MediaError>) {
        let now = self.clock.now();
        let kind = format!("{:?}", job.kind).to_lowercase();
        let stored = match result {
            Ok(path) => {
                let bytes = tokio::fs::metadata(&path)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(0);
                tracing::info!(kind, bytes, "whatsapp media downloaded");
                let kept = self
                    .store
                    .whatsapp_media_done(&job.media_id, &path.to_string_lossy(), bytes, now)
                    .await;
                if let Ok(false) = kept {
                    // Deleted while downloading ("delete my data"): the copy must not outlive it.
                    let _ = tokio::fs::remove_file(&path).await;
                    tracing::info!(kind, "whatsapp media deleted during its download; removed");
                }
                kept.map(|_| ())
            }
            Err(e) => {
                let failures = job.attempts + 1;
                let expired = now - job.created_at >= MEDIA_ID_LIFETIME_SECS;
                let retry_at = (e.is_retryable() && failures < self.retry.max_attempts && !expired)
                    .then(|| now + self.retry.backoff(failures).as_secs() as i64);
                match retry_at {
                    Some(at) => tracing::info!(
                        kind,
                        attempts = failures,
                        retry_in = at - now,
                        error = %e,
                        "whatsapp media download failed; will retry"
                    ),
                    None => tracing::warn!(
                        kind,
                        attempts = failures,
                        error = %e,
                        "whatsapp media download failed; giving up"
                    ),
                }
                self.store
                    .whatsapp_media_failed(&job.media_id, &e.to_string(), retry_at, now)
                    .await
            }
        };
        if let Err(e) = stored {
            // The claim goes stale and is taken back by a later round.
            tracing::warn!(error = %e, "media download result not recorded");
        }
    }
}

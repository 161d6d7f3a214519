//! Forgetting on schedule, and anonymous tips (spec §6 "Private", "Accountable").
//!
//! * [`run`] — the periodic retention job `serve` runs on every replica: drafts abandoned for
//!   24 hours ([`Runtime::purge_idle_drafts`]), raw inbox and outbox payloads older than
//!   `SEVA_PAYLOAD_RETENTION_DAYS`, and WhatsApp media no report points at. Each statement is
//!   conditional, so replicas doing it at once do it once.
//! * [`purge_reports`] — `seva report purge`: the personal data of reports closed or returned
//!   long ago, keeping anonymous statistics.
//! * [`pseudonym`] — what officers see of an anonymous tipster.

use std::path::Path;
use std::time::Duration;

use flows::state::DRAFT_KEPT_SECS;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;

use crate::config::Secret;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{MediaFile, Store, StoreError};

/// How often `serve` runs the retention job. A draft is gone at most this long after its
/// 24 hours.
pub const RETENTION_EVERY: Duration = Duration::from_secs(5 * 60);

const DAY: i64 = 24 * 60 * 60;

/// What one retention round removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    /// Drafts dropped from conversations.
    pub drafts: usize,
    /// Inbox payloads blanked.
    pub inbox: u64,
    /// Outbox contents blanked.
    pub outbox: u64,
    /// WhatsApp media rows (and their files) deleted.
    pub media: usize,
}

/// The pseudonym of citizen `citizen_id` under `key`: `anon-` and 10 Crockford base-32
/// characters (50 bits) of HMAC-SHA256(key, "seva-pseudonym:" + id). Stable for one citizen,
/// different for each; an officer cannot turn it back into an id, let alone a phone number,
/// without the key.
pub fn pseudonym(key: &Secret, citizen_id: i64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("seva-pseudonym:{citizen_id}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let bits = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let code: String = (0..10)
        .map(|i| ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize] as char)
        .collect();
    format!("anon-{code}")
}

/// Removes the downloaded files of deleted media rows from `media_dir`. Only files inside it
/// are touched; a missing file is fine (never downloaded, or removed before).
pub fn remove_media_files(media_dir: &Path, files: &[MediaFile]) -> usize {
    let mut removed = 0;
    for f in files {
        let found = f
            .path
            .as_deref()
            .and_then(|p| crate::officer::stored_file(media_dir, p))
            .or_else(|| crate::officer::stored_file(media_dir, &f.media_id));
        let Some(path) = found else { continue };
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "a media file could not be removed"),
        }
    }
    removed
}

/// One retention round (see the module docs), at the runtime's clock.
pub async fn retention_round(
    runtime: &Runtime,
    payload_retention_days: u32,
) -> Result<Retained, RuntimeError> {
    let drafts = runtime.purge_idle_drafts().await?;
    let now = runtime.clock().now();
    let handled_before = now - i64::from(payload_retention_days) * DAY;
    // Media may sit in a draft up to its 24 hours before a report points at it.
    let media_before = handled_before.min(now - 2 * DRAFT_KEPT_SECS);
    let payloads = runtime
        .store()
        .purge_payloads(handled_before, media_before)
        .await?;
    remove_media_files(runtime.media_dir(), &payloads.media);
    Ok(Retained {
        drafts,
        inbox: payloads.inbox,
        outbox: payloads.outbox,
        media: payloads.media.len(),
    })
}

/// Runs [`retention_round`] at start and every [`RETENTION_EVERY`] until stopped.
pub async fn run(runtime: Runtime, payload_retention_days: u32, mut stop: watch::Receiver<bool>) {
    loop {
        match retention_round(&runtime, payload_retention_days).await {
            Ok(r) if r == Retained::default() => {}
            Ok(r) => tracing::info!(
                drafts = r.drafts,
                inbox = r.inbox,
                outbox = r.outbox,
                media = r.media,
                "retention: personal data past its time removed"
            ),
            Err(e) => tracing::warn!(error = %e, "retention round failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// `seva report purge`: removes the personal data of reports closed or returned more than
/// `older_than` before `now`, and their media files; returns how many reports were purged.
pub async fn purge_reports(
    store: &Store,
    media_dir: &Path,
    older_than: Duration,
    now: i64,
) -> Result<u64, StoreError> {
    let cutoff = now.saturating_sub(i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX));
    let purged = store.purge_reports(cutoff, now).await?;
    remove_media_files(media_dir, &purged.media);
    Ok(purged.reports)
}

/// `90d`, `12h`, `2w`, `45m` (or plain days, `90`): a retention period for the command line.
pub fn parse_age(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit_secs = match unit.trim() {
        "" | "d" | "day" | "days" => 24 * 60 * 60,
        "h" | "hour" | "hours" => 60 * 60,
        "m" | "min" | "minutes" => 60,
        "w" | "week" | "weeks" => 7 * 24 * 60 * 60,
        _ => return None,
    };
    n.checked_mul(unit_secs).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_citizen_and_depend_on_the_key() {
        let key = Secret::new("k".repeat(32));
        let a = pseudonym(&key, 7);
        assert_eq!(a, pseudonym(&key, 7));
        assert_ne!(a, pseudonym(&key, 8));
        assert_ne!(a, pseudonym(&Secret::new("x".repeat(32)), 7));
        assert!(a.starts_with("anon-") && a.len() == 15, "{a}");
    }

    #[test]
    fn ages_read_days_hours_weeks_and_minutes() {
        assert_eq!(parse_age("90d"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_age("90"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_age("12h"), Some(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_age("2w"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("0d"), Some(Duration::ZERO));
        for bad in ["", "d", "-3d", "3y", "1.5d", "99999999999999999999d"] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
    }
}

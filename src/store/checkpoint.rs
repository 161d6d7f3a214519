//! SQLite's WAL checkpoints, taken off the commit path while `serve` runs.
//!
//! By default the commit that grows the WAL past 1,000 pages runs the checkpoint itself: it
//! copies the pages into the database file and waits for the disk (`fsync`) before it returns,
//! and every webhook of its batch waits with it. Under load that happened about twice a
//! second, and those commits were the slow tail of the replies. [`Store::checkpoint_wal`] runs
//! a passive checkpoint every [`EVERY`] on a connection no webhook waits for, which keeps the
//! WAL below the automatic threshold; a passive checkpoint never blocks writers or readers.

use std::time::Duration;

use tokio::sync::watch;

use super::{Backend, Store};

/// Between checkpoints: short enough that the WAL a busy moment writes in the meantime stays
/// far below SQLite's automatic threshold (1,000 pages, ~4 MiB).
const EVERY: Duration = Duration::from_millis(200);

impl Store {
    /// Checkpoints the WAL every [`EVERY`] until `stop` turns true (or its sender is
    /// dropped). Returns at once on PostgreSQL, which has no WAL of ours to manage.
    pub async fn checkpoint_wal(&self, mut stop: watch::Receiver<bool>) {
        if self.backend != Backend::Sqlite {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
            }
            if let Err(e) = sqlx::query("pragma wal_checkpoint(passive)")
                .execute(&self.pool)
                .await
            {
                tracing::debug!(error = %e, "wal checkpoint failed; the next one retries");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_len(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// Pages committed below SQLite's automatic threshold stay in the WAL until a checkpoint
    /// copies them into the database file: the file growing shows the checkpoint ran, and
    /// that no commit had to.
    #[tokio::test]
    async fn committed_pages_reach_the_database_file_without_a_commit_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("seva.db");
        let store = Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("create table ballast (b blob)")
            .execute(&store.pool)
            .await
            .unwrap();
        // ~2 MiB: about 500 pages, half of the automatic threshold.
        sqlx::query(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000) \
             insert into ballast select randomblob(1000) from n",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let before = file_len(&db);

        let (stop_tx, stop) = watch::channel(false);
        let checkpoints = tokio::spawn({
            let store = store.clone();
            async move { store.checkpoint_wal(stop).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while file_len(&db) < before + 1_500_000 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            file_len(&db) >= before + 1_500_000,
            "database file {} bytes before, {} after",
            before,
            file_len(&db)
        );

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), checkpoints)
            .await
            .expect("the checkpointer stops when told")
            .unwrap();
    }
}

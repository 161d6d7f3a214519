//! SQLite's WAL checkpoints, taken off the commit path while `serve` runs.
//!
//! By default the commit that grows the WAL past 1,000 pages runs the checkpoint itself: it
//! copies the pages into the database file and waits for the disk (`fsync`) before it returns,
//! and every webhook of its batch waits with it. Under load (a busy batch writes tens of pages,
//! the WAL grows by ~10,000 pages a second) that happened several times a second: those
//! commits were the slow tail of the replies, and while their `fsync` waited the core sat idle.
//! [`Store::checkpoint_wal`] runs a passive checkpoint every [`EVERY`] on a connection no
//! webhook waits for (a passive checkpoint never blocks writers or readers), and a commit
//! checkpoints only past [`AUTOCHECKPOINT_PAGES`], which the WAL reaches only when nobody
//! runs [`Store::checkpoint_wal`]: the CLI, `seva chat`, or a checkpointer that fell behind.
//! Under steady load the WAL rarely finds a moment with every frame copied and no reader, so
//! it restarts from its beginning about when it reaches that bound: the `-wal` file stays at
//! ~40 MiB while `serve` is busy (4 MiB before). Opening the database after a `kill -9` with
//! such a WAL took ~50 ms (BENCHMARKS.md).

use std::time::Duration;

use tokio::sync::watch;

use super::sql;
use super::{Backend, Store};

/// Between checkpoints: short enough that the WAL a busy moment writes in the meantime
/// (~500 pages) stays far below [`AUTOCHECKPOINT_PAGES`].
const EVERY: Duration = Duration::from_millis(50);

/// WAL pages (4 KiB) past which a commit checkpoints by itself: ~40 MiB, ten times SQLite's
/// default, so that under `serve` the commits leave it to [`Store::checkpoint_wal`].
pub(super) const AUTOCHECKPOINT_PAGES: u32 = 10_000;

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
            if let Err(e) = sql::query("pragma wal_checkpoint(passive)")
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

    /// A fresh SQLite store with a table to fill, and the path of its database file.
    async fn store_with_ballast() -> (tempfile::TempDir, std::path::PathBuf, Store) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("seva.db");
        let store = Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sql::query("create table ballast (b blob)")
            .execute(&store.pool)
            .await
            .unwrap();
        (dir, db, store)
    }

    /// Commits about `mib` MiB of rows (256 WAL pages per MiB).
    async fn commit_ballast(store: &Store, mib: usize) {
        sql::query(&format!(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < {}) \
             insert into ballast select randomblob(1000) from n",
            mib * 1000
        ))
        .execute(&store.pool)
        .await
        .unwrap();
    }

    /// Without the checkpointer, commits keep writing to the WAL well past SQLite's default
    /// threshold of 1,000 pages (no commit stops to checkpoint), and checkpoint by themselves
    /// only once it holds [`AUTOCHECKPOINT_PAGES`], so the WAL of a process that runs none
    /// stays bounded.
    #[tokio::test]
    async fn commits_leave_checkpoints_to_the_checkpointer_up_to_a_bound() {
        let (_dir, db, store) = store_with_ballast().await;
        let before = file_len(&db);
        // ~2,500 pages in five commits.
        for _ in 0..5 {
            commit_ballast(&store, 2).await;
        }
        assert_eq!(
            file_len(&db),
            before,
            "a commit checkpointed below {AUTOCHECKPOINT_PAGES} pages"
        );
        // Past the bound (~10,000 pages more): the commit that crosses it checkpoints.
        for _ in 0..4 {
            commit_ballast(&store, 10).await;
        }
        assert!(
            file_len(&db) > before + 30_000_000,
            "database file {} bytes before, {} after",
            before,
            file_len(&db)
        );
    }

    /// Pages committed below SQLite's automatic threshold stay in the WAL until a checkpoint
    /// copies them into the database file: the file growing shows the checkpoint ran, and
    /// that no commit had to.
    #[tokio::test]
    async fn committed_pages_reach_the_database_file_without_a_commit_waiting() {
        let (_dir, db, store) = store_with_ballast().await;
        // ~2 MiB: about 500 pages, below any automatic threshold.
        commit_ballast(&store, 2).await;
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

//! Telegram's own bookkeeping (migration `0003_telegram`): whether a citizen can be reached
//! (`citizens.unreachable`, and when that last changed) and which group chats were told that
//! Seva works in private chats.

use flows::message::Channel;
use sqlx::{Sqlite, Transaction};

use super::{Result, Store, insert_citizen};

/// When a reachability change happened, to order it against others: Telegram's date of the
/// change (unix seconds) and its `update_id` (0 for a change Seva observed itself, a 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReachabilityAt {
    pub at: i64,
    pub update_id: i64,
}

/// What [`Store::telegram_set_reachable`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReachabilityChange {
    /// Recorded; `changed` says whether `citizens.unreachable` flipped.
    Applied { citizen_id: i64, changed: bool },
    /// A newer change is already recorded (a redelivered or late update): nothing changed.
    Stale { citizen_id: i64 },
}

impl Store {
    /// Records that the Telegram user `external_id` can (`reachable`) or cannot be reached, as
    /// of `when`; the citizen is created if Seva has not met them yet. Idempotent, and a change
    /// older than the recorded one is ignored.
    pub async fn telegram_set_reachable(
        &self,
        external_id: &str,
        reachable: bool,
        when: ReachabilityAt,
        now: i64,
    ) -> Result<ReachabilityChange> {
        let mut tx = self.write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("select id from citizens where channel = ? and external_id = ?")
                .bind(Channel::Telegram.as_str())
                .bind(external_id)
                .fetch_optional(&mut *tx)
                .await?;
        let citizen_id = match existing {
            Some(id) => id,
            None => insert_citizen(&mut tx, Channel::Telegram, external_id, now).await?,
        };
        let change = set_reachable(&mut tx, citizen_id, reachable, when).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// The same for a citizen Seva knows by id (a 403 from sending, a message they wrote).
    pub async fn telegram_set_citizen_reachable(
        &self,
        citizen_id: i64,
        reachable: bool,
        when: ReachabilityAt,
    ) -> Result<ReachabilityChange> {
        let mut tx = self.write().await?;
        let change = set_reachable(&mut tx, citizen_id, reachable, when).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Whether the citizen is marked unreachable (blocked the bot). `false` for an unknown id.
    pub async fn citizen_unreachable(&self, citizen_id: i64) -> Result<bool> {
        let flag: Option<bool> =
            sqlx::query_scalar("select unreachable from citizens where id = ?")
                .bind(citizen_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(flag.unwrap_or(false))
    }

    /// Notes a message in the group chat `chat_id` and claims the right to tell it, once, that
    /// Seva works in private chats: `true` means "send the line now" (and nobody else will).
    /// After a failed send, [`Store::telegram_group_untold`] gives the claim back.
    pub async fn telegram_group_claim_notice(&self, chat_id: i64, now: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        sqlx::query(
            "insert into telegram_group_chats (chat_id, first_seen_at) values (?, ?) \
             on conflict (chat_id) do nothing",
        )
        .bind(chat_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let claimed = sqlx::query(
            "update telegram_group_chats set told_at = ? where chat_id = ? and told_at is null",
        )
        .bind(now)
        .bind(chat_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(claimed)
    }

    /// The notice to `chat_id` could not be sent: the next message there may try again.
    pub async fn telegram_group_untold(&self, chat_id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("update telegram_group_chats set told_at = null where chat_id = ?")
            .bind(chat_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn set_reachable(
    tx: &mut Transaction<'static, Sqlite>,
    citizen_id: i64,
    reachable: bool,
    when: ReachabilityAt,
) -> Result<ReachabilityChange> {
    let recorded: Option<(i64, i64)> = sqlx::query_as(
        "select changed_at, update_id from telegram_reachability where citizen_id = ?",
    )
    .bind(citizen_id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((at, update_id)) = recorded
        && when <= (ReachabilityAt { at, update_id })
    {
        return Ok(ReachabilityChange::Stale { citizen_id });
    }
    sqlx::query(
        "insert into telegram_reachability (citizen_id, changed_at, update_id) values (?, ?, ?) \
         on conflict (citizen_id) do update set changed_at = excluded.changed_at, update_id = excluded.update_id",
    )
    .bind(citizen_id)
    .bind(when.at)
    .bind(when.update_id)
    .execute(&mut **tx)
    .await?;
    let changed =
        sqlx::query("update citizens set unreachable = ? where id = ? and unreachable = ?")
            .bind(!reachable)
            .bind(citizen_id)
            .bind(reachable)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            > 0;
    Ok(ReachabilityChange::Applied {
        citizen_id,
        changed,
    })
}

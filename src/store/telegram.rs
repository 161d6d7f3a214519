//! Telegram's own bookkeeping (migration `0003_telegram`): whether a citizen can be reached
//! (`citizens.unreachable`, and when that last changed) and which group chats were told that
//! Seva works in private chats.

use super::sql;
use flows::message::Channel;

use super::{Backend, Result, Store, StoreError, Tx, upsert_citizen};

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
        let citizen_id = upsert_citizen(&mut tx, Channel::Telegram, external_id, now).await?;
        let change = set_reachable(&mut tx, self.backend, citizen_id, reachable, when).await?;
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
        let change = set_reachable(&mut tx, self.backend, citizen_id, reachable, when).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Whether the citizen is marked unreachable (blocked the bot). `false` for an unknown id.
    pub async fn citizen_unreachable(&self, citizen_id: i64) -> Result<bool> {
        let flag: Option<i64> = sql::query_scalar("select unreachable from citizens where id = $1")
            .bind(citizen_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(flag.unwrap_or(0) != 0)
    }

    /// Which of these citizens are marked unreachable, in one statement per
    /// `ROWS_PER_STATEMENT`.
    pub async fn citizens_unreachable(&self, citizen_ids: &[i64]) -> Result<Vec<(i64, bool)>> {
        let mut flags = Vec::with_capacity(citizen_ids.len());
        for chunk in citizen_ids.chunks(super::ROWS_PER_STATEMENT) {
            let sql = format!(
                "select id, unreachable from citizens where id in ({})",
                super::placeholders(1, chunk.len())
            );
            let mut query = sql::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.pool).await? {
                flags.push((
                    row.try_get("id")?,
                    row.try_get::<i64, _>("unreachable")? != 0,
                ));
            }
        }
        Ok(flags)
    }

    /// Notes a message in the group chat `chat_id` and claims the right to tell it, once, that
    /// Seva works in private chats: `true` means "send the line now" (and nobody else will).
    /// After a failed send, [`Store::telegram_group_untold`] gives the claim back.
    pub async fn telegram_group_claim_notice(&self, chat_id: i64, now: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        sql::query(
            "insert into telegram_group_chats (chat_id, first_seen_at) values ($1, $2) \
             on conflict (chat_id) do nothing",
        )
        .bind(chat_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let claimed = sql::query(
            "update telegram_group_chats set told_at = $1 where chat_id = $2 and told_at is null",
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
        sql::query("update telegram_group_chats set told_at = null where chat_id = $1")
            .bind(chat_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn set_reachable(
    tx: &mut Tx,
    backend: Backend,
    citizen_id: i64,
    reachable: bool,
    when: ReachabilityAt,
) -> Result<ReachabilityChange> {
    // PostgreSQL: two changes of one citizen (two replicas) take turns on the citizen row, so
    // the newer one is always compared with what the older one recorded.
    if backend == Backend::Postgres {
        sql::query("select id from citizens where id = $1 for no key update")
            .bind(citizen_id)
            .execute(&mut **tx)
            .await?;
    }
    let recorded: Option<(i64, i64)> =
        sql::query("select changed_at, update_id from telegram_reachability where citizen_id = $1")
            .bind(citizen_id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| Ok::<_, StoreError>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?;
    if let Some((at, update_id)) = recorded
        && when <= (ReachabilityAt { at, update_id })
    {
        return Ok(ReachabilityChange::Stale { citizen_id });
    }
    sql::query(
        "insert into telegram_reachability (citizen_id, changed_at, update_id) values ($1, $2, $3) \
         on conflict (citizen_id) do update set changed_at = excluded.changed_at, update_id = excluded.update_id",
    )
    .bind(citizen_id)
    .bind(when.at)
    .bind(when.update_id)
    .execute(&mut **tx)
    .await?;
    let changed =
        sql::query("update citizens set unreachable = $1 where id = $2 and unreachable = $3")
            .bind(i64::from(!reachable))
            .bind(citizen_id)
            .bind(i64::from(reachable))
            .execute(&mut **tx)
            .await?
            .rows_affected()
            > 0;
    if changed && reachable {
        revive_blocked_pushes(tx, backend, citizen_id, when.at).await?;
    }
    Ok(ReachabilityChange::Applied {
        citizen_id,
        changed,
    })
}

/// How far back status pushes refused while a citizen had blocked the bot are sent again once
/// they unblock it: news of the last week still matters, older news is in "my reports".
const REVIVE_PUSHES_FOR: i64 = 7 * 24 * 3600;

/// A citizen who unblocked the bot gets the status pushes that went dead while they had blocked
/// it (Telegram answered 403, or the sender refused for the unreachable flag), in their order.
async fn revive_blocked_pushes(
    tx: &mut Tx,
    backend: Backend,
    citizen_id: i64,
    at: i64,
) -> Result<()> {
    let revived = sql::query(
        "update outbox set status = 'pending', attempts = 0, next_attempt_at = 0, last_error = null \
         where citizen_id = $1 and channel = 'telegram' and kind = 'push' and status = 'dead' \
         and last_error like $2 and created_at >= $3",
    )
    .bind(citizen_id)
    .bind(format!("{}:%", bot::sender::UNREACHABLE_CODE))
    .bind(at.saturating_sub(REVIVE_PUSHES_FOR))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if revived > 0 {
        tracing::info!(
            citizen = citizen_id,
            pushes = revived,
            "telegram citizen reachable again: undelivered status pushes re-queued"
        );
        super::wakeup::wake_dispatchers(tx, backend).await?;
    }
    Ok(())
}

//! `idempotency_keys`: what a keyed create answered, for 24 hours. A key is
//! claimed by one conditional statement, so of two requests with the same
//! key the second waits for the first to commit and then finds its answer.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text};

use super::DbError;

/// How long a key holds its answer (and is kept).
const KEPT: &str = "interval '24 hours'";

/// Claims `key` for a new request: true when it was free or its 24 hours are
/// over (the old answer is dropped), false when it holds a live answer.
pub fn claim(
    conn: &mut PgConnection,
    user_id: i64,
    key: &str,
    fingerprint: &str,
) -> Result<bool, DbError> {
    let claimed = diesel::sql_query(format!(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, key) DO UPDATE
             SET fingerprint = EXCLUDED.fingerprint, task = NULL, created_at = now()
             WHERE idempotency_keys.created_at < now() - {KEPT}"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(key)
    .bind::<Text, _>(fingerprint)
    .execute(conn)?;
    Ok(claimed == 1)
}

/// Stores the task with id `task_id` (as it is now) as the answer to `key`.
pub fn answer_with_task(
    conn: &mut PgConnection,
    user_id: i64,
    key: &str,
    task_id: i64,
) -> Result<(), DbError> {
    diesel::sql_query(
        "UPDATE idempotency_keys k SET task = to_jsonb(t) FROM tasks t
         WHERE k.user_id = $1 AND k.key = $2 AND t.id = $3",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(task_id)
    .execute(conn)?;
    Ok(())
}

/// A claimed key as stored: the request it answered and its answer.
#[derive(QueryableByName)]
pub struct Stored {
    #[diesel(sql_type = Text)]
    pub fingerprint: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub task: Option<serde_json::Value>,
}

pub fn stored(conn: &mut PgConnection, user_id: i64, key: &str) -> Result<Stored, DbError> {
    Ok(diesel::sql_query(
        "SELECT fingerprint, task FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(key)
    .get_result(conn)?)
}

/// Deletes up to `batch` keys past their 24 hours; returns how many.
pub fn prune(conn: &mut PgConnection, batch: i64) -> Result<usize, DbError> {
    Ok(diesel::sql_query(format!(
        "DELETE FROM idempotency_keys WHERE ctid IN (
             SELECT ctid FROM idempotency_keys
             WHERE created_at < now() - {KEPT} LIMIT $1)"
    ))
    .bind::<BigInt, _>(batch)
    .execute(conn)?)
}

//! `idempotency_keys`: what a keyed create answered, for 24 hours. A key is
//! claimed by one conditional statement, so of two requests with the same
//! key the second waits for the first to commit and then finds its answer.
use diesel::dsl::{now, IntervalDsl};
use diesel::prelude::*;
// The ON CONFLICT … DO UPDATE's own WHERE (not in the prelude).
use diesel::query_dsl::methods::FilterDsl;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel::upsert::excluded;

use super::schema::idempotency_keys as keys;
use super::DbError;

/// How long a key holds its answer (and is kept), in hours.
const KEPT_HOURS: i32 = 24;

/// Claims `key` for a new request: true when it was free or its 24 hours are
/// over (the old answer is dropped), false when it holds a live answer.
pub fn claim(
    conn: &mut PgConnection,
    user_id: i64,
    key: &str,
    fingerprint: &str,
) -> Result<bool, DbError> {
    let expired = keys::created_at.lt(now.into_sql::<Timestamptz>() - KEPT_HOURS.hours());
    let claimed = diesel::insert_into(keys::table)
        .values((
            keys::user_id.eq(user_id),
            keys::key.eq(key),
            keys::fingerprint.eq(fingerprint),
        ))
        .on_conflict((keys::user_id, keys::key))
        .do_update()
        .set((
            keys::fingerprint.eq(excluded(keys::fingerprint)),
            keys::task.eq(None::<serde_json::Value>),
            keys::created_at.eq(now),
        ))
        .filter(expired)
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
    // SQL: `to_jsonb(t)` of the task row, in an UPDATE … FROM; the DSL has neither.
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
#[derive(Queryable, Selectable)]
#[diesel(table_name = keys)]
pub struct Stored {
    pub fingerprint: String,
    pub task: Option<serde_json::Value>,
}

pub fn stored(conn: &mut PgConnection, user_id: i64, key: &str) -> Result<Stored, DbError> {
    Ok(keys::table
        .find((user_id, key))
        .select(Stored::as_select())
        .get_result(conn)?)
}

/// Deletes up to `batch` keys past their 24 hours; returns how many.
pub fn prune(conn: &mut PgConnection, batch: i64) -> Result<usize, DbError> {
    // SQL: a batch by `ctid` (the table's key is two columns); the DSL cannot name it.
    Ok(diesel::sql_query(
        "DELETE FROM idempotency_keys WHERE ctid IN (
             SELECT ctid FROM idempotency_keys
             WHERE created_at < now() - make_interval(hours => $2) LIMIT $1)",
    )
    .bind::<BigInt, _>(batch)
    .bind::<diesel::sql_types::Integer, _>(KEPT_HOURS)
    .execute(conn)?)
}

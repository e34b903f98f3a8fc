//! The per-client limit of the auth routes, counted in PostgreSQL so that
//! every instance enforces one limit: GCRA (a token bucket of `per_minute`
//! refilled evenly over a minute) in one conditional upsert per request.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};

use super::schema::auth_throttle;
use super::DbError;

/// Takes one request from `key`'s allowance: `None` when taken, or the
/// seconds until one is free again.
pub fn take(conn: &mut PgConnection, key: &str, per_minute: u32) -> Result<Option<u64>, DbError> {
    let per_minute = f64::from(per_minute.max(1));
    let interval = 60.0 / per_minute;
    // A burst of `per_minute` is allowed: the bucket is full `tolerance` ahead.
    let tolerance = 60.0 - interval;
    #[derive(QueryableByName)]
    struct Wait {
        #[diesel(sql_type = BigInt)]
        seconds: i64,
    }
    // ON CONFLICT re-reads a row another instance just wrote, so racing
    // requests are counted one after another and never over the limit.
    // SQL: an upsert whose SET and WHERE take `GREATEST(tat, now())` plus
    // fractional-second intervals; kept as the one statement of the formula.
    let taken = diesel::sql_query(
        "INSERT INTO auth_throttle AS t (client_key, tat)
         VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (client_key) DO UPDATE
             SET tat = GREATEST(t.tat, now()) + make_interval(secs => $2)
             WHERE GREATEST(t.tat, now()) <= now() + make_interval(secs => $3)",
    )
    .bind::<Text, _>(key)
    .bind::<Double, _>(interval)
    .bind::<Double, _>(tolerance)
    .execute(conn)?;
    if taken == 1 {
        return Ok(None);
    }
    // SQL: `extract(epoch …)` of an interval, cast; no DSL form.
    let wait: Option<Wait> = diesel::sql_query(
        "SELECT ceil(extract(epoch FROM tat - now()) - $2)::bigint AS seconds
         FROM auth_throttle WHERE client_key = $1",
    )
    .bind::<Text, _>(key)
    .bind::<Double, _>(tolerance)
    .get_result(conn)
    .optional()?;
    Ok(Some(wait.map_or(1, |w| w.seconds.max(1) as u64)))
}

/// Deletes windows that are full again (their tat has passed): absent is the same.
pub fn prune(conn: &mut PgConnection) -> Result<usize, DbError> {
    Ok(
        diesel::delete(auth_throttle::table.filter(auth_throttle::tat.lt(diesel::dsl::now)))
            .execute(conn)?,
    )
}

//! The mail outbox: rows written in the transaction of what they tell about,
//! claimed by one sender at a time (`FOR UPDATE SKIP LOCKED` and a lease),
//! marked sent (body erased) or put back with a later attempt time.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

use super::DbError;

/// Where a reset mail's link carries its token: filled as the mail leaves,
/// so no waiting row holds a token that works.
pub const RESET_TOKEN_SLOT: &str = "{reset-token}";

pub struct NewMail {
    pub recipient: String,
    /// A reset mail: the user whose reset gets a token when it is sent.
    pub reset_for: Option<i64>,
    pub subject: String,
    pub body: String,
}

pub fn insert(conn: &mut PgConnection, mail: &NewMail) -> Result<(), DbError> {
    diesel::sql_query(
        "INSERT INTO outbox (recipient, reset_for, subject, body) VALUES ($1, $2, $3, $4)",
    )
    .bind::<Text, _>(&mail.recipient)
    .bind::<Nullable<BigInt>, _>(mail.reset_for)
    .bind::<Text, _>(&mail.subject)
    .bind::<Text, _>(&mail.body)
    .execute(conn)?;
    Ok(())
}

/// Mails waiting to be sent (not sent, not given up).
pub fn pending(conn: &mut PgConnection) -> Result<i64, DbError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL",
    )
    .get_result(conn)?;
    Ok(count.n)
}

/// Deletes up to `batch` mails sent or given up on more than 7 days ago;
/// returns how many (none while another instance is deleting).
pub fn prune(conn: &mut PgConnection, batch: i64) -> Result<usize, DbError> {
    Ok(diesel::sql_query(super::one_instance_at_a_time(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox
             WHERE sent_at < now() - interval '7 days' OR failed_at < now() - interval '7 days'
             ORDER BY id LIMIT $1)",
    ))
    .bind::<BigInt, _>(batch)
    .execute(conn)?)
}

#[derive(Debug, QueryableByName)]
pub struct Mail {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub recipient: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub reset_for: Option<i64>,
    #[diesel(sql_type = Text)]
    pub subject: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub body: Option<String>,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Claims up to `batch` due mails for `lease_seconds`: no other sender takes
/// them until they are marked, or until the lease ends (a sender that died
/// mid-send leaves its mails to the others).
pub fn claim(
    conn: &mut PgConnection,
    batch: i64,
    lease_seconds: i64,
) -> Result<Vec<Mail>, DbError> {
    Ok(diesel::sql_query(
        "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2), attempts = attempts + 1
         WHERE id IN (
             SELECT id FROM outbox
             WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
               AND (claimed_until IS NULL OR claimed_until < now())
             ORDER BY id LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING id, recipient, reset_for, subject, body, attempts",
    )
    .bind::<BigInt, _>(batch)
    .bind::<BigInt, _>(lease_seconds)
    .get_results(conn)?)
}

/// Delivered: the body is erased.
pub fn mark_sent(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    diesel::sql_query(
        "UPDATE outbox SET sent_at = now(), body = NULL, claimed_until = NULL, last_error = NULL WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .execute(conn)?;
    Ok(())
}

/// Not delivered: try again after `retry_seconds`, or give up (`retry_seconds`
/// `None`), keeping the reason (never the body) for the operator.
pub fn mark_failed(
    conn: &mut PgConnection,
    id: i64,
    retry_seconds: Option<i64>,
    error: &str,
) -> Result<(), DbError> {
    diesel::sql_query(
        "UPDATE outbox SET claimed_until = NULL, last_error = $3,
             next_attempt_at = now() + make_interval(secs => coalesce($2, 0)),
             failed_at = CASE WHEN $2 IS NULL THEN now() END,
             body = CASE WHEN $2 IS NULL THEN NULL ELSE body END
         WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Nullable<BigInt>, _>(retry_seconds)
    .bind::<Text, _>(error)
    .execute(conn)?;
    Ok(())
}

//! The mail outbox: rows written in the transaction of what they tell about,
//! claimed by one sender at a time (`FOR UPDATE SKIP LOCKED` and a lease),
//! marked sent (body erased) or put back with a later attempt time.
use chrono::{DateTime, Utc};
use diesel::dsl::{now, IntervalDsl};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};

use super::schema::outbox;
use super::DbError;

/// Where a reset mail's link carries its token: filled as the mail leaves,
/// so no waiting row holds a token that works.
pub const RESET_TOKEN_SLOT: &str = "{reset-token}";

#[derive(Insertable)]
#[diesel(table_name = outbox)]
pub struct NewMail {
    pub recipient: String,
    /// A reset mail: the user whose reset gets a token when it is sent.
    pub reset_for: Option<i64>,
    pub subject: String,
    pub body: String,
}

pub fn insert(conn: &mut PgConnection, mail: &NewMail) -> Result<(), DbError> {
    diesel::insert_into(outbox::table)
        .values(mail)
        .execute(conn)?;
    Ok(())
}

/// Mails waiting to be sent (not sent, not given up).
pub fn pending(conn: &mut PgConnection) -> Result<i64, DbError> {
    Ok(outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .count()
        .get_result(conn)?)
}

/// Deletes up to `batch` mails sent or given up on more than 7 days ago;
/// returns how many (none while another instance is deleting).
pub fn prune(conn: &mut PgConnection, batch: i64) -> Result<usize, DbError> {
    // SQL: the advisory lock rides a CTE, which the DSL cannot write.
    Ok(diesel::sql_query(super::one_instance_at_a_time(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox
             WHERE sent_at < now() - interval '7 days' OR failed_at < now() - interval '7 days'
             ORDER BY id LIMIT $1)",
    ))
    .bind::<BigInt, _>(batch)
    .execute(conn)?)
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct Mail {
    pub id: i64,
    pub recipient: String,
    pub reset_for: Option<i64>,
    pub subject: String,
    pub body: Option<String>,
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
    // The subquery reads the table the UPDATE writes: under another name.
    let due = diesel::alias!(outbox as due);
    let due_ids = due
        .select(due.field(outbox::id))
        .filter(due.field(outbox::sent_at).is_null())
        .filter(due.field(outbox::failed_at).is_null())
        .filter(due.field(outbox::next_attempt_at).le(now))
        .filter(
            due.field(outbox::claimed_until)
                .is_null()
                .or(due.field(outbox::claimed_until).lt(now)),
        )
        .order(due.field(outbox::id))
        .limit(batch)
        .for_update()
        .skip_locked();
    let lease_end = now.into_sql::<Timestamptz>() + lease_seconds.seconds();
    Ok(
        diesel::update(outbox::table.filter(outbox::id.eq_any(due_ids)))
            .set((
                outbox::claimed_until.eq(lease_end.nullable()),
                outbox::attempts.eq(outbox::attempts + 1),
            ))
            .returning(Mail::as_returning())
            .get_results(conn)?,
    )
}

/// Delivered: the body is erased.
pub fn mark_sent(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::sent_at.eq(now),
            outbox::body.eq(None::<String>),
            outbox::claimed_until.eq(None::<DateTime<Utc>>),
            outbox::last_error.eq(None::<String>),
        ))
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
    let mail = outbox::table.find(id);
    let unclaimed = (
        outbox::claimed_until.eq(None::<DateTime<Utc>>),
        outbox::last_error.eq(error),
    );
    match retry_seconds {
        Some(seconds) => diesel::update(mail)
            .set((
                unclaimed,
                outbox::next_attempt_at.eq(now.into_sql::<Timestamptz>() + seconds.seconds()),
            ))
            .execute(conn)?,
        None => diesel::update(mail)
            .set((
                unclaimed,
                outbox::failed_at.eq(now),
                outbox::body.eq(None::<String>),
            ))
            .execute(conn)?,
    };
    Ok(())
}

//! Account recovery: a reset request (token, email in the outbox and audit
//! event in one transaction) and a reset (token spent, password set, every
//! session revoked, audit event, in one transaction).
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Text};

use super::audit::{self, AuditKind, NewEvent};
use super::outbox::{self, NewMail};
use super::schema::{password_resets, users};
use super::sessions;
use super::DbError;

// A reset remembers the password it was asked under as the SHA-256 of its
// hash (`password_fingerprint`), computed in SQL from the row read.
diesel::define_sql_function! {
    /// PostgreSQL's `sha256(bytea)`.
    fn sha256(data: Bytea) -> Bytea;
}
diesel::define_sql_function! {
    /// PostgreSQL's `convert_to(text, encoding)`: the text's bytes.
    fn convert_to(text: Text, encoding: Text) -> Bytea;
}

/// A reset to record. Its token is made when the mail leaves
/// (`issue_token`): until then the reset holds none.
pub struct NewReset<'a> {
    pub user_id: i64,
    pub ttl_seconds: i64,
    pub min_interval_seconds: i64,
    /// Who asked: `None` for the user themselves, else the admin.
    pub actor_id: Option<i64>,
    pub ip: Option<&'a str>,
}

#[derive(QueryableByName)]
struct UserId {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
}

/// Records a reset for `new.user_id` and queues `mail`, unless one was
/// requested within the interval (then nothing is written and `false`
/// returned). One conditional upsert decides, so concurrent requests on any
/// number of instances queue one email per interval. The reset is bound to
/// the current password hash: any later password change kills it. A new
/// request kills the previous request's token.
pub fn request_recorded(
    conn: &mut PgConnection,
    new: &NewReset,
    mail: &NewMail,
) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        // SQL: an upsert fed by a SELECT whose DO UPDATE is conditional, with
        // the fingerprint computed from the row it reads; one statement decides.
        let taken = diesel::sql_query(
            "INSERT INTO password_resets (user_id, token_hash, password_fingerprint, requested_at, expires_at)
             SELECT id, NULL, sha256(convert_to(password_hash, 'UTF8')), now(), now() + make_interval(secs => $2)
             FROM users WHERE id = $1 AND NOT disabled
             ON CONFLICT (user_id) DO UPDATE SET
                 token_hash = EXCLUDED.token_hash,
                 password_fingerprint = EXCLUDED.password_fingerprint,
                 requested_at = EXCLUDED.requested_at,
                 expires_at = EXCLUDED.expires_at
             WHERE password_resets.requested_at <= now() - make_interval(secs => $3)
             RETURNING user_id",
        )
        .bind::<BigInt, _>(new.user_id)
        .bind::<BigInt, _>(new.ttl_seconds)
        .bind::<BigInt, _>(new.min_interval_seconds)
        .get_results::<UserId>(conn)?;
        if taken.is_empty() {
            return Ok(false);
        }
        outbox::insert(conn, mail)?;
        audit::insert(
            conn,
            NewEvent {
                kind: AuditKind::PasswordResetRequested,
                actor_id: new.actor_id,
                subject_id: Some(new.user_id),
                ip: new.ip,
                detail: serde_json::json!({ "expires_in": new.ttl_seconds }),
            },
        )?;
        Ok(true)
    })
}

/// Spends the token whose hash is `token_hash` and sets the password to
/// `new_hash`: only a live token, issued for the password the account still
/// has, of an enabled account. Revokes every session. `None` when the token
/// is unknown, used, expired or outlived by a password change.
pub fn reset_recorded(
    conn: &mut PgConnection,
    token_hash: &[u8],
    new_hash: &str,
    ip: Option<&str>,
) -> Result<Option<i64>, DbError> {
    conn.transaction(|conn| {
        // SQL: a DELETE … USING feeding an UPDATE through a CTE (one statement,
        // so the token is spent exactly once); the DSL has neither.
        let spent = diesel::sql_query(
            "WITH spent AS (
                 DELETE FROM password_resets r USING users u
                 WHERE r.token_hash = $1 AND r.expires_at > now() AND u.id = r.user_id
                   AND NOT u.disabled
                   AND r.password_fingerprint = sha256(convert_to(u.password_hash, 'UTF8'))
                 RETURNING r.user_id)
             UPDATE users SET password_hash = $2, updated_at = now(),
                 failed_logins = 0, failed_window_start = NULL, locked_until = NULL
             FROM spent WHERE users.id = spent.user_id
             RETURNING users.id AS user_id",
        )
        .bind::<Bytea, _>(token_hash)
        .bind::<Text, _>(new_hash)
        .get_results::<UserId>(conn)?;
        let Some(UserId { user_id }) = spent.into_iter().next() else {
            return Ok(None);
        };
        let revoked = sessions::revoke_all(conn, user_id)?;
        audit::insert(
            conn,
            NewEvent::by_self(AuditKind::PasswordReset, user_id, ip)
                .with_detail(serde_json::json!({ "sessions_revoked": revoked })),
        )?;
        Ok(Some(user_id))
    })
}

/// Gives `user_id`'s reset the token whose hash is `token_hash`, as its mail
/// leaves; the previous token (a failed attempt's) dies. `false` when the
/// reset is no longer live (spent, expired, outlived by a password change,
/// account disabled): its mail should not go.
pub fn issue_token(
    conn: &mut PgConnection,
    user_id: i64,
    token_hash: &[u8],
) -> Result<bool, DbError> {
    let current_password = users::table
        .find(user_id)
        .filter(users::disabled.eq(false))
        .select(sha256(convert_to(users::password_hash, "UTF8")));
    let issued = diesel::update(password_resets::table.find(user_id))
        .filter(password_resets::expires_at.gt(now))
        .filter(password_resets::password_fingerprint.eq_any(current_password))
        .set(password_resets::token_hash.eq(token_hash))
        .execute(conn)?;
    Ok(issued == 1)
}

/// Whether `token_hash` names a live reset (a cheap check before hashing
/// the new password; `reset_recorded` decides).
pub fn is_live(conn: &mut PgConnection, token_hash: &[u8]) -> Result<bool, DbError> {
    Ok(password_resets::table
        .inner_join(users::table)
        .filter(password_resets::token_hash.eq(token_hash))
        .filter(password_resets::expires_at.gt(now))
        .filter(users::disabled.eq(false))
        .filter(
            password_resets::password_fingerprint
                .eq(sha256(convert_to(users::password_hash, "UTF8"))),
        )
        .select(password_resets::user_id)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}

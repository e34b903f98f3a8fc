//! Writes that span a user's account and sessions, each with its audit event
//! in one transaction: a login opening a session, a password change, the
//! one report of a lock.
use diesel::prelude::*;

use super::audit;
use super::mfa::{self, Proof};
use super::schema::users as users_table;
use super::sessions::{self, NewSession, Session};
use super::users;
use super::DbError;

/// A login: the second factor's `proof` claimed, the session row, the
/// user's oldest live sessions past `max_sessions` ended, the account's
/// failures cleared and its `login_succeeded` event (and
/// `mfa_recovery_code_used` for a recovery code), in one transaction.
/// `None`, with nothing written, when the proof could not be claimed.
pub fn log_in_recorded(
    conn: &mut PgConnection,
    new: &NewSession,
    max_sessions: u32,
    proof: Option<&Proof>,
) -> Result<Option<Session>, DbError> {
    conn.transaction(|conn| {
        if let Some(proof) = proof {
            if !mfa::claim(conn, new.user_id, proof)? {
                return Ok(None);
            }
        }
        let session = sessions::insert(conn, new)?;
        sessions::keep_newest(conn, new.user_id, max_sessions)?;
        users::reset_failed_logins(conn, new.user_id)?;
        let mut detail = serde_json::json!({ "session_id": new.id });
        if let Some(proof) = proof {
            detail["second_factor"] = match proof {
                Proof::Totp { .. } => "totp",
                Proof::RecoveryCode(_) => "recovery_code",
            }
            .into();
        }
        audit::insert(
            conn,
            audit::NewEvent::by_self(audit::AuditKind::LoginSucceeded, new.user_id, new.ip)
                .with_detail(detail),
        )?;
        if let Some(Proof::RecoveryCode(_)) = proof {
            let left = mfa::recovery_codes_left(conn, new.user_id)?;
            audit::insert(
                conn,
                audit::NewEvent::by_self(
                    audit::AuditKind::MfaRecoveryCodeUsed,
                    new.user_id,
                    new.ip,
                )
                .with_detail(serde_json::json!({ "session_id": new.id, "codes_left": left })),
            )?;
        }
        Ok(Some(session))
    })
}

/// A password change: the new hash, the account's failures cleared, every
/// session of the user revoked, and `password_changed`, in one transaction.
pub fn change_password_recorded(
    conn: &mut PgConnection,
    id: i64,
    hash: &str,
    ip: Option<&str>,
) -> Result<(), DbError> {
    let event = audit::NewEvent::by_self(audit::AuditKind::PasswordChanged, id, ip);
    conn.transaction(|conn| replace_password(conn, id, hash, event))
}

/// A password set for user `id` by an admin or the CLI (an `Actor` without a
/// user): the same effects as a change, audited `password_set`; `NotFound`
/// for an unknown id.
pub fn set_password_recorded(
    conn: &mut PgConnection,
    by: &audit::Actor,
    id: i64,
    hash: &str,
) -> Result<(), DbError> {
    let event = audit::NewEvent::by(audit::AuditKind::PasswordSet, by, id);
    conn.transaction(|conn| replace_password(conn, id, hash, event))
}

/// The new hash, the run of failed attempts ended (the lock lifted), every
/// session revoked, and `event` with `sessions_revoked` in its detail; to be
/// run inside the caller's transaction.
fn replace_password(
    conn: &mut PgConnection,
    id: i64,
    hash: &str,
    event: audit::NewEvent,
) -> Result<(), DbError> {
    let updated = diesel::update(users_table::table.find(id))
        .set((
            users_table::password_hash.eq(hash),
            users_table::updated_at.eq(diesel::dsl::now),
            users_table::failed_logins.eq(0),
            users_table::failed_window_start.eq(None::<chrono::DateTime<chrono::Utc>>),
            users_table::locked_until.eq(None::<chrono::DateTime<chrono::Utc>>),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(DbError::NotFound);
    }
    let revoked = sessions::revoke_all(conn, id)?;
    let detail = serde_json::json!({ "sessions_revoked": revoked });
    audit::insert(conn, event.with_detail(detail))
}

/// The `login_locked` event of user `id`'s current lock, written by the
/// first attempt the lock refuses and by no other: one statement claims the
/// lock's report and inserts the event, so racing refusals on any number of
/// instances write it once. Returns whether this call wrote it.
pub fn report_lock_once(
    conn: &mut PgConnection,
    event: audit::NewEvent<'_>,
) -> Result<bool, DbError> {
    use diesel::sql_types::{BigInt, Jsonb, Nullable, Text};
    let Some(id) = event.subject_id else {
        return Ok(false);
    };
    // SQL: a data-modifying CTE (the claim's UPDATE feeding the INSERT).
    let written = diesel::sql_query(
        "WITH claimed AS (
             UPDATE users SET lock_reported = true
             WHERE id = $1 AND locked_until > now() AND NOT lock_reported
             RETURNING id)
         INSERT INTO audit_events (kind, actor_id, subject_id, ip, detail, request_id)
         SELECT $2, id, id, $3, $4, $5 FROM claimed",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(event.kind.as_str())
    .bind::<Nullable<Text>, _>(event.ip)
    .bind::<Jsonb, _>(&event.detail)
    .bind::<Nullable<Text>, _>(crate::logging::current_request().as_deref())
    .execute(conn)?;
    Ok(written == 1)
}

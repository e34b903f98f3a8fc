//! The second factor's rows: a user's TOTP secret (pending, then enabled),
//! the newest time step accepted, and the recovery codes' digests. Every
//! claim of a code is one conditional statement, so that racing requests on
//! any number of instances accept a code once.
use diesel::prelude::*;

use super::audit;
use super::schema::{mfa_recovery_codes, users};
use super::sessions;
use super::users as user_rows;
use super::DbError;

/// What a request offers as its second factor, already checked against the
/// secret it read: claimed in the same transaction as what it unlocks.
#[derive(Debug, Clone)]
pub enum Proof {
    /// A TOTP code right for `step` of `secret` (the secret read with the
    /// user, so that a secret replaced meanwhile claims nothing).
    Totp { secret: Vec<u8>, step: i64 },
    /// The digest of a recovery code.
    RecoveryCode(Vec<u8>),
}

/// Claims `proof` for user `id`: a TOTP step newer than every step accepted
/// before (so a code, or an older one, is never accepted twice), or a
/// recovery code, deleted as it is used. False when nothing was claimed.
pub fn claim(conn: &mut PgConnection, id: i64, proof: &Proof) -> Result<bool, DbError> {
    let claimed = match proof {
        Proof::Totp { secret, step } => diesel::update(users::table.find(id))
            .filter(users::totp_enabled_at.is_not_null())
            .filter(users::totp_secret.eq(secret))
            .filter(
                users::totp_last_step
                    .is_null()
                    .or(users::totp_last_step.lt(step)),
            )
            .set(users::totp_last_step.eq(step))
            .execute(conn)?,
        Proof::RecoveryCode(digest) => diesel::delete(
            mfa_recovery_codes::table
                .filter(mfa_recovery_codes::user_id.eq(id))
                .filter(mfa_recovery_codes::code_hash.eq(digest)),
        )
        .execute(conn)?,
    };
    Ok(claimed == 1)
}

/// Starts (or restarts) user `id`'s enrolment with `secret`, pending until
/// confirmed, and ends the account's run of failures (its password was just
/// verified). False when a second factor is already enabled.
pub fn begin_enrolment(conn: &mut PgConnection, id: i64, secret: &[u8]) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        let updated = diesel::update(users::table.find(id))
            .filter(users::totp_enabled_at.is_null())
            .set((
                users::totp_secret.eq(secret),
                users::totp_last_step.eq(None::<i64>),
            ))
            .execute(conn)?;
        if updated == 1 {
            user_rows::reset_failed_logins(conn, id)?;
        }
        Ok(updated == 1)
    })
}

/// Enables the pending `secret` of user `id`, with `step` (the confirming
/// code's) as the newest accepted and `digests` as the only recovery codes,
/// and records `mfa_enabled`, in one transaction. False when that secret is
/// no longer the pending one (replaced, or confirmed by a racing request).
pub fn enable_recorded(
    conn: &mut PgConnection,
    id: i64,
    secret: &[u8],
    step: i64,
    digests: &[Vec<u8>],
    ip: Option<&str>,
) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        let updated = diesel::update(users::table.find(id))
            .filter(users::totp_enabled_at.is_null())
            .filter(users::totp_secret.eq(secret))
            .set((
                users::totp_enabled_at.eq(diesel::dsl::now),
                users::totp_last_step.eq(step),
            ))
            .execute(conn)?;
        if updated == 0 {
            return Ok(false);
        }
        replace_recovery_codes(conn, id, digests)?;
        audit::insert(
            conn,
            audit::NewEvent::by_self(audit::AuditKind::MfaEnabled, id, ip)
                .with_detail(serde_json::json!({ "recovery_codes": digests.len() })),
        )?;
        Ok(true)
    })
}

fn replace_recovery_codes(
    conn: &mut PgConnection,
    id: i64,
    digests: &[Vec<u8>],
) -> Result<(), DbError> {
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(id)))
        .execute(conn)?;
    let rows: Vec<_> = digests
        .iter()
        .map(|d| {
            (
                mfa_recovery_codes::user_id.eq(id),
                mfa_recovery_codes::code_hash.eq(d),
            )
        })
        .collect();
    diesel::insert_into(mfa_recovery_codes::table)
        .values(&rows)
        .execute(conn)?;
    Ok(())
}

/// The user's own removal of their second factor: `proof` claimed, the
/// secret and recovery codes gone, the failures ended, and `mfa_disabled`,
/// in one transaction. False (nothing written) when the proof was not claimed.
pub fn disable_recorded(
    conn: &mut PgConnection,
    id: i64,
    proof: &Proof,
    ip: Option<&str>,
) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        if !claim(conn, id, proof)? {
            return Ok(false);
        }
        remove(conn, id)?;
        user_rows::reset_failed_logins(conn, id)?;
        let event = audit::NewEvent::by_self(audit::AuditKind::MfaDisabled, id, ip);
        audit::insert(conn, event)?;
        Ok(true)
    })
}

/// An admin's reset of user `id`'s second factor (a lost phone): the secret,
/// pending or enabled, and the recovery codes gone, every session of the user
/// revoked, and `mfa_reset`, in one transaction; `NotFound` for an unknown id.
pub fn reset_recorded(
    conn: &mut PgConnection,
    admin: &audit::Actor,
    id: i64,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        let had = users::table
            .find(id)
            .select(users::totp_enabled_at.is_not_null())
            .for_update()
            .first::<bool>(conn)
            .optional()?
            .ok_or(DbError::NotFound)?;
        remove(conn, id)?;
        let revoked = sessions::revoke_all(conn, id)?;
        let detail = serde_json::json!({ "was_enabled": had, "sessions_revoked": revoked });
        audit::insert(
            conn,
            audit::NewEvent::by(audit::AuditKind::MfaReset, admin, id).with_detail(detail),
        )
    })
}

fn remove(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::totp_secret.eq(None::<Vec<u8>>),
            users::totp_enabled_at.eq(None::<chrono::DateTime<chrono::Utc>>),
            users::totp_last_step.eq(None::<i64>),
        ))
        .execute(conn)?;
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(id)))
        .execute(conn)?;
    Ok(())
}

/// How many unused recovery codes user `id` has left.
pub fn recovery_codes_left(conn: &mut PgConnection, id: i64) -> Result<i64, DbError> {
    Ok(mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(id))
        .count()
        .get_result(conn)?)
}

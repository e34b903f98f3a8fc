//! The login flow: a place in the client's hashing line, a lockout attempt
//! taken before bcrypt runs, the verification, and a new session; and the
//! same guard around a password change's check of the current password.
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::gate::Place;
use super::mfa::{self, SecondFactor};
use super::AppState;
use crate::db::mfa::Proof;
use crate::db::sessions::{NewSession, Session};
use crate::db::users::{self, AccountKey, Attempt, User};
use crate::db::{self, account, audit};
use crate::domain::{ClientKey, Email};
use crate::error::{ApiError, INCORRECT_LOGIN};

/// Where a request came from: its address as sessions and the audit log
/// record it, and the key its hashing line and throttle are kept under.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub key: ClientKey,
}

const LOCKED: &str = "Too many failed logins for this account; try again later";
const BAD_CODE: &str = "Invalid or already used one-time code";

/// The password grant: checks the credentials under the lockout and opens a
/// session. Unknown emails verify against the dummy hash, in the same turn,
/// so that both failures take the same time.
///
/// For an account with a second factor the attempt stays counted until a
/// login completes with a code: the right password without one (403
/// `mfa_required`) or with a wrong one (401) clears nothing, so codes cannot
/// be guessed faster than passwords.
///
/// The place in line is taken just before the lockout's statement (the body
/// has arrived and the throttle passed): a login refused for capacity never
/// costs the account one of its attempts, and one the lockout refuses gives
/// its place back at once.
pub async fn log_in(
    state: &AppState,
    credentials: (&str, &SecretString),
    second: Option<SecondFactor<'_>>,
    client: &Client,
) -> Result<(User, Session), ApiError> {
    let result = attempt(state, credentials, second, client).await;
    let Some(metrics) = &state.metrics else {
        return result;
    };
    metrics.login(match &result {
        Ok(_) => "success",
        Err(ApiError::InvalidGrant(_)) => "bad_credentials",
        Err(ApiError::MfaRequired) => "mfa_required",
        Err(ApiError::RateLimited { detail, .. }) if *detail == LOCKED => "locked",
        Err(ApiError::RateLimited { .. } | ApiError::Overloaded { .. }) => "refused",
        Err(ApiError::AccountDisabled) => "disabled",
        Err(_) => "error",
    });
    result
}

async fn attempt(
    state: &AppState,
    (username, password): (&str, &SecretString),
    second: Option<SecondFactor<'_>>,
    client: &Client,
) -> Result<(User, Session), ApiError> {
    let place = state.hasher.place(client.key)?;
    let email = Email::normalise(username);
    let auth = &state.settings.auth;
    let (max, window) = (auth.max_failed_logins.get(), auth.lockout_seconds.get());
    let attempt = if email.contains('\0') {
        // PostgreSQL text cannot hold NUL: such a name can match no account.
        Attempt::Unknown
    } else {
        let email = email.clone();
        db::run(&state.pool, move |conn| {
            users::reserve_attempt(conn, AccountKey::Email(&email), max, window)
        })
        .await?
    };
    let user = match attempt {
        Attempt::Reserved(user) => Some(user),
        Attempt::Unknown => None,
        Attempt::Refused {
            user_id,
            retry_after_seconds,
        } => {
            drop(place);
            return refuse_locked(state, user_id, retry_after_seconds, client, "login").await;
        }
    };
    let matched = state
        .hasher
        .verify(
            &place,
            password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await?;
    drop(place);
    match user {
        Some(user) if matched && !user.disabled => {
            // The factor offered is ignored for an account without one.
            let proof = match (user.totp(), second) {
                (None, _) => None,
                (Some(_), None) => return Err(ApiError::MfaRequired),
                (Some(secret), Some(factor)) => match mfa::proof(secret, factor) {
                    Some(proof) => Some(proof),
                    None => {
                        let reason = match factor {
                            SecondFactor::Otp(_) => "wrong_code",
                            SecondFactor::RecoveryCode(_) => "unknown_recovery_code",
                        };
                        return refuse_code(state, user.id, reason, client).await;
                    }
                },
            };
            let reason = match proof {
                Some(Proof::RecoveryCode(_)) => "unknown_recovery_code",
                _ => "code_already_used",
            };
            match open_session(state, &user, client, proof).await? {
                Some(session) => Ok((user, session)),
                None => refuse_code(state, user.id, reason, client).await,
            }
        }
        Some(user) if matched => {
            // The right password: not a guess, so it does not count against the account.
            record_failure(
                state,
                Some(user.id),
                &email,
                "account_disabled",
                client,
                true,
            )
            .await?;
            Err(ApiError::AccountDisabled)
        }
        user => {
            let id = user.map(|u| u.id);
            record_failure(state, id, &email, "bad_credentials", client, false).await?;
            Err(ApiError::InvalidGrant(INCORRECT_LOGIN))
        }
    }
}

/// Checks user `id`'s current password under the same lockout as logins: a
/// wrong one counts against the account; past the limit it is 429 (and the
/// account's logins are locked too). On success returns the place, so that
/// a new password can be hashed without queueing again, and the user's row
/// as the check read it.
pub async fn check_current_password(
    state: &AppState,
    id: i64,
    candidate: &SecretString,
    client: &Client,
) -> Result<(Place, User), ApiError> {
    let place = state.hasher.place(client.key)?;
    let auth = &state.settings.auth;
    let (max, window) = (auth.max_failed_logins.get(), auth.lockout_seconds.get());
    let attempt = db::run(&state.pool, move |conn| {
        users::reserve_attempt(conn, AccountKey::Id(id), max, window)
    })
    .await?;
    let user = match attempt {
        Attempt::Reserved(user) => user,
        Attempt::Unknown => return Err(ApiError::InvalidToken { expired: false }),
        Attempt::Refused {
            user_id,
            retry_after_seconds,
        } => {
            drop(place);
            return refuse_locked(
                state,
                user_id,
                retry_after_seconds,
                client,
                "password_change",
            )
            .await;
        }
    };
    let matched = state
        .hasher
        .verify(&place, candidate, Some(&user.password_hash))
        .await?;
    if !matched {
        return Err(ApiError::field("current_password", "incorrect password"));
    }
    // The change's own write clears the failures (`change_password_recorded`),
    // after the new hash: the place is not held while that write waits.
    Ok((place, user))
}

/// 429 while the account is locked, whatever the password (so a guess in a
/// locked window learns nothing); the lock's first refusal is audited as
/// `login_locked`, later ones are not (each would be a row at no hashing cost).
async fn refuse_locked<T>(
    state: &AppState,
    user_id: i64,
    retry_after_seconds: u64,
    client: &Client,
    route: &'static str,
) -> Result<T, ApiError> {
    let ip = client.ip.clone();
    db::run(&state.pool, move |conn| {
        account::report_lock_once(
            conn,
            audit::NewEvent::by_self(audit::AuditKind::LoginLocked, user_id, ip.as_deref())
                .with_detail(json!({ "retry_after": retry_after_seconds, "route": route })),
        )
    })
    .await?;
    Err(ApiError::RateLimited {
        retry_after_seconds,
        detail: LOCKED,
    })
}

/// 401 for a wrong, unknown or used code, recorded as `mfa_failed`; the
/// login's attempt stays counted against the account.
async fn refuse_code<T>(
    state: &AppState,
    user_id: i64,
    reason: &'static str,
    client: &Client,
) -> Result<T, ApiError> {
    let detail = json!({ "reason": reason, "route": "login" });
    record_code_failure(state, user_id, detail, client).await?;
    Err(ApiError::InvalidGrant(BAD_CODE))
}

/// Records `mfa_failed` for user `user_id` (never the code in `detail`).
pub async fn record_code_failure(
    state: &AppState,
    user_id: i64,
    detail: serde_json::Value,
    client: &Client,
) -> Result<(), ApiError> {
    let ip = client.ip.clone();
    Ok(db::run(&state.pool, move |conn| {
        audit::insert(
            conn,
            audit::NewEvent::by_self(audit::AuditKind::MfaFailed, user_id, ip.as_deref())
                .with_detail(detail),
        )
    })
    .await?)
}

/// Records `login_failed`: for an unknown email, actor and subject are null
/// and the detail names the email tried only if it is one (people type
/// passwords into the username field; never the password). `clear` ends the
/// account's run of failures (the right password of a disabled account).
async fn record_failure(
    state: &AppState,
    user_id: Option<i64>,
    tried: &str,
    reason: &'static str,
    client: &Client,
    clear: bool,
) -> Result<(), ApiError> {
    let detail = match Email::parse(tried) {
        Ok(email) => json!({ "email": email.as_str(), "reason": reason }),
        Err(_) => json!({ "email": null, "username": "not an email", "reason": reason }),
    };
    let ip = client.ip.clone();
    Ok(db::run(&state.pool, move |conn| {
        let event = audit::NewEvent {
            kind: audit::AuditKind::LoginFailed,
            actor_id: user_id,
            subject_id: user_id,
            ip: ip.as_deref(),
            detail,
        };
        match (user_id, clear) {
            (Some(id), true) => users::reset_failed_logins_recorded(conn, id, event),
            _ => audit::insert(conn, event),
        }
    })
    .await?)
}

fn at(seconds: i64) -> Result<DateTime<Utc>, ApiError> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| ApiError::internal("timestamp out of range"))
}

/// Opens a session (one row, the failures cleared, its `login_succeeded`
/// event), claiming `proof` in the same transaction; `None` when the proof
/// was already used.
async fn open_session(
    state: &AppState,
    user: &User,
    client: &Client,
    proof: Option<Proof>,
) -> Result<Option<Session>, ApiError> {
    let jwt = &state.settings.jwt;
    let precise_now = Utc::now();
    // Whole seconds for whatever becomes a token claim.
    let now = precise_now.timestamp();
    let expires_at = now.saturating_add(jwt.session_max_seconds.get() as i64);
    let refresh_exp = now
        .saturating_add(jwt.refresh_ttl_seconds.get() as i64)
        .min(expires_at);
    let (now, refresh_exp, expires_at) = (at(now)?, at(refresh_exp)?, at(expires_at)?);
    let (user_id, client) = (user.id, client.clone());
    let max_sessions = state.settings.auth.max_sessions_per_user.get();
    Ok(db::run(&state.pool, move |conn| {
        let id = Uuid::new_v4();
        account::log_in_recorded(
            conn,
            &NewSession {
                id,
                user_id,
                refresh_jti: Uuid::new_v4(),
                refresh_iat: now,
                refresh_exp,
                // Full precision: sessions are listed oldest first.
                created_at: precise_now,
                last_used_at: precise_now,
                expires_at,
                ip: client.ip.as_deref(),
                user_agent: client.user_agent.as_deref(),
            },
            max_sessions,
            proof.as_ref(),
        )
    })
    .await?)
}

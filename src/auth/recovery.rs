//! Password recovery: a reset link by email for an account that exists (and
//! the same answer, in about the same time, for one that does not), and the
//! reset that spends the link's token.
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::AppState;
use crate::db::outbox::{NewMail, RESET_TOKEN_SLOT};
use crate::db::recovery::{self, NewReset};
use crate::db::{self, users};
use crate::domain::{parse_reset_token, ClientKey, Email};
use crate::error::ApiError;

/// Every request for a reset takes at least this long, so that the answer's
/// timing does not tell whether the account exists.
const FORGOT_MIN_DURATION: Duration = Duration::from_millis(150);

/// Who asks for a reset: the user (by email, unauthenticated) or an admin.
pub enum Requester<'a> {
    Anyone { ip: Option<String> },
    Admin { id: i64, ip: Option<&'a str> },
}

/// Queues a reset email for the enabled account of `email`, at most one per
/// `recovery.min_interval_seconds`; does nothing otherwise. The caller
/// answers the same either way.
pub async fn request_by_email(
    state: &AppState,
    email: &str,
    ip: Option<String>,
) -> Result<(), ApiError> {
    let started = Instant::now();
    let result = match Email::parse(email) {
        Ok(email) => {
            let user = db::run(&state.pool, move |conn| {
                users::find_by_email(conn, email.as_str())
            })
            .await?;
            match user {
                Some(user) if !user.disabled => {
                    request(state, user.id, &user.email, Requester::Anyone { ip })
                        .await
                        .map(|_| ())
                }
                _ => Ok(()),
            }
        }
        Err(_) => Ok(()),
    };
    if let Some(rest) = FORGOT_MIN_DURATION.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    result
}

/// Records the reset and queues its email (one transaction); `false` when
/// one was already sent within the interval. The token is made when the
/// mail leaves (see `mail.rs`): nothing stored until then can reset the
/// password.
pub async fn request(
    state: &AppState,
    user_id: i64,
    email: &str,
    requester: Requester<'_>,
) -> Result<bool, ApiError> {
    let settings = &state.settings;
    let mail = reset_mail(
        user_id,
        email,
        &settings.mail.link_base_url,
        settings.recovery.token_ttl_seconds.get(),
    );
    let (actor_id, ip) = match requester {
        Requester::Anyone { ip } => (None, ip),
        Requester::Admin { id, ip } => (Some(id), ip.map(str::to_owned)),
    };
    let ttl = settings
        .recovery
        .token_ttl_seconds
        .get()
        .min(i64::MAX as u64) as i64;
    let interval = settings.recovery.min_interval_seconds.min(i64::MAX as u64) as i64;
    let queued = db::run(&state.pool, move |conn| {
        recovery::request_recorded(
            conn,
            &NewReset {
                user_id,
                ttl_seconds: ttl,
                min_interval_seconds: interval,
                actor_id,
                ip: ip.as_deref(),
            },
            &mail,
        )
    })
    .await?;
    if queued {
        state.mail_waiting.notify_one();
    }
    Ok(queued)
}

/// Sets `new_password` for the account whose live token this is, revoking
/// every session. The password follows the signup rules; the hash is made
/// under the hashing bound, before the token is spent.
pub async fn reset(
    state: &AppState,
    token: &str,
    new_password: SecretString,
    ip: Option<String>,
    key: ClientKey,
) -> Result<(), ApiError> {
    let password = super::password::new_password(new_password)?;
    let hash = parse_reset_token(token).ok_or(ApiError::InvalidResetToken)?;
    // No bcrypt for a token that cannot work: a guesser costs one indexed read.
    let probe = hash.clone();
    if !db::run(&state.pool, move |conn| recovery::is_live(conn, &probe)).await? {
        return Err(ApiError::InvalidResetToken);
    }
    let new_hash = state.hasher.hash_for(key, &password).await?;
    db::run(&state.pool, move |conn| {
        recovery::reset_recorded(conn, &hash, &new_hash, ip.as_deref())
    })
    .await?
    .map(|_| ())
    .ok_or(ApiError::InvalidResetToken)
}

/// The email: plain text, the link and how long it lasts. No personal data
/// beyond the address it goes to. The link's token is a slot filled when
/// the mail is sent.
fn reset_mail(user_id: i64, email: &str, link_base: &str, ttl_seconds: u64) -> NewMail {
    let separator = if link_base.contains('?') { '&' } else { '?' };
    let minutes = ttl_seconds.div_ceil(60);
    NewMail {
        recipient: email.to_owned(),
        reset_for: Some(user_id),
        subject: "Reset your taskgate password".into(),
        body: format!(
            "Someone (hopefully you) asked to reset the password of this account.\n\n\
             Set a new password here within {minutes} minutes:\n\n\
             {link_base}{separator}token={RESET_TOKEN_SLOT}\n\n\
             The link works once. If you did not ask, ignore this email: your\n\
             password stays as it is.\n"
        ),
    }
}

//! What a grant hands out: a session's token pair, signed; and the refresh
//! grant, which rotates the session's refresh token (docs/API.md, "Refresh
//! tokens rotate").
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::jwt::TokenType;
use super::AppState;
use crate::db;
use crate::db::sessions::{self, Refreshed, Session};
use crate::domain::Role;
use crate::error::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

const BAD_REFRESH: &str = "Invalid or expired refresh token";

/// Signs a fresh access token (issued at `now`) and the session's current refresh token.
pub fn sign_pair(
    state: &AppState,
    (user_id, role): (i64, Role),
    session: &Session,
    now: i64,
) -> Result<TokenPair, ApiError> {
    let keys = &state.keys;
    let access = keys.access_claims(
        user_id,
        role,
        session.id,
        now,
        state.settings.jwt.access_ttl_seconds.get(),
        session.expires_at.timestamp(),
    );
    let refresh = keys.refresh_claims(
        user_id,
        session.id,
        session.refresh_jti,
        session.refresh_iat.timestamp(),
        session.refresh_exp.timestamp(),
    );
    Ok(TokenPair {
        access_token: keys.encode(&access).map_err(ApiError::internal)?,
        refresh_token: keys.encode(&refresh).map_err(ApiError::internal)?,
        token_type: "bearer",
        expires_in: access.exp - access.iat,
    })
}

/// The refresh grant: a new pair for a live session's current refresh token
/// (or its predecessor, within the grace); a retired one revokes the session.
pub async fn refresh(
    state: &AppState,
    token: &str,
    ip: Option<String>,
) -> Result<TokenPair, ApiError> {
    let claims = state.keys.decode(token, TokenType::Refresh).map_err(|e| {
        log::debug!("refresh token refused: {e:?}");
        ApiError::InvalidGrant(BAD_REFRESH)
    })?;
    let (sid, jti, user_id) = (claims.sid, claims.jti, claims.user_id().unwrap_or_default());
    let jwt = &state.settings.jwt;
    let (ttl, grace) = (
        jwt.refresh_ttl_seconds.get() as i64,
        jwt.refresh_reuse_grace_seconds as i64,
    );
    let outcome = db::run(&state.pool, move |conn| {
        sessions::refresh_recorded(conn, sid, user_id, jti, ttl, grace, ip.as_deref())
    })
    .await?;
    match outcome {
        Refreshed::Rotated(session, user) | Refreshed::Grace(session, user) => sign_pair(
            state,
            (user.id, user.role()?),
            &session,
            Utc::now().timestamp(),
        ),
        Refreshed::ReuseDetected { user_id } => {
            log::warn!("refresh token reuse detected: session {sid} of user {user_id} revoked");
            Err(ApiError::InvalidGrant(BAD_REFRESH))
        }
        Refreshed::Refused => Err(ApiError::InvalidGrant(BAD_REFRESH)),
    }
}

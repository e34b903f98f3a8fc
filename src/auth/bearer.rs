//! The bearer middleware's validator: verify the access token, then load user
//! and session in one query and store `CurrentUser`.
use actix_web::dev::ServiceRequest;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, HttpMessage};
use actix_web_httpauth::extractors::bearer::BearerAuth;

use super::jwt::{TokenError, TokenType};
use super::CurrentUser;
use crate::db::{self, sessions};
use crate::error::{ApiError, Message};
use crate::startup::AppState;

/// For `HttpAuthentication::with_fn`. `Option` so that a missing header
/// becomes our JSON 401 rather than the extractor's own answer.
pub async fn validate(
    req: ServiceRequest,
    credentials: Option<BearerAuth>,
) -> Result<ServiceRequest, (actix_web::Error, ServiceRequest)> {
    match authenticate(&req, credentials).await {
        Ok(user) => {
            req.extensions_mut().insert(user);
            Ok(req)
        }
        Err(e) => Err((e.into(), req)),
    }
}

async fn authenticate(
    req: &ServiceRequest,
    credentials: Option<BearerAuth>,
) -> Result<CurrentUser, ApiError> {
    let Some(credentials) = credentials else {
        // A header that is not a well-formed Bearer credential is a bad token, not a missing one.
        return Err(if req.headers().contains_key(AUTHORIZATION) {
            ApiError::InvalidToken { expired: false }
        } else {
            ApiError::NotAuthenticated
        });
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(Message("AppState is not registered".into())))?;
    // Logins yield to authenticated traffic (see PasswordHasher).
    state.hasher.note_request();
    let claims = state
        .keys
        .decode(credentials.token(), TokenType::Access)
        .map_err(|e| match e {
            TokenError::Expired => ApiError::InvalidToken { expired: true },
            TokenError::Invalid(reason) => {
                log::debug!("access token refused: {reason}");
                ApiError::InvalidToken { expired: false }
            }
        })?;
    let (sid, user_id) = (claims.sid, claims.user_id().unwrap_or_default());
    let user = db::run(&state.pool, move |conn| sessions::find_live_user(conn, sid, user_id))
        .await?
        .ok_or_else(|| {
            log::debug!("access token refused: session {sid} revoked or expired, or user {user_id} disabled or gone");
            ApiError::InvalidToken { expired: false }
        })?;
    let role = user.role()?;
    Ok(CurrentUser {
        user,
        role,
        session_id: sid,
    })
}

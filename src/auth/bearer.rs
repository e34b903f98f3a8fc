//! The bearer middleware's validator: verify the access token, then load user
//! and session in one query and store `CurrentUser`.
use actix_web::dev::ServiceRequest;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, HttpMessage};
use actix_web_httpauth::extractors::bearer::BearerAuth;

use super::jwt::{TokenError, TokenType};
use super::AppState;
use super::CurrentUser;
use crate::db::{self, sessions};
use crate::error::ApiError;

/// For `HttpAuthentication::with_fn`. `Option` so that a missing header
/// becomes our JSON 401 rather than the extractor's own answer. A user whose
/// role must have a second factor (`auth.mfa_required_roles`) and has none
/// yet is refused with 403 `mfa_enrollment_required`.
pub async fn validate(
    req: ServiceRequest,
    credentials: Option<BearerAuth>,
) -> Result<ServiceRequest, (actix_web::Error, ServiceRequest)> {
    let authenticated = authenticate(&req, credentials)
        .await
        .and_then(|(user, state)| {
            if state.settings.auth.mfa_required(user.role) && !user.user.mfa_enabled() {
                return Err(ApiError::MfaEnrollmentRequired);
            }
            Ok(user)
        });
    store(req, authenticated)
}

/// `validate` for the few routes a user who must enrol a second factor can
/// still reach: `/users/me`, the enrolment itself, and logout.
pub async fn validate_enrolling(
    req: ServiceRequest,
    credentials: Option<BearerAuth>,
) -> Result<ServiceRequest, (actix_web::Error, ServiceRequest)> {
    let authenticated = authenticate(&req, credentials).await.map(|(user, _)| user);
    store(req, authenticated)
}

fn store(
    req: ServiceRequest,
    authenticated: Result<CurrentUser, ApiError>,
) -> Result<ServiceRequest, (actix_web::Error, ServiceRequest)> {
    match authenticated {
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
) -> Result<(CurrentUser, web::Data<AppState>), ApiError> {
    let token = match &credentials {
        Some(credentials) => credentials.token(),
        // actix-web-httpauth matches the scheme case-sensitively; RFC 9110 §11.1 says it is not.
        None => match req.headers().get(AUTHORIZATION) {
            None => return Err(ApiError::NotAuthenticated),
            // A header that is not a well-formed Bearer credential is a bad token, not a missing one.
            Some(value) => {
                bearer_token(value.as_bytes()).ok_or(ApiError::InvalidToken { expired: false })?
            }
        },
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("AppState is not registered"))?;
    let claims = state
        .keys
        .decode(token, TokenType::Access)
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
    let user = CurrentUser {
        user,
        role,
        session_id: sid,
    };
    Ok((user, state))
}

/// The token of `Authorization: <scheme> <token>` when the scheme is `Bearer`
/// in any letter case.
fn bearer_token(header: &[u8]) -> Option<&str> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_matches_in_any_case() {
        for header in [
            "bearer t.o.k",
            "BEARER t.o.k",
            "BeArEr t.o.k",
            "Bearer  t.o.k",
        ] {
            assert_eq!(bearer_token(header.as_bytes()), Some("t.o.k"), "{header}");
        }
        for header in ["Basic abc", "bearer", "bearer ", "Bearertok", "bearers tok"] {
            assert_eq!(bearer_token(header.as_bytes()), None, "{header}");
        }
    }
}

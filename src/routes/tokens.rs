//! `POST /token` and `POST /login`: the OAuth2 password grant.
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::client::{client_ip, user_agent};
use super::form::FormFields;
use super::json::JsonBody;
use crate::auth::jwt::TokenType;
use crate::auth::login::{self, Client};
use crate::auth::AppState;
use crate::db::sessions::{self, Refreshed};
use crate::db::{self};
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// The password grant's form (for the OpenAPI description; `FormFields` parses it).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct PasswordGrantForm {
    /// `password` (the default when absent).
    #[schema(pattern = "^password$", value_type = String, required = false)]
    grant_type: Option<String>,
    /// The account's email.
    #[schema(min_length = 1)]
    username: String,
    #[schema(min_length = 1)]
    password: String,
    /// Ignored, as are `client_id` and `client_secret`.
    #[schema(value_type = String, required = false)]
    scope: Option<String>,
    #[schema(value_type = String, required = false)]
    client_id: Option<String>,
    #[schema(value_type = String, required = false)]
    client_secret: Option<String>,
}

/// The refresh grant's form.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct RefreshGrantForm {
    #[schema(pattern = "^refresh_token$")]
    grant_type: String,
    #[schema(min_length = 1)]
    refresh_token: String,
    #[schema(value_type = String, required = false)]
    scope: Option<String>,
    #[schema(value_type = String, required = false)]
    client_id: Option<String>,
    #[schema(value_type = String, required = false)]
    client_secret: Option<String>,
}

/// What `/token` and `/login` accept: one of the two grants.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TokenForm {
    Password(PasswordGrantForm),
    Refresh(RefreshGrantForm),
}

/// POST /token and POST /login (its alias, see `openapi::Aliases`)
#[utoipa::path(post, path = "/token", tag = "auth",
    request_body(content(
        (TokenForm = "application/x-www-form-urlencoded"),
        (TokenForm = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 400, description = "Unsupported grant type or malformed form", body = ErrorBody),
        (status = 401, description = "Incorrect email or password", body = ErrorBody),
        (status = 403, description = "Account disabled", body = ErrorBody),
        (status = 415, description = "Not form data", body = ErrorBody),
        (status = 422, description = "username or password missing", body = ErrorBody),
    ))]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let form = FormFields::read(&req, payload, state.settings.server.body_limit_bytes).await?;
    match form.get("grant_type").unwrap_or("password") {
        "password" => password_grant(&state, &req, &form).await,
        "refresh_token" => {
            let token = form
                .get("refresh_token")
                .ok_or_else(|| ApiError::field("refresh_token", "field required"))?;
            refresh_grant(&state, &req, token).await
        }
        _ => Err(ApiError::UnsupportedGrantType),
    }
}

async fn password_grant(
    state: &AppState,
    req: &HttpRequest,
    form: &FormFields,
) -> Result<HttpResponse, ApiError> {
    let (username, password) = match (form.get("username"), form.get("password")) {
        (Some(u), Some(p)) => (u, p),
        (u, p) => {
            let required = |v: Option<&str>| v.is_none().then(|| "field required".to_owned());
            return Err(ApiError::invalid_fields([
                ("username", required(u)),
                ("password", required(p)),
            ]));
        }
    };
    let client = Client {
        ip: client_ip(req),
        user_agent: user_agent(req),
    };
    let (user, session) = login::log_in(state, username, password, &client).await?;
    let pair = sign_pair(
        state,
        user.id,
        user.role()?,
        &session,
        session.refresh_iat.timestamp(),
    )?;
    Ok(token_response(pair))
}

const BAD_REFRESH: &str = "Invalid or expired refresh token";

/// The body of `POST /refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// POST /refresh
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body = RefreshBody,
    responses(
        (status = 200, description = "A new pair; the presented refresh token is retired", body = TokenPair),
        (status = 401, description = "Unusable refresh token (a retired one also revokes its session)", body = ErrorBody),
        (status = 422, description = "refresh_token missing", body = ErrorBody),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    refresh_grant(&state, &req, &body.refresh_token).await
}

/// Rotates a refresh token (docs/API.md, "Refresh tokens rotate").
async fn refresh_grant(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
) -> Result<HttpResponse, ApiError> {
    let claims = state.keys.decode(token, TokenType::Refresh).map_err(|e| {
        log::debug!("refresh token refused: {e:?}");
        ApiError::InvalidGrant(BAD_REFRESH)
    })?;
    let (sid, jti, user_id) = (claims.sid, claims.jti, claims.user_id().unwrap_or_default());
    let jwt = &state.settings.jwt;
    let (ttl, grace) = (
        jwt.refresh_ttl_seconds as i64,
        jwt.refresh_reuse_grace_seconds as i64,
    );
    let ip = client_ip(req);
    let outcome = db::run(&state.pool, move |conn| {
        sessions::refresh_recorded(conn, sid, user_id, jti, ttl, grace, ip.as_deref())
    })
    .await?;
    match outcome {
        Refreshed::Rotated(session, user) | Refreshed::Grace(session, user) => {
            let pair = sign_pair(
                state,
                user.id,
                user.role()?,
                &session,
                Utc::now().timestamp(),
            )?;
            Ok(token_response(pair))
        }
        Refreshed::ReuseDetected { user_id } => {
            log::warn!("refresh token reuse detected: session {sid} of user {user_id} revoked");
            Err(ApiError::InvalidGrant(BAD_REFRESH))
        }
        Refreshed::Refused => Err(ApiError::InvalidGrant(BAD_REFRESH)),
    }
}

/// Signs a fresh access token and the session's current refresh token.
pub fn sign_pair(
    state: &AppState,
    user_id: i64,
    role: Role,
    session: &sessions::Session,
    now: i64,
) -> Result<TokenPair, ApiError> {
    let keys = &state.keys;
    let access = keys.access_claims(
        user_id,
        role,
        session.id,
        now,
        state.settings.jwt.access_ttl_seconds,
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

/// 200 with the pair; tokens must never be cached (RFC 6749 §5.1).
pub fn token_response(pair: TokenPair) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(pair)
}

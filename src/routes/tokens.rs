//! `POST /token` and `POST /login`: the OAuth2 password grant.
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::form::FormFields;
use super::json::JsonBody;
use crate::auth::grant::{self, TokenPair};
use crate::auth::login::{self, Client};
use crate::auth::mfa::SecondFactor;
use crate::auth::AppState;
use crate::error::{ApiError, ErrorBody};

/// The password grant's form.
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the form for /openapi.json; FormFields parses it"
)]
pub struct PasswordGrantForm {
    /// `password` (the default when absent).
    #[schema(required = false)]
    grant_type: Option<PasswordGrantType>,
    /// The account's email.
    #[schema(min_length = 1)]
    username: String,
    #[schema(min_length = 1)]
    password: String,
    /// The authenticator app's 6-digit code, for an account with a second
    /// factor (ignored for one without).
    #[schema(value_type = String, required = false, example = "123456")]
    otp: Option<String>,
    /// An unused recovery code, in place of `otp`.
    #[schema(value_type = String, required = false)]
    recovery_code: Option<String>,
    /// Ignored, as are `client_id` and `client_secret`.
    #[schema(value_type = String, required = false)]
    scope: Option<String>,
    #[schema(value_type = String, required = false)]
    client_id: Option<String>,
    #[schema(value_type = String, required = false)]
    client_secret: Option<String>,
}

/// The password grant's `grant_type`: one value, an enum so generators type it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordGrantType {
    Password,
}

/// The refresh grant's `grant_type`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefreshGrantType {
    RefreshToken,
}

/// The refresh grant's form.
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the form for /openapi.json; FormFields parses it"
)]
pub struct RefreshGrantForm {
    grant_type: RefreshGrantType,
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
pub enum TokenForm {
    Password(PasswordGrantForm),
    Refresh(RefreshGrantForm),
}

/// POST /token and POST /login (its alias)
// Multipart is accepted too (as FastAPI's form is), but the document offers
// the form alone: generators that meet two request types under a oneOf
// produce login code that does not import.
#[utoipa::path(post, path = "/token", tag = "auth",
    request_body(content(
        (TokenForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 400, description = "Unsupported grant type or malformed form", body = ErrorBody),
        (status = 401, description = "Incorrect email or password, or a wrong or used one-time code", body = ErrorBody),
        (status = 403, description = "Account disabled, or a second factor required (`mfa_required`: send `otp` or `recovery_code`)", body = ErrorBody),
        (status = 415, description = "Not form data", body = ErrorBody),
        (status = 422, description = "username or password missing", body = ErrorBody),
    ))]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Client,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let form =
        FormFields::read(&req, payload, state.settings.server.body_limit_bytes.get()).await?;
    match form.get("grant_type").unwrap_or("password") {
        "password" => password_grant(&state, &caller, &form).await,
        "refresh_token" => {
            let token = form
                .get("refresh_token")
                .ok_or_else(|| ApiError::field("refresh_token", "field required"))?;
            let pair = grant::refresh(&state, token, caller.ip).await?;
            Ok(token_response(pair))
        }
        _ => Err(ApiError::UnsupportedGrantType),
    }
}

async fn password_grant(
    state: &AppState,
    caller: &Client,
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
    let second = match (form.get("otp"), form.get("recovery_code")) {
        (None, None) => None,
        (Some(otp), None) => Some(SecondFactor::Otp(otp)),
        (None, Some(code)) => Some(SecondFactor::RecoveryCode(code)),
        (Some(_), Some(_)) => {
            let both = || Some("send otp or recovery_code, not both".to_owned());
            return Err(ApiError::invalid_fields([
                ("otp", both()),
                ("recovery_code", both()),
            ]));
        }
    };
    let password = SecretString::from(password);
    let (user, session) = login::log_in(state, (username, &password), second, caller).await?;
    let pair = grant::sign_pair(
        state,
        (user.id, user.role()?),
        &session,
        session.refresh_iat.timestamp(),
    )?;
    Ok(token_response(pair))
}

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
    caller: Client,
    body: JsonBody<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let pair = grant::refresh(&state, &body.refresh_token, caller.ip).await?;
    Ok(token_response(pair))
}

/// 200 with the pair; tokens must never be cached (RFC 6749 §5.1).
pub fn token_response(pair: TokenPair) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(pair)
}

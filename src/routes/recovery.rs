//! Account recovery: ask for a reset link by email, and spend it. Both are
//! 404 while recovery is off (production without `mail.smtp_url`).
use actix_web::{web, HttpResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::JsonBody;
use crate::auth::login::Client;
use crate::auth::recovery;
use crate::auth::AppState;
use crate::domain::EMAIL_MAX;
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    #[schema(max_length = 254, example = "ada@example.com")]
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "If an account exists for that email, a reset link is on its way")]
    detail: &'static str,
}

impl Accepted {
    pub fn new(detail: &'static str) -> Accepted {
        Accepted { detail }
    }
}

const ACCEPTED: Accepted = Accepted {
    detail: "If an account exists for that email, a reset link is on its way",
};

/// Recovery routes and pages are 404 while recovery is off (production
/// without `mail.smtp_url`).
pub fn enabled(state: &AppState) -> Result<(), ApiError> {
    state
        .settings
        .recovery_enabled()
        .then_some(())
        .ok_or(ApiError::RecoveryDisabled)
}

/// POST /password/forgot: the same 202 whether or not the account exists.
#[utoipa::path(post, path = "/password/forgot", tag = "recovery", request_body = ForgotBody,
    responses(
        (status = 202, description = "Accepted; an email is sent only to an existing, enabled account, at most once per recovery.min_interval_seconds", body = Accepted),
        (status = 404, description = "Recovery is off (no mail.smtp_url in production)", body = ErrorBody),
        (status = 422, description = "An email longer than any account's", body = ErrorBody),
    ))]
pub async fn forgot(
    state: web::Data<AppState>,
    caller: Client,
    body: JsonBody<ForgotBody>,
) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    let email = body.into_inner().email;
    // No account has a longer one: refusing it tells nothing, and bounds the input.
    if email.chars().count() > EMAIL_MAX {
        return Err(ApiError::field(
            "email",
            format!("at most {EMAIL_MAX} characters"),
        ));
    }
    recovery::request_by_email(&state, &email, caller.ip).await?;
    Ok(HttpResponse::Accepted().json(ACCEPTED))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// From the emailed link
    #[schema(example = "3f1c…")]
    pub token: String,
    /// The signup rules: 8 characters to 72 bytes, not a common password.
    #[schema(value_type = String, min_length = 8, max_length = 72)]
    pub new_password: SecretString,
}

/// POST /password/reset: spends the token; every session of the user ends.
#[utoipa::path(post, path = "/password/reset", tag = "recovery", request_body = ResetBody,
    responses(
        (status = 204, description = "Password set; every session revoked"),
        (status = 400, description = "invalid_grant: the token is unknown, used, expired or older than the last password change", body = ErrorBody),
        (status = 404, description = "Recovery is off", body = ErrorBody),
        (status = 422, description = "new_password breaks the password rules", body = ErrorBody),
    ))]
pub async fn reset(
    state: web::Data<AppState>,
    caller: Client,
    body: JsonBody<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    let ResetBody {
        token,
        new_password,
    } = body.into_inner();
    recovery::reset(&state, &token, new_password, caller.ip, caller.key).await?;
    Ok(HttpResponse::NoContent().finish())
}

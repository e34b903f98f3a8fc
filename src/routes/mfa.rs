//! The caller's TOTP second factor: enrol, confirm, remove.
use actix_web::{web, HttpResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor::Actor;
use super::json::JsonBody;
use crate::auth::login;
use crate::auth::mfa::{self, SecondFactor};
use crate::auth::AppState;
use crate::db::{self, users};
use crate::error::{ApiError, ErrorBody};

const ALREADY_ENABLED: &str = "A second factor is already enabled; remove it first";
const NONE_PENDING: &str = "No enrolment is pending: start one with POST /users/me/mfa/totp";
const NONE_ENABLED: &str = "No second factor is enabled";
const BAD_CODE: &str = "incorrect or already used code";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolBody {
    #[schema(value_type = String)]
    pub current_password: SecretString,
}

/// A pending secret: type `secret` into an authenticator app or scan
/// `otpauth_uri` as a QR code, then confirm with a code it shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// The shared secret, base32 without padding.
    pub secret: String,
    #[schema(
        example = "otpauth://totp/taskgate:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=taskgate"
    )]
    pub otpauth_uri: String,
}

/// POST /users/me/mfa/totp
#[utoipa::path(post, path = "/users/me/mfa/totp", tag = "users", request_body = EnrolBody,
    responses((status = 201, description = "Pending until confirmed; asking again replaces a pending secret", body = TotpEnrolment),
        (status = 409, description = "A second factor is already enabled", body = ErrorBody),
        (status = 422, description = "Wrong current password (counted like a wrong password on a password change)", body = ErrorBody)))]
pub async fn enrol(
    state: web::Data<AppState>,
    user: Actor,
    body: JsonBody<EnrolBody>,
) -> Result<HttpResponse, ApiError> {
    if user.user.mfa_enabled() {
        return Err(ApiError::Conflict(ALREADY_ENABLED.into()));
    }
    let id = user.id();
    let password = body.into_inner().current_password;
    let (place, _) = login::check_current_password(&state, id, &password, &user.checking()).await?;
    drop(place);
    let secret = mfa::new_secret(&user.user.email)?;
    let bytes = secret.bytes.clone();
    let begun = db::run(&state.pool, move |conn| {
        db::mfa::begin_enrolment(conn, id, &bytes)
    })
    .await?;
    if !begun {
        return Err(ApiError::Conflict(ALREADY_ENABLED.into()));
    }
    Ok(HttpResponse::Created().json(TotpEnrolment {
        secret: secret.base32,
        otpauth_uri: secret.otpauth_uri,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The 6-digit code the authenticator app shows now.
    #[schema(example = "123456")]
    pub code: String,
}

/// Shown once: each code logs in once in place of a TOTP code.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    #[schema(example = json!(["abcd-efgh-ijkm-npqr"]))]
    pub recovery_codes: Vec<String>,
}

/// POST /users/me/mfa/totp/confirm
#[utoipa::path(post, path = "/users/me/mfa/totp/confirm", tag = "users", request_body = ConfirmBody,
    responses((status = 200, description = "Enabled; the recovery codes, shown this once", body = RecoveryCodes),
        (status = 409, description = "Nothing pending, or already enabled", body = ErrorBody),
        (status = 422, description = "Wrong code", body = ErrorBody)))]
pub async fn confirm(
    state: web::Data<AppState>,
    user: Actor,
    body: JsonBody<ConfirmBody>,
) -> Result<HttpResponse, ApiError> {
    let id = user.id();
    let row = db::run(&state.pool, move |conn| users::find(conn, id)).await?;
    let secret = match (&row.totp_enabled_at, row.totp_secret) {
        (Some(_), _) => return Err(ApiError::Conflict(ALREADY_ENABLED.into())),
        (None, None) => return Err(ApiError::Conflict(NONE_PENDING.into())),
        (None, Some(secret)) => secret,
    };
    let step = mfa::check(&secret, &body.code, mfa::now())
        .ok_or_else(|| ApiError::field("code", BAD_CODE))?;
    let (codes, digests) = mfa::new_recovery_codes();
    let ip = user.client().ip;
    let enabled = db::run(&state.pool, move |conn| {
        db::mfa::enable_recorded(conn, id, &secret, step, &digests, ip.as_deref())
    })
    .await?;
    if !enabled {
        // Replaced by a new enrolment, or confirmed by a racing request.
        return Err(ApiError::Conflict(NONE_PENDING.into()));
    }
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    #[schema(value_type = String)]
    pub current_password: SecretString,
    /// A code from the authenticator app, or an unused recovery code.
    pub code: String,
}

/// DELETE /users/me/mfa
#[utoipa::path(delete, path = "/users/me/mfa", tag = "users", request_body = DisableBody,
    responses((status = 204, description = "Removed: logins need the password alone"),
        (status = 409, description = "No second factor is enabled", body = ErrorBody),
        (status = 422, description = "Wrong current password or code (both counted against the account)", body = ErrorBody)))]
pub async fn disable(
    state: web::Data<AppState>,
    user: Actor,
    body: JsonBody<DisableBody>,
) -> Result<HttpResponse, ApiError> {
    if !user.user.mfa_enabled() {
        return Err(ApiError::Conflict(NONE_ENABLED.into()));
    }
    let body = body.into_inner();
    let client = user.checking();
    let id = user.id();
    let (place, row) =
        login::check_current_password(&state, id, &body.current_password, &client).await?;
    drop(place);
    let Some(secret) = row.totp() else {
        return Err(ApiError::Conflict(NONE_ENABLED.into()));
    };
    // One field for both kinds: the app's code first, then a recovery code.
    let proof = mfa::proof(secret, SecondFactor::Otp(&body.code))
        .or_else(|| mfa::proof(secret, SecondFactor::RecoveryCode(&body.code)));
    let ip = client.ip.clone();
    let removed = match proof {
        Some(proof) => {
            db::run(&state.pool, move |conn| {
                db::mfa::disable_recorded(conn, id, &proof, ip.as_deref())
            })
            .await?
        }
        None => false,
    };
    if !removed {
        let detail = serde_json::json!({ "route": "mfa_disable" });
        login::record_code_failure(&state, id, detail, &client).await?;
        return Err(ApiError::field("code", BAD_CODE));
    }
    Ok(HttpResponse::NoContent().finish())
}

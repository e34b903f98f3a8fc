//! `ApiError`: the only code that picks an HTTP status and writes an error body.
use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::domain::FieldErrors;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// Every answer that the database cannot serve now says this.
const UNAVAILABLE: &str = "Service temporarily unavailable";
const DATABASE_RETRY_AFTER_SECONDS: u64 = 1;

/// Every way a request can fail, in the terms of docs/API.md's error table.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// No `Authorization` header at all.
    #[error("not authenticated")]
    NotAuthenticated,
    /// A token that cannot be used; `expired` is the only reason told to clients.
    #[error("invalid token (expired: {expired})")]
    InvalidToken { expired: bool },
    /// Login failure (`/token`, `/login`) or an unusable refresh token.
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// A password-reset token that is unknown, used, expired or outlived by a
    /// password change: one answer for all (400, as RFC 6749 §5.2 would).
    #[error("invalid reset token")]
    InvalidResetToken,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("account disabled")]
    AccountDisabled,
    /// The right password for an account with a second factor, without a code.
    #[error("second factor required")]
    MfaRequired,
    /// A role in `auth.mfa_required_roles` without a second factor yet.
    #[error("second factor enrolment required")]
    MfaEnrollmentRequired,
    #[error("not found")]
    NotFound,
    /// A recovery route while no mail relay is configured.
    #[error("recovery disabled")]
    RecoveryDisabled,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("conflict: {0}")]
    Conflict(String),
    /// The user holds `limits.tasks_per_user` tasks already.
    #[error("task quota exceeded")]
    QuotaExceeded { limit: u32 },
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body did not arrive within `server.body_timeout_seconds`.
    #[error("request timeout")]
    RequestTimeout,
    /// A refusal the framework or a middleware made without a body of ours
    /// (a CORS preflight from an unlisted origin, say): the same status, our body.
    #[error("refused with {0}")]
    Refused(StatusCode),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("validation failed: {detail}")]
    Validation {
        detail: String,
        fields: BTreeMap<String, String>,
    },
    #[error("rate limited: {detail}")]
    RateLimited {
        retry_after_seconds: u64,
        detail: &'static str,
    },
    /// No capacity now (to hash a password, or a database queue waited out); try again shortly.
    #[error("overloaded: {detail}")]
    Overloaded {
        retry_after_seconds: u64,
        detail: &'static str,
    },
    /// The database cannot be reached; the cause is logged, never sent.
    #[error("database unavailable")]
    Unavailable(#[source] Source),
    /// A bug or an unexpected failure; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Source),
}

/// Every `error` code an answer can carry (docs/API.md's table), so that
/// `/openapi.json` states them as an enum and a client can match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    AccountDisabled,
    Conflict,
    Forbidden,
    InternalError,
    InvalidGrant,
    InvalidRequest,
    InvalidToken,
    MethodNotAllowed,
    MfaEnrollmentRequired,
    MfaRequired,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RecoveryDisabled,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    Unavailable,
    UnsupportedGrantType,
    UnsupportedMediaType,
    ValidationError,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `invalid_token`.
    pub error: ErrorCode,
    /// Human-readable message.
    pub detail: String,
    /// Per-field messages, on 422 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
    /// OAuth2's copy of `detail`, on login failures only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

pub const NOT_AUTHENTICATED: &str = "Not authenticated";
pub const TOKEN_EXPIRED: &str = "Token expired";
pub const BAD_CREDENTIALS_TOKEN: &str = "Could not validate credentials";
pub const INCORRECT_LOGIN: &str = "Incorrect email or password";

impl ApiError {
    /// A 422 about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Validation {
            detail: format!("{field}: {message}"),
            fields: BTreeMap::from([(field.to_owned(), message)]),
        }
    }

    /// A 422 about every field that has a message; `None` entries passed.
    pub fn invalid_fields<'a>(checks: impl IntoIterator<Item = (&'a str, Option<String>)>) -> Self {
        let fields: BTreeMap<String, String> = checks
            .into_iter()
            .filter_map(|(field, message)| message.map(|m| (field.to_owned(), m)))
            .collect();
        let detail = fields
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::Validation { detail, fields }
    }

    /// `Err` with every message given, or `Ok` when there is none.
    pub fn check_fields<'a>(
        checks: impl IntoIterator<Item = (&'a str, Option<String>)>,
    ) -> Result<(), ApiError> {
        match ApiError::invalid_fields(checks) {
            ApiError::Validation { fields, .. } if fields.is_empty() => Ok(()),
            error => Err(error),
        }
    }

    pub fn internal(source: impl Into<Source>) -> Self {
        ApiError::Internal(source.into())
    }

    /// The database could not serve this request within
    /// `database.timeout_seconds` (or too many wait for it already): the same
    /// answer as an unreachable one, without a log line per request.
    pub fn database_busy() -> Self {
        ApiError::Overloaded {
            retry_after_seconds: DATABASE_RETRY_AFTER_SECONDS,
            detail: UNAVAILABLE,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ApiError::UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
            ApiError::NotAuthenticated | ApiError::InvalidToken { .. } => ErrorCode::InvalidToken,
            ApiError::InvalidGrant(_) | ApiError::InvalidResetToken => ErrorCode::InvalidGrant,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::AccountDisabled => ErrorCode::AccountDisabled,
            ApiError::MfaRequired => ErrorCode::MfaRequired,
            ApiError::MfaEnrollmentRequired => ErrorCode::MfaEnrollmentRequired,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::RecoveryDisabled => ErrorCode::RecoveryDisabled,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            ApiError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ApiError::RequestTimeout => ErrorCode::RequestTimeout,
            ApiError::Refused(status) => match status.as_u16() {
                404 => ErrorCode::NotFound,
                405 => ErrorCode::MethodNotAllowed,
                408 => ErrorCode::RequestTimeout,
                413 => ErrorCode::PayloadTooLarge,
                415 => ErrorCode::UnsupportedMediaType,
                431 => ErrorCode::RequestHeaderFieldsTooLarge,
                500.. => ErrorCode::InternalError,
                _ => ErrorCode::InvalidRequest,
            },
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::Validation { .. } => ErrorCode::ValidationError,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Unavailable(_) | ApiError::Overloaded { .. } => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::InvalidRequest(d)
            | ApiError::Forbidden(d)
            | ApiError::Conflict(d)
            | ApiError::UnsupportedMediaType(d) => d.clone(),
            ApiError::Validation { detail, .. } => detail.clone(),
            ApiError::QuotaExceeded { limit } => {
                format!("You have {limit} tasks, the most one account may hold; delete some first")
            }
            ApiError::UnsupportedGrantType => {
                "grant_type must be \"password\" or \"refresh_token\"".into()
            }
            ApiError::NotAuthenticated => NOT_AUTHENTICATED.into(),
            ApiError::InvalidToken { expired: true } => TOKEN_EXPIRED.into(),
            ApiError::InvalidToken { expired: false } => BAD_CREDENTIALS_TOKEN.into(),
            ApiError::InvalidGrant(d) => (*d).into(),
            ApiError::InvalidResetToken => {
                "The reset link is invalid, used or expired; ask for a new one".into()
            }
            ApiError::AccountDisabled => "Account disabled".into(),
            ApiError::MfaRequired => {
                "This account has a second factor: send the password again with otp \
                 (the authenticator's code) or recovery_code"
                    .into()
            }
            ApiError::MfaEnrollmentRequired => {
                "Your role requires a second factor: enrol with POST /users/me/mfa/totp \
                 and confirm it with POST /users/me/mfa/totp/confirm"
                    .into()
            }
            ApiError::NotFound => "Not found".into(),
            ApiError::RecoveryDisabled => {
                "Password recovery is off: no mail relay is configured (mail.smtp_url); \
                 an admin can set a new password"
                    .into()
            }
            ApiError::MethodNotAllowed { .. } => "Method not allowed".into(),
            ApiError::PayloadTooLarge => "Request body is too large".into(),
            ApiError::RequestTimeout => {
                "The request body did not arrive in time; the connection is closed".into()
            }
            ApiError::Refused(status) => status
                .canonical_reason()
                .unwrap_or("Request refused")
                .into(),
            ApiError::RateLimited { detail, .. } | ApiError::Overloaded { detail, .. } => {
                (*detail).into()
            }
            ApiError::Unavailable(_) => UNAVAILABLE.into(),
            ApiError::Internal(_) => "Internal server error".into(),
        }
    }

    /// The RFC 6750 challenge, where one belongs.
    fn www_authenticate(&self) -> Option<String> {
        match self {
            ApiError::NotAuthenticated | ApiError::InvalidGrant(_) => Some("Bearer".into()),
            ApiError::InvalidToken { .. } => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                self.detail()
            )),
            ApiError::Forbidden(_) => Some("Bearer error=\"insufficient_scope\"".into()),
            _ => None,
        }
    }

    /// A bug is an error; a database that cannot serve now is a warning
    /// (it is the operator's to fix, and the client's to retry).
    fn log(&self) {
        let (level, source) = match self {
            ApiError::Unavailable(source) => (log::Level::Warn, source),
            ApiError::Internal(source) => (log::Level::Error, source),
            _ => return,
        };
        let mut chain = source.to_string();
        let mut cause = source.source();
        while let Some(c) = cause {
            chain.push_str(": ");
            chain.push_str(&c.to_string());
            cause = c.source();
        }
        log::log!(level, "{self}: {chain}");
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_)
            | ApiError::UnsupportedGrantType
            | ApiError::InvalidResetToken => StatusCode::BAD_REQUEST,
            ApiError::NotAuthenticated
            | ApiError::InvalidToken { .. }
            | ApiError::InvalidGrant(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::AccountDisabled
            | ApiError::MfaRequired
            | ApiError::MfaEnrollmentRequired => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::RecoveryDisabled => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::QuotaExceeded { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Refused(status) => *status,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let detail = self.detail();
        let body = ErrorBody {
            error: self.code(),
            fields: match self {
                ApiError::Validation { fields, .. } => Some(fields.clone()),
                _ => None,
            },
            error_description: matches!(self, ApiError::InvalidGrant(_)).then(|| detail.clone()),
            detail,
        };
        let mut response = HttpResponse::build(self.status_code());
        if let Some(challenge) = self.www_authenticate() {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        match self {
            ApiError::MethodNotAllowed { allow } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    response.insert_header((header::ALLOW, value));
                }
            }
            ApiError::RateLimited {
                retry_after_seconds,
                ..
            }
            | ApiError::Overloaded {
                retry_after_seconds,
                ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((
                    header::RETRY_AFTER,
                    DATABASE_RETRY_AFTER_SECONDS.to_string(),
                ));
            }
            // The rest of the body may still be in flight: the connection cannot be reused.
            ApiError::RequestTimeout => {
                response.force_close();
            }
            _ => {}
        }
        response.json(body)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => ApiError::NotFound,
            DbError::Conflict(detail) => ApiError::Conflict(detail.into()),
            DbError::QuotaExceeded { limit } => ApiError::QuotaExceeded { limit },
            DbError::Busy => ApiError::database_busy(),
            DbError::Unavailable(source) => ApiError::Unavailable(source),
            DbError::Internal(source) => ApiError::Internal(source),
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::invalid_fields(
            e.0.into_iter()
                .map(|(field, message)| (field, Some(message))),
        )
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(Box::new(e))
    }
}

/// Where in the input a serde error points: the JSON path of a body field
/// (`due_date`, `inner.a`, `items[0]`) or a query parameter's name, from
/// `serde_path_to_error`; `root` when the input as a whole is at fault.
/// A missing field is reported at its parent object, so the field's own name
/// (the one thing only serde's message holds) is appended.
fn input_at(path: &serde_path_to_error::Path, message: &str, root: &str) -> (String, String) {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let parent = path.to_string();
    let parent = (parent != ".").then_some(parent);
    let text = if missing.is_some() {
        "field required".to_owned()
    } else if message.starts_with("unknown field") {
        "unknown field".to_owned()
    } else {
        // serde's wording describes the client's input, not our internals;
        // only serde_json's position suffix is dropped.
        message
            .split(" at line ")
            .next()
            .unwrap_or(message)
            .to_owned()
    };
    let field = match (parent, missing) {
        (Some(p), Some(m)) => format!("{p}.{m}"),
        (None, Some(m)) => m.to_owned(),
        (Some(p), None) => p,
        (None, None) => root.to_owned(),
    };
    (field, text)
}

impl ApiError {
    /// A JSON body that did not parse into its type: bad syntax is 400, a
    /// wrong shape 422 naming the field at fault.
    pub fn from_json(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        if !e.inner().is_data() {
            return ApiError::InvalidRequest("Malformed JSON body".into());
        }
        let (field, text) = input_at(e.path(), &e.inner().to_string(), "body");
        ApiError::field(&field, text)
    }

    /// A query string that did not parse into its type: 422 naming the parameter.
    pub fn from_query(e: serde_path_to_error::Error<serde_urlencoded::de::Error>) -> Self {
        let (field, text) = input_at(e.path(), &e.inner().to_string(), "query");
        ApiError::field(&field, text)
    }
}

impl From<actix_web::error::PayloadError> for ApiError {
    fn from(e: actix_web::error::PayloadError) -> Self {
        match e {
            actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge,
            // Our body deadline (routes::body::body_deadline).
            actix_web::error::PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                ApiError::RequestTimeout
            }
            _ => ApiError::InvalidRequest("The request body could not be read".into()),
        }
    }
}

impl From<actix_web::error::UrlencodedError> for ApiError {
    fn from(e: actix_web::error::UrlencodedError) -> Self {
        use actix_web::error::UrlencodedError as E;
        match e {
            E::Overflow { .. } => ApiError::PayloadTooLarge,
            E::ContentType => ApiError::UnsupportedMediaType(
                "Send form data (application/x-www-form-urlencoded or multipart/form-data)".into(),
            ),
            E::Payload(p) => p.into(),
            _ => ApiError::InvalidRequest("Malformed form data".into()),
        }
    }
}

impl ApiError {
    /// A path segment that does not parse (`/tasks/abc`): 422 naming the
    /// segment (`segment` is its name in the route, e.g. `id`).
    pub fn from_path(e: actix_web::error::PathError, segment: Option<&str>) -> Self {
        match e {
            actix_web::error::PathError::Deserialize(err) => {
                ApiError::field(segment.unwrap_or("path"), err.to_string())
            }
            _ => ApiError::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_error(json: &str) -> ApiError {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[expect(dead_code, reason = "only parsed: the test reads the error")]
        struct Inner {
            a: i64,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[expect(dead_code, reason = "only parsed: the test reads the error")]
        struct Body {
            email: String,
            inner: Option<Inner>,
        }
        let mut de = serde_json::Deserializer::from_str(json);
        ApiError::from_json(serde_path_to_error::deserialize::<_, Body>(&mut de).unwrap_err())
    }

    fn fields(e: ApiError) -> Vec<(String, String)> {
        match e {
            ApiError::Validation { fields, .. } => fields.into_iter().collect(),
            other => panic!("not a 422: {other:?}"),
        }
    }

    #[test]
    fn serde_errors_name_the_input_at_fault_by_its_path() {
        let one = |field: &str, text: &str| vec![(field.to_owned(), text.to_owned())];
        assert_eq!(
            fields(path_error(r#"{"email": "a", "role": "admin"}"#)),
            one("role", "unknown field")
        );
        assert_eq!(fields(path_error("{}")), one("email", "field required"));
        assert_eq!(
            fields(path_error(r#"{"email": 5}"#)),
            one("email", "invalid type: integer `5`, expected a string")
        );
        assert_eq!(
            fields(path_error(r#"{"email": "a", "inner": {"a": "x"}}"#)),
            one("inner.a", "invalid type: string \"x\", expected i64")
        );
        assert_eq!(
            fields(path_error(r#"{"email": "a", "inner": {}}"#)),
            one("inner.a", "field required")
        );
        assert_eq!(
            fields(path_error(r#"{"email": "a", "inner": {"b": 1}}"#)),
            one("inner.b", "unknown field")
        );
        assert!(matches!(
            path_error(r#"{"email": "#),
            ApiError::InvalidRequest(_)
        ));
    }
}

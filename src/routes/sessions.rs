//! The caller's logins: list and end them, log out here or everywhere.
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::actor::Actor;
use super::body::{read_all, BodyLimit};
use super::json::{parse_json, rfc3339, Object};
use super::paging::{list_response, PageQuery};
use super::query::QueryParams;
use crate::auth::jwt::TokenType;
use crate::auth::AppState;
use crate::db::sessions::{self, Session};
use crate::db::{self};
use crate::error::{ApiError, ErrorBody};

/// A live session as an admin sees it (`GET /admin/users/{id}/sessions`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UserSession)]
pub struct SessionInfo {
    pub id: Uuid,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// The last login or refresh (reads never write).
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_used_at: DateTime<Utc>,
    /// The session's absolute end.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl From<Session> for SessionInfo {
    fn from(s: Session) -> SessionInfo {
        SessionInfo {
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

/// A live session of the caller's (`GET /users/me/sessions`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    #[serde(flatten)]
    pub info: SessionInfo,
    /// True for the session of the token making this request.
    pub current: bool,
}

/// GET /users/me/sessions
#[utoipa::path(get, path = "/users/me/sessions", tag = "sessions", params(PageQuery),
    responses((status = 200, description = "Live sessions, oldest first; X-Total-Count", body = [SessionView]), (status = 422, description = "Bad paging, or an unknown parameter", body = ErrorBody)))]
pub async fn list_sessions(
    state: web::Data<AppState>,
    user: Actor,
    query: QueryParams<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.into_inner().page()?;
    let user_id = user.id();
    let (rows, total) = db::run(&state.pool, move |conn| {
        sessions::list_live(conn, user_id, page.limit, page.offset)
    })
    .await?;
    let views: Vec<SessionView> = rows
        .into_iter()
        .map(|s| SessionView {
            current: s.id == user.session_id,
            info: s.into(),
        })
        .collect();
    Ok(list_response(&views, total))
}

/// DELETE /users/me/sessions/{id}
#[utoipa::path(delete, path = "/users/me/sessions/{id}", tag = "sessions", params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204, description = "Ended"), (status = 404, description = "Not one of the caller's live sessions", body = ErrorBody)))]
pub async fn delete_session(
    state: web::Data<AppState>,
    user: Actor,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Not a UUID: no such session, like any other id that is not the caller's.
    let sid = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let user_id = user.id();
    let ip = user.client().ip;
    db::run(&state.pool, move |conn| {
        sessions::end_one_recorded(conn, user_id, sid, ip.as_deref())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutBody {
    /// Also ends the session of this refresh token, if it is the caller's.
    pub refresh_token: Option<String>,
}

/// POST /logout
#[utoipa::path(post, path = "/logout", tag = "sessions", request_body(content = Option<LogoutBody>, description = "Optional"),
    responses((status = 204, description = "The caller's session is revoked")))]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: Actor,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_all(&req, payload.into_inner(), BodyLimit::of(&req)).await?;
    // The body is optional: an empty one is fine, a malformed one is not.
    let body: Option<LogoutBody> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        // `null` is the same as no body, as the schema says.
        parse_json::<Option<Object<LogoutBody>>>(&body)?.map(|o| o.0)
    };
    let mut doomed = vec![user.session_id];
    if let Some(token) = body.and_then(|b| b.refresh_token) {
        // Any refresh token of the caller's may name a session to end too; others are ignored.
        if let Ok(claims) = state.keys.decode(&token, TokenType::Refresh) {
            if claims.user_id() == Some(user.id()) {
                doomed.push(claims.sid);
            }
        }
    }
    let user_id = user.id();
    let ip = user.client().ip;
    db::run(&state.pool, move |conn| {
        sessions::log_out_recorded(conn, user_id, &doomed, ip.as_deref())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /logout/all
#[utoipa::path(post, path = "/logout/all", tag = "sessions", responses((status = 204, description = "Every session of the caller is revoked")))]
pub async fn logout_all(state: web::Data<AppState>, user: Actor) -> Result<HttpResponse, ApiError> {
    let user_id = user.id();
    let ip = user.client().ip;
    db::run(&state.pool, move |conn| {
        sessions::log_out_all_recorded(conn, user_id, ip.as_deref())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

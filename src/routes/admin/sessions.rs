//! A user's sessions as an admin sees them: list them, end one.
use actix_web::{web, HttpResponse};
use uuid::Uuid;

use crate::auth::AppState;
use crate::db::{self, sessions, users};
use crate::error::{ApiError, ErrorBody};
use crate::routes::actor::Actor;
use crate::routes::paging::{list_response, PageQuery};
use crate::routes::query::QueryParams;
use crate::routes::sessions::SessionInfo;

/// GET /admin/users/{id}/sessions
#[utoipa::path(get, path = "/admin/users/{id}/sessions", tag = "admin", params(("id" = i64, Path), PageQuery),
    responses((status = 200, description = "The user's live sessions, oldest first; X-Total-Count", body = [SessionInfo]),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "Bad paging, or an unknown parameter", body = ErrorBody)))]
pub async fn list_user_sessions(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: QueryParams<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, page) = (id.into_inner(), query.into_inner().page()?);
    let (rows, total) = db::run(&state.pool, move |conn| {
        users::find(conn, id)?;
        sessions::list_live(conn, id, page.limit, page.offset)
    })
    .await?;
    let items: Vec<SessionInfo> = rows.into_iter().map(SessionInfo::from).collect();
    Ok(list_response(&items, total))
}

/// DELETE /admin/users/{id}/sessions/{sid}
#[utoipa::path(delete, path = "/admin/users/{id}/sessions/{sid}", tag = "admin", params(("id" = i64, Path), ("sid" = Uuid, Path, description = "Session id")),
    responses((status = 204, description = "Ended: its tokens are refused from the next request on, on every instance"),
        (status = 404, description = "Not a live session of that user", body = ErrorBody)))]
pub async fn revoke_user_session(
    state: web::Data<AppState>,
    admin: Actor,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, sid) = path.into_inner();
    // Not a UUID: no such session, like any other id that is not the user's.
    let sid = Uuid::parse_str(&sid).map_err(|_| ApiError::NotFound)?;
    let by = admin.audit();
    db::run(&state.pool, move |conn| {
        sessions::revoke_by_admin_recorded(conn, &by, id, sid)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

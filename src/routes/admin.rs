//! The admin API: users (list, create, read, change, delete, revoke
//! sessions), everyone's tasks, the audit log, and the dashboard.
use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::json::{double_option, rfc3339, JsonBody};
use super::paging::{list_response, Page};
use super::query::QueryParams;
use super::tasks::TaskView;
use super::users::{NewAccount, UserView};
use super::{client_ip, ErrorResponses};
use crate::auth::CurrentUser;
use crate::db::audit::{self, AuditEvent, AuditKind, NewEvent};
use crate::db::users::{self, NewUser, User, UserChanges};
use crate::db::{self, reports, sessions, tasks};
use crate::domain::{FullName, Role};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

const LAST_ADMIN: &str = "This is the last active admin: promote or enable another admin first";

/// An event by `admin` about `subject`.
fn by_admin<'a>(
    kind: AuditKind,
    admin: &CurrentUser,
    subject: i64,
    ip: Option<&'a str>,
    detail: Value,
) -> NewEvent<'a> {
    NewEvent {
        kind,
        actor_id: Some(admin.user.id),
        subject_id: Some(subject),
        ip,
        detail,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Welcome {
    #[schema(example = "Welcome admin root@example.com")]
    pub message: String,
}

/// GET /admin
#[utoipa::path(get, path = "/admin", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Welcome), ErrorResponses, (status = 403, body = ErrorBody)))]
pub async fn welcome(admin: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(Welcome {
        message: format!("Welcome admin {}", admin.user.email),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardUsers {
    pub total: i64,
    /// Counts for `user`, `manager` and `admin`.
    pub by_role: BTreeMap<String, i64>,
    pub disabled: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardTasks {
    pub total: i64,
    pub completed: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardSessions {
    pub active: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardView {
    pub users: DashboardUsers,
    pub tasks: DashboardTasks,
    pub sessions: DashboardSessions,
}

/// GET /admin/dashboard
#[utoipa::path(get, path = "/admin/dashboard", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = DashboardView), ErrorResponses, (status = 403, body = ErrorBody)))]
pub async fn dashboard(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let d = db::run(&state.pool, reports::dashboard).await?;
    Ok(HttpResponse::Ok().json(DashboardView {
        users: DashboardUsers {
            total: d.users_total,
            by_role: BTreeMap::from([
                ("user".to_owned(), d.users_user),
                ("manager".to_owned(), d.users_manager),
                ("admin".to_owned(), d.users_admin),
            ]),
            disabled: d.users_disabled,
        },
        tasks: DashboardTasks {
            total: d.tasks_total,
            completed: d.tasks_completed,
        },
        sessions: DashboardSessions {
            active: d.sessions_active,
        },
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users with this role.
    pub role: Option<Role>,
    /// A part of the email or the full name (case-insensitive).
    #[param(max_length = 254, pattern = "^[^\\x00]*$")]
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

/// GET /admin/users
#[utoipa::path(get, path = "/admin/users", tag = "admin", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, description = "Users by id; X-Total-Count", body = [UserView]), ErrorResponses,
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_users(
    state: web::Data<AppState>,
    query: QueryParams<UserQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::parse(query.limit, query.offset)?;
    let q = query.q.filter(|q| !q.trim().is_empty());
    if q.as_deref()
        .is_some_and(|q| q.contains('\0') || q.chars().count() > 254)
    {
        return Err(ApiError::field(
            "q",
            "must be at most 254 characters, without NUL",
        ));
    }
    let (rows, total) = db::run(&state.pool, move |conn| {
        users::list(conn, query.role, q.as_deref(), page.limit, page.offset)
    })
    .await?;
    let views = rows
        .iter()
        .map(UserView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list_response(&views, total))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 8, max_length = 72)]
    pub password: String,
    #[schema(max_length = 200, pattern = "^[^\\x00]*$")]
    pub full_name: Option<String>,
    /// Default `user`.
    pub role: Option<Role>,
}

/// POST /admin/users
#[utoipa::path(post, path = "/admin/users", tag = "admin", security(("bearer" = [])), request_body = CreateUserBody,
    responses((status = 201, body = UserView), ErrorResponses, (status = 403, body = ErrorBody),
        (status = 409, description = "Email already registered", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: CurrentUser,
    body: JsonBody<CreateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let role = body.role.unwrap_or(Role::User);
    let NewAccount {
        email,
        password,
        full_name,
    } = NewAccount::parse(&body.email, body.password, body.full_name)?;
    let hash = state.hasher.hash(&password).await?;
    let ip = client_ip(&req);
    let user = db::run(&state.pool, move |conn| {
        let new = NewUser::new(&email, &hash, full_name.as_deref(), role);
        users::insert_recorded(conn, &new, |user| {
            let detail = json!({ "role": role.as_str() });
            by_admin(
                AuditKind::UserCreated,
                &admin,
                user.id,
                ip.as_deref(),
                detail,
            )
        })
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/admin/users/{}", user.id)))
        .json(UserView::from_row(&user)?))
}

/// GET /admin/users/{id}
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = UserView), ErrorResponses, (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let user = db::run(&state.pool, move |conn| users::find(conn, id)).await?;
    Ok(HttpResponse::Ok().json(UserView::from_row(&user)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    pub role: Option<Role>,
    /// Disabling also ends every session of the user.
    pub disabled: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = "^[^\\x00]*$")]
    pub full_name: Option<Option<String>>,
}

/// True when applying these changes to `user` would leave it no longer an active admin.
fn removes_an_admin(user: &User, role: Option<Role>, disabled: Option<bool>) -> bool {
    let active_admin = user.role == Role::Admin.as_str() && !user.disabled;
    active_admin && (role.is_some_and(|r| r != Role::Admin) || disabled == Some(true))
}

/// PATCH /admin/users/{id}
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = UpdateUserBody,
    responses((status = 200, body = UserView), ErrorResponses, (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The last active admin", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: CurrentUser,
    id: web::Path<i64>,
    body: JsonBody<UpdateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let full_name = body
        .full_name
        .map(FullName::parse)
        .transpose()
        .map_err(|e| ApiError::field("full_name", e))?;
    let (id, ip) = (id.into_inner(), client_ip(&req));
    let updated = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            users::lock_admin_changes(conn)?;
            let before = users::find(conn, id)?;
            if removes_an_admin(&before, body.role, body.disabled)
                && users::count_active_admins(conn)? <= 1
            {
                return Err(ApiError::Conflict(LAST_ADMIN.into()));
            }
            let changes = UserChanges {
                role: body.role.map(Role::as_str),
                disabled: body.disabled,
                full_name: full_name.clone(),
            };
            let after = users::update(conn, id, &changes)?;
            let revoked = if body.disabled == Some(true) {
                sessions::revoke_all(conn, id)?
            } else {
                0
            };
            let mut detail = serde_json::Map::new();
            if before.role != after.role {
                detail.insert(
                    "role".into(),
                    json!({ "from": before.role, "to": after.role }),
                );
            }
            if before.disabled != after.disabled {
                detail.insert(
                    "disabled".into(),
                    json!({ "from": before.disabled, "to": after.disabled }),
                );
            }
            if before.full_name != after.full_name {
                detail.insert(
                    "full_name".into(),
                    json!({ "from": before.full_name, "to": after.full_name }),
                );
            }
            if revoked > 0 {
                detail.insert("sessions_revoked".into(), json!(revoked));
            }
            audit::insert(
                conn,
                by_admin(
                    AuditKind::UserUpdated,
                    &admin,
                    id,
                    ip.as_deref(),
                    Value::Object(detail),
                ),
            )?;
            Ok(after)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from_row(&updated)?))
}

/// DELETE /admin/users/{id}
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted, with their tasks and sessions"), ErrorResponses,
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The last active admin", body = ErrorBody)))]
pub async fn delete_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, ip) = (id.into_inner(), client_ip(&req));
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            users::lock_admin_changes(conn)?;
            let doomed = users::find(conn, id)?;
            if removes_an_admin(&doomed, None, Some(true)) && users::count_active_admins(conn)? <= 1
            {
                return Err(ApiError::Conflict(LAST_ADMIN.into()));
            }
            users::delete(conn, id)?;
            let detail = json!({ "email": doomed.email, "role": doomed.role });
            audit::insert(
                conn,
                by_admin(AuditKind::UserDeleted, &admin, id, ip.as_deref(), detail),
            )
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /admin/users/{id}/revoke-sessions
#[utoipa::path(post, path = "/admin/users/{id}/revoke-sessions", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Every session of the user is revoked"), ErrorResponses,
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, ip) = (id.into_inner(), client_ip(&req));
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            users::find(conn, id)?;
            let revoked = sessions::revoke_all(conn, id)?;
            let detail = json!({ "sessions": revoked });
            audit::insert(
                conn,
                by_admin(
                    AuditKind::SessionsRevoked,
                    &admin,
                    id,
                    ip.as_deref(),
                    detail,
                ),
            )
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminTaskQuery {
    pub owner_id: Option<i64>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

/// GET /admin/tasks
#[utoipa::path(get, path = "/admin/tasks", tag = "admin", security(("bearer" = [])), params(AdminTaskQuery),
    responses((status = 200, description = "Everyone's tasks by id; X-Total-Count", body = [TaskView]), ErrorResponses,
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_tasks(
    state: web::Data<AppState>,
    query: QueryParams<AdminTaskQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::parse(query.limit, query.offset)?;
    let (rows, total) = db::run(&state.pool, move |conn| {
        tasks::list(conn, query.owner_id, None, page.limit, page.offset)
    })
    .await?;
    let views: Vec<TaskView> = rows.into_iter().map(TaskView::from).collect();
    Ok(list_response(&views, total))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    pub kind: String,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        AuditEventView {
            id: e.id,
            kind: e.kind,
            actor_id: e.actor_id,
            subject_id: e.subject_id,
            ip: e.ip,
            detail: e.detail,
            at: e.at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events of this kind.
    pub kind: Option<AuditKind>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

/// GET /admin/audit
#[utoipa::path(get, path = "/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, description = "Events, newest first; X-Total-Count", body = [AuditEventView]), ErrorResponses,
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_audit(
    state: web::Data<AppState>,
    query: QueryParams<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::parse(query.limit, query.offset)?;
    let kind = query.kind;
    let (rows, total) = db::run(&state.pool, move |conn| {
        audit::list(conn, kind, page.limit, page.offset)
    })
    .await?;
    let views: Vec<AuditEventView> = rows.into_iter().map(AuditEventView::from).collect();
    Ok(list_response(&views, total))
}

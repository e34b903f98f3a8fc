//! `/admin/users`: list, create, read, change, delete, revoke sessions, send a reset link.
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::password::new_password;
use crate::auth::recovery::{self, Requester};
use crate::auth::AppState;
use crate::db::admin::{self, AdminChanges};
use crate::db::users::{self, NewUser};
use crate::db::{self, account};
use crate::domain::{FullName, NewAccount, Role};
use crate::error::{ApiError, ErrorBody};
use crate::routes::actor::Actor;
use crate::routes::doc;
use crate::routes::json::{double_option, JsonBody};
use crate::routes::paging::{list_response, Page};
use crate::routes::query::QueryParams;
use crate::routes::recovery::Accepted;
use crate::routes::views::UserView;

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
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(UserQuery),
    responses((status = 200, description = "Users by id; X-Total-Count", body = [UserView]), (status = 422, body = ErrorBody)))]
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
        .map(UserView::from_profile)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list_response(&views, total))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(value_type = String, min_length = 8, max_length = 72)]
    pub password: SecretString,
    #[schema(schema_with = doc::full_name)]
    pub full_name: Option<String>,
    /// Default `user`.
    pub role: Option<Role>,
}

/// POST /admin/users
#[utoipa::path(post, path = "/admin/users", tag = "admin", request_body = CreateUserBody,
    responses((status = 201, body = UserView,
        headers(("Location" = String, description = "The path of the new user"))), (status = 409, description = "Email already registered", body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "This client's line of password hashes is full; see Retry-After", body = ErrorBody)))]
pub async fn create_user(
    state: web::Data<AppState>,
    admin: Actor,
    body: JsonBody<CreateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let role = body.role.unwrap_or(Role::User);
    let NewAccount {
        email,
        password,
        full_name,
    } = NewAccount::parse(&body.email, body.password, body.full_name)?;
    let hash = state.hasher.hash_for(admin.client().key, &password).await?;
    let by = admin.audit();
    let user = db::run(&state.pool, move |conn| {
        let new = NewUser::new(&email, &hash, full_name.as_deref(), role);
        admin::create_user_recorded(conn, &by, &new, role)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/admin/users/{}", user.id)))
        .json(UserView::from_row(&user)?))
}

/// GET /admin/users/{id}
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
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
    #[schema(schema_with = doc::full_name)]
    pub full_name: Option<Option<String>>,
}

/// PATCH /admin/users/{id}
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", params(("id" = i64, Path)),
    request_body = UpdateUserBody,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, description = "The last active admin", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_user(
    state: web::Data<AppState>,
    admin: Actor,
    id: web::Path<i64>,
    body: JsonBody<UpdateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let full_name = body
        .full_name
        .map(FullName::parse)
        .transpose()
        .map_err(|e| ApiError::field("full_name", e))?;
    let (id, by) = (id.into_inner(), admin.audit());
    let changes = AdminChanges {
        role: body.role,
        disabled: body.disabled,
        full_name,
    };
    let updated = db::run(&state.pool, move |conn| {
        admin::update_user_recorded(conn, &by, id, changes)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserView::from_row(&updated)?))
}

/// DELETE /admin/users/{id}
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted, with their tasks and sessions"), (status = 404, body = ErrorBody),
        (status = 409, description = "The last active admin", body = ErrorBody)))]
pub async fn delete_user(
    state: web::Data<AppState>,
    admin: Actor,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, by) = (id.into_inner(), admin.audit());
    db::run(&state.pool, move |conn| {
        admin::delete_user_recorded(conn, &by, id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /admin/users/{id}/revoke-sessions
#[utoipa::path(post, path = "/admin/users/{id}/revoke-sessions", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204, description = "Every session of the user is revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke_sessions(
    state: web::Data<AppState>,
    admin: Actor,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, by) = (id.into_inner(), admin.audit());
    db::run(&state.pool, move |conn| {
        admin::revoke_sessions_recorded(conn, &by, id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// DELETE /admin/users/{id}/mfa: removes the user's second factor (a lost
/// phone), pending or enabled, and ends every session of theirs; audited
/// `mfa_reset`.
#[utoipa::path(delete, path = "/admin/users/{id}/mfa", tag = "admin", params(("id" = i64, Path)),
    responses((status = 204, description = "No second factor left; every session of the user is revoked"), (status = 404, body = ErrorBody)))]
pub async fn reset_mfa(
    state: web::Data<AppState>,
    admin: Actor,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, by) = (id.into_inner(), admin.audit());
    db::run(&state.pool, move |conn| {
        db::mfa::reset_recorded(conn, &by, id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordBody {
    /// The same rules as at signup.
    #[schema(value_type = String, min_length = 8, max_length = 72)]
    pub new_password: SecretString,
}

/// POST /admin/users/{id}/password: sets the user's password (no mail
/// needed): every session of theirs ends, the lockout is lifted, audited
/// `password_set`.
#[utoipa::path(post, path = "/admin/users/{id}/password", tag = "admin", params(("id" = i64, Path)), request_body = SetPasswordBody,
    responses((status = 204, description = "Set; every session of the user is revoked"), (status = 404, body = ErrorBody),
        (status = 422, description = "The password breaks a rule", body = ErrorBody)))]
pub async fn set_password(
    state: web::Data<AppState>,
    admin: Actor,
    id: web::Path<i64>,
    body: JsonBody<SetPasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let password = new_password(body.into_inner().new_password)?;
    let hash = state.hasher.hash_for(admin.client().key, &password).await?;
    let by = admin.audit();
    db::run(&state.pool, move |conn| {
        account::set_password_recorded(conn, &by, id, &hash)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /admin/users/{id}/password-reset: emails the user the same reset
/// link as `POST /password/forgot` would (the admin never sees it).
#[utoipa::path(post, path = "/admin/users/{id}/password-reset", tag = "admin", params(("id" = i64, Path)),
    responses((status = 202, description = "Queued, or (detail says so) already sent within recovery.min_interval_seconds", body = crate::routes::recovery::Accepted),
        (status = 404, description = "No such user, or recovery is off", body = ErrorBody),
        (status = 409, description = "The account is disabled", body = ErrorBody)))]
pub async fn send_password_reset(
    state: web::Data<AppState>,
    admin: Actor,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    crate::routes::recovery::enabled(&state)?;
    let id = id.into_inner();
    let user = db::run(&state.pool, move |conn| users::find(conn, id)).await?;
    if user.disabled {
        return Err(ApiError::Conflict(
            "The account is disabled: enable it before sending a reset link".into(),
        ));
    }
    let ip = admin.client().ip;
    let requester = Requester::Admin {
        id: admin.id(),
        ip: ip.as_deref(),
    };
    let queued = recovery::request(&state, user.id, &user.email, requester).await?;
    Ok(HttpResponse::Accepted().json(Accepted::new(if queued {
        "A reset link is on its way to the user"
    } else {
        "A reset link was sent less than recovery.min_interval_seconds ago; none was sent now"
    })))
}

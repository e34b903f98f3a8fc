//! The route table: every route, under the guards that protect it, on one screen.
pub mod actor;
pub mod admin;
pub mod body;
pub mod client;
pub mod doc;
pub mod endpoint;
pub mod form;
pub mod health;
pub mod json;
pub mod metrics;
pub mod mfa;
pub mod openapi;
pub mod pages;
pub mod paging;
pub mod private;
pub mod query;
pub mod recovery;
pub mod refusals;
pub mod reports;
pub mod request_log;
pub mod sessions;
pub mod tasks;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod views;
pub mod well_known;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Resource, Route};

use crate::auth::require_role::Allowed;
use crate::error::ApiError;
use endpoint::{endpoint, Area, Group};

/// Every route: its handler (whose `#[utoipa::path]` gives its path, method
/// and description) under the guards that protect it. `configure` serves
/// this list and `openapi::Document` describes it; nothing else lists routes.
pub fn table() -> Vec<Area> {
    vec![
        Area::open([
            Group::new([endpoint!(health::healthz), endpoint!(openapi::serve)]).without_database(),
            Group::new([
                endpoint!(health::readyz),
                endpoint!(well_known::jwks),
                endpoint!(well_known::metadata),
                endpoint!(pages::reset_script),
                endpoint!(pages::reset_style),
                endpoint!(pages::console_redirect),
                endpoint!(pages::console_page),
                endpoint!(pages::console_script),
                endpoint!(pages::console_style),
            ]),
            Group::new([endpoint!(tokens::refresh), endpoint!(recovery::forgot)]).throttled(),
            // The reset page shares its POST's resource, so a page load counts against the throttle too.
            Group::new([
                endpoint!(users::signup),
                endpoint!(tokens::token),
                endpoint!(tokens::token).alias("/login", "login"),
                endpoint!(pages::reset_page),
                endpoint!(recovery::reset),
            ])
            .hashing(),
        ]),
        // Before the `/users/me` scope, which would otherwise take these paths.
        Area::enrolling([
            Group::new([
                endpoint!(sessions::logout),
                endpoint!(sessions::logout_all),
                endpoint!(users::me),
                endpoint!(users::me).alias("/me", "me_alias"),
                endpoint!(users::update_me),
                endpoint!(mfa::confirm),
            ]),
            Group::new([endpoint!(mfa::enrol)]).hashing(),
        ]),
        Area::scope(
            "/users/me",
            Allowed::Any,
            [
                Group::new([endpoint!(mfa::disable), endpoint!(users::change_password)]).hashing(),
                Group::new([
                    endpoint!(sessions::list_sessions),
                    endpoint!(sessions::delete_session),
                ]),
            ],
        ),
        Area::scope(
            "/tasks",
            Allowed::Any,
            [Group::new([
                endpoint!(tasks::list_tasks),
                endpoint!(tasks::create_task),
                endpoint!(tasks::get_task),
                endpoint!(tasks::replace_task),
                endpoint!(tasks::update_task),
                endpoint!(tasks::delete_task),
            ])],
        )
        .limiting_writes(),
        Area::scope(
            "/reports",
            Allowed::AdminOrManager,
            [Group::new([endpoint!(reports::get_reports)])],
        ),
        Area::scope(
            "/admin",
            Allowed::Admin,
            [Group::new([
                endpoint!(admin::welcome),
                endpoint!(admin::dashboard),
                endpoint!(admin::users::list_users),
                endpoint!(admin::users::create_user),
                endpoint!(admin::users::get_user),
                endpoint!(admin::users::update_user),
                endpoint!(admin::users::delete_user),
                endpoint!(admin::users::revoke_sessions),
                endpoint!(admin::sessions::list_user_sessions),
                endpoint!(admin::sessions::revoke_user_session),
                endpoint!(admin::users::set_password),
                endpoint!(admin::users::reset_mfa),
                endpoint!(admin::users::send_password_reset),
                endpoint!(admin::tasks::list_tasks),
                endpoint!(admin::audit::list_audit),
            ])],
        ),
    ]
}

/// Mounts every route of the table.
pub fn configure(cfg: &mut web::ServiceConfig) {
    endpoint::mount(cfg, table());
}

/// The body limit our extractors apply, and a path-segment error handler
/// that names the segment, so that malformed input gets docs/API.md's 400/413/415/422
/// bodies instead of actix's plain-text defaults.
pub fn configure_extractors(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(body::BodyLimit(body_limit))
        .app_data(web::PathConfig::default().error_handler(|e, req| {
            // Only the first dynamic segment can fail: any later one (a session id) is a string.
            let segment = req.match_info().iter().next().map(|(name, _)| name);
            ApiError::from_path(e, segment).into()
        }));
}

/// A resource whose other methods answer 405 with an `Allow` header.
pub fn resource(path: &str, routes: Vec<(Method, Route)>) -> Resource {
    let allow = routes
        .iter()
        .map(|(m, _)| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    routes
        .into_iter()
        .fold(web::resource(path), |r, (method, route)| {
            r.route(route.method(method))
        })
        .default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<(), _>(ApiError::MethodNotAllowed { allow }) }
        }))
}

/// Unknown paths: JSON 404 like every other error.
pub async fn not_found(_req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

//! The route table: every path, its methods and handlers, on one screen.
pub mod actor;
pub mod admin;
pub mod body;
pub mod client;
pub mod doc;
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
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse, Resource, Route};
use actix_web_httpauth::middleware::HttpAuthentication;

use crate::auth::bearer;
use crate::auth::require_role;
use crate::error::ApiError;

/// Mounts every route. Area-wide policy (authentication, roles, throttling)
/// wraps resources and scopes here, so a route added to an area is covered.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use Method as M;
    let bearer = || HttpAuthentication::with_fn(bearer::validate);
    // What a user who must still enrol a second factor may reach (docs/API.md).
    let enrolling = || HttpAuthentication::with_fn(bearer::validate_enrolling);
    let throttle = || from_fn(throttle::throttle_auth);
    let hashing = || from_fn(throttle::refuse_when_lines_are_full);
    let throttled = |path, route: Route| resource(path, [(M::POST, route)]).wrap(throttle());
    // `.wrap` order: the last one runs first, so a full hashing line is answered before the throttle's round trip.
    let hashing_throttled = |path, route| throttled(path, route).wrap(hashing());
    cfg.service(resource("/healthz", [(M::GET, web::to(health::healthz))]))
        .service(resource("/readyz", [(M::GET, web::to(health::readyz))]))
        .service(resource(
            "/openapi.json",
            [(M::GET, web::to(openapi::serve))],
        ))
        .service(resource(
            "/.well-known/jwks.json",
            [(M::GET, web::to(well_known::jwks))],
        ))
        .service(resource(
            "/.well-known/oauth-authorization-server",
            [(M::GET, web::to(well_known::metadata))],
        ))
        .service(hashing_throttled("/users/signup", web::to(users::signup)))
        .service(hashing_throttled("/token", web::to(tokens::token)))
        .service(hashing_throttled("/login", web::to(tokens::token)))
        .service(throttled("/refresh", web::to(tokens::refresh)))
        .service(throttled("/password/forgot", web::to(recovery::forgot)))
        // The page and its POST share a resource, so the page load counts against the throttle too.
        .service(
            resource(
                "/password/reset",
                [
                    (M::GET, web::to(pages::reset_page)),
                    (M::POST, web::to(recovery::reset)),
                ],
            )
            .wrap(throttle())
            .wrap(hashing()),
        )
        .service(resource(
            "/password/reset.js",
            [(M::GET, web::to(pages::reset_script))],
        ))
        .service(resource(
            "/password/reset.css",
            [(M::GET, web::to(pages::reset_style))],
        ))
        .service(resource(
            "/console",
            [(M::GET, web::to(pages::console_redirect))],
        ))
        .service(resource(
            "/console/",
            [(M::GET, web::to(pages::console_page))],
        ))
        .service(resource(
            "/console/app.js",
            [(M::GET, web::to(pages::console_script))],
        ))
        .service(resource(
            "/console/style.css",
            [(M::GET, web::to(pages::console_style))],
        ))
        .service(resource("/logout", [(M::POST, web::to(sessions::logout))]).wrap(enrolling()))
        .service(
            resource("/logout/all", [(M::POST, web::to(sessions::logout_all))]).wrap(enrolling()),
        )
        .service(resource("/me", [(M::GET, web::to(users::me))]).wrap(enrolling()))
        .service(
            resource(
                "/users/me",
                [
                    (M::GET, web::to(users::me)),
                    (M::PATCH, web::to(users::update_me)),
                ],
            )
            .wrap(enrolling()),
        )
        .service(
            resource("/users/me/mfa/totp", [(M::POST, web::to(mfa::enrol))])
                .wrap(throttle())
                .wrap(hashing())
                .wrap(enrolling()),
        )
        .service(
            resource(
                "/users/me/mfa/totp/confirm",
                [(M::POST, web::to(mfa::confirm))],
            )
            .wrap(enrolling()),
        )
        .service(
            web::scope("/users/me")
                .wrap(bearer())
                .service(
                    resource("/mfa", [(M::DELETE, web::to(mfa::disable))])
                        .wrap(throttle())
                        .wrap(hashing()),
                )
                .service(
                    resource("/password", [(M::POST, web::to(users::change_password))])
                        .wrap(throttle())
                        .wrap(hashing()),
                )
                .service(resource(
                    "/sessions",
                    [(M::GET, web::to(sessions::list_sessions))],
                ))
                .service(resource(
                    "/sessions/{id}",
                    [(M::DELETE, web::to(sessions::delete_session))],
                )),
        )
        // `.wrap` order: the last one runs first, so the bearer check precedes the role check.
        .service(
            web::scope("/tasks")
                .wrap(from_fn(throttle::throttle_writes))
                .wrap(from_fn(require_role::any_role))
                .wrap(bearer())
                .service(resource(
                    "",
                    [
                        (M::GET, web::to(tasks::list_tasks)),
                        (M::POST, web::to(tasks::create_task)),
                    ],
                ))
                .service(resource(
                    "/{id}",
                    [
                        (M::GET, web::to(tasks::get_task)),
                        (M::PUT, web::to(tasks::replace_task)),
                        (M::PATCH, web::to(tasks::update_task)),
                        (M::DELETE, web::to(tasks::delete_task)),
                    ],
                )),
        )
        .service(
            web::scope("/reports")
                .wrap(from_fn(require_role::admin_or_manager))
                .wrap(bearer())
                .service(resource("", [(M::GET, web::to(reports::get_reports))])),
        )
        .service(
            web::scope("/admin")
                .wrap(from_fn(require_role::admin))
                .wrap(bearer())
                .service(resource("", [(M::GET, web::to(admin::welcome))]))
                .service(resource(
                    "/dashboard",
                    [(M::GET, web::to(admin::dashboard))],
                ))
                .service(resource(
                    "/users",
                    [
                        (M::GET, web::to(admin::users::list_users)),
                        (M::POST, web::to(admin::users::create_user)),
                    ],
                ))
                .service(resource(
                    "/users/{id}",
                    [
                        (M::GET, web::to(admin::users::get_user)),
                        (M::PATCH, web::to(admin::users::update_user)),
                        (M::DELETE, web::to(admin::users::delete_user)),
                    ],
                ))
                .service(resource(
                    "/users/{id}/revoke-sessions",
                    [(M::POST, web::to(admin::users::revoke_sessions))],
                ))
                .service(resource(
                    "/users/{id}/sessions",
                    [(M::GET, web::to(admin::sessions::list_user_sessions))],
                ))
                .service(resource(
                    "/users/{id}/sessions/{sid}",
                    [(M::DELETE, web::to(admin::sessions::revoke_user_session))],
                ))
                .service(resource(
                    "/users/{id}/password",
                    [(M::POST, web::to(admin::users::set_password))],
                ))
                .service(resource(
                    "/users/{id}/mfa",
                    [(M::DELETE, web::to(admin::users::reset_mfa))],
                ))
                .service(resource(
                    "/users/{id}/password-reset",
                    [(M::POST, web::to(admin::users::send_password_reset))],
                ))
                .service(resource(
                    "/tasks",
                    [(M::GET, web::to(admin::tasks::list_tasks))],
                ))
                .service(resource(
                    "/audit",
                    [(M::GET, web::to(admin::audit::list_audit))],
                )),
        );
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
pub fn resource<const N: usize>(path: &str, routes: [(Method, Route); N]) -> Resource {
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

//! The OpenAPI 3 description, generated from the handlers' annotations.
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{admin, health, reports, sessions, tasks, tokens, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "taskgate", description = "JWT-auth task service: OAuth2 password flow, rotating refresh tokens, roles."),
    paths(
        health::healthz, health::readyz, serve,
        users::signup, tokens::token, tokens::login,
        tokens::refresh,
        users::me, users::me_alias, users::update_me, users::change_password,
        sessions::list_sessions, sessions::delete_session, sessions::logout, sessions::logout_all,
        tasks::create_task, tasks::list_tasks, tasks::get_task, tasks::replace_task, tasks::update_task,
        tasks::delete_task,
        reports::get_reports,
        admin::welcome, admin::dashboard, admin::list_users, admin::create_user, admin::get_user,
        admin::update_user, admin::delete_user, admin::revoke_sessions, admin::list_tasks, admin::list_audit,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme that protected routes refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// GET /openapi.json
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI 3 description", content_type = "application/json")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

//! The OpenAPI 3 description, generated from the handlers' annotations.
use actix_web::HttpResponse;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::auth::require_role;
use crate::error::ErrorBody;
use crate::routes::{
    admin, health, mfa, pages, recovery, reports, sessions, tasks, tokens, users, well_known,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "taskgate", description = "JWT-auth task service: OAuth2 password flow, rotating refresh tokens, roles."),
    // Relative: the document is served by the service it describes, at its root.
    servers((url = "/")),
    paths(
        health::healthz, health::readyz, serve,
        well_known::jwks, well_known::metadata,
        users::signup, tokens::token,
        tokens::refresh,
        recovery::forgot, recovery::reset, pages::reset_page, pages::reset_script, pages::reset_style,
        pages::console_redirect, pages::console_page, pages::console_script, pages::console_style,
        users::me, users::update_me, users::change_password,
        mfa::enrol, mfa::confirm, mfa::disable,
        sessions::list_sessions, sessions::delete_session, sessions::logout, sessions::logout_all,
        tasks::create_task, tasks::list_tasks, tasks::get_task, tasks::replace_task, tasks::update_task,
        tasks::delete_task,
        reports::get_reports,
        admin::welcome, admin::dashboard, admin::users::list_users, admin::users::create_user, admin::users::get_user,
        admin::users::update_user, admin::users::delete_user, admin::users::revoke_sessions, admin::users::set_password, admin::users::reset_mfa, admin::sessions::list_user_sessions, admin::sessions::revoke_user_session, admin::users::send_password_reset, admin::tasks::list_tasks, admin::audit::list_audit,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerScheme, &Aliases, &CommonErrors, &ResponseHeaders, &Roles),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme that protected routes refer to, and
/// the same tokens as an OAuth2 password flow whose `tokenUrl` is `/token`,
/// offered beside it on every protected route: generated clients and API
/// consoles that know OAuth2 can then log in by themselves.
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
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/token",
                Scopes::new(),
            ))])),
        );
        for item in openapi.paths.paths.values_mut() {
            for op in operations_mut(item) {
                if let Some(security) = op.security.as_mut() {
                    if !security.is_empty() {
                        security.push(SecurityRequirement::new("oauth2", Vec::<String>::new()));
                    }
                }
            }
        }
    }
}

/// The operations of a path, whatever methods it has.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// Each authenticated operation's `x-roles`: the roles its guard admits
/// (`auth::require_role::AREAS`), so that clients, and the role matrix test,
/// read who may call it from the document.
struct Roles;

impl Modify for Roles {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let roles: Vec<&str> = require_role::roles_for(path)
                .iter()
                .map(|r| r.as_str())
                .collect();
            for op in operations_mut(item) {
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    op.extensions
                        .get_or_insert_with(Default::default)
                        .insert("x-roles".into(), serde_json::json!(roles));
                }
            }
        }
    }
}

/// Routes served by the same handler as another (`/login` is `/token`, `GET /me`
/// is `GET /users/me`): their description is a copy, so it cannot drift.
struct Aliases;

impl Modify for Aliases {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = &mut openapi.paths.paths;
        if let Some(mut login) = paths.get("/token").and_then(|p| p.post.clone()) {
            login.operation_id = Some("login".into());
            let item = paths.entry("/login".into()).or_default();
            item.post = Some(login);
        }
        if let Some(mut me) = paths.get("/users/me").and_then(|p| p.get.clone()) {
            me.operation_id = Some("me_alias".into());
            let item = paths.entry("/me".into()).or_default();
            item.get = Some(me);
        }
    }
}

/// The error answers that many operations share, added where they apply so
/// that every status the service can send is documented: malformed,
/// oversized or mistyped bodies, unparseable parameters, throttling, and the
/// database being away.
struct CommonErrors;

/// Routes behind the per-IP throttle (and, for the logins, the account lockout).
const THROTTLED: [&str; 9] = [
    "/users/signup",
    "/users/me/mfa/totp",
    "/users/me/mfa",
    "/token",
    "/login",
    "/refresh",
    "/users/me/password",
    "/password/forgot",
    "/password/reset",
];
/// Routes that never touch the database.
const NO_DATABASE: [&str; 2] = ["/healthz", "/openapi.json"];

fn add_error(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        });
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in operations_mut(item) {
                if op.request_body.is_some() {
                    add_error(op, "400", "Malformed body");
                    add_error(op, "408", "The body did not arrive in time");
                    add_error(op, "413", "Body over the size limit");
                    add_error(op, "415", "Wrong content type");
                    add_error(op, "422", "A field breaks a rule");
                }
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                    add_error(op, "422", "A parameter breaks a rule");
                }
                if THROTTLED.contains(&path.as_str()) {
                    add_error(
                        op,
                        "429",
                        "Throttled, the account is locked, or (routes that hash a password) this client's line of hashes is full; see Retry-After",
                    );
                }
                if !NO_DATABASE.contains(&path.as_str()) {
                    add_error(
                        op,
                        "503",
                        "Database unreachable or too busy, or (routes that hash a password) every client's line of hashes is full; see Retry-After",
                    );
                }
            }
        }
        // Task writes count against their user's `rate_limit.writes_per_minute`.
        for path in ["/tasks", "/tasks/{id}"] {
            let Some(item) = openapi.paths.paths.get_mut(path) else {
                continue;
            };
            for op in [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_error(
                    op,
                    "429",
                    "Too many task writes by this account (rate_limit.writes_per_minute); see Retry-After",
                );
            }
        }
        // An admin creating a user hashes the password in the admin's own line.
        if let Some(op) = openapi
            .paths
            .paths
            .get_mut("/admin/users")
            .and_then(|item| item.post.as_mut())
        {
            add_error(
                op,
                "429",
                "This client's line of password hashes is full; see Retry-After",
            );
        }
    }
}

/// The headers that follow from a rule, declared wherever it applies: every
/// list (a JSON array, docs/API.md's convention) its `X-Total-Count`, every
/// 429 and 503 its `Retry-After`. (`Location` is declared by the handlers
/// that set it.)
struct ResponseHeaders;

fn header(of: Type, description: &str) -> Header {
    let mut header = Header::new(Object::with_type(of));
    header.description = Some(description.to_owned());
    header
}

impl Modify for ResponseHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for op in operations_mut(item) {
                for (status, response) in op.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    let lists = response.content.get("application/json").is_some_and(|c| {
                        matches!(&c.schema, Some(RefOr::T(utoipa::openapi::Schema::Array(_))))
                    });
                    let named = match status.as_str() {
                        "200" if lists => Some((
                            "X-Total-Count",
                            header(
                                Type::Integer,
                                "How many rows match the filter, all pages together",
                            ),
                        )),
                        "429" | "503" => Some((
                            "Retry-After",
                            header(Type::Integer, "Seconds to wait before asking again"),
                        )),
                        _ => None,
                    };
                    if let Some((name, header)) = named {
                        response.headers.entry(name.to_owned()).or_insert(header);
                    }
                }
            }
        }
    }
}

/// GET /openapi.json
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "get_openapi",
    responses((status = 200, description = "This OpenAPI 3 description", content_type = "application/json")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

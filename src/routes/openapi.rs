//! The OpenAPI 3 description, generated from the handlers' annotations.
use std::sync::OnceLock;

use actix_web::{web, HttpResponse};
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::auth::require_role::Allowed;
use crate::error::{ApiError, ErrorBody};
use crate::routes::endpoint::{self, Access, Area, Policy};
use crate::routes::throttle;

/// What the document says besides its operations.
#[derive(OpenApi)]
#[openapi(
    info(title = "taskgate", description = "JWT-auth task service: OAuth2 password flow, rotating refresh tokens, roles."),
    // Relative: the document is served by the service it describes, at its root.
    servers((url = "/")),
    components(schemas(ErrorBody)),
)]
struct Frame;

/// The document of a route table: each endpoint's own description, with
/// what its guards answer (security, roles, 401/403/429/503) stated from the
/// table, then the rules that follow from a description (body errors,
/// headers).
pub fn describe(table: Vec<Area>) -> utoipa::openapi::OpenApi {
    let mut doc = Frame::openapi();
    for (policy, mut described) in endpoint::described(table) {
        for item in described.paths.paths.values_mut() {
            for op in operations_mut(item) {
                state_policy(op, &policy);
            }
        }
        doc.merge(described);
    }
    for modifier in [
        &BearerScheme as &dyn Modify,
        &CommonErrors,
        &ResponseHeaders,
    ] {
        modifier.modify(&mut doc);
    }
    doc
}

/// The document as served: made from the table at the first request for it
/// (tens of milliseconds and a few megabytes while it is made), then kept.
pub struct Document {
    table: fn() -> Vec<Area>,
    json: OnceLock<Result<web::Bytes, String>>,
}

impl Document {
    pub fn new(table: fn() -> Vec<Area>) -> Document {
        Document {
            table,
            json: OnceLock::new(),
        }
    }

    fn json(&self) -> Result<web::Bytes, ApiError> {
        let made = self.json.get_or_init(|| {
            serde_json::to_vec(&describe((self.table)()))
                .map(web::Bytes::from)
                .map_err(|e| e.to_string())
        });
        made.clone()
            .map_err(|e| ApiError::internal(format!("the OpenAPI document: {e}")))
    }
}

/// An operation's guards as the document states them: a token (bearer, or
/// the same token through the OAuth2 password flow, so generated clients
/// and consoles can log in by themselves) and 401; `x-roles`, the roles
/// its guard admits, and 403 for the rest; the throttles' 429; and 503
/// wherever the database is asked.
fn state_policy(op: &mut Operation, policy: &Policy) {
    let allowed = match policy.access {
        Access::Anyone => None,
        Access::Enrolling => Some(Allowed::Any),
        Access::Scope { allowed, .. } => Some(allowed),
    };
    if let Some(allowed) = allowed {
        op.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("oauth2", Vec::<String>::new()),
        ]);
        let roles: Vec<&str> = allowed.roles().iter().map(|r| r.as_str()).collect();
        op.extensions
            .get_or_insert_with(Default::default)
            .insert("x-roles".into(), serde_json::json!(roles));
        add_error(op, "401", "Missing, invalid, expired or revoked token");
        if allowed != Allowed::Any {
            add_error(op, "403", &allowed.refusal());
        }
    }
    if policy.guards.throttled {
        add_error(
            op,
            "429",
            "Throttled, the account is locked, or (routes that hash a password) this client's line of hashes is full; see Retry-After",
        );
    }
    if matches!(
        policy.access,
        Access::Scope {
            limits_writes: true,
            ..
        }
    ) && throttle::is_write(&policy.method)
    {
        add_error(
            op,
            "429",
            "Too many task writes by this account (rate_limit.writes_per_minute); see Retry-After",
        );
    }
    if !policy.guards.without_database {
        add_error(
            op,
            "503",
            "Database unreachable or too busy, or (routes that hash a password) every client's line of hashes is full; see Retry-After",
        );
    }
}

/// Declares the two schemes protected operations name: `bearer`, and the
/// same tokens as an OAuth2 password flow whose `tokenUrl` is `/token`.
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

/// The error answers that follow from an operation's description, so that
/// every status the service can send is documented: malformed, oversized or
/// mistyped bodies, and unparseable parameters.
struct CommonErrors;

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
        for item in openapi.paths.paths.values_mut() {
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
            }
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
pub async fn serve(document: web::Data<Document>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(document.json()?))
}

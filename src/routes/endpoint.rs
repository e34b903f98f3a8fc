//! The pieces of the route table (`routes::table`). An endpoint is a handler
//! at the path and method its own `#[utoipa::path]` declares; groups and
//! areas add the guards. `mount` serves a table and `openapi::describe`
//! documents the same one, so a route, its guards and its description are
//! declared once.
use std::collections::HashSet;
use std::sync::OnceLock;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, Resource, Route};
use actix_web_httpauth::middleware::HttpAuthentication;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::OpenApi;

use super::{resource, throttle};
use crate::auth::bearer;
use crate::auth::require_role::{self, Allowed};

/// `endpoint!(tasks::get_task)`: the handler, served and documented at the
/// path and method of its `#[utoipa::path]`.
macro_rules! endpoint {
    ($($handler:ident)::+) => {{
        #[derive(::utoipa::OpenApi)]
        #[openapi(paths($($handler)::+))]
        struct Described;
        static PLACE: ::std::sync::OnceLock<$crate::routes::endpoint::Place> =
            ::std::sync::OnceLock::new();
        $crate::routes::endpoint::Endpoint::new(
            &PLACE,
            <Described as ::utoipa::OpenApi>::openapi,
            ::actix_web::web::to($($handler)::+),
        )
    }};
}
pub(crate) use endpoint;

/// One operation: where it is served, its handler and how to describe it.
pub struct Endpoint {
    path: String,
    method: Method,
    route: Route,
    /// The handler's own description, made only when the document is: each
    /// worker mounts the table, and the descriptions weigh megabytes.
    describe: fn() -> OpenApi,
    /// For an alias (served at `path`): the operation id it is documented under.
    alias: Option<&'static str>,
}

/// Where a handler is served, read from its description once per process
/// (every worker mounts the table).
pub struct Place {
    path: String,
    method: Method,
}

impl Place {
    /// `doc` describes one operation, the handler's. Anything else is a
    /// wiring mistake that stops the service at start-up.
    fn of(doc: OpenApi) -> Place {
        let mut paths = doc.paths.paths.into_iter();
        let (path, mut item) = match (paths.next(), paths.next()) {
            (Some(only), None) => only,
            _ => panic!("an endpoint's description must hold exactly one path"),
        };
        let mut methods = Vec::new();
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            if slot(&mut item, &method).is_some_and(|op| op.is_some()) {
                methods.push(method);
            }
        }
        let [method] = methods.as_slice() else {
            panic!("{path}: an endpoint has exactly one method");
        };
        Place {
            method: method.clone(),
            path,
        }
    }
}

impl Endpoint {
    pub fn new(place: &OnceLock<Place>, describe: fn() -> OpenApi, route: Route) -> Endpoint {
        let place = place.get_or_init(|| Place::of(describe()));
        Endpoint {
            path: place.path.clone(),
            method: place.method.clone(),
            route,
            describe,
            alias: None,
        }
    }

    /// The same handler at a second path (`/login` for `/token`), documented
    /// as a copy under its own operation id, so the two cannot drift.
    pub fn alias(mut self, path: &str, operation_id: &'static str) -> Endpoint {
        self.alias = Some(operation_id);
        self.path = path.to_owned();
        self
    }

    /// The handler's description, at the endpoint's own path.
    fn describe(&self) -> OpenApi {
        let mut doc = (self.describe)();
        if let Some(operation_id) = self.alias {
            let paths = &mut doc.paths.paths;
            if let Some((_, mut item)) = std::mem::take(paths).into_iter().next() {
                if let Some(Some(op)) = slot(&mut item, &self.method) {
                    op.operation_id = Some(operation_id.to_owned());
                }
                paths.insert(self.path.clone(), item);
            }
        }
        doc
    }
}

/// The field of `item` that holds the operation for `method`.
pub fn slot<'a>(item: &'a mut PathItem, method: &Method) -> Option<&'a mut Option<Operation>> {
    Some(match *method {
        Method::GET => &mut item.get,
        Method::POST => &mut item.post,
        Method::PUT => &mut item.put,
        Method::PATCH => &mut item.patch,
        Method::DELETE => &mut item.delete,
        _ => return None,
    })
}

/// Endpoints that share their guards. Endpoints at one path must be in one
/// group: they are one resource, whose other methods answer 405 with `Allow`.
pub struct Group {
    endpoints: Vec<Endpoint>,
    guards: Guards,
}

/// The guards of a group's resources, besides its area's.
#[derive(Clone, Copy, Default)]
pub struct Guards {
    /// The per-client limit, `rate_limit.auth_per_minute`.
    pub throttled: bool,
    /// A POST hashes a password: full hashing lines answer before the throttle.
    pub hashing: bool,
    /// Never touches the database, so never answers 503.
    pub without_database: bool,
}

impl Group {
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Group {
        Group {
            endpoints: endpoints.into_iter().collect(),
            guards: Guards::default(),
        }
    }

    pub fn throttled(mut self) -> Group {
        self.guards.throttled = true;
        self
    }

    /// Throttled, and its POSTs hash a password.
    pub fn hashing(mut self) -> Group {
        self.guards.throttled = true;
        self.guards.hashing = true;
        self
    }

    pub fn without_database(mut self) -> Group {
        self.guards.without_database = true;
        self
    }
}

/// Who may reach an area's endpoints.
#[derive(Clone, Copy)]
pub enum Access {
    Anyone,
    /// A valid token, also one whose user must still enrol a second factor
    /// (what docs/API.md lets such a user reach).
    Enrolling,
    /// Everything under `prefix`: a valid token of a signed-in user with an
    /// allowed role. Unknown paths under it answer 401 to anonymous callers.
    Scope {
        prefix: &'static str,
        allowed: Allowed,
        /// Writes count against `rate_limit.writes_per_minute` per user.
        limits_writes: bool,
    },
}

pub struct Area {
    access: Access,
    groups: Vec<Group>,
}

impl Area {
    pub fn open(groups: impl IntoIterator<Item = Group>) -> Area {
        Area::new(Access::Anyone, groups)
    }

    pub fn enrolling(groups: impl IntoIterator<Item = Group>) -> Area {
        Area::new(Access::Enrolling, groups)
    }

    pub fn scope(
        prefix: &'static str,
        allowed: Allowed,
        groups: impl IntoIterator<Item = Group>,
    ) -> Area {
        let access = Access::Scope {
            prefix,
            allowed,
            limits_writes: false,
        };
        Area::new(access, groups)
    }

    /// Its writes count against their user's `rate_limit.writes_per_minute`.
    pub fn limiting_writes(mut self) -> Area {
        if let Access::Scope { limits_writes, .. } = &mut self.access {
            *limits_writes = true;
        }
        self
    }

    fn new(access: Access, groups: impl IntoIterator<Item = Group>) -> Area {
        Area {
            access,
            groups: groups.into_iter().collect(),
        }
    }
}

/// What guards one operation, for its description.
pub struct Policy {
    pub method: Method,
    pub access: Access,
    pub guards: Guards,
}

/// Each operation's description with the policy that guards it.
pub fn described(table: Vec<Area>) -> impl Iterator<Item = (Policy, OpenApi)> {
    table.into_iter().flat_map(|area| {
        area.groups.into_iter().flat_map(move |group| {
            group.endpoints.into_iter().map(move |endpoint| {
                let policy = Policy {
                    method: endpoint.method.clone(),
                    access: area.access,
                    guards: group.guards,
                };
                (policy, endpoint.describe())
            })
        })
    })
}

/// Serves the table, in its order (the first match wins, so a path served
/// outside a scope comes before the scope with its prefix).
pub fn mount(cfg: &mut web::ServiceConfig, table: Vec<Area>) {
    let mut seen = HashSet::new();
    for area in table {
        match area.access {
            Access::Anyone => {
                for served in by_path(area.groups, "", &mut seen) {
                    cfg.service(guarded(served));
                }
            }
            Access::Enrolling => {
                for served in by_path(area.groups, "", &mut seen) {
                    let enrolling = HttpAuthentication::with_fn(bearer::validate_enrolling);
                    cfg.service(guarded(served).wrap(enrolling));
                }
            }
            Access::Scope {
                prefix,
                allowed,
                limits_writes,
            } => {
                let scope = by_path(area.groups, prefix, &mut seen)
                    .into_iter()
                    .fold(web::scope(prefix), |scope, served| {
                        scope.service(guarded(served))
                    })
                    .wrap(Condition::new(
                        limits_writes,
                        from_fn(throttle::throttle_writes),
                    ));
                let bearer = HttpAuthentication::with_fn(bearer::validate);
                // `.wrap` order: the last one runs first, so the bearer check precedes the role check.
                match allowed {
                    Allowed::Any => {
                        cfg.service(scope.wrap(from_fn(require_role::any_role)).wrap(bearer))
                    }
                    Allowed::AdminOrManager => cfg.service(
                        scope
                            .wrap(from_fn(require_role::admin_or_manager))
                            .wrap(bearer),
                    ),
                    Allowed::Admin => {
                        cfg.service(scope.wrap(from_fn(require_role::admin)).wrap(bearer))
                    }
                };
            }
        }
    }
}

/// One resource: a path relative to its scope, its methods, its group's guards.
struct Served {
    path: String,
    routes: Vec<(Method, Route)>,
    guards: Guards,
}

/// The groups' endpoints by path (one resource each), relative to `prefix`.
fn by_path(groups: Vec<Group>, prefix: &str, seen: &mut HashSet<String>) -> Vec<Served> {
    let mut out: Vec<Served> = Vec::new();
    for group in groups {
        let first = out.len();
        for endpoint in group.endpoints {
            let path = endpoint
                .path
                .strip_prefix(prefix)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .unwrap_or_else(|| panic!("{} is outside its scope {prefix}", endpoint.path))
                .to_owned();
            let route = (endpoint.method, endpoint.route);
            match out[first..].iter_mut().find(|s| s.path == path) {
                Some(served) => served.routes.push(route),
                None => {
                    assert!(
                        seen.insert(endpoint.path.clone()),
                        "{} is in two groups",
                        endpoint.path
                    );
                    out.push(Served {
                        path,
                        routes: vec![route],
                        guards: group.guards,
                    });
                }
            }
        }
    }
    out
}

/// A resource with its group's guards.
// `.wrap` order: the last one runs first, so a full hashing line is answered before the throttle's round trip.
fn guarded(
    served: Served,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let guards = served.guards;
    resource(&served.path, served.routes)
        .wrap(Condition::new(
            guards.throttled,
            from_fn(throttle::throttle_auth),
        ))
        .wrap(Condition::new(
            guards.hashing,
            from_fn(throttle::refuse_when_lines_are_full),
        ))
}

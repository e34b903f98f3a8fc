//! The role guards of scopes: middleware functions that run after the bearer
//! middleware, read the `CurrentUser` (whose role came from the database on
//! this request), and answer 403 themselves.
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError};

use super::CurrentUser;
use crate::domain::Role;
use crate::error::ApiError;

const ADMIN: &[Role] = &[Role::Admin];
const ADMIN_OR_MANAGER: &[Role] = &[Role::Admin, Role::Manager];
const ANY: &[Role] = &[Role::User, Role::Manager, Role::Admin];

/// The guarded areas by path prefix, and who may use each: the guards below
/// are mounted on these scopes (`routes::configure`), and the OpenAPI
/// document states them as each operation's `x-roles`.
pub const AREAS: &[(&str, &[Role])] = &[
    ("/admin", ADMIN),
    ("/reports", ADMIN_OR_MANAGER),
    ("/tasks", ANY),
];

/// Who may call the authenticated route at `path`: its area's roles, or
/// every role outside the areas (a caller's own account and sessions).
pub fn roles_for(path: &str) -> &'static [Role] {
    AREAS
        .iter()
        .find(|(prefix, _)| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map_or(ANY, |(_, roles)| *roles)
}

/// `/admin`: admins only.
pub async fn admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    require(ADMIN, req, next).await
}

/// `/reports`: admins and managers.
pub async fn admin_or_manager(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    require(ADMIN_OR_MANAGER, req, next).await
}

/// `/tasks`: every role (a role unknown to this build is refused).
pub async fn any_role(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    require(ANY, req, next).await
}

async fn require(
    allowed: &[Role],
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let role = req.extensions().get::<CurrentUser>().map(|u| u.role);
    let refusal = match role {
        Some(role) if allowed.contains(&role) => {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        Some(_) => ApiError::Forbidden(required(allowed)),
        None => {
            // Fails closed: a guarded scope without the bearer middleware is a wiring bug.
            log::error!(
                "a role guard on {} without CurrentUser: bearer middleware missing",
                req.path()
            );
            ApiError::NotAuthenticated
        }
    };
    let response = refusal.error_response();
    Ok(req.into_response(response).map_into_right_body())
}

/// "admin role required", "admin or manager role required".
fn required(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    let list = match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    };
    format!("{list} role required")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_match_whole_segments() {
        assert_eq!(roles_for("/admin"), ADMIN);
        assert_eq!(roles_for("/admin/users/{id}"), ADMIN);
        assert_eq!(roles_for("/reports"), ADMIN_OR_MANAGER);
        assert_eq!(roles_for("/tasks/{id}"), ANY);
        assert_eq!(roles_for("/administrators"), ANY);
        assert_eq!(roles_for("/users/me"), ANY);
    }

    #[test]
    fn the_detail_names_the_roles_allowed() {
        assert_eq!(required(ADMIN), "admin role required");
        assert_eq!(required(ADMIN_OR_MANAGER), "admin or manager role required");
        assert_eq!(required(ANY), "user, manager or admin role required");
    }
}

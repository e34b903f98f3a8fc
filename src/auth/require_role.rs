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

/// Who a guarded scope admits (`routes::table` names one per scope); each
/// has its middleware function below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    Any,
    AdminOrManager,
    Admin,
}

impl Allowed {
    pub fn roles(self) -> &'static [Role] {
        match self {
            Allowed::Any => ANY,
            Allowed::AdminOrManager => ADMIN_OR_MANAGER,
            Allowed::Admin => ADMIN,
        }
    }

    /// The 403's detail for everyone else.
    pub fn refusal(self) -> String {
        required(self.roles())
    }
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
    fn the_detail_names_the_roles_allowed() {
        assert_eq!(required(ADMIN), "admin role required");
        assert_eq!(required(ADMIN_OR_MANAGER), "admin or manager role required");
        assert_eq!(required(ANY), "user, manager or admin role required");
    }
}

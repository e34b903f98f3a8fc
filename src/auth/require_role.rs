//! `RequireRole`: the middleware that guards a scope by role. It runs after
//! the bearer middleware, reads the `CurrentUser` (whose role came from the
//! database on this request), and answers 403 itself.
use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{Error, HttpMessage, ResponseError};
use futures_util::future::{FutureExt, LocalBoxFuture};

use super::CurrentUser;
use crate::domain::Role;
use crate::error::ApiError;

#[derive(Clone)]
pub struct RequireRole {
    allowed: Rc<[Role]>,
    /// "admin role required", "admin or manager role required".
    detail: Rc<str>,
}

impl RequireRole {
    pub fn any(roles: &[Role]) -> RequireRole {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let list = match names.as_slice() {
            [] => String::new(),
            [one] => (*one).to_owned(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        };
        RequireRole {
            allowed: roles.into(),
            detail: format!("{list} role required").into(),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireRole
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireRoleMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireRoleMiddleware {
            service: Rc::new(service),
            policy: self.clone(),
        }))
    }
}

pub struct RequireRoleMiddleware<S> {
    service: Rc<S>,
    policy: RequireRole,
}

impl<S, B> Service<ServiceRequest> for RequireRoleMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let role = req.extensions().get::<CurrentUser>().map(|u| u.role);
        let refusal = match role {
            Some(role) if self.policy.allowed.contains(&role) => {
                return self
                    .service
                    .call(req)
                    .map(|r| r.map(ServiceResponse::map_into_left_body))
                    .boxed_local();
            }
            Some(_) => ApiError::Forbidden(self.policy.detail.to_string()),
            None => {
                // Fails closed: a guarded scope without the bearer middleware is a wiring bug.
                log::error!(
                    "RequireRole on {} without CurrentUser: bearer middleware missing",
                    req.path()
                );
                ApiError::NotAuthenticated
            }
        };
        let response = refusal.error_response();
        ready(Ok(req.into_response(response).map_into_right_body())).boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_names_the_roles_allowed() {
        assert_eq!(
            &*RequireRole::any(&[Role::Admin]).detail,
            "admin role required"
        );
        assert_eq!(
            &*RequireRole::any(&[Role::Admin, Role::Manager]).detail,
            "admin or manager role required"
        );
        assert_eq!(
            &*RequireRole::any(&[Role::User, Role::Manager, Role::Admin]).detail,
            "user, manager or admin role required"
        );
    }
}

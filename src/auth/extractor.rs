//! `CurrentUser`: who the bearer middleware authenticated, read back by handlers.
use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};
use uuid::Uuid;

use crate::db::users::Profile;
use crate::domain::Role;
use crate::error::ApiError;

/// The caller, as loaded from the database on this very request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: Profile,
    pub role: Role,
    pub session_id: Uuid,
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Ready<Result<CurrentUser, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<CurrentUser>()
                .cloned()
                .ok_or_else(|| {
                    // Fails closed: a handler outside the bearer middleware is a wiring bug.
                    log::error!(
                        "CurrentUser missing on {}: route is not behind the bearer middleware",
                        req.path()
                    );
                    ApiError::NotAuthenticated
                }),
        )
    }
}

//! `Actor`: the authenticated caller and where they call from, in one
//! extractor: what handlers act as, and what audited writes record.
use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpRequest};
use uuid::Uuid;

use crate::auth::login::Client;
use crate::auth::CurrentUser;
use crate::db::audit;
use crate::db::users::Profile;
use crate::domain::Role;
use crate::error::ApiError;
use crate::routes::client::client;

#[derive(Debug, Clone)]
pub struct Actor {
    pub user: Profile,
    pub role: Role,
    pub session_id: Uuid,
    /// Where the client is read from, when a handler asks: most never do,
    /// and reading it walks the proxies and copies two headers.
    request: HttpRequest,
}

impl Actor {
    pub fn id(&self) -> i64 {
        self.user.id
    }

    /// Where the caller calls from: address, user agent and client key.
    pub fn client(&self) -> Client {
        client(&self.request)
    }

    /// The caller for a password check that opens no session (a password
    /// change, the second factor's enrolment or removal): no user agent is
    /// recorded.
    pub fn checking(&self) -> Client {
        Client {
            user_agent: None,
            ..self.client()
        }
    }

    /// The caller as the audit log records them.
    pub fn audit(&self) -> audit::Actor {
        audit::Actor {
            user_id: Some(self.user.id),
            ip: self.client().ip,
        }
    }
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<Result<Actor, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(
            CurrentUser::from_request(req, payload)
                .into_inner()
                .map(|current| Actor {
                    user: current.user,
                    role: current.role,
                    session_id: current.session_id,
                    request: req.clone(),
                }),
        )
    }
}

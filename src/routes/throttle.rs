//! Middleware of the auth routes: the per-client limit
//! (`rate_limit.auth_per_minute`, one upsert in PostgreSQL per request, so
//! every instance behind a proxy enforces one limit), and before it, on the
//! routes that hash, the admission that answers 503 at once when there is no
//! room to hash.
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use super::client::client_ip;
use crate::auth::AppState;
use crate::db::{self, throttle};
use crate::error::{ApiError, Message};

/// For `middleware::from_fn`: a throttled request is answered 429 with
/// `Retry-After` as a response (not an `Err`), so CORS and the log see it.
pub async fn throttle_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match take(&req).await {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(req.into_response(e.error_response()).map_into_right_body()),
    }
}

/// For `middleware::from_fn`, outside `throttle_auth` on the routes that
/// hash a password: admits as many requests at once as may hash or wait to,
/// and answers the rest 503 before any other work, so that under a login
/// storm the refusals cost no database round trip. Only a POST hashes: the
/// reset page (GET on the same resource) is served whatever the storm.
pub async fn admit_to_hashing(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let hasher = (req.method() == Method::POST)
        .then(|| req.app_data::<web::Data<AppState>>())
        .flatten()
        .map(|state| state.hasher.clone());
    let Some(hasher) = hasher else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    match hasher.admit() {
        Some(_admission) => Ok(next.call(req).await?.map_into_left_body()),
        None => {
            let busy = hasher.refuse().await;
            Ok(req
                .into_response(busy.error_response())
                .map_into_right_body())
        }
    }
}

async fn take(req: &ServiceRequest) -> Result<(), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(Message("AppState is not registered".into())))?;
    let key = client_ip(req.request()).unwrap_or_else(|| "unknown".into());
    let per_minute = state.settings.rate_limit.auth_per_minute;
    let wait = db::run(&state.pool, move |conn| {
        throttle::take(conn, &key, per_minute)
    })
    .await?;
    match wait {
        None => Ok(()),
        Some(retry_after_seconds) => Err(ApiError::RateLimited {
            retry_after_seconds,
            detail: "Too many requests from this address; try again later",
        }),
    }
}

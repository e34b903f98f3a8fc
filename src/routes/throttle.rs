//! The per-user limit of task writes (`rate_limit.writes_per_minute`), and
//! middleware of the auth routes: the per-client limit
//! (`rate_limit.auth_per_minute`, one upsert in PostgreSQL per request, so
//! every instance behind a proxy enforces one limit), and before it, on the
//! routes that hash, a look at the client's hashing line that answers at
//! once a request that would be refused a place anyway.
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use super::client::client_key;
use crate::auth::{AppState, CurrentUser};
use crate::config::RateLimitSettings;
use crate::db::{self, throttle};
use crate::error::ApiError;

/// For `middleware::from_fn`: a throttled request is answered 429 with
/// `Retry-After` as a response (not an `Err`), so CORS and the log see it.
pub async fn throttle_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match take(&req).await {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => {
            count_refused_login(&req);
            Ok(req.into_response(e.error_response()).map_into_right_body())
        }
    }
}

/// A login answered before it was tried still counts, as `refused`.
fn count_refused_login(req: &ServiceRequest) {
    if matches!(req.path(), "/token" | "/login") {
        let state = req.app_data::<web::Data<AppState>>();
        if let Some(metrics) = state.and_then(|s| s.metrics.as_ref()) {
            metrics.login("refused");
        }
    }
}

/// For `middleware::from_fn`, outside `throttle_auth` on the routes that
/// hash a password: a request whose client's line is already full (429), or
/// when every line is (503), is answered before its body is read or the
/// database asked, so a storm's surplus costs no round trip. It reserves
/// nothing: the place is taken later, once the request is whole and allowed,
/// so a slow or idle connection holds none. Only a POST hashes: the reset
/// page (GET on the same resource) is served whatever the storm.
pub async fn refuse_when_lines_are_full(
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
    match hasher.check(&client_key(req.request())) {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(refusal) => {
            count_refused_login(&req);
            let refusal = hasher.refuse(refusal).await;
            Ok(req
                .into_response(refusal.error_response())
                .map_into_right_body())
        }
    }
}

/// For `middleware::from_fn`, inside the bearer middleware on `/tasks`: each
/// write (anything but GET and HEAD) takes one from its user's allowance,
/// counted in the same table as the auth throttle (one limit for every
/// instance); past it 429 with `Retry-After`, the write not made.
pub async fn throttle_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !is_write(req.method()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    match take_write(&req).await {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(req.into_response(e.error_response()).map_into_right_body()),
    }
}

/// What `throttle_writes` counts: anything but GET and HEAD.
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD)
}

async fn take_write(req: &ServiceRequest) -> Result<(), ApiError> {
    let user_id = req
        .extensions()
        .get::<CurrentUser>()
        .map(|u| u.user.id)
        // Fails closed: a throttled scope without the bearer middleware is a wiring bug.
        .ok_or(ApiError::NotAuthenticated)?;
    // A prefix no client key has (those are addresses).
    let key = format!("writes:user:{user_id}");
    let per_minute = |limits: &RateLimitSettings| limits.writes_per_minute.get();
    let detail = "Too many task writes from this account; try again later";
    take_from(req, key, per_minute, detail).await
}

async fn take(req: &ServiceRequest) -> Result<(), ApiError> {
    let key = client_key(req.request()).to_string();
    let per_minute = |limits: &RateLimitSettings| limits.auth_per_minute.get();
    let detail = "Too many requests from this address; try again later";
    take_from(req, key, per_minute, detail).await
}

/// Takes one request from `key`'s allowance (`per_minute` of the settings),
/// or answers 429 `detail` with the wait as `Retry-After`.
async fn take_from(
    req: &ServiceRequest,
    key: String,
    per_minute: fn(&RateLimitSettings) -> u32,
    detail: &'static str,
) -> Result<(), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("AppState is not registered"))?;
    let per_minute = per_minute(&state.settings.rate_limit);
    let wait = db::run(&state.pool, move |conn| {
        throttle::take(conn, &key, per_minute)
    })
    .await?;
    match wait {
        None => Ok(()),
        Some(retry_after_seconds) => Err(ApiError::RateLimited {
            retry_after_seconds,
            detail,
        }),
    }
}

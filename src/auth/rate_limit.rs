//! Per-client-IP throttling of the auth endpoints (`rate_limit.auth_per_minute`),
//! answering API.md's 429 body. Kept in memory: each instance counts its own
//! clients; the per-account lockout is the part that lives in the database.
use std::net::IpAddr;
use std::time::Duration;

use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::governor::NotUntil;
use actix_governor::{
    GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError,
};
use actix_web::dev::ServiceRequest;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};

use crate::error::ApiError;

/// Keys requests by the TCP peer's address (`X-Forwarded-For` is not trusted).
#[derive(Debug, Clone, Copy)]
pub struct PeerIp;

impl KeyExtractor for PeerIp {
    type Key = IpAddr;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<IpAddr, Self::KeyExtractionError> {
        req.peer_addr()
            .map(|a| a.ip())
            .ok_or_else(|| SimpleKeyExtractionError::new("Could not determine the client address"))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        _: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative.wait_time_from(DefaultClock::default().now());
        ApiError::RateLimited {
            retry_after_seconds: wait.as_secs().max(1),
            detail: "Too many requests from this address; try again later",
        }
        .error_response()
    }
}

pub type AuthLimit = GovernorConfig<PeerIp, NoOpMiddleware<QuantaInstant>>;

/// `per_minute` requests in a burst, refilled evenly over a minute.
pub fn auth_limit(per_minute: u32) -> AuthLimit {
    let per_minute = per_minute.max(1);
    GovernorConfigBuilder::default()
        .key_extractor(PeerIp)
        .period(Duration::from_secs(60) / per_minute)
        .burst_size(per_minute)
        .finish()
        .unwrap_or_else(|| unreachable!("period and burst size are positive"))
}

//! Answers that must not be cached or sniffed: `X-Content-Type-Options:
//! nosniff` on every answer, and `Cache-Control: no-store` on every answer to
//! a request that carried credentials (profiles, sessions, the audit log and
//! reports must not sit in a shared or browser cache), unless the handler
//! chose its own caching.
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use actix_web::middleware::Next;

pub async fn private_answers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let credentialed = req.headers().contains_key(AUTHORIZATION);
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if !headers.contains_key(X_CONTENT_TYPE_OPTIONS) {
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    if credentialed && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

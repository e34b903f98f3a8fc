//! Reading request bodies within `server.body_limit_bytes`: the one place that
//! counts a body's bytes, for JSON and form bodies alike.
use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpRequest;
use futures_util::StreamExt;

use crate::error::ApiError;

/// The body bounds every extractor of ours applies (registered as app data).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// The limit registered for this app, or API.md's default of 64 KiB.
    pub fn of(req: &HttpRequest) -> usize {
        req.app_data::<BodyLimit>().map_or(64 * 1024, |l| l.0)
    }
}

/// The whole body, or 413 as soon as it is known to be over `limit`.
pub async fn read_all(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

//! Request bodies within bounds: `server.body_limit_bytes` (the one place
//! that counts a body's bytes, for JSON and form bodies alike) and
//! `server.body_timeout_seconds`.
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, HttpRequest};
use futures_util::{Stream, StreamExt};

use crate::error::ApiError;

/// The body bounds every extractor of ours applies (registered as app data).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// The limit registered for this app, or docs/API.md's default of 64 KiB.
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

/// The declared `Content-Length`, or 413 at once when it is over `limit`.
pub fn refuse_declared_over(req: &HttpRequest, limit: usize) -> Result<Option<usize>, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(n) if n > limit => Err(ApiError::PayloadTooLarge),
        _ => Ok(declared),
    }
}

/// How long a body may take to arrive (`server.body_timeout_seconds`), as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// For `middleware::from_fn`: a request body that has not fully arrived
/// within the timeout ends in a `TimedOut` payload error, which the reading
/// extractor turns into 408 (and the connection is closed). A client
/// trickling a byte every few seconds cannot hold a worker's attention.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout = req.app_data::<BodyTimeout>().map(|t| t.0);
    if let (Some(timeout), true) = (timeout, has_body(&req)) {
        let inner = req.take_payload();
        req.set_payload(Payload::Stream {
            payload: Box::pin(Deadline {
                inner,
                sleep: Box::pin(tokio::time::sleep(timeout)),
                expired: false,
            }),
        });
    }
    next.call(req).await
}

fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// A payload that fails with `TimedOut` once its deadline passes.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired = true;
                    Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request body timed out",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
            ready => ready,
        }
    }
}

/// A payload that fails with `Overflow` once more than `limit` bytes came:
/// for readers (multipart) that do not count the raw bytes themselves.
pub struct Limited {
    inner: Payload,
    left: usize,
}

impl Limited {
    pub fn new(inner: Payload, limit: usize) -> Limited {
        Limited { inner, left: limit }
    }
}

impl Stream for Limited {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.left.checked_sub(chunk.len()) {
                Some(left) => {
                    this.left = left;
                    Poll::Ready(Some(Ok(chunk)))
                }
                None => Poll::Ready(Some(Err(PayloadError::Overflow))),
            },
            other => other,
        }
    }
}

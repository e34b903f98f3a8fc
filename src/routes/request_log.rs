//! Every request gets an id: the caller's `X-Request-Id` when it is 1 to 64
//! letters, digits, `-`, `_` or `.`, else a new UUID. The id is echoed on
//! the answer, carried by every log line written while serving it (and by
//! its audit events), and the request ends with one access line: method,
//! route template, status, duration and the user when one signed in; and is
//! counted in the metrics (`http_requests_total`, its duration's histogram).
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use crate::auth::{AppState, CurrentUser};
use crate::logging::{self, RequestId};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const ACCESS: &str = "taskgate::access";

/// The caller's id if it is one we may repeat in logs and headers.
fn taken(value: &HeaderValue) -> Option<RequestId> {
    let id = value.to_str().ok()?;
    let fits = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    fits.then(|| Arc::from(id))
}

pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(taken)
        .unwrap_or_else(|| Arc::from(uuid::Uuid::new_v4().to_string()));
    let header = HeaderValue::from_str(&id).ok();
    logging::in_request(id, async move {
        let started = Instant::now();
        // Refusals made below (the bearer check's 401, routing's 404) arrive
        // here as answers too, and get the id and the access line.
        let mut res = next.call(req).await?;
        if let Some(header) = header {
            res.headers_mut().insert(X_REQUEST_ID, header);
        }
        let elapsed = started.elapsed();
        let state = res.request().app_data::<web::Data<AppState>>();
        let metrics = state.and_then(|s| s.metrics.as_ref());
        let logged = log::log_enabled!(target: ACCESS, log::Level::Info);
        // The route template is looked up only when someone will read it.
        if metrics.is_some() || logged {
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into());
            if let Some(metrics) = metrics {
                let method = res.request().method().as_str();
                let status = res.status();
                metrics.request(method, &route, status.as_str(), elapsed.as_secs_f64());
            }
            if logged {
                access_line(&res, &route, elapsed);
            }
        }
        Ok(res)
    })
    .await
}

fn access_line<B>(res: &ServiceResponse<B>, route: &str, elapsed: Duration) {
    let req = res.request();
    let status = res.status().as_u16();
    let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1000.0;
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let user_id = req.extensions().get::<CurrentUser>().map(|u| u.user.id);
    let method = req.method().as_str();
    let path = req.path();
    match user_id {
        Some(user_id) => log::info!(
            target: ACCESS,
            method, route, status, duration_ms, user_id;
            "{peer} \"{method} {path}\""
        ),
        None => log::info!(
            target: ACCESS,
            method, route, status, duration_ms;
            "{peer} \"{method} {path}\""
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_taken_only_when_short_and_plain() {
        let ok = |s: &str| taken(&HeaderValue::from_str(s).unwrap()).is_some();
        assert!(ok("a"));
        assert!(ok("req-42_x.y"));
        assert!(ok(&"a".repeat(64)));
        assert!(!ok(""));
        assert!(!ok(&"a".repeat(65)));
        assert!(!ok("has space"));
        assert!(!ok("quote\""));
        assert!(!ok("tab\tin"));
        assert!(taken(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_none());
    }
}

//! Who sent a request: the client's address (through trusted proxies) and its user agent.
use actix_web::{web, HttpRequest};

use crate::auth::AppState;

/// The client's address: the TCP peer, or when that is one of
/// `server.trusted_proxies`, the client its `X-Forwarded-For` names (see
/// `TrustedProxies::client`). Throttling, audit and sessions all use this.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Some(peer.to_string());
    };
    // Several headers are one list, in order (RFC 9110 §5.3).
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    Some(state.proxies.client(peer, forwarded.as_deref()).to_string())
}

/// The `User-Agent` header, cut to a sane length for storage.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect())
}

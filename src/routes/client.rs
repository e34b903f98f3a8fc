//! Who sent a request: the client's address (through trusted proxies), the
//! key it is throttled and queued under, and its user agent.
use std::future::{ready, Ready};
use std::net::{IpAddr, Ipv4Addr};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::auth::login::Client;
use crate::auth::AppState;
use crate::domain::ClientKey;
use crate::error::ApiError;

/// The client's address: the TCP peer, or when that is one of
/// `server.trusted_proxies`, the client its `X-Forwarded-For` names (see
/// `TrustedProxies::client`). Audit and sessions record this.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    client_addr(req).map(|ip| ip.to_string())
}

/// The key the client's throttle and hashing line are kept under: its
/// address, or for IPv6 its `rate_limit.ipv6_prefix` network. Requests
/// without a peer address (none over TCP) share one key.
pub fn client_key(req: &HttpRequest) -> ClientKey {
    key_of(req, client_addr(req))
}

/// Everything the login flow records and keys on (one walk of the proxies).
pub fn client(req: &HttpRequest) -> Client {
    let addr = client_addr(req);
    Client {
        ip: addr.map(|ip| ip.to_string()),
        user_agent: user_agent(req),
        key: key_of(req, addr),
    }
}

fn key_of(req: &HttpRequest, addr: Option<IpAddr>) -> ClientKey {
    // Without the app's state (never in the service) each address is its own client.
    let prefix = req
        .app_data::<web::Data<AppState>>()
        .map_or(128, |state| state.settings.rate_limit.ipv6_prefix);
    ClientKey::of(addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), prefix)
}

fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Some(peer);
    };
    // Several headers are one list, in order (RFC 9110 §5.3).
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    Some(state.proxies.client(peer, forwarded.as_deref()))
}

/// The scheme and authority the client reached us by, for URLs we print
/// (`http://host:port`): from `Forwarded`/`X-Forwarded-Proto`/`-Host` only when
/// the peer is a trusted proxy, else the `Host` header over plain HTTP (what
/// we serve). A scheme other than http(s) or a host that is not an authority
/// is not believed.
pub fn origin(req: &HttpRequest) -> String {
    let trusted = req.peer_addr().is_some_and(|peer| {
        req.app_data::<web::Data<AppState>>()
            .is_some_and(|state| state.proxies.trusts(peer.ip()))
    });
    let info = req.connection_info();
    let (scheme, host) = if trusted {
        (info.scheme().to_owned(), info.host().to_owned())
    } else {
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_else(|| req.app_config().host());
        ("http".to_owned(), host.to_owned())
    };
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else {
        "http"
    };
    let host = match host.parse::<actix_web::http::uri::Authority>() {
        Ok(authority) if authority.as_str() == host && !host.contains('@') => host,
        _ => req.app_config().host().to_owned(),
    };
    format!("{scheme}://{host}")
}

/// The `User-Agent` header, cut to a sane length for storage.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect())
}

/// Where an anonymous request came from (signup, login, recovery): its
/// address, user agent and client key.
impl FromRequest for Client {
    type Error = ApiError;
    type Future = Ready<Result<Client, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(client(req)))
    }
}

//! What another service needs to trust our access tokens without our secret:
//! the public signing keys (a JWK Set, RFC 7517) and the authorization
//! server's metadata (RFC 8414). No OpenID Connect discovery: we issue no ID
//! tokens and have no authorization or userinfo endpoint to describe.
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AppState;

/// How long a verifier may keep the keys: a rotation publishes the new key
/// long before tokens signed by it could reach anyone (see README, "Rotating keys").
const KEYS_CACHE: &str = "public, max-age=300";

/// One public key, as RFC 7517 / RFC 8037 spell it.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "documents the response's shape; jsonwebtoken's Jwk is what is sent"
)]
pub struct Jwk {
    /// `OKP` (Ed25519) or `EC` (P-256)
    #[schema(example = "OKP")]
    kty: String,
    /// `Ed25519` or `P-256`
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key (base64url)
    x: String,
    /// P-256 only: the point's y coordinate (base64url)
    y: Option<String>,
    /// RFC 7638 thumbprint of the key; tokens name it in their header
    kid: String,
    /// `EdDSA` or `ES256`
    #[schema(example = "EdDSA")]
    alg: String,
    #[schema(rename = "use", example = "sig")]
    use_: String,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the response's shape, as Jwk does")]
pub struct JwkSet {
    /// The current key first, then retired keys that still verify; empty with HS256
    keys: Vec<Jwk>,
}

/// GET /.well-known/jwks.json: the public keys tokens are verified with.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys",
    responses((status = 200, description = "The current and previous public keys (an empty set with HS256: a secret is never published)",
        body = JwkSet,
        headers(("Cache-Control" = String, description = "public, max-age=300")))))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, KEYS_CACHE))
        .json(&state.keys.jwks)
}

/// RFC 8414 §2: the fields that apply to a server with only a token endpoint.
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    /// `jwt.issuer`: the `iss` of every token
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    #[schema(example = json!(["password", "refresh_token"]))]
    grant_types_supported: [&'static str; 2],
    /// Public clients only: no client secret is checked
    #[schema(example = json!(["none"]))]
    token_endpoint_auth_methods_supported: [&'static str; 1],
    /// No authorization endpoint, so no response types
    response_types_supported: [&'static str; 0],
}

/// GET /.well-known/oauth-authorization-server: where the token endpoint and
/// the keys are. With `jwt.issuer` an `https://` URL (as RFC 8414 asks) the
/// URLs are built on it; otherwise on the request's own host, not cached.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "keys",
    responses((status = 200, description = "Authorization server metadata (RFC 8414)", body = ServerMetadata,
        headers(("Cache-Control" = String, description = "public, max-age=300 when jwt.issuer is a URL; no-store otherwise")))))]
pub async fn metadata(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let issuer = state.keys.issuer.clone();
    // A fixed base may be cached; one from the request's Host may not.
    let (base, cache) = match (&state.settings.server.public_url, issuer_url(&issuer)) {
        (Some(public), _) => (public.clone(), KEYS_CACHE),
        (None, Some(base)) => (base.to_owned(), KEYS_CACHE),
        (None, None) => (super::client::origin(&req), "no-store"),
    };
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, cache))
        .json(ServerMetadata {
            token_endpoint: format!("{base}/token"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            issuer,
            grant_types_supported: ["password", "refresh_token"],
            token_endpoint_auth_methods_supported: ["none"],
            response_types_supported: [],
        })
}

/// The issuer without a trailing slash, when it is an http(s) URL with no
/// query or fragment.
fn issuer_url(issuer: &str) -> Option<&str> {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))?;
    (!rest.is_empty() && !rest.contains(['?', '#'])).then(|| issuer.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::issuer_url;

    #[test]
    fn only_a_url_issuer_is_a_base_for_the_endpoints() {
        assert_eq!(
            issuer_url("https://auth.example.com/"),
            Some("https://auth.example.com")
        );
        assert_eq!(
            issuer_url("https://example.com/auth"),
            Some("https://example.com/auth")
        );
        for issuer in ["taskgate", "https://", "https://a.example?x=1", "ftp://a"] {
            assert_eq!(issuer_url(issuer), None, "{issuer}");
        }
    }
}

//! Asymmetric signing keys over HTTP: the JWK Set and the server metadata,
//! tokens verified elsewhere with only the JWKS, rotation, and tokens of the
//! wrong algorithm or of an unknown key.
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use taskgate::auth::keys::{self, GeneratedKey};
use taskgate::config::{JwtAlgorithm, Settings};
use taskgate::domain::Role;

use crate::helpers::{
    assert_error, decode_jwt_parts, spawn_app, spawn_app_with, spawn_on, test_settings, TestApp,
};

fn new_key(algorithm: JwtAlgorithm) -> GeneratedKey {
    keys::generate(algorithm).expect("a new key")
}

fn public(key: &GeneratedKey) -> String {
    key.public.clone().expect("a public key")
}

/// Settings that sign with `key`, keeping `previous` public keys for verification.
fn sign_with(
    settings: &mut Settings,
    algorithm: JwtAlgorithm,
    key: &GeneratedKey,
    previous: &[String],
) {
    settings.jwt.algorithm = algorithm;
    settings.jwt.private_key = Some(secrecy::SecretString::from(key.private.clone()));
    settings.jwt.previous_public_keys = previous.to_vec();
}

impl TestApp {
    /// `GET /.well-known/jwks.json`, asserting the caching a verifier relies on.
    async fn jwks(&self) -> JwkSet {
        let resp = self.get("/.well-known/jwks.json").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
        resp.json().await.expect("a JWK Set")
    }

    fn kids(jwks: &JwkSet) -> Vec<String> {
        jwks.keys
            .iter()
            .map(|k| k.common.key_id.clone().expect("every key has a kid"))
            .collect()
    }
}

/// Verifies `token` as another service would: the key from the JWKS by `kid`,
/// the algorithm pinned, `iss`, `aud` and `exp` checked.
fn verify_with_jwks(jwks: &JwkSet, token: &str, algorithm: Algorithm) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&["taskgate"]);
    validation.set_audience(&["taskgate"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn an_hs256_service_publishes_an_empty_key_set_never_its_secret() {
    let app = spawn_app().await;
    let resp = app.get("/.well-known/jwks.json").await;
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "keys": [] }));
}

#[tokio::test]
async fn an_asymmetric_service_signs_with_its_key_and_publishes_only_the_public_half() {
    for (algorithm, alg, kty, crv) in [
        (JwtAlgorithm::EdDSA, Algorithm::EdDSA, "OKP", "Ed25519"),
        (JwtAlgorithm::ES256, Algorithm::ES256, "EC", "P-256"),
    ] {
        let key = new_key(algorithm);
        let app = spawn_app_with(|s| sign_with(s, algorithm, &key, &[])).await;
        let ada = app.signup_and_login(Role::User).await;

        let (header, claims) = decode_jwt_parts(&ada.access);
        assert_eq!(header["alg"], alg_name(alg));
        assert_eq!(header["kid"], key.kid.as_str());
        // Twice: the second is answered from the verified-token cache.
        for _ in 0..2 {
            assert_eq!(app.me(&ada.access).await.status(), StatusCode::OK);
        }

        let raw: Value = app
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap();
        let published = &raw["keys"][0];
        assert_eq!(raw["keys"].as_array().map(Vec::len), Some(1), "{raw}");
        assert_eq!(published["kty"], kty);
        assert_eq!(published["crv"], crv);
        assert_eq!(published["alg"], alg_name(alg));
        assert_eq!(published["use"], "sig");
        assert_eq!(published["kid"], key.kid.as_str());
        assert!(published.get("d").is_none(), "never the private key: {raw}");

        let verified = verify_with_jwks(&app.jwks().await, &ada.access, alg).expect("verifies");
        assert_eq!(verified, claims);
        assert_eq!(verified["type"], "access");

        // Refresh tokens are signed the same way, and a rotation works.
        let resp = app
            .post_json(
                "/refresh",
                &serde_json::json!({ "refresh_token": ada.refresh }),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let pair: Value = resp.json().await.unwrap();
        let (header, _) = decode_jwt_parts(pair["refresh_token"].as_str().unwrap());
        assert_eq!(header["kid"], key.kid.as_str());
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        _ => "HS256",
    }
}

#[tokio::test]
async fn after_a_rotation_old_tokens_pass_until_the_old_key_is_dropped() {
    let (old, new) = (new_key(JwtAlgorithm::EdDSA), new_key(JwtAlgorithm::EdDSA));
    let app = spawn_app_with(|s| sign_with(s, JwtAlgorithm::EdDSA, &old, &[])).await;
    let ada = app.signup_and_login(Role::User).await;

    // Deployed with the new key and the old public key: old tokens still pass
    // taskgate's own routes, and verifiers still find the old key.
    let mut rotated = test_settings(&app.db().url);
    sign_with(&mut rotated, JwtAlgorithm::EdDSA, &new, &[public(&old)]);
    let rotated = spawn_on(rotated).await;
    assert_eq!(rotated.me(&ada.access).await.status(), StatusCode::OK);
    let jwks = rotated.jwks().await;
    assert_eq!(TestApp::kids(&jwks), vec![new.kid.clone(), old.kid.clone()]);
    verify_with_jwks(&jwks, &ada.access, Algorithm::EdDSA).expect("the old token verifies");
    // The old refresh token turns into a pair signed by the new key.
    let pair: Value = rotated
        .post_json(
            "/refresh",
            &serde_json::json!({ "refresh_token": ada.refresh }),
        )
        .await
        .json()
        .await
        .unwrap();
    let fresh = pair["access_token"]
        .as_str()
        .expect("a new access token")
        .to_owned();
    assert_eq!(decode_jwt_parts(&fresh).0["kid"], new.kid.as_str());

    // The old key dropped: its tokens are refused here and cannot be verified elsewhere.
    let old_token = app.signup_and_login(Role::User).await.access;
    let mut dropped = test_settings(&app.db().url);
    sign_with(&mut dropped, JwtAlgorithm::EdDSA, &new, &[]);
    let dropped = spawn_on(dropped).await;
    assert_error(
        dropped.me(&old_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let jwks = dropped.jwks().await;
    assert_eq!(TestApp::kids(&jwks), vec![new.kid.clone()]);
    assert!(verify_with_jwks(&jwks, &old_token, Algorithm::EdDSA).is_err());
    assert_eq!(dropped.me(&fresh).await.status(), StatusCode::OK);
}

/// A token for `claims` with this header and key.
fn forge(claims: &Value, alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("encodes")
}

fn ed_key(key: &GeneratedKey) -> EncodingKey {
    EncodingKey::from_ed_pem(key.private.as_bytes()).expect("an Ed25519 key")
}

#[tokio::test]
async fn an_eddsa_service_refuses_hs256_tokens_made_from_its_public_key_and_unknown_keys() {
    let key = new_key(JwtAlgorithm::EdDSA);
    let app = spawn_app_with(|s| sign_with(s, JwtAlgorithm::EdDSA, &key, &[])).await;
    let ada = app.signup_and_login(Role::User).await;
    let (_, claims) = decode_jwt_parts(&ada.access);
    let jwks = app.jwks().await;
    let x = match &jwks.keys[0].algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => p.x.clone(),
        other => panic!("an Ed25519 JWK, not {other:?}"),
    };
    let stranger = new_key(JwtAlgorithm::EdDSA);
    let public_pem = public(&key);
    let cases = [
        // The classic confusion: the public key's bytes as an HMAC secret.
        (
            forge(
                &claims,
                Algorithm::HS256,
                &key.kid,
                &EncodingKey::from_secret(public_pem.as_bytes()),
            ),
            "HS256 keyed with the public PEM",
        ),
        (
            forge(
                &claims,
                Algorithm::HS256,
                &key.kid,
                &EncodingKey::from_secret(x.as_bytes()),
            ),
            "HS256 keyed with the JWK's x",
        ),
        // Signed by another key, under our kid or under its own.
        (
            forge(&claims, Algorithm::EdDSA, &key.kid, &ed_key(&stranger)),
            "another key under our kid",
        ),
        (
            forge(&claims, Algorithm::EdDSA, &stranger.kid, &ed_key(&stranger)),
            "a kid that names no key",
        ),
    ];
    for (token, what) in cases {
        let resp = app.me(&token).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    // The real token still works: the refusals were about the forgeries.
    assert_eq!(app.me(&ada.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_hs256_service_refuses_eddsa_tokens() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (header, claims) = decode_jwt_parts(&ada.access);
    let hs_kid = header["kid"].as_str().unwrap();
    let ed = new_key(JwtAlgorithm::EdDSA);
    for kid in [hs_kid, ed.kid.as_str()] {
        let token = forge(&claims, Algorithm::EdDSA, kid, &ed_key(&ed));
        assert_error(
            app.me(&token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
}

#[tokio::test]
async fn the_server_metadata_says_where_tokens_and_keys_are() {
    let app = spawn_app().await;
    let resp = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(resp.status(), StatusCode::OK);
    // Built from the request's host when jwt.issuer is not a URL: not cacheable.
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(meta["issuer"], "taskgate");
    assert_eq!(meta["token_endpoint"], format!("{}/token", app.address));
    assert_eq!(
        meta["jwks_uri"],
        format!("{}/.well-known/jwks.json", app.address)
    );
    assert_eq!(
        meta["grant_types_supported"],
        serde_json::json!(["password", "refresh_token"])
    );
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none"])
    );
    assert_eq!(meta["response_types_supported"], serde_json::json!([]));
    // What it names is served.
    assert_eq!(
        app.get("/.well-known/jwks.json").await.status(),
        StatusCode::OK
    );
    // No OpenID Connect: we would have to claim ID tokens and endpoints we lack.
    assert_error(
        app.get("/.well-known/openid-configuration").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // An https issuer (as RFC 8414 asks) is the base of every URL, and the tokens' iss.
    let issuer = "https://auth.example.com";
    let app = spawn_app_with(|s| s.jwt.issuer = format!("{issuer}/")).await;
    let resp = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(meta["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(meta["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    let ada = app.signup_and_login(Role::User).await;
    assert_eq!(decode_jwt_parts(&ada.access).1["iss"], meta["issuer"]);
}

/// The metadata's URLs believe forwarding headers only from a trusted proxy,
/// and never a scheme other than http(s) or a host that is not one.
#[tokio::test]
async fn the_server_metadata_believes_forwarding_headers_only_from_trusted_proxies() {
    async fn token_endpoint(app: &crate::helpers::TestApp, headers: &[(&str, &str)]) -> Value {
        let mut request = app.request(
            reqwest::Method::GET,
            "/.well-known/oauth-authorization-server",
        );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let meta: Value = request.send().await.unwrap().json().await.unwrap();
        meta["token_endpoint"].clone()
    }
    let forged = [
        ("x-forwarded-host", "attacker.example"),
        ("x-forwarded-proto", "javascript"),
        ("forwarded", "host=attacker.example;proto=https"),
    ];
    // 127.0.0.1 is no proxy of ours: the request's own Host and plain http.
    let app = spawn_app().await;
    let own = format!("{}/token", app.address);
    assert_eq!(token_endpoint(&app, &forged).await, own.as_str());

    // Behind our proxy: its headers are believed, but only http(s) and a real host.
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = taskgate::domain::TrustedProxies::parse(&["127.0.0.1"]).unwrap()
    })
    .await;
    let proxied = [
        ("x-forwarded-host", "api.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    assert_eq!(
        token_endpoint(&app, &proxied).await,
        "https://api.example.com/token"
    );
    let odd = [
        ("x-forwarded-host", "api.example.com"),
        ("x-forwarded-proto", "javascript"),
    ];
    assert_eq!(
        token_endpoint(&app, &odd).await,
        "http://api.example.com/token"
    );
    let not_a_host = [("x-forwarded-host", "evil.example/path?x=1")];
    let answer = token_endpoint(&app, &not_a_host).await;
    assert!(!answer.as_str().unwrap().contains("evil"), "{answer}");

    // With server.public_url, every URL starts with it, whatever the headers.
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = taskgate::domain::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        s.server.public_url = Some("https://auth.example.com/tg".into());
    })
    .await;
    let resp = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(meta["token_endpoint"], "https://auth.example.com/tg/token");
    assert_eq!(
        meta["jwks_uri"],
        "https://auth.example.com/tg/.well-known/jwks.json"
    );
    assert_eq!(
        token_endpoint(&app, &proxied).await,
        "https://auth.example.com/tg/token"
    );
}

/// An ES256 signature (r, s) verifies as (r, n − s) too: every token the
/// service signs carries the low `s`, and the high form of any token is
/// refused, so no token has a second spelling.
#[tokio::test]
async fn es256_signatures_are_low_s_and_the_high_twin_is_refused() {
    use base64::Engine;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::pkcs8::DecodePublicKey;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let key = new_key(JwtAlgorithm::ES256);
    let app = spawn_app_with(|s| sign_with(s, JwtAlgorithm::ES256, &key, &[])).await;
    let ada = app.signup_and_login(Role::User).await;
    let mut tokens = vec![ada.access.clone(), ada.refresh.clone()];
    for _ in 0..12 {
        let pair: Value = app
            .login(&ada.email, crate::helpers::PASSWORD)
            .await
            .json()
            .await
            .unwrap();
        tokens.push(pair["access_token"].as_str().unwrap().to_owned());
    }
    let signature_of = |token: &str| {
        let sig = token.rsplit('.').next().unwrap();
        Signature::from_slice(&b64.decode(sig).unwrap()).unwrap()
    };
    for token in &tokens {
        assert!(
            signature_of(token).normalize_s().is_none(),
            "a high-s signature"
        );
    }

    let verifying = VerifyingKey::from_public_key_pem(&public(&key)).unwrap();
    let high_twin = |token: &str| {
        let (message, _) = token.rsplit_once('.').unwrap();
        let (r, s) = signature_of(token).split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap();
        verifying
            .verify(message.as_bytes(), &high)
            .expect("the twin is a valid ECDSA signature");
        format!("{message}.{}", b64.encode(high.to_bytes()))
    };
    let forged = high_twin(&ada.access);
    assert_ne!(forged, ada.access);
    assert_error(
        app.me(&forged).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_eq!(app.me(&ada.access).await.status(), StatusCode::OK);
    let resp = app
        .post_json(
            "/refresh",
            &serde_json::json!({ "refresh_token": high_twin(&ada.refresh) }),
        )
        .await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // Refused before the database: the session is not treated as reused.
    let resp = app
        .post_json(
            "/refresh",
            &serde_json::json!({ "refresh_token": ada.refresh }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

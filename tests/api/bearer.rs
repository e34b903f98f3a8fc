//! The bearer middleware: RFC 6750 answers and every kind of rejected token.
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::{assert_error, decode_jwt_parts, spawn_app, spawn_on, test_settings, TestApp};

async fn assert_bad_token(app: &TestApp, token: &str, why: &str) {
    let resp = app.me(token).await;
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some(r#"Bearer error="invalid_token", error_description="Could not validate credentials""#),
        "{why}"
    );
    let body = assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(body["detail"], "Could not validate credentials", "{why}");
}

/// Signs `claims` as the server would (same secret and kid), with `alg`.
fn forge(app: &TestApp, alg: Algorithm, claims: &Value, secret: Option<&str>) -> String {
    let real = app.settings.jwt.signing_secret();
    let mut header = Header::new(alg);
    header.kid = Some(taskgate::auth::keys::secret_key_id(real));
    encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.unwrap_or(real).as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn no_header_is_401_not_authenticated_with_a_bare_challenge() {
    let app = spawn_app().await;
    let resp = app.get("/users/me").await;
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body = assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(body["detail"], "Not authenticated");
}

#[tokio::test]
async fn a_token_in_the_query_string_is_not_accepted() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let resp = app
        .get(&format!("/users/me?access_token={}", ada.access))
        .await;
    let body = assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(body["detail"], "Not authenticated");
}

#[tokio::test]
async fn an_expired_token_says_token_expired() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (_, mut claims) = decode_jwt_parts(&ada.access);
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now - 1000);
    claims["exp"] = json!(now - 1);
    let resp = app.me(&forge(&app, Algorithm::HS256, &claims, None)).await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="Token expired""#
    );
    let body = assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(body["detail"], "Token expired");
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_all_refused_alike() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (header, claims) = decode_jwt_parts(&ada.access);
    // The genuine claims, re-signed correctly, pass: the forgeries below fail for their one flaw.
    assert_eq!(
        app.me(&forge(&app, Algorithm::HS256, &claims, None))
            .await
            .status(),
        StatusCode::OK
    );

    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut none_header = header.clone();
    none_header["alg"] = json!("none");
    let alg_none = format!("{}.{}.", b64(&none_header), b64(&claims));

    let without = |key: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(key);
        forge(&app, Algorithm::HS256, &c, None)
    };
    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        forge(&app, Algorithm::HS256, &c, None)
    };
    let parts: Vec<&str> = ada.access.split('.').collect();
    let mut tampered_claims = claims.clone();
    tampered_claims["role"] = json!("admin");
    tampered_claims["sub"] = json!("999");
    let tampered = format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]);
    let mut unknown_kid = Header::new(Algorithm::HS256);
    unknown_kid.kid = Some("0000000000000000".into());
    let unknown_kid = encode(
        &unknown_kid,
        &claims,
        &EncodingKey::from_secret(app.settings.jwt.signing_secret().as_bytes()),
    )
    .unwrap();

    let cases: Vec<(String, &str)> = vec![
        (alg_none, "alg none"),
        (
            forge(&app, Algorithm::HS512, &claims, None),
            "HS512 with the right secret",
        ),
        (
            forge(&app, Algorithm::HS384, &claims, None),
            "HS384 with the right secret",
        ),
        (
            forge(
                &app,
                Algorithm::HS256,
                &claims,
                Some("another-secret-of-at-least-32-bytes!!"),
            ),
            "wrong secret",
        ),
        (without("exp"), "missing exp"),
        (without("sub"), "missing sub"),
        (without("sid"), "missing sid"),
        (without("type"), "missing type"),
        (with("iss", json!("someone-else")), "wrong issuer"),
        (with("aud", json!("someone-else")), "wrong audience"),
        (with("sub", json!("not-a-number")), "non-numeric sub"),
        (
            with("sid", json!(uuid::Uuid::new_v4())),
            "a session that does not exist",
        ),
        (
            with("sub", json!("999999")),
            "another (missing) user with this session",
        ),
        (tampered, "tampered payload"),
        (unknown_kid, "unknown kid"),
        (ada.refresh.clone(), "refresh token used as an access token"),
        ("garbage".into(), "garbage"),
        ("a.b.c".into(), "three garbage parts"),
        (format!("{}x", ada.access), "extra characters"),
    ];
    for (token, why) in &cases {
        assert_bad_token(&app, token, why).await;
    }
}

#[tokio::test]
async fn a_non_bearer_authorization_header_is_an_invalid_token() {
    let app = spawn_app().await;
    let resp = app
        .request(reqwest::Method::GET, "/users/me")
        .basic_auth("ada", Some("pw"))
        .send()
        .await
        .unwrap();
    let body = assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(body["detail"], "Could not validate credentials");
}

#[tokio::test]
async fn revoked_sessions_disabled_and_deleted_users_lose_access_at_once() {
    let app = spawn_app().await;
    let (ada, bob, cyd) = (
        app.signup_and_login(Role::User).await,
        app.signup_and_login(Role::User).await,
        app.signup_and_login(Role::User).await,
    );
    for user in [&ada, &bob, &cyd] {
        assert_eq!(app.me(&user.access).await.status(), StatusCode::OK);
    }
    app.sql(&format!(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = {}",
        ada.id
    ));
    app.sql(&format!(
        "UPDATE users SET disabled = true WHERE id = {}",
        bob.id
    ));
    app.sql(&format!("DELETE FROM users WHERE id = {}", cyd.id));
    assert_bad_token(&app, &ada.access, "revoked session").await;
    assert_bad_token(&app, &bob.access, "disabled user").await;
    assert_bad_token(&app, &cyd.access, "deleted user").await;
}

#[tokio::test]
async fn an_expired_session_ends_access_even_before_the_token_expires() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    app.sql("UPDATE sessions SET expires_at = now() - interval '1 second'");
    assert_bad_token(&app, &ada.access, "session past its absolute end").await;
}

#[tokio::test]
async fn tokens_signed_with_a_previous_secret_still_verify_after_rotation() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let old_secret = app.settings.jwt.signing_secret().to_owned();

    // A second instance on the same database, rotated: new secret, old one kept for verification.
    let mut rotated = test_settings(&app.db().url);
    rotated.jwt.previous_secrets = vec![secrecy::SecretString::from(old_secret)];
    let rotated = spawn_on(rotated).await;
    assert_eq!(rotated.me(&ada.access).await.status(), StatusCode::OK);
    // It signs with its new secret, under a new kid.
    let fresh: Value = rotated
        .login(&ada.email, &ada.password)
        .await
        .json()
        .await
        .unwrap();
    let (new_header, _) = decode_jwt_parts(fresh["access_token"].as_str().unwrap());
    let (old_header, _) = decode_jwt_parts(&ada.access);
    assert_ne!(new_header["kid"], old_header["kid"]);

    // Once the old secret is dropped, its tokens stop working.
    let forgotten = spawn_on(test_settings(&app.db().url)).await;
    assert_bad_token(&forgotten, &ada.access, "secret no longer configured").await;
}

#[tokio::test]
async fn an_authenticated_request_costs_exactly_one_database_round_trip() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    app.me(&ada.access).await;
    let before = app.queries.get();
    for _ in 0..10 {
        assert_eq!(app.me(&ada.access).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.queries.get() - before,
        10,
        "user, session and role in one query"
    );
    // A task list adds one (the page, which tells its total when not full), not another for auth.
    app.sql(&format!(
        "INSERT INTO tasks (owner_id, title) VALUES ({0}, 'a'), ({0}, 'b')",
        ada.id
    ));
    let before = app.queries.get();
    let resp = app.get_with("/tasks", &ada.access).await;
    assert_eq!(resp.headers()["x-total-count"], "2");
    assert_eq!(app.queries.get() - before, 2);
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_letter_case() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    for scheme in ["bearer", "BEARER", "BeArEr", "Bearer"] {
        let resp = app
            .request(reqwest::Method::GET, "/users/me")
            .header("authorization", format!("{scheme} {}", ada.access))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "scheme {scheme}");
        assert_eq!(resp.json::<Value>().await.unwrap()["id"], ada.id);
    }
    // Any case of the scheme, but still a bad token when the token is bad.
    let resp = app
        .request(reqwest::Method::GET, "/users/me")
        .header("authorization", "bearer not-a-token")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

/// Signs `claims` with the server's secret and kid under `header`.
fn forge_with_header(app: &TestApp, header: &Header, claims: &Value) -> String {
    let secret = app.settings.jwt.signing_secret();
    encode(header, claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn tokens_that_the_jwt_rfcs_say_to_refuse_are_refused() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (_, claims) = decode_jwt_parts(&ada.access);
    let kid = taskgate::auth::keys::secret_key_id(app.settings.jwt.signing_secret());
    let header = || {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        h
    };
    // The control: our own header and claims, re-signed, pass.
    assert_eq!(
        app.me(&forge_with_header(&app, &header(), &claims))
            .await
            .status(),
        StatusCode::OK
    );

    let mut not_yet = claims.clone();
    not_yet["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
    assert_bad_token(
        &app,
        &forge_with_header(&app, &header(), &not_yet),
        "nbf ahead",
    )
    .await;
    let mut already = claims.clone();
    already["nbf"] = json!(chrono::Utc::now().timestamp() - 10);
    assert_eq!(
        app.me(&forge_with_header(&app, &header(), &already))
            .await
            .status(),
        StatusCode::OK,
        "an nbf in the past is fine"
    );

    let mut crit = header();
    crit.crit = Some(vec!["exp".into()]);
    assert_bad_token(&app, &forge_with_header(&app, &crit, &claims), "crit").await;

    for typ in [Some("refresh"), Some("at+jwt"), None] {
        let mut typed = header();
        typed.typ = typ.map(str::to_owned);
        assert_bad_token(&app, &forge_with_header(&app, &typed, &claims), "typ").await;
    }

    for sub in [
        format!("+{}", ada.id),
        format!("0{}", ada.id),
        format!(" {}", ada.id),
        "0".into(),
        "-1".into(),
    ] {
        let mut odd = claims.clone();
        odd["sub"] = json!(sub);
        assert_bad_token(&app, &forge_with_header(&app, &header(), &odd), &sub).await;
    }
}

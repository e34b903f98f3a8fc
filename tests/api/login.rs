//! POST /token and POST /login: the OAuth2 password grant.
use reqwest::multipart;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use taskgate::domain::Role;

use crate::helpers::{assert_error, decode_jwt_parts, spawn_app, PASSWORD};

#[tokio::test]
async fn urlencoded_and_multipart_logins_on_token_and_login_return_a_pair() {
    let app = spawn_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    for path in ["/token", "/login"] {
        let urlencoded = app
            .post_form(
                path,
                &[("username", "ada@example.com"), ("password", PASSWORD)],
            )
            .await;
        let form = multipart::Form::new()
            .text("username", "ada@example.com")
            .text("password", PASSWORD);
        let multipart = app
            .request(Method::POST, path)
            .multipart(form)
            .send()
            .await
            .unwrap();
        for resp in [urlencoded, multipart] {
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert_eq!(resp.headers()["cache-control"], "no-store");
            assert_eq!(resp.headers()["pragma"], "no-cache");
            let pair: Value = resp.json().await.unwrap();
            assert_eq!(pair["token_type"], "bearer");
            assert_eq!(pair["expires_in"], 900);
            assert!(pair["access_token"].is_string() && pair["refresh_token"].is_string());
        }
    }
    assert_eq!(
        app.count("SELECT count(*) FROM sessions"),
        4,
        "one session per login"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'login_succeeded'"),
        4
    );
}

#[tokio::test]
async fn a_login_opens_a_session_with_ip_and_user_agent() {
    let app = spawn_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    let resp = app
        .request(Method::POST, "/token")
        .header("user-agent", "curl/8.0")
        .form(&[("username", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let pair: Value = resp.json().await.unwrap();
    let (_, claims) = decode_jwt_parts(pair["access_token"].as_str().unwrap());
    let sid = claims["sid"].as_str().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM sessions WHERE id = '{sid}' AND ip = '127.0.0.1' AND user_agent = 'curl/8.0'
               AND revoked_at IS NULL AND expires_at > now() + interval '29 days'"
        )),
        1
    );
}

#[tokio::test]
async fn the_tokens_carry_exactly_the_contract_claims() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;

    let (header, access) = decode_jwt_parts(&ada.access);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "JWT");
    let kid = header["kid"].as_str().unwrap();
    assert!(
        kid.len() >= 8 && !app.settings.jwt.signing_secret().contains(kid),
        "kid is a fingerprint"
    );

    let mut keys: Vec<&str> = access
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["aud", "exp", "iat", "iss", "jti", "role", "sid", "sub", "type"]
    );
    assert_eq!(access["sub"], ada.id.to_string());
    assert_eq!(access["type"], "access");
    assert_eq!(access["role"], "user");
    assert_eq!(
        (access["iss"].as_str(), access["aud"].as_str()),
        (Some("taskgate"), Some("taskgate"))
    );
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        900
    );
    uuid::Uuid::parse_str(access["jti"].as_str().unwrap()).expect("jti is a UUID");
    let sid = access["sid"].as_str().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM sessions WHERE id = '{sid}' AND user_id = {}",
            ada.id
        )),
        1
    );

    let (_, refresh) = decode_jwt_parts(&ada.refresh);
    assert_eq!(refresh["type"], "refresh");
    assert_eq!(refresh["sid"], access["sid"]);
    assert!(refresh.get("role").is_none());
    assert_ne!(refresh["jti"], access["jti"]);
    assert_eq!(
        refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap(),
        604_800
    );

    for token in [&ada.access, &ada.refresh] {
        let payload = decode_jwt_parts(token).1.to_string();
        assert!(
            !payload.contains(&ada.email) && !payload.contains(PASSWORD),
            "personal data in {payload}"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    let mut bodies = Vec::new();
    for (user, pass) in [
        ("ada@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("ada@example.com", &"x".repeat(100)),
    ] {
        let resp = app.login(user, pass).await;
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let body = assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
        assert_eq!(body["detail"], "Incorrect email or password");
        assert_eq!(body["error_description"], "Incorrect email or password");
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical bodies: {bodies:?}"
    );

    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_failed' AND actor_id IS NULL
               AND subject_id IS NULL AND detail->>'email' = 'nobody@example.com' AND ip = '127.0.0.1'"
        ),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'login_failed' AND subject_id IS NOT NULL"),
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE detail::text LIKE '%{PASSWORD}%'"
        )),
        0
    );

    // A password typed into the username field never reaches the audit log.
    let typo = "Tr0ub4dor&3-in-the-wrong-field";
    assert_eq!(
        app.login(typo, typo).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE detail::text LIKE '%{typo}%'"
        )),
        0
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_failed' AND actor_id IS NULL
               AND detail->>'email' IS NULL AND detail->>'username' = 'not an email'"
        ),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM sessions"), 0);
}

#[tokio::test]
async fn the_username_is_normalised_like_signup() {
    let app = spawn_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    assert_eq!(
        app.login("  ADA@Example.com ", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_missing_username_or_password_is_422_with_fields() {
    let app = spawn_app().await;
    let body = assert_error(
        app.post_form("/token", &[]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert_eq!(body["fields"]["username"], "field required");
    assert_eq!(body["fields"]["password"], "field required");
    let body = assert_error(
        app.post_form("/token", &[("username", "a@example.com")])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert!(body["fields"].get("username").is_none());
    assert_eq!(body["fields"]["password"], "field required");
}

#[tokio::test]
async fn json_to_token_is_415_with_a_hint_to_send_form_data() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/token",
            &serde_json::json!({"username": "a@example.com", "password": PASSWORD}),
        )
        .await;
    let body = assert_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("curl -d"),
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_grant_type_is_400_unsupported_grant_type() {
    let app = spawn_app().await;
    let resp = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("username", "a@example.com"),
                ("password", "x"),
            ],
        )
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
}

#[tokio::test]
async fn client_fields_scope_and_basic_auth_are_ignored() {
    let app = spawn_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    let resp = app
        .request(Method::POST, "/token")
        .basic_auth("my-client", Some("client-secret"))
        .form(&[
            ("grant_type", "password"),
            ("username", "ada@example.com"),
            ("password", PASSWORD),
            ("scope", "read write"),
            ("client_id", "my-client"),
            ("client_secret", "client-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_disabled_account_is_403_with_the_right_password_and_401_with_a_wrong_one() {
    let app = spawn_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    app.sql("UPDATE users SET disabled = true");
    assert_error(
        app.login("ada@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "account_disabled",
    )
    .await;
    assert_error(
        app.login("ada@example.com", "wrong password!").await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM sessions"), 0);
}

#[tokio::test]
async fn an_oversized_or_malformed_form_is_refused() {
    let app = spawn_app().await;
    let big = "x".repeat(70_000);
    let resp = app
        .post_form(
            "/token",
            &[("username", "a@example.com"), ("password", &big)],
        )
        .await;
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let resp = app
        .request(Method::POST, "/token")
        .header("content-type", "multipart/form-data; boundary=zzz")
        .body("--zzz\r\nnonsense")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

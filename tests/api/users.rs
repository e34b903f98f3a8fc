//! POST /users/signup, GET /users/me, GET /me, PATCH /users/me.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::{assert_error, spawn_app, PASSWORD};

#[tokio::test]
async fn signup_creates_a_user_and_never_returns_a_hash() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/users/signup",
            &json!({"email": "  Ada@Example.COM ", "password": PASSWORD, "full_name": " Ada Lovelace "}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "disabled",
            "email",
            "full_name",
            "id",
            "mfa_enabled",
            "role"
        ]
    );
    assert_eq!(body["mfa_enabled"], false);
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["full_name"], "Ada Lovelace");
    assert_eq!(body["role"], "user");
    assert_eq!(body["disabled"], false);
    let created = body["created_at"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == 20,
        "RFC 3339 UTC to the second: {created}"
    );

    let id = body["id"].as_i64().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM users WHERE id = {id} AND password_hash LIKE '$2%'"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'signup' AND actor_id = {id} AND subject_id = {id}"
        )),
        1
    );
}

#[tokio::test]
async fn a_second_signup_with_the_same_email_is_409_in_any_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.signup("ada@example.com", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    assert_error(
        app.signup("ADA@example.com", PASSWORD).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM users"), 1);
}

#[tokio::test]
async fn a_role_in_the_signup_body_is_422_and_grants_nothing() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/users/signup",
            &json!({"email": "eve@example.com", "password": PASSWORD, "role": "admin"}),
        )
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert_eq!(body["fields"]["role"], "unknown field");
    assert_eq!(app.count("SELECT count(*) FROM users"), 0);
}

#[tokio::test]
async fn signup_rules_give_422_naming_each_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
            "valid email",
        ),
        (
            json!({"email": "", "password": PASSWORD}),
            "email",
            "required",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
            "at least 8",
        ),
        (
            json!({"email": "a@example.com", "password": "x".repeat(73)}),
            "password",
            "72 bytes",
        ),
        // 25 three-byte characters: 25 characters, 75 bytes.
        (
            json!({"email": "a@example.com", "password": "€".repeat(25)}),
            "password",
            "72 bytes",
        ),
        (
            json!({"email": "a@example.com", "password": "password1"}),
            "password",
            "common",
        ),
        (
            json!({"email": "a@example.com", "password": "Qwerty123"}),
            "password",
            "common",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "full_name": "n".repeat(201)}),
            "full_name",
            "200",
        ),
        (json!({"password": PASSWORD}), "email", "required"),
        (json!({"email": "a@example.com"}), "password", "required"),
    ];
    for (body, field, says) in cases {
        let resp = app.post_json("/users/signup", &body).await;
        let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
        let message = err["fields"][field].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {err}");
    }
    assert_eq!(app.count("SELECT count(*) FROM users"), 0);
}

#[tokio::test]
async fn a_72_byte_password_is_accepted_whole_and_not_truncated() {
    let app = spawn_app().await;
    let password = format!("{}{}", "k".repeat(70), "zq");
    assert_eq!(
        app.signup("long@example.com", &password).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.login("long@example.com", &password).await.status(),
        StatusCode::OK
    );
    // bcrypt reads 72 bytes; with truncation these would match.
    let almost = format!("{}{}", "k".repeat(70), "zz");
    assert_eq!(
        app.login("long@example.com", &almost).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let longer = format!("{password}extra");
    assert_eq!(
        app.login("long@example.com", &longer).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn malformed_huge_and_non_json_signups_get_their_error_codes() {
    let app = spawn_app().await;
    let send = |body: String, content_type: &'static str| {
        app.request(Method::POST, "/users/signup")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        send("{\"email\":".into(), "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let huge = format!(
        r#"{{"email": "a@example.com", "password": "{}"}}"#,
        "x".repeat(70_000)
    );
    assert_error(
        send(huge, "application/json").await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_error(
        send(
            "email=a@example.com".into(),
            "application/x-www-form-urlencoded",
        )
        .await
        .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn me_and_users_me_return_the_caller() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    for path in ["/users/me", "/me"] {
        let resp = app.get_with(path, &ada.access).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["id"], ada.id);
        assert_eq!(body["email"], ada.email.as_str());
        assert!(body.get("password_hash").is_none());
    }
}

#[tokio::test]
async fn patch_me_changes_only_the_name() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let patch = |body: Value| {
        app.request(Method::PATCH, "/users/me")
            .bearer_auth(&ada.access)
            .json(&body)
            .send()
    };

    let body: Value = patch(json!({"full_name": "  Ada  "}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["full_name"], "Ada");
    let body: Value = patch(json!({})).await.unwrap().json().await.unwrap();
    assert_eq!(body["full_name"], "Ada", "an absent field is left alone");
    let body: Value = patch(json!({"full_name": null}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["full_name"], Value::Null);

    let resp = patch(json!({"role": "admin"})).await.unwrap();
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    let resp = patch(json!({"full_name": "n".repeat(201)})).await.unwrap();
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert_eq!(app.role_of(ada.id), Role::User);

    let resp = app
        .request(Method::PATCH, "/users/me")
        .json(&json!({"full_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn an_email_domain_is_one_mailbox_however_it_is_spelt() {
    let app = spawn_app().await;
    let resp = app.signup("Ada@EXÄMPLE.com", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["email"], "ada@xn--exmple-cua.com");
    let resp = app.signup("ada@xn--exmple-cua.com", PASSWORD).await;
    assert_error(resp, StatusCode::CONFLICT, "conflict").await;
    for spelling in ["ada@exämple.com", "ADA@xn--exmple-cua.com"] {
        assert_eq!(
            app.login(spelling, PASSWORD).await.status(),
            StatusCode::OK,
            "{spelling}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM users"), 1);
}

#[tokio::test]
async fn address_literals_and_single_label_domains_are_refused() {
    let app = spawn_app().await;
    for email in [
        "user@[127.0.0.1]",
        "user@[IPv6:::1]",
        "user@localhost",
        "user@internal",
    ] {
        let resp = app.signup(email, PASSWORD).await;
        let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
        assert!(body["fields"]["email"].is_string(), "{email}: {body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM users"), 0);
}

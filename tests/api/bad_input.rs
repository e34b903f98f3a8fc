//! The bad-input catalogue: each malformed, oversized or hostile input gets the
//! clear 4xx of docs/API.md, never a 5xx, and writes nothing.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::{assert_error, spawn_app, TestApp, TestUser, PASSWORD};

async fn raw(
    app: &TestApp,
    who: Option<&TestUser>,
    method: Method,
    path: &str,
    ct: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = app.request(method, path).body(body);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    if let Some(who) = who {
        req = req.bearer_auth(&who.access);
    }
    req.send().await.unwrap()
}

/// (method, path, content type, body, expected status, expected code)
type Case = (
    Method,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    StatusCode,
    &'static str,
);

#[tokio::test]
async fn malformed_wrong_type_and_oversized_bodies() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let json = Some("application/json");
    let cases: Vec<Case> = vec![
        // serde's structs also read arrays; a body must be an object (schemathesis found this).
        (
            Method::PATCH,
            "/users/me",
            json,
            b"[]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            Method::PATCH,
            "/users/me",
            json,
            b"[null]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            Method::POST,
            "/refresh",
            json,
            b"[\"token\"]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            Method::POST,
            "/tasks",
            json,
            b"{\"title\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/tasks",
            json,
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/tasks",
            json,
            b"{\"title\": \"a\", \"title\": \"b\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            Method::POST,
            "/tasks",
            json,
            b"[\"title\"]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            Method::POST,
            "/tasks",
            json,
            b"\"just a string\"".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        // Deeply nested JSON: refused by type (no field takes arrays) before any depth matters.
        (
            Method::POST,
            "/tasks",
            json,
            format!(
                "{{\"title\": \"a\", \"description\": {}{}}}",
                "[".repeat(5_000),
                "]".repeat(5_000)
            )
            .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            Method::POST,
            "/tasks",
            json,
            "[".repeat(10_000).into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            Method::POST,
            "/tasks",
            json,
            b"{\"title\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/tasks",
            json,
            format!("{{\"title\": \"{}\"}}", "x".repeat(1 << 20)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::POST,
            "/tasks",
            Some("text/plain"),
            b"{\"title\": \"a\"}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/tasks",
            Some("application/x-www-form-urlencoded"),
            b"title=a".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/tasks",
            None,
            b"{\"title\": \"a\"}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/users/signup",
            json,
            b"{\"email\": 1e999}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/refresh",
            json,
            b"{\"refresh_token\": null}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
        ),
        (
            Method::POST,
            "/token",
            Some("application/x-www-form-urlencoded"),
            vec![b'a'; 70_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::POST,
            "/token",
            Some("text/plain"),
            b"username=a".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (method, path, ct, body, status, code) in cases {
        let what = format!(
            "{method} {path} {ct:?} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
        let resp = raw(&app, Some(&ada), method, path, ct, body).await;
        assert_eq!(resp.status(), status, "{what}");
        assert_error(resp, status, code).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 0);
}

#[tokio::test]
async fn nul_bytes_are_refused_or_harmless_never_a_500() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let send = |method: Method, path: &str, body: Value| {
        app.request(method, path)
            .bearer_auth(&admin.access)
            .json(&body)
            .send()
    };
    for (path, body) in [
        ("/tasks", json!({"title": "a\u{0}b"})),
        ("/tasks", json!({"title": "ok", "description": "a\u{0}b"})),
        (
            "/users/signup",
            json!({"email": "a\u{0}@example.com", "password": PASSWORD}),
        ),
        (
            "/users/signup",
            json!({"email": "nul@example.com", "password": PASSWORD, "full_name": "a\u{0}"}),
        ),
    ] {
        let resp = send(Method::POST, path, body.clone()).await.unwrap();
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    }
    let resp = app.get_with("/admin/users?q=a%00b", &admin.access).await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    // A NUL in the login name matches nobody; not being an email, it is not logged.
    let resp = app
        .post_form(
            "/token",
            &[("username", "a\u{0}b@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_failed' AND detail->>'email' IS NULL
               AND detail->>'username' = 'not an email'"
        ),
        1
    );
}

/// Text that displays other than it reads is refused wherever a user writes
/// it (a title, a description, a name, on create and on change); emoji
/// sequences and right-to-left text are taken; nothing refused is written.
#[tokio::test]
async fn bidirectional_overrides_and_controls_are_refused_and_emoji_sequences_taken() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    let send = |method: Method, path: &str, who: &TestUser, body: Value| {
        app.request(method, path)
            .bearer_auth(&who.access)
            .json(&body)
            .send()
    };
    let made = send(Method::POST, "/tasks", &ada, json!({"title": "invoice"}))
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let task = format!("/tasks/{}", made.json::<Value>().await.unwrap()["id"]);
    let refused = [
        (
            Method::POST,
            "/tasks",
            json!({"title": "evil\u{202e}fdp.exe"}),
            "title",
            "U+202E",
        ),
        (
            Method::POST,
            "/tasks",
            json!({"title": "\u{2067}x"}),
            "title",
            "U+2067",
        ),
        (
            Method::POST,
            "/tasks",
            json!({"title": "\tpadded"}),
            "title",
            "U+0009",
        ),
        (
            Method::POST,
            "/tasks",
            json!({"title": "ok", "description": "\u{1b}[31mred"}),
            "description",
            "U+001B",
        ),
        (
            Method::PUT,
            task.as_str(),
            json!({"title": "ok", "description": "a\u{202d}b"}),
            "description",
            "U+202D",
        ),
        (
            Method::PATCH,
            task.as_str(),
            json!({"title": "a\u{85}b"}),
            "title",
            "U+0085",
        ),
        (
            Method::PATCH,
            "/users/me",
            json!({"full_name": "Ada\u{202e}"}),
            "full_name",
            "U+202E",
        ),
        (
            Method::PATCH,
            "/users/me",
            json!({"full_name": "Ada\nLovelace"}),
            "full_name",
            "U+000A",
        ),
    ];
    for (method, path, body, field, named) in refused {
        let resp = send(method.clone(), path, &ada, body.clone())
            .await
            .unwrap();
        let error = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
        let said = error["fields"][field].as_str().unwrap_or_default();
        assert!(said.contains(named), "{method} {path} {body}: {error}");
    }
    let resp = app
        .post_json(
            "/users/signup",
            &json!({"email": "rtl@example.com", "password": PASSWORD, "full_name": "\u{2066}Eve"}),
        )
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    let resp = send(
        Method::POST,
        "/admin/users",
        &admin,
        json!({"email": "rtl@example.com", "password": PASSWORD, "role": "user", "full_name": "Eve\u{7}"}),
    )
    .await
    .unwrap();
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert_eq!(
        app.count("SELECT count(*) FROM tasks WHERE title <> 'invoice' OR description IS NOT NULL"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE email = 'rtl@example.com' OR full_name IS NOT NULL AND full_name LIKE 'Ada%'"),
        0
    );

    // Taken: a family emoji (joined by U+200D), Arabic with a right-to-left
    // mark, a description with line breaks and a tab.
    let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
    let body = json!({"title": format!("{family} مرحبا\u{200f}"), "description": "one\r\n\ttwo"});
    let resp = send(Method::POST, "/tasks", &ada, body.clone())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(stored["title"], body["title"]);
    assert_eq!(stored["description"], body["description"]);
    let resp = send(
        Method::PATCH,
        "/users/me",
        &ada,
        json!({"full_name": family}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_nul_inside_a_password_is_part_of_it_not_its_end() {
    let app = spawn_app().await;
    let with_nul = "correct\u{0}horse battery";
    assert_eq!(
        app.signup("nul@example.com", with_nul).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.login("nul@example.com", with_nul).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("nul@example.com", "correct").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("nul@example.com", "correct\u{0}").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn hostile_strings_are_stored_verbatim_and_long_ones_refused() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let sneaky = "o'brien\"; DROP TABLE users; --@example.com";
    let resp = app.signup(sneaky, PASSWORD).await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    let resp = app
        .post_json("/users/signup", &json!({"email": "q@example.com", "password": PASSWORD, "full_name": "Robert'); DROP TABLE users;--"}))
        .await;
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["full_name"], "Robert'); DROP TABLE users;--");
    let found: Vec<Value> = app
        .get_with("/admin/users?q=%27%29%3B%20DROP", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    let long_email = format!("{}@example.com", "a".repeat(300));
    assert_error(
        app.signup(&long_email, PASSWORD).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    let huge_name = "u".repeat(10_000);
    assert_error(
        app.login(&huge_name, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM users"), 2);
}

#[tokio::test]
async fn odd_ids_paging_and_headers() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    for (path, status) in [
        ("/tasks/abc", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/tasks/99999999999999999999999",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/tasks/1.5", StatusCode::UNPROCESSABLE_ENTITY),
        ("/tasks/-1", StatusCode::NOT_FOUND),
        ("/tasks/0", StatusCode::NOT_FOUND),
        ("/tasks?limit=-5", StatusCode::UNPROCESSABLE_ENTITY),
        ("/tasks?offset=-1", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/tasks?limit=99999999999999999999",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/tasks?debug=true", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let resp = app.get_with(path, &ada.access).await;
        assert_eq!(resp.status(), status, "{path}");
        assert!(
            resp.json::<Value>().await.unwrap()["error"].is_string(),
            "{path}"
        );
    }
    let resp = app
        .request(Method::DELETE, "/users/me/sessions/%00")
        .bearer_auth(&ada.access)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.me(&"a".repeat(10 * 1024)).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let resp = app
        .request(Method::GET, "/users/me")
        .header("authorization", "Bearer")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_422_naming_that_field_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    let users_before = app.count("SELECT count(*) FROM users");
    let cases: Vec<(&TestUser, Method, String, Value, &str)> = vec![
        (
            &ada,
            Method::POST,
            "/users/signup".into(),
            json!({"email": 123, "password": PASSWORD}),
            "email",
        ),
        (
            &ada,
            Method::POST,
            "/tasks".into(),
            json!({"title": "t", "completed": "yes"}),
            "completed",
        ),
        (
            &ada,
            Method::POST,
            "/tasks".into(),
            json!({"title": "t", "due_date": 20261201}),
            "due_date",
        ),
        (
            &ada,
            Method::PATCH,
            "/users/me".into(),
            json!({"full_name": ["x"]}),
            "full_name",
        ),
        (
            &admin,
            Method::POST,
            "/admin/users".into(),
            json!({"email": "x@example.com", "password": PASSWORD, "role": "superuser"}),
            "role",
        ),
        (
            &admin,
            Method::PATCH,
            format!("/admin/users/{}", ada.id),
            json!({"disabled": "no"}),
            "disabled",
        ),
        (
            &admin,
            Method::PATCH,
            format!("/admin/users/{}", ada.id),
            json!({"role": "superuser"}),
            "role",
        ),
    ];
    for (who, method, path, body, field) in cases {
        let resp = app
            .send_as(who, method.clone(), &path, Some(body.clone()))
            .await;
        let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
        let fields = err["fields"].as_object().expect("fields");
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            vec![field],
            "{method} {path} {body}: {err}"
        );
        assert!(err["detail"].as_str().unwrap().starts_with(field), "{err}");
    }
    for (query, field) in [
        ("limit=abc", "limit"),
        ("offset=x", "offset"),
        ("owner_id=x", "owner_id"),
    ] {
        let resp = app
            .get_with(&format!("/admin/tasks?{query}"), &admin.access)
            .await;
        let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
        assert!(err["fields"][field].is_string(), "{query}: {err}");
    }
    let resp = app.get_with("/admin/users/abc", &admin.access).await;
    let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(err["fields"]["id"].is_string(), "{err}");
    assert_eq!(app.count("SELECT count(*) FROM users"), users_before);
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 0);
    // Ada's account is as she signed it up: nothing of it was written.
    assert_eq!(app.role_of(ada.id), Role::User);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND NOT disabled AND full_name IS NULL AND email = '{}'",
            ada.id, ada.email
        )),
        1
    );
}

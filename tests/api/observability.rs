//! Following a request: its `X-Request-Id` (taken or made) on the answer,
//! on its audit events and on its log lines; logs as text or JSON, one event
//! per line, with an access line per request.
use reqwest::StatusCode;
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::{serve, spawn_app, Served, PASSWORD};
use crate::serve::stop_and_read_log;

fn echoed(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("{} has no X-Request-Id", resp.url()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn is_uuid(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

#[tokio::test]
async fn request_ids_are_echoed_when_plain_and_made_otherwise() {
    let app = spawn_app().await;
    let with_id = |path: &str, id: &str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("x-request-id", id)
            .send()
    };
    let resp = with_id("/healthz", "trace-42_a.b").await.unwrap();
    assert_eq!(echoed(&resp), "trace-42_a.b");
    let sixty_four = "a".repeat(64);
    assert_eq!(
        echoed(&with_id("/healthz", &sixty_four).await.unwrap()),
        sixty_four
    );

    let made = echoed(&app.get("/healthz").await);
    assert!(is_uuid(&made), "{made}");
    assert_ne!(
        made,
        echoed(&app.get("/healthz").await),
        "a new id each time"
    );
    for odd in [
        "a".repeat(65),
        "has space".into(),
        "semi;colon".into(),
        "ü".into(),
    ] {
        let resp = app
            .client
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", odd.as_bytes())
            .send()
            .await
            .unwrap();
        let id = echoed(&resp);
        assert!(is_uuid(&id), "{odd:?} gave {id}");
    }

    // Refusals carry it too: no token (the bearer check), no route, bad JSON.
    let resp = with_id("/users/me", "refused-1").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(echoed(&resp), "refused-1");
    let resp = with_id("/no/such/route", "refused-2").await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(echoed(&resp), "refused-2");
    let resp = app
        .client
        .post(format!("{}/users/signup", app.address))
        .header("x-request-id", "refused-3")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(echoed(&resp), "refused-3");
}

#[tokio::test]
async fn audit_events_carry_the_request_that_wrote_them() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    let resp = app
        .client
        .post(format!("{}/token", app.address))
        .header("x-request-id", "login-of-ada")
        .form(&[("username", ada.email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A refused login writes its event on the database thread, too.
    let resp = app
        .client
        .post(format!("{}/token", app.address))
        .header("x-request-id", "wrong-password")
        .form(&[
            ("username", ada.email.as_str()),
            ("password", "not the password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let events: Vec<Value> = app
        .get_with(
            &format!("/admin/audit?subject_id={}&limit=100", ada.id),
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    let of = |id: &str| {
        events
            .iter()
            .filter(|e| e["request_id"] == id)
            .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(of("login-of-ada"), ["login_succeeded"], "{events:?}");
    assert_eq!(of("wrong-password"), ["login_failed"], "{events:?}");
    // The others name requests whose ids were made up: every event has one.
    assert!(
        events.iter().all(|e| e["request_id"].is_string()),
        "{events:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE request_id = 'login-of-ada'"),
        1
    );
}

/// Signs up, logs in, creates a task and reads it with `X-Request-Id:
/// <id>`; a request without a token too. Returns the user's id.
async fn traffic(served: &Served, id: &str) -> i64 {
    let client = reqwest::Client::new();
    let base = &served.base;
    let email = format!("{id}@example.com");
    let user: Value = client
        .post(format!("{base}/users/signup"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token: Value = client
        .post(format!("{base}/token"))
        .form(&[("username", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let task: Value = client
        .post(format!("{base}/tasks"))
        .bearer_auth(access)
        .json(&json!({"title": "follow me"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = client
        .get(format!("{base}/tasks/{}", task["id"]))
        .bearer_auth(access)
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .get(format!("{base}/users/me"))
        .header("x-request-id", format!("{id}-anonymous"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    user["id"].as_i64().unwrap()
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_the_access_line_has_its_fields() {
    let app = spawn_app().await;
    let mut served = serve(
        app.db(),
        &[
            ("APP__LOG__FORMAT", "json"),
            ("APP__AUTH__BCRYPT_COST", "4"),
        ],
    );
    let user_id = traffic(&served, "trace-json").await;
    let logs = stop_and_read_log(&mut served);
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object: {line:?}: {e}"));
            for key in ["timestamp", "level", "target", "message"] {
                assert!(value[key].is_string(), "{key} in {line}");
            }
            value
        })
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "taskgate::access")
        .collect();
    assert_eq!(access.len(), 5, "{logs}");
    let read = access
        .iter()
        .find(|l| l["request_id"] == "trace-json")
        .unwrap_or_else(|| panic!("no access line for trace-json: {logs}"));
    assert_eq!(read["method"], "GET");
    assert_eq!(read["route"], "/tasks/{id}");
    assert_eq!(read["status"], 200);
    assert_eq!(read["user_id"], user_id);
    assert!(
        read["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{read}"
    );
    let refused = access
        .iter()
        .find(|l| l["request_id"] == "trace-json-anonymous")
        .unwrap_or_else(|| panic!("no access line for the refused request: {logs}"));
    assert_eq!(refused["status"], 401);
    assert_eq!(refused["route"], "/users/me");
    assert!(refused.get("user_id").is_none(), "{refused}");
    // Every access line names its request; no query string or token is logged.
    assert!(access.iter().all(|l| l["request_id"].is_string()));
    assert!(!logs.contains("Bearer"), "{logs}");
}

#[tokio::test]
async fn text_logs_name_the_request_on_one_line_each() {
    let app = spawn_app().await;
    let mut served = serve(app.db(), &[("APP__AUTH__BCRYPT_COST", "4")]);
    let user_id = traffic(&served, "trace-text").await;
    let logs = stop_and_read_log(&mut served);
    let line = logs
        .lines()
        .find(|l| l.contains("taskgate::access") && l.contains("request_id=trace-text "))
        .unwrap_or_else(|| panic!("no access line for trace-text: {logs}"));
    for part in [
        "\"GET /tasks/",
        "route=/tasks/{id}",
        "status=200",
        &format!("user_id={user_id}"),
        "duration_ms=",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(
        logs.lines().all(|l| l.starts_with('[')),
        "one event per line: {logs}"
    );
}

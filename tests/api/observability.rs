//! Following a request: its `X-Request-Id` (taken or made) on the answer,
//! on its audit events and on its log lines; logs as text or JSON, one event
//! per line, with an access line per request.
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::num::NonZero;

use taskgate::domain::Role;

use crate::helpers::{serve, spawn_app, spawn_app_with, Served, TestApp, PASSWORD};
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

/// The metrics listener's text, and one series' value in it.
async fn scrape(app: &TestApp) -> String {
    let address = app.metrics_address.as_ref().expect("a metrics listener");
    let resp = app
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    resp.text().await.unwrap()
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_are_served_on_their_own_port_and_count_what_happens() {
    let app = spawn_app_with(|s| {
        s.server.metrics_port = Some(0);
        s.auth.max_failed_logins = NonZero::new(2).unwrap();
    })
    .await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);

    let ada = app.signup_and_login(Role::User).await;
    let task: Value = app
        .create_task(&ada, json!({"title": "counted"}))
        .await
        .json()
        .await
        .unwrap();
    for _ in 0..2 {
        let resp = app
            .get_with(&format!("/tasks/{}", task["id"]), &ada.access)
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Two wrong passwords, then the account is locked.
    for expected in [401, 401, 429] {
        let resp = app.login(&ada.email, "not the password").await;
        assert_eq!(resp.status().as_u16(), expected);
    }

    let text = scrape(&app).await;
    let get_task = r#"{method="GET",route="/tasks/{id}",status="200"}"#;
    assert_eq!(value(&text, &format!("http_requests_total{get_task}")), 2.0);
    assert_eq!(
        value(
            &text,
            r#"http_request_duration_seconds_count{route="/tasks/{id}"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="POST",route="/tasks",status="201"}"#
        ),
        1.0
    );
    let raw_id = format!("/tasks/{}\"", task["id"]);
    assert!(!text.contains(&raw_id), "a raw id as a label:\n{text}");
    assert_eq!(
        value(&text, r#"taskgate_logins_total{outcome="success"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"taskgate_logins_total{outcome="bad_credentials"}"#),
        2.0
    );
    assert_eq!(
        value(&text, r#"taskgate_logins_total{outcome="locked"}"#),
        1.0
    );
    // The signup's hash and the three verifications; the locked one hashed nothing
    // but had its place.
    assert!(
        value(
            &text,
            r#"taskgate_hash_admissions_total{result="admitted"}"#
        ) >= 4.0
    );
    assert_eq!(value(&text, "taskgate_hash_in_flight"), 0.0);
    assert!(value(&text, r#"taskgate_db_pool_connections{state="idle"}"#) >= 1.0);
    assert_eq!(
        value(&text, r#"taskgate_db_pool_connections{state="in_use"}"#),
        0.0
    );
    assert!(value(&text, "taskgate_db_queue_wait_seconds_count") >= 5.0);
    assert_eq!(value(&text, "taskgate_outbox_pending"), 0.0);

    // A scrape is not a request of the API: it counts in none of them.
    let again = scrape(&app).await;
    assert_eq!(
        value(&again, &format!("http_requests_total{get_task}")),
        2.0
    );
    assert!(!again.contains(r#"route="/metrics""#), "{again}");
}

#[tokio::test]
async fn without_a_metrics_port_nothing_serves_metrics() {
    let app = spawn_app().await;
    assert!(app.metrics_address.is_none());
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
}

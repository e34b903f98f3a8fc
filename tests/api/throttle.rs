//! The per-client limit of the auth routes: one limit for every instance,
//! keyed on the client behind trusted proxies.
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::num::NonZero;

use crate::helpers::{assert_error, spawn_app_with, spawn_on, TestApp, PASSWORD};

async fn login_from(app: &TestApp, forwarded_for: &str, email: &str) -> reqwest::Response {
    app.request(Method::POST, "/token")
        .header("x-forwarded-for", forwarded_for)
        .form(&[("username", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap()
}

/// How many logins of unknown emails got past the throttle (401) and how many it refused.
fn passed_and_throttled(answers: &[StatusCode]) -> (usize, usize) {
    let count = |status| answers.iter().filter(|s| **s == status).count();
    (
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::TOO_MANY_REQUESTS),
    )
}

#[tokio::test]
async fn two_instances_on_one_database_enforce_one_limit() {
    let a = spawn_app_with(|s| s.rate_limit.auth_per_minute = NonZero::new(5).unwrap()).await;
    let b = spawn_on(a.settings.clone()).await;
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        let resp = app.login("nobody@example.com", PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "request {i}");
    }
    for app in [&a, &b] {
        let resp = app.login("nobody@example.com", PASSWORD).await;
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=12).contains(&retry), "Retry-After {retry}");
        assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    assert_eq!(
        a.count("SELECT count(*) FROM auth_throttle"),
        1,
        "one client, one row"
    );
}

#[tokio::test]
async fn concurrent_requests_on_two_instances_never_exceed_the_limit() {
    let a = spawn_app_with(|s| s.rate_limit.auth_per_minute = NonZero::new(10).unwrap()).await;
    let b = spawn_on(a.settings.clone()).await;
    let logins = (0..40).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move { app.login("nobody@example.com", PASSWORD).await.status() }
    });
    let answers = futures_util::future::join_all(logins).await;
    let (passed, throttled) = passed_and_throttled(&answers);
    assert!((10..=11).contains(&passed), "{passed} passed: {answers:?}");
    assert_eq!(passed + throttled, 40);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_throttled_audited_and_shown() {
    let app = spawn_app_with(|s| {
        s.rate_limit.auth_per_minute = NonZero::new(3).unwrap();
        s.server.trusted_proxies = taskgate::domain::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    for _ in 0..3 {
        let resp = login_from(&app, "203.0.113.1", "nobody@example.com").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = login_from(&app, "203.0.113.1", "nobody@example.com").await;
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another client behind the same proxy has its own allowance; a spoofed
    // left-hand entry changes nothing (the proxy appended the real one).
    let resp = login_from(&app, "203.0.113.1, 203.0.113.2", "nobody@example.com").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_failed' AND ip = '203.0.113.1'"
        ),
        3
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_failed' AND ip = '203.0.113.2'"
        ),
        1
    );
    // Sessions record the forwarded client too.
    let signup = app
        .request(Method::POST, "/users/signup")
        .header("x-forwarded-for", "198.51.100.7")
        .json(&serde_json::json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
    let pair: Value = login_from(&app, "198.51.100.7", "ada@example.com")
        .await
        .json()
        .await
        .unwrap();
    let sessions: Value = app
        .my_sessions(pair["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions[0]["ip"], "198.51.100.7");
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_changes_nothing() {
    let app = spawn_app_with(|s| s.rate_limit.auth_per_minute = NonZero::new(3).unwrap()).await;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let resp = login_from(&app, client, "nobody@example.com").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = login_from(&app, "203.0.113.4", "nobody@example.com").await;
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_failed' AND ip = '127.0.0.1'"
        ),
        3
    );
}

#[tokio::test]
async fn full_windows_are_pruned_and_live_ones_kept() {
    let app = spawn_app_with(|s| s.rate_limit.auth_per_minute = NonZero::new(5).unwrap()).await;
    app.login("nobody@example.com", PASSWORD).await;
    app.sql("INSERT INTO auth_throttle (client_key, tat) VALUES ('198.51.100.1', now() - interval '1 second')");
    let pruned = taskgate::db::throttle::prune(&mut app.db().connect()).unwrap();
    assert_eq!(pruned, 1, "the window that is full again");
    assert_eq!(
        app.count("SELECT count(*) FROM auth_throttle WHERE client_key = '127.0.0.1'"),
        1,
        "a client inside its minute keeps its count"
    );
}

#[tokio::test]
async fn forty_addresses_of_one_ipv6_64_share_one_allowance() {
    let app = spawn_app_with(|s| {
        s.rate_limit.auth_per_minute = NonZero::new(30).unwrap();
        s.server.trusted_proxies = taskgate::domain::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let logins = (0..40).map(|i| {
        let app = &app;
        async move {
            let ip = format!("2001:db8:1:2:{i:x}::{:x}", i * 7 + 1);
            login_from(app, &ip, "nobody@example.com").await.status()
        }
    });
    let answers = futures_util::future::join_all(logins).await;
    assert_eq!(passed_and_throttled(&answers), (30, 10), "{answers:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM auth_throttle WHERE client_key = '2001:db8:1:2::/64'"),
        1
    );
    // The next /64 is another client; audit keeps each full address.
    let resp = login_from(&app, "2001:db8:1:3::1", "nobody@example.com").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count("SELECT count(DISTINCT ip) FROM audit_events WHERE ip LIKE '2001:db8:1:2:%'"),
        30
    );
}

#[tokio::test]
async fn forwarded_entries_with_a_port_or_brackets_name_the_client() {
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = taskgate::domain::TrustedProxies::parse(&["127.0.0.1"]).unwrap()
    })
    .await;
    app.signup("ada@example.com", PASSWORD).await;
    for (entry, client) in [
        ("203.0.113.7:4711", "203.0.113.7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::8]:443", "2001:db8::8"),
    ] {
        let resp = login_from(&app, entry, "ada@example.com").await;
        assert_eq!(resp.status(), StatusCode::OK, "{entry}");
        let query = format!("SELECT count(*) FROM sessions WHERE ip = '{client}'");
        assert_eq!(app.count(&query), 1, "{entry}");
        let query = format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_succeeded' AND ip = '{client}'"
        );
        assert_eq!(app.count(&query), 1, "{entry}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE ip = '127.0.0.1'"),
        0,
        "no login was taken for the proxy's"
    );
}

#[tokio::test]
async fn task_writes_are_limited_per_user_across_instances() {
    let a = spawn_app_with(|s| s.rate_limit.writes_per_minute = NonZero::new(3).unwrap()).await;
    let b = spawn_on(a.settings.clone()).await;
    let ada = a.signup_and_login(taskgate::domain::Role::User).await;
    let answers = crate::helpers::at_once_on_two(&a, &b, 6, |i, base| {
        a.client
            .post(format!("{base}/tasks"))
            .bearer_auth(&ada.access)
            .json(&serde_json::json!({ "title": format!("task {i}") }))
    })
    .await;
    let statuses: Vec<_> = answers.iter().map(|r| r.status()).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, limited), (3, 3), "{statuses:?}");
    assert_eq!(
        a.count(&format!(
            "SELECT count(*) FROM tasks WHERE owner_id = {}",
            ada.id
        )),
        3,
        "a refused write writes nothing"
    );
    // Every write counts, deletes included; reads do not.
    let resp = a.send_as(&ada, Method::DELETE, "/tasks/1", None).await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    let body = assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(
        body["detail"].as_str().unwrap().contains("task writes"),
        "{body}"
    );
    assert_eq!(a.list_tasks(&ada, "").await.status(), StatusCode::OK);
    // The limit is the user's: someone else writes on.
    let bob = b.signup_and_login(taskgate::domain::Role::User).await;
    let resp = b
        .create_task(&bob, serde_json::json!({ "title": "mine" }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

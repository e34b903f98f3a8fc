//! A slow, locked or read-only database: every request is answered within
//! `database.timeout_seconds`, `/readyz` included; what the database refuses
//! for a while is 503 `unavailable` with `Retry-After`, never 500; and the
//! bound frees the connection for the next request.
use std::num::NonZero;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::{spawn_app_with, spawn_on, TestApp, TestUser};

/// The one answer for "the database cannot serve this now".
async fn assert_unavailable(resp: Response) {
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = resp.headers().get("retry-after").cloned();
    assert_eq!(retry_after.as_ref().map(|v| v.to_str().unwrap()), Some("1"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "unavailable", "detail": "Service temporarily unavailable"})
    );
}

/// A task write that waits for `tasks`, locked from outside, past one of its
/// timeouts: 503 well before the request's 1 s bound, nothing written, and
/// the connection serves the next request once the lock is gone.
async fn a_write_waiting_past_its_timeout_is_503(app: TestApp) {
    let ada = app.signup_and_login(Role::User).await;
    let lock = app.db().lock_table("tasks");
    let asked = Instant::now();
    let resp = app.create_task(&ada, json!({"title": "Buy milk"})).await;
    let took = asked.elapsed();
    assert_unavailable(resp).await;
    assert!(took < Duration::from_millis(900), "took {took:?}");
    lock.release();
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 0);
    let resp = app.create_task(&ada, json!({"title": "Buy milk"})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_lock_wait_past_the_lock_timeout_is_503_and_writes_nothing() {
    let app = spawn_app_with(|_| {}).await;
    assert_eq!(app.settings.database.lock_timeout_ms.get(), 250);
    a_write_waiting_past_its_timeout_is_503(app).await;
}

#[tokio::test]
async fn a_statement_past_its_timeout_is_503_and_writes_nothing() {
    // The statement timeout (SQLSTATE 57014) fires before the lock's would.
    let app = spawn_app_with(|s| {
        s.database.statement_timeout_ms = NonZero::new(200);
        s.database.lock_timeout_ms = NonZero::new(60_000).unwrap();
    })
    .await;
    a_write_waiting_past_its_timeout_is_503(app).await;
}

#[tokio::test]
async fn a_stalled_database_is_answered_within_the_bound_readyz_included() {
    // Statements that never end by themselves (a server frozen mid-query):
    // only the request's own bound, 1 s in tests, answers.
    let app = spawn_app_with(|s| {
        s.database.statement_timeout_ms = NonZero::new(60_000);
        s.database.lock_timeout_ms = NonZero::new(60_000).unwrap();
    })
    .await;
    let ada = app.signup_and_login(Role::User).await;
    let lock = app.db().lock_table("sessions");
    // Both pooled connections stuck in a query...
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, token) = (
                app.client.clone(),
                format!("{}/users/me", app.address),
                ada.access.clone(),
            );
            tokio::spawn(async move {
                let asked = Instant::now();
                let resp = client.get(url).bearer_auth(token).send().await.unwrap();
                (resp, asked.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...and readiness, which needs a connection too, still answers in time.
    let asked = Instant::now();
    let ready = app.get("/readyz").await;
    let took = asked.elapsed();
    assert_unavailable(ready).await;
    assert!(took < Duration::from_millis(1400), "/readyz took {took:?}");
    for s in stuck {
        let (resp, took) = s.await.unwrap();
        assert_unavailable(resp).await;
        assert!(
            (Duration::from_millis(900)..Duration::from_millis(1400)).contains(&took),
            "answered after {took:?}"
        );
    }
    lock.release();
    // The stuck statements end with the lock; the service is ready again.
    let mut ready = app.get("/readyz").await.status();
    for _ in 0..20 {
        if ready == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = app.get("/readyz").await.status();
    }
    assert_eq!(ready, StatusCode::OK);
}

#[tokio::test]
async fn a_read_only_database_answers_writes_503_and_reads_200() {
    let app = spawn_app_with(|_| {}).await;
    let ada = app.signup_and_login(Role::User).await;
    let name = app.db().name.clone();
    app.sql(&format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    ));
    // A second instance on the same database: its connections are new, so
    // read-only (as after a failover to a standby).
    let replica = spawn_on(app.settings.clone()).await;
    assert_eq!(replica.me(&ada.access).await.status(), StatusCode::OK);
    let resp = replica
        .create_task(&ada, json!({"title": "Buy milk"}))
        .await;
    assert_unavailable(resp).await;
    // A statement of its own: the implicit transaction of a batch starts read-only.
    let mut conn = app.db().connect();
    conn.batch_execute("SET default_transaction_read_only = off")
        .unwrap();
    conn.batch_execute(&format!(
        "ALTER DATABASE {name} RESET default_transaction_read_only"
    ))
    .unwrap();
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 0);
}

/// What a request of another user saw: its status and how long it took.
async fn timed(request: reqwest::RequestBuilder) -> (StatusCode, Duration) {
    let asked = Instant::now();
    // Bounded, so that a request the database holds fails the test, not hangs it.
    let status = request
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .status();
    (status, asked.elapsed())
}

/// Everything other users do that needs no `tasks` row: profile, login, refresh.
fn others_requests(app: &TestApp, users: &[TestUser]) -> Vec<reqwest::RequestBuilder> {
    users
        .iter()
        .flat_map(|u| {
            [
                app.request(Method::GET, "/users/me").bearer_auth(&u.access),
                app.request(Method::POST, "/token").form(&[
                    ("username", u.email.as_str()),
                    ("password", u.password.as_str()),
                ]),
                app.request(Method::POST, "/refresh")
                    .json(&json!({"refresh_token": u.refresh})),
            ]
        })
        .collect()
}

/// Sends `waiting` (requests that will wait for a lock), then everything
/// `others` do that needs no lock: those are served within a second, the
/// waiting ones answered 503 by the lock timeout, within the bound.
async fn others_are_served_while_these_wait(
    app: &TestApp,
    waiting: Vec<reqwest::RequestBuilder>,
    others: &[TestUser],
) {
    let waiting: Vec<_> = waiting
        .into_iter()
        .map(|r| tokio::spawn(timed(r)))
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let served: Vec<_> = others_requests(app, others)
        .into_iter()
        .map(|r| tokio::spawn(timed(r)))
        .collect();
    for r in served {
        let (status, took) = r.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
    for w in waiting {
        let (status, took) = w.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(took < Duration::from_millis(1400), "took {took:?}");
    }
}

/// A table locked by another connection delays only the requests that need
/// it: four task writes (more than the pool's two connections) wait for it
/// and are answered 503 by the lock timeout, while other users' profiles,
/// logins and refreshes, asked meanwhile, are served within a second.
#[tokio::test]
async fn a_locked_table_delays_only_the_requests_that_need_it() {
    let app = spawn_app_with(|_| {}).await;
    let writer = app.signup_and_login(Role::User).await;
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(app.signup_and_login(Role::User).await);
    }
    let lock = app.db().lock_table("tasks");
    let writes = (0..4).map(|i| {
        app.request(Method::POST, "/tasks")
            .bearer_auth(&writer.access)
            .json(&json!({"title": format!("task {i}")}))
    });
    others_are_served_while_these_wait(&app, writes.collect(), &others).await;
    lock.release();
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 0);
}

/// One user's row locked by an open transaction: that user's own profile
/// updates wait for it and are answered 503, and other users' profiles and
/// logins are served within a second meanwhile.
#[tokio::test]
async fn a_locked_user_row_delays_only_that_user() {
    let app = spawn_app_with(|_| {}).await;
    let held = app.signup_and_login(Role::User).await;
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(app.signup_and_login(Role::User).await);
    }
    let mut conn = app.db().connect();
    conn.batch_execute(&format!(
        "BEGIN; SELECT id FROM users WHERE id = {} FOR UPDATE",
        held.id
    ))
    .unwrap();
    let updates = (0..3).map(|i| {
        app.request(Method::PATCH, "/users/me")
            .bearer_auth(&held.access)
            .json(&json!({"full_name": format!("name {i}")}))
    });
    others_are_served_while_these_wait(&app, updates.collect(), &others).await;
    conn.batch_execute("COMMIT").unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND full_name IS NOT NULL",
            held.id
        )),
        0
    );
}

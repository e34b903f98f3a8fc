//! Faults and load: a crash in the middle of a write burst leaves nothing
//! half-written, a database outage under traffic gives quick 503s and heals,
//! a request waits for the database a bounded time in all and not at all
//! once its client has gone, and a mixed workload loses nothing and keeps its memory.
use std::num::NonZero;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::cluster::ThrowawayCluster;
use taskgate::domain::Role;

use crate::helpers::{
    serve, signal, spawn_app_with, spawn_on, test_settings, TestDatabase, PASSWORD,
};

fn count(db_url: &str, sql: &str) -> i64 {
    use diesel::prelude::*;
    let mut conn = PgConnection::establish(db_url).unwrap();
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "({sql})"
    )))
    .get_result(&mut conn)
    .unwrap()
}

async fn login(
    client: &Client,
    base: &str,
    email: &str,
    password: &str,
) -> Option<(String, String)> {
    let resp = client
        .post(format!("{base}/token"))
        .form(&[("username", email), ("password", password)])
        .send()
        .await
        .ok()?;
    let pair: Value = resp.json().await.ok()?;
    Some((
        pair["access_token"].as_str()?.to_owned(),
        pair["refresh_token"].as_str()?.to_owned(),
    ))
}

/// Invariants no crash may break: each holds only if its writes share a transaction.
const INVARIANTS: &[(&str, &str)] = &[
    (
        "a user without its creation event",
        "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM audit_events a
           WHERE a.subject_id = u.id AND a.kind IN ('signup', 'user_created'))",
    ),
    (
        "a session without its login event",
        "SELECT count(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM audit_events a
           WHERE a.kind = 'login_succeeded' AND a.detail->>'session_id' = s.id::text)",
    ),
    (
        "a rotated session without its refresh event",
        "SELECT count(*) FROM sessions s WHERE s.previous_refresh_jti IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM audit_events a WHERE a.kind = 'token_refreshed' AND a.detail->>'session_id' = s.id::text)",
    ),
    (
        "a session older than its user's password change still live",
        "SELECT count(*) FROM audit_events a JOIN sessions s ON s.user_id = a.subject_id
           WHERE a.kind = 'password_changed' AND s.created_at < a.at AND s.revoked_at IS NULL",
    ),
    (
        "a password change recorded but the old hash kept",
        "SELECT count(*) FROM audit_events a JOIN users u ON u.id = a.subject_id
           WHERE a.kind = 'password_changed' AND u.updated_at < a.at",
    ),
    (
        "a deleted user still present",
        "SELECT count(*) FROM audit_events a JOIN users u ON u.id = a.subject_id WHERE a.kind = 'user_deleted'",
    ),
];

#[tokio::test]
async fn a_sigkill_during_a_write_burst_leaves_no_half_written_state() {
    let db = TestDatabase::migrated();
    let env = [
        ("APP__AUTH__BCRYPT_COST", "4"),
        ("APP__RATE_LIMIT__AUTH_PER_MINUTE", "1000000"),
        ("APP__SERVER__WORKERS", "2"),
        ("APP__BOOTSTRAP__ADMIN_EMAIL", "root@example.com"),
        (
            "APP__BOOTSTRAP__ADMIN_PASSWORD",
            "root passphrase for the crash",
        ),
    ];
    let mut served = serve(&db, &env);
    let base = served.base.clone();
    let client = Client::new();
    let (admin, _) = login(
        &client,
        &base,
        "root@example.com",
        "root passphrase for the crash",
    )
    .await
    .unwrap();

    // (task id, owner id) of every 201 the clients saw.
    let acknowledged_tasks = Arc::new(Mutex::new(Vec::<(i64, i64)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..12 {
        let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
        let (acked, stop) = (acknowledged_tasks.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let email = format!("w{w}-{n}@example.com");
                let signup = client
                    .post(format!("{base}/users/signup"))
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await;
                let Ok(signup) = signup else { break };
                let Ok(user) = signup.json::<Value>().await else { break };
                let Some((access, refresh)) = login(&client, &base, &email, PASSWORD).await else { break };
                let _ = client
                    .post(format!("{base}/refresh"))
                    .json(&json!({"refresh_token": refresh}))
                    .send()
                    .await;
                if let Ok(resp) = client
                    .post(format!("{base}/tasks"))
                    .bearer_auth(&access)
                    .json(&json!({"title": format!("task of {email}")}))
                    .send()
                    .await
                {
                    if resp.status() == StatusCode::CREATED {
                        if let Ok(task) = resp.json::<Value>().await {
                            let ids = (task["id"].as_i64().unwrap_or_default(), task["owner_id"].as_i64().unwrap_or_default());
                            acked.lock().unwrap().push(ids);
                        }
                    }
                }
                match n % 3 {
                    0 => {
                        let _ = client
                            .post(format!("{base}/users/me/password"))
                            .bearer_auth(&access)
                            .json(&json!({"current_password": PASSWORD, "new_password": "a second passphrase"}))
                            .send()
                            .await;
                    }
                    1 => {
                        let _ = client
                            .delete(format!("{base}/admin/users/{}", user["id"]))
                            .bearer_auth(&admin)
                            .send()
                            .await;
                    }
                    _ => {}
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    signal(&served.child, "-KILL");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let _ = served.child.wait();

    assert!(
        count(&db.url, "SELECT count(*) FROM users") > 5,
        "the burst wrote something before the crash"
    );
    for (what, sql) in INVARIANTS {
        assert_eq!(count(&db.url, sql), 0, "after the crash: {what}");
    }
    // Every task the client was told about survived, unless its owner was deleted.
    let acked = acknowledged_tasks.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "tasks were acknowledged before the crash"
    );
    let tasks = acked
        .iter()
        .map(|(t, _)| t.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let owners = acked
        .iter()
        .map(|(_, o)| o.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let lost = count(
        &db.url,
        &format!(
            "SELECT count(*) FROM unnest(ARRAY[{tasks}]::bigint[], ARRAY[{owners}]::bigint[]) AS acked(id, owner)
             WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = acked.id)
               AND NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.kind = 'user_deleted' AND a.subject_id = acked.owner)"
        ),
    );
    assert_eq!(
        lost, 0,
        "acknowledged tasks lost (their owners were not deleted)"
    );

    // The restarted service works on the same data.
    let mut again = serve(&db, &env);
    let resp = client
        .get(format!("{}/readyz", again.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(login(
        &client,
        &again.base,
        "root@example.com",
        "root passphrase for the crash"
    )
    .await
    .is_some());
    let _ = again.child.kill();
    let _ = again.child.wait();
}

#[tokio::test]
async fn an_outage_under_traffic_gives_quick_503s_and_heals_without_a_restart() {
    let cluster = ThrowawayCluster::start();
    let mut conn = PgConnection::establish(&cluster.url("postgres")).unwrap();
    taskgate::db::migrate(&mut conn).unwrap();
    drop(conn);
    let app = spawn_on(test_settings(&cluster.url("postgres"))).await;
    let ada = app.signup_and_login(Role::User).await;

    let stop = Arc::new(AtomicBool::new(false));
    let server_errors = Arc::new(AtomicU64::new(0));
    let slowest_ms = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, base, token) = (app.client.clone(), app.address.clone(), ada.access.clone());
        let (stop, errors, slowest, acked) = (
            stop.clone(),
            server_errors.clone(),
            slowest_ms.clone(),
            acked.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let resp = client
                    .post(format!("{base}/tasks"))
                    .bearer_auth(&token)
                    .json(&json!({"title": "during the outage"}))
                    .send()
                    .await
                    .unwrap();
                slowest.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                match resp.status() {
                    StatusCode::CREATED => {
                        let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
                        acked.lock().unwrap().push(id);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        let body: Value = resp.json().await.unwrap();
                        assert_eq!(body["error"], "unavailable");
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.halt();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    cluster.resume();
    let healed = Instant::now();
    loop {
        if app.get("/readyz").await.status() == StatusCode::OK {
            break;
        }
        assert!(healed.elapsed() < Duration::from_secs(10), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(
        server_errors.load(Ordering::Relaxed),
        0,
        "only 201 or 503 while the database was away"
    );
    // The pool waits at most timeout_seconds (1 in tests) for a connection.
    let slowest = slowest_ms.load(Ordering::Relaxed);
    assert!(slowest < 3000, "a request hung for {slowest} ms");
    let acked = acked.lock().unwrap().clone();
    let stored = count(&cluster.url("postgres"), "SELECT count(*) FROM tasks");
    // A commit can land while its answer is lost to the outage, so more rows than
    // acknowledgements is possible; fewer would be a lost write.
    assert!(
        stored >= acked.len() as i64,
        "{stored} stored < {} acknowledged",
        acked.len()
    );
    assert!(!acked.is_empty());
}

#[tokio::test]
async fn a_mixed_workload_loses_nothing_and_has_no_5xx() {
    let db = TestDatabase::migrated();
    let env = [
        ("APP__AUTH__BCRYPT_COST", "4"),
        ("APP__RATE_LIMIT__AUTH_PER_MINUTE", "1000000"),
        ("APP__SERVER__WORKERS", "2"),
        ("APP__BOOTSTRAP__ADMIN_EMAIL", "root@example.com"),
        (
            "APP__BOOTSTRAP__ADMIN_PASSWORD",
            "root passphrase for the soak",
        ),
        ("RUST_LOG", "warn"),
    ];
    let mut served = serve(&db, &env);
    let client = Client::new();
    let base = served.base.clone();
    let (admin, _) = login(
        &client,
        &base,
        "root@example.com",
        "root passphrase for the soak",
    )
    .await
    .unwrap();

    let created = Arc::new(AtomicU64::new(0));
    let deleted = Arc::new(AtomicU64::new(0));
    let server_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut users = Vec::new();
    for u in 0..6 {
        let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
        let (created, deleted, errors) = (created.clone(), deleted.clone(), server_errors.clone());
        users.push(tokio::spawn(async move {
            let email = format!("soak{u}@example.com");
            client
                .post(format!("{base}/users/signup"))
                .json(&json!({"email": email, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            let (mut access, mut refresh) = login(&client, &base, &email, PASSWORD).await.unwrap();
            let mut round = 0u64;
            let check = |resp: &reqwest::Response, what: &str| {
                if resp.status().is_server_error() {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("{what}: {}", resp.status()));
                }
            };
            while Instant::now() < deadline {
                round += 1;
                let resp = client
                    .post(format!("{base}/tasks"))
                    .bearer_auth(&access)
                    .json(&json!({"title": format!("soak {round}")}))
                    .send()
                    .await
                    .unwrap();
                check(&resp, "create");
                let task: Value = resp.json().await.unwrap();
                created.fetch_add(1, Ordering::Relaxed);
                let resp = client
                    .get(format!("{base}/tasks?limit=20"))
                    .bearer_auth(&access)
                    .send()
                    .await
                    .unwrap();
                check(&resp, "list");
                let resp = client
                    .patch(format!("{base}/tasks/{}", task["id"]))
                    .bearer_auth(&access)
                    .json(&json!({"completed": true}))
                    .send()
                    .await
                    .unwrap();
                check(&resp, "patch");
                if round.is_multiple_of(2) {
                    let resp = client
                        .delete(format!("{base}/tasks/{}", task["id"]))
                        .bearer_auth(&access)
                        .send()
                        .await
                        .unwrap();
                    check(&resp, "delete");
                    if resp.status() == StatusCode::NO_CONTENT {
                        deleted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if round.is_multiple_of(5) {
                    let resp = client
                        .post(format!("{base}/refresh"))
                        .json(&json!({"refresh_token": refresh}))
                        .send()
                        .await
                        .unwrap();
                    check(&resp, "refresh");
                    let pair: Value = resp.json().await.unwrap();
                    access = pair["access_token"].as_str().unwrap().to_owned();
                    refresh = pair["refresh_token"].as_str().unwrap().to_owned();
                }
                if round.is_multiple_of(7) {
                    for path in [
                        "/admin/dashboard",
                        "/admin/users?limit=50",
                        "/admin/audit?limit=50",
                        "/reports",
                    ] {
                        let resp = client
                            .get(format!("{base}{path}"))
                            .bearer_auth(&admin)
                            .send()
                            .await
                            .unwrap();
                        check(&resp, path);
                    }
                }
                if round.is_multiple_of(11) {
                    let fresh = login(&client, &base, &email, PASSWORD).await;
                    assert!(fresh.is_some(), "login during the soak");
                }
            }
        }));
    }
    for u in users {
        u.await.unwrap();
    }
    let _ = served.child.kill();
    let _ = served.child.wait();

    assert!(
        server_errors.lock().unwrap().is_empty(),
        "{:?}",
        server_errors.lock().unwrap()
    );
    let expected = created.load(Ordering::Relaxed) - deleted.load(Ordering::Relaxed);
    assert_eq!(
        count(&db.url, "SELECT count(*) FROM tasks") as u64,
        expected,
        "rows = creates - deletes"
    );
    assert!(created.load(Ordering::Relaxed) > 50, "the workload ran");
}

/// `GET /users/me` in a task of its own: its status, `Retry-After`, when it
/// was answered, and its body.
type MeAnswer = (
    StatusCode,
    Option<reqwest::header::HeaderValue>,
    Instant,
    String,
);
fn ask_me(client: &Client, base: &str, token: &str) -> tokio::task::JoinHandle<MeAnswer> {
    let (client, url, token) = (client.clone(), format!("{base}/users/me"), token.to_owned());
    tokio::spawn(async move {
        let resp = client.get(url).bearer_auth(token).send().await.unwrap();
        let retry_after = resp.headers().get("retry-after").cloned();
        (
            resp.status(),
            retry_after,
            Instant::now(),
            resp.text().await.unwrap(),
        )
    })
}

/// A request waits for the database at most `database.timeout_seconds` (1 s
/// in tests) in all, whether queued behind busy threads or in its own query:
/// with every connection stuck for longer, each is answered 503 by its own
/// bound, not when the lock goes.
#[tokio::test]
async fn a_request_waits_for_the_database_at_most_its_bound_in_all() {
    // Two database threads (the pool's size in tests); statements that would
    // wait for the lock far longer than the bound.
    let app = spawn_app_with(|s| {
        s.database.statement_timeout_ms = NonZero::new(60_000);
        s.database.lock_timeout_ms = NonZero::new(60_000).unwrap();
    })
    .await;
    let ada = app.signup_and_login(Role::User).await;
    let lock = app.db().lock_table("sessions");
    let mut asked = Vec::new();
    for _ in 0..6 {
        asked.push((
            Instant::now(),
            ask_me(&app.client, &app.address, &ada.access),
        ));
        // The first two take the threads; the rest queue behind them.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut answers = Vec::new();
    for (at, a) in asked {
        answers.push((at, a.await.unwrap()));
    }
    lock.release();
    for (asked_at, (status, retry_after, at, body)) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(retry_after.as_ref().map(|v| v.to_str().unwrap()), Some("1"));
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "unavailable");
        let waited = at.duration_since(*asked_at);
        assert!(
            (Duration::from_millis(900)..Duration::from_millis(1400)).contains(&waited),
            "answered after {waited:?}"
        );
    }
}

#[tokio::test]
async fn queries_beyond_the_queue_limit_are_answered_503_without_waiting() {
    // Two database threads (the pool's size in tests), two places in the
    // queue; lock waits as long as the test holds its lock.
    let app = spawn_app_with(|s| {
        s.database.queue_limit = std::num::NonZeroUsize::new(2).unwrap();
        s.database.lock_timeout_ms = NonZero::new(60_000).unwrap();
    })
    .await;
    let ada = app.signup_and_login(Role::User).await;
    let lock = app.db().lock_table("sessions");
    let mut asked = Vec::new();
    for _ in 0..6 {
        asked.push(ask_me(&app.client, &app.address, &ada.access));
        // In order: two take the threads, two queue, two find the queue full.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = Instant::now();
    lock.release();
    let mut answers = Vec::new();
    for a in asked {
        answers.push(a.await.unwrap());
    }
    let served: Vec<_> = answers.iter().map(|a| a.0).collect();
    assert_eq!(served[..4], [StatusCode::OK; 4], "{answers:?}");
    for (status, retry_after, at, body) in &answers[4..] {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(retry_after.as_ref().map(|v| v.to_str().unwrap()), Some("1"));
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "unavailable");
        assert!(
            *at < released,
            "answered while the queue was still full, not after"
        );
    }
}

#[tokio::test]
async fn a_queued_query_whose_client_has_gone_never_runs() {
    use std::io::Write;
    // Lock waits as long as the test holds its lock.
    let app = spawn_app_with(|s| s.database.lock_timeout_ms = NonZero::new(60_000).unwrap()).await;
    let ada = app.signup_and_login(Role::User).await;
    let lock = app.db().lock_table("sessions");
    let before = app.queries.get();
    // Two hold the database threads...
    let running: Vec<_> = (0..2)
        .map(|_| {
            let (client, base, token) =
                (app.client.clone(), app.address.clone(), ada.access.clone());
            tokio::spawn(async move {
                let resp = client
                    .get(format!("{base}/users/me"))
                    .bearer_auth(token)
                    .send();
                resp.await.map(|r| r.status())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...four queue behind them, and their clients go away.
    let (address, token) = (
        app.address.trim_start_matches("http://").to_owned(),
        ada.access.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let streams: Vec<_> = (0..4)
            .map(|_| {
                let mut stream = std::net::TcpStream::connect(&address).unwrap();
                write!(
                    stream,
                    "GET /users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
                )
                .unwrap();
                stream
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        drop(streams);
    })
    .await
    .unwrap();
    // Released well within the queue's wait, so only the gone clients are skipped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    lock.release();
    for r in running {
        assert_eq!(r.await.unwrap().unwrap(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.queries.get() - before,
        2,
        "only the two running requests reached the database"
    );
}

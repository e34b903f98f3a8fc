//! Bounded hashing: at most `auth.hash_concurrency` hashes at once, at most
//! `auth.hash_queue` waiting, the rest answered 503 at once.
use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::task::JoinHandle;

use crate::helpers::{assert_error, spawn_app_with, TestApp, PASSWORD};

/// One hash at a time, two waiting; a real cost so that hashes overlap.
async fn bounded_app() -> TestApp {
    spawn_app_with(|s| {
        s.auth.bcrypt_cost = 12;
        s.auth.hash_concurrency = Some(1);
        s.auth.hash_queue = 2;
        s.auth.hash_wait_ms = 30_000;
    })
    .await
}

/// `n` logins of unknown emails, sent at once as tasks of their own; each
/// comes to its status and how long it took.
fn spawn_unknown_logins(app: &TestApp, n: usize) -> Vec<JoinHandle<(StatusCode, Duration)>> {
    (0..n)
        .map(|i| {
            let (client, url) = (app.client.clone(), format!("{}/token", app.address));
            tokio::spawn(async move {
                let started = Instant::now();
                let form = [
                    ("username", format!("nobody{i}@example.com")),
                    ("password", PASSWORD.to_owned()),
                ];
                let status = client.post(url).form(&form).send().await.unwrap().status();
                (status, started.elapsed())
            })
        })
        .collect()
}

#[tokio::test]
async fn logins_beyond_the_bound_are_503_at_once_with_retry_after() {
    let app = bounded_app().await;
    let logins = (0..10).map(|i| {
        let app = &app;
        async move {
            let started = Instant::now();
            let resp = app.login(&format!("nobody{i}@example.com"), PASSWORD).await;
            (resp, started.elapsed())
        }
    });
    let mut admitted = 0;
    let mut refused = 0;
    for (resp, took) in futures_util::future::join_all(logins).await {
        match resp.status() {
            StatusCode::UNAUTHORIZED => admitted += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert!(took < Duration::from_millis(100), "a refusal took {took:?}");
                let retry: u64 = resp.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
                assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        admitted <= 3,
        "one hashing and two waiting at most, {admitted} admitted"
    );
    assert_eq!(admitted + refused, 10);
    assert!(refused >= 7, "{refused}");
    assert_eq!(app.hasher.hashes_run(), admitted as u64);
}

#[tokio::test]
async fn refusals_beyond_the_bound_wait_for_no_database_work() {
    let app = bounded_app().await;
    // The throttle's table locked: every admitted login waits on its round trip.
    let lock = app.db().lock_table("auth_throttle");
    let logins = spawn_unknown_logins(&app, 10);
    tokio::time::sleep(Duration::from_millis(600)).await;
    lock.release();
    let (mut admitted, mut refused) = (0, 0);
    for login in logins {
        match login.await.unwrap() {
            (StatusCode::UNAUTHORIZED, _) => admitted += 1,
            (StatusCode::SERVICE_UNAVAILABLE, took) => {
                refused += 1;
                assert!(took < Duration::from_millis(100), "a refusal took {took:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(admitted <= 3, "{admitted} admitted");
    assert_eq!(admitted + refused, 10);
}

#[tokio::test]
async fn the_reset_page_is_served_while_the_hashing_bound_is_full() {
    let app = bounded_app().await;
    // Three logins admitted and held on the throttle's round trip: the bound is full.
    let lock = app.db().lock_table("auth_throttle");
    let held = spawn_unknown_logins(&app, 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = app.login("late@example.com", PASSWORD).await;
    assert_error(refused, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    // The page hashes nothing: it waits for the throttle like the logins, never for a turn.
    let page = {
        let (client, url) = (
            app.client.clone(),
            format!("{}/password/reset?token={}", app.address, "ab".repeat(32)),
        );
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    lock.release();
    assert_eq!(page.await.unwrap(), StatusCode::OK);
    for login in held {
        assert_eq!(login.await.unwrap().0, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_queued_login_whose_client_disconnects_never_hashes() {
    let app = bounded_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    let before = app.hasher.hashes_run();
    // One login holds the only turn...
    let first = {
        let (client, url) = (app.client.clone(), format!("{}/token", app.address));
        tokio::spawn(async move {
            client
                .post(url)
                .form(&[("username", "ada@example.com"), ("password", PASSWORD)])
                .send()
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    // ...a second waits for it, then its client goes away.
    let address = app.address.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let body = "username=ada%40example.com&password=whatever-it-is";
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(stream);
    })
    .await
    .unwrap();
    assert_eq!(first.await.unwrap().unwrap(), StatusCode::OK);
    // Time for the dropped one to have hashed, had it been kept.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.hasher.hashes_run() - before,
        1,
        "only the connected login hashed"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'login_failed'"),
        0,
        "the dropped login was never checked"
    );
}

/// The hashing threads keep the service's own priority: the bound leaves a
/// core to other requests, and CPU shares are the operator's to set.
#[tokio::test]
async fn hashing_threads_keep_the_services_priority() {
    let _app = bounded_app().await;
    let own = nice_and_policy(
        &std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat is readable"),
    );
    let threads = hashing_threads();
    assert!(!threads.is_empty(), "no hashing thread found");
    let wrong: Vec<_> = threads
        .iter()
        .filter(|(_, nice, policy)| (nice, policy) != (&own.0, &own.1))
        .collect();
    assert!(
        wrong.is_empty(),
        "(name, nice, policy) of hashing threads not at the process's {own:?}: {wrong:?}"
    );
}

/// (name, nice, policy) of every hashing thread of this process.
fn hashing_threads() -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task is readable") {
        let Ok(task) = task else { continue };
        // A thread may end between the listing and the reads (an app stopping).
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("stat")),
        ) else {
            continue;
        };
        if !comm.starts_with("bcrypt-") {
            continue;
        }
        let (nice, policy) = nice_and_policy(&stat);
        found.push((comm.trim().to_owned(), nice, policy));
    }
    found
}

/// (nice, policy) from a `stat` line of proc(5): after the parenthesised
/// name come field 3 (state) onwards; nice is field 19, policy field 41.
fn nice_and_policy(stat: &str) -> (String, String) {
    let after_name = &stat[stat.rfind(')').expect("a stat line names its thread") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    (fields[19 - 3].to_owned(), fields[41 - 3].to_owned())
}

//! /healthz and /readyz, including a database that goes away and comes back.
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cluster::ThrowawayCluster;
use crate::helpers::{assert_error, spawn_app, spawn_on, test_settings};

#[tokio::test]
async fn healthz_says_ok() {
    let app = spawn_app().await;
    let resp = app.get("/healthz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_says_ready_when_the_database_answers() {
    let app = spawn_app().await;
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
}

#[tokio::test]
async fn with_no_database_at_all_the_service_starts_and_readyz_is_503() {
    // Nothing listens on port 1: the pool cannot connect.
    let app = spawn_on(test_settings("postgres://postgres@127.0.0.1:1/none")).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    let started = Instant::now();
    let resp = app.get("/readyz").await;
    // Within the database's bound (1 s in tests), not the bound twice over.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "503 came after {:?}",
        started.elapsed()
    );
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(body["detail"], "Service temporarily unavailable");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("127.0.0.1") && !detail.to_lowercase().contains("connect"),
        "leaks: {detail}"
    );
}

#[tokio::test]
async fn a_database_outage_gives_503_and_the_service_recovers_without_restart() {
    let cluster = ThrowawayCluster::start();
    let mut conn =
        PgConnection::establish(&cluster.url("postgres")).expect("throwaway cluster answers");
    taskgate::db::migrate(&mut conn).expect("migrate");
    drop(conn);
    let app = spawn_on(test_settings(&cluster.url("postgres"))).await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    cluster.halt();
    // The pooled connection's socket is dead now; then no new one can be made.
    for _ in 0..3 {
        let started = Instant::now();
        let resp = app.get("/readyz").await;
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "liveness ignores the database"
    );

    cluster.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.get("/readyz").await.status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "only 503 while recovering"
        );
        assert!(
            Instant::now() < deadline,
            "no recovery within 10 s of the database's return"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every pooled connection works again, not just one.
    for _ in 0..5 {
        assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    }
}

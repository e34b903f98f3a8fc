//! `Idempotency-Key` on `POST /tasks`: a retry whose first answer was lost
//! gets that answer again, never a second task, however the retries race and
//! on whichever instance they land.
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::{at_once_on_two, spawn_app, spawn_on, TestApp, TestUser};

async fn create_with_key(app: &TestApp, who: &TestUser, key: &str, body: Value) -> Response {
    app.request(Method::POST, "/tasks")
        .bearer_auth(&who.access)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeat_with_the_same_key_and_body_answers_the_first_task_again() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let body = json!({"title": "Buy milk", "due_date": "2026-12-24"});
    let first = create_with_key(&app, &ada, "order-1", body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();

    // The same request as parsed: surrounding whitespace and key order do not count.
    let again = create_with_key(
        &app,
        &ada,
        "order-1",
        json!({"due_date": "2026-12-24", "title": "  Buy milk "}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 1);

    // Another key is another task.
    let other = create_with_key(&app, &ada, "order-2", json!({"title": "Buy milk"})).await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 2);
}

#[tokio::test]
async fn a_key_reused_for_another_body_is_422_and_creates_nothing() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let first = create_with_key(&app, &ada, "k", json!({"title": "Buy milk"})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let other = create_with_key(&app, &ada, "k", json!({"title": "Buy bread"})).await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["error"], "validation_error");
    assert_eq!(
        body["fields"]["Idempotency-Key"],
        "was used for a different request in the last 24 hours"
    );
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 1);

    // Keys are each user's own: another user's same key is a new task.
    let bob = app.signup_and_login(Role::User).await;
    let bobs = create_with_key(&app, &bob, "k", json!({"title": "Buy bread"})).await;
    assert_eq!(bobs.status(), StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 2);
}

/// Retries racing each other, half of them on a second instance: one task,
/// and every answer names it.
#[tokio::test]
async fn racing_repeats_on_two_instances_create_one_task() {
    let app = spawn_app().await;
    let second = spawn_on(app.settings.clone()).await;
    let ada = app.signup_and_login(Role::User).await;
    let answers = at_once_on_two(&app, &second, 10, |_, base| {
        app.client
            .post(format!("{base}/tasks"))
            .bearer_auth(&ada.access)
            .header("Idempotency-Key", "race")
            .json(&json!({"title": "Buy milk"}))
    })
    .await;
    let mut ids = std::collections::BTreeSet::new();
    for resp in answers {
        assert_eq!(resp.status(), StatusCode::CREATED);
        ids.insert(resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 1);
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys"), 1);
}

/// A key answers for 24 hours; then it is free again, and pruned.
#[tokio::test]
async fn a_key_older_than_a_day_is_free_again_and_pruned() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let first = create_with_key(&app, &ada, "daily", json!({"title": "Water plants"})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    app.sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'");
    let next = create_with_key(&app, &ada, "daily", json!({"title": "Feed cat"})).await;
    assert_eq!(next.status(), StatusCode::CREATED);
    assert!(next.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 2);

    app.sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'");
    let mut conn = app.db().connect();
    assert_eq!(taskgate::db::idempotency::prune(&mut conn, 100).unwrap(), 1);
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys"), 0);
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 2, "tasks stay");
}

#[tokio::test]
async fn a_key_that_is_blank_too_long_or_not_ascii_is_422() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let long = "k".repeat(256);
    for key in [" ", long.as_str(), "clé"] {
        let resp = app
            .request(Method::POST, "/tasks")
            .bearer_auth(&ada.access)
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap(),
            )
            .json(&json!({"title": "Buy milk"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{key:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["fields"]["Idempotency-Key"],
            "must be 1 to 255 visible ASCII characters"
        );
    }
    let fits = create_with_key(&app, &ada, &"k".repeat(255), json!({"title": "Buy milk"})).await;
    assert_eq!(fits.status(), StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 1);
}

//! `limits.tasks_per_user`: no account fills the disk. The quota holds under
//! racing creates on two instances; a delete gives a slot back.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::num::NonZero;

use taskgate::domain::Role;

use crate::helpers::{assert_error, at_once_on_two, spawn_app_with, spawn_on};

#[tokio::test]
async fn past_the_quota_a_create_is_409_and_a_delete_frees_a_slot() {
    let app = spawn_app_with(|s| s.limits.tasks_per_user = NonZero::new(3).unwrap()).await;
    let ada = app.signup_and_login(Role::User).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let resp = app
            .create_task(&ada, json!({"title": format!("t{i}")}))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        ids.push(resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let body = assert_error(
        app.create_task(&ada, json!({"title": "one too many"}))
            .await,
        StatusCode::CONFLICT,
        "quota_exceeded",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains('3'), "{body}");
    // Under a key, too: and the key is not spent on the refusal.
    let keyed = |title: &str| {
        app.request(Method::POST, "/tasks")
            .bearer_auth(&ada.access)
            .header("Idempotency-Key", "later")
            .json(&json!({ "title": title }))
            .send()
    };
    assert_eq!(keyed("later").await.unwrap().status(), StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys"), 0);
    // Another user has a quota of their own.
    let bob = app.signup_and_login(Role::User).await;
    let resp = app.create_task(&bob, json!({"title": "mine"})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let resp = app.delete_task(&ada, &format!("/tasks/{}", ids[0])).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(keyed("later").await.unwrap().status(), StatusCode::CREATED);
    let counted = format!("SELECT task_count::bigint FROM users WHERE id = {}", ada.id);
    assert_eq!(app.count(&counted), 3);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM tasks WHERE owner_id = {}",
            ada.id
        )),
        3
    );
    // A task of someone else's is not found, and frees nothing.
    let resp = app.delete_task(&bob, &format!("/tasks/{}", ids[1])).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.count(&counted), 3);
}

/// Twenty creates racing on two instances against a quota of five: five are
/// created, fifteen refused, and the count matches the rows.
#[tokio::test]
async fn racing_creates_on_two_instances_never_pass_the_quota() {
    let app = spawn_app_with(|s| s.limits.tasks_per_user = NonZero::new(5).unwrap()).await;
    let second = spawn_on(app.settings.clone()).await;
    let ada = app.signup_and_login(Role::User).await;
    let answers = at_once_on_two(&app, &second, 20, |i, base| {
        app.client
            .post(format!("{base}/tasks"))
            .bearer_auth(&ada.access)
            .json(&json!({ "title": format!("race {i}") }))
    })
    .await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, refused), (5, 15), "{statuses:?}");
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 5);
    assert_eq!(
        app.count(&format!(
            "SELECT task_count::bigint FROM users WHERE id = {}",
            ada.id
        )),
        5
    );
}

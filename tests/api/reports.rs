//! GET /reports: numbers checked against rows the test created.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::spawn_app;

#[tokio::test]
async fn reports_count_each_users_tasks_including_users_without_any() {
    let app = spawn_app().await;
    let manager = app.signup_and_login(Role::Manager).await;
    let ada = app.signup_and_login(Role::User).await;
    let bob = app.signup_and_login(Role::User).await;
    for (who, n_done, n_open) in [(&ada, 2, 3), (&bob, 0, 1)] {
        for i in 0..(n_done + n_open) {
            let resp = app
                .request(Method::POST, "/tasks")
                .bearer_auth(&who.access)
                .json(&json!({"title": format!("t{i}"), "completed": i < n_done}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
        }
    }
    let resp = app.get_with("/reports", &manager.access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let rows = body["reports"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let row = |id: i64| rows.iter().find(|r| r["user_id"] == id).unwrap().clone();
    assert_eq!(
        row(ada.id),
        json!({"user_id": ada.id, "email": ada.email, "tasks_total": 5, "tasks_completed": 2, "tasks_open": 3})
    );
    assert_eq!(row(bob.id)["tasks_open"], 1);
    assert_eq!(
        row(manager.id),
        json!({"user_id": manager.id, "email": manager.email, "tasks_total": 0, "tasks_completed": 0, "tasks_open": 0})
    );
    assert_eq!(
        body["totals"],
        json!({"users": 3, "tasks_total": 6, "tasks_completed": 2, "tasks_open": 4})
    );
    assert!(body["generated_at"].as_str().unwrap().ends_with('Z'));
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r["user_id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

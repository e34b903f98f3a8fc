//! Tasks: CRUD, validation, paging, and owner-only access for every verb.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::{assert_error, spawn_app, TestApp, TestUser};

async fn create(app: &TestApp, who: &TestUser, body: Value) -> Value {
    let resp = app.create_task(who, body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn creating_a_task_returns_it_with_a_location() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let resp = app
        .create_task(
            &ada,
            json!({"title": "  Buy milk ", "description": "2 litres", "due_date": "2026-12-01"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let task: Value = resp.json().await.unwrap();
    assert_eq!(location, format!("/tasks/{}", task["id"]));
    let mut keys: Vec<&str> = task
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "completed",
            "created_at",
            "description",
            "due_date",
            "id",
            "owner_id",
            "title",
            "updated_at"
        ]
    );
    assert_eq!(task["title"], "Buy milk");
    assert_eq!(task["description"], "2 litres");
    assert_eq!(task["completed"], false);
    assert_eq!(task["due_date"], "2026-12-01");
    assert_eq!(task["owner_id"], ada.id);
    let fetched: Value = app.get_task(&ada, &location).await.json().await.unwrap();
    assert_eq!(fetched, task);
    assert_eq!(
        app.count("SELECT count(*) FROM tasks WHERE title = 'Buy milk'"),
        1
    );
}

#[tokio::test]
async fn task_rules_are_422_with_fields_and_nothing_is_written() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let cases = [
        (json!({}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": "t".repeat(201)}), "title"),
        (
            json!({"title": "ok", "description": "d".repeat(10_001)}),
            "description",
        ),
        (json!({"title": "ok", "due_date": "tomorrow"}), "due_date"),
        (json!({"title": "ok", "due_date": "2026-02-30"}), "due_date"),
        (json!({"title": "ok", "owner_id": 1}), "owner_id"),
        (json!({"title": "ok", "completed": "yes"}), "completed"),
        (json!({"title": "ok", "due_date": 20261201}), "due_date"),
        (json!({"title": 5}), "title"),
    ];
    for (body, field) in cases {
        let resp = app.create_task(&ada, body.clone()).await;
        let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
        assert!(err["fields"][field].is_string(), "{body}: {err}");
    }
    // Limits are in characters: 200 multi-byte characters are fine.
    create(
        &app,
        &ada,
        json!({"title": "é".repeat(200), "description": "ü".repeat(10_000)}),
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 1);
}

#[tokio::test]
async fn put_replaces_the_whole_task_and_omitted_fields_return_to_defaults() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let task = create(
        &app,
        &ada,
        json!({"title": "a", "description": "d", "completed": true, "due_date": "2026-12-01"}),
    )
    .await;
    let path = format!("/tasks/{}", task["id"]);
    let resp = app.replace_task(&ada, &path, json!({"title": "b"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let put: Value = resp.json().await.unwrap();
    assert_eq!(put["title"], "b");
    assert_eq!(put["description"], Value::Null);
    assert_eq!(put["completed"], false);
    assert_eq!(put["due_date"], Value::Null);
    let resp = app
        .replace_task(&ada, &path, json!({"description": "no title"}))
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
}

#[tokio::test]
async fn patch_changes_only_what_it_names_and_moves_updated_at() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let task = create(
        &app,
        &ada,
        json!({"title": "a", "description": "d", "due_date": "2026-12-01"}),
    )
    .await;
    let path = format!("/tasks/{}", task["id"]);
    let before = app.count(&format!(
        "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM tasks WHERE id = {}",
        task["id"]
    ));

    let patched: Value = app
        .patch_task(&ada, &path, json!({"completed": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["completed"], true);
    assert_eq!(
        (patched["title"].as_str(), patched["description"].as_str()),
        (Some("a"), Some("d"))
    );
    assert_eq!(patched["due_date"], "2026-12-01");
    let after = app.count(&format!(
        "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM tasks WHERE id = {}",
        task["id"]
    ));
    assert!(after > before, "updated_at moved");

    let cleared: Value = app
        .patch_task(&ada, &path, json!({"description": null, "due_date": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (cleared["description"].clone(), cleared["due_date"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(cleared["completed"], true);

    for bad in [
        json!({"title": null}),
        json!({"title": ""}),
        json!({"completed": null}),
        json!({"id": 5}),
    ] {
        let resp = app.patch_task(&ada, &path, bad.clone()).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    }
    let unchanged: Value = app.get_task(&ada, &path).await.json().await.unwrap();
    assert_eq!(unchanged["title"], "a");
}

#[tokio::test]
async fn another_users_task_is_404_for_every_verb_and_stays_untouched() {
    let app = spawn_app().await;
    let (ada, eve) = (
        app.signup_and_login(Role::User).await,
        app.signup_and_login(Role::Admin).await,
    );
    let task = create(&app, &ada, json!({"title": "private"})).await;
    let path = format!("/tasks/{}", task["id"]);
    let missing = "/tasks/999999";
    for p in [path.as_str(), missing] {
        for (method, body) in [
            (Method::GET, None),
            (Method::PUT, Some(json!({"title": "hacked"}))),
            (Method::PATCH, Some(json!({"title": "hacked"}))),
            (Method::DELETE, None),
        ] {
            // Even an admin: /tasks is everyone's own list.
            let resp = app.send_as(&eve, method.clone(), p, body).await;
            let err = assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
            assert_eq!(err["detail"], "Not found", "{method} {p}");
        }
    }
    let list: Vec<Value> = app.list_tasks(&eve, "").await.json().await.unwrap();
    assert!(list.is_empty());
    assert_eq!(
        app.count("SELECT count(*) FROM tasks WHERE title = 'private'"),
        1
    );
}

#[tokio::test]
async fn delete_removes_the_task() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let task = create(&app, &ada, json!({"title": "gone soon"})).await;
    let path = format!("/tasks/{}", task["id"]);
    assert_eq!(
        app.delete_task(&ada, &path).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get_task(&ada, &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.delete_task(&ada, &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 0);
}

#[tokio::test]
async fn lists_are_ordered_paged_filtered_and_counted() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let bob = app.signup_and_login(Role::User).await;
    create(&app, &bob, json!({"title": "bob's"})).await;
    for i in 0..7 {
        create(
            &app,
            &ada,
            json!({"title": format!("task {i}"), "completed": i % 2 == 0}),
        )
        .await;
    }
    let resp = app.list_tasks(&ada, "limit=3&offset=2").await;
    assert_eq!(resp.headers()["x-total-count"], "7");
    let page: Vec<Value> = resp.json().await.unwrap();
    let titles: Vec<&str> = page.iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["task 2", "task 3", "task 4"]);

    let resp = app.list_tasks(&ada, "completed=true").await;
    assert_eq!(resp.headers()["x-total-count"], "4");
    let done: Vec<Value> = resp.json().await.unwrap();
    assert!(done.iter().all(|t| t["completed"] == true));
    let ids: Vec<i64> = done.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by id");

    let resp = app.list_tasks(&ada, "offset=100").await;
    assert_eq!(resp.headers()["x-total-count"], "7");
    assert_eq!(resp.json::<Vec<Value>>().await.unwrap().len(), 0);

    // The total is right at every edge of a page: a page that is exactly
    // full, the last part of one, one that goes on.
    for (query, rows, statements) in [
        ("limit=7", 7, 2),
        ("limit=5&offset=5", 2, 2),
        ("limit=6&offset=1", 6, 2),
        ("limit=6", 6, 3),
        ("limit=1&offset=6", 1, 2),
        ("limit=1&offset=7", 0, 3),
    ] {
        let before = app.queries.get();
        let resp = app.list_tasks(&ada, query).await;
        assert_eq!(resp.headers()["x-total-count"], "7", "{query}");
        assert_eq!(
            resp.json::<Vec<Value>>().await.unwrap().len(),
            rows,
            "{query}"
        );
        // Auth, the page, and a count only when the page cannot tell the total.
        assert_eq!(app.queries.get() - before, statements, "{query}");
    }
    let default: Vec<Value> = app.list_tasks(&ada, "").await.json().await.unwrap();
    assert_eq!(default.len(), 7);
}

#[tokio::test]
async fn paging_bounds_and_bad_query_parameters_are_422() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
        ("offset=1.5", "offset"),
        ("completed=maybe", "completed"),
        ("colour=blue", "colour"),
    ] {
        let resp = app.list_tasks(&ada, query).await;
        let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
        assert!(err["fields"][field].is_string(), "{query}: {err}");
    }
    for query in ["limit=1", "limit=200", "offset=0"] {
        let resp = app.list_tasks(&ada, query).await;
        assert_eq!(resp.status(), StatusCode::OK, "{query}");
    }
    let resp = app.get_task(&ada, "/tasks/abc").await;
    let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(err["fields"]["id"].is_string(), "names the segment: {err}");
}

#[tokio::test]
async fn sql_looking_text_is_stored_verbatim() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let title = "'); DROP TABLE tasks; --";
    let task = create(&app, &ada, json!({"title": title})).await;
    assert_eq!(task["title"], title);
    assert_eq!(app.count("SELECT count(*) FROM tasks"), 1);
}

/// `GET /tasks` as (X-Total-Count, titles, statements it cost).
async fn list_titles(app: &TestApp, who: &TestUser) -> (String, Vec<String>, u64) {
    let before = app.queries.get();
    let resp = app.list_tasks(who, "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let total = resp.headers()["x-total-count"].to_str().unwrap().to_owned();
    let page: Vec<Value> = resp.json().await.unwrap();
    let titles = page
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    (total, titles, app.queries.get() - before)
}

#[tokio::test]
async fn a_list_reflects_every_change_to_the_owners_tasks_and_costs_two_statements() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let bob = app.signup_and_login(Role::User).await;
    let first = create(&app, &ada, json!({"title": "one"})).await;
    create(&app, &ada, json!({"title": "two"})).await;

    assert_eq!(
        list_titles(&app, &ada).await,
        ("2".into(), vec!["one".into(), "two".into()], 2)
    );
    // Another owner's task is not in ada's list.
    create(&app, &bob, json!({"title": "bob's"})).await;
    assert_eq!(
        list_titles(&app, &ada).await,
        ("2".into(), vec!["one".into(), "two".into()], 2)
    );

    let path = format!("/tasks/{}", first["id"]);
    let changes = [
        (
            Method::POST,
            "/tasks".to_owned(),
            Some(json!({"title": "three"})),
            vec!["one", "two", "three"],
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"title": "uno"})),
            vec!["uno", "two", "three"],
        ),
        (
            Method::PUT,
            path.clone(),
            Some(json!({"title": "eins"})),
            vec!["eins", "two", "three"],
        ),
        (Method::DELETE, path, None, vec!["two", "three"]),
    ];
    for (method, path, body, expected) in changes {
        let status = app
            .send_as(&ada, method.clone(), &path, body)
            .await
            .status();
        assert!(status.is_success(), "{method} {path}: {status}");
        let (total, titles, statements) = list_titles(&app, &ada).await;
        assert_eq!(
            (titles, total),
            (
                expected.iter().map(|t| t.to_string()).collect(),
                expected.len().to_string()
            ),
            "after {method}"
        );
        assert_eq!(statements, 2, "after {method} the list is read again");
    }

    // A change made elsewhere (another instance, psql) is seen just the same.
    app.sql(&format!(
        "UPDATE tasks SET title = 'zwei' WHERE owner_id = {} AND title = 'two'",
        ada.id
    ));
    assert_eq!(list_titles(&app, &ada).await.1, ["zwei", "three"]);
    app.sql(&format!("DELETE FROM tasks WHERE owner_id = {}", ada.id));
    assert_eq!(list_titles(&app, &ada).await, ("0".into(), vec![], 2));
}

/// A create is one statement after the request's authentication and its
/// user's write allowance (`rate_limit.writes_per_minute`): the quota's slot
/// and the row together; a delete too.
#[tokio::test]
async fn a_task_create_or_delete_is_one_statement() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let before = app.queries.get();
    let id = create(&app, &ada, json!({"title": "one"})).await["id"].clone();
    assert_eq!(
        app.queries.get() - before,
        3,
        "authentication, the write allowance, then the create"
    );
    let before = app.queries.get();
    let resp = app.delete_task(&ada, &format!("/tasks/{id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.queries.get() - before,
        3,
        "authentication, the write allowance, then the delete"
    );
}

//! The caller's own tasks. Ownership is part of every query: another user's
//! task is the same 404 as a missing one, for every verb.
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::doc;
use super::json::{double_option, JsonBody};
use super::paging::{list_response, Page};
use super::query::QueryParams;
use super::views::TaskView;
use crate::auth::AppState;
use crate::db::tasks::{self, KeyedCreate, NewTask, TaskChanges};
use crate::db::{self};
use crate::domain::task::{parse_description, parse_due_date};
use crate::domain::TaskTitle;
use crate::error::{ApiError, ErrorBody};
use crate::routes::actor::Actor;

/// POST and PUT bodies: `title` required; an omitted optional field takes its default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskBody {
    #[schema(schema_with = doc::task_title)]
    pub title: String,
    #[schema(schema_with = doc::task_description)]
    pub description: Option<String>,
    pub completed: Option<bool>,
    #[schema(value_type = Option<String>, format = Date)]
    pub due_date: Option<String>,
}

impl TaskBody {
    /// Every field, with defaults for the omitted ones.
    fn parse(self) -> Result<TaskChanges, ApiError> {
        let (title, description, due_date) = match (
            TaskTitle::parse(&self.title),
            parse_description(self.description),
            parse_due_date(self.due_date.as_deref()),
        ) {
            (Ok(t), Ok(d), Ok(due)) => (t, d, due),
            (t, d, due) => {
                return Err(ApiError::invalid_fields([
                    ("title", t.err()),
                    ("description", d.err()),
                    ("due_date", due.err()),
                ]))
            }
        };
        Ok(TaskChanges {
            title: Some(title.into_inner()),
            description: Some(description),
            completed: Some(self.completed.unwrap_or(false)),
            due_date: Some(due_date),
        })
    }
}

/// PATCH body: any subset; `null` clears `description` and `due_date`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = doc::task_title)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = doc::task_description)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = bool)]
    pub completed: Option<Option<bool>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub due_date: Option<Option<String>>,
}

impl TaskPatch {
    fn parse(self) -> Result<TaskChanges, ApiError> {
        let title = match self.title {
            None => Ok(None),
            Some(None) => Err("title must not be null".to_owned()),
            Some(Some(t)) => TaskTitle::parse(&t).map(|t| Some(t.into_inner())),
        };
        let completed = match self.completed {
            Some(None) => Err("completed must be true or false".to_owned()),
            other => Ok(other.flatten()),
        };
        let description = self.description.map(parse_description).transpose();
        let due_date = self
            .due_date
            .map(|d| parse_due_date(d.as_deref()))
            .transpose();
        match (title, completed, description, due_date) {
            (Ok(title), Ok(completed), Ok(description), Ok(due_date)) => Ok(TaskChanges {
                title,
                description,
                completed,
                due_date,
            }),
            (t, c, d, due) => Err(ApiError::invalid_fields([
                ("title", t.err()),
                ("completed", c.err()),
                ("description", d.err()),
                ("due_date", due.err()),
            ])),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// Only completed (true) or open (false) tasks.
    pub completed: Option<bool>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

/// `Idempotency-Key`: 1 to 255 visible ASCII characters (spaces inside).
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// The request's `Idempotency-Key`, if it sent one.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str().map(str::trim) {
        Ok(key) if (1..=IDEMPOTENCY_KEY_MAX).contains(&key.len()) => Ok(Some(key.to_owned())),
        _ => Err(ApiError::field(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
        )),
    }
}

/// A digest of the task a request asks for, as parsed (so key order and
/// whitespace that trimming drops do not make two requests differ).
fn fingerprint(new: &NewTask) -> String {
    use sha2::{Digest, Sha256};
    let fields = serde_json::json!([new.title, new.description, new.completed, new.due_date]);
    format!("{:x}", Sha256::digest(fields.to_string().as_bytes()))
}

/// POST /tasks
#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = TaskBody,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
        pattern = "^[\\x21-\\x7E]([\\x20-\\x7E]*[\\x21-\\x7E])?$",
        description = "Makes a retry safe: a repeat with the same key and body within 24 hours \
            answers the first task again (201, same id); with another body, 422.")),
    responses((status = 201, description = "Created (or, for a repeated Idempotency-Key, created before)", body = TaskView,
        headers(("Location" = String, description = "The path of the new task"),
            ("Idempotent-Replayed" = String, description = "`true` when this answers an earlier request with the same key"))),
        (status = 409, description = "The caller holds limits.tasks_per_user tasks already (quota_exceeded)", body = ErrorBody),
        (status = 422, description = "Invalid fields, or an Idempotency-Key used for another body", body = ErrorBody)))]
pub async fn create_task(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: Actor,
    body: JsonBody<TaskBody>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let fields = body.into_inner().parse()?;
    let new = NewTask {
        owner_id: user.id(),
        title: fields.title.unwrap_or_default(),
        description: fields.description.flatten(),
        completed: fields.completed.unwrap_or(false),
        due_date: fields.due_date.flatten(),
    };
    let limit = state.settings.limits.tasks_per_user.get();
    let created = match key {
        None => KeyedCreate::Created(
            db::run(&state.pool, move |conn| tasks::insert(conn, &new, limit)).await?,
        ),
        Some(key) => {
            let fingerprint = fingerprint(&new);
            db::run(&state.pool, move |conn| {
                tasks::insert_once(conn, &new, limit, &key, &fingerprint)
            })
            .await?
        }
    };
    let (task, replayed) = match created {
        KeyedCreate::Created(task) => (task, false),
        KeyedCreate::Replayed(task) => (task, true),
        KeyedCreate::KeyReused => {
            return Err(ApiError::field(
                "Idempotency-Key",
                "was used for a different request in the last 24 hours",
            ))
        }
    };
    let mut answer = HttpResponse::Created();
    answer.insert_header((header::LOCATION, format!("/tasks/{}", task.id)));
    if replayed {
        answer.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(answer.json(TaskView::from(task)))
}

/// GET /tasks
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(TaskQuery),
    responses((status = 200, description = "The caller's tasks by id; X-Total-Count", body = [TaskView]), (status = 422, description = "Bad paging or filter", body = ErrorBody)))]
pub async fn list_tasks(
    state: web::Data<AppState>,
    user: Actor,
    query: QueryParams<TaskQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::parse(query.limit, query.offset)?;
    let owner = user.id();
    let (rows, total) = db::run(&state.pool, move |conn| {
        tasks::list(conn, Some(owner), query.completed, page.limit, page.offset)
    })
    .await?;
    let views: Vec<TaskView> = rows.into_iter().map(TaskView::from).collect();
    Ok(list_response(&views, total))
}

/// GET /tasks/{id}
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path)),
    responses((status = 200, description = "The task", body = TaskView), (status = 404, description = "No such task of the caller's", body = ErrorBody)))]
pub async fn get_task(
    state: web::Data<AppState>,
    user: Actor,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, owner) = (id.into_inner(), user.id());
    let task = db::run(&state.pool, move |conn| tasks::find_owned(conn, id, owner)).await?;
    Ok(HttpResponse::Ok().json(TaskView::from(task)))
}

/// PUT /tasks/{id}
#[utoipa::path(put, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path)),
    request_body = TaskBody,
    responses((status = 200, description = "Replaced", body = TaskView), (status = 404, description = "No such task of the caller's", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody)))]
pub async fn replace_task(
    state: web::Data<AppState>,
    user: Actor,
    id: web::Path<i64>,
    body: JsonBody<TaskBody>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.into_inner().parse()?;
    save(&state, user, id.into_inner(), changes).await
}

/// PATCH /tasks/{id}
#[utoipa::path(patch, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path)),
    request_body = TaskPatch,
    responses((status = 200, description = "Updated", body = TaskView), (status = 404, description = "No such task of the caller's", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody)))]
pub async fn update_task(
    state: web::Data<AppState>,
    user: Actor,
    id: web::Path<i64>,
    body: JsonBody<TaskPatch>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.into_inner().parse()?;
    save(&state, user, id.into_inner(), changes).await
}

async fn save(
    state: &AppState,
    user: Actor,
    id: i64,
    changes: TaskChanges,
) -> Result<HttpResponse, ApiError> {
    let owner = user.id();
    let task = db::run(&state.pool, move |conn| {
        tasks::update_owned(conn, id, owner, &changes)
    })
    .await?;
    Ok(HttpResponse::Ok().json(TaskView::from(task)))
}

/// DELETE /tasks/{id}
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such task of the caller's", body = ErrorBody)))]
pub async fn delete_task(
    state: web::Data<AppState>,
    user: Actor,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, owner) = (id.into_inner(), user.id());
    db::run(&state.pool, move |conn| {
        tasks::delete_owned(conn, id, owner)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

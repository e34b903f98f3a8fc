//! Queries on `tasks`. Every one a user can reach filters on the owner, so
//! another user's task is simply not found.
use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;

use super::idempotency;
use super::page;
use super::schema::tasks;
use super::DbError;

/// A `tasks` row (`Deserialize`: as `to_jsonb` stores it for an idempotency key).
#[derive(
    Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable, serde::Deserialize,
)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg))]
pub struct Task {
    pub id: i64,
    pub owner_id: i64,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub due_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tasks)]
pub struct NewTask {
    pub owner_id: i64,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub due_date: Option<NaiveDate>,
}

/// A PATCH (or, with every field set, a PUT): `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = tasks)]
pub struct TaskChanges {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub completed: Option<bool>,
    pub due_date: Option<Option<NaiveDate>>,
}

impl TaskChanges {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.completed.is_none()
            && self.due_date.is_none()
    }
}

/// Creates `new` while its owner holds fewer than `limit` tasks, in one
/// statement: a slot is taken in the owner's `task_count` by a conditional
/// UPDATE (re-checked on the newest row version when creates race, on any
/// instance) and the task inserted with it; no slot is `QuotaExceeded`.
pub fn insert(conn: &mut PgConnection, new: &NewTask, limit: u32) -> Result<Task, DbError> {
    use diesel::sql_types::{Bool, Date, Integer, Nullable, Text};
    // SQL: a data-modifying CTE (the slot's UPDATE feeding the INSERT), which
    // the DSL has no form for.
    let created: Option<Task> = diesel::sql_query(
        "WITH slot AS (
             UPDATE users SET task_count = task_count + 1
             WHERE id = $1 AND task_count < $2
             RETURNING id)
         INSERT INTO tasks (owner_id, title, description, completed, due_date)
         SELECT id, $3, $4, $5, $6 FROM slot
         RETURNING *",
    )
    .bind::<diesel::sql_types::BigInt, _>(new.owner_id)
    .bind::<Integer, _>(limit.min(i32::MAX as u32) as i32)
    .bind::<Text, _>(&new.title)
    .bind::<Nullable<Text>, _>(&new.description)
    .bind::<Bool, _>(new.completed)
    .bind::<Nullable<Date>, _>(new.due_date)
    .get_result(conn)
    .optional()?;
    created.ok_or(DbError::QuotaExceeded { limit })
}

/// What a create under an idempotency key did.
#[derive(Debug)]
pub enum KeyedCreate {
    /// The key was free (or its 24 hours were over): the task is new.
    Created(Task),
    /// The key answered the same request before: the task as answered then.
    Replayed(Task),
    /// The key answered a different request.
    KeyReused,
}

/// Creates `new` under the owner's idempotency `key`, in one transaction: the
/// key is claimed, the task inserted and stored as the key's answer together,
/// so a request with the same key sees all of it or none.
pub fn insert_once(
    conn: &mut PgConnection,
    new: &NewTask,
    limit: u32,
    key: &str,
    fingerprint: &str,
) -> Result<KeyedCreate, DbError> {
    conn.transaction(|conn| {
        if idempotency::claim(conn, new.owner_id, key, fingerprint)? {
            let task = insert(conn, new, limit)?;
            idempotency::answer_with_task(conn, new.owner_id, key, task.id)?;
            return Ok(KeyedCreate::Created(task));
        }
        let stored = idempotency::stored(conn, new.owner_id, key)?;
        if stored.fingerprint != fingerprint {
            return Ok(KeyedCreate::KeyReused);
        }
        let task = stored
            .task
            .ok_or_else(|| DbError::bug("a claimed key without its answer"))
            .and_then(|t| Ok(serde_json::from_value(t)?))?;
        Ok(KeyedCreate::Replayed(task))
    })
}

pub fn find_owned(conn: &mut PgConnection, id: i64, owner_id: i64) -> Result<Task, DbError> {
    Ok(tasks::table
        .filter(tasks::id.eq(id))
        .filter(tasks::owner_id.eq(owner_id))
        .select(Task::as_select())
        .first(conn)?)
}

/// Tasks matching the filters, by id, with the total count of matches.
pub fn list(
    conn: &mut PgConnection,
    owner_id: Option<i64>,
    completed: Option<bool>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Task>, i64), DbError> {
    let rows = matching(owner_id, completed)
        .select(Task::as_select())
        .order(tasks::id.asc())
        .limit(page::rows_to_read(limit))
        .offset(offset)
        .load(conn)?;
    page::with_total(rows, limit, offset, || {
        Ok(matching(owner_id, completed).count().get_result(conn)?)
    })
}

/// The tasks a list's filters select, for its page and its total alike.
fn matching(owner_id: Option<i64>, completed: Option<bool>) -> tasks::BoxedQuery<'static, Pg> {
    let mut query = tasks::table.into_boxed();
    if let Some(owner) = owner_id {
        query = query.filter(tasks::owner_id.eq(owner));
    }
    if let Some(done) = completed {
        query = query.filter(tasks::completed.eq(done));
    }
    query
}

/// Applies `changes` to the owner's task; `updated_at` moves with any change.
pub fn update_owned(
    conn: &mut PgConnection,
    id: i64,
    owner_id: i64,
    changes: &TaskChanges,
) -> Result<Task, DbError> {
    if changes.is_empty() {
        return find_owned(conn, id, owner_id);
    }
    Ok(diesel::update(tasks::table)
        .filter(tasks::id.eq(id))
        .filter(tasks::owner_id.eq(owner_id))
        .set((changes, tasks::updated_at.eq(diesel::dsl::now)))
        .returning(Task::as_returning())
        .get_result(conn)?)
}

/// Deletes the owner's task and gives its slot back, in one statement;
/// `NotFound` when there is none such.
pub fn delete_owned(conn: &mut PgConnection, id: i64, owner_id: i64) -> Result<(), DbError> {
    use diesel::sql_types::BigInt;
    // SQL: a data-modifying CTE (the DELETE feeding the UPDATE).
    let deleted = diesel::sql_query(
        "WITH gone AS (DELETE FROM tasks WHERE id = $1 AND owner_id = $2 RETURNING owner_id)
         UPDATE users SET task_count = greatest(task_count - 1, 0) WHERE id IN (SELECT owner_id FROM gone)",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(owner_id)
    .execute(conn)?;
    if deleted == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

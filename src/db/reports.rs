//! Aggregates for `/reports` and `/admin/dashboard`: each one SQL statement.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbError;

#[derive(Debug, QueryableByName)]
pub struct UserTaskCounts {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = BigInt)]
    pub tasks_total: i64,
    #[diesel(sql_type = BigInt)]
    pub tasks_completed: i64,
}

/// Task counts for every user, including users with no tasks, by user id.
pub fn task_counts_per_user(conn: &mut PgConnection) -> Result<Vec<UserTaskCounts>, DbError> {
    // SQL: `count(…) FILTER (WHERE …)`, which the DSL has no form for.
    Ok(diesel::sql_query(
        "SELECT u.id AS user_id, u.email,
                count(t.id) AS tasks_total,
                count(t.id) FILTER (WHERE t.completed) AS tasks_completed
         FROM users u LEFT JOIN tasks t ON t.owner_id = u.id
         GROUP BY u.id
         ORDER BY u.id",
    )
    .load(conn)?)
}

#[derive(Debug, QueryableByName)]
pub struct Dashboard {
    #[diesel(sql_type = BigInt)]
    pub users_total: i64,
    #[diesel(sql_type = BigInt)]
    pub users_user: i64,
    #[diesel(sql_type = BigInt)]
    pub users_manager: i64,
    #[diesel(sql_type = BigInt)]
    pub users_admin: i64,
    #[diesel(sql_type = BigInt)]
    pub users_disabled: i64,
    #[diesel(sql_type = BigInt)]
    pub tasks_total: i64,
    #[diesel(sql_type = BigInt)]
    pub tasks_completed: i64,
    #[diesel(sql_type = BigInt)]
    pub sessions_active: i64,
}

pub fn dashboard(conn: &mut PgConnection) -> Result<Dashboard, DbError> {
    // SQL: three aggregate subqueries joined into one row, with `FILTER`.
    Ok(diesel::sql_query(
        "SELECT u.total AS users_total, u.by_user AS users_user, u.by_manager AS users_manager,
                u.by_admin AS users_admin, u.disabled AS users_disabled,
                t.total AS tasks_total, t.completed AS tasks_completed, s.active AS sessions_active
         FROM (SELECT count(*) AS total,
                      count(*) FILTER (WHERE role = 'user') AS by_user,
                      count(*) FILTER (WHERE role = 'manager') AS by_manager,
                      count(*) FILTER (WHERE role = 'admin') AS by_admin,
                      count(*) FILTER (WHERE disabled) AS disabled
               FROM users) u,
              (SELECT count(*) AS total, count(*) FILTER (WHERE completed) AS completed FROM tasks) t,
              (SELECT count(*) AS active FROM sessions WHERE revoked_at IS NULL AND expires_at > now()) s",
    )
    .get_result(conn)?)
}

//! The JSON shapes of users and tasks, kept apart from their rows: shared by
//! the user's own routes and the admin routes.
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::doc;
use super::json::rfc3339;
use crate::db::tasks::Task;
use crate::db::users::{Profile, User};
use crate::domain::Role;
use crate::error::ApiError;

/// A user as the API shows it: never a hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub id: i64,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(schema_with = doc::stored_full_name)]
    pub full_name: Option<String>,
    pub role: Role,
    pub disabled: bool,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-22T10:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// Whether a TOTP second factor is enabled (then logins need a code).
    pub mfa_enabled: bool,
}

impl UserView {
    pub fn new(user: &Profile, role: Role) -> UserView {
        UserView {
            id: user.id,
            email: user.email.clone(),
            full_name: user.full_name.clone(),
            role,
            disabled: user.disabled,
            created_at: user.created_at,
            mfa_enabled: user.mfa_enabled(),
        }
    }

    pub fn from_profile(user: &Profile) -> Result<UserView, ApiError> {
        Ok(UserView::new(user, user.role()?))
    }

    pub fn from_row(user: &User) -> Result<UserView, ApiError> {
        UserView::from_profile(&Profile::from(user))
    }
}

/// A task as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Task)]
pub struct TaskView {
    pub id: i64,
    #[schema(schema_with = doc::stored_task_title)]
    pub title: String,
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    pub completed: bool,
    #[schema(value_type = Option<String>, format = Date, example = "2026-12-01")]
    pub due_date: Option<NaiveDate>,
    pub owner_id: i64,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> TaskView {
        TaskView {
            id: t.id,
            title: t.title,
            description: t.description,
            completed: t.completed,
            due_date: t.due_date,
            owner_id: t.owner_id,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

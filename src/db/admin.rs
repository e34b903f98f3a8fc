//! What admins do to users, each write with its audit event in one
//! transaction; changes that could remove an admin hold the admin lock, so the
//! last active admin stays (two admins demoting each other at once included).
use diesel::prelude::*;
use serde_json::{json, Value};

use super::audit::{self, Actor, AuditKind, NewEvent};
use super::sessions;
use super::users::{self, NewUser, User, UserChanges};
use super::DbError;
use crate::domain::Role;

const LAST_ADMIN: &str = "This is the last active admin: promote or enable another admin first";

/// An event by `admin` about `subject`.
fn by_admin<'a>(kind: AuditKind, admin: &'a Actor, subject: i64, detail: Value) -> NewEvent<'a> {
    NewEvent::by(kind, admin, subject).with_detail(detail)
}

/// True when applying these changes to `user` would leave it no longer an active admin.
fn removes_an_admin(user: &User, role: Option<Role>, disabled: Option<bool>) -> bool {
    let active_admin = user.role == Role::Admin.as_str() && !user.disabled;
    active_admin && (role.is_some_and(|r| r != Role::Admin) || disabled == Some(true))
}

/// `Conflict` when no other active admin would remain.
fn refuse_last_admin(conn: &mut PgConnection) -> Result<(), DbError> {
    if users::count_active_admins(conn)? <= 1 {
        return Err(DbError::Conflict(LAST_ADMIN));
    }
    Ok(())
}

/// `POST /admin/users`: the new user and `user_created`.
pub fn create_user_recorded(
    conn: &mut PgConnection,
    admin: &Actor,
    new: &NewUser,
    role: Role,
) -> Result<User, DbError> {
    users::insert_recorded(conn, new, |user| {
        let detail = json!({ "role": role.as_str() });
        by_admin(AuditKind::UserCreated, admin, user.id, detail)
    })
}

/// What an admin asked to change about a user.
#[derive(Debug, Default)]
pub struct AdminChanges {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub full_name: Option<Option<String>>,
}

/// `PATCH /admin/users/{id}`: the changes (disabling revokes every session)
/// and `user_updated` naming what changed, from and to.
pub fn update_user_recorded(
    conn: &mut PgConnection,
    admin: &Actor,
    id: i64,
    changes: AdminChanges,
) -> Result<User, DbError> {
    conn.transaction(|conn| {
        users::lock_admin_changes(conn)?;
        let before = users::find(conn, id)?;
        if removes_an_admin(&before, changes.role, changes.disabled) {
            refuse_last_admin(conn)?;
        }
        let row_changes = UserChanges {
            role: changes.role.map(Role::as_str),
            disabled: changes.disabled,
            full_name: changes.full_name,
        };
        let after = users::update(conn, id, &row_changes)?;
        let revoked = if changes.disabled == Some(true) {
            sessions::revoke_all(conn, id)?
        } else {
            0
        };
        let mut detail = serde_json::Map::new();
        if before.role != after.role {
            detail.insert(
                "role".into(),
                json!({ "from": before.role, "to": after.role }),
            );
        }
        if before.disabled != after.disabled {
            detail.insert(
                "disabled".into(),
                json!({ "from": before.disabled, "to": after.disabled }),
            );
        }
        if before.full_name != after.full_name {
            detail.insert(
                "full_name".into(),
                json!({ "from": before.full_name, "to": after.full_name }),
            );
        }
        if revoked > 0 {
            detail.insert("sessions_revoked".into(), json!(revoked));
        }
        audit::insert(
            conn,
            by_admin(AuditKind::UserUpdated, admin, id, Value::Object(detail)),
        )?;
        Ok(after)
    })
}

/// `DELETE /admin/users/{id}`: the user (tasks and sessions cascade) and
/// `user_deleted`, which keeps the email since the row is gone.
pub fn delete_user_recorded(
    conn: &mut PgConnection,
    admin: &Actor,
    id: i64,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        users::lock_admin_changes(conn)?;
        let doomed = users::find(conn, id)?;
        if removes_an_admin(&doomed, None, Some(true)) {
            refuse_last_admin(conn)?;
        }
        users::delete(conn, id)?;
        let detail = json!({ "email": doomed.email, "role": doomed.role });
        audit::insert(conn, by_admin(AuditKind::UserDeleted, admin, id, detail))
    })
}

/// `POST /admin/users/{id}/revoke-sessions`: every session of the user and
/// `sessions_revoked`; `NotFound` for no such user.
pub fn revoke_sessions_recorded(
    conn: &mut PgConnection,
    admin: &Actor,
    id: i64,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        users::find(conn, id)?;
        let revoked = sessions::revoke_all(conn, id)?;
        let detail = json!({ "sessions": revoked });
        audit::insert(
            conn,
            by_admin(AuditKind::SessionsRevoked, admin, id, detail),
        )
    })
}

//! The audit log: append-only rows in `audit_events`.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::page;
use super::schema::audit_events;
use super::DbError;

/// Every kind docs/API.md lists; the table's CHECK constraint holds the same list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    Signup,
    LoginSucceeded,
    LoginFailed,
    LoginLocked,
    TokenRefreshed,
    RefreshReuseDetected,
    Logout,
    LogoutAll,
    PasswordChanged,
    UserCreated,
    UserUpdated,
    UserDeleted,
    SessionsRevoked,
    PasswordResetRequested,
    PasswordReset,
    PasswordSet,
    SessionRevoked,
    MfaEnabled,
    MfaDisabled,
    MfaFailed,
    MfaReset,
    MfaRecoveryCodeUsed,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Signup => "signup",
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginLocked => "login_locked",
            AuditKind::TokenRefreshed => "token_refreshed",
            AuditKind::RefreshReuseDetected => "refresh_reuse_detected",
            AuditKind::Logout => "logout",
            AuditKind::LogoutAll => "logout_all",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::UserCreated => "user_created",
            AuditKind::UserUpdated => "user_updated",
            AuditKind::UserDeleted => "user_deleted",
            AuditKind::SessionsRevoked => "sessions_revoked",
            AuditKind::PasswordResetRequested => "password_reset_requested",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::PasswordSet => "password_set",
            AuditKind::SessionRevoked => "session_revoked",
            AuditKind::MfaEnabled => "mfa_enabled",
            AuditKind::MfaDisabled => "mfa_disabled",
            AuditKind::MfaFailed => "mfa_failed",
            AuditKind::MfaReset => "mfa_reset",
            AuditKind::MfaRecoveryCodeUsed => "mfa_recovery_code_used",
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct AuditEvent {
    pub id: i64,
    pub kind: String,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub ip: Option<String>,
    pub detail: Value,
    pub at: DateTime<Utc>,
    pub request_id: Option<String>,
}

/// Who acts, as the audit log records them: the user acting (none for the
/// CLI) and the address they called from.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub ip: Option<String>,
}

/// One event to record. `detail` must never hold a password or a token.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub kind: AuditKind,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub ip: Option<&'a str>,
    pub detail: Value,
}

impl<'a> NewEvent<'a> {
    /// Something `actor` (none: the CLI, or nobody known) did to user `subject`.
    pub fn about(kind: AuditKind, actor: Option<i64>, subject: i64, ip: Option<&'a str>) -> Self {
        NewEvent {
            kind,
            actor_id: actor,
            subject_id: Some(subject),
            ip,
            detail: Value::Object(Default::default()),
        }
    }

    /// Something `actor` did to user `subject`.
    pub fn by(kind: AuditKind, actor: &'a Actor, subject: i64) -> Self {
        NewEvent::about(kind, actor.user_id, subject, actor.ip.as_deref())
    }

    /// Something a user did to their own account: actor and subject are both the user.
    pub fn by_self(kind: AuditKind, user_id: i64, ip: Option<&'a str>) -> Self {
        NewEvent::about(kind, Some(user_id), user_id, ip)
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Records `event`, with the id of the request being served (the log's
/// context: every event written while serving a request names it).
pub fn insert(conn: &mut PgConnection, event: NewEvent) -> Result<(), DbError> {
    let request_id = crate::logging::current_request();
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::kind.eq(event.kind.as_str()),
            audit_events::actor_id.eq(event.actor_id),
            audit_events::subject_id.eq(event.subject_id),
            audit_events::ip.eq(event.ip),
            audit_events::detail.eq(event.detail),
            audit_events::request_id.eq(request_id.as_deref()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes up to `batch` events older than `retention_days`; returns how
/// many (none while another instance is deleting).
pub fn prune(conn: &mut PgConnection, retention_days: u32, batch: i64) -> Result<usize, DbError> {
    use diesel::sql_types::{BigInt, Integer};
    // SQL: the advisory lock rides a CTE, which the DSL cannot write.
    Ok(diesel::sql_query(super::one_instance_at_a_time(
        "DELETE FROM audit_events WHERE id IN (
             SELECT id FROM audit_events WHERE at < now() - make_interval(days => $1)
             ORDER BY id LIMIT $2)",
    ))
    .bind::<Integer, _>(retention_days.min(i32::MAX as u32) as i32)
    .bind::<BigInt, _>(batch)
    .execute(conn)?)
}

/// Which events a list shows; every filter set must hold.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub kind: Option<AuditKind>,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub ip: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// An event with the current emails of its actor and subject (`None` once
/// that user is deleted, or when there is none).
pub struct NamedEvent {
    pub event: AuditEvent,
    pub actor_email: Option<String>,
    pub subject_email: Option<String>,
}

/// Events newest first that match `filter`, with the total.
pub fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<NamedEvent>, i64), DbError> {
    use super::schema::users;
    let (actors, subjects) = diesel::alias!(users as actors, users as subjects);
    // The same filters on the plain table (to count) and on the join with
    // both users (to read the page).
    macro_rules! filtered {
        ($source:expr) => {{
            let mut query = $source.into_boxed();
            if let Some(kind) = filter.kind {
                query = query.filter(audit_events::kind.eq(kind.as_str()));
            }
            if let Some(id) = filter.actor_id {
                query = query.filter(audit_events::actor_id.eq(id));
            }
            if let Some(id) = filter.subject_id {
                query = query.filter(audit_events::subject_id.eq(id));
            }
            if let Some(ip) = &filter.ip {
                query = query.filter(audit_events::ip.eq(ip.clone()));
            }
            if let Some(since) = filter.since {
                query = query.filter(audit_events::at.ge(since));
            }
            if let Some(until) = filter.until {
                query = query.filter(audit_events::at.lt(until));
            }
            query
        }};
    }
    let rows = filtered!(audit_events::table
        .left_join(actors.on(audit_events::actor_id.eq(actors.field(users::id).nullable())))
        .left_join(subjects.on(audit_events::subject_id.eq(subjects.field(users::id).nullable()))))
    .order(audit_events::id.desc())
    .limit(page::rows_to_read(limit))
    .offset(offset)
    .select((
        AuditEvent::as_select(),
        actors.field(users::email).nullable(),
        subjects.field(users::email).nullable(),
    ))
    .load::<(AuditEvent, Option<String>, Option<String>)>(conn)?
    .into_iter()
    .map(|(event, actor_email, subject_email)| NamedEvent {
        event,
        actor_email,
        subject_email,
    })
    .collect();
    page::with_total(rows, limit, offset, || {
        Ok(filtered!(audit_events::table).count().get_result(conn)?)
    })
}

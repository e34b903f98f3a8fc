//! Queries on `sessions`: one row per login, holding its current refresh token's id and times.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::audit;
use super::schema::{sessions, users};
use super::users::Profile;
use super::DbError;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct Session {
    pub id: Uuid,
    pub user_id: i64,
    pub refresh_jti: Uuid,
    pub refresh_iat: DateTime<Utc>,
    pub refresh_exp: DateTime<Utc>,
    pub previous_refresh_jti: Option<Uuid>,
    pub previous_retired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: i64,
    pub refresh_jti: Uuid,
    pub refresh_iat: DateTime<Utc>,
    pub refresh_exp: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub fn insert(conn: &mut PgConnection, new: &NewSession) -> Result<Session, DbError> {
    Ok(diesel::insert_into(sessions::table)
        .values(new)
        .returning(Session::as_returning())
        .get_result(conn)?)
}

/// The user behind a live session (not revoked, not expired, user enabled):
/// the one query every authenticated request makes.
pub fn find_live_user(
    conn: &mut PgConnection,
    sid: Uuid,
    user_id: i64,
) -> Result<Option<Profile>, DbError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(sid))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .filter(users::disabled.eq(false))
        .select(Profile::as_select())
        .first(conn)
        .optional()?)
}

diesel::define_sql_function!(fn least(a: diesel::sql_types::Timestamptz, b: diesel::sql_types::Timestamptz) -> diesel::sql_types::Timestamptz);

/// What presenting a refresh token came to.
#[derive(Debug)]
pub enum Refreshed {
    /// The current token: the session now holds a new one.
    Rotated(Session, Profile),
    /// The token retired moments ago (grace window): the session's current one stands.
    Grace(Session, Profile),
    /// A retired token outside the grace window: the session is now revoked.
    ReuseDetected { user_id: i64 },
    /// No live session for it, or its user is disabled or gone.
    Refused,
}

/// Rotates session `sid`'s refresh token if `presented` is its current one.
/// Racing rotations are settled by the conditional UPDATE: only the one
/// that still finds `presented` current succeeds; the others see it retired.
pub fn refresh(
    conn: &mut PgConnection,
    sid: Uuid,
    user_id: i64,
    presented: Uuid,
    refresh_ttl_seconds: i64,
    grace_seconds: i64,
) -> Result<Refreshed, DbError> {
    conn.transaction(|conn| {
        let Some(user) = find_live_user(conn, sid, user_id)? else {
            return Ok(Refreshed::Refused);
        };
        let now = Utc::now();
        let new_exp =
            DateTime::from_timestamp(now.timestamp().saturating_add(refresh_ttl_seconds), 0);
        // Whole seconds: the claims re-signed from this row must equal the token's.
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let rotated = diesel::update(sessions::table)
            .filter(sessions::id.eq(sid))
            .filter(sessions::refresh_jti.eq(presented))
            .filter(sessions::revoked_at.is_null())
            .set((
                sessions::previous_refresh_jti.eq(sessions::refresh_jti.nullable()),
                sessions::previous_retired_at.eq(now),
                sessions::refresh_jti.eq(Uuid::new_v4()),
                sessions::refresh_iat.eq(now),
                sessions::refresh_exp.eq(least(new_exp.unwrap_or(now), sessions::expires_at)),
                sessions::last_used_at.eq(diesel::dsl::now),
            ))
            .returning(Session::as_returning())
            .get_result(conn)
            .optional()?;
        if let Some(session) = rotated {
            return Ok(Refreshed::Rotated(session, user));
        }
        // Not current (any more): a racing rotation won, or this is a replay.
        let session: Session = sessions::table
            .find(sid)
            .select(Session::as_select())
            .first(conn)?;
        let in_grace = grace_seconds > 0
            && session.previous_refresh_jti == Some(presented)
            && session
                .previous_retired_at
                .is_some_and(|at| (now - at).num_seconds() < grace_seconds);
        if in_grace {
            let session = diesel::update(sessions::table.find(sid))
                .set(sessions::last_used_at.eq(diesel::dsl::now))
                .returning(Session::as_returning())
                .get_result(conn)?;
            return Ok(Refreshed::Grace(session, user));
        }
        diesel::update(sessions::table.find(sid))
            .set(sessions::revoked_at.eq(diesel::dsl::now))
            .execute(conn)?;
        Ok(Refreshed::ReuseDetected { user_id })
    })
}

/// Live sessions of a user, oldest first.
pub fn list_live(
    conn: &mut PgConnection,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Session>, i64), DbError> {
    let live = || {
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(diesel::dsl::now))
    };
    let rows = live()
        .order((sessions::created_at.asc(), sessions::id.asc()))
        .limit(super::page::rows_to_read(limit))
        .offset(offset)
        .select(Session::as_select())
        .load(conn)?;
    super::page::with_total(rows, limit, offset, || {
        Ok(live().count().get_result(conn)?)
    })
}

/// Revokes one live session of `user_id`; false when there is none such.
pub fn revoke_one(conn: &mut PgConnection, user_id: i64, sid: Uuid) -> Result<bool, DbError> {
    Ok(diesel::update(sessions::table)
        .filter(sessions::id.eq(sid))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .set(sessions::revoked_at.eq(diesel::dsl::now))
        .execute(conn)?
        == 1)
}

/// Ends the user's oldest live sessions beyond the newest `max`, inside the
/// caller's transaction. The user's logins take turns here (a transaction
/// advisory lock, held to commit), so racing logins on any instance see each
/// other's sessions and together never leave more than `max`.
pub fn keep_newest(conn: &mut PgConnection, user_id: i64, max: u32) -> Result<usize, DbError> {
    use diesel::sql_types::BigInt;
    // SQL: advisory locks are functions called for their effect, not a query's rows.
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('sessions of ' || $1, 0))")
        .bind::<BigInt, _>(user_id)
        .execute(conn)?;
    // The subquery reads the table the UPDATE writes: under another name.
    let live = diesel::alias!(sessions as live);
    let beyond_the_newest = live
        .select(live.field(sessions::id))
        .filter(live.field(sessions::user_id).eq(user_id))
        .filter(live.field(sessions::revoked_at).is_null())
        .filter(live.field(sessions::expires_at).gt(diesel::dsl::now))
        .order((
            live.field(sessions::created_at).desc(),
            live.field(sessions::id).desc(),
        ))
        .offset(i64::from(max));
    Ok(diesel::update(sessions::table)
        .filter(sessions::id.eq_any(beyond_the_newest))
        .set(sessions::revoked_at.eq(diesel::dsl::now))
        .execute(conn)?)
}

/// Revokes every session of a user; returns how many were live.
pub fn revoke_all(conn: &mut PgConnection, user_id: i64) -> Result<usize, DbError> {
    Ok(diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .set(sessions::revoked_at.eq(diesel::dsl::now))
        .execute(conn)?)
}

/// Deletes sessions that can never be used again: expired, or revoked more
/// than a day ago. Bounded per call so it never holds locks for long.
pub fn prune(conn: &mut PgConnection, batch: i64) -> Result<usize, DbError> {
    use diesel::dsl::IntervalDsl;
    let a_day_ago = diesel::dsl::now.into_sql::<diesel::sql_types::Timestamptz>() - 1.day();
    // The subquery reads the table the DELETE writes: under another name.
    let old = diesel::alias!(sessions as old);
    let dead = old
        .select(old.field(sessions::id))
        .filter(
            old.field(sessions::expires_at)
                .lt(diesel::dsl::now)
                .or(old.field(sessions::revoked_at).lt(a_day_ago.nullable())),
        )
        .limit(batch);
    Ok(diesel::delete(sessions::table.filter(sessions::id.eq_any(dead))).execute(conn)?)
}

/// `DELETE /users/me/sessions/{id}`: ends one of the user's live sessions and
/// records `logout`, in one transaction; `NotFound` when it is not theirs.
pub fn end_one_recorded(
    conn: &mut PgConnection,
    user_id: i64,
    sid: Uuid,
    ip: Option<&str>,
) -> Result<(), DbError> {
    let event = audit::NewEvent::by_self(audit::AuditKind::Logout, user_id, ip);
    revoke_one_recorded(conn, user_id, sid, event)
}

/// An admin ends one live session of user `user_id` and records
/// `session_revoked`, in one transaction; `NotFound` when it is not theirs.
pub fn revoke_by_admin_recorded(
    conn: &mut PgConnection,
    admin: &audit::Actor,
    user_id: i64,
    sid: Uuid,
) -> Result<(), DbError> {
    let event = audit::NewEvent::by(audit::AuditKind::SessionRevoked, admin, user_id);
    revoke_one_recorded(conn, user_id, sid, event)
}

/// Ends one live session of `user_id` and records `event` (with the
/// session's id as its detail), in one transaction; `NotFound` when there is
/// no such live session of theirs.
fn revoke_one_recorded(
    conn: &mut PgConnection,
    user_id: i64,
    sid: Uuid,
    event: audit::NewEvent,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        if !revoke_one(conn, user_id, sid)? {
            return Err(DbError::NotFound);
        }
        audit::insert(
            conn,
            event.with_detail(serde_json::json!({ "session_id": sid })),
        )
    })
}

/// `POST /logout`: ends the caller's session (the first of `sids`) and any
/// other of theirs named, and records `logout`, in one transaction.
pub fn log_out_recorded(
    conn: &mut PgConnection,
    user_id: i64,
    sids: &[Uuid],
    ip: Option<&str>,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        for sid in sids {
            revoke_one(conn, user_id, *sid)?;
        }
        audit::insert(
            conn,
            audit::NewEvent::by_self(audit::AuditKind::Logout, user_id, ip)
                .with_detail(serde_json::json!({ "session_id": sids.first() })),
        )
    })
}

/// `POST /logout/all`: ends every session of the user and records
/// `logout_all`, in one transaction.
pub fn log_out_all_recorded(
    conn: &mut PgConnection,
    user_id: i64,
    ip: Option<&str>,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        let revoked = revoke_all(conn, user_id)?;
        audit::insert(
            conn,
            audit::NewEvent::by_self(audit::AuditKind::LogoutAll, user_id, ip)
                .with_detail(serde_json::json!({ "sessions": revoked })),
        )
    })
}

/// A refresh (see `refresh`) and the audit event of its outcome, in one
/// transaction: `token_refreshed` (with `grace` within the grace window) or
/// `refresh_reuse_detected`; a refused token records nothing.
pub fn refresh_recorded(
    conn: &mut PgConnection,
    sid: Uuid,
    user_id: i64,
    jti: Uuid,
    ttl: i64,
    grace: i64,
    ip: Option<&str>,
) -> Result<Refreshed, DbError> {
    use serde_json::json;
    conn.transaction(|conn| {
        let outcome = refresh(conn, sid, user_id, jti, ttl, grace)?;
        let (kind, detail) = match &outcome {
            Refreshed::Rotated(..) => (
                audit::AuditKind::TokenRefreshed,
                json!({ "session_id": sid }),
            ),
            Refreshed::Grace(..) => (
                audit::AuditKind::TokenRefreshed,
                json!({ "session_id": sid, "grace": true }),
            ),
            Refreshed::ReuseDetected { .. } => (
                audit::AuditKind::RefreshReuseDetected,
                json!({ "session_id": sid }),
            ),
            Refreshed::Refused => return Ok(outcome),
        };
        audit::insert(
            conn,
            audit::NewEvent::by_self(kind, user_id, ip).with_detail(detail),
        )?;
        Ok(outcome)
    })
}

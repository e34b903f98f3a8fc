//! Queries on `sessions`: one row per login, holding its current refresh token's id and times.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{sessions, users};
use super::users::User;
use crate::error::ApiError;

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

pub fn insert(conn: &mut PgConnection, new: &NewSession) -> Result<Session, ApiError> {
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
) -> Result<Option<User>, ApiError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(sid))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .filter(users::disabled.eq(false))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

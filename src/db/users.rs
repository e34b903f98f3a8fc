//! Queries on `users`.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::audit;
use super::page;
use super::schema::users;
use super::DbError;
use crate::domain::{Email, Role};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub role: String,
    pub disabled: bool,
    pub failed_logins: i32,
    pub failed_window_start: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The TOTP secret, pending until `totp_enabled_at` is set.
    pub totp_secret: Option<Vec<u8>>,
    pub totp_enabled_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn role(&self) -> Result<Role, DbError> {
        parse_role(&self.role)
    }

    /// The secret of a confirmed second factor; `None` without one.
    pub fn totp(&self) -> Option<&[u8]> {
        self.totp_enabled_at.and(self.totp_secret.as_deref())
    }
}

/// What an authenticated request reads of its user's row: who they are, not
/// their password hash or lockout counters, which only logins need.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct Profile {
    pub id: i64,
    pub email: String,
    pub full_name: Option<String>,
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub totp_enabled_at: Option<DateTime<Utc>>,
}

impl Profile {
    pub fn role(&self) -> Result<Role, DbError> {
        parse_role(&self.role)
    }

    pub fn mfa_enabled(&self) -> bool {
        self.totp_enabled_at.is_some()
    }
}

impl From<&User> for Profile {
    fn from(user: &User) -> Profile {
        Profile {
            id: user.id,
            email: user.email.clone(),
            full_name: user.full_name.clone(),
            role: user.role.clone(),
            disabled: user.disabled,
            created_at: user.created_at,
            totp_enabled_at: user.totp_enabled_at,
        }
    }
}

/// The role column is constrained by a CHECK, so an unknown value is a bug.
fn parse_role(role: &str) -> Result<Role, DbError> {
    role.parse().map_err(|e: String| DbError::bug(e))
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub full_name: Option<&'a str>,
    pub role: &'a str,
}

impl<'a> NewUser<'a> {
    pub fn new(
        email: &'a Email,
        password_hash: &'a str,
        full_name: Option<&'a str>,
        role: Role,
    ) -> Self {
        NewUser {
            email: email.as_str(),
            password_hash,
            full_name,
            role: role.as_str(),
        }
    }
}

/// Inserts a user; a taken email is a `Conflict`.
pub fn insert(conn: &mut PgConnection, new: &NewUser) -> Result<User, DbError> {
    diesel::insert_into(users::table)
        .values(new)
        .returning(User::as_returning())
        .get_result(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info)
                if info.constraint_name() == Some("users_email_key") =>
            {
                DbError::Conflict("Email already registered")
            }
            other => other.into(),
        })
}

/// Inserts a user and the audit event that records its creation, in one
/// transaction (`event` gets the new row, for its id).
pub fn insert_recorded<'a>(
    conn: &mut PgConnection,
    new: &NewUser,
    event: impl FnOnce(&User) -> audit::NewEvent<'a>,
) -> Result<User, DbError> {
    conn.transaction(|conn| {
        let user = insert(conn, new)?;
        audit::insert(conn, event(&user))?;
        Ok(user)
    })
}

/// Emails stored before domains were kept as A-labels (2026-12-07): each
/// rewritten as `Email::parse` spells it now, so that its owner still logs
/// in. One whose new spelling another account holds is left as it is and
/// warned about (an admin decides which account stays). Returns how many
/// were rewritten.
pub fn a_label_legacy_emails(conn: &mut PgConnection) -> Result<usize, DbError> {
    let legacy: Vec<(i64, String)> = users::table
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "email ~ '@[^@]*[^[:ascii:]]'",
        ))
        .select((users::id, users::email))
        .load(conn)?;
    let mut rewritten = 0;
    for (id, stored) in legacy {
        let Ok(email) = Email::parse(&stored) else {
            log::warn!("user {id}: stored email is no longer valid; left as it is");
            continue;
        };
        // A savepoint each: a taken spelling undoes only its own update when
        // this runs inside the migration's transaction.
        let updated = conn.transaction(|conn| {
            diesel::update(users::table.find(id))
                .set(users::email.eq(email.as_str()))
                .execute(conn)
        });
        match updated {
            Ok(n) => rewritten += n,
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                log::warn!("user {id}: email is taken by another account in its A-label spelling; left as it is");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rewritten)
}

pub fn find_by_email(conn: &mut PgConnection, email: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// True when an enabled admin exists.
pub fn active_admin_exists(conn: &mut PgConnection) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        users::table
            .filter(users::role.eq(Role::Admin.as_str()))
            .filter(users::disabled.eq(false)),
    ))
    .get_result(conn)?)
}

/// The lockout's one conditional statement, keyed by `$3`: takes an attempt
/// (counted as a failure until a success clears it) unless the account is
/// locked or the attempts of this window already reach `$2`; the `$2`-th
/// locks the account for `$1` seconds. A lapsed window or lock starts afresh.
/// Every attempt taken leaves the next lock unreported (see
/// `account::report_lock_once`): attempts are only taken while unlocked.
/// PostgreSQL re-evaluates the WHERE and SET on the newest row version when
/// requests race, on any number of instances, so no more than `$2` attempts
/// are ever taken per window.
const RESERVE_ATTEMPT: &str = "
    UPDATE users SET
        failed_logins = CASE WHEN {fresh} THEN 1 ELSE failed_logins + 1 END,
        failed_window_start = CASE WHEN {fresh} THEN now() ELSE failed_window_start END,
        locked_until = CASE WHEN (CASE WHEN {fresh} THEN 1 ELSE failed_logins + 1 END) >= $2
                            THEN now() + make_interval(secs => $1) ELSE NULL END,
        lock_reported = false
    WHERE {key} = $3 AND ({fresh} OR (locked_until IS NULL AND failed_logins < $2))
    RETURNING *";
const FRESH: &str = "(failed_window_start IS NULL
    OR failed_window_start <= now() - make_interval(secs => $1)
    OR locked_until <= now())";

/// Which account a login attempt is for: by email (a login) or by id (a
/// password change checking the current password).
#[derive(Debug, Clone, Copy)]
pub enum AccountKey<'a> {
    Email(&'a str),
    Id(i64),
}

/// What taking a login attempt for an account found.
#[derive(Debug)]
pub enum Attempt {
    /// Taken: verify the password now.
    Reserved(User),
    /// Locked, or the window's attempts are all taken: try again after this long.
    Refused {
        user_id: i64,
        retry_after_seconds: u64,
    },
    /// No such account.
    Unknown,
}

/// Takes a login attempt for the account (see `RESERVE_ATTEMPT`), or says
/// why none was taken.
pub fn reserve_attempt(
    conn: &mut PgConnection,
    key: AccountKey,
    max: u32,
    window_seconds: u64,
) -> Result<Attempt, DbError> {
    let column = match key {
        AccountKey::Email(_) => "email",
        AccountKey::Id(_) => "id",
    };
    // SQL: the lockout's one conditional UPDATE with CASE arithmetic over
    // the window, keyed by either column; see RESERVE_ATTEMPT.
    let query = diesel::sql_query(
        RESERVE_ATTEMPT
            .replace("{fresh}", FRESH)
            .replace("{key}", column),
    )
    .bind::<diesel::sql_types::Double, _>(window_seconds as f64)
    .bind::<diesel::sql_types::Integer, _>(max.min(i32::MAX as u32) as i32);
    let reserved: Option<User> = match key {
        AccountKey::Email(email) => query
            .bind::<diesel::sql_types::Text, _>(email)
            .get_result(conn)
            .optional()?,
        AccountKey::Id(id) => query
            .bind::<diesel::sql_types::BigInt, _>(id)
            .get_result(conn)
            .optional()?,
    };
    if let Some(user) = reserved {
        return Ok(Attempt::Reserved(user));
    }
    let user = match key {
        AccountKey::Email(email) => find_by_email(conn, email)?,
        AccountKey::Id(id) => users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()?,
    };
    Ok(refused(user))
}

/// Why no attempt was taken for `user` (read after the refusal).
fn refused(user: Option<User>) -> Attempt {
    let Some(user) = user else {
        return Attempt::Unknown;
    };
    let left_ms = user
        .locked_until
        .map_or(0, |until| (until - Utc::now()).num_milliseconds());
    // A lock that lapsed between the two statements: the next attempt is free.
    let retry_after_seconds = if left_ms > 0 {
        (left_ms as u64).div_ceil(1000)
    } else {
        1
    };
    Attempt::Refused {
        user_id: user.id,
        retry_after_seconds,
    }
}

/// A successful login ends the run of failures (and writes only if there was one).
pub fn reset_failed_logins(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .filter(
            users::failed_logins
                .ne(0)
                .or(users::locked_until.is_not_null()),
        )
        .set((
            users::failed_logins.eq(0),
            users::failed_window_start.eq(None::<DateTime<Utc>>),
            users::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Ends the run of failures and records why, in one transaction.
pub fn reset_failed_logins_recorded(
    conn: &mut PgConnection,
    id: i64,
    event: audit::NewEvent,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        reset_failed_logins(conn, id)?;
        audit::insert(conn, event)
    })
}

pub fn find(conn: &mut PgConnection, id: i64) -> Result<User, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)?)
}

/// `%`, `_` and `\` in a search term match themselves.
fn like_pattern(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Users by id, filtered by role and by a substring of email or name, with the
/// total: their profiles, not their password hashes.
pub fn list(
    conn: &mut PgConnection,
    role: Option<Role>,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Profile>, i64), DbError> {
    let pattern = q.map(like_pattern);
    let filtered = || {
        let mut query = users::table.into_boxed();
        if let Some(role) = role {
            query = query.filter(users::role.eq(role.as_str()));
        }
        if let Some(p) = &pattern {
            query = query.filter(
                users::email
                    .ilike(p.clone())
                    .or(users::full_name.ilike(p.clone())),
            );
        }
        query
    };
    let rows = filtered()
        .order(users::id.asc())
        .limit(page::rows_to_read(limit))
        .offset(offset)
        .select(Profile::as_select())
        .load(conn)?;
    page::with_total(rows, limit, offset, || {
        Ok(filtered().count().get_result(conn)?)
    })
}

/// What an admin may change about a user.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges<'a> {
    pub role: Option<&'a str>,
    pub disabled: Option<bool>,
    pub full_name: Option<Option<String>>,
}

/// Serialises every change that could remove an admin (demote, disable,
/// delete) across all instances, so that two admins demoting each other at
/// once cannot leave none.
pub fn lock_admin_changes(conn: &mut PgConnection) -> Result<(), DbError> {
    const ADMIN_CHANGES_LOCK: i64 = 0x6164_6d69_6e73; // "admins"
                                                      // SQL: advisory locks are functions called for their effect, not a query's rows.
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(ADMIN_CHANGES_LOCK)
        .execute(conn)?;
    Ok(())
}

pub fn count_active_admins(conn: &mut PgConnection) -> Result<i64, DbError> {
    Ok(users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::disabled.eq(false))
        .count()
        .get_result(conn)?)
}

pub fn update(conn: &mut PgConnection, id: i64, changes: &UserChanges) -> Result<User, DbError> {
    if changes.role.is_none() && changes.disabled.is_none() && changes.full_name.is_none() {
        return find(conn, id);
    }
    Ok(diesel::update(users::table.find(id))
        .set((changes, users::updated_at.eq(diesel::dsl::now)))
        .returning(User::as_returning())
        .get_result(conn)?)
}

/// Deletes a user; tasks and sessions go with it (ON DELETE CASCADE).
pub fn delete(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    match diesel::delete(users::table.find(id)).execute(conn)? {
        0 => Err(DbError::NotFound),
        _ => Ok(()),
    }
}

//! The connection pool, the embedded migrations, and `run`: Diesel work off the async workers.
pub mod audit;
pub mod schema;
pub mod users;

use std::time::Duration;

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::ApiError;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any number plays: it only has to be the same for every instance.
const MIGRATION_LOCK_KEY: i64 = 0x7461_736b_6761_7465; // "taskgate"

pub type DbPool = r2d2::Pool<PgManager>;

/// A pooled connection that remembers whether its socket was lost.
pub struct PgConn {
    pub pg: PgConnection,
    lost: bool,
}

/// Diesel's manager, plus: a connection whose query failed for want of a
/// server is dropped instead of going back to the pool. This is what lets
/// the pool skip r2d2's `SELECT 1` on every checkout (a second round trip per
/// request) and still recover by itself after the database restarts.
pub struct PgManager(ConnectionManager<PgConnection>);

impl ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConn, Self::Error> {
        self.0.connect().map(|pg| PgConn { pg, lost: false })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), Self::Error> {
        self.0.is_valid(&mut conn.pg)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.lost || self.0.has_broken(&mut conn.pg)
    }
}

/// Builds the pool without connecting: the service starts, and answers 503,
/// while the database is down.
pub fn build_pool(url: &str, size: u32, timeout: Duration) -> DbPool {
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(timeout)
        .test_on_check_out(false)
        .build_unchecked(PgManager(ConnectionManager::new(url)))
}

/// Runs `f` with a pooled connection on the blocking thread pool.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        let result = f(&mut conn.pg);
        if matches!(result, Err(ApiError::Unavailable(_))) {
            conn.lost = true;
        }
        result
    })
    .await?
}

/// True for errors that mean the server is gone, not that the query was bad.
pub fn is_connection_lost(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

/// Applies pending migrations, one instance at a time; returns their names.
pub fn migrate(
    conn: &mut PgConnection,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect());
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
    applied
}

/// Answers whether the database takes a query (for `/readyz`).
pub fn ping(conn: &mut PgConnection) -> Result<(), ApiError> {
    conn.batch_execute("SELECT 1").map_err(ApiError::from)
}

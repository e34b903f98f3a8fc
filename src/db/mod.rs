//! The connection pool, the embedded migrations, and `run`: Diesel work off the async workers.
pub mod account;
pub mod admin;
pub mod audit;
mod error;
pub mod idempotency;
pub mod mfa;
pub mod outbox;
pub mod page;
pub mod recovery;
pub mod reports;
pub mod schema;
pub mod sessions;
pub mod tasks;
pub mod throttle;
pub mod users;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use diesel::connection::InstrumentationEvent;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use diesel::Connection;
use diesel::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::threads::{self, Job};
pub use error::DbError;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any number plays: it only has to be the same for every instance.
const MIGRATION_LOCK_KEY: i64 = 0x7461_736b_6761_7465; // "taskgate"

/// Held (for one statement) by the instance deleting old audit events or
/// mail: another instance's batch then deletes nothing, instead of
/// waiting on the same rows.
pub const RETENTION_LOCK_KEY: i64 = 0x7461_736b_7072_756e; // "taskprun"

/// Wraps a `DELETE ... WHERE id IN (<batch>)` so that it runs only while no
/// other instance runs one: `$lock` is bound to `RETENTION_LOCK_KEY`.
fn one_instance_at_a_time(delete: &str) -> String {
    format!(
        "WITH lock AS (SELECT pg_try_advisory_xact_lock({RETENTION_LOCK_KEY}) AS held) \
         {delete} AND (SELECT held FROM lock)"
    )
}

type Connections = r2d2::Pool<ConnectionManager<PgConnection>>;

/// The connection pool and the threads that use it, one per connection, fed
/// from one queue: a query waits for whichever thread frees first, whichever
/// async worker asked (actix's blocking threads are per worker, so one
/// worker's queries waited behind its own thread while another's idled).
/// A request waits at most `wait` (`database.timeout_seconds`) in all: in the
/// queue, for a connection and in its queries; at most
/// `database.queue_limit` queries wait in the queue. Beyond either bound the
/// request is answered 503, and one whose request has gone is never run.
#[derive(Clone)]
pub struct DbPool {
    connections: Connections,
    jobs: mpsc::SyncSender<Job>,
    wait: Duration,
    /// Where the time a job waits for a thread and a connection is observed.
    queue_wait: Option<prometheus::Histogram>,
}

/// How the pool is sized and bounded (from `database.*`).
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub size: u32,
    pub queue_limit: usize,
    /// The most a request waits for the database, in all.
    pub wait: Duration,
    /// Every connection's `statement_timeout`: a query on a stalled server
    /// frees its thread by then.
    pub statement_timeout: Duration,
    /// Every connection's `lock_timeout`: a request stuck on a lock frees its
    /// thread by then, so the requests behind it that need no lock are served.
    pub lock_timeout: Duration,
    /// Behind a transaction pooler (`database.transaction_pooler`): no named
    /// statements, no session settings.
    pub transaction_pooler: bool,
}

/// Builds the pool without connecting: the service starts, and answers 503,
/// while the database is down.
///
/// r2d2's checkout test (`SELECT 1` before every use) is off: it is a second
/// round trip per request. It is not needed to recover from a database
/// restart: once a query fails on a lost socket, libpq reports an unknown
/// transaction status, diesel's `has_broken` sees it, and r2d2 drops that
/// connection instead of pooling it again (the outage test in
/// tests/api/health.rs fails if that ever stops being true).
pub fn build_pool(url: &str, options: PoolOptions, counter: QueryCounter) -> DbPool {
    let connections = r2d2::Pool::builder()
        .max_size(options.size)
        .min_idle(Some(0))
        .connection_timeout(options.wait)
        .test_on_check_out(false)
        .connection_customizer(Box::new(SetUp {
            counter,
            statement_timeout_ms: options.statement_timeout.as_millis().max(1),
            lock_timeout_ms: options.lock_timeout.as_millis().max(1),
            transaction_pooler: options.transaction_pooler,
        }))
        .build_unchecked(ConnectionManager::new(with_keepalives(url, options.wait)));
    let jobs = threads::start("db", options.size as usize, options.queue_limit);
    DbPool {
        connections,
        jobs,
        wait: options.wait,
        queue_wait: None,
    }
}

impl DbPool {
    /// Observes each job's wait for a thread and a connection in `histogram`.
    pub fn with_queue_wait(mut self, histogram: prometheus::Histogram) -> DbPool {
        self.queue_wait = Some(histogram);
        self
    }

    /// Connections open now: (idle, in use).
    pub fn connection_counts(&self) -> (u32, u32) {
        let state = self.connections.state();
        (
            state.idle_connections,
            state.connections - state.idle_connections,
        )
    }
}

/// The URL with libpq's TCP keepalives and a connect timeout, unless it sets
/// them itself: a server that vanished without closing the socket is noticed
/// in seconds, not after the kernel's two hours.
fn with_keepalives(url: &str, wait: Duration) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let set: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let connect_timeout = wait.as_secs().max(2).to_string();
    let wanted = [
        ("keepalives", "1"),
        ("keepalives_idle", "10"),
        ("keepalives_interval", "5"),
        ("keepalives_count", "3"),
        ("connect_timeout", connect_timeout.as_str()),
    ];
    for (key, value) in wanted {
        if !set.iter().any(|k| k == key) {
            parsed.query_pairs_mut().append_pair(key, value);
        }
    }
    parsed.into()
}

/// The number of statements sent to PostgreSQL, each one round trip: how
/// tests prove that an authenticated request costs exactly one.
#[derive(Debug, Clone, Default)]
pub struct QueryCounter(Arc<AtomicU64>);

impl QueryCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What every new connection gets: its time bounds (one round trip per
/// connection, not per request), then the statement counter.
#[derive(Debug)]
struct SetUp {
    counter: QueryCounter,
    statement_timeout_ms: u128,
    lock_timeout_ms: u128,
    transaction_pooler: bool,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SetUp {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        if self.transaction_pooler {
            for_transaction_pooler(conn);
        } else {
            let (statement, lock) = (self.statement_timeout_ms, self.lock_timeout_ms);
            conn.batch_execute(&format!(
                "SET statement_timeout = {statement}; SET lock_timeout = {lock}"
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        let counter = self.counter.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                counter.0.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(())
    }
}

/// Behind a transaction pooler each statement may run on another server
/// connection: only unnamed statements (diesel sends those with their
/// parameters in one message, PQsendQueryParams), never a cached named one.
pub fn for_transaction_pooler(conn: &mut PgConnection) {
    use diesel::connection::{CacheSize, Connection};
    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
}

/// Runs `f` with a pooled connection on a database thread. Whatever the
/// database does, the answer comes within the pool's `wait`: a query still
/// running then is left to its `statement_timeout`, and the caller gets
/// `DbError::Busy` (503). `f` may fail in the caller's own terms (`E`), which
/// the pool's failures convert into.
pub async fn run<T, E, F>(pool: &DbPool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    let deadline = Instant::now() + pool.wait;
    let connections = pool.connections.clone();
    let (queue_wait, submitted) = (pool.queue_wait.clone(), Instant::now());
    // On the database thread, log lines and audit events still name the request.
    let job: Job = Box::new(crate::logging::in_request_of_caller(move || {
        // Its request was dropped (the client went away, or it was answered
        // 503): nothing to answer, and a write nobody will hear of is better
        // not made.
        if done.is_closed() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = if left.is_zero() {
            Err(DbError::Busy.into())
        } else {
            connections
                .get_timeout(left)
                .map_err(|e| DbError::from(e).into())
                .and_then(|mut conn| {
                    if let Some(histogram) = &queue_wait {
                        histogram.observe(submitted.elapsed().as_secs_f64());
                    }
                    f(&mut conn)
                })
        };
        // The request may have gone meanwhile; nobody is left to tell.
        let _ = done.send(outcome);
    }));
    match pool.jobs.try_send(job) {
        Ok(()) => {}
        // As many queries wait as may: answered now rather than queued behind them.
        Err(mpsc::TrySendError::Full(_)) => return Err(DbError::Busy.into()),
        Err(mpsc::TrySendError::Disconnected(_)) => {
            return Err(DbError::bug("the database threads have stopped").into())
        }
    }
    match tokio::time::timeout_at(deadline.into(), result).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err(DbError::bug("a database job ended without an answer").into()),
        // Queued or running past the bound: answered now; a running query
        // ends by its statement_timeout.
        Err(_) => Err(DbError::Busy.into()),
    }
}

/// Applies pending migrations, one instance at a time, all or none; returns
/// their names. One transaction holding a transaction-level advisory lock:
/// safe behind a transaction pooler too (a session lock taken through
/// PgBouncer would stay with whichever server connection ran it).
pub fn migrate(
    conn: &mut PgConnection,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    conn.transaction(|conn| {
        conn.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)?
            .iter()
            .map(ToString::to_string)
            .collect();
        users::a_label_legacy_emails(conn)?;
        Ok(applied)
    })
}

/// Answers whether the database takes a query (for `/readyz`).
pub fn ping(conn: &mut PgConnection) -> Result<(), DbError> {
    Ok(conn.batch_execute("SELECT 1")?)
}

#[cfg(test)]
mod tests {
    use super::with_keepalives;
    use std::time::Duration;

    #[test]
    fn keepalives_are_added_unless_the_url_sets_them() {
        let url = with_keepalives("postgres://u:p@db:5432/app", Duration::from_secs(3));
        assert_eq!(
            url,
            "postgres://u:p@db:5432/app?keepalives=1&keepalives_idle=10\
             &keepalives_interval=5&keepalives_count=3&connect_timeout=3"
        );
        let own = "postgres://db/app?sslmode=require&keepalives_idle=60&connect_timeout=9";
        let url = with_keepalives(own, Duration::from_secs(1));
        assert!(url.starts_with(own), "{url}");
        assert!(!url.contains("keepalives_idle=10") && !url.contains("connect_timeout=2"));
        assert!(url.contains("&keepalives=1&") && url.ends_with("keepalives_count=3"));
        // Not a URL (a libpq key=value string): left as it is.
        assert_eq!(
            with_keepalives("host=db dbname=app", Duration::from_secs(3)),
            "host=db dbname=app"
        );
    }
}

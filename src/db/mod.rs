//! The connection pool, the embedded migrations, and `run`: Diesel work off the async workers.
pub mod account;
pub mod admin;
pub mod audit;
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

use crate::error::{ApiError, Message};
use crate::threads::{self, Job};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any number plays: it only has to be the same for every instance.
const MIGRATION_LOCK_KEY: i64 = 0x7461_736b_6761_7465; // "taskgate"

type Connections = r2d2::Pool<ConnectionManager<PgConnection>>;

/// The connection pool and the threads that use it, one per connection, fed
/// from one queue: a query waits for whichever thread frees first, whichever
/// async worker asked (actix's blocking threads are per worker, so one
/// worker's queries waited behind its own thread while another's idled).
/// At most `database.queue_limit` queries wait in the queue, each at most
/// `wait` (`database.timeout_seconds`, as for a connection); beyond either
/// bound the request is answered 503, and one whose request has gone is never run.
#[derive(Clone)]
pub struct DbPool {
    connections: Connections,
    jobs: mpsc::SyncSender<Job>,
    wait: Duration,
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
pub fn build_pool(
    url: &str,
    size: u32,
    queue_limit: usize,
    timeout: Duration,
    counter: QueryCounter,
) -> DbPool {
    let connections = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(timeout)
        .test_on_check_out(false)
        .connection_customizer(Box::new(CountQueries(counter)))
        .build_unchecked(ConnectionManager::new(url));
    let jobs = threads::start("db", size as usize, queue_limit);
    DbPool {
        connections,
        jobs,
        wait: timeout,
    }
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

#[derive(Debug)]
struct CountQueries(QueryCounter);

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for CountQueries {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        let counter = self.0.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                counter.0.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(())
    }
}

/// Runs `f` with a pooled connection on a database thread.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    let (connections, wait, queued) = (pool.connections.clone(), pool.wait, Instant::now());
    let job: Job = Box::new(move || {
        // Its request was dropped (the client went away): nothing to answer,
        // and a write nobody will hear of is better not made.
        if done.is_closed() {
            return;
        }
        let outcome = if queued.elapsed() > wait {
            // Overload is answered: this request has waited long enough.
            Err(overloaded())
        } else {
            connections
                .get()
                .map_err(ApiError::from)
                .and_then(|mut conn| f(&mut conn))
        };
        // The request may have gone meanwhile; nobody is left to tell.
        let _ = done.send(outcome);
    });
    match pool.jobs.try_send(job) {
        Ok(()) => {}
        // As many queries wait as may: answered now rather than queued behind them.
        Err(mpsc::TrySendError::Full(_)) => return Err(overloaded()),
        Err(mpsc::TrySendError::Disconnected(_)) => {
            return Err(ApiError::internal(Message(
                "the database threads have stopped".into(),
            )))
        }
    }
    result
        .await
        .map_err(|_| ApiError::internal(Message("a database job ended without an answer".into())))?
}

fn overloaded() -> ApiError {
    ApiError::Overloaded {
        retry_after_seconds: 1,
        detail: "Too many requests at once; try again in a moment",
    }
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

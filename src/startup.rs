//! `Application`: builds the HTTP server from `Settings`; `AppState` is what handlers share.
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::auth::jwt::Keys;
use crate::auth::password::PasswordHasher;
use crate::auth::AppState;
use crate::config::Settings;
use crate::db::{self, DbError, DbPool, QueryCounter};
use crate::mail::{self, Mailer};
use crate::metrics::Metrics;
use crate::routes;

pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener's port and server, when `server.metrics_port` is set.
    metrics_server: Option<(u16, Server)>,
    pool: DbPool,
    queries: QueryCounter,
    hasher: PasswordHasher,
    mailer: Option<Arc<Mailer>>,
    mail_waiting: Arc<Notify>,
    retention_days: u32,
    /// True once the start-up pass of pruning has finished.
    pruned: watch::Sender<bool>,
}

/// How often old rows are pruned (sessions, idempotency keys, audit events,
/// mail), and how many rows one batch may delete.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_BATCH: i64 = 1000;
/// A throttle window is full again a minute after its client's last request.
const PRUNE_THROTTLE_EVERY: Duration = Duration::from_secs(60);

impl Application {
    /// Binds the listener (port 0 picks a free one) and builds the server.
    /// The database is not contacted here: the pool connects on demand.
    pub fn build(settings: Settings) -> std::io::Result<Application> {
        let keys = Keys::new(&settings.jwt).map_err(std::io::Error::other)?;
        Self::build_with_keys(settings, keys)
    }

    /// `build` with the signing keys already made from `settings.jwt` (the
    /// `serve` command checks them before it touches the database).
    pub fn build_with_keys(settings: Settings, keys: Keys) -> std::io::Result<Application> {
        let queries = QueryCounter::default();
        let pool = db::build_pool(
            settings.database.url.expose_secret(),
            db::PoolOptions {
                size: settings.pool_size(),
                queue_limit: settings.database.queue_limit.get(),
                wait: settings.database_wait(),
                statement_timeout: settings.statement_timeout(),
                lock_timeout: Duration::from_millis(settings.database.lock_timeout_ms.get()),
                transaction_pooler: settings.database.transaction_pooler,
            },
            queries.clone(),
        );
        // Counted only when someone can read them.
        let metrics = settings.server.metrics_port.map(|_| Metrics::new());
        let (mut pool, mut hasher) = (
            pool,
            PasswordHasher::new(&settings.auth).map_err(std::io::Error::other)?,
        );
        if let Some(metrics) = &metrics {
            pool = pool.with_queue_wait(metrics.db_queue_wait.clone());
            hasher = hasher.with_metrics(metrics.clone());
        }
        let proxies = settings.server.trusted_proxies.clone();
        let body_timeout = Duration::from_secs(settings.server.body_timeout_seconds.get());
        let server_settings = &settings.server;
        let bind = |port| listen(&server_settings.host, port, server_settings.reuse_port);
        let listener = bind(server_settings.port)?;
        let port = listener.local_addr()?.port();
        let metrics_listener = server_settings.metrics_port.map(bind).transpose()?;
        let body_limit = settings.server.body_limit_bytes.get();
        let retention_days = settings.audit.retention_days.get();
        let workers = settings.server.workers.map(std::num::NonZeroUsize::get);
        let state_hasher = hasher.clone();
        let mailer = Mailer::new(&settings.mail, settings.recovery_enabled())
            .map_err(std::io::Error::other)?
            .map(Arc::new);
        let mail_waiting = Arc::new(Notify::new());
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            keys,
            settings: Arc::new(settings),
            hasher,
            proxies,
            mail_waiting: mail_waiting.clone(),
            metrics,
        });
        let metrics_server = metrics_listener
            .map(|listener| serve_metrics(listener, state.clone()))
            .transpose()?;
        let document = web::Data::new(routes::openapi::Document::new(routes::table));
        let origins = state.settings.cors.allowed_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(cors(&origins))
                .wrap(routes::refusals::json_refusals())
                .wrap(from_fn(routes::body::body_deadline))
                .wrap(from_fn(routes::private::private_answers))
                // Outermost: every answer, refusals included, carries its id.
                .wrap(from_fn(routes::request_log::request_log))
                .app_data(state.clone())
                .app_data(document.clone())
                .app_data(routes::body::BodyTimeout(body_timeout))
                .configure(|cfg| routes::configure_extractors(cfg, body_limit))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        // A client that closes its side has gone: drop its request (a login
        // waiting for a hashing turn then never hashes). HTTP/1.1 clients do
        // not half-close to wait for an answer.
        .h1_allow_half_closed(false)
        .listen(listener)?
        .shutdown_timeout(30);
        let workers =
            workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        server = server.workers(workers);
        Ok(Application {
            port,
            server: server.run(),
            metrics_server,
            pool,
            queries,
            hasher: state_hasher,
            mailer,
            mail_waiting,
            retention_days,
            pruned: watch::Sender::new(false),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// Statements sent to the database so far (round trips).
    pub fn query_counter(&self) -> QueryCounter {
        self.queries.clone()
    }

    /// The password hasher (tests count its hashes: a dropped login must not hash).
    pub fn hasher(&self) -> PasswordHasher {
        self.hasher.clone()
    }

    /// Turns true once the start-up pass of pruning has finished, whether or
    /// not the database answered it: tests wait for it so that no pruning
    /// statement lands among the ones they count.
    pub fn first_prune(&self) -> watch::Receiver<bool> {
        self.pruned.subscribe()
    }

    /// Stops the server from elsewhere (tests, signal handlers).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests.
    /// Meanwhile prunes (see `prune`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let pruner = tokio::spawn(prune(self.pool.clone(), self.retention_days, self.pruned));
        let sender = self
            .mailer
            .map(|mailer| tokio::spawn(mail::deliver_outbox(self.pool, mailer, self.mail_waiting)));
        let metrics = self.metrics_server.map(|(_, server)| {
            let handle = server.handle();
            (handle, actix_web::rt::spawn(server))
        });
        let result = self.server.await;
        if let Some((handle, running)) = metrics {
            handle.stop(true).await;
            let _ = running.await;
        }
        pruner.abort();
        if let Some(sender) = sender {
            sender.abort();
        }
        result
    }
}

/// A listening socket on `host:port`, shared with other processes when
/// `reuse_port` (SO_REUSEPORT: the kernel spreads new connections).
fn listen(host: &str, port: u16, reuse_port: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    if !reuse_port {
        return TcpListener::bind((host, port));
    }
    let address = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("server.host {host} names no address")))?;
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The metrics listener: `GET /metrics` and nothing else, one worker.
fn serve_metrics(
    listener: TcpListener,
    state: web::Data<AppState>,
) -> std::io::Result<(u16, Server)> {
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(routes::metrics::metrics))
            .default_service(web::to(routes::not_found))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// CORS for the admin dashboards of `cors.allowed_origins`: bearer tokens (no
/// cookies), and the headers a client needs read. Other origins get no CORS
/// headers at all, so browsers refuse them.
fn cors(origins: &[String]) -> Cors {
    use actix_web::http::{header, Method};
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("idempotency-key"),
            routes::request_log::X_REQUEST_ID,
        ])
        .expose_headers([
            header::HeaderName::from_static("x-total-count"),
            header::HeaderName::from_static("idempotent-replayed"),
            routes::request_log::X_REQUEST_ID,
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
        ])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Prunes now, then each kind on its schedule (`prune_old_rows` hourly,
/// `prune_throttle` every minute), and says when the first pass is done.
/// One task: a long hourly pass delays the minute's, it never overlaps it.
async fn prune(pool: DbPool, retention_days: u32, first_pass: watch::Sender<bool>) {
    prune_old_rows(&pool, retention_days).await;
    prune_throttle(&pool).await;
    first_pass.send_replace(true);
    let now = tokio::time::Instant::now();
    let mut hourly = tokio::time::interval_at(now + PRUNE_EVERY, PRUNE_EVERY);
    let mut minutely = tokio::time::interval_at(now + PRUNE_THROTTLE_EVERY, PRUNE_THROTTLE_EVERY);
    hourly.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    minutely.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = hourly.tick() => prune_old_rows(&pool, retention_days).await,
            _ = minutely.tick() => prune_throttle(&pool).await,
        }
    }
}

/// Deletes expired and long-revoked sessions, idempotency keys past their
/// 24 hours, audit events past `audit.retention_days` and mail sent or given
/// up on a week ago, in small batches off the request path, so that no
/// table grows forever.
async fn prune_old_rows(pool: &DbPool, retention_days: u32) {
    prune_in_batches(pool, "dead session", db::sessions::prune).await;
    prune_in_batches(pool, "spent idempotency key", db::idempotency::prune).await;
    let audit =
        move |conn: &mut diesel::PgConnection, batch| db::audit::prune(conn, retention_days, batch);
    prune_in_batches(pool, "old audit event", audit).await;
    prune_in_batches(pool, "old mail", db::outbox::prune).await;
}

/// Runs `prune` (which deletes at most a batch) until a batch comes back short.
async fn prune_in_batches(
    pool: &DbPool,
    what: &str,
    prune: impl Fn(&mut diesel::PgConnection, i64) -> Result<usize, DbError> + Copy + Send + 'static,
) {
    loop {
        match db::run(pool, move |conn| prune(conn, PRUNE_BATCH)).await {
            Ok(n) if n as i64 == PRUNE_BATCH => continue,
            Ok(n) => {
                if n > 0 {
                    log::info!("pruned {n} {what}(s)");
                }
                return;
            }
            Err(e) => {
                log::warn!("{what} pruning skipped: {e}");
                return;
            }
        }
    }
}

/// Deletes throttle windows that are full again, so that the table holds
/// only the clients of about the last minute.
async fn prune_throttle(pool: &DbPool) {
    if let Err(e) = db::run(pool, db::throttle::prune).await {
        log::warn!("throttle pruning skipped: {e}");
    }
}

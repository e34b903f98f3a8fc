//! Test harness: a fresh database per test (cloned from a migrated template)
//! and the real server on a random port.
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use taskgate::config::Settings;
use taskgate::domain::Role;
use taskgate::startup::Application;

pub fn project_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// How many migrations the tree holds (each a directory with an up.sql).
pub fn migrations_on_disk() -> usize {
    std::fs::read_dir(project_dir().join("migrations"))
        .expect("migrations directory")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().join("up.sql").exists()))
        .count()
}

pub fn config_dir() -> PathBuf {
    project_dir().join("config")
}

/// The server tests create their databases on (any database of it).
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced by `db`.
pub fn url_for(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn admin_connection() -> PgConnection {
    let url = server_url();
    PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!("tests need PostgreSQL (TEST_DATABASE_URL or 127.0.0.1:5432): {e}")
    })
}

/// Names the template after the migrations, so changed migrations get a new one.
fn template_name() -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(project_dir().join("migrations"))
        .expect("migrations/ is readable")
        .flat_map(|d| {
            let dir = d.expect("migration dir entry").path();
            ["up.sql", "down.sql"].map(|f| dir.join(f))
        })
        .collect();
    files.sort();
    let mut hasher = std::hash::DefaultHasher::new();
    for f in files {
        f.file_name().hash(&mut hasher);
        std::fs::read(&f).unwrap_or_default().hash(&mut hasher);
    }
    format!("taskgate_tpl_{:016x}", hasher.finish())
}

/// Creates the migrated template once per test process; other test processes
/// wait on an advisory lock instead of racing to build it too.
fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = template_name();
        let mut admin = admin_connection();
        admin
            .batch_execute("SELECT pg_advisory_lock(727384)")
            .expect("advisory lock");
        if !database_exists(&mut admin, &name) {
            let building = format!("{name}_building");
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .expect("drop a half-built template");
            admin
                .batch_execute(&format!("CREATE DATABASE {building}"))
                .expect("create template database");
            let mut conn = PgConnection::establish(&url_for(&server_url(), &building))
                .expect("connect to template");
            taskgate::db::migrate(&mut conn).expect("migrations apply to the template");
            drop(conn);
            // Renamed only once complete: a crash mid-way leaves no half-migrated template.
            admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .expect("rename template");
        }
        admin
            .batch_execute("SELECT pg_advisory_unlock(727384)")
            .expect("advisory unlock");
        name
    })
}

fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    use diesel::dsl::sql;
    use diesel::prelude::*;
    use diesel::sql_types::{Bool, Text};
    diesel::select(
        sql::<Bool>("EXISTS (SELECT 1 FROM pg_database WHERE datname = ")
            .bind::<Text, _>(name)
            .sql(")"),
    )
    .get_result(conn)
    .expect("query pg_database")
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// A clone of the migrated template.
    pub fn migrated() -> Self {
        Self::create(Some(template()))
    }

    /// An empty database (no tables), for migration and CLI tests.
    pub fn empty() -> Self {
        Self::create(None)
    }

    fn create(template: Option<&str>) -> Self {
        let name = format!("taskgate_test_{}", uuid::Uuid::new_v4().simple());
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        admin_connection()
            .batch_execute(&sql)
            .expect("create test database");
        let url = url_for(&server_url(), &name);
        TestDatabase { name, url }
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to test database")
    }

    /// Holds `table` locked from a connection of the test's own, so that every
    /// request whose query touches it waits until `release`.
    pub fn lock_table(&self, table: &str) -> TableLocked {
        let mut conn = self.connect();
        conn.batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .expect("lock table");
        TableLocked(conn)
    }
}

/// A table held locked until `release` (or until dropped, which rolls back).
pub struct TableLocked(PgConnection);

impl TableLocked {
    pub fn release(mut self) {
        self.0.batch_execute("COMMIT").expect("release table lock");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // A thread of its own: Drop may run inside the test's async runtime.
        let _ = std::thread::spawn(move || admin_connection().batch_execute(&sql)).join();
    }
}

pub fn init_test_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    // Before any test signs a token of its own: the provider is the process's.
    taskgate::auth::low_s::install();
    INIT.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = env_logger::builder().is_test(true).try_init();
        }
    });
}

pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The development settings from config/, with test overrides: the given
/// database, port 0, one worker, bcrypt cost 4, a random secret, no throttling.
/// `TEST_POOLER=host:port` (scripts/pgbouncer-test): the apps reach their
/// database through that pooler in transaction mode; the tests' own
/// connections (set-up, checks, locks) still go straight to PostgreSQL.
pub fn pooled(database_url: &str) -> (String, bool) {
    match std::env::var("TEST_POOLER") {
        Ok(pooler) if !pooler.is_empty() => {
            let mut url = url::Url::parse(database_url).expect("a database URL");
            let (host, port) = pooler.split_once(':').expect("TEST_POOLER is host:port");
            url.set_host(Some(host)).expect("a host");
            url.set_port(Some(port.parse().expect("a port")))
                .expect("a port");
            (url.into(), true)
        }
        _ => (database_url.to_owned(), false),
    }
}

pub fn test_settings(database_url: &str) -> Settings {
    let (database_url, transaction_pooler) = pooled(database_url);
    let vars = HashMap::from([
        ("APP_ENV".to_owned(), "development".to_owned()),
        ("DATABASE_URL".to_owned(), database_url),
        ("APP__JWT__SECRET".to_owned(), random_secret()),
    ]);
    let mut settings = Settings::load_from(&config_dir(), &vars).expect("test settings load");
    settings.server.port = 0;
    settings.server.workers = NonZero::new(1);
    settings.auth.bcrypt_cost = 4;
    settings.database.pool_size = NonZero::new(2);
    settings.database.timeout_seconds = NonZero::new(1).unwrap();
    // Every test client is 127.0.0.1; the throttling test sets its own limit.
    settings.rate_limit.auth_per_minute = NonZero::new(100_000).unwrap();
    settings.rate_limit.writes_per_minute = NonZero::new(100_000).unwrap();
    settings.database.transaction_pooler = transaction_pooler;
    settings
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// Held so the database lives as long as the app (None for custom URLs).
    pub db: Option<TestDatabase>,
    server: Option<(actix_web::dev::ServerHandle, std::thread::JoinHandle<()>)>,
    /// Statements this app has sent to PostgreSQL.
    pub queries: taskgate::db::QueryCounter,
    /// Its password hasher, to count the hashes it ran.
    pub hasher: taskgate::auth::password::PasswordHasher,
    /// `http://127.0.0.1:<server.metrics_port>` when it listens for metrics.
    pub metrics_address: Option<String>,
    /// Turns true when the app's start-up pruning pass has finished.
    first_prune: tokio::sync::watch::Receiver<bool>,
}

/// The real application on a fresh, migrated database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDatabase::migrated();
    let mut settings = test_settings(&db.url);
    customize(&mut settings);
    let mut app = spawn_on(settings).await;
    app.db = Some(db);
    app.first_prune_done().await;
    app
}

/// The real application with these exact settings, in a thread of its own
/// (its own actix System), stopped and joined when the `TestApp` drops, so
/// no server outlives its test.
pub async fn spawn_on(settings: Settings) -> TestApp {
    init_test_logging();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let app_settings = settings.clone();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(app_settings).expect("application builds");
            ready_tx
                .send((
                    app.port(),
                    app.metrics_port(),
                    app.handle(),
                    app.query_counter(),
                    app.hasher(),
                    app.first_prune(),
                ))
                .expect("test waits for the port");
            let _ = app.run_until_stopped().await;
        })
    });
    let (port, metrics_port, handle, queries, hasher, first_prune) =
        ready_rx.recv().expect("application started");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Shorter than the server's keep-alive (5 s): a connection is never
            // reused just as the server closes it (IncompleteMessage).
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("reqwest client"),
        settings,
        db: None,
        server: Some((handle, thread)),
        queries,
        hasher,
        first_prune,
        metrics_address: metrics_port.map(|port| format!("http://127.0.0.1:{port}")),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((handle, thread)) = self.server.take() {
            // A thread of its own: Drop may run inside the test's async runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                rt.block_on(handle.stop(false));
                let _ = thread.join();
            })
            .join();
        }
    }
}

impl TestApp {
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.address, path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    /// Waits for the start-up pruning pass (a handful of statements, one at
    /// a time), so that a test counting statements or filling the database
    /// queue starts from an idle app. Apps on a fresh database wait for it in
    /// `spawn_app_with`.
    pub async fn first_prune_done(&self) {
        let mut pruned = self.first_prune.clone();
        tokio::time::timeout(Duration::from_secs(30), pruned.wait_for(|done| *done))
            .await
            .expect("the start-up pruning pass finishes within 30 s")
            .expect("the app is running");
    }

    pub fn db(&self) -> &TestDatabase {
        self.db.as_ref().expect("this app has a test database")
    }
}

/// Asserts a docs/API.md error response and returns its body.
/// Sends `count` requests at once, alternating between the instances at
/// `first` and `second` (`request(i, base_url)` builds the i-th), and returns
/// their answers in order: for rules that must hold across instances.
pub async fn at_once_on_two(
    first: &TestApp,
    second: &TestApp,
    count: usize,
    request: impl Fn(usize, &str) -> reqwest::RequestBuilder,
) -> Vec<Response> {
    let sent: Vec<_> = (0..count)
        .map(|i| {
            let base = if i % 2 == 0 {
                &first.address
            } else {
                &second.address
            };
            let request = request(i, base);
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut answers = Vec::new();
    for s in sent {
        answers.push(s.await.unwrap());
    }
    answers
}

pub async fn assert_error(resp: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status, "unexpected status");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "errors are JSON"
    );
    let body: Value = resp.json().await.expect("error body is JSON");
    assert_eq!(body["error"], code, "error code in {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail in {body}"
    );
    body
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A signed-up, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/users/signup",
            &serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// `POST /token` with an urlencoded form.
    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_form("/token", &[("username", username), ("password", password)])
            .await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = serde_urlencoded_pairs(fields);
        self.request(Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// `method path` as `who`, with an optional JSON body.
    pub async fn send_as(
        &self,
        who: &TestUser,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.request(method, path).bearer_auth(&who.access);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    /// `GET /users/me` with `token`.
    pub async fn me(&self, token: &str) -> Response {
        self.get_with("/users/me", token).await
    }

    /// `GET /users/me/sessions` with `token`.
    pub async fn my_sessions(&self, token: &str) -> Response {
        self.get_with("/users/me/sessions", token).await
    }

    /// `POST /logout` as `who`: ends the session of `who`'s access token.
    pub async fn logout(&self, who: &TestUser) -> Response {
        self.send_as(who, Method::POST, "/logout", None).await
    }

    /// `POST /logout` as `who`, naming the session by its refresh token.
    pub async fn logout_session(&self, who: &TestUser, refresh_token: &str) -> Response {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        self.send_as(who, Method::POST, "/logout", Some(body)).await
    }

    /// `POST /logout/all` as `who`.
    pub async fn logout_all(&self, who: &TestUser) -> Response {
        self.send_as(who, Method::POST, "/logout/all", None).await
    }

    /// `POST /users/me/password` as `who` with `body` as it is.
    pub async fn change_password_with(&self, who: &TestUser, body: Value) -> Response {
        self.send_as(who, Method::POST, "/users/me/password", Some(body))
            .await
    }

    /// `POST /tasks` as `who`.
    pub async fn create_task(&self, who: &TestUser, body: Value) -> Response {
        self.send_as(who, Method::POST, "/tasks", Some(body)).await
    }

    /// `GET /tasks?query` as `who` (`""`: no query).
    pub async fn list_tasks(&self, who: &TestUser, query: &str) -> Response {
        let path = match query {
            "" => "/tasks".to_owned(),
            query => format!("/tasks?{query}"),
        };
        self.send_as(who, Method::GET, &path, None).await
    }

    /// `GET` of the task at `at` (its path, as its `Location` gives it) as `who`.
    pub async fn get_task(&self, who: &TestUser, at: &str) -> Response {
        self.send_as(who, Method::GET, at, None).await
    }

    /// `PUT` of the task at `at` as `who`.
    pub async fn replace_task(&self, who: &TestUser, at: &str, body: Value) -> Response {
        self.send_as(who, Method::PUT, at, Some(body)).await
    }

    /// `PATCH` of the task at `at` as `who`.
    pub async fn patch_task(&self, who: &TestUser, at: &str, body: Value) -> Response {
        self.send_as(who, Method::PATCH, at, Some(body)).await
    }

    /// `DELETE` of the task at `at` as `who`.
    pub async fn delete_task(&self, who: &TestUser, at: &str) -> Response {
        self.send_as(who, Method::DELETE, at, None).await
    }

    /// `POST /admin/users` as `who`.
    pub async fn admin_create_user(&self, who: &TestUser, body: Value) -> Response {
        self.send_as(who, Method::POST, "/admin/users", Some(body))
            .await
    }

    /// `PATCH` of the user at `at` (`/admin/users/{id}`) as `who`.
    pub async fn admin_update_user(&self, who: &TestUser, at: &str, body: Value) -> Response {
        self.send_as(who, Method::PATCH, at, Some(body)).await
    }

    /// `DELETE` of the user at `at` (`/admin/users/{id}`) as `who`.
    pub async fn admin_delete_user(&self, who: &TestUser, at: &str) -> Response {
        self.send_as(who, Method::DELETE, at, None).await
    }

    /// `POST` to `at` (`/admin/users/{id}/revoke-sessions`) as `who`.
    pub async fn admin_revoke_sessions(&self, who: &TestUser, at: &str) -> Response {
        self.send_as(who, Method::POST, at, None).await
    }

    /// `POST` to `at` (`/admin/users/{id}/password-reset`) as `who`.
    pub async fn admin_send_password_reset(&self, who: &TestUser, at: &str) -> Response {
        self.send_as(who, Method::POST, at, None).await
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub async fn get_with(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// A new user with `role` (set in the database; signup always makes `user`), logged in.
    pub async fn signup_and_login(&self, role: Role) -> TestUser {
        let email = format!(
            "{}-{}@example.com",
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        let resp = self.signup(&email, PASSWORD).await;
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap_or_default();
        assert_eq!(status, StatusCode::CREATED, "signup: {body}");
        let id = body["id"].as_i64().unwrap();
        if role != Role::User {
            self.set_role(id, role);
        }
        let pair: Value = self.login(&email, PASSWORD).await.json().await.unwrap();
        TestUser {
            id,
            email,
            password: PASSWORD.into(),
            access: pair["access_token"].as_str().expect("access token").into(),
            refresh: pair["refresh_token"]
                .as_str()
                .expect("refresh token")
                .into(),
        }
    }

    /// Gives user `id` the role `role`, in the database (no route does it for oneself).
    pub fn set_role(&self, id: i64, role: Role) {
        use diesel::prelude::*;
        use taskgate::db::schema::users;
        diesel::update(users::table.find(id))
            .set(users::role.eq(role.as_str()))
            .execute(&mut self.db().connect())
            .expect("role set");
    }

    /// The role user `id` holds in the database.
    pub fn role_of(&self, id: i64) -> Role {
        use diesel::prelude::*;
        use taskgate::db::schema::users;
        let role: String = users::table
            .find(id)
            .select(users::role)
            .first(&mut self.db().connect())
            .expect("role read");
        role.parse().expect("a stored role is a Role")
    }

    /// How many enabled accounts hold `role`.
    pub fn enabled_with_role(&self, role: Role) -> i64 {
        use diesel::prelude::*;
        use taskgate::db::schema::users;
        users::table
            .filter(users::role.eq(role.as_str()).and(users::disabled.eq(false)))
            .count()
            .get_result(&mut self.db().connect())
            .expect("role count")
    }

    /// `POST /users/me/password` as `who`.
    pub async fn change_password(&self, who: &TestUser, current: &str, new: &str) -> Response {
        let body = serde_json::json!({ "current_password": current, "new_password": new });
        self.change_password_with(who, body).await
    }

    /// Asserts that `token` no longer opens anything: `/users/me` is 401 `invalid_token`.
    pub async fn assert_token_dead(&self, token: &str) {
        assert_error(
            self.me(token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }

    /// Runs SQL on this app's database (for set-up and for checking what it holds).
    pub fn sql(&self, sql: &str) {
        self.db().connect().batch_execute(sql).expect("test SQL");
    }

    /// One integer from the database, e.g. a count.
    pub fn count(&self, sql: &str) -> i64 {
        use diesel::prelude::*;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "({sql})"
        )))
        .get_result(&mut self.db().connect())
        .expect("count query")
    }

    /// `count(sql)` once it is `expected`, or whatever it is after 10 s: for
    /// what the service writes in the background (the mail sender's marks
    /// and retries), or just after a client has seen its effect (a mail is
    /// marked sent after the SMTP server has it).
    pub async fn count_soon(&self, sql: &str, expected: i64) -> i64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = self.count(sql);
            if count == expected || std::time::Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn serde_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).expect("form encodes")
}

/// A token's JSON header and payload, decoded independently of the server's code.
pub fn decode_jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts");
    let decode = |part: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    (decode(parts[0]), decode(parts[1]))
}

/// A `taskgate serve` process (the real binary), for tests of signals and crashes.
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for Served {
    /// A test that fails half-way must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `taskgate serve` on a free port of `db`, with extra settings; waits until it listens.
pub fn serve(db: &TestDatabase, env: &[(&str, &str)]) -> Served {
    use std::process::{Command, Stdio};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (url, transaction_pooler) = pooled(&db.url);
    let child = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .arg("serve")
        .env_clear()
        .env("APP_CONFIG_DIR", config_dir())
        .env("DATABASE_URL", url)
        .env(
            "APP__DATABASE__TRANSACTION_POOLER",
            transaction_pooler.to_string(),
        )
        .env("APP__SERVER__PORT", port.to_string())
        .env("APP__SERVER__WORKERS", "1")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskgate serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Served { child, base }
}

pub fn sigterm(child: &std::process::Child) {
    signal(child, "-TERM");
}

pub fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig}");
}

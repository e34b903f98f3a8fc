//! Typed settings: `load` merges config files and `APP__*` variables, `validate` rejects bad values.
use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::Role;
use crate::logging::LogFormat;

/// A built-in signing secret so that development runs without set-up.
/// Production refuses it, as it refuses any secret shorter than 32 bytes.
pub const DEV_FAKE_SECRET: &str = "development-only-insecure-secret-do-not-use-in-production";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

impl AppEnv {
    fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "development" => Ok(AppEnv::Development),
            "production" => Ok(AppEnv::Production),
            other => Err(ConfigError(format!(
                "APP_ENV must be \"development\" or \"production\", not {other:?}"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Production => "production",
        }
    }
}

/// A configuration problem, in one line that says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(skip, default = "default_env")]
    pub env: AppEnv,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub jwt: JwtSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub cors: CorsSettings,
    pub audit: AuditSettings,
    pub limits: LimitsSettings,
    #[serde(default)]
    pub bootstrap: BootstrapSettings,
    #[serde(default)]
    pub mail: MailSettings,
    #[serde(default)]
    pub recovery: RecoverySettings,
    #[serde(default)]
    pub log: LogSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (default) or `json`: one event per line either way.
    #[serde(default)]
    pub format: LogFormat,
}

fn default_env() -> AppEnv {
    AppEnv::Development
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: NonZeroUsize,
    /// Worker threads; unset means one per core.
    pub workers: Option<NonZeroUsize>,
    /// A second listener on `host` serving `GET /metrics` (Prometheus); unset: none.
    #[serde(default)]
    pub metrics_port: Option<u16>,
    /// Listen with SO_REUSEPORT: replicas on one host's network (Docker's
    /// host networking) share the port and the kernel spreads connections.
    #[serde(default)]
    pub reuse_port: bool,
    /// A body that has not fully arrived after this long is answered 408.
    pub body_timeout_seconds: NonZeroU64,
    /// Peers (addresses or CIDRs) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::domain::TrustedProxies,
    /// Where users reach the service (`https://auth.example.com`): every URL
    /// it prints starts with it. Unset: the request's `Host`, and forwarding
    /// headers only from a trusted proxy.
    #[serde(default)]
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// Connections in the pool; unset means one more than the cores.
    pub pool_size: Option<NonZeroU32>,
    /// How many queries may wait for a connection; beyond, 503 at once.
    pub queue_limit: NonZeroUsize,
    /// The most a request waits for the database in all (queue, connection
    /// and queries) before answering 503.
    pub timeout_seconds: NonZeroU64,
    /// `statement_timeout` of every connection; unset means nine tenths of
    /// `timeout_seconds`, so a stuck query ends about when its request has
    /// been answered.
    pub statement_timeout_ms: Option<NonZeroU64>,
    /// `lock_timeout` of every connection: a request that finds a row or
    /// table locked this long is answered 503 and frees its thread for
    /// requests that need no lock (ours hold theirs for milliseconds).
    pub lock_timeout_ms: NonZeroU64,
    /// The URL is a pooler in transaction mode (PgBouncer's `pool_mode =
    /// transaction`): no named prepared statements and no session settings,
    /// which would land on whichever server connection ran them. The two
    /// timeouts must then be the database role's own settings (`ALTER ROLE`).
    #[serde(default)]
    pub transaction_pooler: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// Tasks one user may hold; past it a create is 409 `quota_exceeded`.
    pub tasks_per_user: NonZeroU32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Audit events older than this many days are deleted (hourly).
    pub retention_days: NonZeroU32,
}

/// How tokens are signed: one shared secret, or a private key whose public
/// half other services fetch from the JWKS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(try_from = "String")]
pub enum JwtAlgorithm {
    #[default]
    #[value(name = "HS256")]
    HS256,
    #[value(name = "EdDSA")]
    EdDSA,
    #[value(name = "ES256")]
    ES256,
}

impl TryFrom<String> for JwtAlgorithm {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            // An empty variable counts as unset.
            "" | "HS256" => Ok(JwtAlgorithm::HS256),
            "EdDSA" => Ok(JwtAlgorithm::EdDSA),
            "ES256" => Ok(JwtAlgorithm::ES256),
            _ => Err(format!(
                "jwt.algorithm must be HS256, EdDSA or ES256, not {value:?} (APP__JWT__ALGORITHM)"
            )),
        }
    }
}

impl JwtAlgorithm {
    pub fn is_asymmetric(self) -> bool {
        self != JwtAlgorithm::HS256
    }
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::HS256 => "HS256",
            JwtAlgorithm::EdDSA => "EdDSA",
            JwtAlgorithm::ES256 => "ES256",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    #[serde(default)]
    pub algorithm: JwtAlgorithm,
    /// HS256 only.
    pub secret: Option<SecretString>,
    /// HS256 only.
    pub previous_secrets: Vec<SecretString>,
    /// EdDSA/ES256: the signing key, PKCS#8 PEM (or read from `private_key_file`).
    pub private_key: Option<SecretString>,
    pub private_key_file: Option<PathBuf>,
    /// EdDSA/ES256: public keys (PEM) of retired keys that still verify.
    #[serde(default)]
    pub previous_public_keys: Vec<String>,
    pub access_ttl_seconds: NonZeroU64,
    pub refresh_ttl_seconds: NonZeroU64,
    pub refresh_reuse_grace_seconds: u64,
    pub session_max_seconds: NonZeroU64,
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: u64,
}

impl JwtSettings {
    /// The signing secret: the configured one, or in development the placeholder
    /// (`validate` refuses a missing secret in production).
    pub fn signing_secret(&self) -> &str {
        self.secret
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .unwrap_or(DEV_FAKE_SECRET)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub bcrypt_cost: u32,
    pub max_failed_logins: NonZeroU32,
    pub lockout_seconds: NonZeroU64,
    /// Live sessions one user may hold: a login past it ends their oldest.
    pub max_sessions_per_user: NonZeroU32,
    /// Hashes running at once; unset means one per core.
    pub hash_concurrency: Option<NonZeroUsize>,
    /// The longest expected wait for a hashing turn: a login whose place in
    /// line would wait longer is refused at once (429 for a client whose own
    /// line is long, 503 when every client's is).
    pub hash_wait_ms: NonZeroU64,
    /// Roles whose users must enrol a second factor before anything but
    /// `/users/me`, the enrolment routes and logout.
    #[serde(default, deserialize_with = "roles")]
    pub mfa_required_roles: Vec<Role>,
}

/// The sender of the service's mail when `mail.from` is unset.
fn default_sender() -> Mailbox {
    Mailbox::new(
        Some("taskgate".into()),
        lettre::Address::new("no-reply", "localhost").expect("a valid constant address"),
    )
}

/// `mail.from` as lettre reads it (blank is unset): parsing is the check.
fn mailbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Mailbox, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(default_sender());
    }
    text.parse::<Mailbox>().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an address like \"taskgate <no-reply@example.com>\""
        ))
    })
}

/// A list of origins (blank entries are none): parsing is the check.
fn origins<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(d)?
        .into_iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            if is_origin(&o) {
                Ok(o)
            } else {
                Err(serde::de::Error::custom(format!(
                    "entry {o:?} is not an origin like https://admin.example.com (comma-separated)"
                )))
            }
        })
        .collect()
}

/// A list of role names (blank entries are none): parsing is the check.
fn roles<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Role>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            r.trim().parse::<Role>().map_err(|_| {
                serde::de::Error::custom(format!(
                    "entry {r:?} is not a role: user, manager or admin (comma-separated)"
                ))
            })
        })
        .collect()
}

impl AuthSettings {
    /// Whether `role` must have a second factor.
    pub fn mfa_required(&self, role: Role) -> bool {
        self.mfa_required_roles.contains(&role)
    }

    /// Hashes at once: configured, or every core (logins are what the service is for).
    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            NonZeroUsize::get,
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub auth_per_minute: NonZeroU32,
    /// Task writes one user may make per minute (a burst of as many).
    pub writes_per_minute: NonZeroU32,
    /// IPv6 clients are keyed by this many leading bits of their address.
    pub ipv6_prefix: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Full origins (`https://admin.example.com`); blank entries are none.
    #[serde(deserialize_with = "origins")]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required` (STARTTLS)
    /// or `smtps://user:pass@host:465`. Unset: production has no recovery
    /// routes; development logs the mail instead of sending it.
    pub smtp_url: Option<SecretString>,
    #[serde(deserialize_with = "mailbox")]
    pub from: Mailbox,
    /// Where a reset link points; the token is appended as `?token=`.
    pub link_base_url: String,
    /// Certificate authorities (PEM) trusted for the SMTP server's
    /// certificate besides the public web roots: for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            smtp_url: None,
            from: default_sender(),
            link_base_url: "http://127.0.0.1:8000/password/reset".into(),
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoverySettings {
    pub token_ttl_seconds: NonZeroU64,
    /// At most one reset email per account in this long.
    pub min_interval_seconds: u64,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            token_ttl_seconds: const { NonZeroU64::new(1800).unwrap() },
            min_interval_seconds: 60,
        }
    }
}

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: [&str; 5] = [
    "auth.mfa_required_roles",
    "jwt.previous_secrets",
    "jwt.previous_public_keys",
    "cors.allowed_origins",
    "server.trusted_proxies",
];

impl Settings {
    /// Loads from `APP_CONFIG_DIR` (default `./config`) and the process environment.
    pub fn load() -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let dir = vars
            .get("APP_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Settings::load_from(&dir, &vars)
    }

    /// Loads `default.toml`, then `<APP_ENV>.toml`, then `APP__SECTION__KEY`
    /// variables and `DATABASE_URL` from `vars`; then validates.
    pub fn load_from(dir: &Path, vars: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        let env = AppEnv::parse(vars.get("APP_ENV").map(String::as_str).unwrap_or(""))?;
        let default_file = dir.join("default.toml");
        if !default_file.is_file() {
            return Err(ConfigError(format!(
                "{} not found: run from the project directory or set APP_CONFIG_DIR",
                default_file.display()
            )));
        }
        // A blank variable (`APP__AUTH__BCRYPT_COST=` in a .env file) is unset,
        // whatever its key: the files' value stands.
        let app_vars: HashMap<String, String> = vars
            .iter()
            .filter(|(k, v)| k.starts_with("APP__") && !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut environment = config::Environment::with_prefix("APP")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .try_parsing(true)
            .source(Some(app_vars));
        for key in LIST_KEYS {
            environment = environment.with_list_parse_key(key);
        }
        let mut builder = config::Config::builder()
            .add_source(config::File::from(default_file))
            .add_source(
                config::File::from(dir.join(format!("{}.toml", env.as_str()))).required(false),
            )
            .add_source(environment);
        if let Some(url) = vars.get("DATABASE_URL").filter(|u| !u.trim().is_empty()) {
            builder = builder
                .set_override("database.url", url.as_str())
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        let mut settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(describe(e)))?;
        settings.env = env;
        settings.drop_empty_values();
        settings.read_private_key_file()?;
        settings.validate()?;
        Ok(settings)
    }

    /// An empty value in a configuration file means "not set" too.
    fn drop_empty_values(&mut self) {
        let blank = |s: &SecretString| s.expose_secret().trim().is_empty();
        if self.jwt.secret.as_ref().is_some_and(blank) {
            self.jwt.secret = None;
        }
        self.jwt.previous_secrets.retain(|s| !blank(s));
        if self.jwt.private_key.as_ref().is_some_and(blank) {
            self.jwt.private_key = None;
        }
        let no_empty_path = |p: &mut Option<PathBuf>| {
            if p.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                *p = None;
            }
        };
        no_empty_path(&mut self.jwt.private_key_file);
        self.jwt
            .previous_public_keys
            .retain(|k| !k.trim().is_empty());
        if self.mail.smtp_url.as_ref().is_some_and(blank) {
            self.mail.smtp_url = None;
        }
        let defaults = MailSettings::default();
        if self
            .server
            .public_url
            .as_ref()
            .is_some_and(|u| u.trim().is_empty())
        {
            self.server.public_url = None;
        }
        if let Some(url) = &mut self.server.public_url {
            *url = url.trim().trim_end_matches('/').to_owned();
        }
        if self.mail.link_base_url.trim().is_empty()
            || self.mail.link_base_url == defaults.link_base_url
        {
            // Unset: the reset page of the public URL, or the development default.
            self.mail.link_base_url = match &self.server.public_url {
                Some(base) => format!("{base}/password/reset"),
                None => defaults.link_base_url,
            };
        }
        no_empty_path(&mut self.mail.ca_file);
        if self
            .bootstrap
            .admin_email
            .as_ref()
            .is_some_and(|e| e.trim().is_empty())
        {
            self.bootstrap.admin_email = None;
        }
        if self
            .bootstrap
            .admin_password
            .as_ref()
            .is_some_and(|p| p.expose_secret().is_empty())
        {
            self.bootstrap.admin_password = None;
        }
    }

    /// `jwt.private_key_file` becomes `jwt.private_key`: one place holds the key.
    fn read_private_key_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.jwt.private_key_file else {
            return Ok(());
        };
        if self.jwt.private_key.is_some() {
            return Err(ConfigError("set jwt.private_key (APP__JWT__PRIVATE_KEY) or jwt.private_key_file (APP__JWT__PRIVATE_KEY_FILE), not both".into()));
        }
        let pem = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "jwt.private_key_file {} cannot be read: {e} (APP__JWT__PRIVATE_KEY_FILE)",
                path.display()
            ))
        })?;
        self.jwt.private_key = Some(SecretString::from(pem));
        Ok(())
    }

    /// Rejects values the service cannot run with safely. (Whether a PEM key
    /// parses is checked where keys are built: `auth::keys`.)
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.jwt.algorithm.is_asymmetric() {
            self.validate_key_pair()?;
        } else {
            self.validate_secrets()?;
        }
        self.validate_rest()
    }

    fn validate_key_pair(&self) -> Result<(), ConfigError> {
        let algorithm = self.jwt.algorithm.as_str();
        if self.jwt.private_key.is_none() {
            return Err(ConfigError(format!("jwt.algorithm is {algorithm} but jwt.private_key is not set: run `taskgate keys generate --algorithm {algorithm}` and set APP__JWT__PRIVATE_KEY (or APP__JWT__PRIVATE_KEY_FILE)")));
        }
        if !self.jwt.previous_secrets.is_empty() {
            return Err(ConfigError(format!("jwt.previous_secrets verify HS256 tokens only, and jwt.algorithm is {algorithm}: tokens of another algorithm are always refused, so unset APP__JWT__PREVIOUS_SECRETS (switching algorithms signs every session out)")));
        }
        Ok(())
    }

    fn validate_secrets(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if self.jwt.private_key.is_some() || !self.jwt.previous_public_keys.is_empty() {
            return fail("jwt.private_key and jwt.previous_public_keys need an asymmetric jwt.algorithm: set APP__JWT__ALGORITHM=EdDSA (or ES256), or unset them for HS256".into());
        }
        match &self.jwt.secret {
            None if self.env == AppEnv::Production => {
                return fail("jwt.secret is not set: set APP__JWT__SECRET to a random string of at least 32 bytes".into())
            }
            None if !is_loopback(&self.server.host) => {
                return fail(format!("jwt.secret is not set and server.host {:?} is not a loopback address: the built-in development placeholder is public, so it only signs for 127.0.0.1; set APP__JWT__SECRET or APP__SERVER__HOST=127.0.0.1", self.server.host))
            }
            None => {}
            Some(secret) => check_secret(secret, "jwt.secret (APP__JWT__SECRET)", self.env)?,
        }
        for secret in &self.jwt.previous_secrets {
            check_secret(
                secret,
                "every jwt.previous_secrets entry (APP__JWT__PREVIOUS_SECRETS, comma-separated)",
                self.env,
            )?;
        }
        Ok(())
    }

    fn validate_rest(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if self.database.url.expose_secret().trim().is_empty() {
            return fail(
                "database.url is not set: set DATABASE_URL (postgres://user:password@host:5432/db)"
                    .into(),
            );
        }
        check_database_url(self.database.url.expose_secret()).map_err(ConfigError)?;
        if self
            .server
            .metrics_port
            .is_some_and(|p| p != 0 && p == self.server.port)
        {
            return fail(
                "server.metrics_port must differ from server.port: metrics are not served to API \
                 clients (APP__SERVER__METRICS_PORT)"
                    .into(),
            );
        }
        if !(4..=31).contains(&self.auth.bcrypt_cost) {
            return fail(
                "auth.bcrypt_cost must be between 4 and 31 (APP__AUTH__BCRYPT_COST)".into(),
            );
        }
        if self.env == AppEnv::Production && self.auth.bcrypt_cost < 10 {
            return fail(
                "auth.bcrypt_cost below 10 is refused in production (APP__AUTH__BCRYPT_COST)"
                    .into(),
            );
        }
        if let Some(url) = &self.server.public_url {
            if !is_base_url(url) {
                return fail(format!(
                    "server.public_url {url:?} must be a URL like https://auth.example.com (a path is allowed; no query, fragment or credentials) (APP__SERVER__PUBLIC_URL)"
                ));
            }
            if self.env == AppEnv::Production && !is_public_https(url) {
                return fail(
                    "server.public_url must be an https:// URL your users can reach (not loopback) in production (APP__SERVER__PUBLIC_URL)"
                        .into(),
                );
            }
        }
        if self.rate_limit.ipv6_prefix > 128 {
            return fail(
                "rate_limit.ipv6_prefix must be between 0 and 128 (APP__RATE_LIMIT__IPV6_PREFIX)"
                    .into(),
            );
        }
        if let Some(url) = &self.mail.smtp_url {
            if let Err(e) = lettre::SmtpTransport::from_url(url.expose_secret()) {
                return fail(format!(
                    "mail.smtp_url is not an smtp:// or smtps:// URL ({e}) (APP__MAIL__SMTP_URL)"
                ));
            }
            // Opportunistic STARTTLS goes on in clear text when someone on the
            // way strips the offer: the reset links with it. Plain smtp:// stays
            // allowed, as an explicit choice (a relay beside the service).
            let opportunistic = url::Url::parse(url.expose_secret())
                .is_ok_and(|u| smtp_tls_param(&u).as_deref() == Some("opportunistic"));
            if self.env == AppEnv::Production && opportunistic {
                return fail("mail.smtp_url asks for ?tls=opportunistic, which sends in clear text when STARTTLS is stripped; production takes ?tls=required or smtps:// (APP__MAIL__SMTP_URL)".into());
            }
            if self.env == AppEnv::Production {
                if let Some(host) = clear_text_credentials_to(url.expose_secret()) {
                    return fail(format!("mail.smtp_url sends its user name and password in clear text to {host}; production takes ?tls=required or smtps:// for a relay that is not this machine (APP__MAIL__SMTP_URL)"));
                }
                if !is_public_https(&self.mail.link_base_url) {
                    return fail("mail.link_base_url must be an https:// URL your users can reach (not loopback) when production sends recovery mail (APP__MAIL__LINK_BASE_URL)".into());
                }
            }
        }
        if self.jwt.issuer.is_empty() || self.jwt.audience.is_empty() {
            return fail("jwt.issuer and jwt.audience must not be empty".into());
        }
        match (&self.bootstrap.admin_email, &self.bootstrap.admin_password) {
            (Some(_), None) | (None, Some(_)) => {
                return fail("set both bootstrap.admin_email and bootstrap.admin_password, or neither (APP__BOOTSTRAP__ADMIN_EMAIL, APP__BOOTSTRAP__ADMIN_PASSWORD)".into())
            }
            _ => {}
        }
        Ok(())
    }

    /// Password recovery: with an SMTP server, or in development (mail logged).
    pub fn recovery_enabled(&self) -> bool {
        self.mail.smtp_url.is_some() || self.env == AppEnv::Development
    }

    /// Whether the development placeholder secret is in use (worth a warning).
    pub fn uses_fake_secret(&self) -> bool {
        !self.jwt.algorithm.is_asymmetric() && self.jwt.secret.is_none()
    }

    /// Pool size: configured, or one connection more than the cores (at
    /// least 2): each connection's thread spends part of every query waiting
    /// to be woken, and the extra one keeps the cores busy meanwhile; more
    /// backends than that only add switching (docs/performance.md).
    pub fn pool_size(&self) -> u32 {
        self.database.pool_size.map_or_else(
            || default_pool_size(std::thread::available_parallelism().ok()),
            NonZeroU32::get,
        )
    }

    /// The most a request waits for the database, in all.
    pub fn database_wait(&self) -> Duration {
        Duration::from_secs(self.database.timeout_seconds.get())
    }

    /// Each statement's bound: configured, or nine tenths of
    /// `database.timeout_seconds`.
    pub fn statement_timeout(&self) -> Duration {
        self.database.statement_timeout_ms.map_or_else(
            || self.database_wait() * 9 / 10,
            |ms| Duration::from_millis(ms.get()),
        )
    }
}

fn default_pool_size(cores: Option<std::num::NonZeroUsize>) -> u32 {
    let cores = cores.map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    cores.saturating_add(1).max(2)
}

/// A `postgres://` URL that libpq reads as meant. The message never repeats
/// the URL: it holds the password. (A libpq `key=value` string is left to libpq.)
fn check_database_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    if !url.contains("://") {
        return Ok(());
    }
    let parsed = url::Url::parse(url).map_err(|e| {
        format!(
            "database.url is not a valid URL ({e}): percent-encode reserved characters in \
             the user name and password (`/` as %2F, `+` as %2B, `@` as %40, `:` as %3A, \
             `#` as %23, `?` as %3F) (DATABASE_URL)"
        )
    })?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err("database.url must start with postgres:// (DATABASE_URL)".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("database.url names no host (DATABASE_URL)".into());
    }
    Ok(())
}

/// Where the database is, without credentials: `host:port/name`, for
/// `check-config`.
pub fn database_location(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(parsed) => format!(
            "{}:{}{}",
            parsed.host_str().unwrap_or_default(),
            parsed.port().unwrap_or(5432),
            parsed.path()
        ),
        Err(_) => "(a libpq connection string)".into(),
    }
}

/// Fewest distinct byte values a secret may have: refuses `aaaa...` and
/// other obvious non-random strings without judging real ones.
const MIN_DISTINCT_SECRET_BYTES: usize = 8;

/// The checks every signing secret passes, current or previous: length,
/// some variety, and in production never the public placeholder.
fn check_secret(secret: &SecretString, what: &str, env: AppEnv) -> Result<(), ConfigError> {
    let bytes = secret.expose_secret().as_bytes();
    let how = "set it to a random string of at least 32 bytes, e.g. `openssl rand -base64 48`";
    if bytes.len() < 32 {
        return Err(ConfigError(format!(
            "{what} is shorter than 32 bytes: {how}"
        )));
    }
    let distinct = bytes.iter().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_DISTINCT_SECRET_BYTES {
        return Err(ConfigError(format!(
            "{what} has only {distinct} distinct characters and cannot be random: {how}"
        )));
    }
    if env == AppEnv::Production && secret.expose_secret() == DEV_FAKE_SECRET {
        return Err(ConfigError(format!(
            "{what} is the development placeholder: {how}"
        )));
    }
    Ok(())
}

/// `127.0.0.1`, `::1`, `localhost` and the rest of 127/8.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `tls` query parameter of an SMTP URL, as lettre's `from_url` reads it.
pub fn smtp_tls_param(url: &url::Url) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned())
}

/// The relay's host when an `smtp://` URL carries credentials without
/// `?tls=required` to a host that is not this machine.
fn clear_text_credentials_to(smtp_url: &str) -> Option<String> {
    let url = url::Url::parse(smtp_url).ok()?;
    let credentials = !url.username().is_empty() || url.password().is_some();
    let required = smtp_tls_param(&url).as_deref() == Some("required");
    let host = url.host_str()?.to_owned();
    (url.scheme() == "smtp" && credentials && !required && !is_loopback_host(&host)).then_some(host)
}

/// `https://` to a host other than this machine: a link that works in
/// someone else's mailbox.
/// An http(s) URL with a host and nothing after its path.
fn is_base_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.query().is_none()
            && u.fragment().is_none()
            && u.username().is_empty()
            && u.password().is_none()
    })
}

fn is_public_https(link: &str) -> bool {
    url::Url::parse(link).is_ok_and(|url| {
        url.scheme() == "https" && url.host_str().is_some_and(|h| !is_loopback_host(h))
    })
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `https://host[:port]`: a scheme and an authority, nothing else (actix-cors
/// refuses anything more at start-up).
fn is_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// `jwt.access_ttl_seconds` -> `JWT__ACCESS_TTL_SECONDS`.
fn env_name(key: &str) -> String {
    key.replace('.', "__").to_ascii_uppercase()
}

/// config's errors name the key; keep them on one line, say which variable
/// sets the key, and say a zero refused by a non-zero type in words.
fn describe(e: config::ConfigError) -> String {
    let text = e.to_string().replace('\n', " ");
    let text = ["u32", "u64", "usize"].iter().fold(text, |text, ty| {
        text.replace(
            &format!("expected a nonzero {ty}"),
            "expected a whole number of at least 1",
        )
    });
    let key = text
        .split("for key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next());
    match key {
        Some(key) if !text.contains("APP__") => {
            let key = key.split('[').next().unwrap_or(key);
            format!("{text} (APP__{})", env_name(key))
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::default_pool_size;

    #[test]
    fn the_default_pool_has_one_connection_more_than_the_cores() {
        let cores = |n| NonZeroUsize::new(n);
        assert_eq!(default_pool_size(cores(1)), 2);
        assert_eq!(default_pool_size(cores(2)), 3);
        assert_eq!(default_pool_size(cores(8)), 9);
        assert_eq!(default_pool_size(None), 2, "cores unknown");
    }
}

//! The command line: serve (default), migrate, create-user, check-config, keys generate.
use secrecy::ExposeSecret;
use std::io::BufRead;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use diesel::{Connection, PgConnection};

use crate::auth::jwt::Keys;
use crate::auth::keys;
use crate::auth::password::hash_blocking;
use crate::config::{JwtAlgorithm, Settings};
use crate::db::{self, audit, users};
use crate::domain::{Email, Password, Role};
use crate::mail::Mailer;
use crate::startup::Application;

const ENV_HELP: &str =
    "Environment: APP_ENV (development|production), APP_CONFIG_DIR (default ./config), \
DATABASE_URL, APP__<SECTION>__<KEY> (e.g. APP__JWT__SECRET), RUST_LOG.";

#[derive(Debug, Parser)]
#[command(
    name = "taskgate",
    version,
    about = "taskgate: a JWT-auth task service (OAuth2 password flow, rotating refresh tokens, roles)",
    after_help = ENV_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, create the bootstrap admin if configured, and serve HTTP (the default).
    #[command(after_help = ENV_HELP)]
    Serve,
    /// Apply pending database migrations and exit.
    #[command(after_help = ENV_HELP)]
    Migrate,
    /// Create a user; the password is read from standard input (one line), never from arguments.
    #[command(after_help = ENV_HELP)]
    CreateUser {
        /// The new user's email (normalised: trimmed, lowercased)
        #[arg(long)]
        email: String,
        /// user, manager or admin
        #[arg(long, default_value = "user")]
        role: String,
        /// Optional display name
        #[arg(long)]
        full_name: Option<String>,
        /// Do nothing (and succeed) when an enabled admin already exists.
        #[arg(long)]
        unless_admin_exists: bool,
    },
    /// Set a user's password (read from standard input, one line): every session
    /// of the user ends and the lockout is lifted. The way back in for an admin.
    #[command(after_help = ENV_HELP)]
    SetPassword {
        /// The user's email (normalised: trimmed, lowercased)
        #[arg(long)]
        email: String,
    },
    /// Load and validate the configuration, print a summary without secrets, and exit.
    #[command(after_help = ENV_HELP)]
    CheckConfig,
    /// Signing keys (no configuration needed).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new signing key: its kid, the private key (PKCS#8 PEM, for
    /// APP__JWT__PRIVATE_KEY) and the public key (for jwt.previous_public_keys
    /// once retired). For HS256, a random secret for APP__JWT__SECRET.
    Generate {
        #[arg(long, value_enum, default_value = "EdDSA")]
        algorithm: JwtAlgorithm,
    },
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

pub fn run(cli: Cli) -> CliResult {
    // A new key needs no configuration (an operator makes one before there is any).
    if let Some(Command::Keys {
        command: KeysCommand::Generate { algorithm },
    }) = cli.command
    {
        return generate_key(algorithm);
    }
    let settings = Settings::load()?;
    crate::logging::use_format(settings.log.format);
    if settings.uses_fake_secret() {
        log::warn!(
            "jwt.secret is not set: using the development placeholder; set APP__JWT__SECRET"
        );
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let applied = migrate(&settings, Duration::ZERO)?;
            println!("applied {} migration(s)", applied.len());
            Ok(())
        }
        Command::CreateUser {
            email,
            role,
            full_name,
            unless_admin_exists,
        } => create_user(
            &settings,
            &email,
            &role,
            full_name.as_deref(),
            unless_admin_exists,
        ),
        Command::SetPassword { email } => set_password(&settings, &email),
        Command::CheckConfig => check_config(&settings),
        Command::Keys { .. } => Ok(()),
    }
}

fn serve(settings: Settings) -> CliResult {
    // A bad signing key or mail relay is a configuration error: report it
    // before touching the database (the server builds its own mailer).
    let keys = Keys::new(&settings.jwt)?;
    Mailer::new(&settings.mail, settings.recovery_enabled())?;
    // docker-compose may start us a moment before the database takes connections.
    migrate(&settings, Duration::from_secs(30))?;
    bootstrap_admin(&settings)?;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build_with_keys(settings, keys)?;
        log::info!("listening on port {}", app.port());
        app.run_until_stopped().await
    })?;
    Ok(())
}

fn connect(
    settings: &Settings,
    patience: Duration,
) -> Result<PgConnection, Box<dyn std::error::Error>> {
    let started = Instant::now();
    loop {
        match PgConnection::establish(settings.database.url.expose_secret()) {
            Ok(mut conn) => {
                if settings.database.transaction_pooler {
                    db::for_transaction_pooler(&mut conn);
                }
                return Ok(conn);
            }
            Err(e) if started.elapsed() < patience => {
                log::warn!("database not reachable yet ({e}); retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(format!("cannot connect to the database: {e}").into()),
        }
    }
}

fn migrate(
    settings: &Settings,
    patience: Duration,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut conn = connect(settings, patience)?;
    let applied = db::migrate(&mut conn).map_err(|e| format!("migration failed: {e}"))?;
    for version in &applied {
        log::info!("applied migration {version}");
    }
    Ok(applied)
}

/// Creates `bootstrap.admin_email` as an admin when no enabled admin exists.
fn bootstrap_admin(settings: &Settings) -> CliResult {
    let (Some(email), Some(password)) = (
        &settings.bootstrap.admin_email,
        &settings.bootstrap.admin_password,
    ) else {
        return Ok(());
    };
    let email = Email::parse(email).map_err(|e| format!("bootstrap.admin_email: {e}"))?;
    let password =
        Password::parse(password.clone()).map_err(|e| format!("bootstrap.admin_password: {e}"))?;
    let mut conn = connect(settings, Duration::ZERO)?;
    if users::active_admin_exists(&mut conn)? {
        return Ok(());
    }
    let user = insert_user(
        settings,
        &mut conn,
        &email,
        &password,
        Role::Admin,
        None,
        "bootstrap",
    )?;
    log::info!("created bootstrap admin {} (id {})", user.email, user.id);
    Ok(())
}

fn create_user(
    settings: &Settings,
    email: &str,
    role: &str,
    full_name: Option<&str>,
    unless_admin_exists: bool,
) -> CliResult {
    let email = Email::parse(email).map_err(|e| format!("--email: {e}"))?;
    let role: Role = role.parse().map_err(|e| format!("--role: {e}"))?;
    let mut conn = connect(settings, Duration::ZERO)?;
    if unless_admin_exists && users::active_admin_exists(&mut conn)? {
        eprintln!(
            "an admin already exists; nothing created (lost its password? \
             `taskgate set-password --email <email>` with the new one on standard input)"
        );
        return Ok(());
    }
    let password = password_from_stdin()?;
    let user = insert_user(
        settings, &mut conn, &email, &password, role, full_name, "cli",
    )?;
    println!(
        "created user {} <{}> with role {}",
        user.id, user.email, user.role
    );
    Ok(())
}

/// One line of standard input, checked by the signup rules.
fn password_from_stdin() -> Result<Password, Box<dyn std::error::Error>> {
    // Bounded: a password holds at most 72 bytes; more is refused below anyway.
    let mut line = String::new();
    std::io::Read::take(std::io::stdin().lock(), 1024).read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password).to_owned();
    Ok(Password::parse(password.into()).map_err(|e| format!("password (standard input): {e}"))?)
}

/// `set-password`: the new hash, every session revoked, the lockout lifted,
/// and `password_set` (no actor) in one transaction.
fn set_password(settings: &Settings, email: &str) -> CliResult {
    let email = Email::parse(email).map_err(|e| format!("--email: {e}"))?;
    let mut conn = connect(settings, Duration::ZERO)?;
    let user = users::find_by_email(&mut conn, email.as_str())?
        .ok_or_else(|| format!("no user has the email {}", email.as_str()))?;
    let password = password_from_stdin()?;
    let hash = hash_blocking(&password, settings.auth.bcrypt_cost)?;
    let cli = crate::db::audit::Actor::default();
    crate::db::account::set_password_recorded(&mut conn, &cli, user.id, &hash)?;
    println!(
        "password set for user {} <{}>; every session of theirs has ended",
        user.id, user.email
    );
    Ok(())
}

/// Inserts the user and its `user_created` audit event in one transaction.
fn insert_user(
    settings: &Settings,
    conn: &mut PgConnection,
    email: &Email,
    password: &Password,
    role: Role,
    full_name: Option<&str>,
    via: &str,
) -> Result<users::User, Box<dyn std::error::Error>> {
    let hash = hash_blocking(password, settings.auth.bcrypt_cost)?;
    let new = users::NewUser::new(email, &hash, full_name, role);
    let user = users::insert_recorded(conn, &new, |user| audit::NewEvent {
        kind: audit::AuditKind::UserCreated,
        actor_id: None,
        subject_id: Some(user.id),
        ip: None,
        detail: serde_json::json!({ "via": via, "role": role.as_str() }),
    })?;
    Ok(user)
}

fn generate_key(algorithm: JwtAlgorithm) -> CliResult {
    let key = keys::generate(algorithm)?;
    println!("algorithm: {}", algorithm.as_str());
    println!("kid: {}", key.kid);
    match &key.public {
        Some(public) => {
            println!("\n# private key: keep it secret (APP__JWT__PRIVATE_KEY or a file for APP__JWT__PRIVATE_KEY_FILE)");
            print!("{}", key.private);
            println!("\n# public key: the JWKS serves it; list it in APP__JWT__PREVIOUS_PUBLIC_KEYS once retired");
            print!("{public}");
        }
        None => println!(
            "\n# secret: keep it secret (APP__JWT__SECRET)\n{}",
            key.private
        ),
    }
    Ok(())
}

fn check_config(settings: &Settings) -> CliResult {
    let keys = Keys::new(&settings.jwt)?;
    // Builds the SMTP transport as serving would: a bad mail.ca_file fails here.
    let mailer = Mailer::new(&settings.mail, settings.recovery_enabled())?;
    println!("configuration OK ({})", settings.env.as_str());
    println!(
        "  server: {}:{}",
        settings.server.host, settings.server.port
    );
    println!(
        "  database: {}, pool of {} connection(s)",
        crate::config::database_location(settings.database.url.expose_secret()),
        settings.pool_size()
    );
    println!(
        "  jwt: {}, access {}s, refresh {}s, session {}s, {} previous secret(s), {} public key(s){}",
        settings.jwt.algorithm.as_str(),
        settings.jwt.access_ttl_seconds,
        settings.jwt.refresh_ttl_seconds,
        settings.jwt.session_max_seconds,
        settings.jwt.previous_secrets.len(),
        keys.jwks.keys.len(),
        if settings.uses_fake_secret() {
            ", DEVELOPMENT PLACEHOLDER SECRET"
        } else {
            ""
        }
    );
    println!(
        "  bcrypt cost: {}, hashes at once: {}, longest expected wait: {} ms",
        settings.auth.bcrypt_cost,
        settings.auth.hash_concurrency(),
        settings.auth.hash_wait_ms
    );
    println!(
        "  trusted proxies: {}",
        settings.server.trusted_proxies.networks().len()
    );
    println!("  cors origins: {}", settings.cors.allowed_origins.len());
    println!(
        "  recovery mail: {}{}",
        match &mailer {
            Some(m) if m.sends() => "SMTP",
            Some(_) => "to the log (development)",
            None => "off",
        },
        if settings.mail.ca_file.is_some() {
            ", with mail.ca_file"
        } else {
            ""
        }
    );
    Ok(())
}

//! Configuration: the layers of docs/API.md and the values production refuses.
use secrecy::ExposeSecret;
use std::collections::HashMap;

use taskgate::config::{AppEnv, Settings};

use crate::helpers::config_dir;

fn load(vars: &[(&str, &str)]) -> Result<Settings, String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_from(&config_dir(), &vars).map_err(|e| e.to_string())
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-long-enough";

/// Every key, set blank (as `KEY=` in a .env file), is unset: the same
/// settings as without it, and no error.
#[test]
fn a_blank_variable_is_unset_for_every_key() {
    let unset = format!("{:?}", load(&[]).unwrap());
    let defaults = std::fs::read_to_string(config_dir().join("default.toml")).unwrap();
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in defaults.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_uppercase();
        } else if let Some((key, _)) = line.split_once('=') {
            if !line.starts_with('#') && !section.is_empty() {
                keys.push(format!("APP__{section}__{}", key.trim().to_uppercase()));
            }
        }
    }
    assert!(keys.len() > 30, "{keys:?}");
    for key in keys.iter().map(String::as_str).chain(["DATABASE_URL"]) {
        for blank in ["", "  "] {
            let loaded = load(&[(key, blank)]).unwrap_or_else(|e| panic!("{key}={blank:?}: {e}"));
            assert_eq!(format!("{loaded:?}"), unset, "{key}={blank:?}");
        }
    }
}

#[test]
fn defaults_are_the_contracts() {
    let s = load(&[]).unwrap();
    assert_eq!(s.env, AppEnv::Development);
    assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 8000));
    assert_eq!(s.server.body_limit_bytes.get(), 64 * 1024);
    assert_eq!(
        (
            s.jwt.access_ttl_seconds.get(),
            s.jwt.refresh_ttl_seconds.get()
        ),
        (900, 604_800)
    );
    assert_eq!(s.jwt.refresh_reuse_grace_seconds, 10);
    assert_eq!(s.jwt.session_max_seconds.get(), 2_592_000);
    assert_eq!(
        (s.jwt.issuer.as_str(), s.jwt.audience.as_str()),
        ("taskgate", "taskgate")
    );
    assert_eq!(s.jwt.leeway_seconds, 0);
    assert!(s.jwt.previous_secrets.is_empty());
    assert_eq!(s.jwt.algorithm, taskgate::config::JwtAlgorithm::HS256);
    assert!(s.jwt.private_key.is_none() && s.jwt.previous_public_keys.is_empty());
    assert_eq!(s.auth.bcrypt_cost, 12);
    assert_eq!(s.auth.hash_concurrency, None, "one per core");
    assert_eq!(
        s.auth.hash_concurrency(),
        std::thread::available_parallelism().unwrap().get()
    );
    assert_eq!(s.auth.hash_wait_ms.get(), 2000);
    assert_eq!(s.rate_limit.ipv6_prefix, 64);
    assert_eq!(s.server.body_timeout_seconds.get(), 10);
    assert_eq!(s.database.queue_limit.get(), 1024);
    assert_eq!(s.database_wait(), std::time::Duration::from_secs(3));
    assert_eq!(s.database.lock_timeout_ms.get(), 250);
    assert_eq!(s.audit.retention_days.get(), 365);
    assert_eq!(s.limits.tasks_per_user.get(), 10_000);
    assert_eq!(s.auth.max_sessions_per_user.get(), 50);
    assert_eq!(
        s.statement_timeout(),
        std::time::Duration::from_millis(2700)
    );
    assert!(s.server.trusted_proxies.networks().is_empty());
    assert_eq!(
        (s.auth.max_failed_logins.get(), s.auth.lockout_seconds.get()),
        (5, 900)
    );
    assert_eq!(s.rate_limit.auth_per_minute.get(), 30);
    assert!(s.cors.allowed_origins.is_empty());
    assert!(s.bootstrap.admin_email.is_none());
}

#[test]
fn development_runs_on_a_placeholder_secret_that_production_refuses() {
    let dev = load(&[]).unwrap();
    assert!(dev.uses_fake_secret());
    let placeholder = dev.jwt.signing_secret().to_owned();
    let err = load(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://x/y"),
        ("APP__JWT__SECRET", &placeholder),
    ])
    .unwrap_err();
    assert!(err.contains("APP__JWT__SECRET"), "{err}");
}

#[test]
fn production_without_a_secret_refuses_to_start_naming_the_variable() {
    for vars in [
        vec![
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://x/y"),
        ],
        vec![
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://x/y"),
            ("APP__JWT__SECRET", ""),
        ],
    ] {
        let err = load(&vars).unwrap_err();
        assert!(
            err.contains("APP__JWT__SECRET") && err.contains("not set"),
            "{err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn a_secret_shorter_than_32_bytes_is_refused_in_every_environment() {
    for env in ["development", "production"] {
        let err = load(&[
            ("APP_ENV", env),
            ("DATABASE_URL", "postgres://x/y"),
            ("APP__JWT__SECRET", "short-secret"),
        ])
        .unwrap_err();
        assert!(
            err.contains("32 bytes") && err.contains("APP__JWT__SECRET"),
            "{err}"
        );
    }
}

#[test]
fn production_loads_with_a_real_secret_and_listens_on_all_interfaces() {
    let s = load(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://db/prod"),
        ("APP__JWT__SECRET", SECRET),
    ])
    .unwrap();
    assert_eq!(s.env, AppEnv::Production);
    assert_eq!(s.server.host, "0.0.0.0");
    assert_eq!(s.jwt.signing_secret(), SECRET);
    assert!(!format!("{s:?}").contains(SECRET), "Debug shows the secret");
    assert!(
        !format!("{s:?}").contains("postgres://db/prod"),
        "Debug shows the database URL"
    );
}

#[test]
fn variables_override_files_and_lists_are_comma_separated() {
    let s = load(&[
        ("APP__SERVER__PORT", "9001"),
        ("APP__JWT__ACCESS_TTL_SECONDS", "60"),
        (
            "APP__JWT__PREVIOUS_SECRETS",
            "0123456789abcdef0123456789abcdef-a,0123456789abcdef0123456789abcdef-b",
        ),
        (
            "APP__CORS__ALLOWED_ORIGINS",
            "https://a.example,https://b.example",
        ),
        ("DATABASE_URL", "postgres://elsewhere/db"),
        ("APP__RATE_LIMIT__IPV6_PREFIX", "48"),
        ("APP__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1"),
        ("APP__AUTH__MFA_REQUIRED_ROLES", "admin,manager"),
    ])
    .unwrap();
    assert_eq!(s.server.port, 9001);
    assert_eq!(
        s.auth.mfa_required_roles,
        [
            taskgate::domain::Role::Admin,
            taskgate::domain::Role::Manager
        ]
    );
    assert_eq!(s.rate_limit.ipv6_prefix, 48);
    assert_eq!(
        s.server.trusted_proxies,
        taskgate::domain::TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap()
    );
    assert_eq!(s.jwt.access_ttl_seconds.get(), 60);
    assert_eq!(s.jwt.previous_secrets.len(), 2);
    assert_eq!(
        s.cors.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(s.database.url.expose_secret(), "postgres://elsewhere/db");
}

#[test]
fn bad_values_are_refused_with_the_key_named() {
    let cases: [(&[(&str, &str)], &str); 28] = [
        (
            &[("APP__RATE_LIMIT__IPV6_PREFIX", "129")],
            "APP__RATE_LIMIT__IPV6_PREFIX",
        ),
        // The waiting room is sized by time now: the old count is an unknown key.
        (&[("APP__AUTH__HASH_QUEUE", "2")], "hash_queue"),
        (
            &[("APP__DATABASE__QUEUE_LIMIT", "0")],
            "APP__DATABASE__QUEUE_LIMIT",
        ),
        (
            &[("APP__DATABASE__STATEMENT_TIMEOUT_MS", "0")],
            "APP__DATABASE__STATEMENT_TIMEOUT_MS",
        ),
        (
            &[("APP__DATABASE__LOCK_TIMEOUT_MS", "0")],
            "APP__DATABASE__LOCK_TIMEOUT_MS",
        ),
        // `serve` used to panic on it after check-config passed.
        (&[("APP__SERVER__WORKERS", "0")], "APP__SERVER__WORKERS"),
        (
            &[
                ("APP__SERVER__PORT", "8000"),
                ("APP__SERVER__METRICS_PORT", "8000"),
            ],
            "APP__SERVER__METRICS_PORT",
        ),
        (&[("APP__LOG__FORMAT", "xml")], "log.format"),
        (
            &[("APP__AUDIT__RETENTION_DAYS", "0")],
            "APP__AUDIT__RETENTION_DAYS",
        ),
        (
            &[("APP__LIMITS__TASKS_PER_USER", "0")],
            "APP__LIMITS__TASKS_PER_USER",
        ),
        (
            &[("APP__AUTH__MAX_SESSIONS_PER_USER", "0")],
            "APP__AUTH__MAX_SESSIONS_PER_USER",
        ),
        (
            &[("APP__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")],
            "APP__SERVER__TRUSTED_PROXIES",
        ),
        (
            &[(
                "APP__CORS__ALLOWED_ORIGINS",
                "https://a.example.com,ftp://x",
            )],
            "APP__CORS__ALLOWED_ORIGINS",
        ),
        (
            &[("APP__AUTH__HASH_CONCURRENCY", "0")],
            "APP__AUTH__HASH_CONCURRENCY",
        ),
        (
            &[("APP__AUTH__HASH_WAIT_MS", "0")],
            "APP__AUTH__HASH_WAIT_MS",
        ),
        (
            &[("APP__SERVER__BODY_TIMEOUT_SECONDS", "0")],
            "APP__SERVER__BODY_TIMEOUT_SECONDS",
        ),
        (
            &[("APP__CORS__ALLOWED_ORIGINS", "https://admin.example/")],
            "cors.allowed_origins",
        ),
        (
            &[("APP__CORS__ALLOWED_ORIGINS", "https://a b.example")],
            "cors.allowed_origins",
        ),
        (&[("APP_ENV", "staging")], "APP_ENV"),
        (&[("APP__SERVER__PORT", "eighty")], "port"),
        (&[("APP__AUTH__BCRYPT_COST", "3")], "APP__AUTH__BCRYPT_COST"),
        (
            &[("APP__JWT__ACCESS_TTL_SECONDS", "0")],
            "APP__JWT__ACCESS_TTL_SECONDS",
        ),
        (
            &[("APP__CORS__ALLOWED_ORIGINS", "admin.example")],
            "cors.allowed_origins",
        ),
        (
            &[("APP__BOOTSTRAP__ADMIN_EMAIL", "a@b.example")],
            "APP__BOOTSTRAP__ADMIN_PASSWORD",
        ),
        (&[("APP__JWT__SECRT", SECRET)], "secrt"),
        (
            &[("APP__AUTH__MFA_REQUIRED_ROLES", "admin,root")],
            "APP__AUTH__MFA_REQUIRED_ROLES",
        ),
        (
            &[("APP__SERVER__PUBLIC_URL", "auth.example.com")],
            "APP__SERVER__PUBLIC_URL",
        ),
        (
            &[("APP__SERVER__PUBLIC_URL", "https://auth.example.com/?x=1")],
            "APP__SERVER__PUBLIC_URL",
        ),
    ];
    for (vars, named) in cases {
        let err = load(vars).unwrap_err();
        assert!(err.contains(named), "{vars:?}: {err}");
    }
}

#[test]
fn production_refuses_a_toy_bcrypt_cost() {
    let err = load(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://x/y"),
        ("APP__JWT__SECRET", SECRET),
        ("APP__AUTH__BCRYPT_COST", "4"),
    ])
    .unwrap_err();
    assert!(err.contains("bcrypt_cost"), "{err}");
}

#[test]
fn recovery_is_off_in_production_until_smtp_is_set_and_bad_mail_settings_are_refused() {
    let production = [
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://db/x"),
        ("APP__JWT__SECRET", SECRET),
    ];
    let s = load(&production).unwrap();
    assert!(!s.recovery_enabled());
    assert_eq!(
        (
            s.recovery.token_ttl_seconds.get(),
            s.recovery.min_interval_seconds
        ),
        (1800, 60)
    );
    assert!(
        load(&[]).unwrap().recovery_enabled(),
        "development logs the mail"
    );
    let link = ("APP__MAIL__LINK_BASE_URL", "https://app.example.com/reset");
    let mut on = production.to_vec();
    on.push(("APP__MAIL__SMTP_URL", "smtp://mail.example.com:25"));
    on.push(link);
    // Empty variables (as in .env.example) count as unset.
    on.push(("APP__MAIL__FROM", ""));
    on.push(("APP__MAIL__CA_FILE", ""));
    let s = load(&on).unwrap();
    assert!(s.recovery_enabled());
    assert_eq!(s.mail.from.to_string(), "taskgate <no-reply@localhost>");
    assert_eq!(s.mail.ca_file, None);
    for (key, value) in [
        ("APP__MAIL__FROM", "not an address"),
        ("APP__MAIL__SMTP_URL", "http://mail.example.com"),
        (
            "APP__MAIL__SMTP_URL",
            "smtp://u:p@mail.example.com:587?tls=opportunistic",
        ),
        ("APP__RECOVERY__TOKEN_TTL_SECONDS", "0"),
    ] {
        let mut vars = production.to_vec();
        vars.push((key, value));
        let err = load(&vars).unwrap_err();
        assert!(err.contains(key), "{key}: {err}");
        assert!(!err.contains("u:p@"), "{err}");
    }
    // STARTTLS that may not fall back, and TLS from the first byte, are taken;
    // development may try an opportunistic relay.
    // A relay on this machine may take credentials in clear.
    for url in [
        "smtp://u:p@mail.example.com:587?tls=required",
        "smtps://u:p@mail.example.com:465",
        "smtp://u:p@127.0.0.1:25",
    ] {
        let mut vars = production.to_vec();
        vars.push(("APP__MAIL__SMTP_URL", url));
        vars.push(link);
        assert!(load(&vars).is_ok(), "{url} refused");
    }
    // With recovery on, production refuses credentials in clear to another
    // host, and a reset link that is loopback or not https.
    for (key, value) in [
        ("APP__MAIL__SMTP_URL", "smtp://u:p@mail.example.com:25"),
        ("APP__MAIL__LINK_BASE_URL", "http://app.example.com/reset"),
        ("APP__MAIL__LINK_BASE_URL", "https://localhost:8000/reset"),
        ("APP__MAIL__LINK_BASE_URL", "https://127.0.0.1/reset"),
    ] {
        let mut vars: Vec<_> = on.iter().filter(|(k, _)| *k != key).copied().collect();
        vars.push((key, value));
        let err = load(&vars).unwrap_err();
        assert!(err.contains(key), "{key}: {err}");
        assert!(!err.contains("u:p@"), "{err}");
    }
    let opportunistic = [(
        "APP__MAIL__SMTP_URL",
        "smtp://127.0.0.1:2525?tls=opportunistic",
    )];
    assert!(load(&opportunistic).is_ok());
}

#[test]
fn the_public_url_is_the_base_of_the_reset_link_unless_one_is_set() {
    let s = load(&[("APP__SERVER__PUBLIC_URL", "https://auth.example.com/")]).unwrap();
    assert_eq!(
        s.server.public_url.as_deref(),
        Some("https://auth.example.com")
    );
    assert_eq!(
        s.mail.link_base_url,
        "https://auth.example.com/password/reset"
    );
    let s = load(&[
        ("APP__SERVER__PUBLIC_URL", "https://auth.example.com"),
        ("APP__MAIL__LINK_BASE_URL", "https://app.example.com/reset"),
    ])
    .unwrap();
    assert_eq!(s.mail.link_base_url, "https://app.example.com/reset");
    let s = load(&[]).unwrap();
    assert_eq!(s.server.public_url, None);
    assert_eq!(s.mail.link_base_url, "http://127.0.0.1:8000/password/reset");
}

#[test]
fn production_takes_only_a_public_https_public_url() {
    for url in [
        "http://auth.example.com",
        "https://127.0.0.1:8443",
        "https://localhost",
    ] {
        let err = load(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://x/y"),
            ("APP__JWT__SECRET", SECRET),
            ("APP__SERVER__PUBLIC_URL", url),
        ])
        .unwrap_err();
        assert!(err.contains("APP__SERVER__PUBLIC_URL"), "{url}: {err}");
    }
    let s = load(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://x/y"),
        ("APP__JWT__SECRET", SECRET),
        ("APP__SERVER__PUBLIC_URL", "https://auth.example.com"),
    ])
    .unwrap();
    assert_eq!(
        s.server.public_url.as_deref(),
        Some("https://auth.example.com")
    );
}

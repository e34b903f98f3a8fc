//! The command line: check-config, migrate, create-user, and serve's bootstrap admin.
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::helpers::{config_dir, random_secret, TestDatabase};
use crate::smtp::{SmtpServer, Tls};

fn taskgate(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_taskgate"));
    cmd.args(args)
        .env_clear()
        .env("APP_CONFIG_DIR", config_dir())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("taskgate runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("taskgate exits")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_in_production_without_a_secret_fails_in_one_line_naming_the_variable() {
    let out = taskgate(
        &["check-config"],
        &[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://db/x"),
        ],
        None,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("APP__JWT__SECRET"), "{err}");
}

#[test]
fn check_config_prints_a_summary_without_secrets() {
    let secret = random_secret();
    let out = taskgate(
        &["check-config"],
        &[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("APP__JWT__SECRET", &secret),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("configuration OK (production)"), "{all}");
    assert!(all.contains("database: db:5432/x"), "{all}");
    assert!(
        !all.contains(&secret) && !all.contains("hunter2"),
        "a secret leaked: {all}"
    );
}

/// A password with a `/` (as `openssl rand -base64` makes) passed
/// check-config, then serve retried for 30 s and logged half the password.
#[test]
fn check_config_refuses_a_database_url_that_does_not_parse_without_echoing_it() {
    let out = taskgate(
        &["check-config"],
        &[(
            "DATABASE_URL",
            "postgres://app:o5a5/xCq+DSpnJOB@db:5432/taskgate",
        )],
        None,
    );
    assert!(!out.status.success());
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(
        all.contains("DATABASE_URL") && all.contains("percent-encode"),
        "{all}"
    );
    assert!(
        !all.contains("o5a5") && !all.contains("DSpnJOB"),
        "echoed: {all}"
    );
    let encoded = taskgate(
        &["check-config"],
        &[(
            "DATABASE_URL",
            "postgres://app:o5a5%2FxCq%2BDSpnJOB@db:5432/taskgate",
        )],
        None,
    );
    assert!(encoded.status.success(), "{}", text(&encoded.stderr));
}

#[test]
fn check_config_refuses_weak_and_placeholder_secrets_current_or_previous() {
    let good = random_secret();
    let placeholder = taskgate::config::DEV_FAKE_SECRET;
    let a32 = "a".repeat(32);
    let few = "abcabcabcabcabcabcabcabcabcabcabcabc"; // 3 distinct bytes
    let production = [
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://db/x"),
    ];
    for (secret, previous, names) in [
        (good.as_str(), placeholder, "APP__JWT__PREVIOUS_SECRETS"),
        (good.as_str(), a32.as_str(), "APP__JWT__PREVIOUS_SECRETS"),
        (good.as_str(), "short", "APP__JWT__PREVIOUS_SECRETS"),
        (a32.as_str(), "", "APP__JWT__SECRET"),
        (few, "", "APP__JWT__SECRET"),
        (placeholder, "", "APP__JWT__SECRET"),
    ] {
        let mut env = production.to_vec();
        env.push(("APP__JWT__SECRET", secret));
        env.push(("APP__JWT__PREVIOUS_SECRETS", previous));
        let out = taskgate(&["check-config"], &env, None);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "accepted {secret:?} / {previous:?}");
        assert!(err.contains(names), "{err}");
        assert!(
            !err.contains(secret) || secret == a32 || secret == few,
            "{err}"
        );
    }
    // A good current secret with a good previous one is fine.
    let mut env = production.to_vec();
    let previous = random_secret();
    env.push(("APP__JWT__SECRET", &good));
    env.push(("APP__JWT__PREVIOUS_SECRETS", &previous));
    let out = taskgate(&["check-config"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `taskgate keys generate` as an operator runs it: no configuration at all.
fn generate_key(algorithm: &str) -> (String, String) {
    let out = taskgate(&["keys", "generate", "--algorithm", algorithm], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let kid = printed
        .lines()
        .find_map(|l| l.strip_prefix("kid: "))
        .expect("a kid line")
        .to_owned();
    (printed, kid)
}

/// The PEM block labelled `label` in `printed`.
fn pem(printed: &str, label: &str) -> String {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let from = printed.find(&begin).expect("BEGIN line");
    let to = printed.find(&end).expect("END line") + end.len();
    printed[from..to].to_owned()
}

/// A key made with taskgate moves to other tools: OpenSSL reads both halves
/// (it refused the PKCS#8 v2 form taskgate printed before).
#[test]
fn openssl_reads_the_generated_keys() {
    for algorithm in ["EdDSA", "ES256"] {
        let (printed, _) = generate_key(algorithm);
        for (label, command) in [
            ("PRIVATE KEY", &["pkey"][..]),
            ("PUBLIC KEY", &["pkey", "-pubin"][..]),
        ] {
            let mut openssl = std::process::Command::new("openssl")
                .args(command)
                .args(["-noout", "-text"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("openssl is installed (Debian's ca-certificates depends on it)");
            use std::io::Write;
            openssl
                .stdin
                .take()
                .unwrap()
                .write_all(pem(&printed, label).as_bytes())
                .unwrap();
            let out = openssl.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{algorithm} {label}: {}",
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn a_generated_key_pair_is_accepted_by_production_without_any_secret() {
    for algorithm in ["EdDSA", "ES256"] {
        let (printed, kid) = generate_key(algorithm);
        let private = pem(&printed, "PRIVATE KEY");
        let public = pem(&printed, "PUBLIC KEY");
        // As in a compose .env file: one line, `\n` for the newlines.
        let one_line = private.replace('\n', "\\n");
        for key in [private.as_str(), one_line.as_str()] {
            let out = taskgate(
                &["check-config"],
                &[
                    ("APP_ENV", "production"),
                    ("DATABASE_URL", "postgres://db/x"),
                    ("APP__JWT__ALGORITHM", algorithm),
                    ("APP__JWT__PRIVATE_KEY", key),
                    ("APP__JWT__PREVIOUS_PUBLIC_KEYS", &public),
                ],
                None,
            );
            assert!(out.status.success(), "{}", text(&out.stderr));
            let all = text(&out.stdout) + &text(&out.stderr);
            assert!(all.contains(&format!("jwt: {algorithm}")), "{all}");
            assert!(all.contains("2 public key(s)"), "{all}");
            let body = private.lines().nth(1).unwrap();
            assert!(!all.contains(body), "the private key leaked: {all}");
        }
        assert!(!kid.is_empty());
    }
    // HS256: a secret that production takes.
    let out = taskgate(&["keys", "generate", "--algorithm", "HS256"], &[], None);
    let secret = text(&out.stdout).lines().last().unwrap().to_owned();
    let out = taskgate(
        &["check-config"],
        &[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://db/x"),
            ("APP__JWT__SECRET", &secret),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn production_refuses_a_missing_malformed_or_foreign_key_naming_the_setting() {
    let (ed, _) = generate_key("EdDSA");
    let (ec, _) = generate_key("ES256");
    let (ed_private, ec_private) = (pem(&ed, "PRIVATE KEY"), pem(&ec, "PRIVATE KEY"));
    let ec_public = pem(&ec, "PUBLIC KEY");
    let previous = random_secret();
    let truncated = ed_private.replacen("-----END PRIVATE KEY-----", "", 1);
    let cases: [(&[(&str, &str)], &str); 8] = [
        (&[("APP__JWT__ALGORITHM", "EdDSA")], "APP__JWT__PRIVATE_KEY"),
        (
            &[
                ("APP__JWT__ALGORITHM", "EdDSA"),
                ("APP__JWT__PRIVATE_KEY", "not a key"),
            ],
            "APP__JWT__PRIVATE_KEY",
        ),
        (
            &[
                ("APP__JWT__ALGORITHM", "EdDSA"),
                ("APP__JWT__PRIVATE_KEY", &truncated),
            ],
            "APP__JWT__PRIVATE_KEY",
        ),
        (
            &[
                ("APP__JWT__ALGORITHM", "EdDSA"),
                ("APP__JWT__PRIVATE_KEY", &ec_private),
            ],
            "APP__JWT__PRIVATE_KEY",
        ),
        (
            &[
                ("APP__JWT__ALGORITHM", "EdDSA"),
                ("APP__JWT__PRIVATE_KEY", &ed_private),
                ("APP__JWT__PREVIOUS_PUBLIC_KEYS", &ec_public),
            ],
            "APP__JWT__PREVIOUS_PUBLIC_KEYS",
        ),
        (
            &[
                ("APP__JWT__ALGORITHM", "EdDSA"),
                ("APP__JWT__PRIVATE_KEY", &ed_private),
                ("APP__JWT__PREVIOUS_SECRETS", &previous),
            ],
            "APP__JWT__PREVIOUS_SECRETS",
        ),
        (&[("APP__JWT__ALGORITHM", "RS256")], "APP__JWT__ALGORITHM"),
        (
            &[
                ("APP__JWT__SECRET", &random_secret()),
                ("APP__JWT__PRIVATE_KEY", &ed_private),
            ],
            "APP__JWT__ALGORITHM",
        ),
    ];
    for (vars, names) in cases {
        let mut env = vec![
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://db/x"),
        ];
        env.extend_from_slice(vars);
        let out = taskgate(&["check-config"], &env, None);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "accepted {vars:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(names), "{names} not in {err}");
        assert!(!err.contains(ed_private.lines().nth(1).unwrap()), "{err}");
        assert!(!err.contains(ec_private.lines().nth(1).unwrap()), "{err}");
    }
    // `serve` refuses the same way, before it reaches for the database.
    let out = taskgate(
        &["serve"],
        &[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
            ("APP__JWT__ALGORITHM", "EdDSA"),
            ("APP__JWT__PRIVATE_KEY", &ec_private),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("APP__JWT__PRIVATE_KEY"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_private_key_can_come_from_a_file() {
    let (printed, _) = generate_key("EdDSA");
    let path = std::env::temp_dir().join(format!("taskgate-key-{}.pem", uuid::Uuid::new_v4()));
    // The whole output of `keys generate`, as an operator might save it.
    std::fs::write(&path, &printed).unwrap();
    let file = path.to_str().unwrap();
    let production = [
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://db/x"),
        ("APP__JWT__ALGORITHM", "EdDSA"),
    ];
    let mut env = production.to_vec();
    env.push(("APP__JWT__PRIVATE_KEY_FILE", file));
    let out = taskgate(&["check-config"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Both the file and the variable: which one is meant?
    let private = pem(&printed, "PRIVATE KEY");
    env.push(("APP__JWT__PRIVATE_KEY", &private));
    let out = taskgate(&["check-config"], &env, None);
    assert!(!out.status.success());
    std::fs::remove_file(&path).unwrap();
    // A file that is not there.
    let mut env = production.to_vec();
    env.push(("APP__JWT__PRIVATE_KEY_FILE", file));
    let out = taskgate(&["check-config"], &env, None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("APP__JWT__PRIVATE_KEY_FILE"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn development_signs_with_the_placeholder_only_on_a_loopback_address() {
    for host in ["127.0.0.1", "::1", "localhost"] {
        let out = taskgate(&["check-config"], &[("APP__SERVER__HOST", host)], None);
        assert!(out.status.success(), "{host}: {}", text(&out.stderr));
    }
    for host in ["0.0.0.0", "::", "192.168.1.5"] {
        let out = taskgate(&["check-config"], &[("APP__SERVER__HOST", host)], None);
        assert!(
            !out.status.success(),
            "{host} accepted with the placeholder"
        );
        let err = text(&out.stderr);
        assert!(
            err.contains("loopback") && err.contains("APP__JWT__SECRET"),
            "{err}"
        );
    }
    // `serve` refuses too, before it listens.
    let out = taskgate(
        &["serve"],
        &[
            ("APP__SERVER__HOST", "0.0.0.0"),
            ("DATABASE_URL", "postgres://127.0.0.1:1/x"),
        ],
        None,
    );
    assert!(!out.status.success());
    // With a real secret, any address is the operator's choice.
    let secret = random_secret();
    let out = taskgate(
        &["check-config"],
        &[
            ("APP__SERVER__HOST", "0.0.0.0"),
            ("APP__JWT__SECRET", &secret),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let db = TestDatabase::empty();
    let env = [("DATABASE_URL", db.url.as_str())];
    let out = taskgate(&["migrate"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let applied = format!(
        "applied {} migration(s)",
        crate::helpers::migrations_on_disk()
    );
    assert!(
        text(&out.stdout).contains(&applied),
        "{}",
        text(&out.stdout)
    );
    let out = taskgate(&["migrate"], &env, None);
    assert!(text(&out.stdout).contains("applied 0 migration(s)"));
    diesel::sql_query("SELECT 1 FROM users, sessions, tasks, audit_events LIMIT 1")
        .execute(&mut db.connect())
        .expect("tables exist");
}

#[derive(Queryable, Debug)]
struct Row {
    email: String,
    role: String,
    password_hash: String,
}

fn users(db: &TestDatabase) -> Vec<Row> {
    use taskgate::db::schema::users::dsl::*;
    users
        .select((email, role, password_hash))
        .order(id)
        .load(&mut db.connect())
        .unwrap()
}

fn audit_kinds(db: &TestDatabase) -> Vec<String> {
    use taskgate::db::schema::audit_events::dsl::*;
    audit_events
        .select(kind)
        .order(id)
        .load(&mut db.connect())
        .unwrap()
}

#[test]
fn create_user_reads_the_password_from_stdin_and_stores_a_bcrypt_hash() {
    let db = TestDatabase::migrated();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("APP__AUTH__BCRYPT_COST", "4"),
    ];
    let out = taskgate(
        &[
            "create-user",
            "--email",
            " Root@Example.COM ",
            "--role",
            "admin",
        ],
        &env,
        Some("correct horse battery\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = users(&db);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].email.as_str(), rows[0].role.as_str()),
        ("root@example.com", "admin")
    );
    assert!(rows[0].password_hash.starts_with("$2"), "a bcrypt hash");
    assert!(bcrypt::verify("correct horse battery", &rows[0].password_hash).unwrap());
    assert_eq!(audit_kinds(&db), ["user_created"]);

    // --unless-admin-exists: an admin exists now, so nothing happens.
    let out = taskgate(
        &[
            "create-user",
            "--email",
            "second@example.com",
            "--role",
            "admin",
            "--unless-admin-exists",
        ],
        &env,
        Some("another good passphrase\n"),
    );
    assert!(out.status.success());
    assert_eq!(users(&db).len(), 1);
}

#[test]
fn create_user_refuses_bad_input_and_writes_nothing() {
    let db = TestDatabase::migrated();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("APP__AUTH__BCRYPT_COST", "4"),
    ];
    let good = Some("correct horse battery\n");
    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (
            &["create-user", "--email", "a@example.com", "--role", "root"],
            good,
            "--role",
        ),
        (
            &["create-user", "--email", "not-an-email", "--role", "user"],
            good,
            "--email",
        ),
        (
            &["create-user", "--email", "a@example.com"],
            Some("password1\n"),
            "common",
        ),
        (
            &["create-user", "--email", "a@example.com"],
            Some("short\n"),
            "at least 8",
        ),
        (
            &["create-user", "--email", "a@example.com"],
            Some(&"x".repeat(80)),
            "72 bytes",
        ),
    ];
    for (args, stdin, says) in cases {
        let out = taskgate(args, &env, stdin);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(users(&db).is_empty());
    assert!(audit_kinds(&db).is_empty());

    taskgate(&["create-user", "--email", "a@example.com"], &env, good);
    let out = taskgate(&["create-user", "--email", "A@example.com"], &env, good);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already registered"),
        "{}",
        text(&out.stderr)
    );
    // Plain words for a terminal, not the HTTP error's vocabulary.
    assert!(
        !text(&out.stderr).contains("conflict"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(users(&db).len(), 1);
}

#[test]
fn serve_migrates_creates_the_bootstrap_admin_and_answers() {
    let db = TestDatabase::empty();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_s = port.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .arg("serve")
        .env_clear()
        .env("APP_CONFIG_DIR", config_dir())
        .env("DATABASE_URL", &db.url)
        .env("APP__SERVER__PORT", &port_s)
        .env("APP__SERVER__WORKERS", "1")
        .env("APP__AUTH__BCRYPT_COST", "4")
        .env("APP__BOOTSTRAP__ADMIN_EMAIL", "boss@example.com")
        .env("APP__BOOTSTRAP__ADMIN_PASSWORD", "bootstrap passphrase")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Read;
            s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").unwrap();
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            break resp;
        }
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ready.starts_with("HTTP/1.0 200") || ready.starts_with("HTTP/1.1 200"),
        "{ready}"
    );
    let rows = users(&db);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].email.as_str(), rows[0].role.as_str()),
        ("boss@example.com", "admin")
    );
}

#[test]
fn check_config_takes_a_mail_ca_file_only_when_it_holds_certificates_for_a_tls_url() {
    let secret = random_secret();
    let smtp = SmtpServer::start_with(Tls::Starttls);
    let ca = smtp.ca_file();
    let dir = std::env::temp_dir().join(format!("taskgate-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let prose = dir.join("prose.pem");
    std::fs::write(&prose, "not a certificate\n").unwrap();
    let broken = dir.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    let (ca, prose, broken, missing) = (
        ca.to_str().unwrap(),
        prose.to_str().unwrap(),
        broken.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    let url = smtp.url();
    let check = |url: Option<&str>, ca_file: &str| {
        let mut env = vec![
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://db/x"),
            ("APP__JWT__SECRET", secret.as_str()),
            ("APP__MAIL__CA_FILE", ca_file),
            ("APP__MAIL__LINK_BASE_URL", "https://app.example.com/reset"),
        ];
        env.extend(url.map(|u| ("APP__MAIL__SMTP_URL", u)));
        taskgate(&["check-config"], &env, None)
    };

    let out = check(Some(&url), ca);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("recovery mail: SMTP, with mail.ca_file"),
        "{}",
        text(&out.stdout)
    );
    for (url, ca_file, named) in [
        (Some(url.as_str()), missing, "APP__MAIL__CA_FILE"),
        (Some(url.as_str()), prose, "holds no PEM certificate"),
        (Some(url.as_str()), broken, "APP__MAIL__CA_FILE"),
        (Some("smtp://127.0.0.1:25"), ca, "uses no TLS"),
        (None, ca, "mail.smtp_url is not"),
    ] {
        let out = check(url, ca_file);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{url:?} {ca_file}: accepted");
        assert!(err.contains(named), "{url:?} {ca_file}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // `serve` refuses the same way, at once, before it reaches for the
    // database (here one that never answers: it would retry for 30 s).
    let started = std::time::Instant::now();
    let out = taskgate(
        &["serve"],
        &[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
            ("APP__JWT__SECRET", secret.as_str()),
            ("APP__MAIL__SMTP_URL", url.as_str()),
            ("APP__MAIL__CA_FILE", prose),
            ("APP__MAIL__LINK_BASE_URL", "https://app.example.com/reset"),
        ],
        None,
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("holds no PEM certificate"), "{err}");
    assert!(!err.contains("database"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `set-password` is the way back in without mail: the new password works,
/// every session ends, the audit has no actor; an unknown email is named.
#[tokio::test]
async fn set_password_gets_a_user_back_in_from_the_command_line() {
    let app = crate::helpers::spawn_app().await;
    let ada = app.signup_and_login(taskgate::domain::Role::Admin).await;
    let env = [("DATABASE_URL", app.db().url.as_str())];
    let out = taskgate(
        &["set-password", "--email", "nobody@example.com"],
        &env,
        Some("a brand new passphrase\n"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nobody@example.com"),
        "{}",
        text(&out.stderr)
    );
    let out = taskgate(
        &["set-password", "--email", &ada.email.to_uppercase()],
        &env,
        Some("a brand new passphrase\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    app.assert_token_dead(&ada.access).await;
    assert_eq!(
        app.login(&ada.email, "a brand new passphrase")
            .await
            .status(),
        reqwest::StatusCode::OK
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'password_set' \
             AND actor_id IS NULL AND subject_id = {}",
            ada.id
        )),
        1
    );
}

//! Migrations are reversible: up, down, up on a fresh database.
use diesel::connection::SimpleConnection;
use diesel_migrations::MigrationHarness;
use taskgate::db::MIGRATIONS;

use crate::helpers::TestDatabase;

#[test]
fn migrations_run_up_down_and_up_again() {
    let db = TestDatabase::empty();
    let mut conn = db.connect();
    let applied = taskgate::db::migrate(&mut conn).expect("up");
    let on_disk = crate::helpers::migrations_on_disk();
    assert_eq!(applied.len(), on_disk);
    let made = objects(&mut conn);
    assert!(made.iter().any(|o| o == "table users"), "{made:?}");
    conn.revert_all_migrations(MIGRATIONS).expect("down");
    // Down leaves only diesel's own bookkeeping: every table, function and
    // type the migrations made is gone.
    assert_eq!(
        objects(&mut conn),
        ["table __diesel_schema_migrations"],
        "left by the down migrations"
    );
    assert_eq!(
        taskgate::db::migrate(&mut conn).expect("up again").len(),
        on_disk
    );
    assert!(taskgate::db::migrate(&mut conn)
        .expect("idempotent")
        .is_empty());
}

/// The audit kinds the table's CHECK admits are the ones the service writes
/// and documents (`AuditKind`, as `/openapi.json` states it): a kind added to
/// the enum without its migration, or the reverse, fails here. (The `kind`
/// filter of `GET /admin/audit` states the enum.)
#[tokio::test]
async fn the_database_admits_exactly_the_documented_audit_kinds() {
    let app = crate::helpers::spawn_app().await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let kind = doc["paths"]["/admin/audit"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "kind")
        .expect("the kind filter")
        .clone();
    let mut documented: Vec<String> = kind["schema"]["enum"]
        .as_array()
        .expect("the kinds, as an enum")
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    documented.sort();
    let mut conn = app.db().connect();
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Definition {
        #[diesel(sql_type = diesel::sql_types::Text)]
        def: String,
    }
    let check = diesel::sql_query(
        "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint \
         WHERE conname = 'audit_events_kind_check'",
    )
    .get_result::<Definition>(&mut conn)
    .expect("the kind CHECK")
    .def;
    let mut admitted: Vec<String> = check
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    admitted.sort();
    assert!(documented.len() > 20, "{documented:?}");
    assert_eq!(admitted, documented, "{check}");
}

/// The tables, functions and types (enums, domains) in the public schema.
fn objects(conn: &mut diesel::PgConnection) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Object {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    diesel::sql_query(
        "SELECT 'table ' || tablename AS name FROM pg_tables WHERE schemaname = 'public' \
         UNION ALL SELECT 'function ' || proname FROM pg_proc \
           WHERE pronamespace = 'public'::regnamespace \
         UNION ALL SELECT 'type ' || typname FROM pg_type \
           WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd') \
         ORDER BY 1",
    )
    .load::<Object>(conn)
    .expect("the catalogue reads")
    .into_iter()
    .map(|o| o.name)
    .collect()
}

#[test]
fn the_schema_enforces_lowercase_unique_emails_roles_and_cascades() {
    let db = TestDatabase::migrated();
    let mut conn = db.connect();
    let insert = |email: &str, role: &str| {
        format!("INSERT INTO users (email, password_hash, role) VALUES ('{email}', 'x', '{role}')")
    };
    conn.batch_execute(&insert("a@example.com", "user"))
        .expect("a valid row");
    assert!(
        conn.batch_execute(&insert("a@example.com", "user"))
            .is_err(),
        "duplicate email"
    );
    assert!(
        conn.batch_execute(&insert("B@example.com", "user"))
            .is_err(),
        "uppercase email"
    );
    assert!(
        conn.batch_execute(&insert("c@example.com", "root"))
            .is_err(),
        "unknown role"
    );
    conn.batch_execute(
        "INSERT INTO tasks (owner_id, title) SELECT id, 't' FROM users;
         INSERT INTO sessions (id, user_id, refresh_jti, refresh_iat, refresh_exp, expires_at)
           SELECT gen_random_uuid(), id, gen_random_uuid(), now(), now(), now() FROM users;
         DELETE FROM users;",
    )
    .expect("delete cascades");
    use diesel::prelude::*;
    let left: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM tasks) + (SELECT count(*) FROM sessions)",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(left, 0, "tasks and sessions go with their user");
}

/// Emails stored before domains were kept as A-labels are rewritten by the
/// next `migrate`, unless another account holds the new spelling.
#[test]
fn migrate_rewrites_legacy_unicode_domains_to_a_labels() {
    let db = TestDatabase::migrated();
    let mut conn = db.connect();
    conn.batch_execute(
        "INSERT INTO users (email, password_hash, role) VALUES
             ('ada@exämple.com', 'x', 'user'),
             ('bob@bücher.example', 'x', 'user'),
             ('bob@xn--bcher-kva.example', 'x', 'user')",
    )
    .unwrap();
    taskgate::db::migrate(&mut conn).expect("migrate");
    use diesel::prelude::*;
    let mut emails: Vec<String> = taskgate::db::schema::users::table
        .select(taskgate::db::schema::users::email)
        .load(&mut conn)
        .unwrap();
    emails.sort();
    assert_eq!(
        emails,
        [
            "ada@xn--exmple-cua.com",
            "bob@bücher.example",
            "bob@xn--bcher-kva.example"
        ]
    );
}

/// Instances starting together (replicas, `--scale`) migrate one at a time:
/// four racing `migrate`s on an empty database all succeed, and together
/// they apply each migration once.
#[test]
fn racing_migrations_apply_each_migration_once() {
    let db = TestDatabase::empty();
    let applied: Vec<usize> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = db.connect();
                    taskgate::db::migrate(&mut conn)
                        .expect("every racer succeeds")
                        .len()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        applied.iter().sum::<usize>(),
        crate::helpers::migrations_on_disk(),
        "{applied:?}"
    );
    assert_eq!(applied.iter().filter(|n| **n > 0).count(), 1, "{applied:?}");
}

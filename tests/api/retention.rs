//! Nothing grows forever: audit events past `audit.retention_days` and mail
//! sent or given up on a week ago are deleted, at start-up and hourly, by one
//! instance at a time; what is younger, or still to be sent, stays.
use diesel::connection::SimpleConnection;

use crate::helpers::{spawn_on, test_settings, TestDatabase};

const OLD_AND_NEW: &str = "
    INSERT INTO audit_events (kind, at) VALUES
        ('signup', now() - interval '400 days'),
        ('signup', now() - interval '366 days'),
        ('signup', now() - interval '364 days'),
        ('signup', now());
    INSERT INTO outbox (recipient, subject, body, created_at, sent_at, failed_at) VALUES
        ('a@example.com', 'sent long ago', NULL, now() - interval '9 days', now() - interval '8 days', NULL),
        ('b@example.com', 'given up long ago', 'x', now() - interval '9 days', NULL, now() - interval '8 days'),
        ('c@example.com', 'sent lately', NULL, now() - interval '2 days', now() - interval '1 day', NULL),
        ('d@example.com', 'still to send', 'x', now() - interval '30 days', NULL, NULL);";

fn count(db: &TestDatabase, sql: &str) -> i64 {
    use diesel::prelude::*;
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "({sql})"
    )))
    .get_result(&mut db.connect())
    .unwrap()
}

#[tokio::test]
async fn old_audit_events_and_mail_are_deleted_at_start_up() {
    let db = TestDatabase::migrated();
    db.connect().batch_execute(OLD_AND_NEW).unwrap();
    let app = spawn_on(test_settings(&db.url)).await;
    // Done means deleted: nothing is polled for.
    app.first_prune_done().await;
    let left = (
        count(&db, "SELECT count(*) FROM audit_events"),
        count(&db, "SELECT count(*) FROM outbox"),
    );
    assert_eq!(left, (2, 2), "(audit events, mails) left");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE subject IN ('sent lately', 'still to send')"
        ),
        2
    );
}

#[test]
fn retention_runs_on_one_instance_at_a_time_and_honours_the_setting() {
    use taskgate::db::{audit, outbox, RETENTION_LOCK_KEY};
    let db = TestDatabase::migrated();
    let mut conn = db.connect();
    conn.batch_execute(OLD_AND_NEW).unwrap();
    // Another instance is deleting: this one deletes nothing meanwhile.
    let mut other = db.connect();
    other
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({RETENTION_LOCK_KEY})"
        ))
        .unwrap();
    assert_eq!(audit::prune(&mut conn, 365, 1000).unwrap(), 0);
    assert_eq!(outbox::prune(&mut conn, 1000).unwrap(), 0);
    other.batch_execute("COMMIT").unwrap();
    // A shorter retention keeps less; batches are bounded.
    assert_eq!(audit::prune(&mut conn, 365, 1).unwrap(), 1);
    assert_eq!(audit::prune(&mut conn, 365, 1000).unwrap(), 1);
    assert_eq!(audit::prune(&mut conn, 30, 1000).unwrap(), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM audit_events"), 1);
    assert_eq!(outbox::prune(&mut conn, 1000).unwrap(), 2);
}

//! `DbError`: what the data layer can say went wrong, in its own terms. The
//! HTTP layer maps it to a status (`crate::error`); the CLI prints it.
type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row asked for (or to change) does not exist, or is not the caller's.
    #[error("not found")]
    NotFound,
    /// The change would break a rule the data keeps (an email taken, the last
    /// admin); the text says which, in words fit for the user.
    #[error("{0}")]
    Conflict(&'static str),
    /// The owner holds `limit` tasks already.
    #[error("the task quota ({limit}) is reached")]
    QuotaExceeded { limit: u32 },
    /// No answer within the bounds (`database.timeout_seconds`, the queue's
    /// length): the database is busy or slow now; nothing is logged per request.
    #[error("the database is busy")]
    Busy,
    /// The database cannot be reached, or refuses for a while.
    #[error("the database is unavailable")]
    Unavailable(#[source] Source),
    /// A bug or an unexpected failure.
    #[error("a database error")]
    Internal(#[source] Source),
}

impl DbError {
    pub fn internal(source: impl Into<Source>) -> Self {
        DbError::Internal(source.into())
    }

    /// An `Internal` error saying `what`.
    pub fn bug(what: impl Into<String>) -> Self {
        DbError::Internal(what.into().into())
    }
}

impl From<r2d2::Error> for DbError {
    fn from(e: r2d2::Error) -> Self {
        DbError::Unavailable(Box::new(e))
    }
}

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::Error;
        match e {
            Error::NotFound => DbError::NotFound,
            e if is_retryable(&e) => DbError::Unavailable(Box::new(e)),
            other => DbError::Internal(Box::new(other)),
        }
    }
}

impl From<serde_json::Error> for DbError {
    fn from(e: serde_json::Error) -> Self {
        DbError::Internal(Box::new(e))
    }
}

/// What a client may retry: the server gone, or refusing for a while
/// (SQLSTATE 57014 statement timeout or cancel, 55P03 lock timeout, 25006
/// read-only, 53100 disk full, 53200 out of memory, 53300 too many
/// connections, 40001 serialization, 40P01 deadlock). The one place that
/// decides what becomes `Unavailable` rather than `Internal`. Diesel names
/// only some SQLSTATEs (it keeps the code to itself), so the rest are known by
/// PostgreSQL's message, which a server whose `lc_messages` is not English
/// translates: such errors are then `Internal`.
fn is_retryable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    const TRY_AGAIN: [&str; 6] = [
        "canceling statement due to",
        "deadlock detected",
        "No space left on device",
        "out of memory",
        "too many clients",
        "remaining connection slots are reserved",
    ];
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure
            | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            TRY_AGAIN.iter().any(|m| info.message().contains(m))
        }
        _ => false,
    }
}

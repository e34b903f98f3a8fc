//! `AppState`: what handlers and middleware share, through `web::Data<AppState>`.
use std::sync::Arc;

use crate::auth::jwt::Keys;
use crate::auth::password::PasswordHasher;
use crate::config::Settings;
use crate::db::DbPool;
use crate::domain::TrustedProxies;

pub struct AppState {
    pub pool: DbPool,
    pub keys: Keys,
    pub settings: Arc<Settings>,
    pub hasher: PasswordHasher,
    pub proxies: TrustedProxies,
    /// Notified when a mail is queued, so the outbox sender leaves at once.
    pub mail_waiting: Arc<tokio::sync::Notify>,
}

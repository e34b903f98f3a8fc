//! `AppState`: what handlers and the auth middleware share, through
//! `web::Data<AppState>`. It lives in `auth` because authentication needs all
//! of it (keys, hasher, pool, settings), so the layers keep pointing one way.
use std::sync::Arc;

use super::jwt::Keys;
use super::password::PasswordHasher;
use crate::config::Settings;
use crate::db::DbPool;
use crate::domain::TrustedProxies;
use crate::metrics::Metrics;

pub struct AppState {
    pub pool: DbPool,
    pub keys: Keys,
    pub settings: Arc<Settings>,
    pub hasher: PasswordHasher,
    pub proxies: TrustedProxies,
    /// Notified when a mail is queued, so the outbox sender leaves at once.
    pub mail_waiting: Arc<tokio::sync::Notify>,
    /// Counted only when `server.metrics_port` is set: no cost otherwise.
    pub metrics: Option<Metrics>,
}

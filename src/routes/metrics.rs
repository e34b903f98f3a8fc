//! `GET /metrics`, served only on the metrics listener (`server.metrics_port`):
//! the gauges of state are read now, then everything is rendered in
//! Prometheus' text format.
use actix_web::{web, HttpResponse};

use crate::auth::AppState;
use crate::db::{self, outbox};
use crate::error::ApiError;

pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some(metrics) = &state.metrics else {
        return Err(ApiError::NotFound);
    };
    let (idle, in_use) = state.pool.connection_counts();
    metrics
        .pool_connections
        .with_label_values(&["idle"])
        .set(idle.into());
    metrics
        .pool_connections
        .with_label_values(&["in_use"])
        .set(in_use.into());
    metrics
        .hash_in_flight
        .set(i64::try_from(state.hasher.in_flight()).unwrap_or(i64::MAX));
    // A database in trouble keeps the last count: the scrape still answers
    // (the pool gauges and the logs tell of the trouble).
    if let Ok(pending) = db::run(&state.pool, outbox::pending).await {
        metrics.outbox_pending.set(pending);
    }
    let text = metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

//! Liveness and readiness probes.
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AppState;
use crate::db;
use crate::error::{ApiError, ErrorBody};

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    status: &'static str,
}

/// GET /healthz: the process is alive (never touches the database).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// GET /readyz: the database answers a query.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Database unreachable", body = ErrorBody),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    db::run(&state.pool, db::ping).await?;
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}

//! Reports for managers and admins: task counts per user, and totals.
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::json::rfc3339;
use crate::auth::AppState;
use crate::db::{self, reports};
use crate::error::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserReport {
    pub user_id: i64,
    pub email: String,
    pub tasks_total: i64,
    pub tasks_completed: i64,
    pub tasks_open: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportTotals {
    pub users: i64,
    pub tasks_total: i64,
    pub tasks_completed: i64,
    pub tasks_open: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    pub reports: Vec<UserReport>,
    pub totals: ReportTotals,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: DateTime<Utc>,
}

/// GET /reports
#[utoipa::path(get, path = "/reports", tag = "reports", responses((status = 200, description = "Per-user task counts, every user included", body = Report)))]
pub async fn get_reports(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = db::run(&state.pool, reports::task_counts_per_user).await?;
    let reports: Vec<UserReport> = rows
        .into_iter()
        .map(|r| UserReport {
            user_id: r.user_id,
            email: r.email,
            tasks_open: r.tasks_total - r.tasks_completed,
            tasks_total: r.tasks_total,
            tasks_completed: r.tasks_completed,
        })
        .collect();
    let totals = ReportTotals {
        users: reports.len() as i64,
        tasks_total: reports.iter().map(|r| r.tasks_total).sum(),
        tasks_completed: reports.iter().map(|r| r.tasks_completed).sum(),
        tasks_open: reports.iter().map(|r| r.tasks_open).sum(),
    };
    Ok(HttpResponse::Ok().json(Report {
        reports,
        totals,
        generated_at: Utc::now(),
    }))
}

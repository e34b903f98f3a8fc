//! `/admin/audit`: the audit log, newest first.
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::AppState;
use crate::db::audit::{self, AuditEvent, AuditKind};
use crate::db::{self};
use crate::error::{ApiError, ErrorBody};
use crate::routes::doc::ErrorResponses;
use crate::routes::json::rfc3339;
use crate::routes::paging::{list_response, Page};
use crate::routes::query::QueryParams;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventView {
    pub id: i64,
    pub kind: String,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        AuditEventView {
            id: e.id,
            kind: e.kind,
            actor_id: e.actor_id,
            subject_id: e.subject_id,
            ip: e.ip,
            detail: e.detail,
            at: e.at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events of this kind.
    // Inline: a parameter's `$ref` is not collected into the components.
    #[param(inline)]
    pub kind: Option<AuditKind>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

/// GET /admin/audit
#[utoipa::path(get, path = "/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, description = "Events, newest first; X-Total-Count", body = [AuditEventView]), ErrorResponses,
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_audit(
    state: web::Data<AppState>,
    query: QueryParams<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::parse(query.limit, query.offset)?;
    let kind = query.kind;
    let (rows, total) = db::run(&state.pool, move |conn| {
        audit::list(conn, kind, page.limit, page.offset)
    })
    .await?;
    let views: Vec<AuditEventView> = rows.into_iter().map(AuditEventView::from).collect();
    Ok(list_response(&views, total))
}

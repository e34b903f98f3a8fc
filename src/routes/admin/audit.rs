//! `/admin/audit`: the audit log, newest first.
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::AppState;
use crate::db::audit::{self, AuditFilter, AuditKind, NamedEvent};
use crate::db::{self};
use crate::error::{ApiError, ErrorBody};
use crate::routes::json::rfc3339;
use crate::routes::paging::{list_response, Page};
use crate::routes::query::QueryParams;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventView {
    pub id: i64,
    pub kind: String,
    pub actor_id: Option<i64>,
    /// The actor's current email; null once that user is deleted (or no actor).
    #[schema(format = Email)]
    pub actor_email: Option<String>,
    pub subject_id: Option<i64>,
    /// The subject's current email; null once that user is deleted (or no subject).
    #[schema(format = Email)]
    pub subject_email: Option<String>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// The request that wrote it (its `X-Request-Id`, given or made); null
    /// for the command line's events.
    pub request_id: Option<String>,
}

impl From<NamedEvent> for AuditEventView {
    fn from(named: NamedEvent) -> Self {
        let e = named.event;
        AuditEventView {
            id: e.id,
            kind: e.kind,
            actor_id: e.actor_id,
            actor_email: named.actor_email,
            subject_id: e.subject_id,
            subject_email: named.subject_email,
            ip: e.ip,
            detail: e.detail,
            request_id: e.request_id,
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
    /// Only events this user did.
    pub actor_id: Option<i64>,
    /// Only events done to this user.
    pub subject_id: Option<i64>,
    /// Only events from this client address.
    #[param(max_length = 64, pattern = "^[^\\x00]*$")]
    pub ip: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        let time = |raw: &Option<String>| {
            raw.as_deref()
                .map(|t| {
                    DateTime::parse_from_rfc3339(t)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            "must be an RFC 3339 time like 2026-12-01T10:00:00Z".to_owned()
                        })
                })
                .transpose()
        };
        let ip = self.ip.as_deref().map(|ip| {
            if ip.chars().count() > 64 || ip.contains('\0') {
                Err("must be at most 64 characters, without NUL".to_owned())
            } else {
                Ok(ip.to_owned())
            }
        });
        let (since, until, ip) = (time(&self.since), time(&self.until), ip.transpose());
        match (since, until, ip) {
            (Ok(since), Ok(until), Ok(ip)) => Ok(AuditFilter {
                kind: self.kind,
                actor_id: self.actor_id,
                subject_id: self.subject_id,
                ip,
                since,
                until,
            }),
            (since, until, ip) => Err(ApiError::invalid_fields([
                ("since", since.err()),
                ("until", until.err()),
                ("ip", ip.err()),
            ])),
        }
    }
}

/// GET /admin/audit
#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "Events, newest first; X-Total-Count", body = [AuditEventView]), (status = 422, body = ErrorBody)))]
pub async fn list_audit(
    state: web::Data<AppState>,
    query: QueryParams<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::parse(query.limit, query.offset)?;
    let filter = query.filter()?;
    let (rows, total) = db::run(&state.pool, move |conn| {
        audit::list(conn, &filter, page.limit, page.offset)
    })
    .await?;
    let views: Vec<AuditEventView> = rows.into_iter().map(AuditEventView::from).collect();
    Ok(list_response(&views, total))
}

//! The admin API by resource: the welcome and the dashboard here; users,
//! everyone's tasks and the audit log in their own files.
pub mod audit;
pub mod sessions;
pub mod tasks;
pub mod users;

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AppState;
use crate::db::{self, reports};
use crate::error::ApiError;
use crate::routes::actor::Actor;

#[derive(Debug, Serialize, ToSchema)]
pub struct Welcome {
    #[schema(example = "Welcome admin root@example.com")]
    pub message: String,
}

/// GET /admin
#[utoipa::path(get, path = "/admin", tag = "admin", responses((status = 200, body = Welcome)))]
pub async fn welcome(admin: Actor) -> HttpResponse {
    HttpResponse::Ok().json(Welcome {
        message: format!("Welcome admin {}", admin.user.email),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardUsers {
    pub total: i64,
    /// Counts for `user`, `manager` and `admin`.
    pub by_role: BTreeMap<String, i64>,
    pub disabled: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardTasks {
    pub total: i64,
    pub completed: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardSessions {
    pub active: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Dashboard)]
pub struct DashboardView {
    pub users: DashboardUsers,
    pub tasks: DashboardTasks,
    pub sessions: DashboardSessions,
}

/// GET /admin/dashboard
#[utoipa::path(get, path = "/admin/dashboard", tag = "admin", responses((status = 200, body = DashboardView)))]
pub async fn dashboard(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let d = db::run(&state.pool, reports::dashboard).await?;
    Ok(HttpResponse::Ok().json(DashboardView {
        users: DashboardUsers {
            total: d.users_total,
            by_role: BTreeMap::from([
                ("user".to_owned(), d.users_user),
                ("manager".to_owned(), d.users_manager),
                ("admin".to_owned(), d.users_admin),
            ]),
            disabled: d.users_disabled,
        },
        tasks: DashboardTasks {
            total: d.tasks_total,
            completed: d.tasks_completed,
        },
        sessions: DashboardSessions {
            active: d.sessions_active,
        },
    }))
}

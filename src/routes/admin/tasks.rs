//! `/admin/tasks`: everyone's tasks, by owner.
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::AppState;
use crate::db::{self, tasks};
use crate::error::{ApiError, ErrorBody};
use crate::routes::paging::{list_response, Page};
use crate::routes::query::QueryParams;
use crate::routes::views::TaskView;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminTaskQuery {
    pub owner_id: Option<i64>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

/// GET /admin/tasks
#[utoipa::path(get, path = "/admin/tasks", tag = "admin", operation_id = "admin_list_tasks", params(AdminTaskQuery),
    responses((status = 200, description = "Everyone's tasks by id; X-Total-Count", body = [TaskView]), (status = 422, body = ErrorBody)))]
pub async fn list_tasks(
    state: web::Data<AppState>,
    query: QueryParams<AdminTaskQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::parse(query.limit, query.offset)?;
    let (rows, total) = db::run(&state.pool, move |conn| {
        tasks::list(conn, query.owner_id, None, page.limit, page.offset)
    })
    .await?;
    let views: Vec<TaskView> = rows.into_iter().map(TaskView::from).collect();
    Ok(list_response(&views, total))
}

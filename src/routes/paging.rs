//! Paging for every list: `limit` 1..=200 (default 50), `offset` >= 0, and the
//! `X-Total-Count` header.
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub fn parse(limit: Option<i64>, offset: Option<i64>) -> Result<Page, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        let offset = offset.unwrap_or(0);
        ApiError::check_fields([
            (
                "limit",
                (!(1..=MAX_LIMIT).contains(&limit))
                    .then(|| format!("must be between 1 and {MAX_LIMIT}")),
            ),
            (
                "offset",
                (offset < 0).then(|| "must be 0 or more".to_owned()),
            ),
        ])?;
        Ok(Page { limit, offset })
    }
}

/// The query of a list with no filter of its own: `limit` and `offset` only
/// (anything else is 422).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        Page::parse(self.limit, self.offset)
    }
}

/// 200 with the items as a JSON array and the filter's total in `X-Total-Count`.
pub fn list_response<T: Serialize>(items: &[T], total: i64) -> HttpResponse {
    // Sized for a typical row up front: growing a 10 KB body by doubling copied it ten times.
    let mut body = Vec::with_capacity(2 + items.len() * 256);
    if let Err(e) = serde_json::to_writer(&mut body, items) {
        return ApiError::internal(e).error_response();
    }
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .insert_header(("X-Total-Count", total.to_string()))
        .body(body)
}

//! The route table: every path, its methods and handlers, on one screen.
pub mod health;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Resource, Route};

use crate::error::ApiError;
use crate::openapi;

/// Mounts every route. Area-wide policy (authentication, roles) wraps scopes here.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource(
        "/healthz",
        [(Method::GET, web::to(health::healthz))],
    ))
    .service(resource(
        "/readyz",
        [(Method::GET, web::to(health::readyz))],
    ))
    .service(resource(
        "/openapi.json",
        [(Method::GET, web::to(openapi::serve))],
    ));
}

/// Extractor settings that turn malformed input into API.md's 400/413/415/422
/// bodies instead of actix's plain-text defaults.
pub fn configure_extractors(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(body_limit)
            .error_handler(|e, _| ApiError::from(e).into()),
    )
    .app_data(
        web::FormConfig::default()
            .limit(body_limit)
            .error_handler(|e, _| ApiError::from(e).into()),
    )
    .app_data(web::PayloadConfig::default().limit(body_limit))
    .app_data(web::QueryConfig::default().error_handler(|e, _| ApiError::from(e).into()))
    .app_data(web::PathConfig::default().error_handler(|e, _| ApiError::from(e).into()));
}

/// A resource whose other methods answer 405 with an `Allow` header.
pub fn resource<const N: usize>(path: &str, routes: [(Method, Route); N]) -> Resource {
    let allow = routes
        .iter()
        .map(|(m, _)| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    routes
        .into_iter()
        .fold(web::resource(path), |r, (method, route)| {
            r.route(route.method(method))
        })
        .default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<(), _>(ApiError::MethodNotAllowed { allow }) }
        }))
}

/// Unknown paths: JSON 404 like every other error.
pub async fn not_found(_req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

//! Pages we serve to browsers, compiled into the binary: each answer carries
//! a strict Content-Security-Policy (no inline script, nothing from another
//! origin, never framed), `nosniff`, and no Referer for what the page links to.
use actix_web::http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use actix_web::{web, HttpResponse};

use crate::auth::AppState;
use crate::error::ApiError;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A compiled-in file with the headers every page carries. `no-store`: a
/// reset page's URL holds a token, and nothing here is worth caching.
pub fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .insert_header((X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(body)
}

fn recovery_page(
    state: &AppState,
    content_type: &'static str,
    body: &'static str,
) -> Result<HttpResponse, ApiError> {
    super::recovery::enabled(state)?;
    Ok(asset(content_type, body))
}

/// GET /password/reset?token=…: the page the emailed link opens; it posts the
/// token and the new password to POST /password/reset.
#[utoipa::path(get, path = "/password/reset", tag = "recovery",
    params(("token" = Option<String>, Query, description = "From the emailed link; read by the page's script, never by the server")),
    responses((status = 200, description = "The reset page", content_type = "text/html"),
        (status = 404, description = "Recovery is off", body = crate::error::ErrorBody)))]
pub async fn reset_page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    recovery_page(
        &state,
        "text/html; charset=utf-8",
        include_str!("pages/reset.html"),
    )
}

/// GET /password/reset.js
#[utoipa::path(get, path = "/password/reset.js", tag = "recovery",
    responses((status = 200, description = "The reset page's script", content_type = "text/javascript"),
        (status = 404, description = "Recovery is off", body = crate::error::ErrorBody)))]
pub async fn reset_script(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    recovery_page(
        &state,
        "text/javascript; charset=utf-8",
        include_str!("pages/reset.js"),
    )
}

/// GET /password/reset.css
#[utoipa::path(get, path = "/password/reset.css", tag = "recovery",
    responses((status = 200, description = "The reset page's style", content_type = "text/css"),
        (status = 404, description = "Recovery is off", body = crate::error::ErrorBody)))]
pub async fn reset_style(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    recovery_page(
        &state,
        "text/css; charset=utf-8",
        include_str!("pages/reset.css"),
    )
}

/// GET /console: the console lives at /console/ (its files are relative).
#[utoipa::path(get, path = "/console", tag = "console",
    responses((status = 308, description = "To /console/", headers(("Location" = String)))))]
pub async fn console_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/console/"))
        .finish()
}

/// GET /console/: the admin console, a single page on the public API.
#[utoipa::path(get, path = "/console/", tag = "console",
    responses((status = 200, description = "The console page", content_type = "text/html")))]
pub async fn console_page() -> HttpResponse {
    asset(
        "text/html; charset=utf-8",
        include_str!("console/index.html"),
    )
}

/// GET /console/app.js
#[utoipa::path(get, path = "/console/app.js", tag = "console",
    responses((status = 200, description = "The console's script", content_type = "text/javascript")))]
pub async fn console_script() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("console/app.js"),
    )
}

/// GET /console/style.css
#[utoipa::path(get, path = "/console/style.css", tag = "console",
    responses((status = 200, description = "The console's style", content_type = "text/css")))]
pub async fn console_style() -> HttpResponse {
    asset("text/css; charset=utf-8", include_str!("console/style.css"))
}

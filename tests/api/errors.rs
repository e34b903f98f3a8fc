//! Error bodies of docs/API.md: every failure is JSON with `error` and `detail`.
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use taskgate::routes::form::FormFields;
use taskgate::routes::json::JsonBody;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let app = spawn_app().await;
    assert_error(
        app.get("/no/such/thing").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_unsupported_method_is_405_with_allow() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let resp = app.request(Method::DELETE, path).send().await.unwrap();
        assert_eq!(resp.headers().get("allow").unwrap(), "GET", "{path}");
        assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
}

#[tokio::test]
async fn openapi_json_describes_the_operations_routes() {
    let app = spawn_app().await;
    let resp = app.get("/openapi.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/healthz"]["get"].is_object());
    assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

// The extractor configuration the server uses, on a probe route of its own, so
// that these rules are checked apart from any one route: they hold for all of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only parsed: the tests read the errors")]
struct Probe {
    email: String,
    count: Option<u32>,
}

async fn probe_app() -> impl actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .configure(|cfg| taskgate::routes::configure_extractors(cfg, 64 * 1024))
            .route(
                "/probe",
                web::post().to(|_: JsonBody<Probe>| async { HttpResponse::Ok().finish() }),
            )
            .route(
                "/form",
                web::post().to(|req: HttpRequest, payload: web::Payload| async move {
                    FormFields::read(&req, payload, 64 * 1024)
                        .await
                        .map(|_| HttpResponse::Ok().finish())
                }),
            )
            .route(
                "/items/{id}",
                web::get().to(|_: web::Path<i64>| async { HttpResponse::Ok().finish() }),
            )
            .default_service(web::to(taskgate::routes::not_found)),
    )
    .await
}

async fn call(body: &str, content_type: &str, path: &str) -> (StatusCode, Value) {
    let app = probe_app().await;
    let req = test::TestRequest::post()
        .uri(path)
        .insert_header(("content-type", content_type))
        .set_payload(body.to_owned())
        .to_request();
    let resp = test::call_service(&app, req).await;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let body: Value = test::read_body_json(resp).await;
    (status, body)
}

#[actix_web::test]
async fn malformed_json_is_400_invalid_request() {
    let (status, body) = call(r#"{"email": "#, "application/json", "/probe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

#[actix_web::test]
async fn unknown_and_missing_fields_are_422_naming_the_field() {
    let (status, body) = call(
        r#"{"email": "a@b.c", "role": "admin"}"#,
        "application/json",
        "/probe",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "validation_error");
    assert_eq!(body["fields"]["role"], "unknown field");

    let (status, body) = call(r#"{}"#, "application/json", "/probe").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["fields"]["email"], "field required");

    let (status, body) = call(r#"{"email": 5}"#, "application/json", "/probe").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["fields"]["email"], "invalid type: integer `5`, expected a string",
        "{body}"
    );
    let (status, body) = call(
        r#"{"email": "a", "count": -1}"#,
        "application/json",
        "/probe",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["fields"]["count"].is_string(), "{body}");
    assert!(body.get("fields").unwrap().get("body").is_none(), "{body}");
}

#[actix_web::test]
async fn a_body_over_64_kib_is_413() {
    let big = format!(r#"{{"email": "{}"}}"#, "a".repeat(70 * 1024));
    let (status, body) = call(&big, "application/json", "/probe").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");
}

#[actix_web::test]
async fn the_wrong_content_type_is_415() {
    let (status, body) = call(r#"{"email": "a@b.c"}"#, "text/plain", "/probe").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"], "unsupported_media_type");

    let (status, body) = call(r#"{"email": "a@b.c"}"#, "application/json", "/form").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        body["detail"].as_str().unwrap().contains("form data"),
        "{body}"
    );
}

#[actix_web::test]
async fn a_non_numeric_id_is_422_and_an_unknown_route_404() {
    let app = probe_app().await;
    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri("/items/abc").to_request(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 422);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "validation_error");
    assert!(
        body["fields"]["id"].is_string(),
        "names the segment: {body}"
    );

    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/nowhere").to_request()).await;
    assert_eq!(resp.status().as_u16(), 404);
}

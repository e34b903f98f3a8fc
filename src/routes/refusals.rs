//! Refusals made below our handlers (actix-cors, actix's own routing) carry
//! an empty body; this middleware gives them docs/API.md's JSON error body.
use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::ResponseError;

use crate::error::ApiError;

/// Wraps the app outside CORS, so that its refusals pass through here too.
pub fn json_refusals<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(with_json_body)
}

fn with_json_body<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if res.headers().contains_key(CONTENT_TYPE) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, original) = res.into_parts();
    let mut ours = ApiError::Refused(original.status()).error_response();
    for (name, value) in original.headers() {
        if name != CONTENT_LENGTH {
            ours.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let res: ServiceResponse<EitherBody<B>> = ServiceResponse::new(req, ours).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

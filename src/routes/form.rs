//! The login form of `/token` and `/login`: urlencoded or multipart, as
//! `curl -d` and `curl -F` send it. JSON gets 415 saying how to send a form.
use std::collections::HashMap;

use actix_multipart::{Multipart, MultipartError};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::body::{read_all, refuse_declared_over, Limited};
use crate::error::ApiError;

const HOW_TO: &str = "Send form data (application/x-www-form-urlencoded or multipart/form-data), \
e.g. curl -d 'username=you@example.com' -d 'password=...' http://localhost:8000/token";

/// Every field of the form; the first value of a repeated field wins.
pub struct FormFields(HashMap<String, String>);

impl FormFields {
    pub async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        limit: usize,
    ) -> Result<FormFields, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let pairs = if content_type.starts_with("application/x-www-form-urlencoded") {
            let body = read_all(req, payload.into_inner(), limit).await?;
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                .map_err(|_| ApiError::InvalidRequest("Malformed form data".into()))?
        } else if content_type.starts_with("multipart/form-data") {
            refuse_declared_over(req, limit)?;
            read_multipart(req, payload, limit).await?
        } else {
            return Err(ApiError::UnsupportedMediaType(HOW_TO.into()));
        };
        let mut fields = HashMap::new();
        for (k, v) in pairs {
            fields.entry(k).or_insert(v);
        }
        Ok(FormFields(fields))
    }

    /// A field's value; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Most parts a login form may have, and the longest name a part may have:
/// the form has a handful of short fields, and each part costs parsing.
const MAX_PARTS: usize = 16;
const MAX_NAME_BYTES: usize = 64;

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Vec<(String, String)>, ApiError> {
    let malformed = || ApiError::InvalidRequest("Malformed multipart form data".into());
    // Every raw byte counts against the limit: boundaries and headers too.
    let limited = Limited::new(payload.into_inner(), limit);
    let mut multipart = Multipart::new(req.headers(), limited);
    let mut pairs = Vec::new();
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| multipart_error(e, malformed))?;
        if pairs.len() == MAX_PARTS {
            return Err(ApiError::PayloadTooLarge);
        }
        let name = field.name().map(str::to_owned).ok_or_else(malformed)?;
        if name.len() > MAX_NAME_BYTES {
            return Err(ApiError::InvalidRequest(format!(
                "Multipart field names are at most {MAX_NAME_BYTES} bytes"
            )));
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            value.extend_from_slice(&chunk.map_err(|e| multipart_error(e, malformed))?);
        }
        let value = String::from_utf8(value)
            .map_err(|_| ApiError::InvalidRequest("Form fields must be UTF-8".into()))?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// The body's own failures (too large, too slow) keep their answers; the rest is malformed.
fn multipart_error(e: MultipartError, malformed: impl Fn() -> ApiError) -> ApiError {
    match e {
        MultipartError::Payload(e) => e.into(),
        _ => malformed(),
    }
}

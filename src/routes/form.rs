//! The login form of `/token` and `/login`: urlencoded or multipart, as
//! `curl -d` and `curl -F` send it. JSON gets 415 saying how to send a form.
use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::body::read_all;
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

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Vec<(String, String)>, ApiError> {
    let malformed = || ApiError::InvalidRequest("Malformed multipart form data".into());
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut pairs = Vec::new();
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|_| malformed())?;
        let name = field.name().map(str::to_owned).ok_or_else(malformed)?;
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| malformed())?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::PayloadTooLarge);
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value)
            .map_err(|_| ApiError::InvalidRequest("Form fields must be UTF-8".into()))?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

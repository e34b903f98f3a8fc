//! OpenAPI pieces that handlers attach to their own operations.
use std::collections::BTreeMap;

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use crate::domain::task::TITLE_MAX;
use crate::domain::FULL_NAME_MAX;

/// The 401 every protected route may answer, for the OpenAPI description.
pub struct ErrorResponses;

impl utoipa::IntoResponses for ErrorResponses {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        BTreeMap::from([(
            "401".to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("Missing, invalid, expired or revoked token")
                    .content("application/json", body)
                    .build(),
            ),
        )])
    }
}

/// A task title (`TaskTitle`) or full name (`FullName`) holds no NUL:
/// PostgreSQL text cannot.
const NO_NUL: &str = r"^[^\x00]*$";

/// No NUL and not blank, read as ECMA-262 reads it (OpenAPI's dialect, the
/// one client validators and the fuzzer use). Its `\s` is what `str::trim`
/// strips but for U+0085, which it lacks, and U+FEFF, which it adds: both
/// corrected here, so "blank" means the same to a client as to the server.
/// U+2028/9 are left to `\s`: a generator that writes escapes as raw
/// characters into a regex literal breaks on line separators.
const NOT_BLANK: &str = r"^[^\x00]*([^\s\x00\x85]|\uFEFF)[^\x00]*$";

/// A task's `title` as a request carries it (`TaskTitle::parse`), for
/// `#[schema(schema_with = ...)]`. `maxLength` counts what is sent; the
/// server measures after trimming, so padding beyond it is still taken.
pub fn task_title() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(TITLE_MAX))
        .pattern(Some(NOT_BLANK))
        .description(Some(format!(
            "Surrounding whitespace is trimmed; the trimmed title holds 1 to {TITLE_MAX} \
             characters (not blank, no NUL)."
        )))
        .build()
}

/// A task's `title` as stored and answered.
pub fn stored_task_title() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(TITLE_MAX))
        .build()
}

/// A user's `full_name` as a request carries it (`FullName::parse`).
pub fn full_name() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(FULL_NAME_MAX))
        .pattern(Some(NO_NUL))
        .description(Some(format!(
            "Surrounding whitespace is trimmed; the trimmed name holds at most \
             {FULL_NAME_MAX} characters (no NUL); `null` or blank means no name."
        )))
        .build()
}

/// A user's `full_name` as stored and answered: trimmed, never blank.
pub fn stored_full_name() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .min_length(Some(1))
        .max_length(Some(FULL_NAME_MAX))
        .build()
}

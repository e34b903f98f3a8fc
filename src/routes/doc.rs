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

/// What `str::trim` strips (Unicode White_Space), spelled out: ECMA-262,
/// Python and Rust regexes each read `\s` over a different set.
const WHITESPACE: &str = r"\x09-\x0D\x20\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// A pattern for text that, once trimmed, holds at most `max` (2 or more)
/// characters (at least one unless `blank_allowed`) and no NUL. A `maxLength`
/// cannot say this: it would count the whitespace that trimming drops.
fn trimmed_text(max: usize, blank_allowed: bool) -> String {
    let ws = WHITESPACE;
    let text = format!(
        "[^{ws}\\x00]([^\\x00]{{0,{}}}[^{ws}\\x00])?",
        max.saturating_sub(2)
    );
    let text = if blank_allowed {
        format!("({text})?")
    } else {
        text
    };
    format!("^[{ws}]*{text}[{ws}]*$")
}

/// A task's `title` (`TaskTitle`), for `#[schema(schema_with = ...)]`.
pub fn task_title() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(trimmed_text(TITLE_MAX, false)))
        .description(Some(format!("Trimmed; then 1 to {TITLE_MAX} characters.")))
        .build()
}

/// A user's `full_name` (`FullName`), for `#[schema(schema_with = ...)]`.
pub fn full_name() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(trimmed_text(FULL_NAME_MAX, true)))
        .description(Some(format!(
            "Trimmed; at most {FULL_NAME_MAX} characters; `null` or blank means no name."
        )))
        .build()
}

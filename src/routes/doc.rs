//! OpenAPI pieces that handlers attach to their own operations.

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

use crate::domain::task::{DESCRIPTION_MAX, TITLE_MAX};
use crate::domain::text::{LINE_REFUSED, TEXT_REFUSED};
use crate::domain::FULL_NAME_MAX;

/// `ranges` as the inside of an ECMA-262 character class (`\x00-\x1f...`),
/// the same in its plain and `u` modes.
fn ecma_class(ranges: &[(char, char)]) -> String {
    let escape = |c: char| match c as u32 {
        n @ 0..=0xff => format!("\\x{n:02x}"),
        n => format!("\\u{n:04x}"),
    };
    ranges
        .iter()
        .map(|&(lo, hi)| match lo == hi {
            true => escape(lo),
            false => format!("{}-{}", escape(lo), escape(hi)),
        })
        .collect()
}

/// No refused character (`text::LINE_REFUSED`) and not blank. With those
/// characters gone, ECMA-262's `\s` is exactly Rust's whitespace (what
/// `str::trim` strips), so "blank" reads the same to a client as to the
/// server.
fn line_not_blank() -> String {
    format!(r"^(?!\s*$)[^{}]*$", ecma_class(LINE_REFUSED))
}

/// Nothing of `refused` anywhere.
fn none_of(refused: &[(char, char)]) -> String {
    format!("^[^{}]*$", ecma_class(refused))
}

/// A task's `title` as a request carries it (`TaskTitle::parse`), for
/// `#[schema(schema_with = ...)]`. `maxLength` counts what is sent; the
/// server measures after trimming, so padding beyond it is still taken.
pub fn task_title() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(TITLE_MAX))
        .pattern(Some(line_not_blank()))
        .description(Some(format!(
            "Surrounding whitespace is trimmed; the trimmed title holds 1 to {TITLE_MAX} \
             characters (not blank). No control characters, bidirectional formatting \
             characters (U+202A-U+202E, U+2066-U+2069) or U+FEFF, padding included."
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
        .pattern(Some(none_of(LINE_REFUSED)))
        .description(Some(format!(
            "Surrounding whitespace is trimmed; the trimmed name holds at most \
             {FULL_NAME_MAX} characters; `null` or blank means no name. No control \
             characters, bidirectional formatting characters (U+202A-U+202E, \
             U+2066-U+2069) or U+FEFF, padding included."
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

/// A task's `description` as a request carries it (`parse_description`):
/// kept verbatim, line breaks and tabs included.
pub fn task_description() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(DESCRIPTION_MAX))
        .pattern(Some(none_of(TEXT_REFUSED)))
        .description(Some(
            "Kept as sent. Tab, line feed and carriage return are the only control \
             characters taken; no bidirectional formatting characters (U+202A-U+202E, \
             U+2066-U+2069).",
        ))
        .build()
}

//! `FullName`: optional, trimmed, at most 200 characters, no control or
//! bidirectional formatting characters; blank means none.
use super::text::{check_characters, LINE_REFUSED};

pub const FULL_NAME_MAX: usize = 200;

pub struct FullName;

impl FullName {
    pub fn parse(raw: Option<String>) -> Result<Option<String>, String> {
        let Some(raw) = raw else { return Ok(None) };
        check_characters("full_name", &raw, LINE_REFUSED)?;
        let name = raw.trim();
        if name.chars().count() > FULL_NAME_MAX {
            return Err(format!(
                "full_name must be at most {FULL_NAME_MAX} characters"
            ));
        }
        Ok((!name.is_empty()).then(|| name.to_owned()))
    }
}

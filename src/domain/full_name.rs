//! `FullName`: optional, trimmed, at most 200 characters; blank means none.

pub const FULL_NAME_MAX: usize = 200;

pub struct FullName;

impl FullName {
    pub fn parse(raw: Option<String>) -> Result<Option<String>, String> {
        let Some(raw) = raw else { return Ok(None) };
        let name = raw.trim();
        if name.chars().count() > FULL_NAME_MAX {
            return Err(format!(
                "full_name must be at most {FULL_NAME_MAX} characters"
            ));
        }
        if name.contains('\0') {
            return Err("full_name must not contain NUL characters".into());
        }
        Ok((!name.is_empty()).then(|| name.to_owned()))
    }
}

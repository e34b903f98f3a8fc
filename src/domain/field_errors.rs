//! `FieldErrors`: input refused field by field, so that one answer names
//! every bad field at once.
use std::fmt;

/// Each refused field's name and why it was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(&'static str, String)>);

impl FieldErrors {
    /// The fields that have a message (called where at least one has).
    pub fn of(checks: impl IntoIterator<Item = (&'static str, Option<String>)>) -> Self {
        FieldErrors(
            checks
                .into_iter()
                .filter_map(|(field, message)| message.map(|m| (field, m)))
                .collect(),
        )
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (field, message)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{field}: {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

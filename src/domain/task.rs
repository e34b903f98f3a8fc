//! Task fields: `TaskTitle` (1..=200 characters after trimming), descriptions
//! of at most 10,000 characters, and ISO due dates. Neither holds control or
//! bidirectional formatting characters (a description keeps its line breaks
//! and tabs).
use chrono::NaiveDate;

use super::text::{check_characters, LINE_REFUSED, TEXT_REFUSED};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTitle(String);

impl TaskTitle {
    pub fn parse(raw: &str) -> Result<TaskTitle, String> {
        check_characters("title", raw, LINE_REFUSED)?;
        let title = raw.trim();
        match title.chars().count() {
            0 => Err("title must not be empty".into()),
            n if n > TITLE_MAX => Err(format!("title must be at most {TITLE_MAX} characters")),
            _ => Ok(TaskTitle(title.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A description as stored: at most 10,000 characters, kept verbatim.
pub fn parse_description(raw: Option<String>) -> Result<Option<String>, String> {
    match raw {
        Some(d) if d.chars().count() > DESCRIPTION_MAX => Err(format!(
            "description must be at most {DESCRIPTION_MAX} characters"
        )),
        Some(d) => check_characters("description", &d, TEXT_REFUSED).map(|()| Some(d)),
        None => Ok(None),
    }
}

/// `2026-12-01`, or null.
pub fn parse_due_date(raw: Option<&str>) -> Result<Option<NaiveDate>, String> {
    raw.map(|d| {
        NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| "due_date must be a date like 2026-12-01".to_owned())
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters() {
        assert_eq!(
            TaskTitle::parse("  Buy milk ").unwrap().as_str(),
            "Buy milk"
        );
        assert!(TaskTitle::parse("   ").is_err());
        assert!(TaskTitle::parse(&"é".repeat(200)).is_ok());
        assert!(TaskTitle::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn due_dates_are_iso_dates() {
        assert_eq!(
            parse_due_date(Some("2026-12-01")).unwrap(),
            NaiveDate::from_ymd_opt(2026, 12, 1)
        );
        assert_eq!(parse_due_date(None).unwrap(), None);
        for bad in ["2026-13-01", "01/12/2026", "2026-12-01T10:00:00Z", ""] {
            assert!(parse_due_date(Some(bad)).is_err(), "{bad}");
        }
    }
}

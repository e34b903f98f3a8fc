//! `Email`: trimmed, lowercased, syntactically valid.
use validator::ValidateEmail;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// RFC 5321's limit on a whole address, counted in characters as the API
/// schema's `maxLength` counts them.
pub const EMAIL_MAX: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("email is required");
        }
        if email.chars().count() > EMAIL_MAX || !email.validate_email() {
            return Err("not a valid email address");
        }
        Ok(Email(email))
    }

    /// Normalises a login name without judging it: an invalid one simply matches no user.
    pub fn normalise(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_and_overlong_emails_are_refused() {
        for bad in ["", "   ", "ada", "ada@", "@example.com", "a b@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}

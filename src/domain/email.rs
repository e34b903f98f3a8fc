//! `Email`: trimmed, lowercased, syntactically valid, its domain as DNS
//! spells it (the A-label, so `exämple.com` and `xn--exmple-cua.com` are one
//! mailbox), and one mail can reach: no address literal, no single label.
use validator::ValidateEmail;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// RFC 5321's limit on a whole address, counted in characters as the API
/// schema's `maxLength` counts them.
pub const EMAIL_MAX: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("email is required");
        }
        const INVALID: &str = "not a valid email address";
        let (local, domain) = trimmed.rsplit_once('@').ok_or(INVALID)?;
        if domain.starts_with('[') {
            return Err(
                "an address literal (user@[192.0.2.1]) cannot be mailed: use a domain name",
            );
        }
        let domain = idna::domain_to_ascii_strict(domain).map_err(|_| INVALID)?;
        if !domain.contains('.') {
            return Err("the domain must have a dot (user@localhost cannot be mailed)");
        }
        let email = format!("{}@{domain}", local.to_lowercase());
        if email.chars().count() > EMAIL_MAX || !email.validate_email() {
            return Err(INVALID);
        }
        Ok(Email(email))
    }

    /// Normalises a login name without judging it: an invalid one simply
    /// matches no user; a valid one is the email as `parse` stores it.
    pub fn normalise(raw: &str) -> String {
        match Email::parse(raw) {
            Ok(email) => email.0,
            Err(_) => raw.trim().to_lowercase(),
        }
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

    #[test]
    fn the_domain_is_stored_as_its_a_label() {
        for spelling in [
            "user@exämple.com",
            "User@EXÄMPLE.com",
            "user@xn--exmple-cua.com",
        ] {
            assert_eq!(
                Email::parse(spelling).unwrap().as_str(),
                "user@xn--exmple-cua.com",
                "{spelling}"
            );
            assert_eq!(Email::normalise(spelling), "user@xn--exmple-cua.com");
        }
    }

    #[test]
    fn literals_and_single_labels_are_refused() {
        for bad in [
            "user@[127.0.0.1]",
            "user@[IPv6:::1]",
            "user@localhost",
            "user@com",
            "user@exa_mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}

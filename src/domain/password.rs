//! `Password`: 8 characters to 72 bytes (bcrypt's limit), not a common password.
use secrecy::{ExposeSecret, SecretString};
use zxcvbn::matching::patterns::MatchPattern;

pub const MIN_CHARS: usize = 8;
/// bcrypt reads at most 72 bytes; longer input is refused, never truncated.
pub const MAX_BYTES: usize = 72;
/// Passwords ranked this high in zxcvbn's list of leaked passwords are refused.
const COMMON_RANK: usize = 10_000;

/// A new password that keeps the rules; its `Debug` never shows it.
#[derive(Clone, Debug)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(secret: SecretString) -> Result<Password, String> {
        let raw = secret.expose_secret();
        if raw.chars().count() < MIN_CHARS {
            return Err(format!("password must be at least {MIN_CHARS} characters"));
        }
        if raw.len() > MAX_BYTES {
            return Err(format!(
                "password must be at most {MAX_BYTES} bytes (bcrypt's limit); this one is {} bytes",
                raw.len()
            ));
        }
        if is_common(raw) {
            return Err(
                "password is too common: it is in a list of the most used passwords".into(),
            );
        }
        Ok(Password(secret))
    }

    /// A fixed password for the dummy hash that equalises login timing.
    pub fn dummy() -> Password {
        Password("taskgate-dummy-password-for-equal-timing".into())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// True when the whole password is one entry (in any case, reversed or in
/// l33t) of the first `COMMON_RANK` entries of zxcvbn's password list.
fn is_common(password: &str) -> bool {
    let entropy = zxcvbn::zxcvbn(password, &[]);
    match entropy.sequence() {
        [only] => matches!(
            &only.pattern,
            MatchPattern::Dictionary(d)
                // zxcvbn does not export `DictionaryType`; its Debug name is stable.
                if format!("{:?}", d.dictionary_name) == "Passwords" && d.rank <= COMMON_RANK
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_are_refused() {
        for common in [
            "password1",
            "12345678",
            "qwerty123",
            "Password1",
            "iloveyou1",
        ] {
            let err = Password::parse(common.into()).unwrap_err();
            assert!(err.contains("common"), "{common}: {err}");
        }
    }

    #[test]
    fn length_is_counted_in_characters_below_and_bytes_above() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("zq8#Lk2!".into()).is_ok());
        assert!(Password::parse("x".repeat(72).into()).is_ok());
        assert!(Password::parse("x".repeat(73).into())
            .unwrap_err()
            .contains("72 bytes"));
        // 8 characters of 4 bytes each: long enough, and within 72 bytes.
        assert!(Password::parse("😀".repeat(8).into()).is_ok());
        // 19 four-byte characters = 76 bytes: refused although only 19 characters.
        assert!(Password::parse("😀".repeat(19).into()).is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::parse("zq8#Lk2!xx".into()).unwrap();
        assert!(!format!("{p:?}").contains("zq8"));
    }
}

//! `NewAccount`: what every new account needs, parsed together.
use secrecy::SecretString;

use super::FieldErrors;
use super::{Email, FullName, Password};

/// What every new account needs, parsed together so that one refusal names every
/// bad field (signup and admin-created users alike).
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub full_name: Option<String>,
}

impl NewAccount {
    pub fn parse(
        email: &str,
        password: SecretString,
        full_name: Option<String>,
    ) -> Result<NewAccount, FieldErrors> {
        match (
            Email::parse(email),
            Password::parse(password),
            FullName::parse(full_name),
        ) {
            (Ok(email), Ok(password), Ok(full_name)) => Ok(NewAccount {
                email,
                password,
                full_name,
            }),
            (e, p, f) => Err(FieldErrors::of([
                ("email", e.err().map(str::to_owned)),
                ("password", p.err()),
                ("full_name", f.err()),
            ])),
        }
    }
}

//! The TOTP second factor as every authenticator app computes it (RFC 6238:
//! HMAC-SHA1, 6 digits, 30 s steps, one step of drift either way), and its
//! recovery codes. What is stored and claimed is in `db::mfa`.
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Secret, Totp};

use crate::db::mfa::Proof;
use crate::error::ApiError;

/// The issuer an authenticator app shows beside the account.
pub const ISSUER: &str = "taskgate";
/// Recovery codes handed out by one confirmation.
pub const RECOVERY_CODES: usize = 10;
/// 160 bits, the length RFC 4226 recommends for HMAC-SHA1.
const SECRET_BYTES: usize = 20;
/// A recovery code's letters: 16 of them from a 32-letter alphabet, 80 bits.
const CODE_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
const CODE_LETTERS: usize = 16;

/// A secret for a new enrolment: its bytes to store, and what the user types
/// or scans into an app.
pub struct NewSecret {
    pub bytes: Vec<u8>,
    pub base32: String,
    pub otpauth_uri: String,
}

fn totp(secret: &[u8], account: &str) -> Result<Totp, ApiError> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_skew(1)
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| ApiError::internal(format!("TOTP parameters refused: {e}")))
}

/// A fresh random secret for `email`'s enrolment.
pub fn new_secret(email: &str) -> Result<NewSecret, ApiError> {
    let mut bytes = vec![0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    // The URI's label is `issuer:account`, so the account may hold no colon.
    let account = email.replace(':', "_");
    let totp = totp(&bytes, &account)?;
    let otpauth_uri = totp
        .to_url()
        .map_err(|e| ApiError::internal(format!("otpauth URI: {e}")))?;
    Ok(NewSecret {
        base32: Secret::from(bytes.clone()).to_base32(),
        bytes,
        otpauth_uri,
    })
}

/// The time step `code` was computed for, when it is right for `secret` at
/// `now` (Unix seconds) or one step either side; `None` otherwise. Spaces
/// inside the code are ignored (apps show `123 456`). Whether that step was
/// used already is the caller's to check.
pub fn check(secret: &[u8], code: &str, now: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| *c != ' ').collect();
    let totp = totp(secret, "").ok()?;
    totp.check(&code, now)
        .and_then(|step| i64::try_from(step).ok())
}

/// What a request offers as a second factor: the app's code or a recovery code.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    Otp(&'a str),
    RecoveryCode(&'a str),
}

/// `factor` checked against `secret` now, as the proof to claim; `None` when
/// it is wrong (whether it was used already is the claim's to say).
pub fn proof(secret: &[u8], factor: SecondFactor) -> Option<Proof> {
    match factor {
        SecondFactor::Otp(code) => check(secret, code, now()).map(|step| Proof::Totp {
            secret: secret.to_vec(),
            step,
        }),
        SecondFactor::RecoveryCode(code) => recovery_code_digest(code).map(Proof::RecoveryCode),
    }
}

/// The current Unix time in seconds, as TOTP counts it.
pub fn now() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// A new set of recovery codes, as shown to the user (`abcd-efgh-ijkm-npqr`),
/// and their digests, as stored.
pub fn new_recovery_codes() -> (Vec<String>, Vec<Vec<u8>>) {
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; CODE_LETTERS];
            OsRng.fill_bytes(&mut bytes);
            let letters: Vec<char> = bytes
                .iter()
                .map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)]))
                .collect();
            letters
                .chunks(4)
                .map(|group| group.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect();
    let digests = codes
        .iter()
        .map(|code| digest(&code.replace('-', "")))
        .collect();
    (codes, digests)
}

fn digest(letters: &str) -> Vec<u8> {
    Sha256::digest(letters.as_bytes()).to_vec()
}

/// The digest stored for a recovery code, from the code as a user may type
/// it (any case, with or without dashes and spaces); `None` for input that
/// cannot be a code.
pub fn recovery_code_digest(code: &str) -> Option<Vec<u8>> {
    let letters: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let well_formed =
        letters.len() == CODE_LETTERS && letters.bytes().all(|b| CODE_ALPHABET.contains(&b));
    well_formed.then(|| digest(&letters))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_right_in_its_step_and_one_either_side() {
        let secret = new_secret("ada@example.com").expect("secret");
        let totp = totp(&secret.bytes, "").expect("totp");
        let now = 1_800_000_000;
        let code = totp.generate(now).to_string();
        assert_eq!(check(&secret.bytes, &code, now), Some((now / 30) as i64));
        assert_eq!(
            check(&secret.bytes, &code, now + 30),
            Some((now / 30) as i64)
        );
        assert_eq!(
            check(&secret.bytes, &code, now - 30),
            Some((now / 30) as i64)
        );
        assert_eq!(check(&secret.bytes, &code, now + 60), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(check(&secret.bytes, &spaced, now), Some((now / 30) as i64));
        assert_eq!(check(&secret.bytes, "12345", now), None);
        assert_eq!(check(&secret.bytes, "+12345", now), None);
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let secret = new_secret("ada@example.com").expect("secret");
        assert!(
            secret
                .otpauth_uri
                .starts_with("otpauth://totp/taskgate:ada%40example.com?secret="),
            "{}",
            secret.otpauth_uri
        );
        assert!(secret
            .otpauth_uri
            .contains(&format!("secret={}", secret.base32)));
        assert!(secret.otpauth_uri.ends_with("&issuer=taskgate"));
        assert_eq!(secret.base32.len(), 32);
    }

    #[test]
    fn recovery_codes_read_back_however_typed() {
        let (codes, digests) = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for (code, stored) in codes.iter().zip(&digests) {
            assert_eq!(code.len(), 19, "{code}");
            let digest = recovery_code_digest(code).expect("well formed");
            assert_eq!(&digest, stored);
            let typed = code.to_uppercase().replace('-', " ");
            assert_eq!(recovery_code_digest(&typed), Some(digest));
        }
        assert_ne!(codes[0], codes[1]);
        assert_eq!(recovery_code_digest("abcd"), None);
        assert_eq!(recovery_code_digest("0000-0000-0000-0000"), None);
    }
}

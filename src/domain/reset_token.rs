//! A password-reset token: 256 random bits as 64 hex digits (what the link
//! carries) and its SHA-256 (the only form ever stored).
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

pub struct ResetToken {
    pub token: String,
    pub hash: Vec<u8>,
}

impl ResetToken {
    pub fn generate() -> ResetToken {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let hash = reset_token_hash(&token);
        ResetToken { token, hash }
    }
}

/// The stored form of a token a client sent back: `None` when it cannot be
/// one (not 64 hex digits), so that nothing else is done for it.
pub fn parse_reset_token(token: &str) -> Option<Vec<u8>> {
    (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| reset_token_hash(&token.to_ascii_lowercase()))
}

fn reset_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

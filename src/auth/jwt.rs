//! JWTs: claims, signing keys selected by `kid`, encoding, and decoding for an
//! expected token type with a pinned algorithm.
use std::collections::HashMap;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::JwtSettings;
use crate::domain::Role;

const ALGORITHM: Algorithm = Algorithm::HS256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

/// The claims of both token types (docs/API.md, "Tokens"). No personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub sid: Uuid,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// Access tokens only; informational (authorization reads the database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl Claims {
    /// The user id in `sub`: only the canonical decimal of a positive id
    /// (`"+2"` or `"02"` are not user 2: one user, one spelling).
    pub fn user_id(&self) -> Option<i64> {
        self.sub
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0 && id.to_string() == self.sub)
    }
}

/// Why a token was refused. Only `Expired` is ever told to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid(String),
}

/// The signing key and every key still accepted for verification.
pub struct Keys {
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    pub issuer: String,
    pub audience: String,
}

/// A short fingerprint naming a secret in the `kid` header; it cannot be
/// turned back into the secret.
pub fn key_id(secret: &str) -> String {
    let digest = Sha256::digest([b"taskgate-kid:".as_slice(), secret.as_bytes()].concat());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl Keys {
    pub fn new(settings: &JwtSettings) -> Keys {
        let current = settings.signing_secret();
        let mut decoding = HashMap::new();
        for secret in
            std::iter::once(current).chain(settings.previous_secrets.iter().map(|s| s.expose()))
        {
            decoding.insert(key_id(secret), DecodingKey::from_secret(secret.as_bytes()));
        }
        let mut validation = Validation::new(ALGORITHM);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.leeway = settings.leeway_seconds;
        validation.validate_exp = true;
        // Checked when present (RFC 7519 §4.1.5); we never issue one.
        validation.validate_nbf = true;
        Keys {
            kid: key_id(current),
            encoding: EncodingKey::from_secret(current.as_bytes()),
            decoding,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }
    }

    pub fn encode(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// Verifies signature (key chosen by `kid`), algorithm, `exp`, `iss`,
    /// `aud`, the required claims, and that the token is of type `expected`.
    pub fn decode(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Invalid(format!("header: {e}")))?;
        // RFC 7515 §4.1.11: we understand no extension, so any `crit` is refused.
        if header.crit.is_some() {
            return Err(TokenError::Invalid("crit header".into()));
        }
        // RFC 8725 §3.11: explicit typing; both our token types say `JWT`.
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
        {
            return Err(TokenError::Invalid(format!("typ {:?}", header.typ)));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("no kid".into()))?;
        let key = self
            .decoding
            .get(&kid)
            .ok_or_else(|| TokenError::Invalid(format!("unknown kid {kid}")))?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid(e.to_string()),
                }
            })?;
        let claims = data.claims;
        if claims.token_type != expected {
            return Err(TokenError::Invalid(format!(
                "{:?} token where {expected:?} was expected",
                claims.token_type
            )));
        }
        if claims.user_id().is_none() {
            return Err(TokenError::Invalid("sub is not a user id".into()));
        }
        Ok(claims)
    }

    /// Claims for a new access token of session `sid`, ending no later than `not_after`.
    pub fn access_claims(
        &self,
        user_id: i64,
        role: Role,
        sid: Uuid,
        now: i64,
        ttl: u64,
        not_after: i64,
    ) -> Claims {
        Claims {
            sub: user_id.to_string(),
            token_type: TokenType::Access,
            sid,
            jti: Uuid::new_v4(),
            iat: now,
            exp: now.saturating_add(ttl as i64).min(not_after),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            role: Some(role),
        }
    }

    /// Claims of a refresh token whose id and times the session row holds.
    pub fn refresh_claims(&self, user_id: i64, sid: Uuid, jti: Uuid, iat: i64, exp: i64) -> Claims {
        Claims {
            sub: user_id.to_string(),
            token_type: TokenType::Refresh,
            sid,
            jti,
            iat,
            exp,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            role: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn settings(secret: &str, previous: &[&str]) -> JwtSettings {
        JwtSettings {
            secret: Some(Secret::new(secret)),
            previous_secrets: previous.iter().map(|s| Secret::new(*s)).collect(),
            access_ttl_seconds: 900,
            refresh_ttl_seconds: 3600,
            refresh_reuse_grace_seconds: 10,
            session_max_seconds: 7200,
            issuer: "taskgate".into(),
            audience: "taskgate".into(),
            leeway_seconds: 0,
        }
    }

    const A: &str = "a-secret-that-is-at-least-32-bytes-long";
    const B: &str = "b-secret-that-is-at-least-32-bytes-long";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_token_round_trips_and_its_type_is_enforced() {
        let keys = Keys::new(&settings(A, &[]));
        let claims = keys.access_claims(7, Role::User, Uuid::new_v4(), now(), 60, i64::MAX);
        let token = keys.encode(&claims).unwrap();
        assert_eq!(keys.decode(&token, TokenType::Access).unwrap(), claims);
        assert!(matches!(
            keys.decode(&token, TokenType::Refresh),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn the_kid_names_the_secret_without_revealing_it() {
        assert_eq!(key_id(A).len(), 16);
        assert_ne!(key_id(A), key_id(B));
        assert!(!A.contains(&key_id(A)));
    }

    #[test]
    fn previous_secrets_still_verify_after_a_rotation() {
        let old = Keys::new(&settings(A, &[]));
        let token = old
            .encode(&old.access_claims(1, Role::Admin, Uuid::new_v4(), now(), 60, i64::MAX))
            .unwrap();
        let rotated = Keys::new(&settings(B, &[A]));
        assert!(rotated.decode(&token, TokenType::Access).is_ok());
        let forgotten = Keys::new(&settings(B, &[]));
        assert!(forgotten.decode(&token, TokenType::Access).is_err());
    }

    #[test]
    fn expiry_is_reported_as_such() {
        let keys = Keys::new(&settings(A, &[]));
        let claims = keys.access_claims(1, Role::User, Uuid::new_v4(), now() - 100, 10, i64::MAX);
        assert_eq!(
            keys.decode(&keys.encode(&claims).unwrap(), TokenType::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn access_tokens_never_outlive_their_session() {
        let keys = Keys::new(&settings(A, &[]));
        let t = now();
        assert_eq!(
            keys.access_claims(1, Role::User, Uuid::new_v4(), t, 900, t + 5)
                .exp,
            t + 5
        );
    }
}

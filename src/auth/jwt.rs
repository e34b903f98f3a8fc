//! JWTs: claims, signing keys selected by `kid`, encoding, and decoding for an
//! expected token type with a pinned algorithm.
use secrecy::ExposeSecret;
use std::collections::HashMap;

use std::sync::Mutex;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::{self, SigningKey, VerifyingKey};
use crate::config::{ConfigError, JwtSettings};
use crate::domain::Role;

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

/// The signing key, every key still accepted for verification (each pinned
/// to its algorithm), and the tokens verified lately.
pub struct Keys {
    signing: SigningKey,
    verifying: HashMap<String, (VerifyingKey, Validation)>,
    /// The public keys, current first, as `/.well-known/jwks.json` serves them.
    pub jwks: JwkSet,
    verified: VerifiedTokens,
    leeway: i64,
    pub issuer: String,
    pub audience: String,
}

impl Keys {
    /// The keys `settings` name. A key that does not parse, or is not of
    /// `jwt.algorithm`, is a configuration error naming the setting.
    pub fn new(settings: &JwtSettings) -> Result<Keys, ConfigError> {
        // Before the first token is signed or read (see `low_s`).
        super::low_s::install();
        let (signing, verifying) = if settings.algorithm.is_asymmetric() {
            key_pairs(settings)?
        } else {
            let (signing, current) = keys::secret(settings.signing_secret());
            let previous = settings
                .previous_secrets
                .iter()
                .map(|s| keys::secret(s.expose_secret()).1);
            (signing, std::iter::once(current).chain(previous).collect())
        };
        let jwks = JwkSet {
            keys: verifying.iter().filter_map(|k| k.jwk.clone()).collect(),
        };
        let verifying = verifying
            .into_iter()
            .map(|key| {
                let validation = validation(settings, key.algorithm);
                (key.kid.clone(), (key, validation))
            })
            .collect();
        let keys = Keys {
            signing,
            verifying,
            jwks,
            verified: VerifiedTokens::default(),
            leeway: settings.leeway_seconds.min(i64::MAX as u64) as i64,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        };
        keys.check_round_trip()?;
        Ok(keys)
    }

    /// A key that parses may still not sign (or not verify what it signs):
    /// find out at start-up, not at the first login.
    fn check_round_trip(&self) -> Result<(), ConfigError> {
        let probe = self.access_claims(1, Role::User, Uuid::nil(), now(), 60, i64::MAX);
        let token = self
            .encode(&probe)
            .map_err(|e| ConfigError(format!("the jwt signing key cannot sign: {e}")))?;
        self.verify(&token).map(|_| ()).map_err(|e| {
            ConfigError(format!(
                "the jwt signing key cannot verify its own token: {e:?}"
            ))
        })
    }

    pub fn encode(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.signing.algorithm);
        header.kid = Some(self.signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing.key)
    }

    /// Verifies signature (key chosen by `kid`), algorithm, `exp`, `iss`,
    /// `aud`, the required claims, and that the token is of type `expected`.
    pub fn decode(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let claims = match self.verified.get(token) {
            Some(claims) if claims.exp.saturating_add(self.leeway) < now() => {
                return Err(TokenError::Expired)
            }
            Some(claims) => claims,
            None => {
                let claims = self.verify(token)?;
                self.verified.insert(token, &claims);
                claims
            }
        };
        if claims.token_type != expected {
            return Err(TokenError::Invalid(format!(
                "{:?} token where {expected:?} was expected",
                claims.token_type
            )));
        }
        Ok(claims)
    }

    /// Everything but the token type: header, signature and claims.
    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
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
        let (key, validation) = self
            .verifying
            .get(&kid)
            .ok_or_else(|| TokenError::Invalid(format!("unknown kid {kid}")))?;
        // Each key verifies its own algorithm only (RFC 8725 §3.1): no HS256
        // token checked against a public key's bytes, nor the other way round.
        if header.alg != key.algorithm {
            return Err(TokenError::Invalid(format!(
                "alg {:?} for a {:?} key",
                header.alg, key.algorithm
            )));
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid(e.to_string()),
                }
            })?;
        let claims = data.claims;
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

/// EdDSA / ES256: the private key and the previous public keys, each error
/// naming its setting without quoting the key.
fn key_pairs(settings: &JwtSettings) -> Result<(SigningKey, Vec<VerifyingKey>), ConfigError> {
    let algorithm = settings.algorithm.as_str();
    let pem = settings.private_key.as_ref().ok_or_else(|| {
        ConfigError(format!(
            "jwt.algorithm is {algorithm} but jwt.private_key is not set"
        ))
    })?;
    let (signing, current) = keys::private_key(settings.algorithm, pem.expose_secret()).map_err(|e| {
        ConfigError(format!(
            "jwt.private_key (APP__JWT__PRIVATE_KEY or APP__JWT__PRIVATE_KEY_FILE) {e}; jwt.algorithm is {algorithm}"
        ))
    })?;
    let mut verifying = vec![current];
    for (n, pem) in settings.previous_public_keys.iter().enumerate() {
        verifying.push(keys::public_key(settings.algorithm, pem).map_err(|e| {
            ConfigError(format!(
                "jwt.previous_public_keys entry {} (APP__JWT__PREVIOUS_PUBLIC_KEYS, comma-separated) {e}; jwt.algorithm is {algorithm}",
                n + 1
            ))
        })?);
    }
    Ok((signing, verifying))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// What every key checks besides its signature, for one algorithm.
fn validation(settings: &JwtSettings, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    validation.leeway = settings.leeway_seconds;
    validation.validate_exp = true;
    // Checked when present (RFC 7519 §4.1.5); we never issue one.
    validation.validate_nbf = true;
    validation
}

/// Tokens whose signature and claims were verified, by their exact text: a
/// client sends the same access token for its whole life, and an Ed25519 or
/// P-256 check costs more than the rest of a `/users/me`. Bounded; a token
/// that fails verification is never kept. Revocation is unaffected: the
/// session is still looked up on every request.
#[derive(Default)]
struct VerifiedTokens(Mutex<HashMap<String, Claims>>);

/// Enough for every client active within a token's life on one instance;
/// beyond it the cache only costs a verification per request.
const VERIFIED_TOKENS: usize = 4096;
/// Ours are under 600 bytes; a longer one is verified every time.
const LONGEST_CACHED_TOKEN: usize = 1024;

impl VerifiedTokens {
    fn get(&self, token: &str) -> Option<Claims> {
        self.0.lock().ok()?.get(token).cloned()
    }

    fn insert(&self, token: &str, claims: &Claims) {
        // A refresh token is used once: keeping it would only evict others.
        if token.len() > LONGEST_CACHED_TOKEN || claims.token_type != TokenType::Access {
            return;
        }
        let Ok(mut tokens) = self.0.lock() else {
            return;
        };
        if tokens.len() >= VERIFIED_TOKENS {
            let now = now();
            tokens.retain(|_, c| c.exp >= now);
            if tokens.len() >= VERIFIED_TOKENS {
                tokens.clear();
            }
        }
        tokens.insert(token.to_owned(), claims.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JwtAlgorithm;
    use secrecy::SecretString;
    use std::num::NonZeroU64;

    fn settings(secret: &str, previous: &[&str]) -> JwtSettings {
        JwtSettings {
            algorithm: JwtAlgorithm::HS256,
            private_key: None,
            private_key_file: None,
            previous_public_keys: vec![],
            secret: Some(SecretString::from(secret)),
            previous_secrets: previous.iter().map(|s| SecretString::from(*s)).collect(),
            access_ttl_seconds: NonZeroU64::new(900).unwrap(),
            refresh_ttl_seconds: NonZeroU64::new(3600).unwrap(),
            refresh_reuse_grace_seconds: 10,
            session_max_seconds: NonZeroU64::new(7200).unwrap(),
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
        let keys = Keys::new(&settings(A, &[])).unwrap();
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
        assert_eq!(keys::secret_key_id(A).len(), 16);
        assert_ne!(keys::secret_key_id(A), keys::secret_key_id(B));
        assert!(!A.contains(&keys::secret_key_id(A)));
    }

    #[test]
    fn previous_secrets_still_verify_after_a_rotation() {
        let old = Keys::new(&settings(A, &[])).unwrap();
        let token = old
            .encode(&old.access_claims(1, Role::Admin, Uuid::new_v4(), now(), 60, i64::MAX))
            .unwrap();
        let rotated = Keys::new(&settings(B, &[A])).unwrap();
        assert!(rotated.decode(&token, TokenType::Access).is_ok());
        let forgotten = Keys::new(&settings(B, &[])).unwrap();
        assert!(forgotten.decode(&token, TokenType::Access).is_err());
    }

    #[test]
    fn expiry_is_reported_as_such() {
        let keys = Keys::new(&settings(A, &[])).unwrap();
        let claims = keys.access_claims(1, Role::User, Uuid::new_v4(), now() - 100, 10, i64::MAX);
        assert_eq!(
            keys.decode(&keys.encode(&claims).unwrap(), TokenType::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn access_tokens_never_outlive_their_session() {
        let keys = Keys::new(&settings(A, &[])).unwrap();
        let t = now();
        assert_eq!(
            keys.access_claims(1, Role::User, Uuid::new_v4(), t, 900, t + 5)
                .exp,
            t + 5
        );
    }

    #[test]
    fn a_verified_access_token_is_remembered_until_it_expires_and_a_refused_one_never() {
        let keys = Keys::new(&settings(A, &[])).unwrap();
        let claims = keys.access_claims(3, Role::User, Uuid::new_v4(), now(), 60, i64::MAX);
        let token = keys.encode(&claims).unwrap();
        assert_eq!(keys.decode(&token, TokenType::Access).unwrap(), claims);
        assert_eq!(keys.verified.get(&token), Some(claims.clone()));
        // Remembered or not, the type is still checked.
        assert!(keys.decode(&token, TokenType::Refresh).is_err());

        // A remembered token past its exp is expired, without a second verification.
        let mut stale = claims.clone();
        stale.exp = now() - 1;
        keys.verified.insert("remembered.but.expired", &stale);
        assert_eq!(
            keys.decode("remembered.but.expired", TokenType::Access),
            Err(TokenError::Expired)
        );

        // Refused tokens and refresh tokens are not kept.
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(keys.decode(&forged, TokenType::Access).is_err());
        assert_eq!(keys.verified.get(&forged), None);
        let refresh = keys.refresh_claims(3, Uuid::new_v4(), Uuid::new_v4(), now(), now() + 60);
        let refresh = keys.encode(&refresh).unwrap();
        assert!(keys.decode(&refresh, TokenType::Refresh).is_ok());
        assert_eq!(keys.verified.get(&refresh), None);
    }

    #[test]
    fn the_verified_tokens_never_exceed_their_bound() {
        let tokens = VerifiedTokens::default();
        let keys = Keys::new(&settings(A, &[])).unwrap();
        let claims = keys.access_claims(3, Role::User, Uuid::new_v4(), now(), 60, i64::MAX);
        for n in 0..VERIFIED_TOKENS + 10 {
            tokens.insert(&format!("token-{n}"), &claims);
            assert!(tokens.0.lock().unwrap().len() <= VERIFIED_TOKENS);
        }
        tokens.insert(&"x".repeat(LONGEST_CACHED_TOKEN + 1), &claims);
        assert_eq!(tokens.get(&"x".repeat(LONGEST_CACHED_TOKEN + 1)), None);
    }

    #[test]
    fn an_eddsa_token_is_refused_by_an_hs256_service_and_the_other_way_round() {
        let key = keys::generate(JwtAlgorithm::EdDSA).unwrap();
        let mut ed = settings(A, &[]);
        ed.algorithm = JwtAlgorithm::EdDSA;
        ed.private_key = Some(SecretString::from(key.private));
        let ed = Keys::new(&ed).unwrap();
        let hs = Keys::new(&settings(A, &[])).unwrap();
        let claims = hs.access_claims(1, Role::User, Uuid::new_v4(), now(), 60, i64::MAX);
        let (ed_token, hs_token) = (ed.encode(&claims).unwrap(), hs.encode(&claims).unwrap());
        assert!(ed.decode(&ed_token, TokenType::Access).is_ok());
        assert!(hs.decode(&ed_token, TokenType::Access).is_err());
        assert!(ed.decode(&hs_token, TokenType::Access).is_err());
        assert_eq!(ed.jwks.keys.len(), 1);
        assert!(hs.jwks.keys.is_empty());
    }
}

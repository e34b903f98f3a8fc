//! Signing keys: the HS256 secret, or an Ed25519 / P-256 key pair read from
//! PEM. Each key is named by a `kid` and pinned to one algorithm; public
//! halves are published as JWKs; `generate` makes new pairs for the CLI.
//!
//! jsonwebtoken signs and verifies. The key types' own crates parse the PEM,
//! prove that it is the key the algorithm needs and derive its public half.
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::config::JwtAlgorithm;

/// The key new tokens are signed with.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub key: EncodingKey,
}

/// A key tokens are verified with; `jwk` is its public half (none for HS256).
pub struct VerifyingKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
    pub jwk: Option<Jwk>,
}

pub fn algorithm(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
        JwtAlgorithm::ES256 => Algorithm::ES256,
    }
}

/// A short fingerprint naming a secret in the `kid` header; it cannot be
/// turned back into the secret.
pub fn secret_key_id(secret: &str) -> String {
    let digest = Sha256::digest([b"taskgate-kid:".as_slice(), secret.as_bytes()].concat());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// An HS256 secret as a signing key and as the key that verifies it.
pub fn secret(secret: &str) -> (SigningKey, VerifyingKey) {
    // Whichever use of jsonwebtoken comes first fixes its provider for the process.
    super::low_s::install();
    let kid = secret_key_id(secret);
    (
        SigningKey {
            kid: kid.clone(),
            algorithm: Algorithm::HS256,
            key: EncodingKey::from_secret(secret.as_bytes()),
        },
        VerifyingKey {
            kid,
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret.as_bytes()),
            jwk: None,
        },
    )
}

/// A PKCS#8 private key for `algorithm`, and the key that verifies it.
/// The error says what is wrong without quoting the key.
pub fn private_key(
    algorithm: JwtAlgorithm,
    pem: &str,
) -> Result<(SigningKey, VerifyingKey), String> {
    // Whichever use of jsonwebtoken comes first fixes its provider for the process.
    super::low_s::install();
    let pem = pem_block(pem, "PRIVATE KEY")?;
    let refused = |e: &dyn std::fmt::Display| {
        format!(
            "is not a PKCS#8 PEM {} private key ({e})",
            curve_name(algorithm)
        )
    };
    let (der, public) = match algorithm {
        JwtAlgorithm::EdDSA => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|e| refused(&e))?;
            let der = key.to_pkcs8_der().map_err(|e| refused(&e))?;
            (der, key.verifying_key().to_bytes().to_vec())
        }
        JwtAlgorithm::ES256 => {
            let key = p256::SecretKey::from_pkcs8_pem(&pem).map_err(|e| refused(&e))?;
            let der = key.to_pkcs8_der().map_err(|e| refused(&e))?;
            let point = key.public_key().to_encoded_point(false);
            (der, point.as_bytes().to_vec())
        }
        JwtAlgorithm::HS256 => return Err("HS256 signs with jwt.secret, not a key pair".into()),
    };
    let verifying = public_from_bytes(algorithm, &public)?;
    let key = match algorithm {
        JwtAlgorithm::EdDSA => EncodingKey::from_ed_der(der.as_bytes()),
        _ => EncodingKey::from_ec_der(der.as_bytes()),
    };
    Ok((
        SigningKey {
            kid: verifying.kid.clone(),
            algorithm: verifying.algorithm,
            key,
        },
        verifying,
    ))
}

/// A public key (SubjectPublicKeyInfo PEM) for `algorithm`.
pub fn public_key(algorithm: JwtAlgorithm, pem: &str) -> Result<VerifyingKey, String> {
    // Whichever use of jsonwebtoken comes first fixes its provider for the process.
    super::low_s::install();
    let pem = pem_block(pem, "PUBLIC KEY")?;
    let refused = |e: &dyn std::fmt::Display| {
        format!("is not a PEM {} public key ({e})", curve_name(algorithm))
    };
    let public = match algorithm {
        JwtAlgorithm::EdDSA => ed25519_dalek::VerifyingKey::from_public_key_pem(&pem)
            .map_err(|e| refused(&e))?
            .to_bytes()
            .to_vec(),
        JwtAlgorithm::ES256 => p256::PublicKey::from_public_key_pem(&pem)
            .map_err(|e| refused(&e))?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        JwtAlgorithm::HS256 => return Err("HS256 has no public keys".into()),
    };
    public_from_bytes(algorithm, &public)
}

/// Ed25519: the 32-byte key; P-256: the uncompressed SEC1 point. The `kid`
/// is the key's RFC 7638 thumbprint, so anyone can recompute it.
fn public_from_bytes(algorithm: JwtAlgorithm, public: &[u8]) -> Result<VerifyingKey, String> {
    let alg = self::algorithm(algorithm);
    let key = match algorithm {
        JwtAlgorithm::EdDSA => DecodingKey::from_ed_der(public),
        _ => DecodingKey::from_ec_der(public),
    };
    let mut jwk =
        Jwk::from_decoding_key(&key, Some(alg)).map_err(|e| format!("has no JWK form ({e})"))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("has no JWK thumbprint ({e})"))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(VerifyingKey {
        kid,
        algorithm: alg,
        key,
        jwk: Some(jwk),
    })
}

fn curve_name(algorithm: JwtAlgorithm) -> &'static str {
    match algorithm {
        JwtAlgorithm::EdDSA => "Ed25519",
        JwtAlgorithm::ES256 => "P-256",
        JwtAlgorithm::HS256 => "HS256",
    }
}

/// The `-----BEGIN <label>-----` block of `value`: environment files often
/// carry a PEM on one line with `\n` escapes, and `keys generate` prints the
/// key among other lines.
fn pem_block(value: &str, label: &str) -> Result<String, String> {
    let value = value.replace("\\n", "\n");
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    match (value.find(&begin), value.find(&end)) {
        (Some(from), Some(to)) if from < to => Ok(format!("{}\n", &value[from..to + end.len()])),
        _ => Err(format!("is not a PEM block from {begin} to {end}")),
    }
}

/// A new key for `taskgate keys generate`.
pub struct GeneratedKey {
    /// PKCS#8 PEM, or for HS256 a random secret.
    pub private: String,
    /// SubjectPublicKeyInfo PEM; none for HS256.
    pub public: Option<String>,
    pub kid: String,
}

pub fn generate(algorithm: JwtAlgorithm) -> Result<GeneratedKey, String> {
    // Whichever use of jsonwebtoken comes first fixes its provider for the process.
    super::low_s::install();
    let failed = |e: &dyn std::fmt::Display| format!("cannot encode the new key: {e}");
    let (private, public) = match algorithm {
        JwtAlgorithm::EdDSA => {
            let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
            // PKCS#8 v1, the secret alone (what `openssl genpkey` writes): the
            // v2 form with the public key inside is refused by OpenSSL 3.0 and
            // Python's cryptography.
            let v1 = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            };
            (
                v1.to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| failed(&e))?
                    .to_string(),
                key.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| failed(&e))?,
            )
        }
        JwtAlgorithm::ES256 => {
            let key = p256::SecretKey::random(&mut OsRng);
            (
                key.to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| failed(&e))?
                    .to_string(),
                key.public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| failed(&e))?,
            )
        }
        JwtAlgorithm::HS256 => {
            let mut bytes = [0u8; 48];
            OsRng.fill_bytes(&mut bytes);
            let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let kid = secret_key_id(&secret);
            return Ok(GeneratedKey {
                private: secret,
                public: None,
                kid,
            });
        }
    };
    let kid = public_key(algorithm, &public)?.kid;
    Ok(GeneratedKey {
        private,
        public: Some(public),
        kid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kid_of_an_ed25519_key_is_its_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.2 (the public key) and A.3 (its thumbprint).
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(x)
            .unwrap();
        let key = public_from_bytes(JwtAlgorithm::EdDSA, &bytes).unwrap();
        assert_eq!(key.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn a_generated_pair_loads_back_with_the_same_kid() {
        for algorithm in [JwtAlgorithm::EdDSA, JwtAlgorithm::ES256] {
            let new = generate(algorithm).unwrap();
            let (signing, verifying) = private_key(algorithm, &new.private).unwrap();
            assert_eq!(signing.kid, new.kid);
            assert_eq!(verifying.kid, new.kid);
            let public = public_key(algorithm, new.public.as_deref().unwrap()).unwrap();
            assert_eq!(public.kid, new.kid);
            assert_eq!(public.jwk, verifying.jwk);
        }
    }

    /// DER of a PEM block (the lines between the armour).
    fn der_of(pem: &str) -> Vec<u8> {
        use base64::Engine;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    #[test]
    fn a_generated_ed25519_key_is_pkcs8_v1_and_v2_keys_still_load() {
        let new = generate(JwtAlgorithm::EdDSA).unwrap();
        let der = der_of(&new.private);
        // SEQUENCE { INTEGER 0 (v1), AlgorithmIdentifier, OCTET STRING }: 48 bytes, no public key.
        assert_eq!(der.len(), 48, "{der:02x?}");
        assert_eq!(&der[2..5], &[0x02, 0x01, 0x00], "version v1");
        // The v2 form (with the public key), as earlier versions printed, still loads.
        let (signing, _) = private_key(JwtAlgorithm::EdDSA, &new.private).unwrap();
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&new.private).unwrap();
        let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        assert_eq!(der_of(&v2)[4], 0x01, "the crate writes v2");
        assert_eq!(
            private_key(JwtAlgorithm::EdDSA, &v2).unwrap().0.kid,
            signing.kid
        );
    }

    #[test]
    fn a_key_of_another_algorithm_or_no_key_at_all_is_refused() {
        let ed = generate(JwtAlgorithm::EdDSA).unwrap();
        let ec = generate(JwtAlgorithm::ES256).unwrap();
        assert!(private_key(JwtAlgorithm::ES256, &ed.private).is_err());
        assert!(private_key(JwtAlgorithm::EdDSA, &ec.private).is_err());
        assert!(public_key(JwtAlgorithm::EdDSA, ec.public.as_deref().unwrap()).is_err());
        assert!(private_key(JwtAlgorithm::EdDSA, "not a key").is_err());
        // A public key where the private one belongs.
        assert!(private_key(JwtAlgorithm::EdDSA, ed.public.as_deref().unwrap()).is_err());
    }

    #[test]
    fn the_error_never_quotes_the_key() {
        let ed = generate(JwtAlgorithm::EdDSA).unwrap();
        let body = ed.private.lines().nth(1).unwrap();
        // The DER's first byte is no longer a SEQUENCE tag.
        let broken = ed.private.replacen(body, &format!("N{}", &body[1..]), 1);
        let err = private_key(JwtAlgorithm::EdDSA, &broken).err().unwrap();
        assert!(!err.contains(&body[8..24]), "{err}");
    }

    #[test]
    fn a_pem_with_escaped_newlines_or_around_other_lines_loads() {
        let new = generate(JwtAlgorithm::EdDSA).unwrap();
        let escaped = new.private.trim().replace('\n', "\\n");
        assert_eq!(
            private_key(JwtAlgorithm::EdDSA, &escaped).unwrap().0.kid,
            new.kid
        );
        let printed = format!(
            "kid: {}\n\n{}\n{}",
            new.kid,
            new.private,
            new.public.unwrap()
        );
        assert_eq!(
            private_key(JwtAlgorithm::EdDSA, &printed).unwrap().0.kid,
            new.kid
        );
    }
}

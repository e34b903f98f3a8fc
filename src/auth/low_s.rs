//! jsonwebtoken's RustCrypto provider, with ES256 signatures in one form
//! only. An ECDSA signature (r, s) verifies as (r, n − s) too, so a token
//! could be re-signed into a second, different string without the key
//! (malleability). The signer here writes the low-s form (as Bitcoin and
//! Ethereum require) and the verifier refuses the high one; every other
//! algorithm is the default provider's, untouched.
use std::sync::OnceLock;

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier};
use jsonwebtoken::signature::{Error, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::ecdsa::Signature;

static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();

/// Makes this provider jsonwebtoken's for the process (at most once; later
/// calls, as from a second instance in one test process, change nothing).
pub fn install() {
    let provider = PROVIDER.get_or_init(|| CryptoProvider {
        signer_factory: signer,
        verifier_factory: verifier,
        ..DEFAULT_PROVIDER.clone()
    });
    // Refused only when a provider is installed already: ours, by an earlier call.
    let _ = provider.install_default();
}

fn signer(
    algorithm: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    let inner = (DEFAULT_PROVIDER.signer_factory)(algorithm, key)?;
    Ok(match algorithm {
        Algorithm::ES256 => Box::new(LowS(inner)),
        _ => inner,
    })
}

fn verifier(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    let inner = (DEFAULT_PROVIDER.verifier_factory)(algorithm, key)?;
    Ok(match algorithm {
        Algorithm::ES256 => Box::new(OnlyLowS(inner)),
        _ => inner,
    })
}

struct LowS(Box<dyn JwtSigner>);

impl Signer<Vec<u8>> for LowS {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let signed = Signature::from_slice(&self.0.try_sign(message)?)?;
        Ok(signed.normalize_s().unwrap_or(signed).to_vec())
    }
}

impl JwtSigner for LowS {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

struct OnlyLowS(Box<dyn JwtVerifier>);

impl Verifier<Vec<u8>> for OnlyLowS {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), Error> {
        // `normalize_s` gives a signature only when `s` was the high one.
        if Signature::from_slice(signature)?.normalize_s().is_some() {
            return Err(Error::new());
        }
        self.0.verify(message, signature)
    }
}

impl JwtVerifier for OnlyLowS {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

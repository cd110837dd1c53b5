//! Verification of JSON Web Tokens from trusted issuers, on `ring`.
//!
//! Only three algorithms exist here, each bound to one key type: `RS256`
//! (an RSA key of 2048 to 8192 bits), `ES256` (a P-256 key) and `EdDSA` (an
//! Ed25519 key). A token's `alg` must be one its issuer is configured for
//! and the key's own type (and `alg`, if the key set names one) must agree,
//! so `none`, `HS256` signed with a public key and key-confusion tricks
//! never reach a verifier.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};
pub use tenantry_api::identity::Alg;

/// The longest token accepted (bytes).
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: i64 = 60;

/// Why a token was refused (logged at debug; callers see 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    Algorithm,
    UnknownKey,
    Signature,
    Expired,
    NotYetValid,
    Audience,
    Issuer,
    Subject,
}

/// A public key from a key set.
#[derive(Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    pub alg: Alg,
    material: Material,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed SEC1 point `04 || x || y`.
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
}

fn b64(value: Option<&Value>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(value?.as_str()?.trim_end_matches('='))
        .ok()
}

impl Jwk {
    /// One key of a key set; `None` for keys this server cannot use (other
    /// types or curves, encryption keys, an `alg` that disagrees with the
    /// key type), which are skipped rather than failing the whole set.
    pub fn parse(key: &Value) -> Option<Jwk> {
        let text = |name: &str| key.get(name).and_then(Value::as_str);
        if text("use").is_some_and(|u| u != "sig") {
            return None;
        }
        let (alg, material) = match (text("kty")?, text("crv")) {
            ("RSA", _) => {
                let n = b64(key.get("n"))?;
                let e = b64(key.get("e"))?;
                (Alg::RS256, Material::Rsa { n, e })
            }
            ("EC", Some("P-256")) => {
                let x = b64(key.get("x"))?;
                let y = b64(key.get("y"))?;
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (Alg::ES256, Material::P256(point))
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64(key.get("x"))?;
                if x.len() != 32 {
                    return None;
                }
                (Alg::EdDSA, Material::Ed25519(x))
            }
            _ => return None,
        };
        if let Some(named) = text("alg")
            && Alg::parse(named) != Some(alg)
        {
            return None;
        }
        Some(Jwk {
            kid: text("kid").map(str::to_owned),
            alg,
            material,
        })
    }

    /// The usable keys of a JSON Web Key Set document.
    pub fn parse_set(set: &Value) -> Option<Vec<Jwk>> {
        let keys = set.get("keys")?.as_array()?;
        Some(keys.iter().filter_map(Jwk::parse).collect())
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature;
        match &self.material {
            Material::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            Material::P256(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            Material::Ed25519(x) => signature::UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A token split and decoded, its signature not yet checked.
pub struct Unverified<'a> {
    alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> Unverified<'a> {
    pub fn parse(token: &'a str) -> Result<Unverified<'a>, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JwtError::Malformed)
        };
        let header: Header =
            serde_json::from_slice(&decode(header)?).map_err(|_| JwtError::Malformed)?;
        // Extensions that must be understood: none are.
        if header.crit.is_some() {
            return Err(JwtError::Malformed);
        }
        let claims: Map<String, Value> =
            serde_json::from_slice(&decode(payload)?).map_err(|_| JwtError::Malformed)?;
        let signing_input = token
            .get(..token.len() - signature.len() - 1)
            .ok_or(JwtError::Malformed)?;
        Ok(Unverified {
            alg: header.alg,
            kid: header.kid,
            claims,
            signing_input,
            signature: decode(signature)?,
        })
    }

    /// The `iss` claim, unverified: which issuer's keys to try.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// The algorithm, if it is one of `allowed`.
    pub fn alg(&self, allowed: &[Alg]) -> Result<Alg, JwtError> {
        Alg::parse(&self.alg)
            .filter(|alg| allowed.contains(alg))
            .ok_or(JwtError::Algorithm)
    }

    /// The key among `keys` this token names (by `kid`; without one, the
    /// only key of its algorithm), if any.
    pub fn pick<'k>(&self, alg: Alg, keys: &'k [Jwk]) -> Option<&'k Jwk> {
        let mut candidates = keys.iter().filter(|k| k.alg == alg);
        match &self.kid {
            Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let first = candidates.next()?;
                candidates.next().is_none().then_some(first)
            }
        }
    }

    /// Checks the signature with `key`, then the registered claims: `iss`
    /// is `issuer`, `aud` names one of `audiences`, `exp` (required) and
    /// `nbf` (if present) hold at `now` within [`LEEWAY_SECONDS`].
    pub fn verify(
        self,
        key: &Jwk,
        issuer: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<Map<String, Value>, JwtError> {
        if !key.verify(self.signing_input.as_bytes(), &self.signature) {
            return Err(JwtError::Signature);
        }
        let claims = self.claims;
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(JwtError::Issuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => audiences.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| audiences.iter().any(|a| a == aud)),
            _ => false,
        };
        if !audience_ok {
            return Err(JwtError::Audience);
        }
        let exp = numeric(claims.get("exp")).ok_or(JwtError::Malformed)?;
        if exp.saturating_add(LEEWAY_SECONDS) <= now {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = numeric(Some(nbf)).ok_or(JwtError::Malformed)?;
            if nbf.saturating_sub(LEEWAY_SECONDS) > now {
                return Err(JwtError::NotYetValid);
            }
        }
        Ok(claims)
    }
}

/// A NumericDate (seconds, possibly fractional).
pub fn numeric(value: Option<&Value>) -> Option<i64> {
    let value = value?;
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// The value at a dotted path (`org.id`) of the claims.
pub fn claim<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<&'c Value> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_keys_are_skipped() {
        let set = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32]), "kid": "ed", "alg": "RS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32]), "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32]), "kid": "good"},
        ]});
        let keys = Jwk::parse_set(&set).unwrap_or_default();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.first().and_then(|k| k.kid.as_deref()), Some("good"));
    }

    #[test]
    fn none_and_hmac_are_never_an_algorithm() {
        for alg in ["none", "HS256", "RS384", "PS256"] {
            assert_eq!(Alg::parse(alg), None);
        }
    }

    #[test]
    fn dotted_claims() {
        let claims: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"org": {"id": "acme"}, "t": "x"}))
                .unwrap_or_default();
        assert_eq!(claim(&claims, "org.id"), Some(&Value::from("acme")));
        assert_eq!(claim(&claims, "t"), Some(&Value::from("x")));
        assert_eq!(claim(&claims, "org.nope"), None);
    }
}

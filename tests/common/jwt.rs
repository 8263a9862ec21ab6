//! ES256 keys and JWTs for the test authorization server and the test IdP: a
//! P-256 key generated per run (never a key checked into the repository, so no
//! test can pass by a stale fixture), its public JWK, signing, and a
//! verification that reports each check instead of stopping at the first.
//!
//! jsonwebtoken (aws-lc-rs backend, as in the bridge) signs and verifies;
//! aws-lc-rs itself only generates the key, which jsonwebtoken cannot.

#![allow(dead_code)]

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

/// An EC P-256 key pair. `Debug` shows only its `kid`.
#[derive(Clone)]
pub struct EcKey {
    /// The key id put in JWT headers and the JWK.
    pub kid: String,
    /// PKCS#8 v1 DER.
    der: Vec<u8>,
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl EcKey {
    /// A fresh key.
    pub fn generate() -> EcKey {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key generation");
        let der = pair.to_pkcs8v1().expect("PKCS#8 encoding").as_ref().to_vec();
        let kid: [u8; 8] = rand::random();
        EcKey {
            kid: kid.iter().map(|b| format!("{b:02x}")).collect(),
            der,
        }
    }

    /// The private key as a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the
    /// form `oauth.private_key_file` takes. A secret: tests grep outputs for it.
    pub fn private_pem(&self) -> String {
        let b64 = base64_std(&self.der);
        let mut s = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(line).unwrap());
            s.push('\n');
        }
        s.push_str("-----END PRIVATE KEY-----\n");
        s
    }

    /// The base64 body of the PEM (what a leak would show of the key).
    pub fn private_b64(&self) -> String {
        base64_std(&self.der)
    }

    fn encoding(&self) -> EncodingKey {
        EncodingKey::from_ec_der(&self.der)
    }

    /// The public key as a JWK (`kty` EC, `crv` P-256, `x`, `y`, `kid`, `alg`, `use`).
    pub fn public_jwk(&self) -> Value {
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&self.encoding(), Algorithm::ES256).expect("EC public key");
        let mut v = serde_json::to_value(jwk).expect("JWK serializes");
        v["kid"] = json!(self.kid);
        v["use"] = json!("sig");
        v["alg"] = json!("ES256");
        v
    }

    /// The public key, for verification.
    pub fn decoding(&self) -> DecodingKey {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.public_jwk()).unwrap();
        DecodingKey::from_jwk(&jwk).expect("a JWK from our own key")
    }

    /// An ES256 JWT of `claims` with `typ` (and this key's `kid`).
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some(typ.to_owned());
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.encoding()).expect("ES256 signing")
    }
}

/// A JWT taken apart: its header and claims as sent, and whether the signature
/// verified against one of the keys given (ES256 only: `none` and HMAC never do).
#[derive(Clone, Debug)]
pub struct Parsed {
    pub header: Value,
    pub claims: Value,
    pub signature_ok: bool,
}

impl Parsed {
    /// A string claim.
    pub fn str(&self, k: &str) -> Option<&str> {
        self.claims.get(k).and_then(Value::as_str)
    }
    /// A numeric claim.
    pub fn int(&self, k: &str) -> Option<i64> {
        self.claims.get(k).and_then(Value::as_i64)
    }
    /// The header's `typ`.
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }
}

/// Parse `token` and check its signature against `keys`; `None` when it is not
/// a JWS at all.
pub fn parse(token: &str, keys: &[DecodingKey]) -> Option<Parsed> {
    let mut parts = token.split('.');
    let (h, c, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&base64url_decode(h)?).ok()?;
    let claims: Value = serde_json::from_slice(&base64url_decode(c)?).ok()?;
    let message = format!("{h}.{c}");
    let signature_ok = header.get("alg").and_then(Value::as_str) == Some("ES256")
        && keys
            .iter()
            .any(|k| jsonwebtoken::crypto::verify(sig, message.as_bytes(), k, Algorithm::ES256).unwrap_or(false));
    Some(Parsed {
        header,
        claims,
        signature_ok,
    })
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh random id (for `jti` and the like).
pub fn random_id() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding.
pub fn base64_std(data: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data)
}

/// base64url without padding, decoded (JWT segments).
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).ok()
}

//! RSA-2048 key pairs and RS256 JWTs: the simulator's own signing key (Pub/Sub push tokens,
//! published at `/google/oauth2/v1/certs` and `/v3/certs`) and service-account keys (whose
//! private half goes into the key file, whose public half checks the account's assertions).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// An RSA key pair as the state keeps it: the PKCS#8 PEM of the private key and the public
/// key's modulus and exponent (base64url, as a JWK carries them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RsaKey {
    /// Google's key ids are 40 hex digits.
    pub id: String,
    pub private_pem: String,
    pub modulus: String,
    pub exponent: String,
}

impl RsaKey {
    pub fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation");
        let pkcs8 = pair.as_der().expect("a generated key encodes as PKCS#8");
        let public = pair.public_key();
        Self {
            id: random_hex(40),
            private_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
            modulus: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            exponent: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }
    }

    /// The public key as PKCS#1 PEM (`RSA PUBLIC KEY`), which both of google-auth's RSA
    /// back ends (cryptography and python-rsa) load.
    pub fn public_pem(&self) -> String {
        let component = |text: &str| URL_SAFE_NO_PAD.decode(text).unwrap_or_default();
        let mut body = der_integer(&component(&self.modulus));
        body.extend(der_integer(&component(&self.exponent)));
        pem("RSA PUBLIC KEY", &der_sequence(body))
    }

    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kid": self.id, "n": self.modulus, "e": self.exponent,
            "alg": "RS256", "kty": "RSA", "use": "sig",
        })
    }

    /// Signs `claims` as an RS256 JWT whose header names this key.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.id.clone());
        header.typ = Some("JWT".to_owned());
        let key = EncodingKey::from_rsa_pem(self.private_pem.as_bytes())
            .expect("the state's own PEM parses");
        jsonwebtoken::encode(&header, claims, &key).expect("RS256 signing")
    }

    pub fn decoding_key(&self) -> Option<DecodingKey> {
        DecodingKey::from_rsa_components(&self.modulus, &self.exponent).ok()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn der_length(length: usize) -> Vec<u8> {
    if length < 0x80 {
        return vec![length as u8];
    }
    let bytes: Vec<u8> = length
        .to_be_bytes()
        .into_iter()
        .skip_while(|byte| *byte == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// A positive DER INTEGER from big-endian bytes (a leading zero keeps it positive).
fn der_integer(magnitude: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|byte| byte & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    let mut out = vec![0x02];
    out.extend(der_length(content.len()));
    out.extend(content);
    out
}

fn der_sequence(content: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0x30];
    out.extend(der_length(content.len()));
    out.extend(content);
    out
}

pub fn random_hex(length: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Random letters and digits, as in Google's space, message and operation ids.
pub fn random_id(length: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_with_the_published_components() {
        let key = RsaKey::generate();
        let token = key.sign(&serde_json::json!({"sub": "x", "exp": 4_000_000_000_u64}));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.id.as_str()));
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        let decoded: jsonwebtoken::TokenData<serde_json::Value> =
            jsonwebtoken::decode(&token, &key.decoding_key().unwrap(), &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "x");
        let public = DecodingKey::from_rsa_pem(key.public_pem().as_bytes()).unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &public, &validation).is_ok());
    }
}

//! Webex's webhook signatures: each webhook is created with a secret, and every delivery
//! carries `X-Spark-Signature`, the lower-case hex HMAC-SHA1 of the raw body keyed with that
//! secret. Verified over the exact bytes received, compared in constant time.
//!
//! - <https://developer.webex.com/docs/api/guides/webhooks#handling-requests-from-webex>
//! - <https://developer.webex.com/blog/using-a-webhook-secret>

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use switchboard_platform::PlatformError;
use switchboard_secrets::{ExposeSecret, SecretString};

pub(crate) const SIGNATURE_HEADER: &str = "x-spark-signature";

type HmacSha1 = Hmac<Sha1>;

fn mac(secret: &SecretString, body: &[u8]) -> HmacSha1 {
    let mut mac = HmacSha1::new_from_slice(secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac
}

/// The `X-Spark-Signature` Webex sends with `body` for a webhook with this secret.
pub fn sign(secret: &SecretString, body: &[u8]) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

/// Whether `signature` (the header's value) is `secret`'s over `body`.
pub(crate) fn verify(
    secret: &SecretString,
    body: &[u8],
    signature: &str,
) -> Result<(), PlatformError> {
    let signature = hex::decode(signature.trim().to_ascii_lowercase())
        .map_err(|_| PlatformError::BadWebhook("the signature is not hex".to_owned()))?;
    mac(secret, body).verify_slice(&signature).map_err(|_| {
        PlatformError::BadWebhook("the signature does not match the webhook's secret".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "somesupersecretphrase";
    const BODY: &str =
        r#"{"id":"wh1","resource":"messages","event":"created","data":{"id":"m1","roomId":"r1"}}"#;
    const SIGNATURE: &str = "31d81b4abde07607fb2d0eb5600620fbbfa126be";

    #[test]
    fn the_reference_vector_signs_and_verifies() {
        let secret = SecretString::from(SECRET);
        assert_eq!(sign(&secret, BODY.as_bytes()), SIGNATURE);
        assert!(verify(&secret, BODY.as_bytes(), SIGNATURE).is_ok());
        // Upper-case hex is the same signature.
        assert!(verify(&secret, BODY.as_bytes(), &SIGNATURE.to_uppercase()).is_ok());
    }

    #[test]
    fn the_sdk_wire_facts_vector_verifies() {
        let body = r#"{"id":"Y2lzY29zcGFyazovL3VzL1dFQkhPT0svdGVzdA","name":"switchboard","resource":"messages","event":"created","data":{"id":"Y2lzY29zcGFyazovL3VzL01FU1NBR0UvdGVzdA","roomId":"Y2lzY29zcGFyazovL3VzL1JPT00vdGVzdA","roomType":"direct","personId":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS90ZXN0","personEmail":"alice@example.com","created":"2024-01-01T00:00:00.000Z"}}"#;
        let secret = SecretString::from(SECRET);
        assert!(
            verify(
                &secret,
                body.as_bytes(),
                "b08175c05a7bc92b619077f28d1d2abf3956a10c"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_tampered_body_a_wrong_secret_or_a_bad_header_is_refused() {
        let secret = SecretString::from(SECRET);
        let tampered = BODY.replace("m1", "m2");
        assert!(matches!(
            verify(&secret, tampered.as_bytes(), SIGNATURE),
            Err(PlatformError::BadWebhook(_))
        ));
        let wrong = SecretString::from("anothersecret");
        assert!(verify(&wrong, BODY.as_bytes(), SIGNATURE).is_err());
        assert!(verify(&secret, BODY.as_bytes(), "not hex").is_err());
        assert!(verify(&secret, BODY.as_bytes(), &SIGNATURE[..38]).is_err());
        assert!(verify(&secret, BODY.as_bytes(), "").is_err());
    }
}

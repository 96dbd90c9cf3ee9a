//! Zoom's event signatures: `x-zm-signature: v0=` + hex HMAC-SHA256(the app's secret token,
//! `v0:{x-zm-request-timestamp}:{body}`), computed here over the raw bytes received (Zoom's
//! docs sign the body as sent; re-serialising it could change what is verified), and the URL
//! validation's answer, hex HMAC-SHA256(secret token, `plainToken`).
//!
//! - <https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events>
//! - <https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint>

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use switchboard_platform::PlatformError;
use switchboard_secrets::{ExposeSecret, SecretString};

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &SecretString, parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac
}

fn signed_parts<'a>(timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 4] {
    [b"v0:", timestamp.as_bytes(), b":", body]
}

/// `x-zm-signature` of `body` sent at `timestamp` (the `x-zm-request-timestamp` header, in
/// seconds), as Zoom signs it: what a test needs to forge a delivery.
pub fn sign(secret: &SecretString, timestamp: &str, body: &[u8]) -> String {
    let digest = mac(secret, &signed_parts(timestamp, body)).finalize();
    format!("v0={}", hex::encode(digest.into_bytes()))
}

/// Checks `signature` (`v0=` and hex) in constant time.
pub(crate) fn verify(
    secret: &SecretString,
    timestamp: &str,
    body: &[u8],
    signature: &str,
) -> Result<(), PlatformError> {
    let hex_part = signature.trim().strip_prefix("v0=").ok_or_else(|| {
        PlatformError::BadWebhook("the signature is not of Zoom's v0 form".to_owned())
    })?;
    let expected = hex::decode(hex_part.to_ascii_lowercase())
        .map_err(|_| PlatformError::BadWebhook("the signature is not hex".to_owned()))?;
    mac(secret, &signed_parts(timestamp, body))
        .verify_slice(&expected)
        .map_err(|_| {
            PlatformError::BadWebhook(
                "the signature does not match the app's secret token".to_owned(),
            )
        })
}

/// The `encryptedToken` that answers the URL validation of `plain_token`.
pub fn encrypted_token(secret: &SecretString, plain_token: &str) -> String {
    hex::encode(
        mac(secret, &[plain_token.as_bytes()])
            .finalize()
            .into_bytes(),
    )
}

/// The whole answer to the URL validation of `plain_token`: `{"plainToken", "encryptedToken"}`.
pub fn challenge_answer(secret: &SecretString, plain_token: &str) -> String {
    serde_json::json!({
        "plainToken": plain_token,
        "encryptedToken": encrypted_token(secret, plain_token),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // sdk-wire-facts §5: Rivet 0.4.0's own receiver accepted this delivery.
    const SECRET: &str = "zoom-secret-token";
    const TIMESTAMP: &str = "1700000000";
    const BODY: &str = r#"{"event":"team_chat.dm_message_posted","event_ts":1700000000000,"payload":{"account_id":"ACC","operator":"alice@example.com","operator_id":"U1","operator_member_id":"M1","by_external_user":false,"object":{"message_id":"MSG-1","session_id":"S1","date_time":"2023-11-14T22:13:20Z","timestamp":1700000000000,"contact_email":"bob@example.com","contact_id":"U2","contact_account_id":"ACC","contact_member_id":"M2","message":"hello"}}}"#;
    const SIGNATURE: &str = "v0=b63fce2ec2d9943b299465ec153c3b61fadb89c996990f0aba6fa813b8fe2080";

    #[test]
    fn the_sdk_wire_facts_event_vector_signs_and_verifies() {
        let secret = SecretString::from(SECRET);
        assert_eq!(sign(&secret, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
        assert!(verify(&secret, TIMESTAMP, BODY.as_bytes(), SIGNATURE).is_ok());
        assert!(
            verify(
                &secret,
                TIMESTAMP,
                BODY.as_bytes(),
                &SIGNATURE.to_uppercase().replace("V0=", "v0=")
            )
            .is_ok()
        );
    }

    #[test]
    fn the_platform_apis_vector_signs() {
        let body = r#"{"event":"chat_message.sent","payload":{"account_id":"A1","object":{"message_id":"m1","message":"hi"}},"event_ts":1700000000000}"#;
        assert_eq!(
            sign(
                &SecretString::from("zoom_secret_123"),
                "1700000000",
                body.as_bytes()
            ),
            "v0=4e33807c72dbf37fbcbdcd42a0a607063ab450735d5d424f5329ac9876abc645"
        );
    }

    #[test]
    fn the_url_validation_vectors_are_answered() {
        // sdk-wire-facts §5 (Rivet's answer) and platform-apis §5 (elastic/beats' test).
        let answer: serde_json::Value = serde_json::from_str(&challenge_answer(
            &SecretString::from(SECRET),
            "qgg8vlvZRS6UYooatFL8Aw",
        ))
        .unwrap();
        assert_eq!(
            answer,
            serde_json::json!({
                "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
                "encryptedToken": "d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3",
            })
        );
        assert_eq!(
            encrypted_token(
                &SecretString::from("secretValueTest"),
                "qgg8vlvZRS6UYooatFL8Aw"
            ),
            "70c1f2e2e6ca2d39297490d1f9142c7d701415ea8e6151f6562a08fa657a40ff"
        );
    }

    #[test]
    fn a_tampered_body_a_wrong_secret_time_or_form_is_refused() {
        let secret = SecretString::from(SECRET);
        let refused = |secret: &SecretString, timestamp: &str, body: &str, signature: &str| {
            matches!(
                verify(secret, timestamp, body.as_bytes(), signature),
                Err(PlatformError::BadWebhook(_))
            )
        };
        assert!(refused(
            &secret,
            TIMESTAMP,
            &BODY.replace("hello", "hullo"),
            SIGNATURE
        ));
        assert!(refused(
            &SecretString::from("other"),
            TIMESTAMP,
            BODY,
            SIGNATURE
        ));
        assert!(refused(&secret, "1700000001", BODY, SIGNATURE));
        assert!(refused(
            &secret,
            TIMESTAMP,
            BODY,
            SIGNATURE.trim_start_matches("v0=")
        ));
        assert!(refused(&secret, TIMESTAMP, BODY, "v0=zz"));
        assert!(refused(&secret, TIMESTAMP, BODY, ""));
    }
}

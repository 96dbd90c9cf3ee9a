//! API tokens and prompt links' secrets: 32 random bytes shown once, and stored as their SHA-256. A plain hash is right
//! here (unlike for passwords) because the tokens are long random values, not guessable words.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every token starts so, which lets secret scanners recognise a leaked one.
const PREFIX: &str = "sbt_";
/// A prompt link's secret starts otherwise, so that one pasted where a token goes (or a token
/// pasted into a link) is recognised for what it is. Links sent before it was introduced start
/// with the token's prefix, and work still: both are looked up by their hash alone.
const PROMPT_LINK_PREFIX: &str = "sbp_";

/// A new token's secret text.
pub fn generate() -> String {
    secret(PREFIX)
}

/// A new prompt link's secret: the last part of its address.
pub fn generate_prompt_link() -> String {
    secret(PROMPT_LINK_PREFIX)
}

/// Whether `text` is a prompt link's secret (or the link itself).
pub fn is_prompt_link(text: &str) -> bool {
    text.rsplit('/')
        .next()
        .is_some_and(|last| last.starts_with(PROMPT_LINK_PREFIX))
}

fn secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token named `name` for `purpose` and audits it; answers its secret text, shown
/// only this once.
pub async fn issue(
    store: &switchboard_store::Store,
    name: &str,
    purpose: switchboard_store::TokenPurpose,
    actor: &str,
    source: &str,
) -> Result<String, switchboard_store::StoreError> {
    let token = generate();
    store.create_api_token(name, &hash(&token), purpose).await?;
    store
        .audit(actor, "token.create", name, purpose.as_str(), source)
        .await?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hash_stably() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43, "{a}");
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
    }

    #[test]
    fn prompt_links_are_told_apart_from_tokens() {
        let (link, token) = (generate_prompt_link(), generate());
        assert!(
            link.starts_with(PROMPT_LINK_PREFIX) && link.len() == token.len(),
            "{link}"
        );
        assert!(is_prompt_link(&link));
        assert!(is_prompt_link(&format!("https://hub.example/sync/{link}")));
        assert!(!is_prompt_link(&token));
    }
}

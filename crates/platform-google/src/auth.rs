//! Google's tokens, and who the module acts as with which:
//! - **delegated** tokens: the connection's service account signs a JWT bearer assertion
//!   (RFC 7523) naming a Workspace user as `sub`, and Google's token endpoint answers with a
//!   token acting as that user, within the scopes the admin's domain-wide delegation grants;
//! - the **app** token: the same assertion without `sub`, for the `chat.bot` scope: the hub's
//!   Chat app, which sends prompts;
//! - a person's **own grant**: a refresh token from the OAuth code flow, when an admin
//!   chose prompts over delegation.
//!
//! Tokens are cached per (service account, subject, scopes) until shortly before they expire.
//!
//! - Service accounts and the assertion: <https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests>
//! - Domain-wide delegation: <https://developers.google.com/workspace/chat/authenticate-authorize-chat-user#domain-wide-delegation>

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use switchboard_core::Clock;
use switchboard_platform::PlatformError;
use switchboard_secrets::SecretString;

use crate::client::{Client, TokenGrant};

const AUTH: &str = "https://www.googleapis.com/auth/";

/// What a person's account is acted as with (delegated, or their own grant): reading and
/// writing their chats, messages and reactions, and reading who is in a chat.
pub const USER_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/chat.spaces",
    "https://www.googleapis.com/auth/chat.messages",
    "https://www.googleapis.com/auth/chat.messages.reactions",
    "https://www.googleapis.com/auth/chat.memberships.readonly",
];

/// What the admin the hub acts as for the directory may do: list and look up users, and create
/// and delete the guest accounts that represent people without a Workspace account.
pub const DIRECTORY_SCOPES: &[&str] = &["https://www.googleapis.com/auth/admin.directory.user"];

/// What Directory Sync reads as the connection's admin: groups and their members, and the
/// Reports API's admin activities (its only push for group membership changes).
pub const DIRECTORY_SYNC_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.reports.audit.readonly",
];

/// The scopes connecting checks the domain-wide delegation grants: everything but Directory
/// Sync's, which only a connection whose groups Directory Sync follows needs.
pub const REQUIRED_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/chat.spaces",
    "https://www.googleapis.com/auth/chat.messages",
    "https://www.googleapis.com/auth/chat.messages.reactions",
    "https://www.googleapis.com/auth/chat.memberships.readonly",
    "https://www.googleapis.com/auth/admin.directory.user",
];

/// Every scope the Workspace admin's domain-wide delegation grants the service account's
/// client id (Admin console › Security › API controls › Domain-wide delegation): the required
/// ones and Directory Sync's.
pub const DELEGATION_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/chat.spaces",
    "https://www.googleapis.com/auth/chat.messages",
    "https://www.googleapis.com/auth/chat.messages.reactions",
    "https://www.googleapis.com/auth/chat.memberships.readonly",
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.reports.audit.readonly",
];

/// The hub's Chat app acting as itself (never delegated).
pub const APP_SCOPE: &str = "https://www.googleapis.com/auth/chat.bot";

/// How long before its expiry a cached token is replaced.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// A service account's JSON key, as the Cloud console downloads it.
#[derive(Deserialize)]
pub(crate) struct ServiceAccountKey {
    #[serde(rename = "type")]
    pub kind: String,
    pub client_email: String,
    pub client_id: Option<String>,
    pub private_key_id: String,
    private_key: String,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

/// Reads a key file, saying precisely what is wrong with one that is not a usable key.
pub(crate) fn parse_key(json: &str) -> Result<ServiceAccountKey, PlatformError> {
    let key: ServiceAccountKey = serde_json::from_str(json.trim()).map_err(|e| {
        PlatformError::Rejected(format!(
            "the service account key is not a Google JSON key file ({e}); download a JSON key from IAM › Service accounts › Keys"
        ))
    })?;
    if key.kind != "service_account" {
        return Err(PlatformError::Rejected(format!(
            "the key file is of type {:?}, not \"service_account\"",
            key.kind
        )));
    }
    if !key.token_uri.starts_with("https://") && !key.token_uri.starts_with("http://") {
        return Err(PlatformError::Rejected(format!(
            "the key file's token_uri {:?} is not a URL",
            key.token_uri
        )));
    }
    EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|e| {
        PlatformError::Rejected(format!(
            "the key file's private_key is not an RSA private key in PEM ({e})"
        ))
    })?;
    Ok(key)
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct AssertionClaims {
    pub iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub scope: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// The signed JWT a service account exchanges for a token acting as `subject` (or as itself).
pub(crate) fn assertion(
    key: &ServiceAccountKey,
    subject: Option<&str>,
    scopes: &[&str],
    issued_at: u64,
) -> Result<String, PlatformError> {
    let claims = AssertionClaims {
        iss: key.client_email.clone(),
        sub: subject.map(str::to_owned),
        scope: scopes.join(" "),
        aud: key.token_uri.clone(),
        iat: issued_at,
        exp: issued_at + 3600,
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.private_key_id.clone());
    let signing = EncodingKey::from_rsa_pem(key.private_key.as_bytes())
        .map_err(|e| PlatformError::Rejected(format!("unusable private key: {e}")))?;
    jsonwebtoken::encode(&header, &claims, &signing)
        .map_err(|e| PlatformError::Rejected(format!("cannot sign the assertion: {e}")))
}

/// The scope names without Google's URL prefix, for messages.
pub(crate) fn short(scope: &str) -> &str {
    scope.strip_prefix(AUTH).unwrap_or(scope)
}

struct CachedToken {
    token: String,
    valid_until: Instant,
}

/// Access tokens by who they act as, reused until shortly before they expire.
pub(crate) struct TokenCache {
    /// The time assertions are signed at: Google checks `iat` against its own clock.
    clock: Arc<dyn Clock>,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl TokenCache {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cached(&self, key: &str) -> Option<String> {
        let tokens = self.lock();
        let cached = tokens.get(key)?;
        (cached.valid_until > Instant::now()).then(|| cached.token.clone())
    }

    fn store(&self, key: String, grant: &TokenGrant) {
        let lifetime = Duration::from_secs(grant.expires_in.unwrap_or(3600));
        let valid_until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        self.lock().insert(
            key,
            CachedToken {
                token: grant.access_token.clone(),
                valid_until,
            },
        );
    }

    /// A token of `key`'s service account acting as `subject` (or as itself), for `scopes`.
    pub async fn service_account(
        &self,
        client: &Client,
        key: &ServiceAccountKey,
        subject: Option<&str>,
        scopes: &[&str],
    ) -> Result<String, PlatformError> {
        match self.cached(&service_account_cache_key(key, subject, scopes)) {
            Some(token) => Ok(token),
            None => self.mint(client, key, subject, scopes).await,
        }
    }

    /// A new token, whatever is cached: what proves that the delegation still stands (tokens
    /// issued before an admin withdrew it go on working until they expire).
    pub async fn mint(
        &self,
        client: &Client,
        key: &ServiceAccountKey,
        subject: Option<&str>,
        scopes: &[&str],
    ) -> Result<String, PlatformError> {
        let issued_at = u64::try_from(self.clock.now().unix_millis() / 1000).unwrap_or(0);
        let signed = assertion(key, subject, scopes, issued_at)?;
        let grant = client
            .token(
                &key.token_uri,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &signed),
                ],
            )
            .await?;
        self.store(service_account_cache_key(key, subject, scopes), &grant);
        Ok(grant.access_token)
    }

    /// A token from a person's own refresh token.
    pub async fn refreshed(
        &self,
        client: &Client,
        token_url: &str,
        oauth_client: &(String, SecretString),
        refresh_token: &str,
    ) -> Result<String, PlatformError> {
        use sha2::Digest;
        use switchboard_secrets::ExposeSecret;
        // Keyed by a digest, so the cache holds no refresh token in the clear.
        let digest = sha2::Sha256::digest(refresh_token.as_bytes());
        let cache_key = format!("user\n{}", crate::hex(&digest));
        if let Some(token) = self.cached(&cache_key) {
            return Ok(token);
        }
        let grant = client
            .token(
                token_url,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                    ("client_id", &oauth_client.0),
                    ("client_secret", oauth_client.1.expose_secret()),
                ],
            )
            .await?;
        self.store(cache_key, &grant);
        Ok(grant.access_token)
    }
}

fn service_account_cache_key(
    key: &ServiceAccountKey,
    subject: Option<&str>,
    scopes: &[&str],
) -> String {
    format!(
        "sa\n{}\n{}\n{}",
        key.client_email,
        subject.unwrap_or_default(),
        scopes.join(" ")
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use base64::Engine;
    use jsonwebtoken::{DecodingKey, Validation};

    /// A freshly generated RSA key: its PKCS#8 PEM and its public key's DER.
    pub(crate) fn rsa_key() -> (String, Vec<u8>) {
        use aws_lc_rs::signature::KeyPair as _;
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        (pem, pair.public_key().as_ref().to_vec())
    }

    pub(crate) fn key_file(pem: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "kid-1",
            "private_key": pem,
            "client_email": "hub@p.iam.gserviceaccount.com",
            "client_id": "1234",
            "token_uri": "https://oauth2.googleapis.com/token"
        })
        .to_string()
    }

    #[test]
    fn the_assertion_names_the_user_acted_as_and_is_signed_by_the_key() {
        let (pem, public) = rsa_key();
        let key = parse_key(&key_file(&pem)).unwrap();
        let signed = assertion(&key, Some("ana@acme.example"), USER_SCOPES, 1_000).unwrap();
        let header = jsonwebtoken::decode_header(&signed).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("kid-1"));
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_audience(&["https://oauth2.googleapis.com/token"]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(
            &signed,
            &DecodingKey::from_rsa_der(&public),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(
            claims,
            AssertionClaims {
                iss: "hub@p.iam.gserviceaccount.com".to_owned(),
                sub: Some("ana@acme.example".to_owned()),
                scope: USER_SCOPES.join(" "),
                aud: "https://oauth2.googleapis.com/token".to_owned(),
                iat: 1_000,
                exp: 4_600,
            }
        );
        let app = assertion(&key, None, &[APP_SCOPE], 1_000).unwrap();
        let payload = app.split('.').nth(1).unwrap();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        assert!(!String::from_utf8(payload).unwrap().contains("\"sub\""));
    }

    #[test]
    fn malformed_keys_are_refused_with_what_is_wrong() {
        let refused = |json: &str| match parse_key(json) {
            Err(PlatformError::Rejected(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused("not json").contains("not a Google JSON key file"));
        let (pem, _) = rsa_key();
        let mut other = serde_json::from_str::<serde_json::Value>(&key_file(&pem)).unwrap();
        other["type"] = "authorized_user".into();
        assert!(refused(&other.to_string()).contains("authorized_user"));
        other["type"] = "service_account".into();
        other["private_key"] =
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into();
        assert!(refused(&other.to_string()).contains("private_key"));
        assert!(!format!("{:?}", parse_key(&key_file(&pem)).unwrap()).contains("PRIVATE"));
    }

    #[test]
    fn the_delegation_covers_every_scope_the_module_uses() {
        for scope in USER_SCOPES.iter().chain(DIRECTORY_SCOPES) {
            assert!(REQUIRED_SCOPES.contains(scope), "{scope}");
        }
        let both: Vec<&str> = REQUIRED_SCOPES
            .iter()
            .chain(DIRECTORY_SYNC_SCOPES)
            .copied()
            .collect();
        assert_eq!(both, DELEGATION_SCOPES);
        assert!(!DELEGATION_SCOPES.contains(&APP_SCOPE));
        assert_eq!(short(APP_SCOPE), "chat.bot");
    }
}

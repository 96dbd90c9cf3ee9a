//! The Google Chat platform's settings, from the hub's `[platforms.google_chat]` table: where
//! Google's APIs are (the defaults are Google's own URLs; the simulator supplies its own), the
//! audience of the Pub/Sub push tokens, and the optional web OAuth client for people who
//! authorise their own account through a prompt.

use serde::{Deserialize, Deserializer};
use switchboard_secrets::SecretString;

fn default_chat() -> String {
    "https://chat.googleapis.com".to_owned()
}
fn default_directory() -> String {
    "https://admin.googleapis.com/admin/directory/v1".to_owned()
}
fn default_reports() -> String {
    "https://admin.googleapis.com".to_owned()
}
fn default_events() -> String {
    "https://workspaceevents.googleapis.com".to_owned()
}
fn default_authorize() -> String {
    "https://accounts.google.com/o/oauth2/v2/auth".to_owned()
}
fn default_token() -> String {
    "https://oauth2.googleapis.com/token".to_owned()
}
fn default_certs() -> String {
    "https://www.googleapis.com/oauth2/v3/certs".to_owned()
}
fn default_timeout() -> u64 {
    10
}
/// The Directory's largest page: an import of 100,000 users is 200 calls, not 1,000.
fn default_page_size() -> u32 {
    500
}
fn optional_secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    Option::<String>::deserialize(deserializer).map(|value| value.map(SecretString::from))
}

/// How the hub reaches Google, from the hub's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleChatSettings {
    /// The Chat API; calls go to `{chat_base_url}/v1/…`.
    #[serde(default = "default_chat")]
    pub chat_base_url: String,
    /// The Admin SDK Directory API, version included.
    #[serde(default = "default_directory")]
    pub directory_base_url: String,
    /// The Admin SDK Reports API's root (Directory Sync's admin activities): calls go to
    /// `{reports_base_url}/admin/reports/v1/…`, and channels stop at
    /// `{reports_base_url}/admin/reports_v1/channels/stop`, as Google's discovery document says.
    #[serde(default = "default_reports")]
    pub reports_base_url: String,
    /// The Workspace Events API; calls go to `{events_base_url}/v1/…`.
    #[serde(default = "default_events")]
    pub events_base_url: String,
    /// Google's OAuth consent page, for people authorising their own account.
    #[serde(default = "default_authorize")]
    pub authorize_url: String,
    /// Google's token endpoint for the user OAuth code flow (service-account assertions go to
    /// the `token_uri` of the key itself, as Google's libraries do).
    #[serde(default = "default_token")]
    pub token_url: String,
    /// Google's signing keys (JWKS) for the OIDC tokens Pub/Sub push requests carry.
    #[serde(default = "default_certs")]
    pub certs_url: String,
    /// The audience the push subscription's OIDC tokens carry: normally the hub's
    /// `https://HUB/webhooks/google_chat`.
    pub push_audience: String,
    /// A web OAuth client, only for people who authorise their own account through a prompt.
    #[serde(default)]
    pub oauth_client_id: Option<String>,
    #[serde(default, deserialize_with = "optional_secret")]
    pub oauth_client_secret: Option<SecretString>,
    /// The domain of the guest accounts made for people whose own address is in the
    /// Workspace's domain (Google makes guests only of outside addresses): such a person's guest
    /// is their address's local part at this domain, which the hub's operator owns. Without it
    /// those people cannot be represented on Google Chat.
    #[serde(default)]
    pub guest_domain: Option<String>,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Directory and Chat page size (1–500; Chat itself caps its lists at 1,000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_secrets::ExposeSecret;

    #[test]
    fn settings_have_google_defaults_and_refuse_unknown_keys() {
        let settings: GoogleChatSettings =
            serde_json::from_value(json!({"push_audience": "https://hub/webhooks/google_chat"}))
                .unwrap();
        assert_eq!(settings.chat_base_url, "https://chat.googleapis.com");
        assert_eq!(
            settings.directory_base_url,
            "https://admin.googleapis.com/admin/directory/v1"
        );
        assert_eq!(
            settings.events_base_url,
            "https://workspaceevents.googleapis.com"
        );
        assert_eq!(settings.reports_base_url, "https://admin.googleapis.com");
        assert_eq!(settings.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(
            settings.certs_url,
            "https://www.googleapis.com/oauth2/v3/certs"
        );
        assert!(settings.oauth_client_id.is_none());
        assert!(
            serde_json::from_value::<GoogleChatSettings>(
                json!({"push_audience": "a", "colour": 1})
            )
            .is_err()
        );
        assert!(serde_json::from_value::<GoogleChatSettings>(json!({})).is_err());
    }

    #[test]
    fn the_oauth_client_secret_is_kept_secret() {
        let settings: GoogleChatSettings = serde_json::from_value(json!({
            "push_audience": "a", "oauth_client_id": "c", "oauth_client_secret": "hush"
        }))
        .unwrap();
        assert!(!format!("{settings:?}").contains("hush"));
        assert_eq!(
            settings.oauth_client_secret.unwrap().expose_secret(),
            "hush"
        );
    }
}

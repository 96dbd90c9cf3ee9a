//! The Webex platform's settings, from the hub's `[platforms.webex]` table: where Webex's API
//! is (the default is Webex's own; the simulator supplies its own), the hub's integration, and
//! the Service App that issues guest identities.

use serde::{Deserialize, Deserializer};
use switchboard_secrets::SecretString;

fn default_base() -> String {
    "https://webexapis.com/v1/".to_owned()
}
fn default_timeout() -> u64 {
    10
}
/// Webex's lists take `max` up to 1,000 for most resources (people: 1,000, memberships: 1,000).
fn default_page_size() -> u32 {
    1000
}
fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}
fn optional_secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    Option::<String>::deserialize(deserializer).map(|value| value.map(SecretString::from))
}

/// How the hub reaches Webex, from the hub's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebexSettings {
    /// The REST API, version included, with its trailing slash: calls go to
    /// `{base_url}people/me`, OAuth to `{base_url}authorize` and `{base_url}access_token`.
    #[serde(default = "default_base")]
    pub base_url: String,
    /// The hub's Webex integration (developer.webex.com › My Webex Apps), whose redirect URI
    /// is the hub's `/connect/callback`.
    pub client_id: String,
    #[serde(deserialize_with = "secret")]
    pub client_secret: SecretString,
    /// The hub's Service App, which an admin of each organisation authorises in Control Hub;
    /// without it people with no Webex account cannot be represented on Webex.
    #[serde(default)]
    pub service_app_client_id: Option<String>,
    #[serde(default, deserialize_with = "optional_secret")]
    pub service_app_client_secret: Option<SecretString>,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// The `max` of list calls (1–1000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_secrets::ExposeSecret;

    #[test]
    fn settings_have_webex_defaults_and_refuse_unknown_keys() {
        let settings: WebexSettings =
            serde_json::from_value(json!({"client_id": "c", "client_secret": "hush"})).unwrap();
        assert_eq!(settings.base_url, "https://webexapis.com/v1/");
        assert_eq!(settings.request_timeout_secs, 10);
        assert_eq!(settings.page_size, 1000);
        assert!(settings.service_app_client_id.is_none());
        assert!(!format!("{settings:?}").contains("hush"));
        assert_eq!(settings.client_secret.expose_secret(), "hush");
        assert!(
            serde_json::from_value::<WebexSettings>(
                json!({"client_id": "c", "client_secret": "s", "colour": 1})
            )
            .is_err()
        );
        assert!(serde_json::from_value::<WebexSettings>(json!({"client_id": "c"})).is_err());
    }
}

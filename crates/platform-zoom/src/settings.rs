//! The Zoom platform's settings, from the hub's `[platforms.zoom]` table: where Zoom's API and
//! OAuth are (Zoom's own by default; the simulator supplies its own), the account, and the
//! three Marketplace apps the account's admin creates for the hub (docs/platforms/zoom.md).

use serde::{Deserialize, Deserializer};
use switchboard_secrets::SecretString;

fn default_api_base() -> String {
    "https://api.zoom.us/v2".to_owned()
}
fn default_oauth_base() -> String {
    "https://zoom.us/oauth".to_owned()
}
fn default_timeout() -> u64 {
    10
}
/// Zoom's list of users takes `page_size` up to 300.
fn default_page_size() -> u32 {
    300
}
fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

/// How the hub reaches Zoom, from the hub's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoomSettings {
    /// The REST API, version included: calls go to `{api_base}/users`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Zoom OAuth: `{oauth_base}/authorize` and `{oauth_base}/token`.
    #[serde(default = "default_oauth_base")]
    pub oauth_base: String,
    /// The Zoom account the hub serves (the server-to-server app's page shows it).
    pub account_id: String,
    /// The Server-to-Server OAuth app: the directory and the account's Team Chat events.
    pub s2s_client_id: String,
    #[serde(deserialize_with = "secret")]
    pub s2s_client_secret: SecretString,
    /// The General app with user-managed OAuth: each person lets the hub write as them.
    pub user_client_id: String,
    #[serde(deserialize_with = "secret")]
    pub user_client_secret: SecretString,
    /// The Team Chat app (chatbot), which sends the hub's prompts.
    pub chatbot_client_id: String,
    #[serde(deserialize_with = "secret")]
    pub chatbot_client_secret: SecretString,
    /// The chatbot's JID (the Team Chat app's "Bot JID").
    pub robot_jid: String,
    /// The server-to-server app's event subscription's secret token, which signs its events.
    #[serde(deserialize_with = "secret")]
    pub webhook_secret_token: SecretString,
    /// The chatbot's secret token, which signs what is sent to the chatbot (and the URL
    /// validation when the chatbot's endpoint is the hub's webhook URL too).
    #[serde(deserialize_with = "secret")]
    pub chatbot_secret_token: SecretString,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// The `page_size` of an import's pages (1–300).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_secrets::ExposeSecret;

    fn table() -> serde_json::Value {
        json!({
            "account_id": "A1",
            "s2s_client_id": "s", "s2s_client_secret": "s-hush",
            "user_client_id": "u", "user_client_secret": "u-hush",
            "chatbot_client_id": "b", "chatbot_client_secret": "b-hush",
            "robot_jid": "bot@xmpp.zoom.us",
            "webhook_secret_token": "w-hush", "chatbot_secret_token": "c-hush",
        })
    }

    #[test]
    fn settings_have_zoom_defaults_hide_secrets_and_refuse_unknown_keys() {
        let settings: ZoomSettings = serde_json::from_value(table()).unwrap();
        assert_eq!(settings.api_base, "https://api.zoom.us/v2");
        assert_eq!(settings.oauth_base, "https://zoom.us/oauth");
        assert_eq!(settings.page_size, 300);
        assert_eq!(settings.request_timeout_secs, 10);
        assert_eq!(settings.webhook_secret_token.expose_secret(), "w-hush");
        assert!(!format!("{settings:?}").contains("hush"));
        let mut unknown = table();
        unknown["colour"] = json!(1);
        assert!(serde_json::from_value::<ZoomSettings>(unknown).is_err());
        let mut missing = table();
        missing.as_object_mut().unwrap().remove("robot_jid");
        assert!(serde_json::from_value::<ZoomSettings>(missing).is_err());
    }
}

//! The Teams platform's settings, from the hub's configuration: where Entra ID and Graph are,
//! the hub's app registration, and the interop directory guests come from.

use serde::{Deserialize, Deserializer};
use switchboard_secrets::SecretString;

fn default_login() -> String {
    "https://login.microsoftonline.com".to_owned()
}
fn default_graph() -> String {
    "https://graph.microsoft.com/v1.0".to_owned()
}
fn default_timeout() -> u64 {
    10
}
fn default_page_size() -> u32 {
    999
}
fn default_invite_redirect() -> String {
    "https://teams.microsoft.com".to_owned()
}
fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

/// How the hub reaches Microsoft, from the hub's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSettings {
    /// Entra ID (`https://login.microsoftonline.com`; the simulator: `http://HOST:PORT/login`).
    #[serde(default = "default_login")]
    pub login_base_url: String,
    /// Graph (`https://graph.microsoft.com/v1.0`; the simulator: `http://HOST:PORT/graph/v1.0`).
    #[serde(default = "default_graph")]
    pub graph_base_url: String,
    /// The hub's multi-tenant Entra app registration.
    pub client_id: String,
    #[serde(deserialize_with = "secret")]
    pub client_secret: SecretString,
    /// The directory guests come from; without it people with no Teams account cannot be
    /// represented on Teams.
    #[serde(default)]
    pub interop: Option<InteropSettings>,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Directory page size (`$top`, 1–999).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Where an invitation would send a guest who redeemed it by hand (Graph requires one).
    #[serde(default = "default_invite_redirect")]
    pub invite_redirect_url: String,
}

/// The interop directory: an Entra tenant the hub's operator owns, the hub app's home tenant,
/// where each person without a Teams account gets an identity that is then invited into the
/// customer's tenant as a B2B guest. The hub authenticates there with the same app
/// (client credentials), which needs the application permission `User.ReadWrite.All`
/// granted in that tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InteropSettings {
    /// The interop tenant's id (or a verified domain).
    pub tenant: String,
    /// The verified domain the identities' user principal names are created in.
    pub domain: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_have_microsoft_defaults_and_refuse_unknown_keys() {
        let settings: TeamsSettings =
            serde_json::from_value(json!({"client_id": "c", "client_secret": "s"})).unwrap();
        assert_eq!(settings.login_base_url, "https://login.microsoftonline.com");
        assert_eq!(settings.graph_base_url, "https://graph.microsoft.com/v1.0");
        assert_eq!(settings.request_timeout_secs, 10);
        assert!(!format!("{settings:?}").contains("\"s\""));
        assert!(
            serde_json::from_value::<TeamsSettings>(
                json!({"client_id": "c", "client_secret": "s", "colour": 1})
            )
            .is_err()
        );
    }
}

//! The Slack platform's settings, from the hub's configuration: where Slack is, the hub's own
//! app and the public URLs every bot app's manifest names; and their validation.

use serde::{Deserialize, Deserializer};
use switchboard_secrets::SecretString;

/// How the hub reaches Slack and who it is there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// `https://slack.com`; the simulator's is `http://HOST:PORT/slack`. The Web API is under
    /// `{api_base_url}/api/{method}`, OAuth consent at `{api_base_url}/oauth/v2/authorize`.
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    /// The hub's own Slack app.
    pub client_id: String,
    #[serde(deserialize_with = "secret")]
    pub client_secret: SecretString,
    #[serde(deserialize_with = "secret")]
    pub signing_secret: SecretString,
    /// The hub's public Events API Request URL, set in every bot app's manifest.
    pub events_url: String,
    /// The hub's public OAuth callback URL (the `callback_url` of its flows), set as the
    /// Redirect URL of every bot app's manifest.
    pub redirect_url: String,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Whether bots' apps are created at Slack's published pace (one a minute); off only for
    /// a server that sets no such limit, as the simulator with its rate limits off, where the
    /// pace would only slow the hub down.
    #[serde(default = "default_pace_apps")]
    pub pace_apps: bool,
}

fn default_pace_apps() -> bool {
    true
}

fn default_api_base_url() -> String {
    "https://slack.com".to_owned()
}

fn default_timeout() -> u64 {
    10
}

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

#[derive(Debug, thiserror::Error)]
pub enum SlackSetupError {
    #[error("invalid Slack setting {0}")]
    Setting(String),
    #[error("cannot build the Slack HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl SlackSettings {
    /// Refuses settings Slack could never work with: URLs that are not http(s), no client id,
    /// no time at all for a request.
    pub(crate) fn validate(&self) -> Result<(), SlackSetupError> {
        for (name, url) in [
            ("api_base_url", &self.api_base_url),
            ("events_url", &self.events_url),
            ("redirect_url", &self.redirect_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(SlackSetupError::Setting(format!(
                    "{name}: '{url}' is not an http(s) URL"
                )));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(SlackSetupError::Setting("client_id: it is empty".into()));
        }
        if self.request_timeout_secs == 0 {
            return Err(SlackSetupError::Setting(
                "request_timeout_secs: it must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};
    use switchboard_core::{Clock, Timestamp};

    use super::*;
    use crate::SlackPlatform;

    pub(crate) struct Epoch;

    impl Clock for Epoch {
        fn now(&self) -> Timestamp {
            Timestamp::from_unix_millis(0)
        }
    }

    pub(crate) fn settings(extra: Value) -> Result<SlackSettings, serde_json::Error> {
        let mut value = json!({
            "client_id": "1.2", "client_secret": "cs", "signing_secret": "ss",
            "events_url": "https://hub.example/slack/events",
            "redirect_url": "https://hub.example/oauth/callback",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            value[k] = v.clone();
        }
        serde_json::from_value(value)
    }

    #[test]
    fn settings_have_defaults_refuse_unknown_keys_and_never_print_secrets() {
        let read = settings(json!({})).unwrap();
        assert_eq!(read.api_base_url, "https://slack.com");
        assert_eq!(read.request_timeout_secs, 10);
        let printed = format!("{:?}", SlackPlatform::new(read, Arc::new(Epoch)).unwrap());
        assert!(
            !printed.contains("cs\"") && !printed.contains("\"ss"),
            "{printed}"
        );
        assert!(settings(json!({"verification_token": "x"})).is_err());
        let bad = settings(json!({"events_url": "hub.example/events"})).unwrap();
        assert!(matches!(
            SlackPlatform::new(bad, Arc::new(Epoch)),
            Err(SlackSetupError::Setting(_))
        ));
    }
}

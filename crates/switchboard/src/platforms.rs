//! The platform modules this build can run, configured from the `[platforms]` tables.

use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_core::Clock;
use switchboard_platform::{ChatPlatform, PlatformRegistry};
use switchboard_platform_google::{DELEGATION_SCOPES, GoogleChatPlatform, GoogleChatSettings};
use switchboard_platform_slack::{HUB_BOT_SCOPES, SlackPlatform, SlackSettings};
use switchboard_platform_teams::{TeamsPlatform, TeamsSettings};
use switchboard_platform_webex::{WebexPlatform, WebexSettings};
use switchboard_platform_zoom::{ZoomPlatform, ZoomSettings};

/// One line per platform module: a new platform adds its line here.
pub fn registry(config: &toml::Table, clock: Arc<dyn Clock>) -> anyhow::Result<PlatformRegistry> {
    let mut registry = PlatformRegistry::default();
    for (name, table) in config {
        let module: Arc<dyn ChatPlatform> = match name.as_str() {
            "slack" => Arc::new(SlackPlatform::new(
                settings::<SlackSettings>(name, table)?,
                clock.clone(),
            )?),
            "teams" => Arc::new(TeamsPlatform::new(settings::<TeamsSettings>(name, table)?)?),
            "google_chat" => Arc::new(GoogleChatPlatform::new(
                settings::<GoogleChatSettings>(name, table)?,
                clock.clone(),
            )?),
            "webex" => Arc::new(WebexPlatform::new(
                settings::<WebexSettings>(name, table)?,
                clock.clone(),
            )?),
            "zoom" => Arc::new(ZoomPlatform::new(
                settings::<ZoomSettings>(name, table)?,
                clock.clone(),
            )?),
            other => {
                bail!(
                    "unknown platform '{other}' in [platforms] (this build has: slack, teams, google_chat, webex, zoom)"
                )
            }
        };
        registry.register(module);
    }
    Ok(registry)
}

/// The scopes the hub's own app asks for on each platform where the admin creates that app
/// (from the hub's documentation, or, in the demo, through the simulator).
pub fn app_scopes(name: &str) -> &'static [&'static str] {
    match name {
        "slack" => HUB_BOT_SCOPES,
        "google_chat" => DELEGATION_SCOPES,
        _ => &[],
    }
}

fn settings<T: serde::de::DeserializeOwned>(name: &str, table: &toml::Value) -> anyhow::Result<T> {
    table
        .clone()
        .try_into()
        .map_err(|error: toml::de::Error| anyhow::anyhow!("{}", error.message().trim()))
        .with_context(|| format!("invalid [platforms.{name}]"))
}

//! How the hub's demo connects to a simulated platform the way an admin would: what it creates
//! on the platform first, what the hub's `[platforms.KEY]` table says, and how the consent pages
//! are walked. The demo may talk to a simulator in another process, so all of it works from the
//! simulator's URL, never from a running simulator's state.

use serde_json::Value;

/// What a simulated platform's demo connection is told of the hub.
#[derive(Debug, Clone)]
pub struct DemoHub {
    /// The hub's public URL, without a trailing slash.
    pub public_url: String,
    /// Where the platform's consent pages send the admin back to.
    pub callback_url: String,
    /// Where the platform delivers its webhooks to the hub.
    pub webhook_url: String,
    /// The scopes the hub's own app asks for, where the admin creates that app.
    pub app_scopes: Vec<String>,
    /// Whether the simulator enforces the platforms' rate limits: the hub paces itself only
    /// where something limits it.
    pub paced: bool,
}

/// How the admin connects the hub: what they type into the hub's connect form, then how they
/// sign in on the platform's consent pages and which button they press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The connect form's fields, by name.
    pub inputs: Vec<(String, String)>,
    /// The sign-in field of the consent pages and its value (an e-mail address, a login).
    pub identity: (String, String),
    /// The `decision` the accepting button submits.
    pub accept: String,
}

/// Why the demo could not set a simulated platform up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot reach the simulator: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Refused(String),
}

/// A simulated platform as the demo connects the hub to it. Each platform crate implements it
/// on a value built without the simulator running (the simulator's registry lists them).
#[async_trait::async_trait]
pub trait SimulatedConnect: Send + Sync {
    /// The platform's key: the simulator's, and that of the hub's `[platforms.KEY]` table.
    fn key(&self) -> &'static str;

    /// The path of the platform's web view on the simulator, where a person signs in to chat
    /// (`/slack/`).
    fn web_view(&self) -> &'static str;

    /// Creates on the simulator at `sim` what an admin creates before connecting the hub (an
    /// app, say), and returns what the demo must keep of it, which it keeps sealed across
    /// restarts and hands back to [`SimulatedConnect::hub_table`] and
    /// [`SimulatedConnect::consent`]; `None` when there is nothing to create.
    async fn prepare(&self, sim: &str, hub: &DemoHub) -> Result<Option<Value>, DemoError> {
        let _ = (sim, hub);
        Ok(None)
    }

    /// What the admin does on the platform once the hub is connected and serving: pointing an
    /// app's event subscription at the hub, where the platform validates the endpoint when the
    /// subscription is saved (Zoom's Marketplace does), so it cannot be done before.
    async fn after_connect(
        &self,
        sim: &str,
        hub: &DemoHub,
        prepared: Option<&Value>,
    ) -> Result<(), DemoError> {
        let _ = (sim, hub, prepared);
        Ok(())
    }

    /// The hub's `[platforms.KEY]` table for this platform on the simulator at `sim`, as a JSON
    /// object.
    fn hub_table(
        &self,
        sim: &str,
        hub: &DemoHub,
        prepared: Option<&Value>,
    ) -> Result<Value, DemoError>;

    /// How the admin connects and, later, approves what the hub asks them to (a bot's app).
    fn consent(&self, prepared: Option<&Value>) -> Result<Consent, DemoError>;
}

/// Reads what [`SimulatedConnect::prepare`] returned, as the platform's own type.
pub fn prepared<T: serde::de::DeserializeOwned>(
    key: &str,
    prepared: Option<&Value>,
) -> Result<T, DemoError> {
    let value =
        prepared.ok_or_else(|| DemoError::Refused(format!("the demo's {key} was not prepared")))?;
    T::deserialize(value)
        .map_err(|error| DemoError::Refused(format!("not the demo's {key} state: {error}")))
}

/// Text between two markers of a page the simulator served. The pages are the simulator's own,
/// so plain searching is enough; no general HTML parser is needed.
pub fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// An HTTP client that acts as the admin's browser: it does not follow redirects, so that each
/// step of a consent walk can be seen.
pub fn browser() -> Result<reqwest::Client, DemoError> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

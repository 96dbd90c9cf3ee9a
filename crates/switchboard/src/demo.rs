//! The demo's autopilot: sets up the hub against the built-in simulator the way an admin would
//! in a browser — creating the hub's Slack app, connecting both platforms through the
//! simulator's own consent pages, selecting every Teams team — and imports, so the demo
//! organisation is ready on start.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use switchboard_platform::Credentials;
use switchboard_platform_slack::HUB_BOT_SCOPES;
use switchboard_secrets::{Cipher, ExposeSecret, SecretString};
use switchboard_store::ImportStatus;

use switchboard_hub::AppState;

/// The simulated Microsoft tenant's hub app, service user and interop directory, as
/// docs/simulator-microsoft.md lists them.
const TEAMS_CLIENT_ID: &str = "5b000000-a990-4000-8000-000000000001";
const TEAMS_CLIENT_SECRET: &str = "sim~hub.app-secret_0nly-valid-in-the-simulator";
const TEAMS_SERVICE_USER: &str = "switchboard.service@acme.example";
const INTEROP_TENANT: &str = "5b000000-c057-4000-8000-000000000002";
const INTEROP_DOMAIN: &str = "switchboard-interop.example";

/// What the hub needs to know of its Slack app, created in the simulator as an admin would.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SlackApp {
    pub client_id: String,
    pub client_secret: String,
    pub signing_secret: String,
    pub configuration_token: String,
    pub configuration_refresh_token: String,
    admin_email: String,
}

fn browser() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the demo's HTTP client")
}

/// Text between two markers of a page the simulator served. The pages are the simulator's own,
/// so plain searching is enough; no general HTML parser is needed.
fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Where a demo keeps its Slack app, sealed with the hub's key, to resume with it.
const SLACK_APP_FILE: &str = "demo-slack-app.sealed";
const SLACK_APP_CONTEXT: &str = "demo:slack-app";

/// The hub's Slack app: the one a demo with this data directory created before, or a new one.
pub async fn slack_app(data_dir: &Path, sim: &str, hub_callback: &str) -> anyhow::Result<SlackApp> {
    let cipher = Cipher::load(None, data_dir)?;
    let path = data_dir.join(SLACK_APP_FILE);
    if let Ok(sealed) = std::fs::read(&path) {
        let text = cipher
            .open(&sealed, SLACK_APP_CONTEXT)
            .with_context(|| format!("cannot open {}", path.display()))?;
        return serde_json::from_str(text.expose_secret())
            .with_context(|| format!("{} is not a demo's Slack app", path.display()));
    }
    let app = create_slack_app(sim, hub_callback).await?;
    let text = SecretString::from(serde_json::to_string(&app)?);
    std::fs::write(&path, cipher.seal(&text, SLACK_APP_CONTEXT))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(app)
}

/// Signs in to the simulated Slack as its owner, generates app configuration tokens, and
/// creates the hub's app from a manifest with them.
pub async fn create_slack_app(sim: &str, hub_callback: &str) -> anyhow::Result<SlackApp> {
    let http = browser()?;
    let users: Value = http
        .get(format!("{sim}/_sim/users?platform=slack"))
        .send()
        .await?
        .json()
        .await?;
    let admin_email = users
        .as_array()
        .and_then(|users| users.iter().find(|u| u["kind"] == "primary_owner"))
        .and_then(|u| u["email"].as_str())
        .context("the simulated Slack has no owner")?
        .to_owned();
    let signed_in = http
        .post(format!("{sim}/slack/signin"))
        .form(&[("email", admin_email.as_str())])
        .send()
        .await?;
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("signing in to the simulated Slack set no session")?
        .to_owned();
    let page = http
        .post(format!("{sim}/slack/apps/tokens"))
        .header("cookie", cookie)
        .send()
        .await?
        .text()
        .await?;
    let configuration_token = between(&page, "<code id=\"access-token\">", "</code>")
        .map(unescape)
        .context("no configuration token on the simulated Slack's page")?;
    let configuration_refresh_token = between(&page, "<code id=\"refresh-token\">", "</code>")
        .map(unescape)
        .context("no refresh token on the simulated Slack's page")?;
    let manifest = json!({
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "Switchboard",
            "description": "Direct messages and group chats with colleagues on other platforms.",
        },
        "features": {
            "app_home": {"messages_tab_enabled": true, "messages_tab_read_only_enabled": false},
            "bot_user": {"display_name": "Switchboard", "always_online": true},
        },
        "oauth_config": {
            "redirect_urls": [hub_callback],
            "scopes": {"bot": HUB_BOT_SCOPES},
        },
        "settings": {"org_deploy_enabled": false, "socket_mode_enabled": false},
    });
    let created: Value = http
        .post(format!("{sim}/slack/api/apps.manifest.create"))
        .bearer_auth(&configuration_token)
        .form(&[("manifest", manifest.to_string())])
        .send()
        .await?
        .json()
        .await?;
    if created["ok"] != true {
        bail!("the simulated Slack refused the hub's app: {created}");
    }
    let credential = |name: &str| {
        created["credentials"][name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the new app has no {name}"))
    };
    Ok(SlackApp {
        client_id: credential("client_id")?,
        client_secret: credential("client_secret")?,
        signing_secret: credential("signing_secret")?,
        configuration_token,
        configuration_refresh_token,
        admin_email,
    })
}

/// Whether the simulator at `sim` enforces the platforms' rate limits: the hub paces itself
/// only where something limits it.
pub async fn sim_rate_limits(sim: &str) -> anyhow::Result<bool> {
    let settings: Value = browser()?
        .get(format!("{sim}/_sim/settings"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    settings["rate_limits"]
        .as_bool()
        .context("the simulator's settings name no rate_limits")
}

/// The `[platforms]` tables that point the hub at the simulator; `paced` when the simulator
/// enforces rate limits.
pub fn platform_config(sim: &str, hub: &str, slack: &SlackApp, paced: bool) -> toml::Table {
    let mut slack_table = toml::Table::new();
    for (key, value) in [
        ("api_base_url", format!("{sim}/slack")),
        ("client_id", slack.client_id.clone()),
        ("client_secret", slack.client_secret.clone()),
        ("signing_secret", slack.signing_secret.clone()),
        ("events_url", format!("{hub}/webhooks/slack")),
        (
            "redirect_url",
            switchboard_hub::connect::callback_url_for(hub),
        ),
    ] {
        slack_table.insert(key.to_owned(), toml::Value::String(value));
    }
    slack_table.insert("pace_apps".to_owned(), toml::Value::Boolean(paced));
    let mut interop = toml::Table::new();
    interop.insert(
        "tenant".to_owned(),
        toml::Value::String(INTEROP_TENANT.to_owned()),
    );
    interop.insert(
        "domain".to_owned(),
        toml::Value::String(INTEROP_DOMAIN.to_owned()),
    );
    let mut teams_table = toml::Table::new();
    for (key, value) in [
        ("login_base_url", format!("{sim}/login")),
        ("graph_base_url", format!("{sim}/graph/v1.0")),
        ("client_id", TEAMS_CLIENT_ID.to_owned()),
        ("client_secret", TEAMS_CLIENT_SECRET.to_owned()),
        ("invite_redirect_url", format!("{sim}/teams/")),
    ] {
        teams_table.insert(key.to_owned(), toml::Value::String(value));
    }
    teams_table.insert("interop".to_owned(), toml::Value::Table(interop));
    let mut platforms = toml::Table::new();
    platforms.insert("slack".to_owned(), toml::Value::Table(slack_table));
    platforms.insert("teams".to_owned(), toml::Value::Table(teams_table));
    platforms
}

/// Walks consent pages as a browser: follows redirects, and on each of the simulator's consent
/// forms signs in as `identity` and presses the accepting button, until the hub's callback
/// answers with its final page.
async fn walk(start: &str, identity: (&str, &str), accept: &str) -> anyhow::Result<String> {
    let http = browser()?;
    let mut url = start.to_owned();
    for _ in 0..12 {
        let response = http.get(&url).send().await?;
        if response.status().is_redirection() {
            url = location(&url, &response)?;
            continue;
        }
        let status = response.status();
        let page = response.text().await?;
        let Some(form) = between(&page, "<form", "</form>") else {
            if !status.is_success() {
                bail!("{url} answered {status}: {}", page.trim());
            }
            return Ok(page);
        };
        let action = between(form, "action=\"", "\"")
            .map(unescape)
            .context("a consent form without an action")?;
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut rest = form;
        while let Some(at) = rest.find("<input type=\"hidden\"") {
            rest = &rest[at + 6..];
            let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
            if let Some(name) = between(tag, "name=\"", "\"") {
                let value = between(tag, "value=\"", "\"").unwrap_or_default();
                fields.push((unescape(name), unescape(value)));
            }
        }
        fields.push((identity.0.to_owned(), identity.1.to_owned()));
        fields.push(("decision".to_owned(), accept.to_owned()));
        let target = absolute(&url, &action)?;
        let submitted = http.post(&target).form(&fields).send().await?;
        if !submitted.status().is_redirection() {
            let status = submitted.status();
            bail!(
                "the consent page at {target} refused ({status}): {}",
                submitted.text().await?.trim()
            );
        }
        url = location(&target, &submitted)?;
    }
    bail!("the consent pages did not end at the hub's callback")
}

fn location(from: &str, response: &reqwest::Response) -> anyhow::Result<String> {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("a redirect without a Location")?;
    absolute(from, location)
}

fn absolute(from: &str, target: &str) -> anyhow::Result<String> {
    if target.starts_with("http://") || target.starts_with("https://") {
        return Ok(target.to_owned());
    }
    let scheme_end = from.find("://").context("a relative URL without a base")? + 3;
    let origin_end = from[scheme_end..]
        .find('/')
        .map_or(from.len(), |i| scheme_end + i);
    Ok(format!("{}{target}", &from[..origin_end]))
}

/// Connects both simulated platforms, selects every Teams team, imports both, and waits for the
/// imports to finish.
pub async fn set_up(state: &AppState, slack: &SlackApp) -> anyhow::Result<()> {
    let mut inputs = Credentials::default();
    inputs.insert(
        "app_configuration_token",
        SecretString::from(slack.configuration_token.clone()),
    );
    inputs.insert(
        "app_configuration_refresh_token",
        SecretString::from(slack.configuration_refresh_token.clone()),
    );
    connect(
        state,
        switchboard_core::Platform::Slack,
        inputs,
        ("email", &slack.admin_email),
        "allow",
    )
    .await?;
    connect(
        state,
        switchboard_core::Platform::Teams,
        Credentials::default(),
        ("login", TEAMS_SERVICE_USER),
        "accept",
    )
    .await?;
    for connection in state.store.connections().await? {
        let Some(module) = state.platforms.get(connection.platform) else {
            continue;
        };
        if let switchboard_core::ImportScope::SelectedTeams { .. } = module.rules().import {
            let context = switchboard_hub::import::connection_context(&state.store, connection.id)
                .await?
                .context("the connection vanished")?;
            let teams = module
                .list_teams(&context)
                .await
                .with_context(|| format!("listing {} teams", connection.platform.display_name()))?;
            let all: Vec<(String, String)> = teams.into_iter().map(|t| (t.id, t.name)).collect();
            state.store.select_teams(connection.id, &all).await?;
        }
        let run = switchboard_hub::import::start_import(state, connection.id)
            .await
            .with_context(|| format!("importing {}", connection.platform.display_name()))?;
        loop {
            let current = state
                .store
                .import_run(&run.id)
                .await?
                .context("the import vanished")?;
            match current.status {
                ImportStatus::Running => tokio::time::sleep(Duration::from_millis(50)).await,
                ImportStatus::Succeeded => break,
                ImportStatus::Failed => bail!(
                    "importing {} failed: {}",
                    connection.platform.display_name(),
                    current.error.unwrap_or_default()
                ),
            }
        }
    }
    switchboard_hub::import::rematch(&state.store).await?;
    Ok(())
}

async fn connect(
    state: &AppState,
    platform: switchboard_core::Platform,
    inputs: Credentials,
    identity: (&str, &str),
    accept: &str,
) -> anyhow::Result<()> {
    let started = switchboard_hub::connect::begin(state, platform, inputs, "demo")
        .await
        .map_err(|error| anyhow::anyhow!("connecting {}: {error}", platform.display_name()))?;
    match started {
        switchboard_hub::connect::Started::Connected { .. } => Ok(()),
        switchboard_hub::connect::Started::Redirect { url } => {
            let page = walk(&url, identity, accept).await?;
            if !page.contains("<h1>Connected</h1>") {
                bail!(
                    "connecting {} ended with: {}",
                    platform.display_name(),
                    page.trim()
                );
            }
            Ok(())
        }
    }
}

/// Turns auto-sync on and runs it in the background: people on one platform get a guest on
/// Teams (at once) or a bot on Slack (at Slack's pace: the simulator, like Slack, creates about
/// one app a minute), and the Slack owner approves each bot through the simulator's consent page
/// as a browser would. People on both platforms are left for the admin to choose a primary.
pub async fn sync_in_background(state: &AppState, slack: &SlackApp) -> anyhow::Result<()> {
    let mut settings = switchboard_hub::settings::SyncSettings::load(&state.store).await?;
    settings.auto_sync = true;
    settings.save(&state.store).await?;
    let (state, admin) = (state.clone(), slack.admin_email.clone());
    tokio::spawn(async move {
        // It is the hub's auto-sync, and is recorded (transitions, audit log) as such.
        let syncing = tokio::spawn(switchboard_hub::sync::auto_sync(
            state.clone(),
            "auto-sync".to_owned(),
        ));
        let mut walked = std::collections::HashSet::new();
        loop {
            let finished = syncing.is_finished();
            let consents = match state.store.pending_consents().await {
                Ok(consents) => consents,
                Err(error) => {
                    tracing::error!(%error, "the demo cannot list pending consents");
                    return;
                }
            };
            let fresh: Vec<_> = consents
                .into_iter()
                .filter(|c| walked.insert(c.url.clone()))
                .collect();
            for consent in &fresh {
                match walk(&consent.url, ("email", &admin), "allow").await {
                    Ok(page) if page.contains("<h1>Synced</h1>") => {}
                    Ok(page) => {
                        tracing::warn!(page = page.trim(), "a bot's approval did not sync it")
                    }
                    Err(error) => tracing::warn!(%error, "the demo could not approve a bot"),
                }
            }
            if finished && fresh.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        match syncing.await {
            Ok(Ok(started)) => tracing::info!(started, "the demo's auto-sync finished"),
            Ok(Err(error)) => tracing::error!(%error, "the demo's auto-sync failed"),
            Err(error) => tracing::error!(%error, "the demo's auto-sync stopped"),
        }
    });
    Ok(())
}

/// The banner's "Try it": two people, each on one platform only, where each signs in, and how
/// one writes to the other; `None` when the organisation has nobody on one of the platforms.
pub async fn try_it(
    store: &switchboard_store::Store,
    sim_url: &str,
    hub_url: &str,
) -> anyhow::Result<Option<String>> {
    use switchboard_core::Platform;
    let everyone = store
        .list_people(&switchboard_store::PeopleQuery {
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let only_on = |platform: Platform| {
        everyone
            .people
            .iter()
            .find(|summary| summary.platforms == [platform])
            .map(|summary| &summary.person)
    };
    let (Some(alice), Some(bob)) = (only_on(Platform::Slack), only_on(Platform::Teams)) else {
        return Ok(None);
    };
    Ok(Some(format!(
        "  Try it:     {alice_name} ({alice_email}) is on Slack only, {bob_name} ({bob_email}) on Teams only.\n\
         \x20             Sign in as {alice_name} at {sim_url}/slack/ and as {bob_name} at {sim_url}/teams/.\n\
         \x20             Once {bob_name}'s Slack bot is synced ({hub_url}/console/people shows it),\n\
         \x20             search Slack's people for {bob_name} (tagged \"bot\"), message it and write: it\n\
         \x20             arrives in {bob_name}'s Teams, from {alice_name}'s guest account, and the reply\n\
         \x20             comes back to Slack.",
        alice_name = alice.display_name,
        alice_email = alice.email,
        bob_name = bob.display_name,
        bob_email = bob.email,
    )))
}

//! The demo's autopilot: sets up the hub against the simulator the way an admin would in a
//! browser — creating what each simulated platform needs first (an app), connecting each
//! through the simulator's own consent pages, selecting every team where the hub imports
//! selected teams — and imports, so the demo organisation is ready on start. What differs
//! between platforms each simulated platform says itself ([`SimulatedConnect`]).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use switchboard_core::{ImportScope, Platform};
use switchboard_hub::AppState;
use switchboard_platform::{Credentials, PlatformRegistry};
use switchboard_secrets::{Cipher, ExposeSecret, SecretString};
use switchboard_sim_kit::demo::{between, browser};
use switchboard_sim_kit::html::unescape;
use switchboard_sim_kit::{Consent, DemoHub, SimulatedConnect};
use switchboard_store::ImportStatus;

/// One simulated platform as the demo set it up.
struct DemoPlatform {
    platform: Platform,
    connect: Box<dyn SimulatedConnect>,
    hub: DemoHub,
    /// What [`SimulatedConnect::prepare`] created for the hub on the platform.
    prepared: Option<Value>,
}

/// The simulated platforms the demo connects the hub to, each prepared.
pub struct Demo {
    sim: String,
    platforms: Vec<DemoPlatform>,
}

/// Where a demo keeps what it prepared on the platform `key` (the hub's app), sealed with the
/// hub's key, to resume with it; and the sealing's context.
fn prepared_file(key: &str) -> (String, String) {
    (format!("demo-{key}-app.sealed"), format!("demo:{key}-app"))
}

impl Demo {
    /// Prepares every simulated platform of the simulator at `sim` for the hub at `hub_url`:
    /// with a data directory, what a demo with that directory prepared before, else anew (and
    /// kept there). `paced` when the simulator enforces rate limits.
    pub async fn prepare(
        sim: &str,
        hub_url: &str,
        paced: bool,
        data_dir: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let cipher = data_dir.map(|dir| Cipher::load(None, dir)).transpose()?;
        let served = sim_platforms(sim).await?;
        let mut platforms = Vec::new();
        for connect in switchboard_sim::demo_platforms() {
            let key = connect.key();
            if !served.iter().any(|served| served == key) {
                continue;
            }
            let platform: Platform = key.parse()?;
            let hub = DemoHub {
                public_url: hub_url.to_owned(),
                callback_url: switchboard_hub::connect::callback_url_for(hub_url),
                webhook_url: switchboard_hub::relay::events_url(hub_url, platform),
                app_scopes: crate::platforms::app_scopes(key)
                    .iter()
                    .map(|scope| (*scope).to_owned())
                    .collect(),
                paced,
            };
            let kept = data_dir.zip(cipher.as_ref());
            let prepared = prepare_one(connect.as_ref(), sim, &hub, kept)
                .await
                .with_context(|| format!("setting up the simulated {}", platform.display_name()))?;
            platforms.push(DemoPlatform {
                platform,
                connect,
                hub,
                prepared,
            });
        }
        Ok(Self {
            sim: sim.to_owned(),
            platforms,
        })
    }

    /// The `[platforms]` tables that point the hub at the simulator.
    pub fn platform_config(&self) -> anyhow::Result<toml::Table> {
        let mut tables = toml::Table::new();
        for demo in &self.platforms {
            let table = demo
                .connect
                .hub_table(&self.sim, &demo.hub, demo.prepared.as_ref())?;
            let table = toml::Value::try_from(table).with_context(|| {
                format!("the simulated {}'s settings", demo.platform.display_name())
            })?;
            tables.insert(demo.connect.key().to_owned(), table);
        }
        Ok(tables)
    }

    /// How the admin signs in and consents on each platform.
    fn consents(&self) -> anyhow::Result<Vec<(Platform, Consent)>> {
        self.platforms
            .iter()
            .map(|demo| Ok((demo.platform, demo.connect.consent(demo.prepared.as_ref())?)))
            .collect()
    }

    /// Connects every simulated platform, selects every team where the hub imports selected
    /// teams, imports each, and waits for the imports to finish.
    pub async fn set_up(&self, state: &AppState) -> anyhow::Result<()> {
        for (platform, consent) in self.consents()? {
            connect(state, platform, &consent).await?;
        }
        for demo in &self.platforms {
            demo.connect
                .after_connect(&self.sim, &demo.hub, demo.prepared.as_ref())
                .await
                .with_context(|| {
                    format!("setting up the simulated {}", demo.platform.display_name())
                })?;
        }
        for connection in state.store.connections().await? {
            let Some(module) = state.platforms.get(connection.platform) else {
                continue;
            };
            if let ImportScope::SelectedTeams { .. } = module.rules().import {
                let context =
                    switchboard_hub::import::connection_context(&state.store, connection.id)
                        .await?
                        .context("the connection vanished")?;
                let teams = module.list_teams(&context).await.with_context(|| {
                    format!("listing {} teams", connection.platform.display_name())
                })?;
                let all: Vec<(String, String)> =
                    teams.into_iter().map(|t| (t.id, t.name)).collect();
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
        state.matching.match_now(&state.store).await?;
        Ok(())
    }
    /// Turns auto-sync on and runs it in the background: people get what each platform's module
    /// creates for those without an account there (guests, bots, at each platform's pace), and
    /// where the platform asks an admin to approve one, the demo's admin approves it through the
    /// simulator's consent page as a browser would. People on several platforms are left for the
    /// admin to choose a primary.
    pub async fn sync_in_background(&self, state: &AppState) -> anyhow::Result<()> {
        let approvals = self.consents()?;
        let mut settings = switchboard_hub::settings::SyncSettings::load(&state.store).await?;
        settings.auto_sync = true;
        settings.save(&state.store).await?;
        let state = state.clone();
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
                for pending in &fresh {
                    let Some((_, consent)) = approvals.iter().find(|(p, _)| *p == pending.platform)
                    else {
                        tracing::warn!(platform = %pending.platform, "the demo cannot approve on a platform it did not connect");
                        continue;
                    };
                    match walk(&pending.url, consent).await {
                        Ok(page) if page.contains("<h1>Synced</h1>") => {}
                        Ok(page) => {
                            tracing::warn!(
                                page = page.trim(),
                                "an approved representation was not synced"
                            )
                        }
                        Err(error) => {
                            tracing::warn!(%error, "the demo could not approve a representation")
                        }
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

    /// The banner's "Try it": two people, each on one of two platforms only, where each signs
    /// in, and how one writes to the other, in the words of the platforms' modules; `None` when
    /// no two connected platforms each have someone of their own.
    pub async fn try_it(
        &self,
        store: &switchboard_store::Store,
        modules: &PlatformRegistry,
        hub_url: &str,
    ) -> anyhow::Result<Option<String>> {
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
        let mut alone = self.platforms.iter().filter_map(|demo| {
            let module = modules.get(demo.platform)?;
            Some((demo, module, only_on(demo.platform)?))
        });
        let (Some((a, a_module, alice)), Some((b, b_module, bob))) = (alone.next(), alone.next())
        else {
            return Ok(None);
        };
        let (a_rules, b_rules) = (a_module.rules(), b_module.rules());
        let bob_on_a = a_rules.called(a_rules.representation(false)).one;
        let alice_on_b = b_rules.called(b_rules.representation(false)).one;
        let (a_name, b_name) = (a.platform.display_name(), b.platform.display_name());
        let sim = &self.sim;
        Ok(Some(format!(
            "  Try it:     {alice_name} ({alice_email}) is on {a_name} only, {bob_name} ({bob_email}) on {b_name} only.\n\
             \x20             Sign in as {alice_name} at {sim}{a_view} and as {bob_name} at {sim}{b_view}.\n\
             \x20             Once {bob_name}'s {a_name} {bob_on_a} is synced ({hub_url}/console/people shows it),\n\
             \x20             search the {a_name} {a_connection}'s people for {bob_name} (tagged \"{bob_on_a}\"), message it\n\
             \x20             and write: it arrives in {bob_name}'s {b_name}, from {alice_name}'s {alice_on_b},\n\
             \x20             and the reply comes back to {a_name}.",
            alice_name = alice.display_name,
            alice_email = alice.email,
            bob_name = bob.display_name,
            bob_email = bob.email,
            a_view = a.connect.web_view(),
            b_view = b.connect.web_view(),
            a_connection = a_rules.words.connection.one,
        )))
    }
}

/// What the demo prepared on one platform: kept from before in `kept` (the data directory and
/// the hub's cipher), or prepared now and kept there.
async fn prepare_one(
    connect: &dyn SimulatedConnect,
    sim: &str,
    hub: &DemoHub,
    kept: Option<(&Path, &Cipher)>,
) -> anyhow::Result<Option<Value>> {
    let (file, context) = prepared_file(connect.key());
    if let Some((dir, cipher)) = kept {
        let path = dir.join(&file);
        if let Ok(sealed) = std::fs::read(&path) {
            let text = cipher
                .open(&sealed, &context)
                .with_context(|| format!("cannot open {}", path.display()))?;
            return serde_json::from_str(text.expose_secret())
                .map(Some)
                .with_context(|| format!("{} is not what a demo kept", path.display()));
        }
    }
    let prepared = connect.prepare(sim, hub).await?;
    if let (Some(prepared), Some((dir, cipher))) = (&prepared, kept) {
        let path = dir.join(&file);
        let text = SecretString::from(serde_json::to_string(prepared)?);
        std::fs::write(&path, cipher.seal(&text, &context))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(prepared)
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

/// The keys of the platforms the simulator at `sim` serves.
async fn sim_platforms(sim: &str) -> anyhow::Result<Vec<String>> {
    browser()?
        .get(format!("{sim}/_sim/platforms"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .context("the simulator's list of platforms")
}

/// Walks consent pages as a browser: follows redirects, and on each of the simulator's consent
/// forms signs in as the consent's identity and presses its accepting button, until the hub's callback
/// answers with its final page.
async fn walk(start: &str, consent: &Consent) -> anyhow::Result<String> {
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
        fields.push(consent.identity.clone());
        fields.push(("decision".to_owned(), consent.accept.clone()));
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

async fn connect(state: &AppState, platform: Platform, consent: &Consent) -> anyhow::Result<()> {
    let mut inputs = Credentials::default();
    for (name, value) in &consent.inputs {
        inputs.insert(name, SecretString::from(value.clone()));
    }
    let started = switchboard_hub::connect::begin(state, platform, inputs, "demo")
        .await
        .map_err(|error| anyhow::anyhow!("connecting {}: {error}", platform.display_name()))?;
    match started {
        switchboard_hub::connect::Started::Connected { .. } => Ok(()),
        switchboard_hub::connect::Started::Redirect { url } => {
            let page = walk(&url, consent).await?;
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

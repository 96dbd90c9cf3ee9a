//! The platform simulator: a server that stands in for Slack, for Microsoft Entra ID + Graph, for
//! Google (Chat, Directory, Workspace Events, Pub/Sub), for Webex and for Zoom, speaking
//! their documented wire formats so that the hub, its tests and the vendors' own SDKs can run
//! against it with no real tenant.
//!
//! Each platform is one crate behind [`SimPlatform`], mounted by the one-line registry in
//! [`platforms`]. This crate adds what no vendor has, under `/_sim/`: seeding, listing users,
//! minting tokens, fault injection, the request log and settings. It shares no code with the
//! hub's platform clients, not even wire types: it is a second, independent reading of the
//! vendors' documentation.

mod control;
mod middleware;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use switchboard_sim_kit::{OrgSpec, Organisation, SimContext, SimPlatform, SimulatedConnect};

/// The state file's format version; a file of another version is refused rather than misread.
const STATE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read the simulator state file {path}: {cause}")]
    ReadState { path: PathBuf, cause: String },
    #[error("cannot write the simulator state file {path}: {cause}")]
    WriteState { path: PathBuf, cause: String },
    #[error("the simulator has no platform '{asked}' (it has: {known})")]
    UnknownPlatform { asked: String, known: String },
}

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The address clients reach the simulator at, e.g. `http://127.0.0.1:8090`.
    pub base_url: String,
    /// The size of the organisation seeded at start (when no state file is restored).
    pub people: usize,
    pub rate_limits: bool,
    /// Where state is restored from at start and saved to on [`Simulator::save`].
    pub state_file: Option<PathBuf>,
    /// The platforms to serve, by key; `None` serves every platform. The organisation is
    /// generated over the platforms served, so a test about two platforms keeps the same
    /// people however many more the simulator knows.
    pub platforms: Option<Vec<String>>,
}

/// The platforms the simulator serves: one line per platform crate.
fn platforms(context: &SimContext) -> Vec<Arc<dyn SimPlatform>> {
    vec![
        switchboard_sim_slack::SlackSim::new(context.clone()),
        switchboard_sim_microsoft::MicrosoftSim::new(context.clone()),
        switchboard_sim_google::GoogleSim::new(context.clone()),
        switchboard_sim_webex::WebexSim::new(context.clone()),
        switchboard_sim_zoom::ZoomSim::new(context.clone()),
    ]
}

/// How the hub's demo connects to each platform: one line per platform crate, in the order of
/// [`platforms`]. They are built without a simulator, for the demo may use one running
/// elsewhere.
pub fn demo_platforms() -> Vec<Box<dyn SimulatedConnect>> {
    vec![
        Box::new(switchboard_sim_slack::SlackDemo),
        Box::new(switchboard_sim_microsoft::MicrosoftDemo),
        Box::new(switchboard_sim_google::GoogleDemo),
        Box::new(switchboard_sim_webex::WebexDemo),
        Box::new(switchboard_sim_zoom::ZoomDemo),
    ]
}

#[derive(Clone)]
pub struct Simulator {
    context: SimContext,
    platforms: Arc<Vec<Arc<dyn SimPlatform>>>,
    state_file: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    platforms: serde_json::Map<String, serde_json::Value>,
}

impl Simulator {
    /// Builds the simulator: restores the state file if there is one, else seeds an organisation
    /// of `config.people`.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        let context = SimContext::new(config.base_url, config.rate_limits);
        let mut served = platforms(&context);
        if let Some(keys) = &config.platforms {
            if let Some(unknown) = keys
                .iter()
                .find(|key| served.iter().all(|p| p.key() != key.as_str()))
            {
                return Err(SimError::UnknownPlatform {
                    asked: unknown.clone(),
                    known: served
                        .iter()
                        .map(|p| p.key())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            served.retain(|p| keys.iter().any(|key| key == p.key()));
        }
        let simulator = Self {
            platforms: Arc::new(served),
            context,
            state_file: config.state_file,
        };
        match simulator.state_file.as_deref().filter(|path| path.exists()) {
            Some(path) => simulator.restore(path)?,
            None => {
                simulator.seed(&OrgSpec {
                    people: config.people,
                    ..simulator.org_spec()
                });
            }
        }
        Ok(simulator)
    }

    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/", get(control::index))
            .route("/healthz", get(control::health))
            .nest("/_sim", control::router())
            .with_state(self.clone());
        for platform in self.platforms.iter() {
            router = router.merge(middleware::with_faults(
                platform.clone(),
                self.context.faults.clone(),
            ));
        }
        router.layer(axum::middleware::from_fn_with_state(
            self.context.log.clone(),
            middleware::record,
        ))
    }

    /// The demo organisation over this simulator's platforms, each as it declares itself.
    pub fn org_spec(&self) -> OrgSpec {
        OrgSpec::new(self.platforms.iter().map(|p| p.org_platform()).collect())
    }

    /// Replaces every platform's users with a freshly generated organisation.
    pub fn seed(&self, spec: &OrgSpec) -> Organisation {
        let organisation = Organisation::generate(spec);
        for platform in self.platforms.iter() {
            platform.seed(&organisation);
        }
        organisation
    }

    fn platform(&self, key: &str) -> Option<&Arc<dyn SimPlatform>> {
        self.platforms.iter().find(|p| p.key() == key)
    }

    /// The keys of the platforms served, in registry order.
    pub fn platform_keys(&self) -> Vec<&'static str> {
        self.platforms.iter().map(|p| p.key()).collect()
    }

    /// Writes every platform's state to the state file, if one was configured.
    pub fn save(&self) -> Result<(), SimError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let state = StateFile {
            version: STATE_VERSION,
            platforms: self
                .platforms
                .iter()
                .map(|p| (p.key().to_owned(), p.save()))
                .collect(),
        };
        let write_error = |cause: String| SimError::WriteState {
            path: path.clone(),
            cause,
        };
        let text = serde_json::to_vec(&state).map_err(|e| write_error(e.to_string()))?;
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text).map_err(|e| write_error(e.to_string()))?;
        std::fs::rename(&partial, path).map_err(|e| write_error(e.to_string()))
    }

    fn restore(&self, path: &Path) -> Result<(), SimError> {
        let read_error = |cause: String| SimError::ReadState {
            path: path.to_owned(),
            cause,
        };
        let text = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
        let mut state: StateFile =
            serde_json::from_slice(&text).map_err(|e| read_error(e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(read_error(format!(
                "it is version {}, this simulator reads version {STATE_VERSION}",
                state.version
            )));
        }
        for platform in self.platforms.iter() {
            let saved = state.platforms.remove(platform.key()).ok_or_else(|| {
                read_error(format!(
                    "it has no state for {key}: it was saved by a simulator without {key}; \
                         remove the file to start with a new organisation",
                    key = platform.key()
                ))
            })?;
            platform
                .restore(saved)
                .map_err(|e| read_error(format!("{}: {e}", platform.key())))?;
        }
        Ok(())
    }
}

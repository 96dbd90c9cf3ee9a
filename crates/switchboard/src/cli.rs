use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use switchboard_secrets::{ExposeSecret, SecretString};

/// Switchboard: direct messages and group chats across chat platforms, each person staying in
/// the app they prefer.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    propagate_version = true,
    after_help = REMOTE_EXIT_STATUS
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, env = "SWITCHBOARD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Which logs to show, as a tracing filter (for example `info` or `warn,switchboard=debug`).
    #[arg(
        long = "log",
        global = true,
        env = "SWITCHBOARD_LOG",
        value_name = "FILTER"
    )]
    pub log_filter: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// Scripts tell these failures apart, so every command that talks to a hub says them in its help.
const REMOTE_EXIT_STATUS: &str = "Commands that talk to a running hub (people, connections, \
import, teams, settings, relay) exit with 1 when the hub refuses the request, 2 on a usage \
mistake, 3 when the hub cannot be reached or does not answer in time.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people to read.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub.
    Serve(ServeArgs),
    /// Run the hub with the built-in platform simulator: no accounts, keys or network needed.
    Demo(DemoArgs),
    /// Run the platform simulator alone.
    Sim(SimArgs),
    /// Manage the REST API's tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the admins who sign in to the web console.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// List, sync, reset, reprompt and remove people on a running hub.
    #[command(after_help = REMOTE_EXIT_STATUS)]
    People(PeopleArgs),
    /// The platforms a running hub is connected to, with their health and last import.
    #[command(after_help = REMOTE_EXIT_STATUS)]
    Connections(ConnectionsArgs),
    /// Start importing a connection's users (and wait for it with --wait).
    #[command(after_help = REMOTE_EXIT_STATUS)]
    Import(ImportArgs),
    /// The teams of a connection, and which of them are imported (team-scoped platforms).
    #[command(after_help = REMOTE_EXIT_STATUS)]
    Teams(TeamsArgs),
    /// Show or change a running hub's sync settings.
    #[command(after_help = REMOTE_EXIT_STATUS)]
    Settings(SettingsArgs),
    /// What the relay of a running hub has to do, and the copies it gave up on.
    #[command(after_help = REMOTE_EXIT_STATUS)]
    Relay(RelayArgs),
    /// Show or choose Directory Sync's scope: the groups whose members are the hub's people.
    #[command(after_help = REMOTE_EXIT_STATUS)]
    Directory(DirectoryArgs),
}

/// How to reach a running hub. Global, so they may follow any subcommand.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// The hub's address.
    #[arg(
        long = "hub",
        global = true,
        env = "SWITCHBOARD_HUB_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub url: String,

    /// An API token (`switchboard token create` prints one). Required; prefer the variable,
    /// which other users of the machine cannot read from the process list.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<ApiToken>,

    /// How long to wait for each answer of the hub.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

/// An API token that never shows in debug output or error messages.
pub struct ApiToken(pub SecretString);

impl Clone for ApiToken {
    fn clone(&self) -> Self {
        Self(SecretString::from(self.0.expose_secret().to_owned()))
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ApiToken([redacted])")
    }
}

impl std::str::FromStr for ApiToken {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(SecretString::from(text.to_owned())))
    }
}

#[derive(Debug, Args)]
pub struct PeopleArgs {
    #[command(flatten)]
    pub hub: HubArgs,

    #[command(subcommand)]
    pub command: PeopleCommand,
}

#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// People, by name: a table, or one JSON object per line with --json.
    List(PeopleListArgs),
    /// One person with their accounts and representations (with history).
    Show {
        /// The person's id.
        id: String,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Represent people on a platform other than their primary.
    Sync {
        /// People's ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Where to represent them.
        #[arg(long, value_name = "PLATFORM")]
        platform: String,
    },
    /// Break every sync of these people: remove the guests and bots the hub created, clear the
    /// primary platform.
    Reset {
        /// People's ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Send the prompt again to people whose representations wait for them.
    Reprompt {
        /// People's ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Reset people, then delete them from the hub (their accounts stay, unlinked).
    Remove {
        /// People's ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Do not ask for confirmation (required when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Choose the primary platform of one person, or of every member of a team.
    #[command(group = clap::ArgGroup::new("whom").required(true).args(["id", "team"]))]
    Primary {
        /// The person's id.
        id: Option<String>,
        /// A team selected for import: its members on several platforms who have an account on
        /// --platform get it as primary.
        #[arg(long, value_name = "TEAM_ID")]
        team: Option<String>,
        /// The platform they chat from.
        #[arg(long, value_name = "PLATFORM")]
        platform: String,
    },
}

#[derive(Debug, Args)]
pub struct PeopleListArgs {
    /// Only people with this primary platform (`none` for those still to choose).
    #[arg(long, value_name = "PLATFORM|none")]
    pub primary: Option<String>,
    /// Only people with a representation in this status: not_created, pending, synced, failed.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only people with a representation of this type: existing_account, guest_account, bot,
    /// unsupported.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Only members of this team (with an active account imported from it).
    #[arg(long, value_name = "TEAM_ID")]
    pub team: Option<String>,
    /// Search names and e-mail addresses.
    #[arg(long, value_name = "TEXT")]
    pub q: Option<String>,
    /// People per page (1-1000).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: u32,
    /// Start at this page (as printed after a page that has more).
    #[arg(long, value_name = "CURSOR", conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow the pages to the end instead of printing one.
    #[arg(long)]
    pub all: bool,
    /// One JSON object per person and line, as the API gives them.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<ConnectionsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Disconnect a platform: its credentials are deleted and the hub stops using it; its
    /// people, accounts and message history stay for when it is connected again.
    Disconnect {
        /// The connection's id (see `switchboard connections`).
        id: String,
        /// First remove the guest accounts or bots the hub created on that platform (they
        /// cannot be removed once the credentials are deleted).
        #[arg(long)]
        remove_representations: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// The connection's id (see `switchboard connections`).
    pub connection: String,
    /// Wait for the import to finish, showing its progress; fail if it fails.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct TeamsArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// The connection's id (see `switchboard connections`).
    pub connection: String,
    /// Import these teams' members, and only these (replaces the selection).
    #[arg(long, value_name = "TEAM_ID", num_args = 1..)]
    pub select: Option<Vec<String>>,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<SettingsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Change settings, such as `auto_sync=on prompt_throttle_hours=48`.
    Set {
        /// KEY=VALUE pairs; the keys are those `switchboard settings` shows.
        #[arg(required = true, value_name = "KEY=VALUE")]
        changes: Vec<String>,
    },
    /// Restrict people from writing through the hub, by e-mail address.
    Restrict {
        #[arg(required = true, value_name = "EMAIL")]
        emails: Vec<String>,
    },
    /// Lift the restriction of people, by e-mail address.
    Unrestrict {
        #[arg(required = true, value_name = "EMAIL")]
        emails: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct DirectoryArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<DirectoryCommand>,
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// List every group that may be chosen: those provisioned through SCIM, and those of each
    /// connection whose platform has a directory (Entra ID, Google), as SOURCE:ID.
    Groups,
    /// Choose the groups, as SOURCE:ID (`scim:ID` for a group provisioned through SCIM,
    /// `CONNECTION:ID` for one of a connection's directory; see `directory groups`). Whoever is
    /// represented and outside them is reset and removed: try --preview first.
    Set {
        #[arg(required = true, value_name = "SOURCE:ID")]
        groups: Vec<String>,
        /// Say who would leave, and change nothing.
        #[arg(long)]
        preview: bool,
    },
    /// Choose no group: everyone is in scope again.
    Clear {
        /// Say what it would do, and change nothing.
        #[arg(long)]
        preview: bool,
    },
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<RelayCommand>,
}

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// The copies the relay gave up on after their last retry, newest first.
    DeadLetters {
        /// How many (1-500).
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead letter back in its lane, with fresh retries.
    Retry {
        /// The dead letter's id.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (it is shown only this once).
    Create(TokenCreateArgs),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin of the web console. The first one is the owner, whatever --role says.
    /// The password is asked for (not shown), or read from standard input with --password-stdin.
    Create(AdminCreateArgs),
}

#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    /// The admin's e-mail address, which they sign in with.
    pub email: String,

    /// What the admin may do: owner (also manages admins), admin, or viewer (reads only).
    #[arg(long, default_value = "admin", value_parser = ["owner", "admin", "viewer"])]
    pub role: String,

    /// Read the password from the first line of standard input instead of asking.
    #[arg(long)]
    pub password_stdin: bool,

    #[command(flatten)]
    pub hub: ServeArgs,
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// What the token is for, as the audit log will name it.
    #[arg(long, default_value = "cli")]
    pub name: String,

    /// A token for the SCIM endpoint (`/scim/v2`) an identity provider provisions through,
    /// instead of one for the REST API; neither opens the other.
    #[arg(long)]
    pub scim: bool,

    #[command(flatten)]
    pub hub: ServeArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file; flags and SWITCHBOARD_* variables override what it says.
    #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address for the hub's HTTP server [default: 127.0.0.1:8080].
    #[arg(long, env = "SWITCHBOARD_LISTEN", value_name = "IP:PORT")]
    pub listen: Option<String>,

    /// Directory for the SQLite database and the secret key [default: ./switchboard-data].
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database to use instead of SQLite in the data directory, such as
    /// postgres://user@host/switchboard. DATABASE_URL is read too.
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address for the hub.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    pub listen: String,

    /// Address for the platform simulator.
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "IP:PORT")]
    pub sim_listen: String,

    /// Use a simulator that already runs (`switchboard sim`) at this URL instead of starting
    /// one. With --data-dir, a demo started again resumes where it stopped: same hub app,
    /// connections and people.
    #[arg(long, value_name = "URL", conflicts_with = "sim_listen")]
    pub sim_url: Option<String>,

    /// Keep the demo's data here instead of in a directory deleted on exit.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// How many people the simulated organisation has.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub people: usize,

    /// Keep the hub's data in this database instead of SQLite in the data directory, such as
    /// postgres://user@host/switchboard.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// Use this API token instead of a random one (for scripts); at least 16 characters.
    #[arg(long, value_name = "TOKEN", value_parser = api_token)]
    pub api_token: Option<String>,

    /// Serve SCIM at `/scim/v2` at once, to identity providers presenting this bearer token;
    /// at least 16 characters.
    #[arg(
        long,
        env = "SWITCHBOARD_DEMO_SCIM_TOKEN",
        value_name = "TOKEN",
        value_parser = api_token
    )]
    pub scim_token: Option<String>,

    /// Whether the simulator the demo starts enforces the platforms' published rate limits
    /// (some let an organisation create only one new app a minute). Off for scripts and
    /// tests that provision many representations at once; set it before the demo starts,
    /// since its own sync begins at once.
    #[arg(
        long,
        value_enum,
        default_value_t = Switch::On,
        value_name = "on|off",
        env = "SWITCHBOARD_DEMO_SIM_RATE_LIMITS",
        conflicts_with = "sim_url"
    )]
    pub sim_rate_limits: Switch,

    /// Simulate only these platforms, by key (comma-separated, e.g. `slack,teams`); every
    /// platform when absent. The demo connects the platforms its simulator serves.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "KEYS",
        env = "SWITCHBOARD_DEMO_PLATFORMS",
        conflicts_with = "sim_url"
    )]
    pub platforms: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address for the simulator.
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "IP:PORT")]
    pub listen: String,

    /// The URL clients reach the simulator at, if not http://IP:PORT of --listen (behind a
    /// proxy, or listening on 0.0.0.0).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// How many people the simulated organisation has (ignored when --state restores one).
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub people: usize,

    /// Keep the simulated platforms' state in this file: restored at start, saved at exit.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Whether to enforce the platforms' published rate limits (off for benchmarks).
    #[arg(long, value_enum, default_value_t = Switch::On, value_name = "on|off")]
    pub rate_limits: Switch,

    /// Serve only these platforms, by key (comma-separated, e.g. `slack,teams`); every
    /// platform when absent. The organisation is generated over the platforms served.
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub platforms: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// The shortest API token accepted: a shorter one could be guessed.
pub const API_TOKEN_MIN_CHARS: usize = 16;

/// An API token given on the command line, refused before anything starts when too short.
fn api_token(text: &str) -> Result<String, String> {
    if text.chars().count() < API_TOKEN_MIN_CHARS {
        return Err(format!(
            "an API token must be at least {API_TOKEN_MIN_CHARS} characters long"
        ));
    }
    Ok(text.to_owned())
}

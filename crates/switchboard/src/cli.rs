use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Switchboard: direct messages and group chats across Slack, Microsoft Teams, Google Chat,
/// Webex and Zoom, each person staying in the app they prefer.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, propagate_version = true)]
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
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (it is shown only this once).
    Create(TokenCreateArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// What the token is for, as the audit log will name it.
    #[arg(long, default_value = "cli")]
    pub name: String,

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

    /// Use this API token instead of a random one (for scripts).
    #[arg(long, value_name = "TOKEN")]
    pub api_token: Option<String>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

//! The hub's settings: defaults, then the TOML file, then SWITCHBOARD_* variables, then flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::cli::{LogFormat, ServeArgs};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./switchboard-data";
pub const DEFAULT_LOG_FILTER: &str = "info";

/// The configuration file's keys. Unknown keys are refused: a misspelt key silently ignored is
/// a setting the admin believes in and does not have.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log: Option<String>,
    /// The hub's address as browsers and platforms reach it.
    pub public_url: Option<String>,
    /// One table per platform module, `[platforms.<platform>]`; see docs/platforms/.
    #[serde(default)]
    pub platforms: toml::Table,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).map_err(|error| {
            let position = error
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            anyhow::anyhow!(
                "config file {} is not valid: {position}{}",
                path.display(),
                error.message().trim().replace('\n', "; ")
            )
        })
    }
}

/// What `serve` runs with, every source merged.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub public_url: String,
}

impl Settings {
    /// Merges flags (which clap already merged with SWITCHBOARD_* variables) over the file and
    /// the defaults. `DATABASE_URL` counts as a variable, below SWITCHBOARD_DATABASE_URL.
    pub fn resolve(
        args: &ServeArgs,
        file: &FileConfig,
        database_url_env: Option<String>,
    ) -> anyhow::Result<Self> {
        let listen = args
            .listen
            .as_deref()
            .or(file.listen.as_deref())
            .unwrap_or(DEFAULT_LISTEN);
        let database_url = args
            .database_url
            .clone()
            .or(database_url_env)
            .or_else(|| file.database_url.clone())
            .filter(|url| !url.trim().is_empty());
        let listen = parse_listen(listen)?;
        let public_url = match &file.public_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(url) => bail!("public_url '{url}' must start with http:// or https://"),
            None => format!("http://{listen}"),
        };
        Ok(Self {
            listen,
            public_url,
            data_dir: args
                .data_dir
                .clone()
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database_url,
        })
    }
}

pub fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    match text.parse() {
        Ok(address) => Ok(address),
        Err(_) => {
            bail!("invalid listen address '{text}': expected IP:PORT, such as {DEFAULT_LISTEN}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs {
            config: None,
            listen: None,
            data_dir: None,
            database_url: None,
        }
    }

    fn file(text: &str) -> anyhow::Result<FileConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, text).unwrap();
        FileConfig::load(&path)
    }

    #[test]
    fn defaults_apply_when_nothing_is_said() {
        let settings = Settings::resolve(&args(), &FileConfig::default(), None).unwrap();
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(settings.database_url, None);
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let file = file(
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/var/lib/sb\"\ndatabase_url = \"postgres://file/db\"\n",
        )
        .unwrap();
        let from_file = Settings::resolve(&args(), &file, None).unwrap();
        assert_eq!(from_file.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(from_file.public_url, "http://127.0.0.1:9000");
        assert_eq!(from_file.data_dir, PathBuf::from("/var/lib/sb"));
        assert_eq!(
            from_file.database_url.as_deref(),
            Some("postgres://file/db")
        );

        let from_env =
            Settings::resolve(&args(), &file, Some("postgres://env/db".to_owned())).unwrap();
        assert_eq!(from_env.database_url.as_deref(), Some("postgres://env/db"));

        let mut flags = args();
        flags.listen = Some("0.0.0.0:80".to_owned());
        flags.database_url = Some("sqlite://x.db".to_owned());
        let from_flags =
            Settings::resolve(&flags, &file, Some("postgres://env/db".to_owned())).unwrap();
        assert_eq!(from_flags.listen.to_string(), "0.0.0.0:80");
        assert_eq!(from_flags.database_url.as_deref(), Some("sqlite://x.db"));
    }

    #[test]
    fn malformed_toml_is_one_line_with_its_position() {
        let error = file("listen = \"127.0.0.1:1\"\nlisten = 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2, column 1"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = file("lissten = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(error.contains("unknown field `lissten`"), "{error}");
    }

    #[test]
    fn a_bad_listen_address_says_what_is_expected() {
        let error = parse_listen("localhost").unwrap_err().to_string();
        assert_eq!(
            error,
            "invalid listen address 'localhost': expected IP:PORT, such as 127.0.0.1:8080"
        );
    }
}

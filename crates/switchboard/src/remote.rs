//! The subcommands that script a running hub through its REST API (`/api/v1`, docs/api.md):
//! a small HTTP client, the failures a person at a terminal can act on, and each command's
//! output, made for people (tables) or for programs (`--json`).

mod admin;
mod output;
mod people;

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::cli::HubArgs;

pub use admin::{connections, directory, import, relay, settings, teams};
pub use people::people;

/// Why a command against the hub stopped, and the exit status that tells scripts which kind it
/// was. The message never contains the API token: it is only ever sent, in a header.
#[derive(Debug)]
pub enum Failure {
    /// The hub answered and refused, or something it was asked to do failed (exit 1).
    Refused(String),
    /// The command line cannot work as given (exit 2, as clap's own usage errors).
    Usage(String),
    /// The hub cannot be reached, or did not answer in time (exit 3).
    Unreachable(String),
    /// Standard output was closed (`| head`): the reader has what it wanted (exit 0).
    OutputClosed,
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused(_) => 1,
            Self::Usage(_) => 2,
            Self::Unreachable(_) => 3,
            Self::OutputClosed => 0,
        }
    }

    /// The one line printed on standard error, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Refused(message) | Self::Usage(message) | Self::Unreachable(message) => {
                Some(message)
            }
            Self::OutputClosed => None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.message().unwrap_or("standard output was closed"))
    }
}

impl std::error::Error for Failure {}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Self::OutputClosed
        } else {
            Self::Refused(format!("cannot write the output: {error}"))
        }
    }
}

pub type Outcome<T = ()> = Result<T, Failure>;

/// The hub's REST API, as one API token may use it.
pub struct Hub {
    http: reqwest::Client,
    api: Url,
    token: SecretString,
    timeout: Duration,
}

impl Hub {
    pub fn new(args: HubArgs) -> Outcome<Self> {
        let token = args.token.ok_or_else(|| {
            Failure::Usage(
                "an API token is required: pass --token or set SWITCHBOARD_API_TOKEN \
                 (`switchboard token create` prints one)"
                    .to_owned(),
            )
        })?;
        let api = api_base(&args.url)?;
        let timeout = Duration::from_secs(args.timeout.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("switchboard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| Failure::Usage(format!("cannot set up the HTTP client: {error}")))?;
        Ok(Self {
            http,
            api,
            token: token.0,
            timeout,
        })
    }

    /// `/api/v1` followed by `segments`, each percent-encoded, so an id typed by a person can
    /// never become another path.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("api_base accepts only URLs that can have a path")
            .extend(segments);
        url
    }

    pub async fn get(&self, url: Url) -> Outcome<Value> {
        self.send(Method::GET, url, None).await
    }

    /// The answer's JSON (`null` when it has no body), or the failure to report.
    pub async fn send(&self, method: Method, url: Url, body: Option<Value>) -> Outcome<Value> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.unreachable(&error))?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(body) => body,
                Err(_) if status.is_success() => {
                    return Err(Failure::Refused(format!(
                        "the hub at {} answered {status} with something that is not JSON: is it a Switchboard hub?",
                        self.hub_address()
                    )));
                }
                Err(_) => Value::Null,
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(refusal(status, &body, &self.hub_address()))
    }

    fn unreachable(&self, error: &reqwest::Error) -> Failure {
        let hub = self.hub_address();
        Failure::Unreachable(if error.is_timeout() {
            format!(
                "the hub at {hub} did not answer within {} s (raise it with --timeout)",
                self.timeout.as_secs()
            )
        } else if error.is_connect() {
            format!(
                "cannot reach the hub at {hub}: is it running there? (set --hub or SWITCHBOARD_HUB_URL)"
            )
        } else {
            // reqwest's own text names the URL, never the headers that carry the token.
            format!("the connection to the hub at {hub} failed: {error}")
        })
    }

    fn hub_address(&self) -> String {
        let mut hub = self.api.clone();
        hub.set_path("");
        hub.as_str().trim_end_matches('/').to_owned()
    }
}

/// The API's base URL under the hub's address (which may itself sit under a path, behind a
/// proxy).
fn api_base(hub: &str) -> Outcome<Url> {
    let bad = |why: &str| {
        Failure::Usage(format!(
            "--hub must be the hub's http:// or https:// address, such as http://127.0.0.1:8080: {why}"
        ))
    };
    let mut url =
        Url::parse(hub).map_err(|error| bad(&format!("'{hub}' is not a URL ({error})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(bad(&format!("'{hub}' is not an http(s) URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("give the API token with --token, not in the URL"));
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| bad(&format!("'{hub}' cannot have a path")))?
        .pop_if_empty()
        .extend(["api", "v1"]);
    Ok(url)
}

/// The line for a refusal: the API's own message and code when it sent its error body.
fn refusal(status: StatusCode, body: &Value, hub: &str) -> Failure {
    let code = body["error"]["code"].as_str();
    let message = body["error"]["message"].as_str();
    if status == StatusCode::UNAUTHORIZED {
        return Failure::Refused(format!(
            "the hub refused the API token: it is unknown or revoked (create one with \
             `switchboard token create` on the hub) ({})",
            code.unwrap_or("unauthorised")
        ));
    }
    Failure::Refused(match (message, code) {
        (Some(message), Some(code)) => format!("{message} ({code})"),
        _ if status == StatusCode::NOT_FOUND => format!(
            "the hub at {hub} has no such API path (HTTP 404): is it a Switchboard hub, and as recent as this command?"
        ),
        _ => format!("the hub answered HTTP {status} without saying why"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_sits_under_the_hubs_address_with_or_without_a_path() {
        for (hub, api) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v1"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/api/v1"),
            (
                "https://hub.example/switchboard/",
                "https://hub.example/switchboard/api/v1",
            ),
            ("http://hub.example?x=1#top", "http://hub.example/api/v1"),
        ] {
            assert_eq!(api_base(hub).unwrap().as_str(), api, "{hub}");
        }
        for bad in [
            "127.0.0.1:8080",
            "ftp://hub.example",
            "mailto:admin@example.com",
            "http://user:secret@hub.example",
            "not a url",
        ] {
            assert!(
                matches!(api_base(bad), Err(Failure::Usage(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn refusals_quote_the_apis_message_and_code() {
        let body = serde_json::json!({"error": {"code": "no_primary", "message": "choose a primary first"}});
        assert_eq!(
            refusal(StatusCode::CONFLICT, &body, "http://hub").to_string(),
            "choose a primary first (no_primary)"
        );
        let unauthorised = refusal(StatusCode::UNAUTHORIZED, &Value::Null, "http://hub");
        assert!(unauthorised.to_string().contains("unknown or revoked"));
        assert_eq!(unauthorised.exit_code(), 1);
        assert_eq!(
            refusal(StatusCode::BAD_GATEWAY, &Value::Null, "http://hub").to_string(),
            "the hub answered HTTP 502 Bad Gateway without saying why"
        );
    }
}

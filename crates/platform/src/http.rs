//! Reading a platform's HTTP answer whole: the part of a module's client that is the same on
//! every platform. What an answer means (its error codes, its hints to wait) stays with each
//! module's `classify`.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::PlatformError;

/// A platform's answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as JSON; an empty body (a 204) reads as `null`. `platform` names the platform
    /// in the error.
    pub fn json<T: DeserializeOwned>(&self, platform: &str) -> Result<T, PlatformError> {
        let text = if self.body.trim().is_empty() {
            "null"
        } else {
            &self.body
        };
        serde_json::from_str(text)
            .map_err(|e| PlatformError::Rejected(format!("unreadable {platform} answer: {e}")))
    }
}

/// Sends `request` and reads its answer whole. Not reaching `platform` (named in the error), or
/// timing out, is `Unavailable`: worth retrying.
pub async fn send(
    request: reqwest::RequestBuilder,
    platform: &str,
) -> Result<Answer, PlatformError> {
    let unreachable = |error: reqwest::Error| {
        if error.is_timeout() {
            PlatformError::Unavailable(format!("timed out: {error}"))
        } else {
            PlatformError::Unavailable(format!("cannot reach {platform}: {error}"))
        }
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.map_err(unreachable)?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

//! What an outbox item carries: the copy's content in the relay's own encoding, kept only
//! until the copy is delivered.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Payload {
    /// The message's text (for posts and edits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The origin message's thread parent, on the origin platform, for replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// The reaction added or removed, as a Unicode emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// The message a reaction goes on, when it is not the copy of the item's origin (a reaction
    /// to a copy goes on the original).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Target {
    pub chat: String,
    pub message: String,
}

impl Payload {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("strings always serialise"))
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("an unreadable outbox payload: {e}"))
    }
}

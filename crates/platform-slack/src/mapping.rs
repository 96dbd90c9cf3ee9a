//! Slack's wire types, read the way Slack documents them, and their mapping to the platform
//! vocabulary: users, and reaction names ⇄ Unicode emoji.

use serde::Deserialize;
use switchboard_core::{Email, ExternalUserId};
use switchboard_platform::PlatformUser;

/// Slackbot's fixed user id: a bot, although Slack lists it with `is_bot: false`.
pub(crate) const SLACKBOT: &str = "USLACKBOT";

/// A user object (`users.list`, `users.lookupByEmail`, `team_join`, `user_change`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireUser {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub is_app_user: bool,
    #[serde(default)]
    pub is_restricted: bool,
    #[serde(default)]
    pub is_ultra_restricted: bool,
    #[serde(default)]
    pub profile: WireProfile,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct WireProfile {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub real_name: Option<String>,
    /// Present only for tokens with `users:read.email`.
    #[serde(default)]
    pub email: Option<String>,
}

fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

impl WireUser {
    /// The name Slack shows: the display name, else the full name, else the handle.
    fn shown_name(&self) -> String {
        non_empty(&self.profile.display_name)
            .or_else(|| non_empty(&self.profile.real_name))
            .or_else(|| non_empty(&self.real_name))
            .unwrap_or(&self.name)
            .to_owned()
    }

    pub(crate) fn into_platform(self) -> PlatformUser {
        let emails = non_empty(&self.profile.email)
            .and_then(|e| Email::parse(e).ok())
            .into_iter()
            .collect();
        PlatformUser {
            display_name: self.shown_name(),
            emails,
            is_bot: self.is_bot || self.is_app_user || self.id == SLACKBOT,
            is_guest: self.is_restricted || self.is_ultra_restricted,
            deactivated: self.deleted,
            id: ExternalUserId::new(self.id),
        }
    }
}

/// Common emoji and their Slack short names. Slack's full table (and skin tones, custom emoji)
/// is translated elsewhere later; these cover the reactions people use most.
const EMOJI: &[(&str, &str)] = &[
    ("👍", "+1"),
    ("👎", "-1"),
    ("❤️", "heart"),
    ("😂", "joy"),
    ("😄", "smile"),
    ("😀", "grinning"),
    ("😊", "blush"),
    ("😉", "wink"),
    ("😢", "cry"),
    ("😮", "open_mouth"),
    ("😡", "rage"),
    ("🤔", "thinking_face"),
    ("🎉", "tada"),
    ("👀", "eyes"),
    ("🙏", "pray"),
    ("🔥", "fire"),
    ("✅", "white_check_mark"),
    ("👏", "clap"),
    ("💯", "100"),
    ("🚀", "rocket"),
    ("👋", "wave"),
    ("🙌", "raised_hands"),
    ("👌", "ok_hand"),
    ("⭐", "star"),
];

/// Slack's other names for the same emoji.
const ALIASES: &[(&str, &str)] = &[("thumbsup", "+1"), ("thumbsdown", "-1")];

/// The Slack short name of a Unicode emoji, or of a `:name:` given as such.
pub(crate) fn reaction_name(emoji: &str) -> Option<String> {
    let emoji = emoji.trim();
    let bare = emoji.trim_end_matches('\u{fe0f}');
    if let Some((_, name)) = EMOJI
        .iter()
        .find(|(e, _)| *e == emoji || e.trim_end_matches('\u{fe0f}') == bare)
    {
        return Some((*name).to_owned());
    }
    let name = emoji.strip_prefix(':')?.strip_suffix(':')?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-'".contains(c));
    valid.then(|| name.to_owned())
}

/// The Unicode emoji of a Slack short name; unknown names come back as `:name:`.
pub(crate) fn emoji_of(name: &str) -> String {
    let base = name.split("::").next().unwrap_or(name);
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == base)
        .map_or(base, |(_, name)| *name);
    EMOJI
        .iter()
        .find(|(_, n)| *n == canonical)
        .map_or_else(|| format!(":{name}:"), |(e, _)| (*e).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(value: serde_json::Value) -> PlatformUser {
        serde_json::from_value::<WireUser>(value)
            .unwrap()
            .into_platform()
    }

    #[test]
    fn users_are_flagged_as_slack_describes_them() {
        let person = user(
            json!({"id": "U1", "name": "ada", "real_name": "Ada Lovelace",
            "profile": {"display_name": "", "real_name": "Ada Lovelace", "email": "Ada@Acme.example"}}),
        );
        assert_eq!(person.display_name, "Ada Lovelace");
        assert_eq!(person.emails[0].as_str(), "ada@acme.example");
        assert!(!person.is_bot && !person.is_guest && !person.deactivated);

        assert!(user(json!({"id": "U2", "is_bot": true})).is_bot);
        assert!(user(json!({"id": "U3", "is_app_user": true})).is_bot);
        assert!(user(json!({"id": "USLACKBOT", "is_bot": false})).is_bot);
        assert!(user(json!({"id": "U4", "is_restricted": true})).is_guest);
        assert!(user(json!({"id": "U5", "is_ultra_restricted": true})).is_guest);
        assert!(user(json!({"id": "U6", "deleted": true})).deactivated);
        let named =
            user(json!({"id": "U7", "name": "grace", "profile": {"display_name": "Grace H"}}));
        assert_eq!(named.display_name, "Grace H");
        assert!(named.emails.is_empty());
    }

    #[test]
    fn emoji_translate_both_ways() {
        assert_eq!(reaction_name("👍").as_deref(), Some("+1"));
        assert_eq!(reaction_name("❤").as_deref(), Some("heart"));
        assert_eq!(reaction_name("❤️").as_deref(), Some("heart"));
        assert_eq!(
            reaction_name(":partyparrot:").as_deref(),
            Some("partyparrot")
        );
        assert_eq!(reaction_name("🦜"), None);
        assert_eq!(emoji_of("+1"), "👍");
        assert_eq!(emoji_of("thumbsup"), "👍");
        assert_eq!(emoji_of("+1::skin-tone-2"), "👍");
        assert_eq!(emoji_of("partyparrot"), ":partyparrot:");
    }
}

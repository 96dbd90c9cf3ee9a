//! Slack's wire types, read the way Slack documents them, and their mapping to the platform
//! vocabulary: users, and reaction names ⇄ Unicode emoji.

use emojis::{Emoji, SkinTone};
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

/// Slack names emoji after the Unicode names (iamcal's emoji-data), GitHub's gemoji (which the
/// `emojis` crate carries, and which Slack otherwise shares) after its own; these are the common
/// faces where the two differ, as (Slack name, gemoji name).
const SLACK_NAMES: &[(&str, &str)] = &[
    ("thinking_face", "thinking"),
    ("hugging_face", "hugs"),
    ("face_with_rolling_eyes", "roll_eyes"),
    ("rolling_on_the_floor_laughing", "rofl"),
    ("robot_face", "robot"),
    ("face_vomiting", "vomiting_face"),
    ("face_with_monocle", "monocle_face"),
    ("face_with_raised_eyebrow", "raised_eyebrow"),
    ("face_with_hand_over_mouth", "hand_over_mouth"),
    ("star-struck", "star_struck"),
];

/// Slack's `skin-tone-2` … `skin-tone-6` (the Fitzpatrick scale, types 1–2 merged) as Unicode's
/// five modifiers.
const SKIN_TONES: &[(&str, SkinTone)] = &[
    ("skin-tone-2", SkinTone::Light),
    ("skin-tone-3", SkinTone::MediumLight),
    ("skin-tone-4", SkinTone::Medium),
    ("skin-tone-5", SkinTone::MediumDark),
    ("skin-tone-6", SkinTone::Dark),
];

/// The emoji of a Slack short name (without colons or skin tone), custom emoji excepted.
pub(crate) fn emoji_by_name(name: &str) -> Option<&'static Emoji> {
    let gemoji = SLACK_NAMES
        .iter()
        .find(|(slack, _)| *slack == name)
        .map_or(name, |(_, gemoji)| *gemoji);
    emojis::get_by_shortcode(gemoji)
}

/// The emoji in the skin tone a Slack modifier name (`skin-tone-3`) names, if it has tones.
pub(crate) fn with_skin_tone(emoji: &'static Emoji, modifier: &str) -> Option<&'static Emoji> {
    let (_, tone) = SKIN_TONES.iter().find(|(name, _)| *name == modifier)?;
    emoji.with_skin_tone(*tone)
}

/// The Slack short name of a Unicode emoji (`+1::skin-tone-4` for a toned one), or of a
/// `:name:` given as such.
pub(crate) fn reaction_name(emoji: &str) -> Option<String> {
    let emoji = emoji.trim();
    if let Some(found) = emojis::get(emoji) {
        let toneless = match found.skin_tone() {
            Some(tone) if tone != SkinTone::Default => found.with_skin_tone(SkinTone::Default),
            _ => None,
        };
        let base = toneless.unwrap_or(found);
        if let Some(gemoji) = base.shortcode() {
            let name = SLACK_NAMES
                .iter()
                .find(|(_, g)| *g == gemoji)
                .map_or(gemoji, |(slack, _)| *slack);
            let modifier = toneless.and_then(|_| {
                let tone = found.skin_tone()?;
                SKIN_TONES.iter().find(|(_, t)| *t == tone).map(|(m, _)| *m)
            });
            return Some(match modifier {
                Some(modifier) => format!("{name}::{modifier}"),
                None => name.to_owned(),
            });
        }
    }
    let name = emoji.strip_prefix(':')?.strip_suffix(':')?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-'".contains(c));
    valid.then(|| name.to_owned())
}

/// The Unicode emoji of a Slack reaction name; unknown (custom) names come back as `:name:`.
/// A reaction keeps its base emoji without the skin tone, so one reaction given in different
/// tones counts once on the other side.
pub(crate) fn emoji_of(name: &str) -> String {
    let base = name.split("::").next().unwrap_or(name);
    emoji_by_name(base).map_or_else(|| format!(":{name}:"), |e| e.as_str().to_owned())
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
        assert_eq!(reaction_name("🦜").as_deref(), Some("parrot"));
        assert_eq!(reaction_name("🤔").as_deref(), Some("thinking_face"));
        assert_eq!(reaction_name("👍🏽").as_deref(), Some("+1::skin-tone-4"));
        assert_eq!(reaction_name("not an emoji"), None);
        assert_eq!(emoji_of("thinking_face"), "🤔");
        assert_eq!(emoji_of("white_check_mark"), "✅");
        assert_eq!(emoji_of("+1"), "👍");
        assert_eq!(emoji_of("thumbsup"), "👍");
        assert_eq!(emoji_of("+1::skin-tone-2"), "👍");
        assert_eq!(emoji_of("partyparrot"), ":partyparrot:");
    }
}

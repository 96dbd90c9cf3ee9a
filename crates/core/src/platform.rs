use std::fmt;
use std::str::FromStr;

/// A chat platform the hub can connect to.
///
/// Non-exhaustive: Matrix and XMPP are planned, and code outside this crate must not assume
/// the list is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Platform {
    Slack,
    Teams,
    GoogleChat,
    Webex,
    Zoom,
}

/// A platform name the hub does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform '{0}' (expected one of: slack, teams, google_chat, webex, zoom)")]
pub struct UnknownPlatform(pub String);

impl Platform {
    pub const ALL: [Platform; 5] = [
        Platform::Slack,
        Platform::Teams,
        Platform::GoogleChat,
        Platform::Webex,
        Platform::Zoom,
    ];

    /// The stable name used in the API, the database and configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Teams => "teams",
            Platform::GoogleChat => "google_chat",
            Platform::Webex => "webex",
            Platform::Zoom => "zoom",
        }
    }

    /// The platform's bit in a set of platforms stored as an integer (as the store keeps the
    /// platforms a person has accounts on). Stable: never reorder the variants' bits.
    pub const fn bit(self) -> i64 {
        match self {
            Platform::Slack => 1,
            Platform::Teams => 2,
            Platform::GoogleChat => 4,
            Platform::Webex => 8,
            Platform::Zoom => 16,
        }
    }

    /// The platforms in a set made of [`Platform::bit`]s.
    pub fn in_set(bits: i64) -> impl Iterator<Item = Platform> {
        Platform::ALL
            .into_iter()
            .filter(move |p| bits & p.bit() != 0)
    }

    /// The name people see.
    pub const fn display_name(self) -> &'static str {
        match self {
            Platform::Slack => "Slack",
            Platform::Teams => "Microsoft Teams",
            Platform::GoogleChat => "Google Chat",
            Platform::Webex => "Webex",
            Platform::Zoom => "Zoom Team Chat",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPlatform(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_round_trips_through_its_name() {
        for platform in Platform::ALL {
            assert_eq!(platform.as_str().parse::<Platform>(), Ok(platform));
        }
    }

    #[test]
    fn bits_are_distinct_and_round_trip() {
        let all: i64 = Platform::ALL.iter().map(|p| p.bit()).sum();
        assert_eq!(all.count_ones() as usize, Platform::ALL.len());
        assert_eq!(
            Platform::in_set(all).collect::<Vec<_>>(),
            Platform::ALL.to_vec()
        );
        assert_eq!(
            Platform::in_set(Platform::Teams.bit() | Platform::Zoom.bit()).collect::<Vec<_>>(),
            vec![Platform::Teams, Platform::Zoom]
        );
    }

    #[test]
    fn names_are_exact() {
        assert!("Slack".parse::<Platform>().is_err());
        assert!("msteams".parse::<Platform>().is_err());
        assert_eq!("google_chat".parse::<Platform>(), Ok(Platform::GoogleChat));
    }
}

//! Everything the simulated Zoom holds: the account's users, its Marketplace apps (the
//! server-to-server app, the user-managed app and the chatbot), channels, the conversations'
//! messages (1:1 chats, channels, chats with the chatbot), and the tokens OAuth gave out.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use switchboard_sim_kit::{Organisation, SeedKind};

use crate::KEY;
use crate::wire::now_millis;

/// The simulated account's id (Zoom's are 22 characters).
pub const ACCOUNT_ID: &str = "SbSimZoomAccount000001";

/// The Marketplace apps' credentials. An admin creates each app on the admin page; until then
/// its credentials are refused. Fixed, like a developer's copied credentials, so that the demo
/// can name them without asking a running simulator.
pub const S2S_CLIENT_ID: &str = "SbS2SClient0zoom000001";
pub const S2S_CLIENT_SECRET: &str = "s2sSecret0f2b6a1e9c4d8e7f3a5b1c0d2e4f6a8b";
pub const S2S_SECRET_TOKEN: &str = "s2sToken6a1e9c4d8e7f3a5b";
pub const USER_CLIENT_ID: &str = "SbUserClient0zoom00001";
pub const USER_CLIENT_SECRET: &str = "userSecret9c4d8e7f3a5b1c0d2e4f6a8b0f2b6a1e";
pub const USER_SECRET_TOKEN: &str = "userToken4d8e7f3a5b1c0d2";
pub const CHATBOT_CLIENT_ID: &str = "SbBotClient0zoom000001";
pub const CHATBOT_CLIENT_SECRET: &str = "botSecret8e7f3a5b1c0d2e4f6a8b0f2b6a1e9c4d";
pub const CHATBOT_SECRET_TOKEN: &str = "botToken7f3a5b1c0d2e4f6a";
/// The chatbot's JID, the address of its messages and of a user's chat with it.
pub const ROBOT_JID: &str = "v1sbsimzoomchatbot0001@xmpp.zoom.us";
/// The chatbot's name, as users see it.
pub const ROBOT_NAME: &str = "Switchboard";
/// The client behind tokens of `/_sim/token`: the Zoom app a user signs in to.
pub const ZOOM_APP_CLIENT_ID: &str = "zoom_workplace_app";

/// The granular scopes of a user's own Team Chat and profile. An account-level app holds
/// each with `:admin`, which lets it act for any user of the account.
pub const USER_SCOPES: [&str; 13] = [
    "user:read:user",
    "team_chat:read:list_user_messages",
    "team_chat:read:user_message",
    "team_chat:write:user_message",
    "team_chat:update:user_message",
    "team_chat:delete:user_message",
    "team_chat:update:message_emoji",
    "team_chat:read:list_user_channels",
    "team_chat:read:channel",
    "team_chat:write:user_channel",
    "team_chat:read:list_members",
    "team_chat:write:members",
    "team_chat:delete:member",
];
/// Listing the account's users is an admin scope only.
pub const LIST_USERS_SCOPE: &str = "user:read:list_users:admin";
/// The chatbot's one scope: send as the bot.
pub const CHATBOT_SCOPE: &str = "imchat:bot";

/// The server-to-server app's scopes: every user scope as `:admin`, and listing users.
pub fn s2s_scopes() -> Vec<String> {
    USER_SCOPES
        .iter()
        .map(|scope| format!("{scope}:admin"))
        .chain([LIST_USERS_SCOPE.to_owned()])
        .collect()
}

pub fn user_scopes() -> Vec<String> {
    USER_SCOPES.iter().map(|s| (*s).to_owned()).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    /// Zoom's `role_id`: 0 the owner, 1 an admin, 2 a member.
    pub fn id(self) -> &'static str {
        match self {
            Role::Owner => "0",
            Role::Admin => "1",
            Role::Member => "2",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Active,
    /// Deactivated by an admin: cannot sign in, tokens refused, not a contact.
    Inactive,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub role: Role,
    pub status: Status,
    /// The member id Zoom added for Team Chat in 2023 (also given for external users).
    pub member_id: String,
    pub jid: String,
    pub created: u64,
}

impl User {
    pub fn active(&self) -> bool {
        self.status == Status::Active
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppKind {
    ServerToServer,
    UserManaged,
    Chatbot,
}

impl AppKind {
    pub const ALL: [AppKind; 3] = [
        AppKind::ServerToServer,
        AppKind::UserManaged,
        AppKind::Chatbot,
    ];

    /// The name used by the admin page and its forms.
    pub fn name(self) -> &'static str {
        match self {
            AppKind::ServerToServer => "server_to_server",
            AppKind::UserManaged => "user",
            AppKind::Chatbot => "chatbot",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    pub fn title(self) -> &'static str {
        match self {
            AppKind::ServerToServer => "Server-to-Server OAuth app",
            AppKind::UserManaged => "General app (user-managed OAuth)",
            AppKind::Chatbot => "Team Chat app (chatbot)",
        }
    }

    pub fn client_id(self) -> &'static str {
        match self {
            AppKind::ServerToServer => S2S_CLIENT_ID,
            AppKind::UserManaged => USER_CLIENT_ID,
            AppKind::Chatbot => CHATBOT_CLIENT_ID,
        }
    }

    pub fn client_secret(self) -> &'static str {
        match self {
            AppKind::ServerToServer => S2S_CLIENT_SECRET,
            AppKind::UserManaged => USER_CLIENT_SECRET,
            AppKind::Chatbot => CHATBOT_CLIENT_SECRET,
        }
    }

    pub fn secret_token(self) -> &'static str {
        match self {
            AppKind::ServerToServer => S2S_SECRET_TOKEN,
            AppKind::UserManaged => USER_SECRET_TOKEN,
            AppKind::Chatbot => CHATBOT_SECRET_TOKEN,
        }
    }

    pub fn scopes(self) -> Vec<String> {
        match self {
            AppKind::ServerToServer => s2s_scopes(),
            AppKind::UserManaged => user_scopes(),
            AppKind::Chatbot => vec![CHATBOT_SCOPE.to_owned()],
        }
    }

    /// The events the app may subscribe to: Team Chat's for the OAuth apps, the chatbot's own
    /// notification for the chatbot.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            AppKind::Chatbot => &["bot_notification"],
            _ => &TEAM_CHAT_EVENTS,
        }
    }
}

/// The Team Chat events the simulator sends.
pub const TEAM_CHAT_EVENTS: [&str; 10] = [
    "team_chat.dm_message_posted",
    "team_chat.dm_message_updated",
    "team_chat.dm_message_deleted",
    "team_chat.dm_reaction_added",
    "team_chat.dm_reaction_removed",
    "team_chat.channel_message_posted",
    "team_chat.channel_message_updated",
    "team_chat.channel_message_deleted",
    "team_chat.channel_reaction_added",
    "team_chat.channel_reaction_removed",
];

/// A Marketplace app an admin created, with its event subscription once its endpoint passed
/// URL validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub kind: AppKind,
    /// The admin who created it: "me" of its account-level token.
    pub creator: String,
    pub event_url: Option<String>,
    pub events: Vec<String>,
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AtItem {
    pub at_contact: Option<String>,
    pub at_type: u8,
    pub start_position: u32,
    pub end_position: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RichText {
    pub start_position: u32,
    pub end_position: u32,
    pub format_type: String,
    pub format_attr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reaction {
    /// As `U+1F44D` (code points separated by spaces).
    pub emoji: String,
    pub senders: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    /// A user's id, or [`ROBOT_JID`] for the chatbot's messages.
    pub sender: String,
    pub text: String,
    pub reply_main: Option<String>,
    pub at_items: Vec<AtItem>,
    pub rich_text: Vec<RichText>,
    pub reactions: Vec<Reaction>,
    /// The Chatbot API's `content`, for the chatbot's messages.
    pub bot_content: Option<serde_json::Value>,
    pub created: u64,
    pub updated: Option<u64>,
}

/// Where a conversation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A 1:1 chat of two users (their ids in order).
    Direct(String, String),
    Channel(String),
    /// A user's chat with the chatbot.
    Bot(String),
}

impl Place {
    pub fn direct(one: &str, other: &str) -> Self {
        if one <= other {
            Place::Direct(one.to_owned(), other.to_owned())
        } else {
            Place::Direct(other.to_owned(), one.to_owned())
        }
    }

    /// The key of its messages in [`State::conversations`].
    pub fn key(&self) -> String {
        match self {
            Place::Direct(one, other) => format!("dm:{one}:{other}"),
            Place::Channel(id) => format!("channel:{id}"),
            Place::Bot(user) => format!("bot:{user}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, rest) = key.split_once(':')?;
        match kind {
            "dm" => {
                let (one, other) = rest.split_once(':')?;
                Some(Place::Direct(one.to_owned(), other.to_owned()))
            }
            "channel" => Some(Place::Channel(rest.to_owned())),
            "bot" => Some(Place::Bot(rest.to_owned())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelMember {
    pub user: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub jid: String,
    pub name: String,
    /// 1 private, 2 private with members of the account only, 3 public, 4 a group chat
    /// ("new chat").
    pub channel_type: u8,
    pub members: Vec<ChannelMember>,
    pub created: u64,
}

impl Channel {
    pub fn has_member(&self, user: &str) -> bool {
        self.members.iter().any(|m| m.user == user)
    }
}

/// What a token stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// The user the token acts as ("me"); for an account-level token the app's creator.
    pub user: String,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub user: String,
    pub redirect_uri: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    pub domain: String,
    pub users: Vec<User>,
    pub apps: Vec<App>,
    pub channels: Vec<Channel>,
    /// Each conversation's messages, oldest first, by [`Place::key`].
    pub conversations: BTreeMap<String, Vec<Message>>,
    pub access_tokens: HashMap<String, Grant>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub codes: HashMap<String, CodeGrant>,
    /// The time of the latest message: no two messages share a time, which orders them.
    #[serde(default)]
    pub last_message_time: u64,
    /// Users by id and by lower-cased e-mail, to their position in `users`; rebuilt, not saved.
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl State {
    pub fn seeded(organisation: &Organisation) -> Self {
        let created = now_millis();
        let mut state = Self {
            domain: if organisation.domain.is_empty() {
                "acme.example".to_owned()
            } else {
                organisation.domain.clone()
            },
            ..Self::default()
        };
        for (rank, seed) in organisation.people_on(KEY).enumerate() {
            let kind = seed.on(KEY).map(|m| m.kind).unwrap_or_default();
            let id = seeded_id(rank as u64);
            state.users.push(User {
                jid: format!("{}@xmpp.zoom.us", id.to_lowercase()),
                member_id: seeded_member_id(rank as u64),
                id,
                email: seed.email.clone(),
                first_name: seed.given_name.clone(),
                last_name: seed.family_name.clone(),
                display_name: seed.display_name.clone(),
                role: match (kind, rank) {
                    (SeedKind::Admin, 0) => Role::Owner,
                    (SeedKind::Admin, _) => Role::Admin,
                    _ => Role::Member,
                },
                status: if kind == SeedKind::Deactivated {
                    Status::Inactive
                } else {
                    Status::Active
                },
                created,
            });
        }
        state.reindex();
        state
    }

    /// Rebuilds the index of users, after a restore.
    pub fn reindex(&mut self) {
        self.index.clear();
        for (position, user) in self.users.iter().enumerate() {
            self.index.insert(user.id.clone(), position);
            self.index.insert(user.email.to_lowercase(), position);
        }
    }

    /// A user by id or e-mail (case-insensitive).
    pub fn user(&self, key: &str) -> Option<&User> {
        self.index
            .get(key)
            .or_else(|| self.index.get(&key.to_lowercase()))
            .and_then(|&position| self.users.get(position))
    }

    pub fn user_mut(&mut self, key: &str) -> Option<&mut User> {
        let position = *self
            .index
            .get(key)
            .or_else(|| self.index.get(&key.to_lowercase()))?;
        self.users.get_mut(position)
    }

    /// An active user by id, e-mail or JID.
    pub fn active_user(&self, key: &str) -> Option<&User> {
        self.user(key)
            .or_else(|| self.users.iter().find(|u| u.jid == key))
            .filter(|u| u.active())
    }

    /// A new member of the account; their id.
    pub fn add_user(&mut self, email: &str, name: &str) -> Result<String, String> {
        if self.user(email).is_some() {
            return Err(format!("{email} already has a Zoom account"));
        }
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        let rank = self.users.len() as u64 + 10_000;
        let id = seeded_id(rank);
        self.users.push(User {
            jid: format!("{}@xmpp.zoom.us", id.to_lowercase()),
            member_id: seeded_member_id(rank),
            id: id.clone(),
            email: email.to_owned(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            display_name: name.to_owned(),
            role: Role::Member,
            status: Status::Active,
            created: now_millis(),
        });
        self.reindex();
        Ok(id)
    }

    pub fn app(&self, kind: AppKind) -> Option<&App> {
        self.apps.iter().find(|app| app.kind == kind)
    }

    pub fn app_mut(&mut self, kind: AppKind) -> Option<&mut App> {
        self.apps.iter_mut().find(|app| app.kind == kind)
    }

    /// The time of a new message: now, or a millisecond after the latest message when that is
    /// not earlier, so that messages' times are unique and in the order they were posted.
    pub fn next_message_time(&mut self) -> u64 {
        self.last_message_time = now_millis().max(self.last_message_time + 1);
        self.last_message_time
    }

    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    pub fn channel_mut(&mut self, id: &str) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.id == id)
    }

    pub fn messages(&self, place: &Place) -> &[Message] {
        self.conversations
            .get(&place.key())
            .map_or(&[], Vec::as_slice)
    }

    pub fn messages_mut(&mut self, place: &Place) -> &mut Vec<Message> {
        self.conversations.entry(place.key()).or_default()
    }

    pub fn message(&self, place: &Place, id: &str) -> Option<&Message> {
        self.messages(place).iter().find(|m| m.id == id)
    }

    pub fn message_mut(&mut self, place: &Place, id: &str) -> Option<&mut Message> {
        self.conversations
            .get_mut(&place.key())?
            .iter_mut()
            .find(|m| m.id == id)
    }
}

/// A stable 22-character user id for the `rank`th user, in Zoom's alphabet.
fn seeded_id(rank: u64) -> String {
    use base64::Engine;
    let mixed = rank.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0x5A5A_0F0F;
    let mut bytes = [0_u8; 16];
    bytes[..8].copy_from_slice(&mixed.to_be_bytes());
    bytes[8..].copy_from_slice(&rank.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A stable 32-hex member id for the `rank`th user.
fn seeded_member_id(rank: u64) -> String {
    let mixed = rank.wrapping_mul(0xBF58_476D_1CE4_E5B9).rotate_left(29);
    format!("{mixed:016x}{rank:016x}")
}

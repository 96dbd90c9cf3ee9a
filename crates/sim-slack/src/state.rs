//! The simulated workspace: users, apps and their installations, tokens, conversations and
//! messages, and the operations on them that both the Web API and the web view use. Everything
//! here serialises for `--state FILE`; the indexes are rebuilt on restore.

use std::collections::{BTreeMap, HashMap};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_sim_kit::{Organisation, SeedKind};

use crate::encoding::{format_ts, slack_id};
use crate::manifest::ManifestFacts;

pub const TEAM_ID: &str = "T00000001";

/// What Slack's own client may do for a signed-in person: read and write their DMs and group
/// DMs, react, and read the directory including e-mail addresses. Minted tokens carry these.
pub const CLIENT_SCOPES: &[&str] = &[
    "chat:write",
    "im:read",
    "im:write",
    "im:history",
    "mpim:read",
    "mpim:write",
    "mpim:history",
    "users:read",
    "users:read.email",
    "reactions:read",
    "reactions:write",
    "files:write",
];

/// The longest message text Slack accepts.
const MAX_TEXT_CHARS: usize = 40_000;
/// Members of a group DM besides the caller.
const MAX_OTHER_MEMBERS: usize = 8;
/// App configuration tokens live twelve hours.
pub const CONFIG_TOKEN_LIFETIME_SECS: u64 = 12 * 60 * 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotIdentity {
    pub bot_id: String,
    pub app_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub display_name: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub deleted: bool,
    pub is_admin: bool,
    pub is_owner: bool,
    pub is_primary_owner: bool,
    pub is_restricted: bool,
    pub bot: Option<BotIdentity>,
    pub updated: u64,
}

/// A user's JSON, rendered once: `users.list` pages are concatenations of these, so serving a
/// page costs copies, not serialisation. The e-mail is spliced in only for tokens allowed to
/// see it.
#[derive(Debug, Clone, Default)]
pub struct RenderedUser {
    text: String,
    email_at: usize,
    email: Option<String>,
}

impl RenderedUser {
    pub fn write(&self, out: &mut String, with_email: bool) {
        match (&self.email, with_email) {
            (Some(email), true) => {
                out.push_str(&self.text[..self.email_at]);
                out.push_str(email);
                out.push_str(&self.text[self.email_at..]);
            }
            _ => out.push_str(&self.text),
        }
    }

    pub fn value(&self, with_email: bool) -> Value {
        let mut text = String::with_capacity(self.text.len() + 64);
        self.write(&mut text, with_email);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

impl User {
    pub fn is_human(&self) -> bool {
        self.bot.is_none()
    }

    fn render(&self, team_id: &str) -> RenderedUser {
        let mut text = String::with_capacity(640);
        text.push_str("{\"id\":");
        text.push_str(&quoted(&self.id));
        text.push_str(",\"team_id\":");
        text.push_str(&quoted(team_id));
        text.push_str(",\"name\":");
        text.push_str(&quoted(&self.name));
        text.push_str(&format!(",\"deleted\":{}", self.deleted));
        text.push_str(",\"color\":\"9f69e7\",\"real_name\":");
        text.push_str(&quoted(&self.real_name));
        text.push_str(
            ",\"tz\":\"Europe/London\",\"tz_label\":\"Greenwich Mean Time\",\"tz_offset\":0,\"profile\":{",
        );
        let email_at = text.len();
        text.push_str("\"real_name\":");
        text.push_str(&quoted(&self.real_name));
        text.push_str(",\"real_name_normalized\":");
        text.push_str(&quoted(&self.real_name));
        text.push_str(",\"display_name\":");
        text.push_str(&quoted(&self.display_name));
        text.push_str(",\"display_name_normalized\":");
        text.push_str(&quoted(&self.display_name));
        text.push_str(",\"first_name\":");
        text.push_str(&quoted(&self.first_name));
        text.push_str(",\"last_name\":");
        text.push_str(&quoted(&self.last_name));
        text.push_str(
            ",\"title\":\"\",\"phone\":\"\",\"skype\":\"\",\"status_text\":\"\",\"status_emoji\":\"\",\"status_expiration\":0,\"avatar_hash\":\"\",\"team\":",
        );
        text.push_str(&quoted(team_id));
        if let Some(bot) = &self.bot {
            text.push_str(",\"bot_id\":");
            text.push_str(&quoted(&bot.bot_id));
            text.push_str(",\"api_app_id\":");
            text.push_str(&quoted(&bot.app_id));
            text.push_str(",\"always_active\":true");
        }
        text.push_str(&format!(
            "}},\"is_admin\":{},\"is_owner\":{},\"is_primary_owner\":{},\"is_restricted\":{},\"is_ultra_restricted\":false,\"is_bot\":{},\"is_app_user\":false,\"updated\":{},\"is_email_confirmed\":{}}}",
            self.is_admin,
            self.is_owner,
            self.is_primary_owner,
            self.is_restricted,
            self.bot.is_some(),
            self.updated,
            self.email.is_some(),
        ));
        RenderedUser {
            text,
            email_at,
            email: self
                .email
                .as_ref()
                .map(|email| format!("\"email\":{},", quoted(email))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Bot,
    User,
    /// An app configuration token (`xoxe.xoxp-…`), for the App Manifest API only.
    Config,
    /// The `xoxe-…` refresh token that rotates a configuration token.
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub kind: TokenKind,
    pub user_id: String,
    /// `None` for tokens of Slack's own client (minted ones).
    pub app_id: Option<String>,
    pub scopes: Vec<String>,
    pub revoked: bool,
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
    pub signing_secret: String,
    pub verification_token: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Installation {
    pub bot_token: Option<String>,
    pub installer: String,
    /// User tokens by the user who authorised them.
    pub user_tokens: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub manifest: Value,
    pub facts: ManifestFacts,
    pub creator: String,
    pub credentials: Credentials,
    pub bot_user_id: Option<String>,
    pub installation: Option<Installation>,
    pub deleted: bool,
}

/// An authorisation code from the consent page, waiting for `oauth.v2.access`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub app_id: String,
    pub user_id: String,
    pub bot_scopes: Vec<String>,
    pub user_scopes: Vec<String>,
    pub redirect_uri: Option<String>,
    pub issued_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Im,
    Mpim,
}

impl ConversationKind {
    pub fn channel_type(self) -> &'static str {
        match self {
            Self::Im => "im",
            Self::Mpim => "mpim",
        }
    }

    pub fn read_scope(self) -> &'static str {
        match self {
            Self::Im => "im:read",
            Self::Mpim => "mpim:read",
        }
    }

    pub fn history_scope(self) -> &'static str {
        match self {
            Self::Im => "im:history",
            Self::Mpim => "mpim:history",
        }
    }

    pub fn write_scope(self) -> &'static str {
        match self {
            Self::Im => "im:write",
            Self::Mpim => "mpim:write",
        }
    }

    pub fn message_event(self) -> &'static str {
        match self {
            Self::Im => "message.im",
            Self::Mpim => "message.mpim",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reaction {
    pub name: String,
    pub users: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Edited {
    pub user: String,
    pub ts: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub ts: u64,
    pub user: String,
    pub text: String,
    pub blocks: Option<Value>,
    pub thread_ts: Option<u64>,
    pub replies: Vec<u64>,
    pub edited: Option<Edited>,
    pub reactions: Vec<Reaction>,
    pub bot: Option<BotIdentity>,
    pub username: Option<String>,
    pub icon_url: Option<String>,
    pub icon_emoji: Option<String>,
    /// An app's message metadata, `{"event_type", "event_payload"}`; absent from older state
    /// files.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// The files shared with the message (Slack's file objects); absent from older state files.
    #[serde(default)]
    pub files: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub kind: ConversationKind,
    pub members: Vec<String>,
    pub creator: String,
    pub created: u64,
    /// Oldest first; timestamps only grow, so this stays sorted.
    pub messages: Vec<Message>,
}

impl Conversation {
    pub fn position(&self, ts: u64) -> Option<usize> {
        self.messages.binary_search_by_key(&ts, |m| m.ts).ok()
    }

    pub fn message(&self, ts: u64) -> Option<&Message> {
        self.position(ts).map(|at| &self.messages[at])
    }

    pub fn name(&self, users: &impl Fn(&str) -> String) -> String {
        match self.kind {
            ConversationKind::Im => self.id.clone(),
            ConversationKind::Mpim => format!(
                "mpdm-{}-1",
                self.members
                    .iter()
                    .map(|id| users(id))
                    .collect::<Vec<_>>()
                    .join("--")
            ),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    pub next_user: u64,
    pub next_conversation: u64,
    pub next_app: u64,
    pub next_bot: u64,
    pub next_event: u64,
    pub last_ts: u64,
    #[serde(default)]
    pub next_file: u64,
}

/// A file whose upload was asked for (`files.getUploadURLExternal`) and not yet shared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub user: String,
    pub filename: String,
    pub length: u64,
    /// Whether its bytes were sent to the upload URL.
    pub received: bool,
}

#[derive(Debug, Default)]
pub struct Index {
    pub user_by_id: HashMap<String, usize>,
    pub user_by_email: HashMap<String, usize>,
    pub rendered: Vec<RenderedUser>,
    pub conversation_by_members: HashMap<String, String>,
    pub conversations_of: HashMap<String, Vec<String>>,
    pub app_by_bot_user: HashMap<String, String>,
    pub app_by_client_id: HashMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    pub team: Team,
    pub users: Vec<User>,
    pub apps: BTreeMap<String, App>,
    pub conversations: BTreeMap<String, Conversation>,
    pub tokens: HashMap<String, Token>,
    /// The minted token of Slack's own client, per user, so minting again returns it.
    pub client_tokens: HashMap<String, String>,
    pub grants: HashMap<String, Grant>,
    pub counters: Counters,
    /// Uploads by file id, until they are completed; absent from older state files.
    #[serde(default)]
    pub uploads: HashMap<String, Upload>,
    #[serde(skip)]
    pub index: Index,
}

/// Why an operation was refused, as Slack words it.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Error(&'static str),
    MissingScope { needed: String, provided: String },
    InvalidManifest(Vec<ManifestProblem>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManifestProblem {
    pub message: String,
    pub pointer: String,
}

impl From<&'static str> for Failure {
    fn from(code: &'static str) -> Self {
        Self::Error(code)
    }
}

/// Who is calling: the user behind the token, and what the token may do.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub kind: TokenKind,
    pub app_id: Option<String>,
    pub scopes: Vec<String>,
}

impl Actor {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn require(&self, scope: &str) -> Result<(), Failure> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(Failure::MissingScope {
                needed: scope.to_owned(),
                provided: self.scopes.join(","),
            })
        }
    }

    /// A person using Slack's own client (the web view).
    pub fn client(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            kind: TokenKind::User,
            app_id: None,
            scopes: CLIENT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

pub struct NewMessage {
    pub text: Option<String>,
    pub blocks: Option<Value>,
    pub thread_ts: Option<u64>,
    pub username: Option<String>,
    pub icon_url: Option<String>,
    pub icon_emoji: Option<String>,
    pub metadata: Option<Value>,
    pub files: Vec<Value>,
}

/// An emoji name as `reactions.add` takes it: colons stripped, lower-case letters, digits and
/// `_+-'`, optionally with a `::skin-tone-N` part.
pub fn reaction_name(text: &str) -> Option<String> {
    let name = text.trim().trim_matches(':');
    let valid = !name.is_empty()
        && name.split("::").all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-'".contains(c))
        });
    valid.then(|| name.to_owned())
}

pub fn random_token(length: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

pub fn random_hex(length: usize) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect()
}

fn team_for(domain: &str) -> Team {
    let label = domain.split('.').next().unwrap_or("acme");
    let mut name: String = label.chars().take(1).flat_map(char::to_uppercase).collect();
    name.push_str(label.get(1..).unwrap_or(""));
    Team {
        id: TEAM_ID.to_owned(),
        name,
        domain: label.to_owned(),
    }
}

fn membership_key(members: &[String]) -> String {
    let mut sorted: Vec<&str> = members.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.join(",")
}

impl State {
    pub fn empty() -> Self {
        let mut state = Self {
            team: team_for("acme.example"),
            users: Vec::new(),
            apps: BTreeMap::new(),
            conversations: BTreeMap::new(),
            tokens: HashMap::new(),
            client_tokens: HashMap::new(),
            uploads: HashMap::new(),
            grants: HashMap::new(),
            counters: Counters::default(),
            index: Index::default(),
        };
        state.reindex();
        state
    }

    /// The organisation's Slack share: its people in organisation order (ids from their index),
    /// then two bot users with their apps and one deactivated person. The first Slack person is
    /// the workspace's primary owner and an admin, the second an admin.
    pub fn seeded(organisation: &Organisation, now: u64) -> Self {
        let mut state = Self::empty();
        state.team = team_for(&organisation.domain);
        let slack_people: Vec<_> = organisation.people_on(crate::KEY).collect();
        state.users.reserve(slack_people.len() + 3);
        for (rank, person) in slack_people.iter().enumerate() {
            let kind = person.on(crate::KEY).map(|m| m.kind).unwrap_or_default();
            state.users.push(User {
                id: slack_id('U', person.index as u64),
                name: person
                    .email
                    .split('@')
                    .next()
                    .unwrap_or(&person.email)
                    .to_owned(),
                real_name: person.display_name.clone(),
                display_name: person.display_name.clone(),
                first_name: person.given_name.clone(),
                last_name: person.family_name.clone(),
                email: Some(person.email.clone()),
                deleted: kind == SeedKind::Deactivated,
                is_admin: kind == SeedKind::Admin,
                is_owner: rank == 0,
                is_primary_owner: rank == 0,
                is_restricted: kind == SeedKind::Guest,
                bot: None,
                updated: now / 1_000_000,
            });
        }
        state.counters.next_user = organisation.people.len() as u64;
        let installer = state
            .users
            .first()
            .map(|u| u.id.clone())
            .unwrap_or_default();
        for (name, display) in [("pollbot", "Poll Bot"), ("deploybot", "Deploy Bot")] {
            let manifest = json!({
                "display_information": {"name": display},
                "features": {"bot_user": {"display_name": name, "always_online": true}},
                "oauth_config": {"scopes": {"bot": ["chat:write", "im:history", "im:write"]}},
            });
            let facts = ManifestFacts::read(&manifest).unwrap_or_default();
            let app_id = state.create_app(&installer, manifest, facts, now);
            let bot_scopes = state.apps[&app_id].facts.bot_scopes.clone();
            state.install(&app_id, &installer, &bot_scopes, &[]);
        }
        let former = state.next_user_id();
        state.users.push(User {
            id: former,
            name: "former.colleague".to_owned(),
            real_name: "Former Colleague".to_owned(),
            display_name: "Former Colleague".to_owned(),
            first_name: "Former".to_owned(),
            last_name: "Colleague".to_owned(),
            email: Some(format!("former.colleague@{}", organisation.domain)),
            deleted: true,
            is_admin: false,
            is_owner: false,
            is_primary_owner: false,
            is_restricted: false,
            bot: None,
            updated: now / 1_000_000,
        });
        state.reindex();
        state
    }

    /// Rebuilds every index after a restore or a bulk change.
    pub fn reindex(&mut self) {
        let mut index = Index {
            user_by_id: HashMap::with_capacity(self.users.len()),
            user_by_email: HashMap::with_capacity(self.users.len()),
            rendered: Vec::with_capacity(self.users.len()),
            ..Index::default()
        };
        for (at, user) in self.users.iter().enumerate() {
            index.user_by_id.insert(user.id.clone(), at);
            if let Some(email) = &user.email {
                index.user_by_email.insert(email.to_lowercase(), at);
            }
            index.rendered.push(user.render(&self.team.id));
        }
        for conversation in self.conversations.values() {
            index.conversation_by_members.insert(
                membership_key(&conversation.members),
                conversation.id.clone(),
            );
            for member in &conversation.members {
                index
                    .conversations_of
                    .entry(member.clone())
                    .or_default()
                    .push(conversation.id.clone());
            }
        }
        for app in self.apps.values() {
            if let Some(bot) = &app.bot_user_id {
                index.app_by_bot_user.insert(bot.clone(), app.id.clone());
            }
            index
                .app_by_client_id
                .insert(app.credentials.client_id.clone(), app.id.clone());
        }
        self.index = index;
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.index.user_by_id.get(id).map(|&at| &self.users[at])
    }

    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.index
            .user_by_email
            .get(&email.trim().to_lowercase())
            .map(|&at| &self.users[at])
    }

    pub fn user_value(&self, id: &str, with_email: bool) -> Option<Value> {
        let at = *self.index.user_by_id.get(id)?;
        Some(self.index.rendered[at].value(with_email))
    }

    /// Adds a user or replaces the one with the same id, keeping the indexes current.
    pub fn put_user(&mut self, user: User) {
        let rendered = user.render(&self.team.id);
        if let Some(old_email) = self.user(&user.id).and_then(|u| u.email.clone()) {
            self.index.user_by_email.remove(&old_email.to_lowercase());
        }
        if let Some(email) = &user.email {
            let at = self
                .index
                .user_by_id
                .get(&user.id)
                .copied()
                .unwrap_or(self.users.len());
            self.index.user_by_email.insert(email.to_lowercase(), at);
        }
        match self.index.user_by_id.get(&user.id).copied() {
            Some(at) => {
                self.users[at] = user;
                self.index.rendered[at] = rendered;
            }
            None => {
                self.index
                    .user_by_id
                    .insert(user.id.clone(), self.users.len());
                self.users.push(user);
                self.index.rendered.push(rendered);
            }
        }
    }

    pub fn next_user_id(&mut self) -> String {
        let id = slack_id('U', self.counters.next_user);
        self.counters.next_user += 1;
        id
    }

    /// A message timestamp: the wall clock, nudged so that no two are equal.
    pub fn next_ts(&mut self, now_micros: u64) -> u64 {
        let ts = now_micros.max(self.counters.last_ts + 1);
        self.counters.last_ts = ts;
        ts
    }

    pub fn next_event_id(&mut self) -> String {
        self.counters.next_event += 1;
        format!("Ev{}", &slack_id('0', self.counters.next_event)[1..])
    }

    pub fn issue_token(
        &mut self,
        kind: TokenKind,
        user_id: &str,
        app_id: Option<&str>,
        scopes: Vec<String>,
        expires_at: Option<u64>,
    ) -> String {
        let value = match kind {
            TokenKind::Bot => format!("xoxb-1-{}-{}", random_digits(12), random_token(24)),
            TokenKind::User => format!(
                "xoxp-1-{}-{}-{}",
                random_digits(12),
                random_digits(12),
                random_hex(32)
            ),
            TokenKind::Config => format!("xoxe.xoxp-1-{}", random_token(64)),
            TokenKind::Refresh => format!("xoxe-1-{}", random_token(64)),
        };
        self.tokens.insert(
            value.clone(),
            Token {
                kind,
                user_id: user_id.to_owned(),
                app_id: app_id.map(str::to_owned),
                scopes,
                revoked: false,
                expires_at,
            },
        );
        value
    }

    pub fn revoke_tokens_of_app(&mut self, app_id: &str) {
        for token in self.tokens.values_mut() {
            if token.app_id.as_deref() == Some(app_id) {
                token.revoked = true;
            }
        }
    }

    /// Registers an app; its bot user (when the manifest has one) joins the workspace.
    pub fn create_app(
        &mut self,
        creator: &str,
        manifest: Value,
        facts: ManifestFacts,
        now: u64,
    ) -> String {
        self.counters.next_app += 1;
        let app_id = slack_id('A', self.counters.next_app);
        let bot_user_id = facts
            .bot_display_name
            .clone()
            .map(|display| self.create_bot_user(&app_id, display, now));
        let credentials = Credentials {
            client_id: format!("1.{}", random_digits(13)),
            client_secret: random_hex(32),
            signing_secret: random_hex(32),
            verification_token: random_token(24),
        };
        self.index
            .app_by_client_id
            .insert(credentials.client_id.clone(), app_id.clone());
        self.apps.insert(
            app_id.clone(),
            App {
                id: app_id.clone(),
                manifest,
                facts,
                creator: creator.to_owned(),
                credentials,
                bot_user_id,
                installation: None,
                deleted: false,
            },
        );
        app_id
    }

    /// The bot user an app with `features.bot_user` brings into the workspace.
    pub fn create_bot_user(&mut self, app_id: &str, display: String, now: u64) -> String {
        self.counters.next_bot += 1;
        let bot_id = slack_id('B', self.counters.next_bot);
        let id = self.next_user_id();
        self.put_user(User {
            id: id.clone(),
            name: display.to_lowercase().replace(' ', "_"),
            real_name: display.clone(),
            display_name: display,
            first_name: String::new(),
            last_name: String::new(),
            email: None,
            deleted: false,
            is_admin: false,
            is_owner: false,
            is_primary_owner: false,
            is_restricted: false,
            bot: Some(BotIdentity {
                bot_id,
                app_id: app_id.to_owned(),
            }),
            updated: now / 1_000_000,
        });
        self.index
            .app_by_bot_user
            .insert(id.clone(), app_id.to_owned());
        id
    }

    /// Installs an app for `user_id` (or re-authorises it): the bot token, issued once per
    /// installation and widened to the granted scopes, and a user token when user scopes were
    /// granted. Returns both.
    pub fn install(
        &mut self,
        app_id: &str,
        user_id: &str,
        bot_scopes: &[String],
        user_scopes: &[String],
    ) -> (Option<String>, Option<String>) {
        let Some(app) = self.apps.get(app_id) else {
            return (None, None);
        };
        let bot_user = app.bot_user_id.clone();
        let mut installation = app.installation.clone().unwrap_or_else(|| Installation {
            installer: user_id.to_owned(),
            ..Installation::default()
        });
        let bot_token = match (&bot_user, bot_scopes.is_empty()) {
            (Some(bot_user), false) => {
                let live = installation
                    .bot_token
                    .clone()
                    .filter(|t| self.tokens.get(t).is_some_and(|t| !t.revoked));
                Some(match live {
                    Some(existing) => {
                        if let Some(token) = self.tokens.get_mut(&existing) {
                            merge_scopes(&mut token.scopes, bot_scopes);
                        }
                        existing
                    }
                    None => self.issue_token(
                        TokenKind::Bot,
                        bot_user,
                        Some(app_id),
                        bot_scopes.to_vec(),
                        None,
                    ),
                })
            }
            _ => installation.bot_token.clone(),
        };
        installation.bot_token = bot_token.clone();
        let user_token = if user_scopes.is_empty() {
            None
        } else {
            let live = installation
                .user_tokens
                .get(user_id)
                .cloned()
                .filter(|t| self.tokens.get(t).is_some_and(|t| !t.revoked));
            let token = match live {
                Some(existing) => {
                    if let Some(token) = self.tokens.get_mut(&existing) {
                        merge_scopes(&mut token.scopes, user_scopes);
                    }
                    existing
                }
                None => self.issue_token(
                    TokenKind::User,
                    user_id,
                    Some(app_id),
                    user_scopes.to_vec(),
                    None,
                ),
            };
            installation
                .user_tokens
                .insert(user_id.to_owned(), token.clone());
            Some(token)
        };
        if let Some(app) = self.apps.get_mut(app_id) {
            app.installation = Some(installation);
        }
        (bot_token, user_token)
    }

    /// Removes an app's installation: every token it holds stops working.
    pub fn uninstall(&mut self, app_id: &str) {
        self.revoke_tokens_of_app(app_id);
        if let Some(app) = self.apps.get_mut(app_id) {
            app.installation = None;
        }
    }

    /// A conversation the user may see; Slack answers `channel_not_found` for the others.
    pub fn visible_conversation(
        &self,
        user_id: &str,
        channel: &str,
    ) -> Result<&Conversation, Failure> {
        self.conversations
            .get(channel)
            .filter(|c| c.members.iter().any(|m| m == user_id))
            .ok_or(Failure::Error("channel_not_found"))
    }

    /// Opens (or finds) the DM or group DM of the caller and `others`.
    /// Returns the conversation and whether it already existed.
    pub fn open_conversation(
        &mut self,
        caller: &str,
        others: &[String],
        prevent_creation: bool,
        now_micros: u64,
    ) -> Result<(String, bool), Failure> {
        if others.is_empty() {
            return Err("not_enough_users".into());
        }
        if others.len() > MAX_OTHER_MEMBERS {
            return Err("too_many_users".into());
        }
        let mut members = vec![caller.to_owned()];
        for id in others {
            let user = self.user(id).ok_or(Failure::Error("user_not_found"))?;
            if user.deleted {
                return Err("user_disabled".into());
            }
            if !members.contains(id) {
                members.push(id.clone());
            }
        }
        let key = membership_key(&members);
        if let Some(existing) = self.index.conversation_by_members.get(&key) {
            return Ok((existing.clone(), true));
        }
        if prevent_creation {
            return Err("channel_not_found".into());
        }
        let kind = if members.len() <= 2 {
            ConversationKind::Im
        } else {
            ConversationKind::Mpim
        };
        self.counters.next_conversation += 1;
        let prefix = match kind {
            ConversationKind::Im => 'D',
            ConversationKind::Mpim => 'G',
        };
        let id = slack_id(prefix, self.counters.next_conversation);
        for member in &members {
            self.index
                .conversations_of
                .entry(member.clone())
                .or_default()
                .push(id.clone());
        }
        self.index.conversation_by_members.insert(key, id.clone());
        self.conversations.insert(
            id.clone(),
            Conversation {
                id: id.clone(),
                kind,
                members,
                creator: caller.to_owned(),
                created: now_micros / 1_000_000,
                messages: Vec::new(),
            },
        );
        Ok((id, false))
    }

    /// Where a message to `channel` goes: a conversation id, or a user id, which Slack reads
    /// as the caller's DM with that user.
    pub fn resolve_channel(
        &mut self,
        caller: &str,
        channel: &str,
        now_micros: u64,
    ) -> Result<String, Failure> {
        if self.conversations.contains_key(channel) {
            self.visible_conversation(caller, channel)?;
            return Ok(channel.to_owned());
        }
        if channel.starts_with(['U', 'W']) && self.user(channel).is_some() {
            return self
                .open_conversation(caller, &[channel.to_owned()], false, now_micros)
                .map(|(id, _)| id)
                .map_err(|_| Failure::Error("channel_not_found"));
        }
        Err("channel_not_found".into())
    }

    pub fn post_message(
        &mut self,
        actor: &Actor,
        channel: &str,
        new: NewMessage,
        now_micros: u64,
    ) -> Result<(String, u64), Failure> {
        let channel = self.resolve_channel(&actor.user_id, channel, now_micros)?;
        let text = new.text.unwrap_or_default();
        if text.trim().is_empty() && new.blocks.is_none() && new.files.is_empty() {
            return Err("no_text".into());
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err("msg_too_long".into());
        }
        let thread_ts = match new.thread_ts {
            None => None,
            Some(ts) => {
                let parent = self
                    .conversations
                    .get(&channel)
                    .and_then(|c| c.message(ts))
                    .ok_or(Failure::Error("thread_not_found"))?;
                Some(parent.thread_ts.unwrap_or(parent.ts))
            }
        };
        let customised = actor.kind == TokenKind::Bot && actor.has("chat:write.customize");
        let bot = self.user(&actor.user_id).and_then(|u| u.bot.clone());
        let ts = self.next_ts(now_micros);
        let Some(conversation) = self.conversations.get_mut(&channel) else {
            return Err("channel_not_found".into());
        };
        if let Some(parent) = thread_ts.and_then(|t| conversation.position(t)) {
            conversation.messages[parent].replies.push(ts);
        }
        conversation.messages.push(Message {
            ts,
            user: actor.user_id.clone(),
            text,
            blocks: new.blocks,
            thread_ts,
            replies: Vec::new(),
            edited: None,
            reactions: Vec::new(),
            bot,
            username: new.username.filter(|_| customised),
            icon_url: new.icon_url.filter(|_| customised),
            icon_emoji: new.icon_emoji.filter(|_| customised),
            metadata: new.metadata,
            files: new.files,
        });
        Ok((channel, ts))
    }

    /// Edits a message; returns it as it was.
    pub fn update_message(
        &mut self,
        actor: &Actor,
        channel: &str,
        ts: u64,
        text: Option<String>,
        blocks: Option<Value>,
        now_micros: u64,
    ) -> Result<(Message, u64), Failure> {
        self.visible_conversation(&actor.user_id, channel)?;
        if text.as_deref().is_none_or(|t| t.trim().is_empty()) && blocks.is_none() {
            return Err("no_text".into());
        }
        if text
            .as_deref()
            .is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS)
        {
            return Err("msg_too_long".into());
        }
        let edit_ts = self.next_ts(now_micros);
        let conversation = self
            .conversations
            .get_mut(channel)
            .ok_or(Failure::Error("channel_not_found"))?;
        let at = conversation
            .position(ts)
            .ok_or(Failure::Error("message_not_found"))?;
        let message = &mut conversation.messages[at];
        if message.user != actor.user_id {
            return Err("cant_update_message".into());
        }
        let previous = message.clone();
        if let Some(text) = text {
            message.text = text;
        }
        if blocks.is_some() {
            message.blocks = blocks;
        }
        message.edited = Some(Edited {
            user: actor.user_id.clone(),
            ts: edit_ts,
        });
        Ok((previous, edit_ts))
    }

    /// Deletes a message; returns it. Authors may delete their messages, and workspace admins
    /// anyone's with a user token.
    pub fn delete_message(
        &mut self,
        actor: &Actor,
        channel: &str,
        ts: u64,
        now_micros: u64,
    ) -> Result<(Message, u64), Failure> {
        self.visible_conversation(&actor.user_id, channel)?;
        let admin =
            actor.kind == TokenKind::User && self.user(&actor.user_id).is_some_and(|u| u.is_admin);
        let event_ts = self.next_ts(now_micros);
        let conversation = self
            .conversations
            .get_mut(channel)
            .ok_or(Failure::Error("channel_not_found"))?;
        let at = conversation
            .position(ts)
            .ok_or(Failure::Error("message_not_found"))?;
        if conversation.messages[at].user != actor.user_id && !admin {
            return Err("cant_delete_message".into());
        }
        let removed = conversation.messages.remove(at);
        if let Some(parent) = removed.thread_ts.and_then(|t| conversation.position(t)) {
            conversation.messages[parent].replies.retain(|&r| r != ts);
        }
        Ok((removed, event_ts))
    }

    /// Adds or removes the actor's reaction; returns the message's author.
    pub fn react(
        &mut self,
        actor: &Actor,
        channel: &str,
        ts: u64,
        name: &str,
        add: bool,
    ) -> Result<String, Failure> {
        self.visible_conversation(&actor.user_id, channel)?;
        let conversation = self
            .conversations
            .get_mut(channel)
            .ok_or(Failure::Error("channel_not_found"))?;
        let at = conversation
            .position(ts)
            .ok_or(Failure::Error("message_not_found"))?;
        let message = &mut conversation.messages[at];
        let existing = message.reactions.iter().position(|r| r.name == name);
        let reacted = existing.is_some_and(|r| message.reactions[r].users.contains(&actor.user_id));
        match (add, existing) {
            (true, _) if reacted => return Err("already_reacted".into()),
            (false, _) if !reacted => return Err("no_reaction".into()),
            (true, Some(r)) => message.reactions[r].users.push(actor.user_id.clone()),
            (true, None) => message.reactions.push(Reaction {
                name: name.to_owned(),
                users: vec![actor.user_id.clone()],
            }),
            (false, Some(r)) => {
                message.reactions[r].users.retain(|u| u != &actor.user_id);
                if message.reactions[r].users.is_empty() {
                    message.reactions.remove(r);
                }
            }
            (false, None) => return Err("no_reaction".into()),
        }
        Ok(message.user.clone())
    }

    pub fn message_json(&self, conversation: &Conversation, message: &Message) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("type".to_owned(), json!("message"));
        object.insert("user".to_owned(), json!(message.user));
        object.insert("text".to_owned(), json!(message.text));
        object.insert("ts".to_owned(), json!(format_ts(message.ts)));
        object.insert("team".to_owned(), json!(self.team.id));
        if let Some(blocks) = &message.blocks {
            object.insert("blocks".to_owned(), blocks.clone());
        }
        if let Some(bot) = &message.bot {
            object.insert("bot_id".to_owned(), json!(bot.bot_id));
            object.insert("app_id".to_owned(), json!(bot.app_id));
        }
        if let Some(username) = &message.username {
            object.insert("username".to_owned(), json!(username));
        }
        if let Some(metadata) = &message.metadata {
            object.insert("metadata".to_owned(), metadata.clone());
        }
        if !message.files.is_empty() {
            object.insert("subtype".to_owned(), json!("file_share"));
            object.insert("upload".to_owned(), json!(true));
            object.insert("files".to_owned(), json!(message.files));
        }
        match (&message.icon_url, &message.icon_emoji) {
            (Some(url), _) => {
                object.insert("icons".to_owned(), json!({"image_48": url}));
            }
            (None, Some(emoji)) => {
                object.insert("icons".to_owned(), json!({"emoji": emoji}));
            }
            (None, None) => {}
        }
        if let Some(thread_ts) = message.thread_ts {
            object.insert("thread_ts".to_owned(), json!(format_ts(thread_ts)));
            if let Some(parent) = conversation.message(thread_ts) {
                object.insert("parent_user_id".to_owned(), json!(parent.user));
            }
        } else if let Some(&latest) = message.replies.last() {
            let mut reply_users: Vec<&str> = Vec::new();
            for reply in message
                .replies
                .iter()
                .filter_map(|&ts| conversation.message(ts))
            {
                if !reply_users.contains(&reply.user.as_str()) {
                    reply_users.push(&reply.user);
                }
            }
            object.insert("thread_ts".to_owned(), json!(format_ts(message.ts)));
            object.insert("reply_count".to_owned(), json!(message.replies.len()));
            object.insert("reply_users_count".to_owned(), json!(reply_users.len()));
            object.insert("reply_users".to_owned(), json!(reply_users));
            object.insert("latest_reply".to_owned(), json!(format_ts(latest)));
        }
        if let Some(edited) = &message.edited {
            object.insert(
                "edited".to_owned(),
                json!({"user": edited.user, "ts": format_ts(edited.ts)}),
            );
        }
        if !message.reactions.is_empty() {
            let reactions: Vec<Value> = message
                .reactions
                .iter()
                .map(|r| json!({"name": r.name, "users": r.users, "count": r.users.len()}))
                .collect();
            object.insert("reactions".to_owned(), Value::Array(reactions));
        }
        Value::Object(object)
    }

    pub fn conversation_json(&self, conversation: &Conversation, viewer: &str) -> Value {
        let latest = conversation
            .messages
            .iter()
            .rev()
            .find(|m| m.thread_ts.is_none())
            .map(|m| self.message_json(conversation, m));
        match conversation.kind {
            ConversationKind::Im => {
                let other = conversation
                    .members
                    .iter()
                    .find(|m| *m != viewer)
                    .or(conversation.members.first())
                    .cloned()
                    .unwrap_or_default();
                let other_deleted = self.user(&other).is_some_and(|u| u.deleted);
                json!({
                    "id": conversation.id,
                    "created": conversation.created,
                    "is_archived": false,
                    "is_im": true,
                    "is_org_shared": false,
                    "context_team_id": self.team.id,
                    "updated": conversation.created * 1000,
                    "user": other,
                    "is_user_deleted": other_deleted,
                    "is_open": true,
                    "priority": 0,
                    "latest": latest,
                })
            }
            ConversationKind::Mpim => {
                let name = conversation
                    .name(&|id: &str| self.user(id).map(|u| u.name.clone()).unwrap_or_default());
                json!({
                    "id": conversation.id,
                    "name": name,
                    "name_normalized": name,
                    "is_channel": false,
                    "is_group": false,
                    "is_im": false,
                    "is_mpim": true,
                    "is_private": true,
                    "created": conversation.created,
                    "creator": conversation.creator,
                    "is_archived": false,
                    "is_general": false,
                    "unlinked": 0,
                    "is_shared": false,
                    "is_ext_shared": false,
                    "is_org_shared": false,
                    "is_pending_ext_shared": false,
                    "pending_shared": [],
                    "context_team_id": self.team.id,
                    "updated": conversation.created * 1000,
                    "parent_conversation": null,
                    "is_member": true,
                    "is_open": true,
                    "topic": {"value": "", "creator": "", "last_set": 0},
                    "purpose": {
                        "value": format!("Group messaging with: {}",
                            conversation.members.iter().map(|m| format!("@{}", self.user(m).map(|u| u.name.as_str()).unwrap_or(m))).collect::<Vec<_>>().join(" ")),
                        "creator": conversation.creator,
                        "last_set": conversation.created,
                    },
                    "num_members": conversation.members.len(),
                    "latest": latest,
                })
            }
        }
    }
}

fn merge_scopes(into: &mut Vec<String>, more: &[String]) {
    for scope in more {
        if !into.contains(scope) {
            into.push(scope.clone());
        }
    }
}

fn random_digits(length: usize) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

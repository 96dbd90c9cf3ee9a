//! Everything the simulated Google holds: the Workspace domain (Directory users and groups,
//! admin settings, domain-wide delegation), the Cloud project (service accounts and their
//! keys, the OAuth client, Pub/Sub), tokens, Chat spaces and Workspace Events subscriptions.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use switchboard_sim_kit::{Organisation, SeedKind};

use crate::KEY;
use crate::keys::{RsaKey, random_id};
use crate::wire::now_micros;

/// The seeded Cloud project.
pub const PROJECT_ID: &str = "switchboard-demo";
pub const PROJECT_NUMBER: &str = "7000000001";
/// The seeded service account the hub uses, and its numeric client id (what an admin
/// authorises for domain-wide delegation).
pub const HUB_SERVICE_ACCOUNT: &str = "switchboard-hub@switchboard-demo.iam.gserviceaccount.com";
pub const HUB_SERVICE_ACCOUNT_ID: &str = "110000000000000000001";
/// The seeded OAuth web client (user sign-in with the authorization-code flow).
pub const HUB_OAUTH_CLIENT_ID: &str = "7000000001-switchboard.apps.googleusercontent.com";
pub const HUB_OAUTH_CLIENT_SECRET: &str = "GOCSPX-switchboard-demo-secret";
/// The Workspace customer of the seeded domain (`my_customer` is an alias for it).
pub const CUSTOMER_ID: &str = "C01acme00";

pub const SCOPE_PREFIX: &str = "https://www.googleapis.com/auth/";

/// The scopes a signed-in user of Google Chat has: those of [`crate::SimPlatform::mint_token`]
/// (administrators also get [`ADMIN_SCOPES`]).
pub const USER_CHAT_SCOPES: [&str; 8] = [
    "chat.spaces",
    "chat.spaces.create",
    "chat.messages",
    "chat.messages.create",
    "chat.messages.reactions",
    "chat.memberships",
    "chat.delete",
    "cloud-platform",
];

/// What a signed-in administrator's token adds: the Directory, the Reports API's audit and the
/// Cloud console.
pub const ADMIN_SCOPES: [&str; 3] = [
    "admin.directory.user",
    "admin.directory.group",
    "admin.reports.audit.readonly",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Numeric, 21 digits, like Google's.
    pub id: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub admin: bool,
    pub suspended: bool,
    /// Deleted users stay listed with `showDeleted=true`.
    pub deleted: bool,
    /// Created by `users:createGuest`.
    pub guest: bool,
    pub created: u64,
}

impl User {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    pub fn active(&self) -> bool {
        !self.suspended && !self.deleted
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub email: String,
    pub name: String,
    /// Member keys: user ids or group ids.
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub email: String,
    /// The numeric unique id, which is also its OAuth client id.
    pub unique_id: String,
    pub keys: Vec<RsaKey>,
}

/// Who a token acts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Principal {
    /// A Workspace user (signed in, or impersonated through domain-wide delegation).
    User(String),
    /// A service account acting as itself (as the Chat app with `chat.bot`).
    ServiceAccount(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub principal: Principal,
    /// Short scope names (without [`SCOPE_PREFIX`]).
    pub scopes: Vec<String>,
    pub expires_at: u64,
    /// The service-account key the token came from: deleting the key ends the token.
    pub key_id: Option<String>,
    /// The client that obtained it (an OAuth client id, or a service account's unique id).
    pub client_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub user_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub offline: bool,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpaceType {
    Space,
    GroupChat,
    DirectMessage,
}

impl SpaceType {
    pub fn name(self) -> &'static str {
        match self {
            SpaceType::Space => "SPACE",
            SpaceType::GroupChat => "GROUP_CHAT",
            SpaceType::DirectMessage => "DIRECT_MESSAGE",
        }
    }
}

/// The Chat app's name as a member and sender: Google's `users/app`.
pub const APP_MEMBER: &str = "app";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    /// A user id, or [`APP_MEMBER`].
    pub member: String,
    pub joined: bool,
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reaction {
    pub id: String,
    pub user: String,
    pub emoji: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// `{thread id}.{message id}` as in Google's names.
    pub id: String,
    pub client_id: Option<String>,
    pub request_id: Option<String>,
    pub sender: String,
    pub text: String,
    pub thread: String,
    pub thread_reply: bool,
    pub created: u64,
    pub updated: u64,
    pub deleted: Option<u64>,
    pub reactions: Vec<Reaction>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Space {
    pub id: String,
    pub space_type: SpaceType,
    pub display_name: String,
    pub members: Vec<Membership>,
    pub messages: Vec<Message>,
    /// Thread keys given by clients, to their thread ids.
    pub thread_keys: BTreeMap<String, String>,
    pub created: u64,
    pub updated: u64,
}

impl Space {
    pub fn name(&self) -> String {
        format!("spaces/{}", self.id)
    }

    pub fn has_member(&self, member: &str) -> bool {
        self.members.iter().any(|m| m.member == member)
    }

    /// A DM between the app and one person.
    pub fn app_dm(&self) -> bool {
        self.space_type == SpaceType::DirectMessage && self.has_member(APP_MEMBER)
    }

    pub fn message(&self, id: &str) -> Option<&Message> {
        self.messages
            .iter()
            .find(|m| m.id == id || m.client_id.as_deref() == Some(id))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushConfig {
    pub endpoint: String,
    /// The OIDC token's service account and audience, when push requests are authenticated.
    pub oidc: Option<(String, Option<String>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PubsubMessage {
    pub id: String,
    pub data: String,
    pub attributes: BTreeMap<String, String>,
    pub published: u64,
}

/// A message waiting in a pull subscription, leased until `leased_until` once pulled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub ack_id: String,
    pub message: PubsubMessage,
    pub leased_until: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PubsubSubscription {
    pub name: String,
    pub topic: String,
    pub push: Option<PushConfig>,
    pub ack_deadline_seconds: u64,
    pub pending: VecDeque<Pending>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventState {
    Active,
    Suspended,
    Deleted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventSubscription {
    pub id: String,
    pub uid: String,
    pub target: String,
    pub event_types: Vec<String>,
    pub topic: String,
    pub include_resource: bool,
    /// The authorising user's id.
    pub authority: String,
    /// The client whose domain-wide delegation authorised it, if one did: revoking that
    /// delegation suspends the subscription.
    pub delegated_by: Option<String>,
    pub state: EventState,
    pub suspension_reason: Option<String>,
    pub created: u64,
    pub updated: u64,
    pub expires: u64,
    /// The expiration reminders already sent (12 h, 1 h before).
    pub reminded: Vec<u64>,
    pub etag: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub domain: String,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub service_accounts: Vec<ServiceAccount>,
    /// Domain-wide delegation: client id to the scopes (full URLs) an admin authorised.
    pub delegations: BTreeMap<String, Vec<String>>,
    /// Whether an admin configured the Chat app (so that it can DM everyone of the domain).
    pub chat_app: Option<String>,
    pub auto_accept_invitations: bool,
    /// The simulator's own key for push tokens, as Google's are published at its certs URLs.
    pub signing_key: RsaKey,
    pub access_tokens: HashMap<String, Grant>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub codes: HashMap<String, CodeGrant>,
    pub spaces: Vec<Space>,
    pub topics: BTreeMap<String, Topic>,
    pub pubsub_subscriptions: BTreeMap<String, PubsubSubscription>,
    pub event_subscriptions: Vec<EventSubscription>,
    /// Operations of the Workspace Events API, all done when created.
    pub operations: BTreeMap<String, serde_json::Value>,
    pub next_user: u64,
    /// The Reports API's admin activities, oldest first, and its notification channels.
    #[serde(default)]
    pub activities: Vec<crate::reports::Activity>,
    #[serde(default)]
    pub report_channels: Vec<crate::reports::Channel>,
}

impl State {
    pub fn seeded(organisation: &Organisation) -> Self {
        let created = now_micros();
        let domain = if organisation.domain.is_empty() {
            "acme.example".to_owned()
        } else {
            organisation.domain.clone()
        };
        let users: Vec<User> = organisation
            .people_on(KEY)
            .enumerate()
            .map(|(rank, person)| {
                let kind = person.on(KEY).map(|m| m.kind).unwrap_or_default();
                User {
                    id: user_id(rank as u64),
                    email: person.email.clone(),
                    given_name: person.given_name.clone(),
                    family_name: person.family_name.clone(),
                    admin: kind == SeedKind::Admin,
                    suspended: kind == SeedKind::Deactivated,
                    deleted: false,
                    guest: kind == SeedKind::Guest,
                    created,
                }
            })
            .collect();
        let groups = seed_groups(&users, &domain);
        Self {
            next_user: users.len() as u64,
            domain,
            users,
            groups,
            service_accounts: vec![ServiceAccount {
                email: HUB_SERVICE_ACCOUNT.to_owned(),
                unique_id: HUB_SERVICE_ACCOUNT_ID.to_owned(),
                keys: Vec::new(),
            }],
            delegations: BTreeMap::new(),
            chat_app: None,
            auto_accept_invitations: true,
            signing_key: RsaKey::generate(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            codes: HashMap::new(),
            spaces: Vec::new(),
            topics: BTreeMap::new(),
            pubsub_subscriptions: BTreeMap::new(),
            event_subscriptions: Vec::new(),
            operations: BTreeMap::new(),
            activities: Vec::new(),
            report_channels: Vec::new(),
        }
    }

    /// A user by id or primary e-mail (case-insensitive), deleted ones excluded.
    pub fn user(&self, key: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| !u.deleted && (u.id == key || u.email.eq_ignore_ascii_case(key)))
    }

    pub fn user_mut(&mut self, key: &str) -> Option<&mut User> {
        self.users
            .iter_mut()
            .find(|u| !u.deleted && (u.id == key || u.email.eq_ignore_ascii_case(key)))
    }

    pub fn space(&self, id: &str) -> Option<&Space> {
        self.spaces.iter().find(|s| s.id == id)
    }

    pub fn space_mut(&mut self, id: &str) -> Option<&mut Space> {
        self.spaces.iter_mut().find(|s| s.id == id)
    }

    pub fn service_account(&self, email: &str) -> Option<&ServiceAccount> {
        self.service_accounts
            .iter()
            .find(|sa| sa.email.eq_ignore_ascii_case(email) || sa.unique_id == email)
    }

    /// The service account whose key has this id, and the key.
    pub fn key(&self, key_id: &str) -> Option<(&ServiceAccount, &RsaKey)> {
        self.service_accounts.iter().find_map(|sa| {
            sa.keys
                .iter()
                .find(|key| key.id == key_id)
                .map(|key| (sa, key))
        })
    }

    /// Adds a Directory user, as an admin creating an account does.
    pub fn add_user(&mut self, email: &str, given: &str, family: &str, guest: bool) -> &User {
        let id = user_id(self.next_user);
        self.next_user += 1;
        self.users.push(User {
            id,
            email: email.to_lowercase(),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            admin: false,
            suspended: false,
            deleted: false,
            guest,
            created: now_micros(),
        });
        self.users.last().expect("just pushed")
    }

    pub fn new_space(&mut self, space_type: SpaceType, display_name: String) -> &mut Space {
        let now = now_micros();
        self.spaces.push(Space {
            id: format!("AAAA{}", random_id(7)),
            space_type,
            display_name,
            members: Vec::new(),
            messages: Vec::new(),
            thread_keys: BTreeMap::new(),
            created: now,
            updated: now,
        });
        self.spaces.last_mut().expect("just pushed")
    }
}

/// The `rank`th user's id: 21 digits, like Google's, and stable for a seeded organisation.
fn user_id(rank: u64) -> String {
    let mixed = rank
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        .wrapping_add(rank);
    format!("1{:011}{:09}", mixed % 100_000_000_000, rank)
}

/// Three departmental groups (people by index modulo 3) and `all-staff`, whose members are the
/// three groups: derived membership reaches everyone through it; and `switchboard-users`, with
/// `switchboard-pilots` nested in it, both empty, for Directory Sync.
fn seed_groups(users: &[User], domain: &str) -> Vec<Group> {
    let departments = ["sales", "support", "engineering"];
    let mut groups: Vec<Group> = departments
        .iter()
        .enumerate()
        .map(|(index, name)| Group {
            id: format!("0{index}group{}", &user_id(index as u64)[..8]),
            email: format!("{name}@{domain}"),
            name: format!("{}{}", name[..1].to_uppercase(), &name[1..]),
            members: users
                .iter()
                .enumerate()
                .filter(|(rank, _)| rank % departments.len() == index)
                .map(|(_, user)| user.id.clone())
                .collect(),
        })
        .collect();
    groups.push(Group {
        id: format!("03group{}", &user_id(3)[..8]),
        email: format!("all-staff@{domain}"),
        name: "All staff".to_owned(),
        members: groups.iter().map(|group| group.id.clone()).collect(),
    });
    // For Directory Sync: an empty group with another empty one nested in it.
    let pilots = format!("05group{}", &user_id(5)[..8]);
    groups.push(Group {
        id: format!("04group{}", &user_id(4)[..8]),
        email: format!("switchboard-users@{domain}"),
        name: "Switchboard users".to_owned(),
        members: vec![pilots.clone()],
    });
    groups.push(Group {
        id: pilots,
        email: format!("switchboard-pilots@{domain}"),
        name: "Switchboard pilots".to_owned(),
        members: Vec::new(),
    });
    groups
}

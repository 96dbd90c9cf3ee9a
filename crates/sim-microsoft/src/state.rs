//! Everything the simulated Microsoft cloud remembers: two tenants (the customer's, seeded from
//! the organisation, and the hub's interop tenant), their directories, app registrations and
//! consents, issued tokens, chats with their messages, and change-notification subscriptions.
//! All of it is plain serde data, so `save`/`restore` are one JSON document.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use switchboard_sim_kit::{Organisation, SeedKind};

use crate::odata::{Field, Filterable, iso, now_ms};

/// The customer's tenant id (a fixed GUID so tests and the hub's configuration can name it).
pub const CUSTOMER_TENANT_ID: &str = "5b000000-c057-4000-8000-000000000001";
/// The interop tenant: the hub's own directory, whose users it invites as guests.
pub const INTEROP_TENANT_ID: &str = "5b000000-c057-4000-8000-000000000002";
pub const INTEROP_DOMAIN: &str = "switchboard-interop.example";
/// The hub's app registration, multi-tenant, homed in the interop tenant.
pub const HUB_APP_ID: &str = "5b000000-a990-4000-8000-000000000001";
pub const HUB_APP_SECRET: &str = "sim~hub.app-secret_0nly-valid-in-the-simulator";
/// Microsoft Teams' own client id: the app minted user tokens are issued to.
pub const TEAMS_CLIENT_ID: &str = "1fec8e78-bce4-4aaf-ab1b-5451cc387264";
/// Every seeded account signs in with this password (the resource-owner password grant).
pub const SEEDED_PASSWORD: &str = "Simulated-Passw0rd!";
/// Microsoft 365 E3's SKU id, the licence seeded members hold.
pub const E3_SKU_ID: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";

/// Scopes a signed-in user of the Teams client effectively holds for chats.
pub const TEAMS_CLIENT_SCOPES: [&str; 8] = [
    "User.Read",
    "User.ReadBasic.All",
    "Chat.ReadWrite",
    "ChatMessage.Send",
    "Chat.Create",
    "ChatMember.ReadWrite",
    "Team.ReadBasic.All",
    "TeamMember.Read.All",
];

/// The hub app's statically configured delegated permissions (what `.default` means).
pub const HUB_DELEGATED: [&str; 9] = [
    "User.Read",
    "User.ReadBasic.All",
    "Chat.ReadWrite",
    "ChatMessage.Send",
    "Chat.Create",
    "ChatMember.ReadWrite",
    "Team.ReadBasic.All",
    "TeamMember.Read.All",
    "offline_access",
];

/// The hub app's application permissions, granted in a tenant by its admin's consent.
pub const HUB_APPLICATION: [&str; 8] = [
    "User.ReadWrite.All",
    "Group.Read.All",
    "User.Invite.All",
    "Chat.Create",
    "Chat.Read.All",
    "ChatMember.Read.All",
    "TeamMember.Read.All",
    "Team.ReadBasic.All",
];

/// Delegated permissions only an administrator may consent to.
pub const ADMIN_ONLY_DELEGATED: [&str; 10] = [
    "User.Read.All",
    "User.ReadWrite.All",
    "User.Invite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Chat.Read.All",
    "TeamMember.Read.All",
    "GroupMember.Read.All",
];

/// Deterministic object ids: a kind in the first group, the index in the last.
pub fn guid(kind: u32, index: u64) -> String {
    format!("5b{kind:06x}-0000-4000-8000-{index:012x}")
}

pub const KIND_USER: u32 = 0x0001;
pub const KIND_GROUP: u32 = 0x0002;
pub const KIND_SERVICE: u32 = 0x0003;
pub const KIND_INTEROP_ADMIN: u32 = 0x0004;
pub const KIND_DIRECTORY_GROUP: u32 = 0x0005;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub upn: String,
    pub mail: Option<String>,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub user_type: String,
    pub account_enabled: bool,
    pub proxy_addresses: Vec<String>,
    pub other_mails: Vec<String>,
    pub licensed: bool,
    pub creation_type: Option<String>,
    pub external_user_state: Option<String>,
    pub external_state_changed_ms: Option<u64>,
    /// For guests: the tenant and object id of the identity they sign in with.
    pub home: Option<(String, String)>,
    pub password: Option<String>,
    pub admin: bool,
    pub created_ms: u64,
    pub deleted_ms: Option<u64>,
    /// The tenant's change sequence when this user last changed (for delta queries).
    pub changed_seq: u64,
    pub person_index: Option<usize>,
}

impl User {
    pub fn is_guest(&self) -> bool {
        self.user_type == "Guest"
    }

    pub fn active(&self) -> bool {
        self.deleted_ms.is_none()
    }

    /// Whether `address` is one of this user's sign-in names or e-mail addresses.
    pub fn answers_to(&self, address: &str) -> bool {
        self.upn.eq_ignore_ascii_case(address)
            || self
                .mail
                .as_deref()
                .is_some_and(|mail| mail.eq_ignore_ascii_case(address))
            || self
                .other_mails
                .iter()
                .any(|mail| mail.eq_ignore_ascii_case(address))
            || self.proxy_addresses.iter().any(|proxy| {
                proxy
                    .split_once(':')
                    .is_some_and(|(_, mail)| mail.eq_ignore_ascii_case(address))
            })
    }
}

impl Filterable for User {
    fn field(&self, name: &str) -> Field<'_> {
        match name.to_ascii_lowercase().as_str() {
            "id" => Field::Text(Some(&self.id)),
            "userprincipalname" => Field::Text(Some(&self.upn)),
            "mail" => Field::Text(self.mail.as_deref()),
            "displayname" => Field::Text(Some(&self.display_name)),
            "givenname" => Field::Text(self.given_name.as_deref()),
            "surname" => Field::Text(self.surname.as_deref()),
            "jobtitle" => Field::Text(self.job_title.as_deref()),
            "department" => Field::Text(self.department.as_deref()),
            "usertype" => Field::Text(Some(&self.user_type)),
            "creationtype" => Field::Text(self.creation_type.as_deref()),
            "externaluserstate" => Field::Text(self.external_user_state.as_deref()),
            "accountenabled" => Field::Bool(self.account_enabled),
            "othermails" => Field::List(self.other_mails.iter().map(String::as_str).collect()),
            "proxyaddresses" => {
                Field::List(self.proxy_addresses.iter().map(String::as_str).collect())
            }
            _ => Field::Unsupported,
        }
    }
}

/// What kind of group Entra holds: a team's Microsoft 365 group, a Microsoft 365 group without
/// a team, a security group, or a dynamic group whose members follow a rule (read-only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupKind {
    #[default]
    Team,
    Microsoft365,
    Security,
    Dynamic,
}

/// A member added to or removed from a group, stamped with the tenant's change sequence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipChange {
    pub seq: u64,
    pub group_id: String,
    pub member_id: String,
    pub added: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub mail_nickname: String,
    pub description: String,
    /// Direct members: user ids, and group ids for nested groups. A dynamic group's are
    /// worked out from its rule instead (see [`Tenant::direct_members`]).
    pub members: Vec<String>,
    pub owners: Vec<String>,
    pub created_ms: u64,
    #[serde(default)]
    pub kind: GroupKind,
}

impl Group {
    pub fn is_team(&self) -> bool {
        self.kind == GroupKind::Team
    }

    pub fn group_types(&self) -> Vec<&'static str> {
        match self.kind {
            GroupKind::Team | GroupKind::Microsoft365 => vec!["Unified"],
            GroupKind::Security => Vec::new(),
            GroupKind::Dynamic => vec!["DynamicMembership"],
        }
    }

    /// A dynamic group's rule: every enabled member (not guest) of the tenant.
    pub fn membership_rule(&self) -> Option<&'static str> {
        (self.kind == GroupKind::Dynamic)
            .then_some(r#"(user.accountEnabled -eq true) and (user.userType -eq "Member")"#)
    }
}

impl Filterable for Group {
    fn field(&self, name: &str) -> Field<'_> {
        match name.to_ascii_lowercase().as_str() {
            "id" => Field::Text(Some(&self.id)),
            "displayname" => Field::Text(Some(&self.display_name)),
            "mailnickname" => Field::Text(Some(&self.mail_nickname)),
            "grouptypes" => Field::List(self.group_types()),
            "resourceprovisioningoptions" => Field::List(if self.is_team() {
                vec!["Team"]
            } else {
                Vec::new()
            }),
            "securityenabled" => Field::Bool(!matches!(
                self.kind,
                GroupKind::Team | GroupKind::Microsoft365
            )),
            _ => Field::Unsupported,
        }
    }
}

/// An app's presence in a tenant, created by admin consent: the roles and delegated scopes
/// granted there for everyone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServicePrincipal {
    pub app_roles: Vec<String>,
    pub admin_scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub domain: String,
    pub display_name: String,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub service_principals: BTreeMap<String, ServicePrincipal>,
    /// `client id` → `user id` → scopes that user consented to.
    pub user_consents: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    pub change_seq: u64,
    /// Every change to a group's direct members, for `/groups/delta`.
    #[serde(default)]
    pub membership_log: Vec<MembershipChange>,
    #[serde(skip)]
    by_id: HashMap<String, usize>,
    #[serde(skip)]
    by_upn: HashMap<String, usize>,
}

impl Tenant {
    pub fn new(id: &str, domain: &str, display_name: &str) -> Self {
        Self {
            id: id.to_owned(),
            domain: domain.to_owned(),
            display_name: display_name.to_owned(),
            ..Self::default()
        }
    }

    pub fn reindex(&mut self) {
        self.by_id = self
            .users
            .iter()
            .enumerate()
            .map(|(index, user)| (user.id.clone(), index))
            .collect();
        self.by_upn = self
            .users
            .iter()
            .enumerate()
            .map(|(index, user)| (user.upn.to_ascii_lowercase(), index))
            .collect();
    }

    /// Adds a user, stamping it as a change.
    pub fn add_user(&mut self, mut user: User) -> usize {
        self.change_seq += 1;
        user.changed_seq = self.change_seq;
        let index = self.users.len();
        self.by_id.insert(user.id.clone(), index);
        self.by_upn.insert(user.upn.to_ascii_lowercase(), index);
        self.users.push(user);
        index
    }

    pub fn touch(&mut self, index: usize) {
        self.change_seq += 1;
        if let Some(user) = self.users.get_mut(index) {
            user.changed_seq = self.change_seq;
        }
    }

    /// A live user by object id or user principal name, as `/users/{id|upn}` resolves them.
    pub fn user_index(&self, key: &str) -> Option<usize> {
        let index = self
            .by_id
            .get(key)
            .or_else(|| self.by_upn.get(&key.to_ascii_lowercase()))
            .copied()?;
        self.users[index].active().then_some(index)
    }

    pub fn user(&self, key: &str) -> Option<&User> {
        self.user_index(key).map(|index| &self.users[index])
    }

    /// A live user who signs in as `address` here: a member by any of their addresses, or a
    /// guest by their home identity's.
    pub fn sign_in_index(
        &self,
        address: &str,
        home_users: &dyn Fn(&str) -> Option<String>,
    ) -> Option<usize> {
        if let Some(index) = self.user_index(address) {
            return Some(index);
        }
        if let Some(index) = self
            .users
            .iter()
            .position(|user| user.active() && !user.is_guest() && user.answers_to(address))
        {
            return Some(index);
        }
        let home_id = home_users(address)?;
        self.users.iter().position(|user| {
            user.active() && user.home.as_ref().is_some_and(|(_, id)| *id == home_id)
        })
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|group| group.id == id)
    }

    /// Adds or removes a direct member of a group that is not dynamic, logged for delta
    /// queries; answers whether anything changed.
    pub fn change_membership(&mut self, group_id: &str, member_id: &str, added: bool) -> bool {
        let Some(group) = self.groups.iter_mut().find(|group| group.id == group_id) else {
            return false;
        };
        let present = group.members.iter().any(|member| member == member_id);
        if present == added {
            return false;
        }
        if added {
            group.members.push(member_id.to_owned());
        } else {
            group.members.retain(|member| member != member_id);
            group.owners.retain(|owner| owner != member_id);
        }
        self.change_seq += 1;
        self.membership_log.push(MembershipChange {
            seq: self.change_seq,
            group_id: group_id.to_owned(),
            member_id: member_id.to_owned(),
            added,
        });
        true
    }

    /// A group's direct members (users and nested groups), a dynamic group's by its rule.
    pub fn direct_members<'a>(&'a self, group: &'a Group) -> Vec<&'a str> {
        if group.kind != GroupKind::Dynamic {
            return group.members.iter().map(String::as_str).collect();
        }
        self.users
            .iter()
            .filter(|user| {
                user.active()
                    && user.account_enabled
                    && !user.is_guest()
                    && user.person_index.is_some()
            })
            .map(|user| user.id.as_str())
            .collect()
    }

    /// Everyone in a group and the groups nested in it, each once (Graph's
    /// `transitiveMembers`): in the order met, a nested group's members after the group's own.
    /// Borrowed, not copied: a large group is listed again for each page asked for.
    pub fn transitive_members<'a>(&'a self, group: &'a Group) -> Vec<&'a str> {
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut found = Vec::new();
        let mut pending = vec![group];
        seen.insert(group.id.as_str());
        while let Some(group) = pending.pop() {
            for member in self.direct_members(group) {
                if !seen.insert(member) {
                    continue;
                }
                // Most members are users, found by id at once; only the others are looked for
                // among the groups, which are many (a team's group each).
                if self.user_index(member).is_none()
                    && let Some(nested) = self.group(member)
                {
                    pending.push(nested);
                }
                found.push(member);
            }
        }
        found
    }

    /// Scopes `user` may hold for `client_id` without being asked again.
    pub fn consented(&self, client_id: &str, user_id: &str) -> Vec<String> {
        let mut scopes = self
            .service_principals
            .get(client_id)
            .map(|sp| sp.admin_scopes.clone())
            .unwrap_or_default();
        if let Some(own) = self
            .user_consents
            .get(client_id)
            .and_then(|users| users.get(user_id))
        {
            scopes.extend(own.iter().cloned());
        }
        scopes
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct App {
    pub client_id: String,
    pub display_name: String,
    /// None for public clients.
    pub secret: Option<String>,
    pub home_tenant: String,
    /// Empty: any `http(s)` redirect URI is accepted (see the docs).
    pub redirect_uris: Vec<String>,
    pub delegated: Vec<String>,
    pub application: Vec<String>,
}

/// What an access token stands for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccessGrant {
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub app_id: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub tenant_id: String,
    pub user_id: String,
    pub app_id: String,
    pub scopes: Vec<String>,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthCode {
    pub tenant_id: String,
    pub user_id: String,
    pub app_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub expires_ms: u64,
    pub redeemed: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatMember {
    pub user_id: String,
    pub roles: Vec<String>,
    pub added_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reaction {
    pub reaction_type: String,
    pub user_id: String,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub from: String,
    pub content_type: String,
    pub content: String,
    pub mentions: Vec<serde_json::Value>,
    /// Files and cards sent with the message, as the sender described them.
    #[serde(default)]
    pub attachments: Vec<serde_json::Value>,
    pub reactions: Vec<Reaction>,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub edited_ms: Option<u64>,
    pub deleted_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Chat {
    pub id: String,
    pub tenant_id: String,
    pub chat_type: String,
    pub topic: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub members: Vec<ChatMember>,
    pub messages: Vec<Message>,
}

impl Chat {
    pub fn has_member(&self, user_id: &str) -> bool {
        self.members.iter().any(|member| member.user_id == user_id)
    }
}

/// What a subscription watches, resolved from its `resource` when it was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Watch {
    AllChatMessages,
    UserChatMessages(String),
    ChatMessages(String),
    Users,
    /// Every group of the tenant (`/groups`).
    Groups,
    Group(String),
    TeamMembers(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub app_id: String,
    pub creator_id: Option<String>,
    pub resource: String,
    pub watch: Watch,
    pub change_types: Vec<String>,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expiration_ms: u64,
    pub include_resource_data: bool,
    pub latest_tls: String,
    /// When the authorisation behind the subscription runs out; notifications stop then
    /// until the subscription is reauthorised.
    pub auth_expires_ms: u64,
    pub reauthorization_sent: bool,
    pub missed: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub tenants: Vec<Tenant>,
    pub apps: Vec<App>,
    pub access_tokens: HashMap<String, AccessGrant>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub codes: HashMap<String, AuthCode>,
    pub chats: Vec<Chat>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub token_lifetime_secs: u64,
    pub last_message_ms: u64,
    #[serde(skip)]
    chat_index: HashMap<String, usize>,
}

pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3_900;

impl State {
    /// The state for `organisation`: its Teams people in the customer tenant, one Microsoft 365
    /// group with a team per seeded team, the hub's service user, and the interop tenant.
    pub fn seeded(organisation: &Organisation) -> Self {
        let created_ms = now_ms();
        let domain = if organisation.domain.is_empty() {
            "acme.example".to_owned()
        } else {
            organisation.domain.clone()
        };
        let company = domain
            .split('.')
            .next()
            .map(|name| {
                let mut chars = name.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let mut customer = Tenant::new(CUSTOMER_TENANT_ID, &domain, &company);
        let teams = organisation.people_on(crate::KEY).count();
        customer.users.reserve(teams + 1);
        let mut groups: Vec<Group> = organisation
            .teams_on(crate::KEY)
            .iter()
            .map(|team| Group {
                id: guid(KIND_GROUP, team.index as u64),
                display_name: team.name.clone(),
                mail_nickname: team.name.replace(' ', ""),
                description: format!("{} team", team.name),
                members: Vec::new(),
                owners: Vec::new(),
                created_ms,
                kind: GroupKind::Team,
            })
            .collect();
        for person in organisation.people_on(crate::KEY) {
            let index = person.index;
            let (kind, team) = person
                .on(crate::KEY)
                .map_or((SeedKind::Member, None), |m| (m.kind, m.team));
            let id = guid(KIND_USER, index as u64);
            let mail = if index % 7 == 0 {
                format!(
                    "{}.{}.{index}@{domain}",
                    person.given_name, person.family_name
                )
            } else {
                person.email.clone()
            };
            let mut proxy_addresses = vec![format!("SMTP:{mail}")];
            if index % 6 == 3 {
                proxy_addresses.push(format!(
                    "smtp:{}{index}@legacy.{domain}",
                    person.given_name.to_lowercase()
                ));
            }
            let other_mails = if index % 11 == 2 {
                vec![format!(
                    "{}.{}.{index}@personal.example",
                    person.given_name.to_lowercase(),
                    person.family_name.to_lowercase()
                )]
            } else {
                Vec::new()
            };
            let department = team
                .and_then(|team| organisation.teams_on(crate::KEY).get(team))
                .map(|team| {
                    team.name
                        .rsplit_once(' ')
                        .map_or(team.name.clone(), |(name, _)| name.to_owned())
                });
            if let Some(group) = team.and_then(|team| groups.get_mut(team)) {
                if group.owners.is_empty() {
                    group.owners.push(id.clone());
                }
                group.members.push(id.clone());
            }
            customer.users.push(User {
                id,
                upn: person.email.clone(),
                mail: Some(mail),
                display_name: person.display_name.clone(),
                given_name: Some(person.given_name.clone()),
                surname: Some(person.family_name.clone()),
                job_title: Some("Employee".to_owned()),
                department,
                user_type: if kind == SeedKind::Guest {
                    "Guest"
                } else {
                    "Member"
                }
                .to_owned(),
                account_enabled: kind != SeedKind::Deactivated,
                proxy_addresses,
                other_mails,
                licensed: true,
                password: Some(SEEDED_PASSWORD.to_owned()),
                created_ms,
                changed_seq: 1,
                admin: kind == SeedKind::Admin,
                person_index: Some(index),
                ..User::default()
            });
        }
        let service_upn = format!("switchboard.service@{domain}");
        customer.users.push(User {
            id: guid(KIND_SERVICE, 0),
            upn: service_upn.clone(),
            mail: Some(service_upn.clone()),
            display_name: "Switchboard Service".to_owned(),
            given_name: Some("Switchboard".to_owned()),
            surname: Some("Service".to_owned()),
            job_title: Some("Service account".to_owned()),
            user_type: "Member".to_owned(),
            account_enabled: true,
            proxy_addresses: vec![format!("SMTP:{service_upn}")],
            licensed: true,
            password: Some(SEEDED_PASSWORD.to_owned()),
            admin: true,
            created_ms,
            changed_seq: 1,
            ..User::default()
        });
        groups.extend(directory_groups(&customer.users, created_ms));
        customer.groups = std::mem::take(&mut groups);
        customer.change_seq = 1;
        customer.service_principals.insert(
            TEAMS_CLIENT_ID.to_owned(),
            ServicePrincipal {
                app_roles: Vec::new(),
                admin_scopes: TEAMS_CLIENT_SCOPES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            },
        );
        customer.reindex();

        let mut interop = Tenant::new(INTEROP_TENANT_ID, INTEROP_DOMAIN, "Switchboard Interop");
        let admin_upn = format!("admin@{INTEROP_DOMAIN}");
        interop.users.push(User {
            id: guid(KIND_INTEROP_ADMIN, 0),
            upn: admin_upn.clone(),
            mail: Some(admin_upn.clone()),
            display_name: "Interop Administrator".to_owned(),
            user_type: "Member".to_owned(),
            account_enabled: true,
            proxy_addresses: vec![format!("SMTP:{admin_upn}")],
            password: Some(SEEDED_PASSWORD.to_owned()),
            admin: true,
            created_ms,
            changed_seq: 1,
            ..User::default()
        });
        interop.change_seq = 1;
        interop.service_principals.insert(
            HUB_APP_ID.to_owned(),
            ServicePrincipal {
                app_roles: HUB_APPLICATION.iter().map(|s| (*s).to_owned()).collect(),
                admin_scopes: HUB_DELEGATED.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
        interop.reindex();

        let mut state = Self {
            tenants: vec![customer, interop],
            apps: vec![
                App {
                    client_id: HUB_APP_ID.to_owned(),
                    display_name: "Switchboard".to_owned(),
                    secret: Some(HUB_APP_SECRET.to_owned()),
                    home_tenant: INTEROP_TENANT_ID.to_owned(),
                    redirect_uris: Vec::new(),
                    delegated: HUB_DELEGATED.iter().map(|s| (*s).to_owned()).collect(),
                    application: HUB_APPLICATION.iter().map(|s| (*s).to_owned()).collect(),
                },
                App {
                    client_id: TEAMS_CLIENT_ID.to_owned(),
                    display_name: "Microsoft Teams".to_owned(),
                    secret: None,
                    home_tenant: String::new(),
                    redirect_uris: Vec::new(),
                    delegated: TEAMS_CLIENT_SCOPES
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect(),
                    application: Vec::new(),
                },
            ],
            token_lifetime_secs: DEFAULT_TOKEN_LIFETIME_SECS,
            ..Self::default()
        };
        state.reindex();
        state
    }

    pub fn reindex(&mut self) {
        for tenant in &mut self.tenants {
            tenant.reindex();
        }
        self.chat_index = self
            .chats
            .iter()
            .enumerate()
            .map(|(index, chat)| (chat.id.clone(), index))
            .collect();
    }

    /// A tenant by id or verified domain, as `/login/{tenant}` names it.
    pub fn tenant_index(&self, key: &str) -> Option<usize> {
        self.tenants.iter().position(|tenant| {
            tenant.id.eq_ignore_ascii_case(key) || tenant.domain.eq_ignore_ascii_case(key)
        })
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenant_index(id).map(|index| &self.tenants[index])
    }

    pub fn tenant_mut(&mut self, id: &str) -> Option<&mut Tenant> {
        let index = self.tenant_index(id)?;
        Some(&mut self.tenants[index])
    }

    pub fn customer(&self) -> &Tenant {
        &self.tenants[0]
    }

    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps.iter().find(|app| app.client_id == client_id)
    }

    /// The object id of the home identity that signs in as `address`, in any tenant
    /// other than `except` (guests sign in to a resource tenant with their home account).
    pub fn home_identity(&self, address: &str, except: &str) -> Option<String> {
        self.tenants
            .iter()
            .filter(|tenant| tenant.id != except)
            .find_map(|tenant| {
                tenant
                    .users
                    .iter()
                    .find(|user| user.active() && !user.is_guest() && user.answers_to(address))
                    .map(|user| user.id.clone())
            })
    }

    /// Resolves a sign-in name in `tenant_id`, including guests by their home account.
    pub fn sign_in(&self, tenant_id: &str, address: &str) -> Option<usize> {
        let tenant = self.tenant(tenant_id)?;
        tenant.sign_in_index(address, &|address| self.home_identity(address, &tenant.id))
    }

    /// The user's password, which for guests lives with their home account.
    pub fn password_of(&self, tenant_id: &str, index: usize) -> Option<String> {
        let user = self.tenant(tenant_id)?.users.get(index)?;
        match &user.home {
            Some((home_tenant, home_id)) => {
                self.tenant(home_tenant)?.user(home_id)?.password.clone()
            }
            None => user.password.clone(),
        }
    }

    /// A guest's first sign-in redeems their invitation.
    pub fn redeem(&mut self, tenant_id: &str, index: usize) -> bool {
        let Some(tenant) = self.tenant_mut(tenant_id) else {
            return false;
        };
        let pending = tenant.users.get(index).is_some_and(|user| {
            user.is_guest() && user.external_user_state.as_deref() == Some("PendingAcceptance")
        });
        if pending {
            let now = now_ms();
            if let Some(user) = tenant.users.get_mut(index) {
                user.external_user_state = Some("Accepted".to_owned());
                user.external_state_changed_ms = Some(now);
            }
            tenant.touch(index);
        }
        pending
    }

    pub fn chat_index(&self, id: &str) -> Option<usize> {
        self.chat_index.get(id).copied()
    }

    pub fn add_chat(&mut self, chat: Chat) -> usize {
        let index = self.chats.len();
        self.chat_index.insert(chat.id.clone(), index);
        self.chats.push(chat);
        index
    }

    /// A new message id: Graph's are creation times in epoch milliseconds, unique per chat;
    /// these are unique across the simulator.
    pub fn next_message_ms(&mut self) -> u64 {
        let now = now_ms().max(self.last_message_ms + 1);
        self.last_message_ms = now;
        now
    }

    /// Forgets tokens and codes past their expiry.
    pub fn prune(&mut self, now: u64) {
        self.access_tokens.retain(|_, grant| grant.expires_ms > now);
        self.refresh_tokens
            .retain(|_, grant| grant.expires_ms > now);
        self.codes.retain(|_, code| code.expires_ms + 600_000 > now);
    }

    pub fn display_name(&self, tenant_id: &str, user_id: &str) -> Option<String> {
        self.tenant(tenant_id)?
            .users
            .iter()
            .find(|user| user.id == user_id)
            .map(|user| user.display_name.clone())
    }
}

/// A timestamp for JSON, or null.
pub fn iso_opt(ms: Option<u64>) -> serde_json::Value {
    ms.map_or(serde_json::Value::Null, |ms| {
        serde_json::Value::String(iso(ms))
    })
}

/// The groups an admin chooses for Directory Sync, beside the teams: "Switchboard users"
/// (security) with "Switchboard pilots" (security, empty) nested in it, "All employees"
/// (dynamic: every enabled member) and "Leadership" (Microsoft 365, no team: the admins).
/// Their ids are fixed so tests can name them.
fn directory_groups(users: &[User], created_ms: u64) -> Vec<Group> {
    let group = |index: u64, name: &str, kind: GroupKind, members: Vec<String>| Group {
        id: guid(KIND_DIRECTORY_GROUP, index),
        display_name: name.to_owned(),
        mail_nickname: name.replace(' ', ""),
        description: format!("{name} ({kind:?} group)"),
        members,
        owners: Vec::new(),
        created_ms,
        kind,
    };
    vec![
        group(
            0,
            "Switchboard users",
            GroupKind::Security,
            vec![guid(KIND_DIRECTORY_GROUP, 1)],
        ),
        group(1, "Switchboard pilots", GroupKind::Security, Vec::new()),
        group(2, "All employees", GroupKind::Dynamic, Vec::new()),
        group(
            3,
            "Leadership",
            GroupKind::Microsoft365,
            users
                .iter()
                .filter(|user| user.admin && user.person_index.is_some())
                .map(|user| user.id.clone())
                .collect(),
        ),
    ]
}

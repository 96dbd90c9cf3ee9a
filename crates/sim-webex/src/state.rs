//! Everything the simulated Webex holds: the organisation's people (with its service user, the
//! Service App's machine account and the guests it issues), teams, rooms with their memberships
//! and messages, webhooks, the OAuth clients and the tokens they were given.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use switchboard_sim_kit::{Organisation, SeedKind};

use crate::KEY;
use crate::wire::{now_millis, webex_id};

/// The hub's integration (an OAuth client of the user-consent flow), seeded as a developer
/// would register it.
pub const INTEGRATION_CLIENT_ID: &str =
    "C5b1e5d2a0c4f4e8a9d7c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1";
pub const INTEGRATION_CLIENT_SECRET: &str =
    "9d1c5e3a7b2f4c6d8e0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e";
/// The hub's Service App, which issues guests once an admin has authorised it.
pub const SERVICE_APP_CLIENT_ID: &str =
    "Cf0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938271605f4e3d2c1b0a9";
pub const SERVICE_APP_CLIENT_SECRET: &str =
    "4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c4e6a";
/// The client behind tokens of `/_sim/token`: the Webex app a person signs in to.
pub const WEBEX_APP_CLIENT_ID: &str = "C_webex_app";

/// What a signed-in person of the Webex app may do, as `/_sim/token` grants it.
pub const USER_SCOPES: [&str; 2] = ["spark:all", "spark:kms"];
/// What an integration may ask for on the consent page.
pub const INTEGRATION_SCOPES: [&str; 15] = [
    "spark:all",
    "spark:kms",
    "spark:people_read",
    "spark:rooms_read",
    "spark:rooms_write",
    "spark:memberships_read",
    "spark:memberships_write",
    "spark:messages_read",
    "spark:messages_write",
    "spark:teams_read",
    "spark:teams_write",
    "spark:team_memberships_read",
    "spark:team_memberships_write",
    "spark-admin:people_read",
    "spark-admin:people_write",
];
/// What the Service App's token carries.
pub const SERVICE_APP_SCOPES: [&str; 3] = [
    "guest-issuer:write",
    "guest-issuer:read",
    "spark:people_read",
];
/// What a guest's token carries: a guest messages and reads like a person of the app.
pub const GUEST_SCOPES: [&str; 7] = [
    "spark:people_read",
    "spark:rooms_read",
    "spark:rooms_write",
    "spark:memberships_read",
    "spark:memberships_write",
    "spark:messages_read",
    "spark:messages_write",
];

/// The kinds of account the simulated organisation has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersonKind {
    Member,
    Admin,
    /// An account an admin created for the hub, which the hub's integration acts as.
    ServiceUser,
    /// The Service App's machine account.
    ServiceApp,
    /// A guest issued by the Service App.
    Guest,
}

impl PersonKind {
    /// The kind `/_sim/users` shows.
    pub fn name(self) -> &'static str {
        match self {
            PersonKind::Member => "member",
            PersonKind::Admin => "admin",
            PersonKind::ServiceUser => "service",
            PersonKind::ServiceApp => "app",
            PersonKind::Guest => "guest",
        }
    }

    /// Webex's `type` of a person: guests are `appuser`, machine accounts `bot`.
    pub fn webex_type(self) -> &'static str {
        match self {
            PersonKind::Guest => "appuser",
            PersonKind::ServiceApp => "bot",
            _ => "person",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub first_name: String,
    pub last_name: String,
    pub kind: PersonKind,
    /// A deactivated account cannot sign in; its tokens stop working.
    pub login_enabled: bool,
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub members: Vec<TeamMember>,
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamMember {
    pub id: String,
    pub person: String,
    pub is_moderator: bool,
    pub created: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomType {
    Direct,
    Group,
}

impl RoomType {
    pub fn name(self) -> &'static str {
        match self {
            RoomType::Direct => "direct",
            RoomType::Group => "group",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub person: String,
    pub is_moderator: bool,
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub author: String,
    pub parent: Option<String>,
    /// The person a 1:1 message was addressed to, as the sender named them.
    pub to_person: Option<(String, String)>,
    pub text: String,
    pub markdown: Option<String>,
    pub html: Option<String>,
    pub mentioned_people: Vec<String>,
    pub mentioned_groups: Vec<String>,
    pub created: u64,
    pub updated: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    pub room_type: RoomType,
    /// A group room's title; a direct room is titled by the other person's name.
    pub title: String,
    pub team: Option<String>,
    pub creator: String,
    pub members: Vec<Member>,
    /// Oldest first.
    pub messages: Vec<Message>,
    pub created: u64,
    pub last_activity: u64,
}

impl Room {
    pub fn member(&self, person: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.person == person)
    }

    pub fn has_member(&self, person: &str) -> bool {
        self.member(person).is_some()
    }

    pub fn message(&self, id: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.id == id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    pub filter: Option<String>,
    pub secret: Option<String>,
    pub status: String,
    /// The person whose token created it, and that token's client: it sees what they see.
    pub owner: String,
    pub client_id: String,
    pub created: u64,
}

/// What a token stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub person: String,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub person: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    pub org_id: String,
    pub domain: String,
    pub people: Vec<Person>,
    pub teams: Vec<Team>,
    pub rooms: Vec<Room>,
    pub webhooks: Vec<Webhook>,
    pub access_tokens: HashMap<String, Grant>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub codes: HashMap<String, CodeGrant>,
    /// Whether an admin authorised the Service App for the organisation.
    pub service_app_authorised: bool,
    /// The guests the Service App issued, by subject, to their person ids.
    pub guests: BTreeMap<String, String>,
    /// Where each message is, by id.
    pub message_rooms: HashMap<String, String>,
    /// People by id and by lower-cased e-mail, to their position in `people`; rebuilt, not saved.
    #[serde(skip)]
    index: HashMap<String, usize>,
    /// Rooms by id, to their position in `rooms` (rooms are never removed); rebuilt, not saved.
    #[serde(skip)]
    room_index: HashMap<String, usize>,
    /// Direct rooms by their two members' ids (in order); rebuilt, not saved.
    #[serde(skip)]
    direct_rooms: HashMap<(String, String), usize>,
}

impl State {
    pub fn seeded(organisation: &Organisation) -> Self {
        let created = now_millis();
        let domain = if organisation.domain.is_empty() {
            "acme.example".to_owned()
        } else {
            organisation.domain.clone()
        };
        let mut state = Self {
            org_id: webex_id("ORGANIZATION", &seeded_uuid(0xA, 1)),
            domain: domain.clone(),
            ..Self::default()
        };
        for (rank, seed) in organisation.people_on(KEY).enumerate() {
            let kind = seed.on(KEY).map(|m| m.kind).unwrap_or_default();
            state.people.push(Person {
                id: webex_id("PEOPLE", &seeded_uuid(0xB, rank as u64)),
                email: seed.email.clone(),
                display_name: seed.display_name.clone(),
                first_name: seed.given_name.clone(),
                last_name: seed.family_name.clone(),
                kind: if kind == SeedKind::Admin {
                    PersonKind::Admin
                } else {
                    PersonKind::Member
                },
                login_enabled: kind != SeedKind::Deactivated,
                created,
            });
        }
        let service_user = webex_id("PEOPLE", &seeded_uuid(0xC, 1));
        state.people.push(Person {
            id: service_user.clone(),
            email: format!("switchboard@{domain}"),
            display_name: "Switchboard".to_owned(),
            first_name: "Switchboard".to_owned(),
            last_name: String::new(),
            kind: PersonKind::ServiceUser,
            login_enabled: true,
            created,
        });
        state.people.push(Person {
            id: webex_id("PEOPLE", &seeded_uuid(0xC, 2)),
            email: "switchboard-guests@webex.bot".to_owned(),
            display_name: "Switchboard Guests".to_owned(),
            first_name: "Switchboard Guests".to_owned(),
            last_name: String::new(),
            kind: PersonKind::ServiceApp,
            login_enabled: true,
            created,
        });
        state.reindex();
        let positions: HashMap<usize, usize> = organisation
            .teams_on(KEY)
            .iter()
            .enumerate()
            .map(|(position, team)| (team.index, position))
            .collect();
        state.teams = organisation
            .teams_on(KEY)
            .iter()
            .map(|team| Team {
                id: webex_id("TEAM", &seeded_uuid(0xD, team.index as u64)),
                name: team.name.clone(),
                members: Vec::new(),
                created,
            })
            .collect();
        for (rank, seed) in organisation.people_on(KEY).enumerate() {
            let Some(&position) = seed.team_on(KEY).and_then(|team| positions.get(&team)) else {
                continue;
            };
            state.teams[position].members.push(TeamMember {
                id: crate::wire::new_id("TEAM_MEMBERSHIP"),
                person: state.people[rank].id.clone(),
                is_moderator: false,
                created,
            });
        }
        // An admin adds the hub's service user to every team the hub imports from.
        for team in &mut state.teams {
            team.members.push(TeamMember {
                id: crate::wire::new_id("TEAM_MEMBERSHIP"),
                person: service_user.clone(),
                is_moderator: true,
                created,
            });
        }
        state
    }

    /// Rebuilds the indexes of people and rooms, after a restore.
    pub fn reindex(&mut self) {
        self.index.clear();
        for (position, person) in self.people.iter().enumerate() {
            self.index.insert(person.id.clone(), position);
            self.index.insert(person.email.to_lowercase(), position);
        }
        self.room_index.clear();
        self.direct_rooms.clear();
        for position in 0..self.rooms.len() {
            self.index_room(position);
        }
    }

    fn index_room(&mut self, position: usize) {
        let room = &self.rooms[position];
        self.room_index.insert(room.id.clone(), position);
        if let [one, other] = room.members.as_slice()
            && room.room_type == RoomType::Direct
        {
            self.direct_rooms
                .insert(pair(&one.person, &other.person), position);
        }
    }

    /// A person by id or e-mail (case-insensitive).
    pub fn person(&self, key: &str) -> Option<&Person> {
        self.index
            .get(key)
            .or_else(|| self.index.get(&key.to_lowercase()))
            .and_then(|&position| self.people.get(position))
    }

    pub fn person_mut(&mut self, key: &str) -> Option<&mut Person> {
        let position = *self
            .index
            .get(key)
            .or_else(|| self.index.get(&key.to_lowercase()))?;
        self.people.get_mut(position)
    }

    pub fn add_person(&mut self, person: Person) -> &Person {
        let position = self.people.len();
        self.index.insert(person.id.clone(), position);
        self.index.insert(person.email.to_lowercase(), position);
        self.people.push(person);
        &self.people[position]
    }

    /// A new member of the organisation, in the teams named by id; their id.
    pub fn new_member(
        &mut self,
        email: &str,
        name: &str,
        teams: &[String],
    ) -> Result<String, String> {
        if self.person(email).is_some() {
            return Err(format!("{email} already has an account"));
        }
        if let Some(unknown) = teams.iter().find(|team| self.team(team).is_none()) {
            return Err(format!("no team {unknown}"));
        }
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        let created = now_millis();
        let id = crate::wire::new_id("PEOPLE");
        self.add_person(Person {
            id: id.clone(),
            email: email.to_owned(),
            display_name: name.to_owned(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            kind: PersonKind::Member,
            login_enabled: true,
            created,
        });
        for team in self
            .teams
            .iter_mut()
            .filter(|team| teams.contains(&team.id))
        {
            team.members.push(TeamMember {
                id: crate::wire::new_id("TEAM_MEMBERSHIP"),
                person: id.clone(),
                is_moderator: false,
                created,
            });
        }
        Ok(id)
    }

    pub fn service_user(&self) -> Option<&Person> {
        self.people
            .iter()
            .find(|p| p.kind == PersonKind::ServiceUser)
    }

    pub fn service_app(&self) -> Option<&Person> {
        self.people
            .iter()
            .find(|p| p.kind == PersonKind::ServiceApp)
    }

    pub fn room(&self, id: &str) -> Option<&Room> {
        self.rooms.get(*self.room_index.get(id)?)
    }

    pub fn room_mut(&mut self, id: &str) -> Option<&mut Room> {
        let position = *self.room_index.get(id)?;
        self.rooms.get_mut(position)
    }

    /// The 1:1 room of two people, if they have one.
    pub fn direct_room(&self, one: &str, other: &str) -> Option<&Room> {
        self.rooms.get(*self.direct_rooms.get(&pair(one, other))?)
    }

    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    /// A message and its room.
    pub fn message(&self, id: &str) -> Option<(&Room, &Message)> {
        let room = self.room(self.message_rooms.get(id)?)?;
        Some((room, room.message(id)?))
    }

    /// Creates a room with these members (the first is its creator).
    pub fn new_room(
        &mut self,
        room_type: RoomType,
        title: String,
        team: Option<String>,
        members: &[String],
    ) -> &Room {
        let now = now_millis();
        let creator = members.first().cloned().unwrap_or_default();
        self.rooms.push(Room {
            id: crate::wire::new_id("ROOM"),
            room_type,
            title,
            team,
            creator,
            members: members
                .iter()
                .map(|person| Member {
                    id: crate::wire::new_id("MEMBERSHIP"),
                    person: person.clone(),
                    is_moderator: false,
                    created: now,
                })
                .collect(),
            messages: Vec::new(),
            created: now,
            last_activity: now,
        });
        let position = self.rooms.len() - 1;
        self.index_room(position);
        &self.rooms[position]
    }
}

/// Two people's ids in a stable order, the key of their direct room.
fn pair(one: &str, other: &str) -> (String, String) {
    if one <= other {
        (one.to_owned(), other.to_owned())
    } else {
        (other.to_owned(), one.to_owned())
    }
}

/// A stable UUID for the `rank`th seeded thing of a `family` (people, teams…), so a seeded
/// organisation always has the same ids.
fn seeded_uuid(family: u64, rank: u64) -> String {
    let mixed = rank.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23) ^ family;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        mixed >> 32,
        (mixed >> 16) & 0xffff,
        family & 0xfff,
        (rank >> 48) & 0xfff,
        rank & 0xffff_ffff_ffff
    )
}

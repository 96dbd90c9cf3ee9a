//! The organisation's directory as the service user sees it: its teams and their members (the
//! import), look-ups by address, the prompt the service user sends, and the guest identities
//! the Service App issues for people without a Webex account.
//!
//! - Teams and team memberships: <https://developer.webex.com/docs/api/v1/teams>,
//!   <https://developer.webex.com/docs/api/v1/team-memberships>
//! - People: <https://developer.webex.com/docs/api/v1/people/list-people>
//! - Guest identities: <https://developer.webex.com/docs/api/v1/guests-management/create-a-guest>

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::rich_text::{Block, Inline};
use switchboard_core::{Email, ExternalUserId, RichText};
use switchboard_platform::{
    Actor, ConnectionContext, Credentials, ImportRequest, PlatformError, PlatformUser, Prompt,
    ProvisionRequest, Provisioning, Team, UserPage,
};
use switchboard_secrets::SecretString;

use crate::connect::{expiry, random_secret};
use crate::credential::*;
use crate::wire::{GuestToken, Person, TeamMembership, WireTeam};
use crate::{WebexPlatform, events, markup, secret};

/// Webex's `GET /people?id=…` takes at most 85 ids at once.
const PEOPLE_BY_ID_MAX: usize = 85;
/// More teams than any organisation lists to pick from.
const MAX_TEAM_PAGES: usize = 100;

/// The import cursor: which selected team, and the `Link` of its next page of members.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    team: usize,
    team_id: String,
    next: Option<String>,
}

impl Cursor {
    fn encode(&self) -> Result<String, PlatformError> {
        serde_json::to_vec(self)
            .map(hex::encode)
            .map_err(|e| PlatformError::Rejected(format!("cannot write the import cursor: {e}")))
    }

    fn decode(text: &str) -> Result<Self, PlatformError> {
        hex::decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| PlatformError::Rejected("unreadable import cursor".to_owned()))
    }
}

/// The service user's id, so that it is listed as a bot and never matched to a person.
fn service_user(connection: &ConnectionContext) -> Option<&str> {
    secret(&connection.credentials, SERVICE_USER_ID).ok()
}

pub(crate) async fn send_prompt(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    to: &ExternalUserId,
    prompt: &Prompt,
) -> Result<(), PlatformError> {
    let (token, _) = platform.acting(connection, &Actor::Hub)?;
    let body = RichText {
        blocks: vec![
            Block::Paragraph(vec![Inline::Text(prompt.text.clone())]),
            Block::Paragraph(vec![Inline::Link {
                url: prompt.link.clone(),
                label: vec![Inline::Text("Sync now".to_owned())],
            }]),
        ],
    };
    let url = platform.client.url("messages", &[])?;
    let message = json!({
        "toPersonId": to.as_str(),
        "markdown": markup::render(&body),
        "text": body.to_plain_text(),
    });
    platform
        .client
        .send(&token, Method::POST, &url, Some(&message))
        .await
}

pub(crate) async fn list_teams(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
) -> Result<Vec<Team>, PlatformError> {
    let (token, _) = platform.acting(connection, &Actor::Hub)?;
    let max = platform.page_size.to_string();
    let url = platform.client.url("teams", &[("max", &max)])?;
    let teams: Vec<WireTeam> = platform.client.all(&token, &url, MAX_TEAM_PAGES).await?;
    Ok(teams
        .into_iter()
        .filter_map(|team| {
            Some(Team {
                id: team.id?,
                name: team.name.unwrap_or_default(),
                member_count: None,
            })
        })
        .collect())
}

/// One page of a selected team's members, with their details; then the next team's.
pub(crate) async fn import_users(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    request: &ImportRequest,
) -> Result<UserPage, PlatformError> {
    let cursor = match &request.cursor {
        None => Cursor {
            team: 0,
            team_id: request.teams.first().cloned().unwrap_or_default(),
            next: None,
        },
        Some(raw) => Cursor::decode(raw)?,
    };
    let Some(team_id) = request.teams.get(cursor.team) else {
        return Ok(UserPage {
            users: Vec::new(),
            next_cursor: None,
        });
    };
    if *team_id != cursor.team_id {
        return Err(PlatformError::Rejected(
            "the import cursor belongs to another selection of teams".to_owned(),
        ));
    }
    let (token, _) = platform.acting(connection, &Actor::Hub)?;
    let url = match cursor.next {
        Some(next) => next,
        None => {
            let max = platform.page_size.to_string();
            platform
                .client
                .url("team/memberships", &[("teamId", team_id), ("max", &max)])?
        }
    };
    let page = platform.client.page::<TeamMembership>(&token, &url).await?;
    let service = service_user(connection);
    // The service user is a member of every team it imports (docs/platforms/webex.md): it is
    // listed with the first selected team only, so that an import lists it once.
    let ids: Vec<String> = page
        .items
        .into_iter()
        .filter_map(|membership| membership.person_id)
        .filter(|person| cursor.team == 0 || Some(person.as_str()) != service)
        .collect();
    let users = people(platform, &token, &ids, service).await?;
    let next = match page.next {
        Some(next) => Some(Cursor {
            team: cursor.team,
            team_id: team_id.clone(),
            next: Some(next),
        }),
        None => request.teams.get(cursor.team + 1).map(|next_team| Cursor {
            team: cursor.team + 1,
            team_id: next_team.clone(),
            next: None,
        }),
    };
    Ok(UserPage {
        users,
        next_cursor: next.map(|cursor| cursor.encode()).transpose()?,
    })
}

/// The details of people by id, as many at a time as Webex takes; people Webex does not
/// return (deleted since) are left out.
async fn people(
    platform: &WebexPlatform,
    token: &str,
    ids: &[String],
    service_user: Option<&str>,
) -> Result<Vec<PlatformUser>, PlatformError> {
    let mut users: Vec<PlatformUser> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(PEOPLE_BY_ID_MAX) {
        let list = chunk.join(",");
        let max = chunk.len().to_string();
        let url = platform
            .client
            .url("people", &[("id", list.as_str()), ("max", max.as_str())])?;
        let page = platform.client.page::<Person>(token, &url).await?;
        for person in page.items {
            if let Some(user) = person.platform_user(service_user)
                && !users.iter().any(|seen| seen.id == user.id)
            {
                users.push(user);
            }
        }
    }
    Ok(users)
}

pub(crate) async fn lookup_by_email(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    email: &Email,
) -> Result<Option<PlatformUser>, PlatformError> {
    let (token, _) = platform.acting(connection, &Actor::Hub)?;
    let url = platform
        .client
        .url("people", &[("email", email.as_str())])?;
    let page = platform.client.page::<Person>(&token, &url).await?;
    Ok(page
        .items
        .into_iter()
        .find_map(|person| person.platform_user(service_user(connection))))
}

impl WebexPlatform {
    /// A token for the guest identity `subject` names, from the connection's Service App.
    async fn issue_guest(
        &self,
        connection: &ConnectionContext,
        subject: &str,
        display_name: &str,
    ) -> Result<GuestToken, PlatformError> {
        let service_app = secret(&connection.credentials, SERVICE_APP_TOKEN).map_err(|_| {
            PlatformError::Rejected(
                "guest identities need the Service App: connect Webex again with the Service App's refresh token".to_owned(),
            )
        })?;
        let url = self.client.url("guests/token", &[])?;
        let body = json!({"subject": subject, "displayName": display_name});
        self.client
            .call(service_app, Method::POST, &url, Some(&body))
            .await
    }
}

/// A guest identity for a person without a Webex account (a person with one is prompted
/// instead). Its subject is the person's address, so the same person gets the same identity
/// back after a reset.
pub(crate) async fn provision_representation(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    request: &ProvisionRequest,
) -> Result<Provisioning, PlatformError> {
    if let Some(existing) = &request.existing_account {
        return Err(PlatformError::Rejected(format!(
            "{} already has a Webex account ({existing}); prompt them to link it instead of issuing a guest identity",
            request.email
        )));
    }
    let subject = request.email.as_str();
    let guest = platform
        .issue_guest(connection, subject, &request.display_name)
        .await?;
    let account = match guest.id.clone() {
        Some(id) => id,
        None => platform.me(&guest.access_token).await?.id.ok_or_else(|| {
            PlatformError::Rejected("the guest identity's people/me has no id".to_owned())
        })?,
    };
    let mut credentials = Credentials::default();
    credentials.insert(ACCESS_TOKEN, SecretString::from(guest.access_token));
    credentials.insert(GUEST_SUBJECT, SecretString::from(subject));
    credentials.insert(
        GUEST_NAME,
        SecretString::from(request.display_name.as_str()),
    );
    credentials.insert(PERSON_ID, SecretString::from(account.as_str()));
    credentials.insert(WEBHOOK_SECRET, SecretString::from(random_secret()));
    credentials.set_expires_at(expiry(platform.now(), guest.expires_in));
    platform.known.remember(connection, &account, &credentials);
    Ok(Provisioning::Ready {
        account: ExternalUserId::new(account),
        credentials,
    })
}

/// A new token for a guest identity, issued for the same subject (Webex keeps earlier tokens
/// valid until they expire).
pub(crate) async fn reissue_guest(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    credentials: &Credentials,
) -> Result<Credentials, PlatformError> {
    let subject = secret(credentials, GUEST_SUBJECT)?;
    let name = secret(credentials, GUEST_NAME).unwrap_or(subject);
    let guest = platform.issue_guest(connection, subject, name).await?;
    let mut fresh = Credentials::default();
    fresh.insert(ACCESS_TOKEN, SecretString::from(guest.access_token));
    fresh.set_expires_at(expiry(platform.now(), guest.expires_in));
    Ok(fresh)
}

/// Stops using a guest identity: its webhooks are deleted and the module forgets its token.
/// Webex has no API to delete a guest identity; unused, it simply stays.
pub(crate) async fn remove_representation(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    account: Option<&ExternalUserId>,
    credentials: &Credentials,
) -> Result<(), PlatformError> {
    if let Ok(token) = secret(credentials, ACCESS_TOKEN) {
        match events::delete_own_webhooks(platform, token).await {
            // An expired token cannot delete them; Webex stops sending to a URL that refuses.
            Ok(()) | Err(PlatformError::Unauthorized(_) | PlatformError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    if let Some(account) = account {
        platform.known.forget(connection, account.as_str());
    }
    Ok(())
}

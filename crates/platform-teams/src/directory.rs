//! The tenant's directory: its teams and their members (the import), look-ups by address, the
//! prompt the service user sends, and the guests the hub creates for people without a Teams
//! account (an identity in the interop directory, invited into the tenant as a B2B guest) and
//! removes again.
//!
//! - Groups and members: <https://learn.microsoft.com/en-us/graph/api/group-list-members>
//! - Advanced queries (`$count`, `ConsistencyLevel`): <https://learn.microsoft.com/en-us/graph/aad-advanced-queries>
//! - Creating users: <https://learn.microsoft.com/en-us/graph/api/user-post-users>
//! - Invitations: <https://learn.microsoft.com/en-us/graph/api/invitation-post>

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use switchboard_core::{Email, ExternalUserId};
use switchboard_platform::wire;
use switchboard_platform::{
    Actor, ConnectionContext, Credentials, DirectoryGroup, GroupMember, ImportRequest,
    PlatformError, PlatformUser, Prompt, ProvisionRequest, Provisioning, Team, UserPage,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::client::{Created, Page, path};
use crate::connect::random_token;
use crate::credential::*;
use crate::mapping::{DirectoryObject, USER_SELECT, platform_user};
use crate::settings::InteropSettings;
use crate::{TeamsPlatform, chat};

/// Graph's `$filter ... in (…)` takes at most 15 values.
const IN_FILTER_MAX: usize = 15;

/// The import cursor: which selected team, and Graph's next page of its members.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    team: usize,
    team_id: String,
    next: Option<String>,
}

/// A team's group (`GET /groups`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    id: String,
    display_name: Option<String>,
}

/// A user's kind, `Member` or `Guest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserType {
    id: String,
    user_type: String,
}

/// A user read before it is deleted, to make sure it is the guest the hub created.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuestCheck {
    user_type: Option<String>,
    mail: Option<String>,
    #[serde(default, deserialize_with = "wire::items")]
    other_mails: Vec<String>,
}

/// Graph's answer to an invitation: the guest user it created.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Invitation {
    invited_user: Option<Created>,
}

impl TeamsPlatform {
    /// User types of `ids` (`Member`, `Guest`), for chat member roles.
    pub(crate) async fn user_types(
        &self,
        token: &str,
        ids: &[String],
    ) -> Result<HashMap<String, String>, PlatformError> {
        let mut types = HashMap::new();
        for chunk in ids.chunks(IN_FILTER_MAX) {
            let list = chunk
                .iter()
                .map(|id| format!("'{}'", odata_quote(id)))
                .collect::<Vec<_>>()
                .join(",");
            let filter = format!("id in ({list})");
            let url = self.client.graph_url(
                "/users",
                &[("$filter", filter.as_str()), ("$select", "id,userType")],
            )?;
            let page: Page<UserType> = self.client.get(token, &url).await?;
            for user in page.items() {
                types.insert(user.id.to_ascii_lowercase(), user.user_type);
            }
        }
        Ok(types)
    }

    fn interop(&self) -> Result<&InteropSettings, PlatformError> {
        self.interop.as_ref().ok_or_else(|| {
            PlatformError::Rejected(
                "guest accounts need an interop directory: set the Teams platform's `interop` tenant and domain".to_owned(),
            )
        })
    }

    async fn delete_user(&self, token: &str, id: &str) -> Result<(), PlatformError> {
        let url = self
            .client
            .graph_url(&format!("/users/{}", path(id)), &[])?;
        match self.client.send(token, Method::DELETE, &url, None).await {
            Ok(()) | Err(PlatformError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// The service user's id, so that it is listed as a bot and never matched to a person.
pub(crate) fn service_user(connection: &ConnectionContext) -> Option<String> {
    connection
        .credentials
        .get(SERVICE_USER_ID)
        .ok()
        .map(|s| s.expose_secret().to_owned())
}

pub(crate) async fn send_prompt(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    to: &ExternalUserId,
    prompt: &Prompt,
) -> Result<(), PlatformError> {
    let (token, service_user) = TeamsPlatform::acting(connection, &Actor::Hub)?;
    let chat = teams
        .create_chat(connection, token, &service_user, std::slice::from_ref(to))
        .await?;
    teams
        .post(token, &chat, &chat::prompt_body(prompt))
        .await
        .map(drop)
}

pub(crate) async fn list_teams(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
) -> Result<Vec<Team>, PlatformError> {
    let token = teams.tenant_app_token(connection).await?;
    let top = teams.page_size.to_string();
    let url = teams.client.graph_url(
        "/groups",
        &[
            ("$filter", "resourceProvisioningOptions/Any(x:x eq 'Team')"),
            ("$select", "id,displayName"),
            ("$top", &top),
        ],
    )?;
    let groups: Vec<Group> = teams.client.get_all(&token, &url, 1000).await?;
    Ok(groups
        .into_iter()
        .map(|group| Team {
            id: group.id,
            name: group.display_name.unwrap_or_default(),
            member_count: None,
        })
        .collect())
}

/// Every group of the tenant, for Directory Sync: security, Microsoft 365 (teams among them)
/// and dynamic groups.
pub(crate) async fn directory_groups(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
) -> Result<Vec<DirectoryGroup>, PlatformError> {
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Described {
        id: String,
        display_name: Option<String>,
        #[serde(default, deserialize_with = "wire::items")]
        group_types: Vec<String>,
        #[serde(default, deserialize_with = "wire::items")]
        resource_provisioning_options: Vec<String>,
    }
    let token = teams.tenant_app_token(connection).await?;
    let top = teams.page_size.to_string();
    let url = teams.client.graph_url(
        "/groups",
        &[
            (
                "$select",
                "id,displayName,groupTypes,resourceProvisioningOptions",
            ),
            ("$top", &top),
        ],
    )?;
    let groups: Vec<Described> = teams.client.get_all(&token, &url, usize::MAX).await?;
    Ok(groups
        .into_iter()
        .map(|group| {
            let has = |list: &[String], word: &str| list.iter().any(|w| w == word);
            let kind = if has(&group.group_types, "DynamicMembership") {
                "dynamic group"
            } else if has(&group.resource_provisioning_options, "Team") {
                "team"
            } else if has(&group.group_types, "Unified") {
                "Microsoft 365 group"
            } else {
                "security group"
            };
            DirectoryGroup {
                name: group.display_name.unwrap_or_else(|| group.id.clone()),
                id: group.id,
                kind: kind.to_owned(),
            }
        })
        .collect())
}

/// A group's users, nested groups expanded by Graph (`transitiveMembers`, cast to users);
/// disabled accounts, guests and applications left out. Every page is read: a member missed here
/// would leave the hub.
pub(crate) async fn group_members(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    group: &str,
) -> Result<Vec<GroupMember>, PlatformError> {
    let token = teams.tenant_app_token(connection).await?;
    let url = teams.client.graph_url(
        &format!(
            "/groups/{}/transitiveMembers/microsoft.graph.user",
            path(group)
        ),
        &[("$select", USER_SELECT), ("$top", "999")],
    )?;
    let objects: Vec<DirectoryObject> = teams.client.get_all(&token, &url, usize::MAX).await?;
    let service = service_user(connection);
    Ok(objects
        .into_iter()
        .filter_map(|object| platform_user(object, service.as_deref()))
        .filter(|user| !user.deactivated && !user.is_bot && !user.is_guest)
        .map(|user| GroupMember {
            account: user.id,
            emails: user.emails,
            display_name: Some(user.display_name),
        })
        .collect())
}

pub(crate) async fn import_users(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    request: &ImportRequest,
) -> Result<UserPage, PlatformError> {
    let cursor = match &request.cursor {
        None => Cursor {
            team: 0,
            team_id: request.teams.first().cloned().unwrap_or_default(),
            next: None,
        },
        Some(raw) => URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok())
            .ok_or_else(|| PlatformError::Rejected("unreadable import cursor".to_owned()))?,
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
    let token = teams.tenant_app_token(connection).await?;
    let url = match cursor.next {
        Some(next) => next,
        None => {
            let top = teams.page_size.to_string();
            teams.client.graph_url(
                &format!("/groups/{}/members", path(team_id)),
                &[("$select", USER_SELECT), ("$top", &top)],
            )?
        }
    };
    let page: Page<DirectoryObject> = teams.client.get(&token, &url).await?;
    let service = service_user(connection);
    let next_link = page.next_link.clone();
    let mut users: Vec<PlatformUser> = Vec::new();
    for object in page.items() {
        if let Some(user) = platform_user(object, service.as_deref())
            && !users.iter().any(|seen| seen.id == user.id)
        {
            users.push(user);
        }
    }
    let next = match next_link {
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
    let next_cursor = next
        .map(|c| serde_json::to_vec(&c).map(|bytes| URL_SAFE_NO_PAD.encode(bytes)))
        .transpose()
        .map_err(|e| PlatformError::Rejected(format!("cannot write the cursor: {e}")))?;
    Ok(UserPage { users, next_cursor })
}

pub(crate) async fn lookup_by_email(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    email: &Email,
) -> Result<Option<PlatformUser>, PlatformError> {
    let token = teams.tenant_app_token(connection).await?;
    let address = odata_quote(email.as_str());
    let filter = format!(
        "mail eq '{address}' or userPrincipalName eq '{address}' or proxyAddresses/any(p:p eq 'smtp:{address}') or otherMails/any(m:m eq '{address}')"
    );
    let url = teams.client.graph_url(
        "/users",
        &[
            ("$filter", filter.as_str()),
            ("$select", USER_SELECT),
            ("$count", "true"),
        ],
    )?;
    let page: Page<DirectoryObject> = teams
        .client
        .graph(
            &token,
            Method::GET,
            &url,
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await?;
    let service = service_user(connection);
    let mut found: Vec<PlatformUser> = page
        .items()
        .into_iter()
        .filter_map(|user| platform_user(user, service.as_deref()))
        .collect();
    // Several matches (an alias of one, the primary address of another): the one whose
    // primary address it is wins.
    found.sort_by_key(|user| user.emails.first() != Some(email));
    Ok(found.into_iter().next())
}

pub(crate) async fn provision_representation(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    request: &ProvisionRequest,
) -> Result<Provisioning, PlatformError> {
    if let Some(existing) = &request.existing_account {
        return Err(PlatformError::Rejected(format!(
            "{} already has a Teams account ({existing}); prompt them to authorise it (begin_authorize) instead of creating a guest",
            request.email
        )));
    }
    let interop = teams.interop()?;
    let tenant = connection.connection.tenant.as_str();
    // A fresh name each time: Entra keeps a deleted user's name reserved for 30 days, so a
    // person reset and synced again cannot have their previous guest's name back.
    let nonce = format!("{:04x}", rand::rng().random::<u16>());
    let upn = format!(
        "{}@{}",
        interop_local_part(&request.email, &nonce),
        interop.domain
    );
    let password = random_password();
    // 1. The identity in the interop directory.
    let interop_token = teams.app_token(&interop.tenant).await?;
    let users_url = teams.client.graph_url("/users", &[])?;
    let nickname = upn.split('@').next().unwrap_or_default().to_owned();
    let identity = json!({
        "accountEnabled": true,
        "displayName": request.display_name,
        "mailNickname": nickname,
        "userPrincipalName": upn,
        "mail": upn,
        "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": false},
    });
    let created: Created = teams
        .client
        .graph(
            &interop_token,
            Method::POST,
            &users_url,
            Some(&identity),
            &[],
        )
        .await?;
    let interop_id = created
        .id
        .ok_or_else(|| PlatformError::Rejected("the interop user has no id".to_owned()))?;
    // 2. The invitation into the customer tenant, and 3. the guest's delegated token.
    let guest = async {
        let token = teams.app_token(tenant).await?;
        let url = teams.client.graph_url("/invitations", &[])?;
        let invitation: Invitation = teams
            .client
            .graph(
                &token,
                Method::POST,
                &url,
                Some(&json!({
                    "invitedUserEmailAddress": upn,
                    "invitedUserDisplayName": request.display_name,
                    "inviteRedirectUrl": teams.invite_redirect_url,
                    "sendInvitationMessage": false,
                    "invitedUserType": "Guest",
                })),
                &[],
            )
            .await?;
        let guest_id = invitation
            .invited_user
            .and_then(|user| user.id)
            .ok_or_else(|| PlatformError::Rejected("the invitation names no guest".to_owned()))?;
        let grant = teams.guest_sign_in(tenant, &upn, &password).await?;
        Ok::<_, PlatformError>((guest_id, grant))
    }
    .await;
    let (guest_id, grant) = match guest {
        Ok(done) => done,
        Err(error) => {
            if let Err(cleanup) = teams.delete_user(&interop_token, &interop_id).await {
                tracing::warn!(%cleanup, "could not remove the interop identity of a failed guest");
            }
            return Err(error);
        }
    };
    let mut credentials = TeamsPlatform::credentials_from(&grant);
    credentials.insert(INTEROP_USER_ID, SecretString::from(interop_id));
    credentials.insert(INTEROP_UPN, SecretString::from(upn));
    credentials.insert(INTEROP_PASSWORD, SecretString::from(password));
    Ok(Provisioning::Ready {
        account: ExternalUserId::new(guest_id),
        credentials,
    })
}

pub(crate) async fn remove_representation(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    account: Option<&ExternalUserId>,
    credentials: &Credentials,
) -> Result<(), PlatformError> {
    // Guests are created whole or not at all: there is never one awaiting consent.
    let Some(account) = account else {
        return Err(PlatformError::Rejected(
            "no guest was named; nothing is removed".to_owned(),
        ));
    };
    let (Ok(interop_id), Ok(interop_upn)) = (
        credentials.get(INTEROP_USER_ID),
        credentials.get(INTEROP_UPN),
    ) else {
        return Err(PlatformError::Rejected(format!(
            "{account} is not a guest the hub created; it is not removed"
        )));
    };
    let interop = teams.interop()?;
    let token = teams.tenant_app_token(connection).await?;
    let url = teams.client.graph_url(
        &format!("/users/{}", path(account.as_str())),
        &[("$select", "id,userType,mail,otherMails")],
    )?;
    match teams.client.get::<GuestCheck>(&token, &url).await {
        Ok(user) => {
            let upn = interop_upn.expose_secret();
            let guest = user
                .user_type
                .is_some_and(|t| t.eq_ignore_ascii_case("guest"));
            let ours = user.mail.is_some_and(|m| m.eq_ignore_ascii_case(upn))
                || user.other_mails.iter().any(|m| m.eq_ignore_ascii_case(upn));
            if !guest || !ours {
                return Err(PlatformError::Rejected(format!(
                    "{account} is not the guest of {upn}; it is not removed"
                )));
            }
            teams.delete_user(&token, account.as_str()).await?;
        }
        Err(PlatformError::NotFound(_)) => {}
        Err(error) => return Err(error),
    }
    let interop_token = teams.app_token(&interop.tenant).await?;
    teams
        .delete_user(&interop_token, interop_id.expose_secret())
        .await
}

/// A string literal inside an OData `$filter`: single quotes doubled.
fn odata_quote(value: &str) -> String {
    value.replace('\'', "''")
}

/// A password Entra's complexity rules accept: upper, lower, digit and symbol, 30 characters.
fn random_password() -> String {
    format!("Sb-{}9a!", random_token(18))
}

/// The interop identity's local part for a person: readable, and unique per address.
fn interop_local_part(email: &Email, nonce: &str) -> String {
    let (local, domain) = email
        .as_str()
        .split_once('@')
        .unwrap_or((email.as_str(), ""));
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
            .collect::<String>()
            .trim_matches('.')
            .to_owned()
    };
    let label = domain.split('.').next().unwrap_or_default();
    let digest = Sha256::digest(email.as_str().as_bytes());
    let tag: String = digest[..3].iter().map(|b| format!("{b:02x}")).collect();
    let mut local = format!("{}.{}", clean(local), clean(label));
    // The distinguishing tail survives truncation of a long address.
    local.truncate(50);
    format!("{local}.{tag}{nonce}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_names_are_readable_and_distinct() {
        let a = interop_local_part(&Email::parse("Ada.Berg.1@acme.example").unwrap(), "0a1b");
        let b = interop_local_part(&Email::parse("ada.berg.1@acme.other").unwrap(), "0a1b");
        assert!(a.starts_with("ada.berg.1.acme."), "{a}");
        assert!(a.ends_with("0a1b"), "{a}");
        assert_ne!(a, b);
        let long = interop_local_part(
            &Email::parse(&format!("{}@acme.example", "x".repeat(90))).unwrap(),
            "ffff",
        );
        assert!(long.len() <= 64 && long.ends_with("ffff"), "{long}");
        assert!(random_password().len() >= 16);
    }
}

//! The Admin SDK Directory, acted on as the connection's admin: every user for an import,
//! look-ups by e-mail, the Workspace guest accounts that represent people without an account,
//! and prompts, which the hub's Chat app sends.
//!
//! - Users: <https://developers.google.com/workspace/admin/directory/reference/rest/v1/users>
//! - Guest accounts (open beta): <https://developers.google.com/workspace/admin/directory/reference/rest/v1/users/createGuest>
//! - The app's DM with a user: <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces/findDirectMessage>

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::{Email, ExternalUserId};
use switchboard_platform::wire::{items, lenient};
use switchboard_platform::{
    ConnectionContext, Credentials, ImportRequest, PlatformError, PlatformUser, Prompt,
    ProvisionRequest, Provisioning, UserPage,
};

use crate::client::resource_name;
use crate::markup::link;
use crate::{GoogleChatPlatform, credential};

/// A Directory user, as far as the hub reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DirectoryUser {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub primary_email: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub customer_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    name: Option<UserName>,
    #[serde(default, deserialize_with = "items")]
    aliases: Vec<String>,
    #[serde(default, deserialize_with = "items")]
    emails: Vec<UserEmail>,
    #[serde(default, deserialize_with = "lenient")]
    suspended: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    archived: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    is_guest_user: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserName {
    #[serde(default, deserialize_with = "lenient")]
    full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UserEmail {
    #[serde(default, deserialize_with = "lenient")]
    address: Option<String>,
}

impl DirectoryUser {
    pub fn active(&self) -> bool {
        !self.suspended.unwrap_or(false) && !self.archived.unwrap_or(false)
    }

    /// The user as the hub describes it; `None` for one without an id or a readable address.
    fn to_platform_user(&self) -> Option<PlatformUser> {
        let id = self.id.clone()?;
        let mut emails: Vec<Email> = Vec::new();
        let addresses = self.primary_email.iter().chain(&self.aliases).chain(
            self.emails
                .iter()
                .filter_map(|email| email.address.as_ref()),
        );
        for address in addresses {
            if let Ok(email) = Email::parse(address)
                && !emails.contains(&email)
            {
                emails.push(email);
            }
        }
        let primary = emails.first()?.clone();
        let display_name = self
            .name
            .as_ref()
            .and_then(|name| name.full_name.clone())
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| primary.as_str().to_owned());
        Some(PlatformUser {
            id: ExternalUserId::new(id),
            display_name,
            emails,
            is_bot: false,
            is_guest: self.is_guest_user.unwrap_or(false),
            deactivated: !self.active(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserList {
    #[serde(default, deserialize_with = "items")]
    users: Vec<DirectoryUser>,
    #[serde(default, deserialize_with = "lenient")]
    next_page_token: Option<String>,
}

/// A user by id or e-mail; `None` when the directory has none.
pub(crate) async fn get_user(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    key: &str,
) -> Result<Option<DirectoryUser>, PlatformError> {
    let token = platform.admin_token(connection).await?;
    get_user_as(platform, &token, key).await
}

/// A user by id or e-mail, read with `token` (an admin's).
pub(crate) async fn get_user_as(
    platform: &GoogleChatPlatform,
    token: &str,
    key: &str,
) -> Result<Option<DirectoryUser>, PlatformError> {
    let url = platform
        .client
        .directory_url(&format!("users/{}", resource_name(key)?), &[])?;
    match platform.client.get(token, &url).await {
        Ok(user) => Ok(Some(user)),
        Err(PlatformError::NotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

pub(crate) async fn import_users(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    request: &ImportRequest,
) -> Result<UserPage, PlatformError> {
    let token = platform.admin_token(connection).await?;
    let customer = GoogleChatPlatform::text(connection, credential::CUSTOMER)?;
    let page_size = platform.page_size.to_string();
    let mut query = vec![("customer", customer), ("maxResults", page_size.as_str())];
    if let Some(cursor) = &request.cursor {
        query.push(("pageToken", cursor));
    }
    let url = platform.client.directory_url("users", &query)?;
    let page: UserList = platform.client.get(&token, &url).await?;
    Ok(UserPage {
        users: page
            .users
            .iter()
            .filter_map(DirectoryUser::to_platform_user)
            .collect(),
        next_cursor: page.next_page_token.filter(|token| !token.is_empty()),
    })
}

pub(crate) async fn lookup_by_email(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    email: &Email,
) -> Result<Option<PlatformUser>, PlatformError> {
    Ok(get_user(platform, connection, email.as_str())
        .await?
        .as_ref()
        .and_then(DirectoryUser::to_platform_user))
}

/// A person's own account is acted as by delegation once it is known to exist, to be active
/// and to accept the delegated token; a person without one gets a guest account.
pub(crate) async fn provision_representation(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    request: &ProvisionRequest,
) -> Result<Provisioning, PlatformError> {
    let account = match &request.existing_account {
        Some(account) => {
            let user = get_user(platform, connection, account.as_str())
                .await?
                .ok_or_else(|| {
                    PlatformError::NotFound(format!("user {} in the directory", account.as_str()))
                })?;
            if !user.active() {
                return Err(PlatformError::Rejected(format!(
                    "the Workspace account {} is suspended or archived",
                    account.as_str()
                )));
            }
            account.clone()
        }
        None => {
            let address = guest_address(
                &request.email,
                &connection.connection.display_name,
                platform.guest_domain.as_deref(),
            )?;
            create_guest(platform, connection, &address).await?
        }
    };
    platform
        .user_token(connection, &account, &Credentials::default())
        .await?;
    Ok(Provisioning::Ready {
        account,
        credentials: Credentials::default(),
    })
}

/// The address of the guest account that represents the person whose address is `email`:
/// their own where it is outside the Workspace's domain, else its local part at the guest
/// domain, since Google makes guests only of outside addresses.
fn guest_address(
    email: &Email,
    workspace_domain: &str,
    guest_domain: Option<&str>,
) -> Result<String, PlatformError> {
    let (local, domain) = email
        .as_str()
        .rsplit_once('@')
        .ok_or_else(|| PlatformError::Rejected(format!("{} is not an address", email.as_str())))?;
    if !domain.eq_ignore_ascii_case(workspace_domain) {
        return Ok(email.as_str().to_owned());
    }
    match guest_domain {
        Some(guest_domain) => Ok(format!("{local}@{guest_domain}")),
        None => Err(PlatformError::Rejected(format!(
            "{} is in the Workspace's domain {workspace_domain} but has no account there, and \
             Google makes guest accounts only of outside addresses: set guest_domain in \
             [platforms.google_chat] to a domain of the hub's operator",
            email.as_str()
        ))),
    }
}

async fn create_guest(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    email: &str,
) -> Result<ExternalUserId, PlatformError> {
    let token = platform.admin_token(connection).await?;
    let customer = GoogleChatPlatform::text(connection, credential::CUSTOMER)?;
    let url = platform.client.directory_url("users:createGuest", &[])?;
    let body = json!({"primaryGuestEmail": email, "customer": customer});
    let created: DirectoryUser = platform
        .client
        .call(&token, Method::POST, &url, Some(&body))
        .await?;
    created.id.map(ExternalUserId::new).ok_or_else(|| {
        PlatformError::Rejected("users:createGuest answered without the guest's id".to_owned())
    })
}

/// Deletes a guest account the hub created; one already gone counts as removed.
pub(crate) async fn remove_representation(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    account: Option<&ExternalUserId>,
) -> Result<(), PlatformError> {
    let Some(account) = account else {
        // Nothing is created before a consent on Google: provisioning is immediate.
        return Ok(());
    };
    let token = platform.admin_token(connection).await?;
    let url = platform
        .client
        .directory_url(&format!("users/{}", resource_name(account.as_str())?), &[])?;
    match platform
        .client
        .send(&token, Method::DELETE, &url, None)
        .await
    {
        Ok(()) | Err(PlatformError::NotFound(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

#[derive(Debug, Deserialize)]
struct Space {
    name: String,
}

/// Posts the prompt in the DM between the hub's Chat app and the person, which exists once
/// they (or their admin) added the app.
pub(crate) async fn send_prompt(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    to: &ExternalUserId,
    prompt: &Prompt,
) -> Result<(), PlatformError> {
    let token = platform.app_token(connection).await?;
    let user = format!("users/{}", resource_name(to.as_str())?);
    let url = platform
        .client
        .chat_url("spaces:findDirectMessage", &[("name", &user)])?;
    let space: Space = match platform.client.get(&token, &url).await {
        Ok(space) => space,
        Err(PlatformError::NotFound(_)) => {
            return Err(PlatformError::Rejected(format!(
                "the hub's Chat app has no direct message with {user}: the app must be installed for them (Admin console › Apps › Google Workspace Marketplace apps, or they add it in Chat)"
            )));
        }
        Err(error) => return Err(error),
    };
    let text = format!("{}\n{}", prompt.text, link(&prompt.link, "Sync now"));
    let url = platform
        .client
        .chat_url(&format!("{}/messages", resource_name(&space.name)?), &[])?;
    platform
        .client
        .send(&token, Method::POST, &url, Some(&json!({"text": text})))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_keeps_an_outside_address_and_moves_an_inside_one_to_the_guest_domain() {
        let email = |text: &str| Email::parse(text).unwrap();
        assert_eq!(
            guest_address(&email("ann@elsewhere.example"), "acme.example", None).unwrap(),
            "ann@elsewhere.example"
        );
        assert_eq!(
            guest_address(
                &email("ann.lee@acme.example"),
                "acme.example",
                Some("guests.example")
            )
            .unwrap(),
            "ann.lee@guests.example"
        );
        assert!(matches!(
            guest_address(&email("ann.lee@acme.example"), "acme.example", None),
            Err(PlatformError::Rejected(_))
        ));
    }

    #[test]
    fn directory_users_become_platform_users() {
        let user: DirectoryUser = serde_json::from_value(json!({
            "id": "1001", "primaryEmail": "ana@acme.example",
            "name": {"fullName": "Ana Lima"},
            "aliases": ["a.lima@acme.example"],
            "emails": [{"address": "ana@acme.example", "primary": true}, {"address": "ana@old.example"}],
            "suspended": false, "isGuestUser": true
        }))
        .unwrap();
        let read = user.to_platform_user().unwrap();
        assert_eq!(read.id.as_str(), "1001");
        assert_eq!(read.display_name, "Ana Lima");
        let emails: Vec<&str> = read.emails.iter().map(Email::as_str).collect();
        assert_eq!(
            emails,
            ["ana@acme.example", "a.lima@acme.example", "ana@old.example"]
        );
        assert!(read.is_guest && !read.deactivated && !read.is_bot);

        let archived: DirectoryUser = serde_json::from_value(json!({
            "id": "1002", "primaryEmail": "bo@acme.example", "archived": true
        }))
        .unwrap();
        let read = archived.to_platform_user().unwrap();
        assert!(read.deactivated);
        assert_eq!(read.display_name, "bo@acme.example");

        let nameless: DirectoryUser = serde_json::from_value(json!({"id": "1003"})).unwrap();
        assert!(nameless.to_platform_user().is_none());
    }
}

//! The account's users (imported page by page, active then deactivated), looking one up by
//! address, the chatbot's prompts and the messages it relays, and why the hub provisions
//! nothing on Zoom.
//!
//! - List users: <https://developers.zoom.us/docs/api/users/#tag/users/GET/users>
//! - Get a user: <https://developers.zoom.us/docs/api/users/#tag/users/GET/users/{userId}>
//! - Send a chatbot message: <https://developers.zoom.us/docs/api/chatbot/#tag/chatbot-messages/POST/im/chat/messages>

use reqwest::Method;
use serde_json::json;
use switchboard_core::{Email, ExternalUserId};
use switchboard_platform::{
    ConnectionContext, Credentials, ImportRequest, PlatformError, PlatformUser, Prompt,
    ProvisionRequest, Provisioning, UserPage,
};
use switchboard_secrets::SecretString;

use crate::client::segment;
use crate::credential::{self, CHATBOT_TOKEN};
use crate::wire::{BotSent, User, UserList};
use crate::{ZoomPlatform, relayed_account, secret};

/// The two lists an import reads, one after the other: deactivated users are imported too,
/// marked so, so that the hub sees who left.
const STATUSES: [&str; 2] = ["active", "inactive"];

/// An import's cursor: the list being read and Zoom's `next_page_token` in it
/// (`inactive:` alone starts the second list).
fn cursor(status: &str, token: &str) -> String {
    format!("{status}:{token}")
}

fn read_cursor(cursor: Option<&str>) -> Result<(usize, &str), PlatformError> {
    let Some(cursor) = cursor else {
        return Ok((0, ""));
    };
    let (status, token) = cursor
        .split_once(':')
        .ok_or_else(|| PlatformError::Rejected(format!("not a Zoom import cursor: {cursor}")))?;
    let list = STATUSES
        .iter()
        .position(|known| *known == status)
        .ok_or_else(|| PlatformError::Rejected(format!("not a Zoom import cursor: {cursor}")))?;
    Ok((list, token))
}

pub(crate) async fn import_users(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    request: &ImportRequest,
) -> Result<UserPage, PlatformError> {
    let (list, token) = read_cursor(request.cursor.as_deref())?;
    let status = STATUSES[list];
    let page_size = platform.page_size.to_string();
    let mut query = vec![("status", status), ("page_size", page_size.as_str())];
    if !token.is_empty() {
        query.push(("next_page_token", token));
    }
    let url = platform.client.url("users", &query)?;
    let page: UserList = platform
        .client
        .get(platform.account_token(connection)?, &url)
        .await?;
    let next_cursor = match page.next_page_token.filter(|next| !next.is_empty()) {
        Some(next) => Some(cursor(status, &next)),
        None => STATUSES.get(list + 1).map(|next| cursor(next, "")),
    };
    Ok(UserPage {
        users: page
            .users
            .into_iter()
            .filter_map(User::platform_user)
            .collect(),
        next_cursor,
    })
}

pub(crate) async fn lookup_by_email(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    email: &Email,
) -> Result<Option<PlatformUser>, PlatformError> {
    match user(platform, connection, email.as_str()).await {
        Ok(found) => Ok(found.platform_user()),
        // 1001 "User does not exist".
        Err(PlatformError::NotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A user of the account by id or e-mail address, read with the server-to-server app.
pub(crate) async fn user(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    key: &str,
) -> Result<User, PlatformError> {
    let url = platform
        .client
        .url(&format!("users/{}", segment(key)?), &[])?;
    platform
        .client
        .get(platform.account_token(connection)?, &url)
        .await
}

/// The prompt, from the hub's chatbot, in the person's chat with it: its text, then its link.
pub(crate) async fn send_prompt(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    to: &ExternalUserId,
    prompt: &Prompt,
) -> Result<(), PlatformError> {
    let person = user(platform, connection, to.as_str()).await?;
    let jid = person.jid.ok_or_else(|| {
        PlatformError::Rejected(format!("Zoom gave no Team Chat address (jid) for {to}"))
    })?;
    let content = json!({
        "body": [
            {"type": "message", "text": prompt.text},
            {"type": "message", "text": prompt.link},
        ],
    });
    chatbot_message(platform, connection, &jid, content)
        .await
        .map(drop)
}

/// Sends the chatbot's `content` to the user whose Team Chat address is `jid`; the message's id.
pub(crate) async fn chatbot_message(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    jid: &str,
    content: serde_json::Value,
) -> Result<String, PlatformError> {
    let body = json!({
        "robot_jid": platform.robot_jid,
        "to_jid": jid,
        "account_id": platform.account_id,
        "user_jid": jid,
        "content": content,
    });
    let url = platform.client.url("im/chat/messages", &[])?;
    let sent: BotSent = platform
        .client
        .call(
            secret(&connection.credentials, CHATBOT_TOKEN)?,
            Method::POST,
            &url,
            Some(&body),
        )
        .await?;
    sent.message_id.ok_or_else(|| {
        PlatformError::Rejected("Zoom sent the chatbot's message without an id".to_owned())
    })
}

/// Replaces the text of a message the chatbot sent to the user whose address is `jid`.
///
/// - Edit a chatbot message: <https://developers.zoom.us/docs/chat/send-edit-and-delete-messages>
pub(crate) async fn edit_chatbot_message(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    jid: &str,
    message: &str,
    content: serde_json::Value,
) -> Result<(), PlatformError> {
    let body = json!({
        "robot_jid": platform.robot_jid,
        "account_id": platform.account_id,
        "user_jid": jid,
        "content": content,
    });
    let url = platform
        .client
        .url(&format!("im/chat/messages/{}", segment(message)?), &[])?;
    platform
        .client
        .send(
            secret(&connection.credentials, CHATBOT_TOKEN)?,
            Method::PUT,
            &url,
            Some(&body),
        )
        .await
}

/// Deletes a message the chatbot sent to the user whose address is `jid`.
pub(crate) async fn delete_chatbot_message(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
    jid: &str,
    message: &str,
) -> Result<(), PlatformError> {
    let url = platform.client.url(
        &format!("im/chat/messages/{}", segment(message)?),
        &[
            ("robot_jid", platform.robot_jid.as_str()),
            ("account_id", platform.account_id.as_str()),
            ("user_jid", jid),
        ],
    )?;
    platform
        .client
        .send(
            secret(&connection.credentials, CHATBOT_TOKEN)?,
            Method::DELETE,
            &url,
            None,
        )
        .await
}

/// The hub creates nothing on Zoom: a person with an account is represented by it once they
/// authorise it (after a prompt). The hub provisions someone without one only when the admin
/// allows the fallback: the chatbot relays for them, under their name and primary platform,
/// which needs nothing made on Zoom.
pub(crate) fn provision_representation(
    request: &ProvisionRequest,
) -> Result<Provisioning, PlatformError> {
    if let Some(account) = &request.existing_account {
        return Err(PlatformError::Rejected(format!(
            "the hub acts as the Zoom account {account} only once its owner authorises it, through the prompt's link"
        )));
    }
    let label = match &request.primary_platform {
        Some(primary) => format!("{} ({primary})", request.display_name),
        None => request.display_name.clone(),
    };
    let mut credentials = Credentials::default();
    credentials.insert(credential::RELAY_LABEL, SecretString::from(label));
    Ok(Provisioning::Ready {
        account: ExternalUserId::new(relayed_account(request.email.as_str())),
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_secrets::ExposeSecret;

    #[test]
    fn the_cursor_runs_through_active_then_deactivated_users() {
        assert_eq!(read_cursor(None).unwrap(), (0, ""));
        assert_eq!(read_cursor(Some("active:abc")).unwrap(), (0, "abc"));
        assert_eq!(read_cursor(Some("inactive:")).unwrap(), (1, ""));
        assert!(read_cursor(Some("pending:x")).is_err());
        assert!(read_cursor(Some("garbage")).is_err());
        assert_eq!(cursor("inactive", "t:1"), "inactive:t:1");
        assert_eq!(read_cursor(Some("inactive:t:1")).unwrap(), (1, "t:1"));
    }

    #[test]
    fn only_the_chatbot_relay_is_provisioned_and_it_makes_nothing_on_zoom() {
        let request = |existing: Option<&str>| ProvisionRequest {
            display_name: "Ada".to_owned(),
            email: Email::parse("ada@elsewhere.example").unwrap(),
            avatar_url: None,
            existing_account: existing.map(ExternalUserId::new),
            primary_platform: None,
        };
        assert!(matches!(
            provision_representation(&request(Some("U1"))),
            Err(PlatformError::Rejected(_))
        ));
        let mut from_slack = request(None);
        from_slack.primary_platform = Some("Slack".to_owned());
        match provision_representation(&from_slack) {
            Ok(Provisioning::Ready {
                account,
                credentials,
            }) => {
                assert_eq!(account.as_str(), "chatbot-relay:ada@elsewhere.example");
                assert_eq!(
                    credentials
                        .get(credential::RELAY_LABEL)
                        .unwrap()
                        .expose_secret(),
                    "Ada (Slack)"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

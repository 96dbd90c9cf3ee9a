//! Connecting the account and linking people's own accounts, the apps' tokens, refresh and
//! health.
//!
//! Connecting is one browser step: the account's admin signs in to Zoom and allows the
//! user-managed app, which proves that app is set up and says which account the admin is in
//! (it must be the configured `account_id`); the hub then asks for the server-to-server app's
//! token (`account_credentials`) and the chatbot's (`client_credentials`), which are the
//! connection's credentials. The admin's own grant is not kept: the admin links their account
//! like anyone else, when prompted. A person links their own account the same way, from the
//! prompt's "Sync now", and must sign in as that account.
//!
//! - OAuth for user-managed apps: <https://developers.zoom.us/docs/integrations/oauth/>
//! - Server-to-Server OAuth: <https://developers.zoom.us/docs/internal-apps/s2s-oauth/>
//! - Chatbot tokens: <https://developers.zoom.us/docs/team-chat/chatbot/extend/>

use serde::{Deserialize, Serialize};
use switchboard_core::{ExternalTenantId, ExternalUserId, Timestamp};
use switchboard_platform::{
    ConnectionContext, Credentials, FlowContext, FlowOutcome, FlowState, FlowStep, Health,
    PlatformError,
};
use switchboard_secrets::SecretString;

use crate::credential::*;
use crate::wire::{TokenGrant, User};
use crate::{ZoomPlatform, secret};

/// The granular scopes the server-to-server app needs: the account's users, and the Team Chat
/// messages its event subscription tells of (Zoom offers an event only to an app with the
/// scope that reads what it is about).
pub const S2S_SCOPES: &[&str] = &[
    "user:read:list_users:admin",
    "user:read:user:admin",
    "team_chat:read:list_user_messages:admin",
    "team_chat:read:user_message:admin",
];

/// The granular scopes the user-managed app needs to act as the person who allows it.
pub const USER_SCOPES: &[&str] = &[
    "user:read:user",
    "team_chat:read:list_user_messages",
    "team_chat:read:user_message",
    "team_chat:write:user_message",
    "team_chat:update:user_message",
    "team_chat:delete:user_message",
    "team_chat:update:message_emoji",
    "team_chat:write:user_channel",
    "team_chat:read:list_members",
];

/// The chatbot's scope: sending as the chatbot.
pub const CHATBOT_SCOPES: &[&str] = &["imchat:bot"];

/// A token's expiry: `expires_in` seconds after `now`; `None` when Zoom does not say.
fn expiry(now: Timestamp, expires_in: Option<i64>) -> Option<Timestamp> {
    expires_in.filter(|seconds| *seconds > 0).map(|seconds| {
        Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_add(seconds.saturating_mul(1000)),
        )
    })
}

/// The earlier of two expiries, either of which may be unknown.
fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a browser flow remembers until it comes back (sealed by the hub).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    /// The account's admin allows the user-managed app.
    Connect,
    /// A person links their own account.
    Authorize { account: String },
}

impl Step {
    fn redirect(
        &self,
        platform: &ZoomPlatform,
        flow: &FlowContext,
    ) -> Result<FlowStep, PlatformError> {
        let state = serde_json::to_string(self)
            .map(FlowState)
            .map_err(|e| PlatformError::Rejected(format!("cannot keep the flow's state: {e}")))?;
        // Zoom's apps carry their scopes on the Marketplace: the request names none.
        let url = platform.client.authorize_url(&[
            ("response_type", "code"),
            ("client_id", platform.user_app.0.as_str()),
            ("redirect_uri", flow.callback_url.as_str()),
            ("state", flow.state.as_str()),
        ])?;
        Ok(FlowStep::Redirect { url, state })
    }
}

impl ZoomPlatform {
    /// The user `token` acts as (`GET /users/me`).
    pub(crate) async fn me(&self, token: &str) -> Result<User, PlatformError> {
        let url = self.client.url("users/me", &[])?;
        self.client.get(token, &url).await
    }

    /// New tokens of the server-to-server app and the chatbot: the connection's credentials.
    async fn app_tokens(&self) -> Result<Credentials, PlatformError> {
        let account = self
            .client
            .token(
                (self.s2s.0.as_str(), &self.s2s.1),
                &[
                    ("grant_type", "account_credentials"),
                    ("account_id", self.account_id.as_str()),
                ],
            )
            .await?;
        let chatbot = self
            .client
            .token(
                (self.chatbot.0.as_str(), &self.chatbot.1),
                &[("grant_type", "client_credentials")],
            )
            .await?;
        let now = self.now();
        let mut credentials = Credentials::default();
        credentials.set_expires_at(earliest(
            expiry(now, account.expires_in),
            expiry(now, chatbot.expires_in),
        ));
        credentials.insert(S2S_TOKEN, SecretString::from(account.access_token));
        credentials.insert(CHATBOT_TOKEN, SecretString::from(chatbot.access_token));
        Ok(credentials)
    }

    /// A person's tokens of the user-managed app as credentials.
    fn user_credentials(&self, grant: TokenGrant) -> Result<Credentials, PlatformError> {
        let refresh = grant.refresh_token.ok_or_else(|| {
            PlatformError::Rejected("Zoom granted the user-managed app no refresh token".to_owned())
        })?;
        let mut credentials = Credentials::default();
        credentials.insert(ACCESS_TOKEN, SecretString::from(grant.access_token));
        credentials.insert(REFRESH_TOKEN, SecretString::from(refresh));
        credentials.set_expires_at(expiry(self.now(), grant.expires_in));
        Ok(credentials)
    }
}

pub(crate) fn begin_connect(
    platform: &ZoomPlatform,
    flow: &FlowContext,
) -> Result<FlowStep, PlatformError> {
    Step::Connect.redirect(platform, flow)
}

pub(crate) fn begin_authorize(
    platform: &ZoomPlatform,
    account: &ExternalUserId,
    flow: &FlowContext,
) -> Result<FlowStep, PlatformError> {
    Step::Authorize {
        account: account.as_str().to_owned(),
    }
    .redirect(platform, flow)
}

pub(crate) async fn continue_flow(
    platform: &ZoomPlatform,
    state: &FlowState,
    flow: &FlowContext,
    callback: &[(String, String)],
) -> Result<FlowStep, PlatformError> {
    let param = |name: &str| {
        callback
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let step: Step = serde_json::from_str(&state.0)
        .map_err(|_| PlatformError::Rejected("not a flow this module started".to_owned()))?;
    // The state the flow was started with comes back unchanged on Zoom's redirect; a callback
    // with another is not this flow's (OAuth 2.0, RFC 6749 §10.12), and its code is not redeemed.
    if param("state") != Some(flow.state.as_str()) {
        return Err(PlatformError::Rejected(
            "the callback does not carry this sign-in's state".to_owned(),
        ));
    }
    if let Some(error) = param("error") {
        // OAuth 2.0 (RFC 6749 §4.1.2.1): `access_denied` is the person choosing Decline on
        // Zoom's consent page.
        if error == "access_denied" {
            return Err(PlatformError::Rejected(
                "the sign-in on Zoom was declined, so the hub's app was not allowed".to_owned(),
            ));
        }
        return Err(PlatformError::Rejected(format!(
            "Zoom did not allow the hub's app: {error} {}",
            param("error_description").unwrap_or_default()
        )));
    }
    let code = param("code")
        .ok_or_else(|| PlatformError::Rejected("Zoom returned no authorisation code".to_owned()))?;
    let grant = platform
        .client
        .token(
            (platform.user_app.0.as_str(), &platform.user_app.1),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", flow.callback_url.as_str()),
            ],
        )
        .await?;
    let me = platform.me(&grant.access_token).await?;
    let signed_in = me
        .id
        .clone()
        .ok_or_else(|| PlatformError::Rejected("users/me answered without an id".to_owned()))?;
    let who = me.email.clone().unwrap_or_else(|| signed_in.clone());
    match step {
        Step::Connect => {
            if me.account_id.as_deref() != Some(platform.account_id.as_str()) {
                return Err(PlatformError::Rejected(format!(
                    "{who} signed in to another Zoom account than the configured account_id {}; sign in as an admin of that account",
                    platform.account_id
                )));
            }
            let credentials = platform.app_tokens().await?;
            let display_name = who.rsplit_once('@').map_or_else(
                || platform.account_id.clone(),
                |(_, domain)| domain.to_owned(),
            );
            Ok(FlowStep::Done(FlowOutcome::Connected {
                tenant: ExternalTenantId::new(platform.account_id.clone()),
                display_name,
                credentials,
            }))
        }
        Step::Authorize { account } => {
            if signed_in != account {
                return Err(PlatformError::Rejected(format!(
                    "signed in as {who}, not as the account that was prompted; sign in with your own Zoom account"
                )));
            }
            Ok(FlowStep::Done(FlowOutcome::Authorized {
                account: ExternalUserId::new(account),
                credentials: platform.user_credentials(grant)?,
            }))
        }
    }
}

/// New tokens before the old ones expire: a person's by their refresh token (which Zoom
/// replaces), the connection's by asking the apps again. A server-to-server token is issued
/// even when what it would act for is gone, so the new one is tried once: a connection whose
/// token no longer works must be reported now, not at the next message.
pub(crate) async fn refresh(
    platform: &ZoomPlatform,
    credentials: &Credentials,
) -> Result<Credentials, PlatformError> {
    if let Ok(refresh_token) = secret(credentials, REFRESH_TOKEN) {
        let grant = platform
            .client
            .token(
                (platform.user_app.0.as_str(), &platform.user_app.1),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?;
        return platform.user_credentials(grant);
    }
    secret(credentials, S2S_TOKEN)?;
    let fresh = platform.app_tokens().await?;
    platform.me(secret(&fresh, S2S_TOKEN)?).await?;
    Ok(fresh)
}

pub(crate) async fn check_health(
    platform: &ZoomPlatform,
    connection: &ConnectionContext,
) -> Result<Health, PlatformError> {
    let me = platform.me(platform.account_token(connection)?).await?;
    let scopes = S2S_SCOPES
        .iter()
        .chain(CHATBOT_SCOPES)
        .map(|scope| (*scope).to_owned())
        .collect();
    Ok(Health {
        identity: format!(
            "Zoom account {} (server-to-server app of {})",
            platform.account_id,
            me.email.unwrap_or_default()
        ),
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_count_from_now_and_the_earliest_wins() {
        let now = Timestamp::from_unix_millis(1_000_000);
        assert_eq!(
            expiry(now, Some(3599)),
            Some(Timestamp::from_unix_millis(1_000_000 + 3_599_000))
        );
        assert_eq!(expiry(now, None), None);
        assert_eq!(expiry(now, Some(0)), None);
        let soon = Some(Timestamp::from_unix_millis(5));
        let later = Some(Timestamp::from_unix_millis(9));
        assert_eq!(earliest(soon, later), soon);
        assert_eq!(earliest(later, soon), soon);
        assert_eq!(earliest(None, later), later);
        assert_eq!(earliest(None, None), None);
    }
}

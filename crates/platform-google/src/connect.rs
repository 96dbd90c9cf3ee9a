//! Connecting a Workspace, which needs no browser: the admin gives the service account's key,
//! the admin to act as for the directory, the Pub/Sub topic and the push identity, and the hub
//! proves the domain-wide delegation scope by scope. Also the OAuth code flow for a person who
//! authorises their own account (only when an admin chose prompts over delegation), refresh
//! and health.
//!
//! - Delegation: <https://support.google.com/a/answer/162106>
//! - User OAuth for web servers: <https://developers.google.com/identity/protocols/oauth2/web-server>

use reqwest::Url;
use serde::{Deserialize, Serialize};
use switchboard_core::{ExternalTenantId, ExternalUserId};
use switchboard_platform::{
    ConnectField, ConnectionContext, Credentials, FlowContext, FlowOutcome, FlowState, FlowStep,
    Health, PlatformError,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::auth::{self, DELEGATION_SCOPES, REQUIRED_SCOPES, USER_SCOPES};
use crate::{GoogleChatPlatform, credential, directory};

pub(crate) fn fields() -> Vec<ConnectField> {
    vec![
        ConnectField {
            name: credential::SERVICE_ACCOUNT_KEY,
            label: "Service account key (JSON)",
            help: "Google Cloud console › IAM & Admin › Service accounts › the hub's service account › Keys › Add key › JSON. Its client ID must be granted domain-wide delegation for the scopes in the hub's documentation.",
            secret: true,
        },
        ConnectField {
            name: credential::ADMIN_EMAIL,
            label: "Workspace admin e-mail",
            help: "A Workspace administrator (with the User Management privilege) the hub acts as to read the directory and create guest accounts.",
            secret: false,
        },
        ConnectField {
            name: credential::CUSTOMER,
            label: "Customer ID",
            help: "\"my_customer\" for the admin's own Workspace, or its customer ID (Admin console › Account › Account settings).",
            secret: false,
        },
        ConnectField {
            name: credential::PUBSUB_TOPIC,
            label: "Pub/Sub topic",
            help: "projects/PROJECT/topics/TOPIC, on which chat-api-push@system.gserviceaccount.com may publish; its push subscription must push to the hub's webhook URL with an OIDC token.",
            secret: false,
        },
        ConnectField {
            name: credential::PUSH_SERVICE_ACCOUNT,
            label: "Push service account",
            help: "The service account e-mail the push subscription's OIDC tokens are minted for (Pub/Sub › Subscriptions › the push subscription › Authentication).",
            secret: false,
        },
    ]
}

fn input<'a>(inputs: &'a Credentials, name: &'static str) -> Result<&'a str, PlatformError> {
    let value = inputs.get(name)?.expose_secret().trim();
    if value.is_empty() {
        return Err(PlatformError::Rejected(format!("{name} is empty")));
    }
    Ok(value)
}

fn is_topic(topic: &str) -> bool {
    let parts: Vec<&str> = topic.split('/').collect();
    matches!(parts.as_slice(), ["projects", project, "topics", name] if !project.is_empty() && !name.is_empty())
}

/// Checks the inputs, proves each delegated scope as the admin, and reads the Workspace's
/// customer id and domain.
pub(crate) async fn begin_connect(
    platform: &GoogleChatPlatform,
    inputs: &Credentials,
) -> Result<FlowStep, PlatformError> {
    let key_json = input(inputs, credential::SERVICE_ACCOUNT_KEY)?;
    let key = auth::parse_key(key_json)?;
    let admin = input(inputs, credential::ADMIN_EMAIL)?;
    let customer = inputs
        .get(credential::CUSTOMER)
        .map(|value| value.expose_secret().trim())
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or("my_customer");
    let topic = input(inputs, credential::PUBSUB_TOPIC)?;
    if !is_topic(topic) {
        return Err(PlatformError::Rejected(format!(
            "the Pub/Sub topic {topic:?} is not of the form projects/PROJECT/topics/TOPIC"
        )));
    }
    let pusher = input(inputs, credential::PUSH_SERVICE_ACCOUNT)?;
    if !pusher.contains('@') {
        return Err(PlatformError::Rejected(format!(
            "the push service account {pusher:?} is not an e-mail address"
        )));
    }
    // Google's token endpoint answers `unauthorized_client` for a delegation that lacks any of
    // the scopes asked for, without saying which: one at a time, the answer names them.
    let mut missing = Vec::new();
    for scope in REQUIRED_SCOPES {
        match platform
            .tokens
            .mint(&platform.client, &key, Some(admin), &[scope])
            .await
        {
            Ok(_) => {}
            Err(PlatformError::Unauthorized(_)) => missing.push(auth::short(scope)),
            Err(error) => return Err(error),
        }
    }
    if !missing.is_empty() {
        return Err(PlatformError::Unauthorized(format!(
            "the domain-wide delegation of client ID {} does not grant {} as {admin} (Admin console › Security › API controls › Domain-wide delegation; or {admin} is not a user of this Workspace)",
            key.client_id.as_deref().unwrap_or(&key.client_email),
            missing.join(", ")
        )));
    }
    let admin_token = platform
        .tokens
        .service_account(&platform.client, &key, Some(admin), auth::DIRECTORY_SCOPES)
        .await?;
    let admin_user = directory::get_user_as(platform, &admin_token, admin)
        .await?
        .ok_or_else(|| {
            PlatformError::Rejected(format!("{admin} is not a user of this Workspace"))
        })?;
    // Stored as its id, so imports name the same Workspace whoever the admin later is.
    let customer_id = match admin_user.customer_id.clone() {
        Some(id) => id,
        None if customer != "my_customer" => customer.to_owned(),
        None => {
            return Err(PlatformError::Rejected(
                "the directory does not say the admin's customer id; enter it instead of my_customer".to_owned(),
            ));
        }
    };
    let domain = admin_user
        .primary_email
        .as_deref()
        .and_then(|email| email.rsplit_once('@'))
        .map_or_else(|| customer_id.clone(), |(_, domain)| domain.to_owned());
    let mut credentials = Credentials::default();
    credentials.insert(
        credential::SERVICE_ACCOUNT_KEY,
        SecretString::from(key_json),
    );
    credentials.insert(credential::ADMIN_EMAIL, SecretString::from(admin));
    credentials.insert(
        credential::CUSTOMER,
        SecretString::from(customer_id.as_str()),
    );
    credentials.insert(credential::PUBSUB_TOPIC, SecretString::from(topic));
    credentials.insert(credential::PUSH_SERVICE_ACCOUNT, SecretString::from(pusher));
    Ok(FlowStep::Done(FlowOutcome::Connected {
        tenant: ExternalTenantId::new(customer_id),
        display_name: domain,
        credentials,
    }))
}

/// What the user OAuth flow remembers until the browser comes back.
#[derive(Debug, Serialize, Deserialize)]
struct AuthorizeState {
    account: String,
    email: String,
}

pub(crate) async fn begin_authorize(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    account: &ExternalUserId,
    flow: &FlowContext,
) -> Result<FlowStep, PlatformError> {
    let (client_id, _) = platform.oauth_client()?;
    let email = platform.subject_of(connection, account).await?;
    let mut scopes: Vec<&str> = vec!["openid", "email"];
    scopes.extend(USER_SCOPES);
    let scope = scopes.join(" ");
    let mut url = Url::parse(&platform.authorize_url)
        .map_err(|e| PlatformError::Rejected(format!("bad authorize_url: {e}")))?;
    url.query_pairs_mut().extend_pairs([
        ("client_id", client_id.as_str()),
        ("redirect_uri", flow.callback_url.as_str()),
        ("response_type", "code"),
        ("scope", scope.as_str()),
        ("access_type", "offline"),
        // A refresh token is only issued on consent; asking again makes sure of one.
        ("prompt", "consent"),
        ("include_granted_scopes", "true"),
        ("login_hint", email.as_str()),
        ("state", flow.state.as_str()),
    ]);
    let state = serde_json::to_string(&AuthorizeState {
        account: account.as_str().to_owned(),
        email,
    })
    .map_err(|e| PlatformError::Rejected(format!("cannot keep the flow's state: {e}")))?;
    Ok(FlowStep::Redirect {
        url: url.into(),
        state: FlowState(state),
    })
}

/// Who a user token belongs to, as Google's token-information endpoint (next to the token
/// endpoint) says.
#[derive(Debug, Deserialize)]
struct TokenInfo {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// `https://oauth2.googleapis.com/token` → `https://oauth2.googleapis.com/tokeninfo`.
fn tokeninfo_url(token_url: &str) -> String {
    format!("{}info", token_url.trim_end_matches('/'))
}

pub(crate) async fn continue_flow(
    platform: &GoogleChatPlatform,
    _connection: Option<&ConnectionContext>,
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
    if let Some(error) = param("error") {
        return Err(PlatformError::Rejected(format!(
            "Google did not authorise the account: {error}"
        )));
    }
    let asked: AuthorizeState = serde_json::from_str(&state.0)
        .map_err(|_| PlatformError::Rejected("not a flow this module started".to_owned()))?;
    let code = param("code").ok_or_else(|| {
        PlatformError::Rejected("Google returned no authorisation code".to_owned())
    })?;
    let (client_id, client_secret) = platform.oauth_client()?;
    let grant = platform
        .client
        .token(
            &platform.token_url,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", flow.callback_url.as_str()),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.expose_secret()),
            ],
        )
        .await?;
    let claims: TokenInfo = platform
        .client
        .public_get(
            &tokeninfo_url(&platform.token_url),
            &[("access_token", &grant.access_token)],
        )
        .await?;
    let same_account = claims.sub.as_deref() == Some(asked.account.as_str())
        || claims
            .email
            .as_deref()
            .is_some_and(|email| email.eq_ignore_ascii_case(&asked.email));
    if !same_account {
        return Err(PlatformError::Rejected(format!(
            "signed in as {}, not as {}: sign in with the account being synced",
            claims.email.as_deref().unwrap_or("another account"),
            asked.email
        )));
    }
    let refresh_token = grant.refresh_token.ok_or_else(|| {
        PlatformError::Rejected("Google issued no refresh token; authorise again".to_owned())
    })?;
    let mut credentials = Credentials::default();
    credentials.insert(credential::REFRESH_TOKEN, SecretString::from(refresh_token));
    Ok(FlowStep::Done(FlowOutcome::Authorized {
        account: ExternalUserId::new(asked.account),
        credentials,
    }))
}

/// Nothing the hub stores expires (a key, a refresh token): refreshing proves they still work.
pub(crate) async fn refresh(
    platform: &GoogleChatPlatform,
    _connection: &ConnectionContext,
    credentials: &Credentials,
) -> Result<Credentials, PlatformError> {
    if let Ok(refresh_token) = credentials.get(credential::REFRESH_TOKEN) {
        platform
            .tokens
            .refreshed(
                &platform.client,
                &platform.token_url,
                platform.oauth_client()?,
                refresh_token.expose_secret(),
            )
            .await?;
    } else if credentials.get(credential::SERVICE_ACCOUNT_KEY).is_ok() {
        let key = auth::parse_key(
            credentials
                .get(credential::SERVICE_ACCOUNT_KEY)?
                .expose_secret(),
        )?;
        let admin = credentials.get(credential::ADMIN_EMAIL)?.expose_secret();
        platform
            .tokens
            .mint(&platform.client, &key, Some(admin), auth::DIRECTORY_SCOPES)
            .await?;
    }
    Ok(credentials.clone())
}

pub(crate) async fn check_health(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
) -> Result<Health, PlatformError> {
    let key = GoogleChatPlatform::key(connection)?;
    let admin = GoogleChatPlatform::text(connection, credential::ADMIN_EMAIL)?;
    let token = platform
        .tokens
        .mint(&platform.client, &key, Some(admin), auth::DIRECTORY_SCOPES)
        .await?;
    directory::get_user_as(platform, &token, admin)
        .await?
        .ok_or_else(|| PlatformError::Unauthorized(format!("{admin} is no longer a user")))?;
    platform
        .tokens
        .mint(&platform.client, &key, None, &[auth::APP_SCOPE])
        .await?;
    if let Err(error) = platform.signing_keys.refresh().await {
        tracing::warn!(%error, "cannot fetch Google's signing keys");
    }
    Ok(Health {
        identity: format!("{} acting as {admin}", key.client_email),
        scopes: DELEGATION_SCOPES
            .iter()
            .chain(&[auth::APP_SCOPE])
            .map(|scope| (*scope).to_owned())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_checked_for_their_form() {
        assert!(is_topic("projects/p/topics/chat"));
        for bad in [
            "p/topics/chat",
            "projects//topics/t",
            "projects/p/topics/",
            "projects/p/subscriptions/s",
        ] {
            assert!(!is_topic(bad), "{bad}");
        }
    }

    #[test]
    fn token_information_is_next_to_the_token_endpoint() {
        assert_eq!(
            tokeninfo_url("https://oauth2.googleapis.com/token"),
            "https://oauth2.googleapis.com/tokeninfo"
        );
    }

    #[test]
    fn every_connect_field_is_named_as_its_credential() {
        let names: Vec<&str> = fields().iter().map(|field| field.name).collect();
        assert_eq!(
            names,
            [
                "service_account_key",
                "admin_email",
                "customer",
                "pubsub_topic",
                "push_service_account"
            ]
        );
        assert!(fields().iter().filter(|field| field.secret).count() == 1);
    }
}

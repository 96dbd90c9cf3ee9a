//! Connecting a tenant and authorising accounts with Entra ID, and the tokens each actor acts
//! with.
//!
//! A connection is made in two browser steps: an administrator grants the hub app admin
//! consent, then the service user signs in (authorization code with PKCE). A person is asked
//! to authorise their own account the same way. The hub app's own tokens (client credentials)
//! are cached per tenant; hub-created guests sign in with the password the hub holds.
//!
//! - Admin consent: <https://learn.microsoft.com/en-us/entra/identity-platform/v2-admin-consent>
//! - Authorization code with PKCE: <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>
//! - Client credentials: <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_core::{ExternalTenantId, ExternalUserId};
use switchboard_platform::{
    Actor, ConnectionContext, Credentials, FlowContext, FlowOutcome, FlowState, FlowStep, Health,
    PlatformError,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::TeamsPlatform;
use crate::client::{Page, TokenGrant, path};
use crate::credential::*;
use crate::webhook;

/// The delegated scopes the service user and people consent to: enough to find themselves,
/// create chats and post, edit, delete and react in them.
const DELEGATED_SCOPES: &str =
    "offline_access User.Read Chat.ReadWrite ChatMessage.Send Chat.Create ChatMember.ReadWrite";
const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

/// What the browser flow remembers between its steps (sealed by the hub).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    /// The admin was sent to grant admin consent.
    AdminConsent { state: String, redirect_uri: String },
    /// The service user was sent to sign in (authorization code with PKCE).
    ServiceSignIn {
        state: String,
        redirect_uri: String,
        tenant: String,
        verifier: String,
    },
    /// A person was sent to authorise their own account.
    Authorize {
        state: String,
        redirect_uri: String,
        tenant: String,
        account: String,
        verifier: String,
    },
}

impl Step {
    fn state(&self) -> &str {
        match self {
            Step::AdminConsent { state, .. }
            | Step::ServiceSignIn { state, .. }
            | Step::Authorize { state, .. } => state,
        }
    }

    fn encode(&self) -> FlowState {
        FlowState(serde_json::to_string(self).unwrap_or_default())
    }
}

pub(crate) struct CachedToken {
    token: String,
    valid_until: Instant,
}

/// The signed-in user (`GET /me`), as far as the hub reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    id: Option<String>,
    display_name: Option<String>,
    user_principal_name: Option<String>,
}

/// An organisation (`GET /organization`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Organization {
    display_name: Option<String>,
}

/// A user read to address a sign-in to them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInHint {
    user_principal_name: Option<String>,
}

impl TeamsPlatform {
    /// An application token for `tenant` (client credentials with `.default`: the permissions
    /// admin consent granted there).
    pub(crate) async fn app_token(&self, tenant: &str) -> Result<String, PlatformError> {
        let now = Instant::now();
        if let Some(cached) = self.lock_tokens().get(tenant)
            && cached.valid_until > now
        {
            return Ok(cached.token.clone());
        }
        let grant = self
            .client
            .token(
                tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", GRAPH_DEFAULT),
                ],
            )
            .await?;
        let lifetime = grant.expires_in.unwrap_or(0);
        let margin = lifetime.min(300).max(lifetime / 2);
        let valid_until = now + Duration::from_secs(lifetime.saturating_sub(margin));
        self.lock_tokens().insert(
            tenant.to_owned(),
            CachedToken {
                token: grant.access_token.clone(),
                valid_until,
            },
        );
        Ok(grant.access_token)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        self.app_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) async fn tenant_app_token(
        &self,
        connection: &ConnectionContext,
    ) -> Result<String, PlatformError> {
        self.app_token(connection.connection.tenant.as_str()).await
    }

    /// The token and user id an actor acts with.
    pub(crate) fn acting<'a>(
        connection: &'a ConnectionContext,
        actor: &'a Actor,
    ) -> Result<(&'a str, String), PlatformError> {
        match actor {
            Actor::Hub => Ok((
                connection.credentials.get(ACCESS_TOKEN)?.expose_secret(),
                connection
                    .credentials
                    .get(SERVICE_USER_ID)?
                    .expose_secret()
                    .to_owned(),
            )),
            Actor::Representation {
                account,
                credentials,
            } => Ok((
                credentials.get(ACCESS_TOKEN)?.expose_secret(),
                account.as_str().to_owned(),
            )),
            Actor::Delegated { .. } => Err(PlatformError::Unsupported(
                "acting for any account: the hub reads Teams chats with its own app",
            )),
        }
    }

    /// `actor`'s delegated token, or with `None` the hub app's.
    pub(crate) async fn token_for(
        &self,
        connection: &ConnectionContext,
        actor: Option<&Actor>,
    ) -> Result<String, PlatformError> {
        match actor {
            Some(actor) => Ok(Self::acting(connection, actor)?.0.to_owned()),
            None => self.tenant_app_token(connection).await,
        }
    }

    pub(crate) fn credentials_from(grant: &TokenGrant) -> Credentials {
        let mut credentials = Credentials::default();
        credentials.insert(ACCESS_TOKEN, SecretString::from(grant.access_token.clone()));
        if let Some(refresh) = &grant.refresh_token {
            credentials.insert(REFRESH_TOKEN, SecretString::from(refresh.clone()));
        }
        if let Some(scope) = &grant.scope {
            credentials.insert(SCOPE, SecretString::from(scope.clone()));
        }
        credentials.set_expires_at(grant.expires_at);
        credentials
    }

    /// A delegated token for a hub-created guest, signing its interop identity into the
    /// customer tenant (resource-owner password grant; see docs/platforms/teams.md).
    pub(crate) async fn guest_sign_in(
        &self,
        tenant: &str,
        upn: &str,
        password: &str,
    ) -> Result<TokenGrant, PlatformError> {
        let scope = format!("{GRAPH_DEFAULT} offline_access");
        self.client
            .token(
                tenant,
                &[
                    ("grant_type", "password"),
                    ("username", upn),
                    ("password", password),
                    ("scope", &scope),
                ],
            )
            .await
    }

    async fn me(&self, token: &str) -> Result<Me, PlatformError> {
        let url = self.client.graph_url(
            "/me",
            &[("$select", "id,displayName,userPrincipalName,mail")],
        )?;
        self.client.get(token, &url).await
    }

    async fn redeem_code(
        &self,
        tenant: &str,
        redirect_uri: &str,
        verifier: &str,
        callback: &[(String, String)],
    ) -> Result<(TokenGrant, Me), PlatformError> {
        let code = param(callback, "code").ok_or_else(|| {
            PlatformError::Rejected("the sign-in came back without a code".to_owned())
        })?;
        let grant = self
            .client
            .token(
                tenant,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier),
                    ("scope", DELEGATED_SCOPES),
                ],
            )
            .await?;
        let me = self.me(&grant.access_token).await?;
        Ok((grant, me))
    }

    /// The organisation's name (`GET /organization`), else the service user's domain.
    async fn organisation_name(&self, tenant: &str, me: &Me) -> Result<String, PlatformError> {
        let token = self.app_token(tenant).await?;
        let url = self
            .client
            .graph_url("/organization", &[("$select", "id,displayName")])?;
        match self.client.get::<Page<Organization>>(&token, &url).await {
            Ok(page) => {
                if let Some(name) = page
                    .items()
                    .into_iter()
                    .next()
                    .and_then(|org| org.display_name)
                {
                    return Ok(name);
                }
            }
            Err(error) if error.is_retryable() => return Err(error),
            Err(_) => {}
        }
        let upn = me.user_principal_name.as_deref().unwrap_or_default();
        Ok(upn
            .rsplit_once('@')
            .map_or_else(|| tenant.to_owned(), |(_, domain)| domain.to_owned()))
    }

    fn authorize_url(
        &self,
        tenant: &str,
        redirect_uri: &str,
        state: &str,
        verifier: &str,
        login_hint: Option<&str>,
    ) -> Result<String, PlatformError> {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut query = vec![
            ("client_id", self.client.client_id()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("response_mode", "query"),
            ("scope", DELEGATED_SCOPES),
            ("state", state),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(hint) = login_hint {
            query.push(("login_hint", hint));
        }
        self.client
            .login_url(tenant, "oauth2/v2.0/authorize", &query)
    }
}

pub(crate) fn begin_connect(
    teams: &TeamsPlatform,
    inputs: &Credentials,
    flow: &FlowContext,
) -> Result<FlowStep, PlatformError> {
    let tenant = inputs
        .get("tenant")
        .map(|t| t.expose_secret().trim().to_owned())
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "organizations".to_owned());
    let url = teams.client.login_url(
        &tenant,
        "v2.0/adminconsent",
        &[
            ("client_id", teams.client.client_id()),
            ("scope", GRAPH_DEFAULT),
            ("redirect_uri", &flow.callback_url),
            ("state", &flow.state),
        ],
    )?;
    Ok(FlowStep::Redirect {
        url,
        state: Step::AdminConsent {
            state: flow.state.clone(),
            redirect_uri: flow.callback_url.clone(),
        }
        .encode(),
    })
}

pub(crate) async fn continue_flow(
    teams: &TeamsPlatform,
    state: &FlowState,
    flow: &FlowContext,
    callback: &[(String, String)],
) -> Result<FlowStep, PlatformError> {
    let step: Step = serde_json::from_str(&state.0)
        .map_err(|e| PlatformError::Rejected(format!("unreadable flow state: {e}")))?;
    let returned = param(callback, "state").unwrap_or_default();
    if !webhook::constant_time_eq(returned.as_bytes(), step.state().as_bytes()) {
        return Err(PlatformError::Rejected(
            "the sign-in came back with another flow's state".to_owned(),
        ));
    }
    if let Some(error) = param(callback, "error") {
        let description = param(callback, "error_description").unwrap_or_default();
        let who = match step {
            Step::AdminConsent { .. } => "the administrator",
            Step::ServiceSignIn { .. } => "the service user",
            Step::Authorize { .. } => "the person",
        };
        return Err(PlatformError::Rejected(if error == "access_denied" {
            format!("{who} declined: {description}")
        } else {
            format!("{error}: {description}")
        }));
    }
    match step {
        Step::AdminConsent { .. } => {
            let consented =
                param(callback, "admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let tenant = param(callback, "tenant").filter(|t| !t.is_empty());
            let (true, Some(tenant)) = (consented, tenant) else {
                return Err(PlatformError::Rejected(
                    "admin consent came back without consent or tenant".to_owned(),
                ));
            };
            let verifier = random_token(32);
            let url =
                teams.authorize_url(tenant, &flow.callback_url, &flow.state, &verifier, None)?;
            Ok(FlowStep::Redirect {
                url,
                state: Step::ServiceSignIn {
                    state: flow.state.clone(),
                    redirect_uri: flow.callback_url.clone(),
                    tenant: tenant.to_owned(),
                    verifier,
                }
                .encode(),
            })
        }
        Step::ServiceSignIn {
            redirect_uri,
            tenant,
            verifier,
            ..
        } => {
            let (grant, me) = teams
                .redeem_code(&tenant, &redirect_uri, &verifier, callback)
                .await?;
            let id = me
                .id
                .clone()
                .ok_or_else(|| PlatformError::Rejected("/me answered without an id".to_owned()))?;
            let display_name = teams.organisation_name(&tenant, &me).await?;
            let mut credentials = TeamsPlatform::credentials_from(&grant);
            credentials.insert(SERVICE_USER_ID, SecretString::from(id));
            credentials.insert(CLIENT_STATE, SecretString::from(random_token(32)));
            Ok(FlowStep::Done(FlowOutcome::Connected {
                tenant: ExternalTenantId::new(tenant),
                display_name,
                credentials,
            }))
        }
        Step::Authorize {
            redirect_uri,
            tenant,
            account,
            verifier,
            ..
        } => {
            let (grant, me) = teams
                .redeem_code(&tenant, &redirect_uri, &verifier, callback)
                .await?;
            let signed_in = me.id.as_deref().unwrap_or_default();
            if !signed_in.eq_ignore_ascii_case(&account) {
                let who = me.user_principal_name.as_deref().unwrap_or(signed_in);
                return Err(PlatformError::Rejected(format!(
                    "signed in as {who}, not as the account that was prompted; sign in with your own account"
                )));
            }
            Ok(FlowStep::Done(FlowOutcome::Authorized {
                account: ExternalUserId::new(account),
                credentials: TeamsPlatform::credentials_from(&grant),
            }))
        }
    }
}

pub(crate) async fn begin_authorize(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    account: &ExternalUserId,
    flow: &FlowContext,
) -> Result<FlowStep, PlatformError> {
    let token = teams.tenant_app_token(connection).await?;
    let url = teams.client.graph_url(
        &format!("/users/{}", path(account.as_str())),
        &[("$select", "id,userPrincipalName")],
    )?;
    let user: SignInHint = teams.client.get(&token, &url).await?;
    let tenant = connection.connection.tenant.as_str();
    let verifier = random_token(32);
    let url = teams.authorize_url(
        tenant,
        &flow.callback_url,
        &flow.state,
        &verifier,
        user.user_principal_name.as_deref(),
    )?;
    Ok(FlowStep::Redirect {
        url,
        state: Step::Authorize {
            state: flow.state.clone(),
            redirect_uri: flow.callback_url.clone(),
            tenant: tenant.to_owned(),
            account: account.as_str().to_owned(),
            verifier,
        }
        .encode(),
    })
}

pub(crate) async fn refresh(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
    credentials: &Credentials,
) -> Result<Credentials, PlatformError> {
    let tenant = connection.connection.tenant.as_str();
    let scope = credentials
        .get(SCOPE)
        .ok()
        .map(|s| format!("{} offline_access", s.expose_secret()));
    let refreshed = match credentials.get(REFRESH_TOKEN) {
        Ok(refresh_token) => {
            let mut grant = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose_secret()),
            ];
            if let Some(scope) = &scope {
                grant.push(("scope", scope));
            }
            teams.client.token(tenant, &grant).await
        }
        Err(missing) => Err(missing),
    };
    let grant = match refreshed {
        Ok(grant) => grant,
        // A hub-created guest can sign in again: the hub holds its interop password.
        Err(PlatformError::Unauthorized(_) | PlatformError::MissingCredential(_))
            if credentials.get(INTEROP_PASSWORD).is_ok() =>
        {
            teams
                .guest_sign_in(
                    tenant,
                    credentials.get(INTEROP_UPN)?.expose_secret(),
                    credentials.get(INTEROP_PASSWORD)?.expose_secret(),
                )
                .await?
        }
        Err(error) => return Err(error),
    };
    // Keep what is not a token (service user id, client state, interop identity).
    let mut fresh = TeamsPlatform::credentials_from(&grant);
    for (name, value) in credentials.iter() {
        if ![ACCESS_TOKEN, REFRESH_TOKEN, SCOPE].contains(&name)
            || (name == REFRESH_TOKEN && grant.refresh_token.is_none())
            || (name == SCOPE && grant.scope.is_none())
        {
            fresh.insert(name, value.clone());
        }
    }
    Ok(fresh)
}

pub(crate) async fn check_health(
    teams: &TeamsPlatform,
    connection: &ConnectionContext,
) -> Result<Health, PlatformError> {
    let token = connection.credentials.get(ACCESS_TOKEN)?.expose_secret();
    let me = teams.me(token).await?;
    let name = me.display_name.unwrap_or_default();
    let upn = me.user_principal_name.unwrap_or_default();
    let scopes = connection
        .credentials
        .get(SCOPE)
        .map(|s| {
            s.expose_secret()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Health {
        identity: format!("{name} <{upn}>"),
        scopes,
    })
}

fn param<'a>(callback: &'a [(String, String)], name: &str) -> Option<&'a str> {
    callback
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill(&mut buffer[..]);
    URL_SAFE_NO_PAD.encode(buffer)
}

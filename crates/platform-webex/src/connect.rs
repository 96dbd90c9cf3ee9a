//! Connecting an organisation and linking people's own accounts through the hub's integration
//! (OAuth authorization code), the Service App's token for guest identities, refresh before
//! expiry (integration access tokens last 14 days, refresh tokens 90), and health.
//!
//! A connection is one browser step: the admin signs in as the organisation's service user and
//! grants the integration's scopes; the Service App's refresh token, when the admin gives one,
//! is exchanged first and kept in the flow's (sealed) state until then. A person links their
//! own account the same way, from the prompt's "Sync now".
//!
//! - Integrations: <https://developer.webex.com/docs/integrations>
//! - Service Apps: <https://developer.webex.com/docs/service-apps>

use rand::Rng;
use serde::{Deserialize, Serialize};
use switchboard_core::{ExternalTenantId, ExternalUserId, Timestamp};
use switchboard_platform::{
    ConnectField, ConnectionContext, Credentials, FlowContext, FlowOutcome, FlowState, FlowStep,
    Health, PlatformError,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::credential::*;
use crate::wire::{Person, TokenGrant};
use crate::{WebexPlatform, directory, secret};

/// What the service user and people grant the integration: read teams and people, and read
/// and write rooms, memberships and messages.
pub const INTEGRATION_SCOPES: &[&str] = &[
    "spark:people_read",
    "spark:teams_read",
    "spark:team_memberships_read",
    "spark:rooms_read",
    "spark:rooms_write",
    "spark:memberships_read",
    "spark:memberships_write",
    "spark:messages_read",
    "spark:messages_write",
];

/// What the Service App needs: issuing guest identities.
pub const SERVICE_APP_SCOPES: &[&str] = &["guest-issuer:write", "guest-issuer:read"];

pub(crate) fn fields() -> Vec<ConnectField> {
    vec![ConnectField {
        name: SERVICE_APP_REFRESH_TOKEN,
        label: "Service App refresh token (optional)",
        help: "developer.webex.com › My Webex Apps › the hub's Service App, once an admin authorised it in Control Hub (Apps › Service Apps): choose this organisation and generate tokens, then paste the refresh token. Without it, people with no Webex account cannot be represented on Webex.",
        secret: true,
    }]
}

/// A token's expiry: `expires_in` seconds after `now`; `None` when Webex does not say.
pub(crate) fn expiry(now: Timestamp, expires_in: Option<i64>) -> Option<Timestamp> {
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

pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// The Service App's token for one organisation.
#[derive(Debug, Serialize, Deserialize)]
struct ServiceAppGrant {
    access_token: String,
    refresh_token: String,
    expires_at_millis: Option<i64>,
}

/// What a browser flow remembers until it comes back (sealed by the hub).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    /// The admin signs in as the service user.
    Connect {
        service_app: Option<ServiceAppGrant>,
    },
    /// A person links their own account.
    Authorize { account: String },
}

impl Step {
    fn encode(&self) -> Result<FlowState, PlatformError> {
        serde_json::to_string(self)
            .map(FlowState)
            .map_err(|e| PlatformError::Rejected(format!("cannot keep the flow's state: {e}")))
    }
}

impl WebexPlatform {
    fn authorize_url(&self, flow: &FlowContext) -> Result<String, PlatformError> {
        let scope = INTEGRATION_SCOPES.join(" ");
        self.client.url(
            "authorize",
            &[
                ("client_id", self.integration.0.as_str()),
                ("response_type", "code"),
                ("redirect_uri", flow.callback_url.as_str()),
                ("scope", scope.as_str()),
                ("state", flow.state.as_str()),
            ],
        )
    }

    fn service_app(&self) -> Result<&(String, SecretString), PlatformError> {
        self.service_app.as_ref().ok_or_else(|| {
            PlatformError::Rejected(
                "no Service App is configured ([platforms.webex] service_app_client_id and service_app_client_secret), so people without a Webex account cannot be given guest identities".to_owned(),
            )
        })
    }

    async fn refresh_grant(
        &self,
        (client_id, client_secret): &(String, SecretString),
        refresh_token: &str,
    ) -> Result<TokenGrant, PlatformError> {
        self.client
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.expose_secret()),
                ("refresh_token", refresh_token),
            ])
            .await
    }

    pub(crate) async fn me(&self, token: &str) -> Result<Person, PlatformError> {
        let url = self.client.url("people/me", &[])?;
        self.client.get(token, &url).await
    }

    /// Tokens of the integration as credentials, with their expiry; Webex may or may not
    /// issue a new refresh token, so the previous one is kept when it does not.
    fn integration_credentials(
        &self,
        grant: TokenGrant,
        previous_refresh: Option<&SecretString>,
    ) -> Credentials {
        let mut credentials = Credentials::default();
        credentials.insert(ACCESS_TOKEN, SecretString::from(grant.access_token));
        match (grant.refresh_token, previous_refresh) {
            (Some(fresh), _) => credentials.insert(REFRESH_TOKEN, SecretString::from(fresh)),
            (None, Some(previous)) => credentials.insert(REFRESH_TOKEN, previous.clone()),
            (None, None) => {}
        }
        credentials.set_expires_at(expiry(self.now(), grant.expires_in));
        credentials
    }
}

pub(crate) async fn begin_connect(
    platform: &WebexPlatform,
    inputs: &Credentials,
    flow: &FlowContext,
) -> Result<FlowStep, PlatformError> {
    let given = inputs
        .get(SERVICE_APP_REFRESH_TOKEN)
        .map(|token| token.expose_secret().trim())
        .ok()
        .filter(|token| !token.is_empty());
    // Exchanged now, so that a wrong token is said before the admin signs in.
    let service_app = match given {
        Some(refresh_token) => {
            let grant = platform
                .refresh_grant(platform.service_app()?, refresh_token)
                .await?;
            Some(ServiceAppGrant {
                access_token: grant.access_token,
                refresh_token: grant
                    .refresh_token
                    .unwrap_or_else(|| refresh_token.to_owned()),
                expires_at_millis: expiry(platform.now(), grant.expires_in)
                    .map(Timestamp::unix_millis),
            })
        }
        None => None,
    };
    Ok(FlowStep::Redirect {
        url: platform.authorize_url(flow)?,
        state: Step::Connect { service_app }.encode()?,
    })
}

pub(crate) fn begin_authorize(
    platform: &WebexPlatform,
    account: &ExternalUserId,
    flow: &FlowContext,
) -> Result<FlowStep, PlatformError> {
    Ok(FlowStep::Redirect {
        url: platform.authorize_url(flow)?,
        state: Step::Authorize {
            account: account.as_str().to_owned(),
        }
        .encode()?,
    })
}

pub(crate) async fn continue_flow(
    platform: &WebexPlatform,
    connection: Option<&ConnectionContext>,
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
    // The state the flow was started with comes back unchanged on Webex's redirect; a callback
    // with another is not this flow's (OAuth 2.0, RFC 6749 §10.12), and its code is not redeemed.
    if param("state") != Some(flow.state.as_str()) {
        return Err(PlatformError::Rejected(
            "the callback does not carry this sign-in's state".to_owned(),
        ));
    }
    if let Some(error) = param("error") {
        // OAuth 2.0 (RFC 6749 §4.1.2.1), which Webex's integrations follow: `access_denied`
        // is the person choosing Decline on Webex's consent page.
        if error == "access_denied" {
            return Err(PlatformError::Rejected(
                "the sign-in on Webex was declined, so the integration was not authorised"
                    .to_owned(),
            ));
        }
        let description = param("error_description").unwrap_or_default();
        return Err(PlatformError::Rejected(format!(
            "Webex did not authorise the integration: {error} {description}"
        )));
    }
    let code = param("code").ok_or_else(|| {
        PlatformError::Rejected("Webex returned no authorisation code".to_owned())
    })?;
    let (client_id, client_secret) = &platform.integration;
    let grant = platform
        .client
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("client_secret", client_secret.expose_secret()),
            ("code", code),
            ("redirect_uri", flow.callback_url.as_str()),
        ])
        .await?;
    let me = platform.me(&grant.access_token).await?;
    let signed_in = me
        .id
        .clone()
        .ok_or_else(|| PlatformError::Rejected("people/me answered without an id".to_owned()))?;
    let mut credentials = platform.integration_credentials(grant, None);
    match step {
        Step::Connect { service_app } => {
            let org = me.org_id.clone().ok_or_else(|| {
                PlatformError::Rejected("people/me answered without an organisation".to_owned())
            })?;
            let display_name = me
                .emails
                .first()
                .and_then(|email| email.rsplit_once('@'))
                .map_or_else(|| org.clone(), |(_, domain)| domain.to_owned());
            credentials.insert(SERVICE_USER_ID, SecretString::from(signed_in));
            if let Some(app) = service_app {
                credentials.insert(SERVICE_APP_TOKEN, SecretString::from(app.access_token));
                credentials.insert(
                    SERVICE_APP_REFRESH_TOKEN,
                    SecretString::from(app.refresh_token),
                );
                let app_expiry = app.expires_at_millis.map(Timestamp::from_unix_millis);
                credentials.set_expires_at(earliest(credentials.expires_at(), app_expiry));
            }
            Ok(FlowStep::Done(FlowOutcome::Connected {
                tenant: ExternalTenantId::new(org),
                display_name,
                credentials,
            }))
        }
        Step::Authorize { account } => {
            if signed_in != account {
                let who = me.emails.first().map_or(signed_in.as_str(), String::as_str);
                return Err(PlatformError::Rejected(format!(
                    "signed in as {who}, not as the account that was prompted; sign in with your own Webex account"
                )));
            }
            credentials.insert(PERSON_ID, SecretString::from(account.as_str()));
            credentials.insert(WEBHOOK_SECRET, SecretString::from(random_secret()));
            if let Some(connection) = connection {
                platform.known.remember(connection, &account, &credentials);
            }
            Ok(FlowStep::Done(FlowOutcome::Authorized {
                account: ExternalUserId::new(account),
                credentials,
            }))
        }
    }
}

/// New tokens before the old ones expire: a guest identity's from the Service App (same
/// subject), the integration's by its refresh token, and on a connection the Service App's too.
/// What is not a token (ids, the webhook's secret, the guest's subject) is kept.
pub(crate) async fn refresh(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
    credentials: &Credentials,
) -> Result<Credentials, PlatformError> {
    let mut fresh = if credentials.get(GUEST_SUBJECT).is_ok() {
        directory::reissue_guest(platform, connection, credentials).await?
    } else {
        let refresh_token = credentials.get(REFRESH_TOKEN)?;
        let grant = platform
            .refresh_grant(&platform.integration, refresh_token.expose_secret())
            .await?;
        let mut fresh = platform.integration_credentials(grant, Some(refresh_token));
        // Without the Service App's client in the settings its token cannot be renewed; the
        // service user's still is, and issuing guests then fails saying why.
        let service_app = match (
            credentials.get(SERVICE_APP_REFRESH_TOKEN),
            platform.service_app(),
        ) {
            (Ok(app_refresh), Ok(service_app)) => Some((app_refresh, service_app)),
            (Ok(_), Err(missing)) => {
                tracing::warn!(%missing, "webex: the Service App's token is not renewed");
                None
            }
            (Err(_), _) => None,
        };
        if let Some((app_refresh, service_app)) = service_app {
            let grant = platform
                .refresh_grant(service_app, app_refresh.expose_secret())
                .await?;
            let app_expiry = expiry(platform.now(), grant.expires_in);
            fresh.insert(SERVICE_APP_TOKEN, SecretString::from(grant.access_token));
            fresh.insert(
                SERVICE_APP_REFRESH_TOKEN,
                grant
                    .refresh_token
                    .map_or_else(|| app_refresh.clone(), SecretString::from),
            );
            fresh.set_expires_at(earliest(fresh.expires_at(), app_expiry));
        }
        fresh
    };
    for (name, value) in credentials.iter() {
        if fresh.iter().all(|(kept, _)| kept != name) {
            fresh.insert(name, value.clone());
        }
    }
    if let Ok(person) = secret(&fresh, PERSON_ID) {
        platform.known.remember(connection, person, &fresh);
    }
    Ok(fresh)
}

pub(crate) async fn check_health(
    platform: &WebexPlatform,
    connection: &ConnectionContext,
) -> Result<Health, PlatformError> {
    let me = platform
        .me(secret(&connection.credentials, ACCESS_TOKEN)?)
        .await?;
    let name = me.display_name.unwrap_or_default();
    let email = me.emails.first().cloned().unwrap_or_default();
    let mut scopes: Vec<String> = INTEGRATION_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    if connection.credentials.get(SERVICE_APP_TOKEN).is_ok() {
        scopes.extend(SERVICE_APP_SCOPES.iter().map(|s| (*s).to_owned()));
    }
    Ok(Health {
        identity: format!("{name} <{email}>"),
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
            expiry(now, Some(1_209_600)),
            Some(Timestamp::from_unix_millis(1_000_000 + 1_209_600_000))
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

    #[test]
    fn the_only_connect_field_is_the_service_apps_secret_refresh_token() {
        let fields = fields();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].name, "service_app_refresh_token");
        assert!(fields[0].secret);
    }

    #[test]
    fn webhook_secrets_are_random_and_long() {
        let (a, b) = (random_secret(), random_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }
}

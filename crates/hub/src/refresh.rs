//! The token refresher: in the background, renews each connection's and each synced
//! representation's credentials before they expire (and checks those that never do) and checks
//! what a connection's may do, so that a revoked or expired token is seen, shown on the
//! connection and turns what depends on it to failed — never a silent stall.

use std::time::Duration;

use switchboard_core::{ConnectionId, PersonId, Platform, SyncEvent, SyncStatusCode, Timestamp};
use switchboard_platform::{Credentials, Health, PlatformError};
use switchboard_store::{ConnectionHealth, RepresentationSecrets, StoreError};

use crate::AppState;
use crate::import::connection_context;

/// How often the refresher runs, how long before expiry it renews, and how often it checks the
/// health of credentials that did not need renewing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    pub interval: Duration,
    pub margin: Duration,
    pub health_every: Duration,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            margin: Duration::from_secs(10 * 60),
            health_every: Duration::from_secs(5 * 60),
        }
    }
}

/// What one pass of the refresher did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    /// Connections whose credentials were renewed.
    pub refreshed: Vec<ConnectionId>,
    /// Connections whose credentials the platform refused, and the reason.
    pub failed: Vec<(ConnectionId, String)>,
    /// Representations whose own credentials were renewed.
    pub representations_refreshed: usize,
    /// Representations turned to failed because their own or their connection's credentials
    /// were refused.
    pub representations_failed: usize,
}

/// Runs [`refresh_once`] every `settings.interval` until the process ends.
pub fn spawn(state: AppState, settings: RefreshSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(settings.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = refresh_once(&state, settings).await {
                tracing::warn!(%error, "token refresher: pass failed");
            }
        }
    })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One pass: renews every connection whose credentials expire within the margin (or already
/// have), and checks the health of those renewed or not checked for `health_every`. A
/// connection whose credentials were refused is not retried until they are replaced
/// (reconnecting the platform). Then renews the synced representations' own credentials due
/// by the same deadline.
pub async fn refresh_once(
    state: &AppState,
    settings: RefreshSettings,
) -> Result<RefreshReport, StoreError> {
    let now = state.clock.now();
    let deadline =
        Timestamp::from_unix_millis(now.unix_millis().saturating_add(millis(settings.margin)));
    let expiring = state.store.connections_expiring_before(deadline).await?;
    let mut report = RefreshReport::default();
    for connection in state.store.connections().await? {
        let Some(module) = state.platforms.get(connection.platform).cloned() else {
            continue;
        };
        let previous = state.store.connection_health(connection.id).await?;
        if previous.as_ref().is_some_and(|h| !h.ok) {
            // Refused credentials stay refused: wait for the admin to reconnect.
            continue;
        }
        let Some(mut context) = connection_context(&state.store, connection.id).await? else {
            continue;
        };
        context
            .credentials
            .set_expires_at(state.store.credentials_expire_at(connection.id).await?);
        let due = expiring.contains(&connection.id);
        let stale = previous.as_ref().is_none_or(|h| {
            now.unix_millis() - h.last_checked_at.unix_millis() >= millis(settings.health_every)
        });
        if !due && !stale {
            continue;
        }
        if due {
            match module.refresh(&context, &context.credentials).await {
                Ok(credentials) => {
                    let secrets = secrets_of(&credentials);
                    state
                        .store
                        .replace_secrets(connection.id, &secrets, credentials.expires_at())
                        .await?;
                    context.credentials = credentials;
                    report.refreshed.push(connection.id);
                    tracing::info!(connection = %connection.id, "token refresher: credentials renewed");
                }
                Err(error) => {
                    let reason = format!("token refresh: {error}");
                    if refused(
                        &error,
                        previous.as_ref(),
                        state,
                        connection.id,
                        &reason,
                        &mut report,
                    )
                    .await?
                    {
                        continue;
                    }
                    // Transient: recorded, nothing else changes; the next pass tries again.
                    record(
                        state,
                        connection.id,
                        previous.as_ref(),
                        true,
                        None,
                        Some(reason),
                    )
                    .await?;
                    continue;
                }
            }
        }
        match module.check_health(&context).await {
            Ok(health) => {
                record(
                    state,
                    connection.id,
                    previous.as_ref(),
                    true,
                    Some(health),
                    None,
                )
                .await?;
            }
            Err(error) => {
                let reason = format!("health check: {error}");
                if !refused(
                    &error,
                    previous.as_ref(),
                    state,
                    connection.id,
                    &reason,
                    &mut report,
                )
                .await?
                {
                    record(
                        state,
                        connection.id,
                        previous.as_ref(),
                        true,
                        None,
                        Some(reason),
                    )
                    .await?;
                }
            }
        }
    }
    for (person, platform, connection) in state
        .store
        .representations_expiring_before(deadline, REPRESENTATIONS_PER_PASS)
        .await?
    {
        refresh_representation(state, person, platform, connection, &mut report).await?;
    }
    // Credentials that never expire (a Slack bot's token) can still be revoked: each is checked
    // every `health_every`, as connections are.
    let cutoff = Timestamp::from_unix_millis(
        now.unix_millis()
            .saturating_sub(millis(settings.health_every)),
    );
    for (person, platform, connection) in state
        .store
        .representations_unchecked_since(cutoff, REPRESENTATIONS_PER_PASS)
        .await?
    {
        refresh_representation(state, person, platform, connection, &mut report).await?;
    }
    Ok(report)
}

/// The most representations one pass renews; the rest wait for the next pass, soonest first.
const REPRESENTATIONS_PER_PASS: u32 = 500;

/// Renews a synced representation's own credentials (a guest's delegated token), or checks
/// them when they never expire (a Slack bot's token; the module answers them unchanged); when
/// the platform refuses them, fails only that representation, with the reason. Skipped while a sync,
/// reset or removal of it is under way.
async fn refresh_representation(
    state: &AppState,
    person: PersonId,
    platform: Platform,
    connection: Option<ConnectionId>,
    report: &mut RefreshReport,
) -> Result<(), StoreError> {
    let Some(module) = state.platforms.get(platform).cloned() else {
        return Ok(());
    };
    let Ok(_claim) = state.syncing.claim(person, platform) else {
        return Ok(());
    };
    let still_synced = state
        .store
        .representation(person, platform)
        .await?
        .is_some_and(|r| r.status.code() == SyncStatusCode::Synced);
    if !still_synced {
        return Ok(());
    }
    let connection = match connection {
        Some(id) => Some(id),
        None => state
            .store
            .connections()
            .await?
            .into_iter()
            .find(|c| c.platform == platform)
            .map(|c| c.id),
    };
    let Some(connection) = connection else {
        return Ok(());
    };
    let Some(context) = connection_context(&state.store, connection).await? else {
        return Ok(());
    };
    let stored = state.store.representation_secrets(person, platform).await?;
    let mut credentials = Credentials::default();
    for (name, secret) in stored.secrets {
        credentials.insert(name, secret);
    }
    credentials.set_expires_at(stored.expires_at);
    match module.refresh(&context, &credentials).await {
        Ok(renewed) => {
            let secrets = RepresentationSecrets {
                secrets: secrets_of(&renewed),
                expires_at: renewed.expires_at(),
            };
            state
                .store
                .set_representation_secrets(person, platform, &secrets)
                .await?;
            report.representations_refreshed += 1;
        }
        Err(error @ (PlatformError::Unauthorized(_) | PlatformError::MissingCredential(_))) => {
            let reason = format!("token refresh: {error}");
            tracing::warn!(%person, platform = platform.as_str(), %reason, "token refresher: representation credentials refused");
            match state
                .store
                .apply_sync_event(
                    person,
                    platform,
                    SyncEvent::Failed { reason },
                    "token refresher: the representation's credentials were refused",
                )
                .await
            {
                Ok(_) => report.representations_failed += 1,
                Err(StoreError::IllegalTransition(_) | StoreError::NotFound { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Err(error) => {
            // Transient: the next pass tries again; nothing changes.
            tracing::warn!(%person, platform = platform.as_str(), %error, "token refresher: representation credentials not renewed");
        }
    }
    Ok(())
}

/// When the platform refused the credentials: records the connection as failing and turns the
/// representations that act through it to failed with `reason`. False for other errors.
async fn refused(
    error: &PlatformError,
    previous: Option<&ConnectionHealth>,
    state: &AppState,
    connection: ConnectionId,
    reason: &str,
    report: &mut RefreshReport,
) -> Result<bool, StoreError> {
    if !matches!(
        error,
        PlatformError::Unauthorized(_) | PlatformError::MissingCredential(_)
    ) {
        return Ok(false);
    }
    tracing::warn!(%connection, %reason, "token refresher: credentials refused");
    record(
        state,
        connection,
        previous,
        false,
        None,
        Some(reason.to_owned()),
    )
    .await?;
    let Some(platform) = state
        .store
        .connection(connection)
        .await?
        .map(|c| c.platform)
    else {
        return Ok(true);
    };
    for person in state.store.people_represented_through(connection).await? {
        match state
            .store
            .apply_sync_event(
                person,
                platform,
                SyncEvent::Failed {
                    reason: reason.to_owned(),
                },
                "token refresher: the connection's credentials were refused",
            )
            .await
        {
            Ok(_) => report.representations_failed += 1,
            // Changed meanwhile (reset, say): nothing left to fail.
            Err(StoreError::IllegalTransition(_) | StoreError::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    report.failed.push((connection, reason.to_owned()));
    Ok(true)
}

/// Records a check's outcome; a failed check keeps the identity and scopes last seen.
async fn record(
    state: &AppState,
    connection: ConnectionId,
    previous: Option<&ConnectionHealth>,
    ok: bool,
    health: Option<Health>,
    last_error: Option<String>,
) -> Result<(), StoreError> {
    let (identity, scopes) = match (health, previous) {
        (Some(health), _) => (Some(health.identity), health.scopes),
        (None, Some(previous)) => (previous.identity.clone(), previous.scopes.clone()),
        (None, None) => (None, Vec::new()),
    };
    state
        .store
        .record_connection_health(
            connection,
            &ConnectionHealth {
                ok,
                identity,
                scopes,
                last_checked_at: state.clock.now(),
                last_error,
            },
        )
        .await
}

fn secrets_of(credentials: &Credentials) -> Vec<(String, switchboard_secrets::SecretString)> {
    credentials
        .iter()
        .map(|(name, secret)| (name.to_owned(), secret.clone()))
        .collect()
}

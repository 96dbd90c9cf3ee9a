//! What the hub hears from Slack through the Events API: each request verified with the
//! signing secret of the app it is for (the hub's own, or a person's bot), split into the one
//! delivery it carries, and read into an event. Slack's events carry what happened in full,
//! so nothing is fetched to read one. The wire format is read in [`crate::webhook`].
//!
//! - Events API: <https://api.slack.com/apis/events-api>

use std::time::Duration;

use switchboard_platform::{
    AnnouncedPost, ConnectionContext, Credentials, EventEnvelope, InboundEvent, PlatformError,
    WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::{SlackPlatform, app_signing_secret_name, credential, webhook};

/// The signing secret a bot's webhooks are verified with, under the name the hub passes it
/// back in among the connection's credentials.
pub(crate) fn webhook_secrets_of(representation: &Credentials) -> Vec<(String, SecretString)> {
    match (
        representation.get(credential::APP_ID),
        representation.get(credential::SIGNING_SECRET),
    ) {
        (Ok(app_id), Ok(secret)) => {
            vec![(
                app_signing_secret_name(app_id.expose_secret()),
                secret.clone(),
            )]
        }
        _ => Vec::new(),
    }
}

pub(crate) fn webhook_secret_name(request: &WebhookRequest) -> Option<String> {
    webhook::app_id(request).map(|app_id| app_signing_secret_name(&app_id))
}

pub(crate) fn verify_webhook(
    slack: &SlackPlatform,
    connection: &ConnectionContext,
    request: &WebhookRequest,
) -> Result<WebhookVerdict, PlatformError> {
    let prefix = credential::APP_SIGNING_SECRET_PREFIX;
    let apps: Vec<(&str, &SecretString)> = connection
        .credentials
        .iter()
        .filter_map(|(name, secret)| name.strip_prefix(prefix).map(|app| (app, secret)))
        .collect();
    let hub = &slack.settings.signing_secret;
    let now_secs = slack.clock.now().unix_millis().div_euclid(1000);
    webhook::verify(
        request,
        now_secs,
        |app_id| {
            apps.iter()
                .find(|(id, _)| *id == app_id)
                .map_or(hub, |(_, s)| *s)
        },
        std::iter::once(hub).chain(apps.iter().map(|(_, s)| *s)),
    )
}

pub(crate) fn split_webhook(request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
    webhook::envelopes(&request.body)
}

pub(crate) fn announced_post(envelope: &EventEnvelope) -> Option<AnnouncedPost> {
    webhook::announced_post(envelope.payload.as_bytes())
}

pub(crate) fn redelivery_span(request: &WebhookRequest) -> Option<Duration> {
    webhook::is_retry(request).then_some(webhook::REDELIVERY_SPAN)
}

/// Slack's events carry what happened in full: nothing to fetch.
pub(crate) fn read_event(envelope: &EventEnvelope) -> Result<Option<InboundEvent>, PlatformError> {
    Ok(webhook::parse(envelope.payload.as_bytes())?
        .into_iter()
        .next())
}

//! The Events API: `event_callback` envelopes for the apps subscribed to an event, signed with
//! each app's signing secret and delivered on Slack's retry schedule, and the `url_verification`
//! challenge a Request URL must answer before a manifest may set it.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_sim_kit::clock::since_epoch;
use switchboard_sim_kit::{AttemptFailure, Delivery, DeliveryOutcome, SimContext};

use crate::state::{Conversation, State};

/// Slack waits three seconds for an acknowledgement.
const DEADLINE: Duration = Duration::from_secs(3);
const USER_AGENT: &str = "Slackbot 1.0 (+https://api.slack.com/robots)";

/// One envelope for one app, ready to sign and send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub signing_secret: String,
    pub body: Vec<u8>,
}

/// `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}` under the signing secret.
pub fn signature(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(signing_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn signed_headers(signing_secret: &str, body: &[u8]) -> Vec<(String, String)> {
    let timestamp = since_epoch().as_secs().to_string();
    vec![
        ("user-agent".to_owned(), USER_AGENT.to_owned()),
        (
            "x-slack-signature".to_owned(),
            signature(signing_secret, &timestamp, body),
        ),
        ("x-slack-request-timestamp".to_owned(), timestamp),
    ]
}

/// Why the previous attempt failed, in Slack's `X-Slack-Retry-Reason` words. A delivery lost
/// to an injected fault looks to Slack like a request that got no answer.
fn retry_reason(failure: Option<&AttemptFailure>) -> &'static str {
    match failure {
        Some(AttemptFailure::HttpError(_)) => "http_error",
        Some(AttemptFailure::ConnectionFailed) => "connection_failed",
        Some(AttemptFailure::Timeout | AttemptFailure::Dropped) => "http_timeout",
        Some(AttemptFailure::Other(_)) | None => "unknown_error",
    }
}

/// An event delivery: first at once, then retried about immediately, after a minute and after
/// five minutes, each attempt signed afresh so the timestamp stays within receivers' window.
pub fn delivery(outgoing: Outgoing) -> Delivery {
    let Outgoing {
        url,
        signing_secret,
        body,
    } = outgoing;
    let signed_body = body.clone();
    Delivery {
        platform: "slack",
        url,
        content_type: "application/json",
        body,
        headers: Box::new(move |attempt, previous| {
            let mut headers = signed_headers(&signing_secret, &signed_body);
            if attempt > 0 {
                headers.push(("x-slack-retry-num".to_owned(), attempt.to_string()));
                headers.push((
                    "x-slack-retry-reason".to_owned(),
                    retry_reason(previous).to_owned(),
                ));
            }
            headers
        }),
        retry_delays: vec![
            Duration::ZERO,
            Duration::from_secs(60),
            Duration::from_secs(5 * 60),
        ],
        deadline: DEADLINE,
        no_retry_header: Some("x-slack-no-retry"),
    }
}

/// Sends the `url_verification` challenge once; the URL passes when it echoes the challenge as
/// text, as `challenge=` form data or as JSON `{"challenge": …}`.
pub async fn verify_request_url(
    context: &SimContext,
    url: &str,
    verification_token: &str,
    signing_secret: &str,
) -> Result<(), String> {
    let challenge = crate::state::random_token(48);
    let body = json!({
        "token": verification_token,
        "challenge": challenge,
        "type": "url_verification",
    })
    .to_string()
    .into_bytes();
    let secret = signing_secret.to_owned();
    let signed_body = body.clone();
    let outcome = context
        .webhooks
        .deliver(Delivery {
            platform: "slack",
            url: url.to_owned(),
            content_type: "application/json",
            body,
            headers: Box::new(move |_, _| signed_headers(&secret, &signed_body)),
            retry_delays: Vec::new(),
            deadline: DEADLINE,
            no_retry_header: None,
        })
        .await;
    match outcome {
        DeliveryOutcome::Delivered { body, .. } => {
            let answer = body.trim();
            let echoed = answer == challenge
                || answer.strip_prefix("challenge=") == Some(challenge.as_str())
                || serde_json::from_str::<Value>(answer)
                    .ok()
                    .and_then(|v| {
                        v.get("challenge")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .as_deref()
                    == Some(challenge.as_str());
            if echoed {
                Ok(())
            } else {
                Err("the response did not contain the challenge".to_owned())
            }
        }
        DeliveryOutcome::Failed { last_error, .. } => Err(last_error),
    }
}

fn envelope(state: &State, app_id: &str, bot_user: &str, event_id: &str, event: &Value) -> Value {
    let token = state
        .apps
        .get(app_id)
        .map(|a| a.credentials.verification_token.as_str())
        .unwrap_or_default();
    let now = since_epoch().as_secs();
    json!({
        "token": token,
        "team_id": state.team.id,
        "api_app_id": app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": now,
        "authorizations": [{
            "enterprise_id": null,
            "team_id": state.team.id,
            "user_id": bot_user,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
        "event_context": format!("4-{}", event_id.to_lowercase()),
    })
}

/// The apps that receive `subscription`: installed, with a Request URL, subscribed, and whose
/// bot token holds `scope`; for conversation events, only apps whose bot is a member.
fn subscribers(
    state: &State,
    subscription: &str,
    scope: &str,
    conversation: Option<&Conversation>,
) -> Vec<(String, String)> {
    let candidates: Vec<&crate::state::App> = match conversation {
        Some(conversation) => conversation
            .members
            .iter()
            .filter_map(|m| state.index.app_by_bot_user.get(m))
            .filter_map(|app_id| state.apps.get(app_id))
            .collect(),
        None => state.apps.values().collect(),
    };
    candidates
        .into_iter()
        .filter(|app| !app.deleted && app.facts.request_url.is_some())
        .filter(|app| app.facts.bot_events.iter().any(|e| e == subscription))
        .filter_map(|app| {
            let bot_token = app.installation.as_ref()?.bot_token.as_ref()?;
            let token = state.tokens.get(bot_token)?;
            let allowed = !token.revoked && token.scopes.iter().any(|s| s == scope);
            allowed.then(|| (app.id.clone(), app.bot_user_id.clone().unwrap_or_default()))
        })
        .collect()
}

fn addressed(
    state: &State,
    recipients: Vec<(String, String)>,
    event_id: &str,
    event: &Value,
) -> Vec<Outgoing> {
    recipients
        .into_iter()
        .filter_map(|(app_id, bot_user)| {
            let app = state.apps.get(&app_id)?;
            Some(Outgoing {
                url: app.facts.request_url.clone()?,
                signing_secret: app.credentials.signing_secret.clone(),
                body: envelope(state, &app_id, &bot_user, event_id, event)
                    .to_string()
                    .into_bytes(),
            })
        })
        .collect()
}

/// A `message` event (plain or with a subtype) in a DM or group DM.
pub fn message_event(state: &mut State, channel: &str, event: Value) -> Vec<Outgoing> {
    conversation_event(state, channel, event, None)
}

/// `reaction_added` or `reaction_removed` on a message in a DM or group DM.
pub fn reaction_event(state: &mut State, channel: &str, name: &str, event: Value) -> Vec<Outgoing> {
    conversation_event(state, channel, event, Some(name))
}

fn conversation_event(
    state: &mut State,
    channel: &str,
    event: Value,
    reaction: Option<&str>,
) -> Vec<Outgoing> {
    let event_id = state.next_event_id();
    let Some(conversation) = state.conversations.get(channel) else {
        return Vec::new();
    };
    let (subscription, scope) = match reaction {
        Some(name) => (name, "reactions:read"),
        None => (
            conversation.kind.message_event(),
            conversation.kind.history_scope(),
        ),
    };
    let recipients = subscribers(state, subscription, scope, Some(conversation));
    addressed(state, recipients, &event_id, &event)
}

/// `team_join` or `user_change` for a user, to apps subscribed to it; the user's e-mail is
/// included for apps holding `users:read.email`.
pub fn user_event(state: &mut State, kind: &str, user_id: &str) -> Vec<Outgoing> {
    let event_id = state.next_event_id();
    let now = since_epoch();
    let recipients = subscribers(state, kind, "users:read", None);
    recipients
        .into_iter()
        .filter_map(|(app_id, bot_user)| {
            let app = state.apps.get(&app_id)?;
            let with_email = app
                .installation
                .as_ref()
                .and_then(|i| i.bot_token.as_ref())
                .and_then(|t| state.tokens.get(t))
                .is_some_and(|t| t.scopes.iter().any(|s| s == "users:read.email"));
            let mut event = json!({
                "type": kind,
                "user": state.user_value(user_id, with_email)?,
                "event_ts": format!("{}.{:06}", now.as_secs(), now.subsec_micros()),
            });
            if kind == "user_change" {
                event["cache_ts"] = json!(now.as_secs());
            }
            Some(Outgoing {
                url: app.facts.request_url.clone()?,
                signing_secret: app.credentials.signing_secret.clone(),
                body: envelope(state, &app_id, &bot_user, &event_id, &event)
                    .to_string()
                    .into_bytes(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendor_test_vector_signs_as_slack_does() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            signature(
                "8f742231b10e8888abcd99yyyzzz85a5",
                "1531420618",
                body.as_bytes()
            ),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }
}

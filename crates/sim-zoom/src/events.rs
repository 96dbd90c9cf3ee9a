//! Event deliveries to the apps' event subscriptions: Team Chat's message and reaction events
//! (account-level, about the account's users), the chatbot's `bot_notification`, and the
//! `endpoint.url_validation` challenge an endpoint must answer before it is saved. Every body is
//! compact JSON, as JavaScript's `JSON.stringify` writes it, because Zoom's own SDK verifies the
//! signature over `JSON.stringify(JSON.parse(body))`; each is signed with `x-zm-signature:
//! v0=HMAC-SHA256(secret token, "v0:{x-zm-request-timestamp}:{body}")` and retried three times
//! (after 5, 20 and 60 minutes) when the endpoint does not answer 2xx within 3 seconds.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_sim_kit::{Delivery, DeliveryOutcome};

use crate::state::{ACCOUNT_ID, App, AppKind, Message, Place, State, USER_CLIENT_ID};
use crate::wire::{iso, now_millis, random_text};
use crate::{KEY, ZoomSim};

const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(20 * 60),
    Duration::from_secs(60 * 60),
];
const DEADLINE: Duration = Duration::from_secs(3);

fn hmac_hex(secret: &str, text: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(text);
    hex::encode(mac.finalize().into_bytes())
}

/// `x-zm-signature` of `body` sent at `timestamp` (seconds).
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    format!("v0={}", hmac_hex(secret, &message))
}

/// The `encryptedToken` an endpoint answers to the validation challenge `plain_token`.
pub fn encrypted_token(secret: &str, plain_token: &str) -> String {
    hmac_hex(secret, plain_token.as_bytes())
}

/// An event's body. A struct, not a JSON map, so the envelope keeps Zoom's key order (the
/// payload's keys are sorted, which `JSON.stringify` also preserves).
#[derive(serde::Serialize)]
struct Envelope<'a> {
    event: &'a str,
    event_ts: u64,
    payload: Value,
}

/// The body of the validation challenge, in the order of Zoom's documented example.
#[derive(serde::Serialize)]
struct Challenge<'a> {
    payload: Value,
    event_ts: u64,
    event: &'a str,
}

/// A signed delivery of `body` with `secret`, on Zoom's retry schedule.
fn delivery(url: &str, secret: &str, body: Vec<u8>, retries: bool) -> Delivery {
    let timestamp = now_millis() / 1000;
    let signed = signature(secret, timestamp, &body);
    Delivery {
        platform: KEY,
        url: url.to_owned(),
        content_type: "application/json",
        body,
        headers: Box::new(move |_, _| {
            vec![
                ("x-zm-request-timestamp".to_owned(), timestamp.to_string()),
                ("x-zm-signature".to_owned(), signed.clone()),
                ("user-agent".to_owned(), "Zoom Marketplace/1.0a".to_owned()),
            ]
        }),
        retry_delays: if retries {
            RETRY_DELAYS.to_vec()
        } else {
            Vec::new()
        },
        deadline: DEADLINE,
        no_retry_header: None,
    }
}

/// Sends `event` with `payload` to `app`'s endpoint, in the background, if it subscribed.
pub fn send(sim: &ZoomSim, app: &App, event: &str, payload: Value) {
    let Some(url) = &app.event_url else {
        return;
    };
    if !app.events.iter().any(|e| e == event) {
        return;
    }
    let body = compact(&Envelope {
        event,
        event_ts: now_millis(),
        payload,
    });
    sim.context
        .webhooks
        .spawn(delivery(url, app.kind.secret_token(), body, true));
}

fn compact<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // serde_json writes what JSON.stringify writes: no whitespace, "/" and non-ASCII as they
    // are, control characters as \n, \t... or \u00XX.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Sends the validation challenge to `url` as `kind`'s endpoint and checks the answer.
pub async fn validate_endpoint(sim: &ZoomSim, kind: AppKind, url: &str) -> Result<(), String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("The endpoint URL must be an http(s) URL.".to_owned());
    }
    let plain_token = random_text(22);
    let body = compact(&Challenge {
        payload: json!({ "plainToken": plain_token }),
        event_ts: now_millis(),
        event: "endpoint.url_validation",
    });
    let outcome = sim
        .context
        .webhooks
        .deliver(delivery(url, kind.secret_token(), body, false))
        .await;
    let answer = match outcome {
        DeliveryOutcome::Delivered { body, .. } => body,
        DeliveryOutcome::Failed { last_error, .. } => {
            return Err(format!(
                "URL validation failed: the endpoint did not answer 200 ({last_error})."
            ));
        }
    };
    let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
    let expected = encrypted_token(kind.secret_token(), &plain_token);
    if answer["plainToken"] == plain_token.as_str() && answer["encryptedToken"] == expected.as_str()
    {
        Ok(())
    } else {
        Err(format!(
            "URL validation failed: the endpoint answered {answer}, not the plainToken with its encryptedToken."
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Posted,
    Updated,
    Deleted,
}

/// Whether `user` authorised the user-managed app: it is told of their conversations.
fn authorised_user_app(state: &State, user: &str) -> bool {
    state
        .refresh_tokens
        .values()
        .chain(state.access_tokens.values())
        .any(|grant| grant.user == user && grant.client_id == USER_CLIENT_ID)
}

/// Sends an event about `place` to every app that is told of it: the server-to-server app
/// for every conversation of the account, the user-managed app for those of a user who
/// authorised it.
fn tell(sim: &ZoomSim, state: &State, place: &Place, event: &str, payload: &Value) {
    let participants: Vec<String> = match place {
        Place::Direct(one, other) => vec![one.clone(), other.clone()],
        Place::Channel(id) => state
            .channel(id)
            .map(|c| c.members.iter().map(|m| m.user.clone()).collect())
            .unwrap_or_default(),
        Place::Bot(_) => return,
    };
    for app in &state.apps {
        let told = match app.kind {
            AppKind::ServerToServer => true,
            AppKind::UserManaged => participants.iter().any(|u| authorised_user_app(state, u)),
            AppKind::Chatbot => false,
        };
        if told {
            send(sim, app, event, payload.clone());
        }
    }
}

/// The payload's operator fields and the object's conversation fields of an event about
/// `place` done by `operator`; `None` for the chatbot's chats, which have no Team Chat events.
fn frame(state: &State, place: &Place, operator: &str) -> Option<(Value, Value, &'static str)> {
    let user = state.user(operator)?;
    let payload = json!({
        "account_id": ACCOUNT_ID,
        "operator": user.email,
        "operator_id": user.id,
        "operator_member_id": user.member_id,
        "by_external_user": false,
    });
    match place {
        Place::Direct(one, other) => {
            let contact = state.user(if one == operator { other } else { one })?;
            Some((
                payload,
                json!({
                    "session_id": contact.jid,
                    "contact_email": contact.email,
                    "contact_id": contact.id,
                    "contact_account_id": ACCOUNT_ID,
                    "contact_member_id": contact.member_id,
                }),
                "dm",
            ))
        }
        Place::Channel(id) => {
            let channel = state.channel(id)?;
            Some((
                payload,
                json!({
                    "session_id": channel.jid,
                    "channel_id": channel.id,
                    "channel_owner_account_id": ACCOUNT_ID,
                    "channel_name": channel.name,
                }),
                "channel",
            ))
        }
        Place::Bot(_) => None,
    }
}

/// Tells the apps that `operator` posted, edited or deleted `message` in `place`.
pub fn message_changed(
    sim: &ZoomSim,
    state: &State,
    place: &Place,
    message: &Message,
    operator: &str,
    change: Change,
) {
    let Some((mut payload, mut object, kind)) = frame(state, place, operator) else {
        return;
    };
    let at = match change {
        Change::Posted => message.created,
        Change::Updated => message.updated.unwrap_or(message.created),
        Change::Deleted => now_millis(),
    };
    object["message_id"] = json!(message.id);
    object["date_time"] = json!(iso(at));
    object["timestamp"] = json!(at);
    if let Some(main) = &message.reply_main {
        object["reply_main_message_id"] = json!(main);
    }
    if change == Change::Deleted {
        // Rivet's types give a deletion no session.
        if let Some(fields) = object.as_object_mut() {
            fields.remove("session_id");
        }
    } else {
        object["message"] = json!(message.text);
        if !message.rich_text.is_empty() {
            object["rich_text"] = crate::messages::rich_text_json(&message.rich_text);
        }
        // Rivet's types carry mentions in channel events only.
        if kind == "channel" && !message.at_items.is_empty() {
            object["at_items"] = json!(
                message
                    .at_items
                    .iter()
                    .map(|item| {
                        let user = item.at_contact.as_deref().and_then(|id| state.user(id));
                        let mut value = json!({
                            "at_type": item.at_type,
                            "start_position": item.start_position,
                            "end_position": item.end_position,
                        });
                        if let Some(user) = user {
                            value["at_contact"] = json!(user.email);
                            value["at_contact_user_id"] = json!(user.id);
                            value["at_contact_member_id"] = json!(user.member_id);
                        }
                        value
                    })
                    .collect::<Vec<_>>()
            );
        }
    }
    payload["object"] = object;
    let verb = match change {
        Change::Posted => "posted",
        Change::Updated => "updated",
        Change::Deleted => "deleted",
    };
    tell(
        sim,
        state,
        place,
        &format!("team_chat.{kind}_message_{verb}"),
        &payload,
    );
}

/// Tells the apps that `operator` added or removed the reaction `emoji` on `message`.
pub fn reaction_changed(
    sim: &ZoomSim,
    state: &State,
    place: &Place,
    message: &Message,
    operator: &str,
    emoji: &str,
    added: bool,
) {
    let Some((mut payload, mut object, kind)) = frame(state, place, operator) else {
        return;
    };
    let now = now_millis();
    // The fields Rivet's types give a reaction: no session, the contact's ids or the channel's.
    if let Some(fields) = object.as_object_mut() {
        for field in [
            "session_id",
            "contact_account_id",
            "channel_owner_account_id",
            "channel_name",
        ] {
            fields.remove(field);
        }
    }
    object["msg_id"] = json!(message.id);
    // Strings in Rivet's types: the milliseconds, written out.
    object["msg_time"] = json!(message.created.to_string());
    object["emoji_time"] = json!(now.to_string());
    object["emoji"] = json!(emoji);
    object["timestamp"] = json!(now);
    payload["object"] = object;
    let verb = if added { "added" } else { "removed" };
    tell(
        sim,
        state,
        place,
        &format!("team_chat.{kind}_reaction_{verb}"),
        &payload,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of sdk-wire-facts §5, which Rivet 0.4.0's own receiver accepted.
    #[test]
    fn signatures_match_the_vectors_rivet_accepted() {
        let body = br#"{"event":"team_chat.dm_message_posted","event_ts":1700000000000,"payload":{"account_id":"ACC","operator":"alice@example.com","operator_id":"U1","operator_member_id":"M1","by_external_user":false,"object":{"message_id":"MSG-1","session_id":"S1","date_time":"2023-11-14T22:13:20Z","timestamp":1700000000000,"contact_email":"bob@example.com","contact_id":"U2","contact_account_id":"ACC","contact_member_id":"M2","message":"hello"}}}"#;
        assert_eq!(
            signature("zoom-secret-token", 1_700_000_000, body),
            "v0=b63fce2ec2d9943b299465ec153c3b61fadb89c996990f0aba6fa813b8fe2080"
        );
        let challenge = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        assert_eq!(
            signature("zoom-secret-token", 1_700_000_000, challenge),
            "v0=58f944042f127e5fde4f63c1e6a81adf7ce8f95d3c50868308092e3bdd8bcb94"
        );
        assert_eq!(
            encrypted_token("zoom-secret-token", "qgg8vlvZRS6UYooatFL8Aw"),
            "d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3"
        );
    }

    /// A third party's vector (elastic/beats) for the challenge answer.
    #[test]
    fn the_challenge_answer_matches_a_published_vector() {
        assert_eq!(
            encrypted_token("secretValueTest", "qgg8vlvZRS6UYooatFL8Aw"),
            "70c1f2e2e6ca2d39297490d1f9142c7d701415ea8e6151f6562a08fa657a40ff"
        );
    }

    #[test]
    fn bodies_are_written_as_json_stringify_writes_them() {
        let body = compact(&Envelope {
            event: "e",
            event_ts: 1,
            payload: json!({"b": "a/b <é> 👍", "a": "line\nnext\u{1}"}),
        });
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"event\":\"e\",\"event_ts\":1,\"payload\":{\"a\":\"line\\nnext\\u0001\",\"b\":\"a/b <é> 👍\"}}"
        );
    }
}

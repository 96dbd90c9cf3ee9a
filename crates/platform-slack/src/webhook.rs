//! The Events API: verifying Slack's request signatures and reading `event_callback`s.
//!
//! Slack signs every request to a Request URL with the receiving app's signing secret:
//! `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{X-Slack-Request-Timestamp}:{raw body}"))`.
//! Requests whose timestamp is more than five minutes from now are refused (replays), and the
//! comparison is constant-time. Deliveries are read into `Delivery` and its `Event`s;
//! an event of a kind the hub does not act on, or one it cannot read, is passed over.
//!
//! - Verifying requests: <https://api.slack.com/authentication/verifying-requests-from-slack>
//! - Events API: <https://api.slack.com/apis/events-api>
//! - `message` events: <https://api.slack.com/events/message>

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use switchboard_core::{ExternalChatId, ExternalUserId, Platform};
use switchboard_platform::{
    AnnouncedPost, ChatKind, EventEnvelope, InboundEvent, InboundKind, MessageRef, PlatformError,
    WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::{ExposeSecret, SecretString};

use crate::mapping::{WireUser, emoji_of};
use crate::markup;
use switchboard_platform::wire::{self, Lenient};

/// How far a request's timestamp may be from now, either way.
pub const MAX_SKEW_SECS: i64 = 300;

pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
pub const SIGNATURE_HEADER: &str = "x-slack-signature";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &SecretString, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp`.
pub fn sign(secret: &SecretString, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// The signature and timestamp of a request, checked for freshness.
pub(crate) struct Signed<'r> {
    timestamp: &'r str,
    signature: Vec<u8>,
}

fn header<'r>(request: &'r WebhookRequest, name: &str) -> Result<&'r str, PlatformError> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or_else(|| PlatformError::BadWebhook(format!("no {name} header")))
}

/// Reads the signature headers and refuses stale or future timestamps.
pub(crate) fn signed(request: &WebhookRequest, now_secs: i64) -> Result<Signed<'_>, PlatformError> {
    let timestamp = header(request, TIMESTAMP_HEADER)?;
    let at: i64 = timestamp
        .parse()
        .map_err(|_| PlatformError::BadWebhook("the request timestamp is not a number".into()))?;
    if (now_secs - at).abs() > MAX_SKEW_SECS {
        return Err(PlatformError::BadWebhook(format!(
            "the request timestamp is {} s away from now (at most {MAX_SKEW_SECS} s allowed)",
            (now_secs - at).abs()
        )));
    }
    let signature = header(request, SIGNATURE_HEADER)?
        .strip_prefix("v0=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or_else(|| PlatformError::BadWebhook("the signature is not a v0 signature".into()))?;
    Ok(Signed {
        timestamp,
        signature,
    })
}

impl Signed<'_> {
    /// Whether `secret` signed `body` (constant-time comparison).
    pub(crate) fn by(&self, secret: &SecretString, body: &[u8]) -> bool {
        mac(secret, self.timestamp, body)
            .verify_slice(&self.signature)
            .is_ok()
    }
}

/// Checks `request` against the signing secret of the app it is addressed to.
///
/// `secret_for(app_id)` names the signing secret of an app (`api_app_id` of the envelope), or
/// the hub app's when it is not one of the connection's bot apps. A `url_verification` has no
/// `api_app_id`: it passes when any of `all_secrets` signed it — or, when none did, as long as it
/// is fresh, because Slack sends it *while* `apps.manifest.create` runs, signed with the new
/// app's secret that the hub learns only from that call's answer. Answering it reveals nothing
/// but the challenge it carries.
pub(crate) fn verify<'s>(
    request: &WebhookRequest,
    now_secs: i64,
    secret_for: impl Fn(&str) -> &'s SecretString,
    all_secrets: impl Iterator<Item = &'s SecretString>,
) -> Result<WebhookVerdict, PlatformError> {
    let signed = signed(request, now_secs)?;
    // Events arrive as JSON; slash commands and interactivity as form data.
    let delivery = read(&request.body).ok();
    if let Some(Some(delivery)) = &delivery
        && delivery.kind.as_deref() == Some("url_verification")
    {
        let challenge = delivery.challenge.clone().ok_or_else(|| {
            PlatformError::BadWebhook("a url_verification with no challenge".into())
        })?;
        let known = all_secrets.into_iter().any(|s| signed.by(s, &request.body));
        if !known {
            tracing::debug!("answering a url_verification signed by an app not stored yet");
        }
        return Ok(WebhookVerdict::Challenge(challenge));
    }
    // The body was just parsed: read the app from it rather than parse it again.
    let app_id = match delivery {
        Some(delivery) => delivery.and_then(|delivery| delivery.api_app_id),
        None => form_app_id(&request.body),
    }
    .unwrap_or_default();
    let app_id = app_id.as_str();
    if signed.by(secret_for(app_id), &request.body) {
        Ok(WebhookVerdict::Events)
    } else {
        Err(PlatformError::BadWebhook(
            "the signature does not match the app's signing secret".into(),
        ))
    }
}

/// A message's `ts` (`"1712345678.123456"`: seconds and microseconds) as microseconds.
pub fn ts_micros(ts: &str) -> Option<i64> {
    let (seconds, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    let micros = format!("{micros:0<6}");
    seconds
        .parse::<i64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(micros.get(..6)?.parse::<i64>().ok()?)
}

/// The app a request is addressed to (`api_app_id`), in a JSON event or a form post.
pub(crate) fn app_id(request: &WebhookRequest) -> Option<String> {
    match read(&request.body) {
        Ok(delivery) => delivery?.api_app_id,
        Err(_) => form_app_id(&request.body),
    }
}

fn form_app_id(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "api_app_id")
        .map(|(_, value)| value.into_owned())
}

/// A request to the Events API Request URL, as far as the hub reads it.
#[derive(Debug, Default, Deserialize)]
struct Delivery {
    /// `event_callback`, `url_verification`, `app_rate_limited`.
    #[serde(rename = "type", default, deserialize_with = "wire::lenient")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient")]
    event_id: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient")]
    challenge: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient")]
    api_app_id: Option<String>,
    /// Absent only when not sent at all: an event that is sent but unreadable is passed over.
    #[serde(default, deserialize_with = "wire::present")]
    event: Option<Lenient<Event>>,
    /// Whom the delivery is for: the first is the app's bot user.
    #[serde(default, deserialize_with = "wire::items")]
    authorizations: Vec<Authorization>,
}

#[derive(Debug, Deserialize)]
struct Authorization {
    user_id: Option<String>,
}

/// A JSON body as a delivery: an error if it is not JSON, `None` if it is JSON but no object.
fn read(body: &[u8]) -> Result<Option<Delivery>, serde_json::Error> {
    serde_json::from_slice::<Lenient<Delivery>>(body).map(|read| read.0)
}

/// The events the hub acts on; every other kind is `Other`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    Message(Box<MessageEvent>),
    ReactionAdded(ReactionEvent),
    ReactionRemoved(ReactionEvent),
    TeamJoin(UserEvent),
    UserChange(UserEvent),
    #[serde(other)]
    Other,
}

/// A `message` event, or a message as `conversations.history` lists it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MessageEvent {
    /// None for a message written; `message_changed`, `message_deleted`, `bot_message`, ….
    subtype: Option<String>,
    channel: Option<String>,
    /// `im`, `mpim`, `channel`, `group`; edits and deletes may omit it.
    channel_type: Option<String>,
    ts: Option<String>,
    user: Option<String>,
    bot_id: Option<String>,
    text: Option<String>,
    thread_ts: Option<String>,
    /// Every file is named, a file that cannot be read too.
    #[serde(default, deserialize_with = "wire::items")]
    files: Vec<Lenient<SharedFile>>,
    /// `message_changed`: the message as it is now.
    message: Option<ChangedMessage>,
    /// `message_changed`, `message_deleted`: the message as it was.
    #[serde(default, deserialize_with = "wire::lenient")]
    previous_message: Option<PreviousMessage>,
    /// `message_deleted`.
    deleted_ts: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChangedMessage {
    ts: Option<String>,
    text: Option<String>,
    #[serde(default, deserialize_with = "wire::items")]
    files: Vec<Lenient<SharedFile>>,
}

#[derive(Debug, Deserialize)]
struct PreviousMessage {
    ts: Option<String>,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SharedFile {
    name: Option<String>,
    title: Option<String>,
}

/// `reaction_added`, `reaction_removed`.
#[derive(Debug, Deserialize)]
struct ReactionEvent {
    user: Option<String>,
    reaction: Option<String>,
    item: Option<ReactionItem>,
}

#[derive(Debug, Deserialize)]
struct ReactionItem {
    #[serde(rename = "type")]
    kind: Option<String>,
    channel: Option<String>,
    ts: Option<String>,
}

/// `team_join`, `user_change`.
#[derive(Debug, Deserialize)]
struct UserEvent {
    user: WireUser,
}

fn message_ref(channel: &str, ts: &str) -> MessageRef {
    MessageRef {
        chat: ExternalChatId::new(channel),
        id: ts.to_owned(),
    }
}

/// An Events API delivery as the one item to store: Slack sends one event per request, and
/// retries it with the same `event_id`. Other requests (`app_rate_limited`) carry no event.
/// The item is the delivery without its `token`, the app's verification token (a secret Slack
/// still sends, which the hub does not use and must not store).
pub(crate) fn envelopes(body: &[u8]) -> Result<Vec<EventEnvelope>, PlatformError> {
    let mut envelope: Value = serde_json::from_slice(body)
        .map_err(|_| PlatformError::BadWebhook("the body is not JSON".into()))?;
    let delivery = Delivery::deserialize(&envelope).unwrap_or_default();
    if delivery.kind.as_deref() != Some("event_callback") {
        return Ok(Vec::new());
    }
    let event_id = delivery
        .event_id
        .ok_or_else(|| PlatformError::BadWebhook("an event_callback with no event_id".into()))?;
    if let Some(fields) = envelope.as_object_mut() {
        fields.remove("token");
    }
    Ok(vec![EventEnvelope {
        event_id,
        payload: envelope.to_string(),
    }])
}

/// Names which attempt of a delivery a request is: absent on the first, 1 to 3 on Slack's
/// retries.
pub const RETRY_NUM_HEADER: &str = "x-slack-retry-num";

/// How long Slack goes on retrying an event before it gives it up: at once, after a minute and
/// after five minutes, with room for each attempt's 3 s deadline and Slack's own delays.
pub const REDELIVERY_SPAN: Duration = Duration::from_secs(10 * 60);

/// Whether a request is one of Slack's retries of a delivery the hub did not acknowledge.
pub(crate) fn is_retry(request: &WebhookRequest) -> bool {
    request
        .headers
        .get(RETRY_NUM_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u32>().ok())
        .is_some_and(|attempt| attempt > 0)
}

/// The `message` events' subtypes that are a message written (the others are changes to
/// one, or notices such as a member joining).
fn is_posted(subtype: Option<&str>) -> bool {
    matches!(
        subtype,
        None | Some("bot_message" | "thread_broadcast" | "me_message" | "file_share")
    )
}

/// The message a stored delivery announces as written, read without building the whole event:
/// most of what the hub receives is its own copies announced back.
pub(crate) fn announced_post(body: &[u8]) -> Option<AnnouncedPost> {
    #[derive(Deserialize)]
    struct Delivery {
        event: Event,
    }
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        subtype: Option<String>,
        channel: Option<String>,
        ts: Option<String>,
        user: Option<String>,
        bot_id: Option<String>,
    }
    let Delivery { event } = serde_json::from_slice(body).ok()?;
    if event.kind != "message" || !is_posted(event.subtype.as_deref()) {
        return None;
    }
    Some(AnnouncedPost {
        message: message_ref(&event.channel?, &event.ts?),
        author: event.user.or(event.bot_id).map(ExternalUserId::new),
    })
}

/// The events in an Events API delivery; kinds the hub does not act on are left out.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<InboundEvent>, PlatformError> {
    let delivery = read(body)
        .map_err(|_| PlatformError::BadWebhook("the body is not JSON".into()))?
        .unwrap_or_default();
    if delivery.kind.as_deref() != Some("event_callback") {
        return Ok(Vec::new());
    }
    let event_id = delivery
        .event_id
        .ok_or_else(|| PlatformError::BadWebhook("an event_callback with no event_id".into()))?;
    let Lenient(event) = delivery
        .event
        .ok_or_else(|| PlatformError::BadWebhook("an event_callback with no event".into()))?;
    // The bot user of the app this delivery is for: whom a message to that bot was written to.
    let recipient = delivery
        .authorizations
        .into_iter()
        .next()
        .and_then(|authorization| authorization.user_id)
        .map(ExternalUserId::new);
    Ok(event
        .and_then(|event| kind(event, recipient))
        .map(|kind| InboundEvent {
            event_id,
            platform: Platform::Slack,
            kind,
        })
        .into_iter()
        .collect())
}

fn kind(event: Event, recipient: Option<ExternalUserId>) -> Option<InboundKind> {
    let present = matches!(event, Event::ReactionAdded(_));
    match event {
        Event::Message(message) => self::message(*message, recipient),
        Event::ReactionAdded(reaction) | Event::ReactionRemoved(reaction) => {
            let item = reaction.item?;
            if item.kind.as_deref() != Some("message") {
                return None;
            }
            Some(InboundKind::ReactionChanged {
                message: message_ref(&item.channel?, &item.ts?),
                user: ExternalUserId::new(reaction.user?),
                emoji: emoji_of(&reaction.reaction?),
                present,
            })
        }
        Event::TeamJoin(UserEvent { user }) | Event::UserChange(UserEvent { user }) => {
            Some(InboundKind::UserChanged {
                user: user.into_platform(),
            })
        }
        Event::Other => None,
    }
}

/// A message as `conversations.history` lists it, read as its `message` event would be.
pub(crate) fn history_message(chat: &str, mut message: MessageEvent) -> Option<InboundKind> {
    message.channel = Some(chat.to_owned());
    // Direct messages' ids start with D; group DMs are listed as such.
    message.channel_type = Some(if chat.starts_with('D') { "im" } else { "mpim" }.to_owned());
    match self::message(message, None)? {
        posted @ InboundKind::MessagePosted { .. } => Some(posted),
        _ => None,
    }
}

impl MessageEvent {
    pub(crate) fn ts(&self) -> Option<&str> {
        self.ts.as_deref()
    }
}

/// The names of the files shared with a message, which the relay does not carry across.
fn files(files: &[Lenient<SharedFile>]) -> Vec<String> {
    files
        .iter()
        .map(|Lenient(file)| {
            file.as_ref()
                .and_then(|file| file.name.clone().or_else(|| file.title.clone()))
                .unwrap_or_else(|| "a file".to_owned())
        })
        .collect()
}

fn message(event: MessageEvent, recipient: Option<ExternalUserId>) -> Option<InboundKind> {
    let chat_kind = match event.channel_type.as_deref() {
        Some("im") => ChatKind::Direct,
        Some("mpim") => ChatKind::Group,
        // Channels are not relayed (yet); edits and deletes may omit the type.
        Some(_) => return None,
        None => ChatKind::Direct,
    };
    let channel = event.channel.as_deref()?;
    match event.subtype.as_deref() {
        subtype if is_posted(subtype) => {
            event.channel_type.as_ref()?;
            let ts = event.ts.as_deref()?;
            let sender = event.user.as_deref().or(event.bot_id.as_deref())?;
            let thread = event
                .thread_ts
                .as_deref()
                .filter(|parent| *parent != ts)
                .map(|parent| message_ref(channel, parent));
            Some(InboundKind::MessagePosted {
                message: message_ref(channel, ts),
                chat_kind,
                sender: ExternalUserId::new(sender),
                recipient,
                sent_at_micros: ts_micros(ts),
                body: markup::parse(event.text.as_deref().unwrap_or_default())
                    .noting_unrelayed(&files(&event.files)),
                thread,
            })
        }
        Some("message_changed") => {
            let changed = event.message.as_ref();
            let body = changed
                .and_then(|message| message.text.as_deref())
                .unwrap_or_default();
            // Slack also reports changes that are not edits (a reply count, an unfurl).
            let previous = event.previous_message.as_ref();
            if previous.and_then(|message| message.text.as_deref()) == Some(body) {
                return None;
            }
            let files = changed
                .map(|message| files(&message.files))
                .unwrap_or_default();
            Some(InboundKind::MessageEdited {
                message: message_ref(channel, changed?.ts.as_deref()?),
                body: markup::parse(body).noting_unrelayed(&files),
            })
        }
        Some("message_deleted") => Some(InboundKind::MessageDeleted {
            message: message_ref(
                channel,
                event
                    .deleted_ts
                    .as_deref()
                    .or_else(|| event.previous_message.as_ref()?.ts.as_deref())?,
            ),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(secret: &str, timestamp: &str, body: &[u8]) -> WebhookRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
        let signature = sign(&SecretString::from(secret), timestamp, body);
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        WebhookRequest {
            headers,
            query: None,
            body: body.to_vec(),
            held_subscriptions: Vec::new(),
        }
    }

    #[test]
    fn the_vendor_test_vector_verifies() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = SecretString::from("8f742231b10e8888abcd99yyyzzz85a5");
        assert_eq!(
            sign(&secret, "1531420618", body.as_bytes()),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
        let req = request(
            "8f742231b10e8888abcd99yyyzzz85a5",
            "1531420618",
            body.as_bytes(),
        );
        let signed = signed(&req, 1_531_420_618 + 10).unwrap();
        assert!(signed.by(&secret, body.as_bytes()));
        assert!(!signed.by(&SecretString::from("another"), body.as_bytes()));
        assert!(super::signed(&req, 1_531_420_618 + 301).is_err());
    }

    #[test]
    fn only_a_retry_numbered_from_one_is_a_retry() {
        let mut retried = request("s", "1", b"{}");
        assert!(!is_retry(&retried));
        for (number, retry) in [("0", false), ("1", true), ("3", true), ("x", false)] {
            retried
                .headers
                .insert(RETRY_NUM_HEADER, number.parse().unwrap());
            assert_eq!(is_retry(&retried), retry, "X-Slack-Retry-Num: {number}");
        }
    }

    #[test]
    fn timestamps_order_to_the_microsecond() {
        assert_eq!(ts_micros("1712345678.123456"), Some(1_712_345_678_123_456));
        assert_eq!(ts_micros("2.5"), Some(2_500_000));
        assert_eq!(ts_micros("7"), Some(7_000_000));
        assert_eq!(ts_micros("x.1"), None);
    }

    #[test]
    fn files_shared_with_a_message_or_its_edit_are_named_in_it() {
        let envelope = |event: Value| {
            serde_json::to_vec(&json!({"type": "event_callback", "event_id": "Ev1",
                "api_app_id": "A1", "team_id": "T1", "event": event}))
            .unwrap()
        };
        let noted = "📎 Sent with this message, not relayed: plan.pdf, Untitled, a file";
        let files = json!([{"id": "F1", "name": "plan.pdf"}, {"id": "F2", "title": "Untitled"},
            {"id": "F3"}]);
        let shared = parse(&envelope(
            json!({"type": "message", "subtype": "file_share",
            "channel": "D1", "channel_type": "im", "user": "U1", "text": "the plan",
            "ts": "2.0", "files": files}),
        ))
        .unwrap();
        let InboundKind::MessagePosted { body, .. } = &shared[0].kind else {
            panic!("{shared:?}");
        };
        assert_eq!(body.to_plain_text(), format!("the plan\n{noted}"));
        let edited = parse(&envelope(
            json!({"type": "message", "subtype": "message_changed",
            "channel": "D1", "channel_type": "im",
            "message": {"ts": "2.0", "text": "the new plan", "files": files},
            "previous_message": {"ts": "2.0", "text": "the plan"}}),
        ))
        .unwrap();
        let InboundKind::MessageEdited { body, .. } = &edited[0].kind else {
            panic!("{edited:?}");
        };
        assert_eq!(body.to_plain_text(), format!("the new plan\n{noted}"));
    }

    #[test]
    fn events_are_read_and_others_ignored() {
        let envelope = |event: Value| {
            serde_json::to_vec(&json!({"type": "event_callback", "event_id": "Ev1",
                "api_app_id": "A1", "team_id": "T1", "event": event}))
            .unwrap()
        };
        let posted = parse(&envelope(json!({"type": "message", "channel": "D1",
            "channel_type": "im", "user": "U1", "text": "hi", "ts": "2.000002", "thread_ts": "1.000001"})))
        .unwrap();
        assert_eq!(
            posted[0].kind,
            InboundKind::MessagePosted {
                message: message_ref("D1", "2.000002"),
                chat_kind: ChatKind::Direct,
                sender: ExternalUserId::new("U1"),
                recipient: None,
                sent_at_micros: Some(2_000_002),
                body: switchboard_core::RichText::plain("hi"),
                thread: Some(message_ref("D1", "1.000001")),
            }
        );
        assert!(
            parse(&envelope(json!({"type": "message", "channel": "C1",
            "channel_type": "channel", "user": "U1", "text": "hi", "ts": "2.0"})))
            .unwrap()
            .is_empty()
        );
        assert!(
            parse(&envelope(json!({"type": "app_mention", "channel": "C1"})))
                .unwrap()
                .is_empty()
        );
        let unchanged = parse(&envelope(
            json!({"type": "message", "subtype": "message_changed",
            "channel": "D1", "channel_type": "im", "message": {"ts": "1.0", "text": "a"},
            "previous_message": {"ts": "1.0", "text": "a"}}),
        ))
        .unwrap();
        assert!(unchanged.is_empty());
        assert!(parse(br#"{"type":"app_rate_limited"}"#).unwrap().is_empty());
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn the_stored_item_is_the_delivery_without_its_verification_token() {
        let body = serde_json::to_vec(&json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "type": "event_callback", "event_id": "Ev1", "api_app_id": "A1", "team_id": "T1",
            "event": {"type": "message", "channel": "D1", "channel_type": "im", "user": "U1",
                "text": "hi", "ts": "2.000002"}}))
        .unwrap();
        let stored = envelopes(&body).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].event_id, "Ev1");
        assert!(
            !stored[0].payload.contains("Jhj5dZrVaK7ZwHHjRyZWjbDl")
                && !stored[0].payload.contains("\"token\""),
            "{}",
            stored[0].payload
        );
        // What is stored still reads as the delivery did.
        assert_eq!(
            parse(stored[0].payload.as_bytes()).unwrap(),
            parse(&body).unwrap()
        );
        assert!(
            envelopes(br#"{"type":"app_rate_limited","token":"x"}"#)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn only_written_messages_are_announced() {
        let delivery = |event: Value| {
            serde_json::to_vec(&json!({"type": "event_callback", "event_id": "Ev1",
                "api_app_id": "A1", "event": event}))
            .unwrap()
        };
        assert_eq!(
            announced_post(&delivery(json!({"type": "message", "channel": "D1",
                "channel_type": "im", "user": "U1", "text": "hi", "ts": "2.000002"}))),
            Some(AnnouncedPost {
                message: message_ref("D1", "2.000002"),
                author: Some(ExternalUserId::new("U1")),
            })
        );
        assert_eq!(
            announced_post(&delivery(
                json!({"type": "message", "subtype": "bot_message",
                "channel": "D1", "bot_id": "B1", "text": "hi", "ts": "3.0"})
            ))
            .and_then(|post| post.author),
            Some(ExternalUserId::new("B1"))
        );
        // Changes to a message, and reactions, may be a person's doing on the hub's own copy.
        for event in [
            json!({"type": "message", "subtype": "message_changed", "channel": "D1",
                "message": {"ts": "1.0", "text": "b", "user": "U1"}}),
            json!({"type": "message", "subtype": "message_deleted", "channel": "D1",
                "deleted_ts": "1.0"}),
            json!({"type": "reaction_added", "user": "U1", "reaction": "tada",
                "item": {"type": "message", "channel": "D1", "ts": "1.0"}}),
        ] {
            assert_eq!(announced_post(&delivery(event)), None);
        }
        assert_eq!(announced_post(b"not json"), None);
    }

    #[test]
    fn odd_deliveries_read_as_they_always_did() {
        // Not an object, or an event sent as null or of another shape: nothing to act on.
        assert!(parse(b"[1]").unwrap().is_empty());
        for event in [
            json!(null),
            json!("x"),
            json!({"type": 7}),
            json!({"type": "message",
            "channel": {"id": "D1"}, "channel_type": "im", "user": "U1", "ts": "1.0"}),
        ] {
            let body = serde_json::to_vec(&json!({"type": "event_callback", "event_id": "Ev1",
                "event": event, "authorizations": "x", "unknown": {"a": 1}}))
            .unwrap();
            assert!(parse(&body).unwrap().is_empty(), "{event}");
        }
        // An event_callback without an event, or without an id, is refused.
        assert!(parse(br#"{"type":"event_callback","event_id":"Ev1"}"#).is_err());
        assert!(parse(br#"{"type":"event_callback","event_id":1,"event":{}}"#).is_err());
        // A file that cannot be read is still named.
        let body = serde_json::to_vec(&json!({"type": "event_callback", "event_id": "Ev1",
            "authorizations": [{"user_id": "B1"}],
            "event": {"type": "message", "subtype": "file_share", "channel": "D1",
                "channel_type": "im", "user": "U1", "text": "", "ts": "1.0", "files": [7]}}))
        .unwrap();
        let read = parse(&body).unwrap();
        let InboundKind::MessagePosted {
            body, recipient, ..
        } = &read[0].kind
        else {
            panic!("{read:?}");
        };
        assert_eq!(recipient, &Some(ExternalUserId::new("B1")));
        assert!(body.to_plain_text().ends_with("a file"), "{body:?}");
    }
}

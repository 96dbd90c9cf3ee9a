//! Deliveries as Pub/Sub pushes them: verifying the OIDC token each push carries, and
//! splitting the push envelope into the Workspace Event it holds.
//!
//! A push request carries `Authorization: Bearer <JWT>`, an ID token Google signs (RS256) for
//! the push subscription's service account, with the subscription's audience. It is checked
//! against Google's published keys (JWKS at `certs_url`), which are kept here by key id:
//! fetched by `maintain_subscriptions` and `check_health`, and again in the background when a
//! token names a key not seen yet (such a delivery is refused; Pub/Sub delivers it again).
//!
//! - Push authentication: <https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions>
//! - The push envelope: <https://cloud.google.com/pubsub/docs/push#receive_push>
//! - Workspace Events' CloudEvents attributes: <https://developers.google.com/workspace/events/guides#structure-events>

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_platform::wire::lenient;
use switchboard_platform::{
    ConnectionContext, EventEnvelope, EventSubscription, PlatformError, RetryPolicy,
    WebhookRequest, WebhookVerdict, with_retries,
};
use switchboard_secrets::ExposeSecret;

use crate::chat;
use crate::{GoogleChatPlatform, credential};

/// The issuers of Google's ID tokens.
const ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];

/// A background fetch of the keys for an unknown key id happens at most this often, so a
/// flood of forged tokens cannot make the hub hammer Google.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Google's signing keys by key id.
pub(crate) struct SigningKeys {
    shared: Arc<Shared>,
}

struct Shared {
    http: reqwest::Client,
    certs_url: String,
    retry: RetryPolicy,
    by_kid: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    #[serde(default)]
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    kty: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

impl SigningKeys {
    pub fn new(
        certs_url: String,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, PlatformError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| PlatformError::Rejected(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            shared: Arc::new(Shared {
                http,
                certs_url,
                retry,
                by_kid: RwLock::new(HashMap::new()),
                last_fetch: Mutex::new(None),
            }),
        })
    }

    /// Fetches the keys now.
    pub async fn refresh(&self) -> Result<(), PlatformError> {
        self.shared.refresh().await
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.shared
            .by_kid
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    /// Starts fetching the keys in the background, unless that was done a moment ago or there
    /// is no runtime to do it on.
    fn refresh_soon(&self) {
        {
            let mut last = self
                .shared
                .last_fetch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = Arc::clone(&self.shared);
            runtime.spawn(async move {
                if let Err(error) = shared.refresh().await {
                    tracing::warn!(%error, "cannot fetch Google's signing keys");
                }
            });
        }
    }

    #[cfg(test)]
    pub(crate) fn insert(&self, kid: &str, key: DecodingKey) {
        self.shared
            .by_kid
            .write()
            .unwrap()
            .insert(kid.to_owned(), key);
    }
}

impl Shared {
    async fn refresh(&self) -> Result<(), PlatformError> {
        let jwks: Jwks =
            with_retries(self.retry, || async {
                let response =
                    self.http.get(&self.certs_url).send().await.map_err(|e| {
                        PlatformError::Unavailable(format!("cannot reach Google: {e}"))
                    })?;
                let status = response.status();
                if !status.is_success() {
                    let error = format!("HTTP {} from {}", status.as_u16(), self.certs_url);
                    return Err(if status.is_server_error() || status.as_u16() == 429 {
                        PlatformError::Unavailable(error)
                    } else {
                        PlatformError::Rejected(error)
                    });
                }
                response
                    .json::<Jwks>()
                    .await
                    .map_err(|e| PlatformError::Rejected(format!("unreadable signing keys: {e}")))
            })
            .await?;
        let keys: HashMap<String, DecodingKey> = jwks
            .keys
            .into_iter()
            .filter(|jwk| jwk.kty.as_deref().is_none_or(|kty| kty == "RSA"))
            .filter_map(|jwk| {
                let key =
                    DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?;
                Some((jwk.kid?, key))
            })
            .collect();
        if keys.is_empty() {
            return Err(PlatformError::Rejected(format!(
                "no RSA signing keys at {}",
                self.certs_url
            )));
        }
        *self
            .by_kid
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        Ok(())
    }
}

/// How far the hub's clock and Google's may disagree about a token's expiry.
const CLOCK_SKEW_SECS: i64 = 60;

#[derive(Debug, Deserialize)]
struct PushClaims {
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

/// Checks the push request's token: Google's signature, issuer, audience, expiry, and that it
/// was minted for the connection's push service account.
pub(crate) fn verify(
    platform: &GoogleChatPlatform,
    connection: &ConnectionContext,
    request: &WebhookRequest,
) -> Result<WebhookVerdict, PlatformError> {
    let bad = |why: String| PlatformError::BadWebhook(why);
    let token = request
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            bad("no bearer token: the push subscription must send an OIDC token".to_owned())
        })?;
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| bad(format!("unreadable token: {e}")))?;
    if header.alg != Algorithm::RS256 {
        return Err(bad(format!(
            "token signed with {:?}, not RS256",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| bad("the token names no signing key".to_owned()))?;
    let Some(key) = platform.signing_keys.key(&kid) else {
        platform.signing_keys.refresh_soon();
        return Err(bad(format!(
            "the token is signed with key {kid}, not among Google's keys the hub holds (fetching them again)"
        )));
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&platform.push_audience]);
    validation.set_issuer(&ISSUERS);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    // Expiry is checked below against the hub's clock.
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<PushClaims>(token, &key, &validation)
        .map_err(|e| bad(format!("token refused: {e}")))?
        .claims;
    let now = platform.clock.now().unix_millis() / 1000;
    if claims.exp.is_none_or(|exp| exp + CLOCK_SKEW_SECS < now) {
        return Err(bad("the token has expired".to_owned()));
    }
    let expected = connection
        .credentials
        .get(credential::PUSH_SERVICE_ACCOUNT)?
        .expose_secret();
    let email = claims.email.unwrap_or_default();
    if !email.eq_ignore_ascii_case(expected.trim()) || claims.email_verified != Some(true) {
        return Err(bad(format!(
            "the token was minted for {email:?}, not the connection's push service account"
        )));
    }
    Ok(WebhookVerdict::Events)
}

#[derive(Debug, Deserialize)]
struct Push {
    message: PushMessage,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushMessage {
    #[serde(default, deserialize_with = "lenient")]
    data: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default, deserialize_with = "lenient")]
    message_id: Option<String>,
}

/// What the hub stores of one delivery: the event, and the account whose subscription
/// delivered it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct StoredEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    /// The subscription that delivered it (`subscriptions/ID`).
    pub subscription: String,
    /// The watched account (a Directory user id) that subscription belongs to.
    pub recipient: String,
    /// The event's data, decoded: `{"message": {…}}`, `{"reaction": {…}}`, `{"subscription": {…}}`.
    pub data: Value,
}

/// A CloudEvents attribute, `ce-` prefixed as Workspace Events sends them, or not.
fn attribute<'a>(attributes: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    attributes
        .get(&format!("ce-{name}"))
        .or_else(|| attributes.get(name))
        .map(String::as_str)
}

/// The held subscription a CloudEvent's source names (`//workspaceevents.googleapis.com/subscriptions/ID`).
fn held<'a>(source: &str, held: &'a [EventSubscription]) -> Option<&'a EventSubscription> {
    let name = source
        .strip_prefix("//workspaceevents.googleapis.com/")
        .unwrap_or(source);
    held.iter().find(|subscription| subscription.id == name)
}

pub(crate) fn split(request: &WebhookRequest) -> Result<Vec<EventEnvelope>, PlatformError> {
    let push: Push = serde_json::from_slice(&request.body)
        .map_err(|e| PlatformError::BadWebhook(format!("not a Pub/Sub push: {e}")))?;
    let attributes = &push.message.attributes;
    let event_type = attribute(attributes, "type").ok_or_else(|| {
        PlatformError::BadWebhook("the message has no CloudEvents type".to_owned())
    })?;
    let source = attribute(attributes, "source").unwrap_or_default();
    let subscription = held(source, &request.held_subscriptions).ok_or_else(|| {
        PlatformError::BadWebhook(format!(
            "event from {source:?}, not a subscription the hub holds"
        ))
    })?;
    let recipient = subscription
        .resource
        .strip_prefix("users/")
        .unwrap_or(&subscription.resource);
    let data = match push.message.data.as_deref() {
        Some(encoded) if !encoded.is_empty() => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| PlatformError::BadWebhook(format!("data is not base64: {e}")))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| PlatformError::BadWebhook(format!("data is not JSON: {e}")))?
        }
        _ => Value::Null,
    };
    let delivery = attribute(attributes, "id")
        .or(push.message.message_id.as_deref())
        .unwrap_or_default();
    let event_id = change_id(event_type, &data)
        .unwrap_or_else(|| format!("{event_type} {} {delivery}", subscription.id));
    let stored = StoredEvent {
        event_type: event_type.to_owned(),
        subscription: subscription.id.clone(),
        recipient: recipient.to_owned(),
        data,
    };
    let payload = serde_json::to_string(&stored)
        .map_err(|e| PlatformError::BadWebhook(format!("cannot store the event: {e}")))?;
    Ok(vec![EventEnvelope { event_id, payload }])
}

/// The id of the change a message or reaction event reports, the same from every subscription
/// that delivers it.
fn change_id(event_type: &str, data: &Value) -> Option<String> {
    let resource = match event_type {
        chat::MESSAGE_CREATED | chat::MESSAGE_UPDATED | chat::MESSAGE_DELETED => {
            data.pointer("/message/name")?.as_str()?
        }
        chat::REACTION_CREATED | chat::REACTION_DELETED => {
            data.pointer("/reaction/name")?.as_str()?
        }
        _ => return None,
    };
    let version = (event_type == chat::MESSAGE_UPDATED)
        .then(|| {
            data.pointer("/message/lastUpdateTime")
                .and_then(Value::as_str)
        })
        .flatten();
    Some(chat::event_id(event_type, resource, version))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::auth::tests::rsa_key;
    use crate::settings::GoogleChatSettings;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use switchboard_core::{Connection, ConnectionId, ExternalTenantId, Platform, Timestamp};
    use switchboard_platform::Credentials;
    use switchboard_secrets::SecretString;

    const AUDIENCE: &str = "https://hub.example/webhooks/google_chat";
    const PUSHER: &str = "push@p.iam.gserviceaccount.com";

    /// The time the tests' tokens are issued at.
    const NOW_SECS: i64 = 1_800_000_000;

    struct FixedClock;

    impl switchboard_core::Clock for FixedClock {
        fn now(&self) -> Timestamp {
            Timestamp::from_unix_millis(NOW_SECS * 1000)
        }
    }

    pub(crate) fn platform() -> GoogleChatPlatform {
        let settings: GoogleChatSettings =
            serde_json::from_value(json!({"push_audience": AUDIENCE})).unwrap();
        GoogleChatPlatform::new(settings, Arc::new(FixedClock)).unwrap()
    }

    pub(crate) fn connection() -> ConnectionContext {
        let mut credentials = Credentials::default();
        credentials.insert(credential::PUSH_SERVICE_ACCOUNT, SecretString::from(PUSHER));
        ConnectionContext {
            connection: Connection {
                id: "00000000-0000-0000-0000-000000000001"
                    .parse::<ConnectionId>()
                    .unwrap(),
                platform: Platform::GoogleChat,
                tenant: ExternalTenantId::new("C01"),
                display_name: "acme.example".to_owned(),
            },
            credentials,
        }
    }

    pub(crate) fn request(
        token: Option<&str>,
        body: Value,
        held: Vec<EventSubscription>,
    ) -> WebhookRequest {
        let mut headers = http::HeaderMap::new();
        if let Some(token) = token {
            headers.insert(
                http::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        WebhookRequest {
            headers,
            query: None,
            body: body.to_string().into_bytes(),
            held_subscriptions: held,
        }
    }

    fn sign(pem: &str, kid: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn claims(overrides: Value) -> Value {
        let now = NOW_SECS;
        let mut claims = json!({
            "iss": "https://accounts.google.com", "aud": AUDIENCE, "email": PUSHER,
            "email_verified": true, "iat": now, "exp": now + 3600, "sub": "1"
        });
        for (name, value) in overrides.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    }

    #[test]
    fn push_tokens_are_verified_against_googles_keys() {
        let platform = platform();
        let (pem, public) = rsa_key();
        platform
            .signing_keys
            .insert("k1", DecodingKey::from_rsa_der(&public));
        let verdict = |token: &str| {
            verify(
                &platform,
                &connection(),
                &request(Some(token), json!({}), vec![]),
            )
        };
        assert_eq!(
            verdict(&sign(&pem, "k1", claims(json!({})))),
            Ok(WebhookVerdict::Events)
        );
        assert_eq!(
            verdict(&sign(
                &pem,
                "k1",
                claims(json!({"iss": "accounts.google.com"}))
            )),
            Ok(WebhookVerdict::Events)
        );
        for refused in [
            json!({"aud": "https://elsewhere"}),
            json!({"iss": "https://evil.example"}),
            json!({"email": "someone@p.iam.gserviceaccount.com"}),
            json!({"email_verified": false}),
            json!({"exp": NOW_SECS - 120, "iat": NOW_SECS - 3720}),
        ] {
            let outcome = verdict(&sign(&pem, "k1", claims(refused.clone())));
            assert!(
                matches!(outcome, Err(PlatformError::BadWebhook(_))),
                "{refused}"
            );
        }
        let unknown = verdict(&sign(&pem, "k2", claims(json!({}))));
        assert!(matches!(unknown, Err(PlatformError::BadWebhook(m)) if m.contains("k2")));
        let (other_pem, _) = rsa_key();
        assert!(verdict(&sign(&other_pem, "k1", claims(json!({})))).is_err());
        assert!(matches!(
            verify(&platform, &connection(), &request(None, json!({}), vec![])),
            Err(PlatformError::BadWebhook(_))
        ));
    }

    pub(crate) fn subscription(id: &str, account: &str) -> EventSubscription {
        EventSubscription {
            id: format!("subscriptions/{id}"),
            resource: format!("users/{account}"),
            expires_at: Timestamp::from_unix_millis(0),
        }
    }

    pub(crate) fn push(event_type: &str, source_id: &str, data: Value, prefixed: bool) -> Value {
        let prefix = if prefixed { "ce-" } else { "" };
        json!({
            "message": {
                "data": base64::engine::general_purpose::STANDARD.encode(data.to_string()),
                "attributes": {
                    format!("{prefix}type"): event_type,
                    format!("{prefix}source"): format!("//workspaceevents.googleapis.com/subscriptions/{source_id}"),
                    format!("{prefix}id"): format!("delivery-{source_id}"),
                },
                "messageId": format!("pubsub-{source_id}"),
                "publishTime": "2024-05-01T12:00:00Z"
            },
            "subscription": "projects/p/subscriptions/hub"
        })
    }

    #[test]
    fn one_change_delivered_by_two_subscriptions_is_stored_once() {
        let held = vec![subscription("s-ana", "1"), subscription("s-bo", "2")];
        let data = json!({"message": {"name": "spaces/G/messages/M", "text": "hi"}});
        let split_one = |source: &str, prefixed: bool| {
            let envelopes = split(&request(
                None,
                push(chat::MESSAGE_CREATED, source, data.clone(), prefixed),
                held.clone(),
            ))
            .unwrap();
            assert_eq!(envelopes.len(), 1);
            envelopes.into_iter().next().unwrap()
        };
        let to_ana = split_one("s-ana", true);
        let to_bo = split_one("s-bo", false);
        assert_eq!(to_ana.event_id, to_bo.event_id);
        let stored: StoredEvent = serde_json::from_str(&to_bo.payload).unwrap();
        assert_eq!(stored.recipient, "2");
        assert_eq!(stored.subscription, "subscriptions/s-bo");
        assert_eq!(stored.data, data);
    }

    #[test]
    fn edits_are_told_apart_by_version_and_strangers_are_refused() {
        let held = vec![subscription("s-ana", "1")];
        let edit = |at: &str| {
            let data = json!({"message": {"name": "spaces/G/messages/M", "lastUpdateTime": at}});
            split(&request(
                None,
                push(chat::MESSAGE_UPDATED, "s-ana", data, true),
                held.clone(),
            ))
            .unwrap()[0]
                .event_id
                .clone()
        };
        assert_ne!(edit("2024-05-01T12:00:01Z"), edit("2024-05-01T12:00:02Z"));
        let stranger = split(&request(
            None,
            push(chat::MESSAGE_CREATED, "s-other", json!({}), true),
            held.clone(),
        ));
        assert!(matches!(stranger, Err(PlatformError::BadWebhook(_))));
        assert!(matches!(
            split(&request(None, json!({"nope": 1}), held)),
            Err(PlatformError::BadWebhook(_))
        ));
    }
}

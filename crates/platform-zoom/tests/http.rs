//! The module against a tiny local HTTP server playing Zoom's part for each test: a 429 with
//! `Retry-After` waited for and retried, 5xx retried then reported, a time-out, a revoked
//! token not retried, the import's pages (active users, then deactivated ones), tokens asked
//! for with HTTP Basic, and deliveries verified (signature, freshness, URL validation).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};
use switchboard_core::{
    Clock, Connection, ConnectionId, ExternalChatId, ExternalTenantId, ExternalUserId, Platform,
    RichText, Timestamp,
};
use switchboard_platform::{
    Actor, ChatPlatform, ConnectionContext, Credentials, ImportRequest, OutboundMessage,
    PlatformError, RetryPolicy, WebhookRequest, WebhookVerdict,
};
use switchboard_platform_zoom::{ZoomPlatform, ZoomSettings, credential, sign};
use switchboard_secrets::{ExposeSecret, SecretString};

const NOW_MILLIS: i64 = 1_700_000_000_000;
const WEBHOOK_SECRET: &str = "s2s-secret-token";
const CHATBOT_SECRET: &str = "chatbot-secret-token";

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(NOW_MILLIS)
    }
}

/// A request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    authorization: String,
    body: String,
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

struct Server {
    root: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves `answer(request, how many requests came before)` for every request.
async fn serve(answer: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let log = Arc::clone(&seen);
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
            async move {
                let request = Seen {
                    method,
                    path: uri.path().to_owned(),
                    query: uri.query().unwrap_or_default().to_owned(),
                    authorization: headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned(),
                    body,
                };
                let before = {
                    let mut log = log.lock().unwrap();
                    log.push(request.clone());
                    log.len() - 1
                };
                let reply = answer(&request, before);
                tokio::time::sleep(reply.delay).await;
                let mut headers = HeaderMap::new();
                for (name, value) in reply.headers {
                    headers.insert(
                        HeaderName::from_static(name),
                        HeaderValue::from_str(&value).unwrap(),
                    );
                }
                (
                    StatusCode::from_u16(reply.status).unwrap(),
                    headers,
                    reply.body,
                )
            }
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { root, seen }
}

fn platform(server: &Server, attempts: u32, timeout_secs: u64) -> ZoomPlatform {
    let settings: ZoomSettings = serde_json::from_value(json!({
        "api_base": format!("{}/v2", server.root),
        "oauth_base": format!("{}/oauth", server.root),
        "account_id": "ACC",
        "s2s_client_id": "s2s", "s2s_client_secret": "s2s-secret",
        "user_client_id": "user", "user_client_secret": "user-secret",
        "chatbot_client_id": "bot", "chatbot_client_secret": "bot-secret",
        "robot_jid": "bot@xmpp.zoom.us",
        "webhook_secret_token": WEBHOOK_SECRET,
        "chatbot_secret_token": CHATBOT_SECRET,
        "request_timeout_secs": timeout_secs,
        "page_size": 2,
    }))
    .unwrap();
    let retry = RetryPolicy {
        attempts,
        base: Duration::from_millis(1),
        max_wait: Duration::from_secs(2),
    };
    ZoomPlatform::with_retry_policy(settings, Arc::new(FixedClock), retry).unwrap()
}

fn connection() -> ConnectionContext {
    let mut credentials = Credentials::default();
    credentials.insert(credential::S2S_TOKEN, SecretString::from("s2s-token"));
    credentials.insert(credential::CHATBOT_TOKEN, SecretString::from("bot-token"));
    ConnectionContext {
        connection: Connection {
            id: "00000000-0000-4000-8000-000000000001"
                .parse::<ConnectionId>()
                .unwrap(),
            platform: Platform::Zoom,
            tenant: ExternalTenantId::new("ACC"),
            display_name: "acme.example".to_owned(),
        },
        credentials,
    }
}

fn ada() -> Actor {
    let mut credentials = Credentials::default();
    credentials.insert(credential::ACCESS_TOKEN, SecretString::from("ada-token"));
    credentials.insert(credential::REFRESH_TOKEN, SecretString::from("ada-refresh"));
    Actor::Representation {
        account: ExternalUserId::new("U1"),
        credentials,
    }
}

fn hello() -> OutboundMessage {
    OutboundMessage {
        body: RichText::plain("hello"),
        thread: None,
        idempotency_key: None,
    }
}

fn direct() -> ExternalChatId {
    ExternalChatId::new("dm:U1:U2")
}

#[tokio::test]
async fn a_429_is_waited_for_as_long_as_retry_after_says_then_retried() {
    let server = serve(|_, before| match before {
        0 => Reply {
            headers: vec![("retry-after", "1".to_owned())],
            ..reply(429, json!({"code": 429, "message": "You have reached the maximum per-second rate limit for this API. Try again later."}))
        },
        _ => reply(201, json!({"id": "MSG-1"})),
    })
    .await;
    let zoom = platform(&server, 3, 5);
    let started = Instant::now();
    let posted = zoom
        .post_message(&connection(), &ada(), &direct(), &hello())
        .await
        .unwrap();
    assert_eq!(posted.id, "MSG-1");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, Method::POST);
    assert_eq!(seen[1].path, "/v2/chat/users/me/messages");
    assert_eq!(seen[1].authorization, "Bearer ada-token");
    let body: Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(body, json!({"message": "hello", "to_contact": "U2"}));
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_unavailable() {
    let server =
        serve(|_, _| reply(503, json!({"code": 503, "message": "Service Unavailable"}))).await;
    let zoom = platform(&server, 3, 5);
    let failed = zoom
        .post_message(&connection(), &ada(), &direct(), &hello())
        .await;
    assert!(
        matches!(&failed, Err(PlatformError::Unavailable(m)) if m.contains("503")),
        "{failed:?}"
    );
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn a_call_that_times_out_is_unavailable() {
    let server = serve(|_, _| Reply {
        delay: Duration::from_secs(3),
        ..reply(204, Value::Null)
    })
    .await;
    let zoom = platform(&server, 1, 1);
    let started = Instant::now();
    let failed = zoom
        .delete_message(
            &connection(),
            &ada(),
            &switchboard_platform::MessageRef {
                chat: ExternalChatId::new("channel:C1"),
                id: "MSG-1".to_owned(),
            },
        )
        .await;
    assert!(
        matches!(&failed, Err(PlatformError::Unavailable(m)) if m.contains("timed out")),
        "{failed:?}"
    );
    assert!(failed.unwrap_err().may_have_applied());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.seen()[0].query, "to_channel=C1");
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_at_once() {
    let server = serve(|_, _| {
        reply(
            401,
            json!({"code": 124, "message": "Invalid access token."}),
        )
    })
    .await;
    let zoom = platform(&server, 3, 5);
    let failed = zoom.check_health(&connection()).await;
    assert!(
        matches!(failed, Err(PlatformError::Unauthorized(_))),
        "{failed:?}"
    );
    assert_eq!(server.seen().len(), 1);
    assert_eq!(server.seen()[0].authorization, "Bearer s2s-token");
}

#[tokio::test]
async fn an_import_reads_active_users_then_deactivated_ones() {
    let server = serve(|request, _| {
        let user = |id: &str, status: &str| json!({"id": id, "email": format!("{id}@acme.example"), "display_name": id, "status": status});
        match (request.query.contains("status=active"), request.query.contains("next_page_token=t2")) {
            (true, false) => reply(200, json!({"users": [user("U1", "active"), user("U2", "active")], "next_page_token": "t2"})),
            (true, true) => reply(200, json!({"users": [user("U3", "active")], "next_page_token": ""})),
            _ => reply(200, json!({"users": [user("U4", "inactive")], "next_page_token": ""})),
        }
    })
    .await;
    let zoom = platform(&server, 1, 5);
    let mut request = ImportRequest {
        teams: Vec::new(),
        cursor: None,
    };
    let mut pages = Vec::new();
    loop {
        let page = zoom.import_users(&connection(), &request).await.unwrap();
        pages.push(
            page.users
                .iter()
                .map(|user| (user.id.as_str().to_owned(), user.deactivated))
                .collect::<Vec<_>>(),
        );
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(
        pages,
        vec![
            vec![("U1".to_owned(), false), ("U2".to_owned(), false)],
            vec![("U3".to_owned(), false)],
            vec![("U4".to_owned(), true)],
        ]
    );
    let queries: Vec<String> = server.seen().into_iter().map(|seen| seen.query).collect();
    assert_eq!(
        queries,
        [
            "status=active&page_size=2",
            "status=active&page_size=2&next_page_token=t2",
            "status=inactive&page_size=2"
        ]
    );
}

#[tokio::test]
async fn tokens_are_asked_for_with_http_basic_and_a_refresh_replaces_both() {
    let server = serve(|_, _| {
        reply(200, json!({"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 3599, "token_type": "bearer"}))
    })
    .await;
    let zoom = platform(&server, 1, 5);
    let Actor::Representation { credentials, .. } = ada() else {
        unreachable!()
    };
    let renewed = zoom.refresh(&connection(), &credentials).await.unwrap();
    assert_eq!(
        renewed
            .get(credential::ACCESS_TOKEN)
            .unwrap()
            .expose_secret(),
        "new-access"
    );
    assert_eq!(
        renewed
            .get(credential::REFRESH_TOKEN)
            .unwrap()
            .expose_secret(),
        "new-refresh"
    );
    assert_eq!(
        renewed.expires_at(),
        Some(Timestamp::from_unix_millis(NOW_MILLIS + 3_599_000))
    );
    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/oauth/token");
    // base64("user:user-secret")
    assert_eq!(seen.authorization, "Basic dXNlcjp1c2VyLXNlY3JldA==");
    assert_eq!(
        seen.body,
        "grant_type=refresh_token&refresh_token=ada-refresh"
    );
}

#[tokio::test]
async fn a_refused_refresh_token_is_unauthorized() {
    let server = serve(|_, _| {
        reply(
            400,
            json!({"reason": "Invalid Token!", "error": "invalid_request"}),
        )
    })
    .await;
    let zoom = platform(&server, 3, 5);
    let Actor::Representation { credentials, .. } = ada() else {
        unreachable!()
    };
    let refused = zoom.refresh(&connection(), &credentials).await;
    assert!(
        matches!(refused, Err(PlatformError::Unauthorized(_))),
        "{refused:?}"
    );
}

fn delivery(secret: &str, seconds: i64, body: &str) -> WebhookRequest {
    let timestamp = seconds.to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-zm-request-timestamp",
        HeaderValue::from_str(&timestamp).unwrap(),
    );
    headers.insert(
        "x-zm-signature",
        HeaderValue::from_str(&sign(
            &SecretString::from(secret),
            &timestamp,
            body.as_bytes(),
        ))
        .unwrap(),
    );
    WebhookRequest {
        headers,
        query: None,
        body: body.as_bytes().to_vec(),
        held_subscriptions: Vec::new(),
    }
}

#[tokio::test]
async fn deliveries_are_verified_fresh_and_the_url_validation_is_answered() {
    let server = serve(|_, _| reply(404, Value::Null)).await;
    let zoom = platform(&server, 1, 5);
    let now = NOW_MILLIS / 1000;
    let event = r#"{"event":"team_chat.dm_message_posted","event_ts":1700000000000,"payload":{"operator_id":"U2","object":{"message_id":"M1","contact_id":"U1","message":"hi"}}}"#;
    assert_eq!(
        zoom.verify_webhook(&connection(), &delivery(WEBHOOK_SECRET, now, event)),
        Ok(WebhookVerdict::Events)
    );
    // The chatbot's deliveries are signed with its own secret token.
    assert_eq!(
        zoom.verify_webhook(
            &connection(),
            &delivery(
                CHATBOT_SECRET,
                now - 200,
                r#"{"event":"bot_notification","payload":{}}"#
            )
        ),
        Ok(WebhookVerdict::Events)
    );
    for (secret, seconds) in [
        (WEBHOOK_SECRET, now - 301),
        (WEBHOOK_SECRET, now + 301),
        ("another", now),
    ] {
        let refused = zoom.verify_webhook(&connection(), &delivery(secret, seconds, event));
        assert!(
            matches!(refused, Err(PlatformError::BadWebhook(_))),
            "{refused:?}"
        );
    }
    let mut unsigned = delivery(WEBHOOK_SECRET, now, event);
    unsigned.headers.remove("x-zm-signature");
    assert!(zoom.verify_webhook(&connection(), &unsigned).is_err());

    let challenge = r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let Ok(WebhookVerdict::Challenge(answer)) =
        zoom.verify_webhook(&connection(), &delivery(CHATBOT_SECRET, now, challenge))
    else {
        panic!("the URL validation is answered")
    };
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    assert_eq!(
        answer["encryptedToken"],
        switchboard_platform_zoom::encrypted_token(
            &SecretString::from(CHATBOT_SECRET),
            "qgg8vlvZRS6UYooatFL8Aw"
        )
    );
    assert!(server.seen().is_empty(), "verifying calls no one");
}

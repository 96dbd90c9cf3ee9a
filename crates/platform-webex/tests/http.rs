//! The module against a tiny local HTTP server playing Webex's part for each test: retries on
//! 429 with `Retry-After`, a DELETE's 204, `Link` paging of an import, guest identities issued
//! and issued again, a signed webhook delivery read with its owner's token, and a direct chat
//! named the same before and after Webex makes its room.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};
use switchboard_core::{
    Clock, Connection, ConnectionId, Email, ExternalChatId, ExternalTenantId, ExternalUserId,
    Platform, RichText, Timestamp,
};
use switchboard_platform::{
    Actor, ChatPlatform, ConnectionContext, Credentials, EventSubscription, ImportRequest,
    InboundKind, MessageRef, OutboundMessage, PlatformError, ProvisionRequest, Provisioning,
    RetryPolicy, WebhookRequest, WebhookVerdict,
};
use switchboard_platform_webex::{WebexPlatform, WebexSettings, credential, sign};
use switchboard_secrets::{ExposeSecret, SecretString};

const NOW_MILLIS: i64 = 1_700_000_000_000;

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
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves `answer(request, base)` for every request.
async fn serve(answer: impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1/", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let (log, root) = (Arc::clone(&seen), base.clone());
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let (log, answer, root) = (Arc::clone(&log), Arc::clone(&answer), root.clone());
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
                log.lock().unwrap().push(request.clone());
                let reply = answer(&request, &root);
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
    Server { base, seen }
}

fn platform(server: &Server, page_size: u32) -> WebexPlatform {
    let settings = WebexSettings {
        base_url: server.base.clone(),
        client_id: "integration".to_owned(),
        client_secret: SecretString::from("integration-secret"),
        service_app_client_id: Some("service-app".to_owned()),
        service_app_client_secret: Some(SecretString::from("service-app-secret")),
        request_timeout_secs: 5,
        page_size,
    };
    let retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(1),
        max_wait: Duration::from_secs(2),
    };
    WebexPlatform::with_retry_policy(settings, Arc::new(FixedClock), retry).unwrap()
}

fn connection(secrets: &[(&str, &str)]) -> ConnectionContext {
    let mut credentials = Credentials::default();
    credentials.insert(
        credential::ACCESS_TOKEN,
        SecretString::from("service-user-token"),
    );
    credentials.insert(credential::SERVICE_USER_ID, SecretString::from("S1"));
    credentials.insert(
        credential::SERVICE_APP_TOKEN,
        SecretString::from("service-app-token"),
    );
    for (name, value) in secrets {
        credentials.insert(*name, SecretString::from(*value));
    }
    ConnectionContext {
        connection: Connection {
            id: "00000000-0000-0000-0000-000000000001"
                .parse::<ConnectionId>()
                .unwrap(),
            platform: Platform::Webex,
            tenant: ExternalTenantId::new("ORG1"),
            display_name: "acme.example".to_owned(),
        },
        credentials,
    }
}

fn representation(account: &str, token: &str) -> Actor {
    let mut credentials = Credentials::default();
    credentials.insert(credential::ACCESS_TOKEN, SecretString::from(token));
    Actor::Representation {
        account: ExternalUserId::new(account),
        credentials,
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.replace("%2C", ","))
    })
}

#[tokio::test]
async fn a_throttled_post_waits_as_asked_and_a_delete_takes_its_204() {
    let posts = AtomicUsize::new(0);
    let server = serve(
        move |request, _| match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/v1/messages") if posts.fetch_add(1, Ordering::SeqCst) == 0 => Reply {
                status: 429,
                headers: vec![("retry-after", "1".to_owned())],
                body: json!({"message": "Too Many Requests", "trackingId": "T"}).to_string(),
            },
            ("POST", "/v1/messages") => ok(json!({"id": "M1", "roomId": "R1", "personId": "G1"})),
            ("DELETE", "/v1/messages/M1") => Reply {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            },
            _ => Reply {
                status: 404,
                headers: Vec::new(),
                body: json!({"message": "not found"}).to_string(),
            },
        },
    )
    .await;
    let webex = platform(&server, 100);
    let connection = connection(&[]);
    let actor = representation("G1", "guest-token");
    let message = OutboundMessage {
        body: RichText::plain("hi *there*"),
        thread: None,
        idempotency_key: None,
    };
    let started = Instant::now();
    let posted = webex
        .post_message(&connection, &actor, &ExternalChatId::new("R1"), &message)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not waited for"
    );
    assert_eq!(
        posted,
        MessageRef {
            chat: ExternalChatId::new("R1"),
            id: "M1".to_owned()
        }
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let body: Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(body["roomId"], "R1");
    assert_eq!(body["markdown"], "hi \\*there\\*");
    assert_eq!(body["text"], "hi *there*");
    assert_eq!(seen[1].authorization, "Bearer guest-token");

    webex
        .delete_message(&connection, &actor, &posted)
        .await
        .unwrap();
    let gone = MessageRef {
        chat: ExternalChatId::new("R1"),
        id: "M2".to_owned(),
    };
    assert!(matches!(
        webex.delete_message(&connection, &actor, &gone).await,
        Err(PlatformError::NotFound(_))
    ));
    let seen = server.seen();
    assert_eq!(seen[2].method, Method::DELETE);
    assert_eq!(seen[2].path, "/v1/messages/M1");
}

#[tokio::test]
async fn an_import_follows_absolute_link_headers_team_by_team() {
    let server = serve(|request, base| match request.path.as_str() {
        "/v1/team/memberships" => {
            let team = query_param(&request.query, "teamId").unwrap_or_default();
            let next_page = query_param(&request.query, "page").is_some();
            match (team.as_str(), next_page) {
                ("T1", false) => Reply {
                    status: 200,
                    headers: vec![(
                        "link",
                        format!("<{base}team/memberships?teamId=T1&max=2&page=2>; rel=\"next\""),
                    )],
                    body: json!({"items": [{"personId": "P1"}, {"personId": "P2"}, {"bogus": 1}]})
                        .to_string(),
                },
                ("T1", true) => ok(json!({"items": [{"personId": "P3"}, {"personId": "S1"}]})),
                // The service user is in every team it imports; it is listed once.
                ("T2", _) => ok(json!({"items": [{"personId": "P4"}, {"personId": "S1"}]})),
                _ => ok(json!({"items": []})),
            }
        }
        "/v1/people" => {
            let ids = query_param(&request.query, "id").unwrap_or_default();
            let people: Vec<Value> = ids
                .split(',')
                .map(|id| {
                    json!({
                        "id": id, "emails": [format!("{id}@acme.example")],
                        "displayName": format!("Person {id}"),
                        "type": if id == "P3" { "bot" } else { "person" },
                        "loginEnabled": id != "P4"
                    })
                })
                .collect();
            ok(json!({"items": people}))
        }
        _ => ok(json!({})),
    })
    .await;
    let webex = platform(&server, 2);
    let connection = connection(&[]);
    let teams = vec!["T1".to_owned(), "T2".to_owned()];
    let mut cursor = None;
    let mut pages = Vec::new();
    loop {
        let page = webex
            .import_users(
                &connection,
                &ImportRequest {
                    teams: teams.clone(),
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        pages.push(page.users);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages.len() < 5, "the import does not end");
    }
    let ids: Vec<Vec<&str>> = pages
        .iter()
        .map(|users| users.iter().map(|user| user.id.as_str()).collect())
        .collect();
    assert_eq!(ids, vec![vec!["P1", "P2"], vec!["P3", "S1"], vec!["P4"]]);
    let all: Vec<_> = pages.concat();
    let by_id = |id: &str| all.iter().find(|user| user.id.as_str() == id).unwrap();
    assert_eq!(by_id("P1").emails[0].as_str(), "p1@acme.example");
    assert!(by_id("P3").is_bot, "a bot account is listed as a bot");
    assert!(by_id("S1").is_bot, "the service user is never a person");
    assert!(by_id("P4").deactivated);
    assert!(!by_id("P1").is_bot && !by_id("P1").deactivated);
    let seen = server.seen();
    assert!(
        seen.iter()
            .all(|r| r.authorization == "Bearer service-user-token")
    );
    assert!(
        seen.iter().any(|r| r.query.contains("page=2")),
        "the Link was not followed"
    );
}

#[tokio::test]
async fn a_link_to_another_host_is_not_followed_with_the_token() {
    let server = serve(|request, _| match request.path.as_str() {
        "/v1/teams" => Reply {
            status: 200,
            headers: vec![(
                "link",
                "<https://elsewhere.example/v1/teams?page=2>; rel=\"next\"".to_owned(),
            )],
            body: json!({"items": [{"id": "T1", "name": "Sales"}]}).to_string(),
        },
        _ => ok(json!({})),
    })
    .await;
    let webex = platform(&server, 100);
    assert!(matches!(
        webex.list_teams(&connection(&[])).await,
        Err(PlatformError::Rejected(why)) if why.contains("elsewhere.example")
    ));
}

fn guest_server() -> impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static {
    let issued = AtomicUsize::new(0);
    move |request, _| match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/v1/guests/token") => {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            ok(json!({"accessToken": format!("guest-token-{n}"), "expiresIn": 64799}))
        }
        ("GET", "/v1/people/me") => ok(json!({"id": "G1", "displayName": "Ann (guest)"})),
        ("POST", "/v1/webhooks") => ok(json!({"id": "WH1", "name": "switchboard"})),
        ("GET", "/v1/webhooks/WH1") => ok(json!({"id": "WH1", "name": "switchboard"})),
        ("DELETE", "/v1/webhooks/WH1") => Reply {
            status: 204,
            headers: Vec::new(),
            body: String::new(),
        },
        ("GET", "/v1/messages/M9") => ok(json!({
            "id": "M9", "roomId": "R1", "roomType": "direct", "personId": "P1",
            "text": "hello Ann", "markdown": "hello **Ann**",
            "created": "2023-11-14T22:13:20.000Z"
        })),
        _ => Reply {
            status: 404,
            headers: Vec::new(),
            body: "{}".to_owned(),
        },
    }
}

fn ann() -> ProvisionRequest {
    ProvisionRequest {
        display_name: "Ann".to_owned(),
        email: Email::parse("ann@acme.example").unwrap(),
        avatar_url: None,
        existing_account: None,
        primary_platform: None,
    }
}

#[tokio::test]
async fn a_guest_identity_is_issued_then_issued_again_for_the_same_subject_before_it_expires() {
    let server = serve(guest_server()).await;
    let webex = platform(&server, 100);
    let connection = connection(&[]);
    let Provisioning::Ready {
        account,
        credentials,
    } = webex
        .provision_representation(&connection, &ann())
        .await
        .unwrap()
    else {
        panic!("a guest identity needs no consent");
    };
    assert_eq!(account.as_str(), "G1");
    let expires = Timestamp::from_unix_millis(NOW_MILLIS + 64_799_000);
    assert_eq!(credentials.expires_at(), Some(expires));
    assert_eq!(
        credentials
            .get(credential::ACCESS_TOKEN)
            .unwrap()
            .expose_secret(),
        "guest-token-1"
    );
    let secrets = webex.webhook_secrets_of(&credentials);
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].0, "webhook_secret:G1");

    let renewed = webex.refresh(&connection, &credentials).await.unwrap();
    assert_eq!(
        renewed
            .get(credential::ACCESS_TOKEN)
            .unwrap()
            .expose_secret(),
        "guest-token-2"
    );
    assert_eq!(renewed.expires_at(), Some(expires));
    assert_eq!(
        renewed
            .get(credential::WEBHOOK_SECRET)
            .unwrap()
            .expose_secret(),
        credentials
            .get(credential::WEBHOOK_SECRET)
            .unwrap()
            .expose_secret(),
        "the webhook's secret outlives the token"
    );
    let issues: Vec<Value> = server
        .seen()
        .iter()
        .filter(|r| r.path == "/v1/guests/token")
        .map(|r| {
            assert_eq!(r.authorization, "Bearer service-app-token");
            serde_json::from_str(&r.body).unwrap()
        })
        .collect();
    assert_eq!(issues.len(), 2);
    for issue in &issues {
        assert_eq!(issue["subject"], "ann@acme.example");
        assert_eq!(issue["displayName"], "Ann");
    }

    let mut with_account = ann();
    with_account.existing_account = Some(ExternalUserId::new("P7"));
    assert!(matches!(
        webex.provision_representation(&connection, &with_account).await,
        Err(PlatformError::Rejected(why)) if why.contains("prompt")
    ));
    let mut no_service_app = connection.clone();
    no_service_app.credentials = Credentials::default();
    assert!(matches!(
        webex.provision_representation(&no_service_app, &ann()).await,
        Err(PlatformError::Rejected(why)) if why.contains("Service App")
    ));
}

fn delivery(request_body: &str, signature: &str) -> WebhookRequest {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-spark-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    WebhookRequest {
        headers,
        query: None,
        body: request_body.as_bytes().to_vec(),
        held_subscriptions: Vec::new(),
    }
}

#[tokio::test]
async fn a_signed_delivery_is_verified_split_announced_and_read_with_its_owners_token() {
    let server = serve(guest_server()).await;
    let webex = platform(&server, 100);
    let plain = connection(&[]);
    let Provisioning::Ready {
        account,
        credentials,
    } = webex
        .provision_representation(&plain, &ann())
        .await
        .unwrap()
    else {
        panic!("a guest identity needs no consent");
    };
    let secret = credentials.get(credential::WEBHOOK_SECRET).unwrap().clone();
    let body = json!({
        "id": "wh1", "name": "switchboard", "resource": "messages", "event": "created",
        "createdBy": "G1", "ownedBy": "creator",
        "data": {"id": "M9", "roomId": "R1", "roomType": "direct", "personId": "P1"}
    })
    .to_string();
    let request = delivery(&body, &sign(&secret, body.as_bytes()));
    let name = webex.webhook_secret_name(&request).unwrap();
    assert_eq!(name, "webhook_secret:G1");
    // What the hub does: the named secret joins the connection's credentials.
    let connection = connection(&[(name.as_str(), secret.expose_secret())]);
    assert_eq!(
        webex.verify_webhook(&connection, &request).unwrap(),
        WebhookVerdict::Events
    );
    let tampered = delivery(&body.replace("M9", "M8"), &sign(&secret, body.as_bytes()));
    assert!(matches!(
        webex.verify_webhook(&connection, &tampered),
        Err(PlatformError::BadWebhook(_))
    ));
    let forged = delivery(&body, &sign(&SecretString::from("guess"), body.as_bytes()));
    assert!(webex.verify_webhook(&connection, &forged).is_err());
    assert!(
        webex.verify_webhook(&plain, &request).is_err(),
        "no secret kept for this owner"
    );

    let envelopes = webex.split_webhook(&request).unwrap();
    assert_eq!(envelopes.len(), 1);
    assert_eq!(envelopes[0].event_id, "created M9");
    let announced = webex.announced_post(&envelopes[0]).unwrap();
    assert_eq!(announced.message.id, "M9");
    assert_eq!(announced.author.unwrap().as_str(), "P1");

    // Read by a module that never saw the guest (the hub restarted): the hub hands the
    // representation the event is addressed to, with its token.
    assert_eq!(webex.event_addressee(&envelopes[0]), Some(account.clone()));
    let owner = Actor::Representation {
        account,
        credentials,
    };
    let restarted = platform(&server, 100);
    let event = restarted
        .read_event(&connection, &envelopes[0], Some(&owner))
        .await
        .unwrap()
        .unwrap();
    let InboundKind::MessagePosted {
        sender,
        recipient,
        body,
        sent_at_micros,
        ..
    } = event.kind
    else {
        panic!("not a post: {:?}", event.kind);
    };
    assert_eq!(sender.as_str(), "P1");
    assert_eq!(recipient.unwrap().as_str(), "G1");
    assert_eq!(body.to_plain_text(), "hello Ann");
    assert_eq!(sent_at_micros, Some(1_700_000_000_000_000));
    let fetch = server
        .seen()
        .into_iter()
        .find(|r| r.path == "/v1/messages/M9")
        .unwrap();
    assert_eq!(fetch.authorization, "Bearer guest-token-1");

    let stranger = json!({
        "id": "wh2", "resource": "messages", "event": "created", "createdBy": "G2",
        "data": {"id": "M9", "roomId": "R1"}
    })
    .to_string();
    let envelopes = webex.split_webhook(&delivery(&stranger, "00")).unwrap();
    assert_eq!(
        webex.event_addressee(&envelopes[0]),
        Some(ExternalUserId::new("G2"))
    );
    // The hub holds no representation of G2: no one it acts as can read it, now or later.
    let unaddressed = webex.read_event(&connection, &envelopes[0], None).await;
    assert!(
        matches!(&unaddressed, Err(PlatformError::Rejected(why)) if why.contains("G2")),
        "{unaddressed:?}"
    );
    assert!(matches!(
        webex.read_event(&connection, &envelopes[0], Some(&owner)).await,
        Err(PlatformError::Rejected(why)) if why.contains("G2")
    ));
    let deleted = json!({
        "id": "wh1", "resource": "messages", "event": "deleted", "createdBy": "G1",
        "data": {"id": "M9", "roomId": "R1"}
    })
    .to_string();
    let envelopes = webex.split_webhook(&delivery(&deleted, "00")).unwrap();
    assert!(webex.announced_post(&envelopes[0]).is_none());
    // A deletion names its owner too (a direct room not met before is named from its members,
    // read with the owner's token), but one in a group room reads from the delivery alone.
    assert_eq!(
        webex.event_addressee(&envelopes[0]),
        Some(ExternalUserId::new("G1"))
    );
    assert!(matches!(
        webex.read_event(&connection, &envelopes[0], None).await.unwrap().unwrap().kind,
        InboundKind::MessageDeleted { message } if message.id == "M9"
    ));
    let rooms = json!({"id": "wh3", "resource": "rooms", "event": "created", "createdBy": "G1", "data": {}}).to_string();
    assert!(
        webex
            .split_webhook(&delivery(&rooms, "00"))
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn each_watched_representation_gets_its_own_signed_webhook_and_loses_it_when_unwatched() {
    let server = serve(guest_server()).await;
    let connection = connection(&[]);
    let Provisioning::Ready {
        account,
        credentials,
    } = platform(&server, 100)
        .provision_representation(&connection, &ann())
        .await
        .unwrap()
    else {
        panic!("a guest identity needs no consent");
    };
    // A module that never saw the guest (the hub restarted): the hub hands each watched
    // representation with its credentials.
    let webex = platform(&server, 100);
    let now = Timestamp::from_unix_millis(NOW_MILLIS);
    let events_url = "https://hub.example/webhooks/webex";
    let watched = [
        Actor::Representation {
            account,
            credentials: credentials.clone(),
        },
        Actor::Representation {
            account: ExternalUserId::new("G2"),
            credentials: Credentials::default(),
        },
    ];
    let held = webex
        .maintain_subscriptions(&connection, events_url, &watched, &[], &[], now)
        .await
        .unwrap();
    assert_eq!(
        held.len(),
        1,
        "G2 has no token to create a webhook with: none yet"
    );
    assert_eq!(held[0].id, "WH1");
    assert_eq!(held[0].resource, "people/G1");
    assert!(held[0].expires_at > now);
    let created = server
        .seen()
        .into_iter()
        .find(|r| r.method == Method::POST && r.path == "/v1/webhooks")
        .unwrap();
    assert_eq!(created.authorization, "Bearer guest-token-1");
    let body: Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(body["targetUrl"], events_url);
    assert_eq!(body["resource"], "messages");
    assert_eq!(body["event"], "all");
    assert_eq!(
        body["secret"],
        credentials
            .get(credential::WEBHOOK_SECRET)
            .unwrap()
            .expose_secret()
    );

    let again = webex
        .maintain_subscriptions(&connection, events_url, &watched, &[], &held, now)
        .await
        .unwrap();
    assert_eq!(again, held, "a held webhook is kept, not made twice");
    // Webex's webhooks do not expire: one near the end of the lifetime the hub was told is
    // looked up, kept for another lifetime while Webex has it, and made anew once it is gone.
    let ageing = |id: &str| {
        vec![EventSubscription {
            id: id.to_owned(),
            expires_at: Timestamp::from_unix_millis(NOW_MILLIS + 60_000),
            ..held[0].clone()
        }]
    };
    let renewed = webex
        .maintain_subscriptions(&connection, events_url, &watched, &[], &ageing("WH1"), now)
        .await
        .unwrap();
    assert_eq!(
        renewed, held,
        "a webhook still there is kept for another lifetime"
    );
    let remade = webex
        .maintain_subscriptions(&connection, events_url, &watched, &[], &ageing("WH9"), now)
        .await
        .unwrap();
    assert_eq!(remade, held, "a webhook Webex no longer has is made anew");
    let looked_up: Vec<String> = server
        .seen()
        .into_iter()
        .filter(|r| r.method == Method::GET && r.path.starts_with("/v1/webhooks/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(looked_up, ["/v1/webhooks/WH1", "/v1/webhooks/WH9"]);
    let unwatched: Vec<EventSubscription> = webex
        .maintain_subscriptions(&connection, events_url, &[], &[], &held, now)
        .await
        .unwrap();
    assert!(unwatched.is_empty());
    let seen = server.seen();
    assert_eq!(seen.iter().filter(|r| r.path == "/v1/webhooks").count(), 2);
    assert!(
        seen.iter()
            .any(|r| r.method == Method::DELETE && r.path == "/v1/webhooks/WH1")
    );
}

fn form(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

fn oauth_server() -> impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static {
    |request, _| match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/v1/access_token") => {
            let grant = form(&request.body, "grant_type").unwrap_or_default();
            let client = form(&request.body, "client_id").unwrap_or_default();
            match (grant.as_str(), client.as_str()) {
                ("refresh_token", "service-app") => ok(json!({
                    "access_token": "sa-access", "expires_in": 1_209_600,
                    "refresh_token": "sa-refresh-2", "refresh_token_expires_in": 7_776_000
                })),
                ("authorization_code", "integration") => {
                    let code = form(&request.body, "code").unwrap_or_default();
                    ok(json!({
                        "access_token": format!("{code}-access"), "expires_in": 1_209_600,
                        "refresh_token": format!("{code}-refresh"), "refresh_token_expires_in": 7_776_000
                    }))
                }
                ("refresh_token", "integration") => {
                    ok(json!({"access_token": "renewed-access", "expires_in": 1_209_600}))
                }
                _ => Reply {
                    status: 400,
                    headers: Vec::new(),
                    body: json!({"message": "invalid_grant"}).to_string(),
                },
            }
        }
        ("GET", "/v1/people/me") => match request.authorization.as_str() {
            "Bearer service-access" => ok(json!({
                "id": "S1", "orgId": "ORG1", "emails": ["switchboard@acme.example"],
                "displayName": "Switchboard"
            })),
            _ => ok(json!({"id": "P5", "orgId": "ORG1", "emails": ["eve@acme.example"]})),
        },
        _ => Reply {
            status: 404,
            headers: Vec::new(),
            body: "{}".to_owned(),
        },
    }
}

fn flow() -> switchboard_platform::FlowContext {
    switchboard_platform::FlowContext {
        callback_url: "https://hub.example/connect/callback".to_owned(),
        state: "st4te".to_owned(),
    }
}

fn callback(code: &str) -> Vec<(String, String)> {
    vec![
        ("code".to_owned(), code.to_owned()),
        ("state".to_owned(), "st4te".to_owned()),
    ]
}

#[tokio::test]
async fn connecting_signs_in_the_service_user_and_keeps_the_service_apps_token() {
    use switchboard_platform::{FlowOutcome, FlowStep};
    let server = serve(oauth_server()).await;
    let webex = platform(&server, 100);
    let mut inputs = Credentials::default();
    inputs.insert(
        credential::SERVICE_APP_REFRESH_TOKEN,
        SecretString::from("sa-refresh"),
    );
    let FlowStep::Redirect { url, state } = webex.begin_connect(&inputs, &flow()).await.unwrap()
    else {
        panic!("connecting needs the admin's sign-in");
    };
    assert!(
        url.starts_with(&format!("{}authorize?", server.base)),
        "{url}"
    );
    for part in [
        "client_id=integration",
        "response_type=code",
        "state=st4te",
        "redirect_uri=https%3A%2F%2Fhub.example%2Fconnect%2Fcallback",
        "spark%3Amessages_write",
        "spark%3Ateam_memberships_read",
    ] {
        assert!(url.contains(part), "{part} missing from {url}");
    }
    let FlowStep::Done(FlowOutcome::Connected {
        tenant,
        display_name,
        credentials,
    }) = webex
        .continue_flow(None, &state, &flow(), &callback("service"))
        .await
        .unwrap()
    else {
        panic!("the service user's sign-in ends the connection");
    };
    assert_eq!(tenant.as_str(), "ORG1");
    assert_eq!(display_name, "acme.example");
    let text =
        |credentials: &Credentials, name| credentials.get(name).unwrap().expose_secret().to_owned();
    assert_eq!(
        text(&credentials, credential::ACCESS_TOKEN),
        "service-access"
    );
    assert_eq!(
        text(&credentials, credential::REFRESH_TOKEN),
        "service-refresh"
    );
    assert_eq!(text(&credentials, credential::SERVICE_USER_ID), "S1");
    assert_eq!(
        text(&credentials, credential::SERVICE_APP_TOKEN),
        "sa-access"
    );
    assert_eq!(
        text(&credentials, credential::SERVICE_APP_REFRESH_TOKEN),
        "sa-refresh-2"
    );
    let fourteen_days = Timestamp::from_unix_millis(NOW_MILLIS + 1_209_600_000);
    assert_eq!(credentials.expires_at(), Some(fourteen_days));
    let redeemed = server
        .seen()
        .into_iter()
        .find(|r| form(&r.body, "grant_type").as_deref() == Some("authorization_code"))
        .unwrap();
    assert_eq!(
        form(&redeemed.body, "client_secret").as_deref(),
        Some("integration-secret")
    );
    assert_eq!(
        form(&redeemed.body, "redirect_uri").as_deref(),
        Some("https%3A%2F%2Fhub.example%2Fconnect%2Fcallback")
    );

    // Refreshing renews both tokens and keeps what Webex did not reissue.
    let connection = connection(&[]);
    let renewed = webex.refresh(&connection, &credentials).await.unwrap();
    assert_eq!(text(&renewed, credential::ACCESS_TOKEN), "renewed-access");
    assert_eq!(text(&renewed, credential::REFRESH_TOKEN), "service-refresh");
    assert_eq!(text(&renewed, credential::SERVICE_USER_ID), "S1");
    assert_eq!(text(&renewed, credential::SERVICE_APP_TOKEN), "sa-access");

    // A refresh token Webex refuses needs someone to authorise again.
    let mut revoked = Credentials::default();
    revoked.insert(credential::REFRESH_TOKEN, SecretString::from("revoked"));
    revoked.insert(
        credential::SERVICE_APP_REFRESH_TOKEN,
        SecretString::from("x"),
    );
    let server_refusing = serve(|_, _| Reply {
        status: 400,
        headers: Vec::new(),
        body: json!({"message": "invalid_grant"}).to_string(),
    })
    .await;
    assert!(matches!(
        platform(&server_refusing, 100)
            .refresh(&connection, &revoked)
            .await,
        Err(PlatformError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn a_person_links_only_their_own_account() {
    use switchboard_platform::{FlowOutcome, FlowState, FlowStep};
    let server = serve(oauth_server()).await;
    let webex = platform(&server, 100);
    let connection = connection(&[]);
    let FlowStep::Redirect { state, .. } = webex
        .begin_authorize(&connection, &ExternalUserId::new("P5"), &flow())
        .await
        .unwrap()
    else {
        panic!("linking needs the person's sign-in");
    };
    let FlowStep::Done(FlowOutcome::Authorized {
        account,
        credentials,
    }) = webex
        .continue_flow(Some(&connection), &state, &flow(), &callback("person"))
        .await
        .unwrap()
    else {
        panic!("the person's sign-in authorises their account");
    };
    assert_eq!(account.as_str(), "P5");
    assert_eq!(
        credentials
            .get(credential::PERSON_ID)
            .unwrap()
            .expose_secret(),
        "P5"
    );
    assert_eq!(
        webex.webhook_secrets_of(&credentials)[0].0,
        "webhook_secret:P5"
    );

    let FlowStep::Redirect { state, .. } = webex
        .begin_authorize(&connection, &ExternalUserId::new("P6"), &flow())
        .await
        .unwrap()
    else {
        panic!("linking needs the person's sign-in");
    };
    assert!(matches!(
        webex.continue_flow(Some(&connection), &state, &flow(), &callback("person")).await,
        Err(PlatformError::Rejected(why)) if why.contains("eve@acme.example")
    ));
    let declined = vec![
        ("error".to_owned(), "access_denied".to_owned()),
        ("state".to_owned(), "st4te".to_owned()),
    ];
    assert!(matches!(
        webex.continue_flow(Some(&connection), &state, &flow(), &declined).await,
        Err(PlatformError::Rejected(why)) if why.contains("declined")
    ));
    // A callback of another sign-in is refused before its code is redeemed.
    let redeemed = server.seen().len();
    let foreign = vec![
        ("code".to_owned(), "person".to_owned()),
        ("state".to_owned(), "another-flow".to_owned()),
    ];
    assert!(matches!(
        webex.continue_flow(Some(&connection), &state, &flow(), &foreign).await,
        Err(PlatformError::Rejected(why)) if why.contains("state")
    ));
    assert_eq!(
        server.seen().len(),
        redeemed,
        "no code of another flow is redeemed"
    );
    assert!(
        webex
            .continue_flow(None, &FlowState("{}".to_owned()), &flow(), &callback("x"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rooms_are_opened_replies_go_to_the_thread_root_and_history_is_read_back_in_order() {
    let server = serve(|request, base| {
        let q = |name| query_param(&request.query, name);
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/v1/rooms") => ok(json!({"id": "G9", "title": "Group chat"})),
            ("POST", "/v1/memberships") => ok(json!({"id": "MS"})),
            ("GET", "/v1/messages/M2") => ok(json!({"id": "M2", "roomId": "D3", "parentId": "M1"})),
            ("POST", "/v1/messages") => ok(json!({"id": "M3", "roomId": "R7"})),
            ("GET", "/v1/messages") if q("before").is_none() && !request.query.contains("page=2") => Reply {
                status: 200,
                headers: vec![("link", format!("<{base}messages?roomId=R1&max=100&page=2>; rel=\"next\""))],
                body: json!({"items": [
                    {"id": "M6", "roomId": "R1", "roomType": "group", "personId": "G1", "markdown": "hello", "created": "2023-11-14T22:13:26.000Z"},
                    {"id": "M5", "roomId": "R1", "roomType": "group", "personId": "P2", "text": "hi", "created": "2023-11-14T22:13:25.000Z"}
                ]})
                .to_string(),
            },
            ("GET", "/v1/messages") => ok(json!({"items": [
                {"id": "M4", "roomId": "R1", "roomType": "group", "personId": "G1", "markdown": "hello", "parentId": "M1", "created": "2023-11-14T22:13:24.000Z"},
                {"id": "M1", "roomId": "R1", "roomType": "group", "personId": "G1", "markdown": "hello", "created": "2023-11-14T22:13:20.000Z"}
            ]})),
            _ => Reply {
                status: 404,
                headers: Vec::new(),
                body: "{}".to_owned(),
            },
        }
    })
    .await;
    let webex = platform(&server, 100);
    let connection = connection(&[]);
    let actor = representation("G1", "guest-token");
    let open = |members: &[&str]| {
        let members: Vec<ExternalUserId> =
            members.iter().map(|m| ExternalUserId::new(*m)).collect();
        let (webex, connection, actor) = (&webex, &connection, &actor);
        async move { webex.open_chat(connection, actor, &members).await }
    };
    assert_eq!(open(&["G1", "P2"]).await.unwrap().as_str(), "direct:G1:P2");
    assert_eq!(open(&["P3"]).await.unwrap().as_str(), "direct:G1:P3");
    assert!(server.seen().is_empty(), "a direct chat is named, not made");
    assert_eq!(open(&["P2", "P3"]).await.unwrap().as_str(), "G9");
    assert!(open(&["G1"]).await.is_err());
    let added: Vec<Value> = server
        .seen()
        .iter()
        .filter(|r| r.path == "/v1/memberships")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(
        added,
        vec![
            json!({"roomId": "G9", "personId": "P2"}),
            json!({"roomId": "G9", "personId": "P3"})
        ]
    );

    let reply = OutboundMessage {
        body: RichText::plain("hello"),
        thread: Some(MessageRef {
            chat: ExternalChatId::new("direct:G1:P3"),
            id: "M2".to_owned(),
        }),
        idempotency_key: None,
    };
    let posted = webex
        .post_message(
            &connection,
            &actor,
            &ExternalChatId::new("direct:G1:P3"),
            &reply,
        )
        .await
        .unwrap();
    assert_eq!(
        posted.chat.as_str(),
        "direct:G1:P3",
        "the copy is in the chat it was posted to, whatever room Webex answers"
    );
    let sent: Value = serde_json::from_str(
        &server
            .seen()
            .iter()
            .rfind(|r| r.method == Method::POST && r.path == "/v1/messages")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        sent["parentId"], "M1",
        "a reply to a reply goes to the thread's root"
    );
    assert_eq!(sent["roomId"], "D3", "a reply goes to its parent's room");
    assert!(sent.get("toPersonId").is_none());

    let chat = ExternalChatId::new("R1");
    let since = webex
        .messages_since(&connection, &actor, &chat, 1_700_000_002_000_000)
        .await
        .unwrap();
    let ids: Vec<&str> = since
        .iter()
        .map(|event| match &event.kind {
            InboundKind::MessagePosted { message, .. } => message.id.as_str(),
            other => panic!("not a post: {other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        ["M4", "M5", "M6"],
        "oldest first, and nothing from before"
    );
    let InboundKind::MessagePosted {
        thread, recipient, ..
    } = &since[0].kind
    else {
        unreachable!()
    };
    assert_eq!(thread.as_ref().unwrap().id, "M1");
    assert_eq!(recipient.as_ref().unwrap().as_str(), "G1");

    let copy = OutboundMessage {
        body: RichText::plain("hello"),
        thread: None,
        idempotency_key: Some("k".to_owned()),
    };
    let found = webex
        .find_posted(
            &connection,
            &actor,
            &chat,
            &copy,
            Timestamp::from_unix_millis(1_700_000_003_000),
        )
        .await
        .unwrap();
    let found: Vec<&str> = found.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        found,
        ["M4", "M6"],
        "the author's messages with that text since then"
    );
}

/// A Webex where G1 and P2's direct room D1 exists only once G1 posted to P2.
fn direct_room_server() -> impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static {
    let made = Arc::new(Mutex::new(false));
    move |request, _| {
        let q = |name| query_param(&request.query, name);
        let message = |id: &str, author: &str| {
            json!({"id": id, "roomId": "D1", "roomType": "direct", "personId": author,
                   "text": format!("{id} from {author}"), "created": "2023-11-14T22:13:25.000Z"})
        };
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/v1/messages/direct") if q("personId").as_deref() == Some("P2") => {
                let made = *made.lock().unwrap();
                ok(
                    json!({"items": if made { vec![message("M2", "P2"), message("M1", "G1")] } else { Vec::new() }}),
                )
            }
            ("POST", "/v1/messages") => {
                *made.lock().unwrap() = true;
                ok(message("M1", "G1"))
            }
            ("GET", "/v1/messages/M1") => ok(message("M1", "G1")),
            ("GET", "/v1/messages/M2") => ok(message("M2", "P2")),
            ("PUT", "/v1/messages/M1") => ok(message("M1", "G1")),
            ("DELETE", "/v1/messages/M1") => Reply {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            },
            ("GET", "/v1/memberships") if q("roomId").as_deref() == Some("D1") => {
                ok(json!({"items": [{"personId": "G1"}, {"personId": "P2"}]}))
            }
            _ => Reply {
                status: 404,
                headers: Vec::new(),
                body: "{}".to_owned(),
            },
        }
    }
}

/// The delivery G1's webhook makes of `event` on message `message` by `author` in room D1.
fn direct_delivery(
    webex: &WebexPlatform,
    event: &str,
    message: &str,
    author: &str,
) -> switchboard_platform::EventEnvelope {
    let body = json!({
        "id": "wh1", "resource": "messages", "event": event, "createdBy": "G1",
        "data": {"id": message, "roomId": "D1", "roomType": "direct", "personId": author}
    })
    .to_string();
    webex
        .split_webhook(&delivery(&body, "00"))
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn a_direct_chat_keeps_its_name_before_and_after_its_room_exists() {
    let server = serve(direct_room_server()).await;
    let webex = platform(&server, 100);
    let connection = connection(&[]);
    let actor = representation("G1", "guest-token");
    let chat = webex
        .open_chat(&connection, &actor, &[ExternalUserId::new("P2")])
        .await
        .unwrap();
    assert_eq!(chat.as_str(), "direct:G1:P2");
    let members = webex
        .chat_members(&connection, &actor, &chat)
        .await
        .unwrap();
    assert_eq!(
        members,
        [ExternalUserId::new("G1"), ExternalUserId::new("P2")]
    );
    assert!(
        server.seen().is_empty(),
        "named and its members told without a call"
    );
    let nothing_yet = webex
        .messages_since(&connection, &actor, &chat, 0)
        .await
        .unwrap();
    assert!(
        nothing_yet.is_empty(),
        "no room yet: nothing written, no error"
    );
    // This Webex answers 404 for any other 1:1 listing, and for any other room.
    let unanswered = webex
        .messages_since(&connection, &actor, &ExternalChatId::new("direct:G1:P5"), 0)
        .await;
    assert!(
        unanswered.unwrap().is_empty(),
        "a 1:1 not found has no messages"
    );
    let gone = webex
        .messages_since(&connection, &actor, &ExternalChatId::new("R9"), 0)
        .await;
    assert!(matches!(gone, Err(PlatformError::NotFound(_))), "{gone:?}");

    let posted = webex
        .post_message(
            &connection,
            &actor,
            &chat,
            &OutboundMessage {
                body: RichText::plain("hello"),
                thread: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        posted,
        MessageRef {
            chat: chat.clone(),
            id: "M1".to_owned()
        }
    );
    let sent = server
        .seen()
        .into_iter()
        .rfind(|r| r.method == Method::POST)
        .unwrap();
    let sent: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        sent["toPersonId"], "P2",
        "posted to the member who is not the actor"
    );
    assert!(sent.get("roomId").is_none());
    assert_eq!(
        webex
            .open_chat(&connection, &actor, &[ExternalUserId::new("P2")])
            .await
            .unwrap(),
        chat,
        "the same name once the room exists"
    );

    // The person's answer, and the hub's own post coming back, name the room D1.
    let answer = direct_delivery(&webex, "created", "M2", "P2");
    assert_eq!(webex.announced_post(&answer).unwrap().message.chat, chat);
    let read = webex
        .read_event(&connection, &answer, Some(&actor))
        .await
        .unwrap()
        .unwrap();
    let InboundKind::MessagePosted {
        message,
        chat_kind,
        sender,
        ..
    } = read.kind
    else {
        panic!("not a post: {:?}", read.kind);
    };
    assert_eq!(
        message,
        MessageRef {
            chat: chat.clone(),
            id: "M2".to_owned()
        }
    );
    assert_eq!(chat_kind, switchboard_platform::ChatKind::Direct);
    assert_eq!(sender.as_str(), "P2");
    let own = direct_delivery(&webex, "created", "M1", "G1");
    assert_eq!(webex.announced_post(&own).unwrap().message, posted);
    assert!(
        !server.seen().iter().any(|r| r.path == "/v1/memberships"),
        "the sender and the webhook's owner are the two members"
    );

    let history = webex
        .messages_since(&connection, &actor, &chat, 0)
        .await
        .unwrap();
    let read: Vec<MessageRef> = history
        .into_iter()
        .map(|event| match event.kind {
            InboundKind::MessagePosted { message, .. } => message,
            other => panic!("not a post: {other:?}"),
        })
        .collect();
    assert_eq!(
        read,
        [
            posted.clone(),
            MessageRef {
                chat: chat.clone(),
                id: "M2".to_owned()
            }
        ]
    );
    let listed = server
        .seen()
        .into_iter()
        .rfind(|r| r.path == "/v1/messages/direct")
        .unwrap();
    assert_eq!(
        query_param(&listed.query, "personId").as_deref(),
        Some("P2")
    );

    // Webex edits a message in its room: the room is read from the message, never the name.
    let replacement = OutboundMessage {
        body: RichText::plain("fixed"),
        thread: None,
        idempotency_key: None,
    };
    webex
        .edit_message(&connection, &actor, &posted, &replacement)
        .await
        .unwrap();
    let put = server
        .seen()
        .into_iter()
        .find(|r| r.method == Method::PUT)
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&put.body).unwrap()["roomId"],
        "D1"
    );
    webex
        .delete_message(&connection, &actor, &posted)
        .await
        .unwrap();
    assert!(
        server
            .seen()
            .iter()
            .any(|r| r.method == Method::DELETE && r.path == "/v1/messages/M1")
    );
    let deleted = direct_delivery(&webex, "deleted", "M1", "G1");
    assert!(matches!(
        webex.read_event(&connection, &deleted, Some(&actor)).await.unwrap().unwrap().kind,
        InboundKind::MessageDeleted { message } if message == posted
    ));

    let stranger = webex
        .post_message(
            &connection,
            &representation("G7", "other-token"),
            &chat,
            &replacement,
        )
        .await;
    assert!(
        matches!(stranger, Err(PlatformError::Rejected(_))),
        "{stranger:?}"
    );
}

#[tokio::test]
async fn after_a_restart_a_direct_room_is_named_from_its_members() {
    let server = serve(direct_room_server()).await;
    let webex = platform(&server, 100);
    let connection = connection(&[]);
    // The hub hands G1's credentials with the event, as its addressee.
    let actor = representation("G1", "guest-token");
    let own = direct_delivery(&webex, "created", "M1", "G1");
    assert!(
        webex.announced_post(&own).is_none(),
        "G1's own post names neither member besides G1: it is read, not announced"
    );
    let read = webex
        .read_event(&connection, &own, Some(&actor))
        .await
        .unwrap()
        .unwrap();
    let InboundKind::MessagePosted { message, .. } = read.kind else {
        panic!("not a post: {:?}", read.kind);
    };
    assert_eq!(message.chat.as_str(), "direct:G1:P2");
    let members = server
        .seen()
        .into_iter()
        .find(|r| r.path == "/v1/memberships")
        .unwrap();
    assert_eq!(query_param(&members.query, "roomId").as_deref(), Some("D1"));
    assert_eq!(
        webex.announced_post(&own).unwrap().message.chat.as_str(),
        "direct:G1:P2",
        "the room is remembered once read"
    );
}

#[tokio::test]
async fn edits_prompts_look_ups_members_health_and_removal_speak_webexs_wire() {
    let server = serve(
        |request, base| match (request.method.as_str(), request.path.as_str()) {
            ("PUT", "/v1/messages/M1") => ok(json!({"id": "M1", "roomId": "R1"})),
            ("POST", "/v1/messages") => ok(json!({"id": "M2", "roomId": "D1"})),
            ("GET", "/v1/people") => ok(json!({"items": [
                {"id": "P8", "emails": ["zoe@acme.example"], "displayName": "Zoe"}
            ]})),
            ("GET", "/v1/people/me") => ok(json!({
                "id": "S1", "emails": ["switchboard@acme.example"], "displayName": "Switchboard"
            })),
            ("GET", "/v1/memberships") if !request.query.contains("page=2") => Reply {
                status: 200,
                headers: vec![(
                    "link",
                    format!("<{base}memberships?roomId=R1&page=2>; rel=\"next\""),
                )],
                body: json!({"items": [{"personId": "G1"}, {"personId": "P2"}]}).to_string(),
            },
            ("GET", "/v1/memberships") => ok(json!({"items": [{"personId": "P3"}, {}]})),
            ("GET", "/v1/webhooks") => ok(json!({"items": [
                {"id": "WH1", "name": "switchboard"}, {"id": "WH2", "name": "someone else's"}
            ]})),
            ("DELETE", "/v1/webhooks/WH1") => Reply {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            },
            _ => Reply {
                status: 404,
                headers: Vec::new(),
                body: "{}".to_owned(),
            },
        },
    )
    .await;
    let webex = platform(&server, 100);
    let connection = connection(&[]);
    let actor = representation("G1", "guest-token");
    let edited = OutboundMessage {
        body: RichText::plain("fixed"),
        thread: None,
        idempotency_key: None,
    };
    let message = MessageRef {
        chat: ExternalChatId::new("R1"),
        id: "M1".to_owned(),
    };
    webex
        .edit_message(&connection, &actor, &message, &edited)
        .await
        .unwrap();
    let put = server
        .seen()
        .into_iter()
        .find(|r| r.method == Method::PUT)
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&put.body).unwrap(),
        json!({"roomId": "R1", "markdown": "fixed", "text": "fixed"})
    );
    assert!(matches!(
        webex
            .set_reaction(&connection, &actor, &message, "👍", true)
            .await,
        Err(PlatformError::Unsupported(_))
    ));

    let prompt = switchboard_platform::Prompt {
        text: "Zoe wants to chat with you on Webex.".to_owned(),
        link: "https://hub.example/sync/abc".to_owned(),
    };
    webex
        .send_prompt(&connection, &ExternalUserId::new("P8"), &prompt)
        .await
        .unwrap();
    let sent = server
        .seen()
        .into_iter()
        .find(|r| r.method == Method::POST && r.path == "/v1/messages")
        .unwrap();
    assert_eq!(sent.authorization, "Bearer service-user-token");
    let sent: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(sent["toPersonId"], "P8");
    assert_eq!(
        sent["markdown"],
        "Zoe wants to chat with you on Webex.\n\n[Sync now](https://hub.example/sync/abc)"
    );

    let zoe = webex
        .lookup_by_email(&connection, &Email::parse("Zoe@acme.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zoe.id.as_str(), "P8");
    assert!(
        server
            .seen()
            .iter()
            .any(|r| r.path == "/v1/people" && r.query == "email=zoe%40acme.example")
    );

    let members = webex
        .chat_members(&connection, &actor, &ExternalChatId::new("R1"))
        .await
        .unwrap();
    let members: Vec<&str> = members.iter().map(ExternalUserId::as_str).collect();
    assert_eq!(members, ["G1", "P2", "P3"]);

    let health = webex.check_health(&connection).await.unwrap();
    assert_eq!(health.identity, "Switchboard <switchboard@acme.example>");
    assert!(health.scopes.iter().any(|s| s == "guest-issuer:write"));

    let mut guest = Credentials::default();
    guest.insert(credential::ACCESS_TOKEN, SecretString::from("guest-token"));
    webex
        .remove_representation(&connection, Some(&ExternalUserId::new("G1")), &guest)
        .await
        .unwrap();
    let deleted: Vec<String> = server
        .seen()
        .into_iter()
        .filter(|r| r.method == Method::DELETE)
        .map(|r| r.path)
        .collect();
    assert_eq!(deleted, ["/v1/webhooks/WH1"], "only the hub's webhook goes");
}

#[tokio::test]
async fn without_the_service_app_configured_the_service_user_is_still_renewed() {
    let server = serve(oauth_server()).await;
    let settings = WebexSettings {
        base_url: server.base.clone(),
        client_id: "integration".to_owned(),
        client_secret: SecretString::from("integration-secret"),
        service_app_client_id: None,
        service_app_client_secret: None,
        request_timeout_secs: 5,
        page_size: 100,
    };
    let webex = WebexPlatform::new(settings, Arc::new(FixedClock)).unwrap();
    let mut credentials = Credentials::default();
    credentials.insert(
        credential::REFRESH_TOKEN,
        SecretString::from("service-refresh"),
    );
    credentials.insert(credential::SERVICE_APP_TOKEN, SecretString::from("old-sa"));
    credentials.insert(
        credential::SERVICE_APP_REFRESH_TOKEN,
        SecretString::from("sa-refresh"),
    );
    let renewed = webex.refresh(&connection(&[]), &credentials).await.unwrap();
    let text = |name| renewed.get(name).unwrap().expose_secret().to_owned();
    assert_eq!(text(credential::ACCESS_TOKEN), "renewed-access");
    assert_eq!(text(credential::SERVICE_APP_TOKEN), "old-sa");
    assert!(
        server
            .seen()
            .iter()
            .all(|r| form(&r.body, "client_id").as_deref() != Some("service-app"))
    );
}

//! The simulated Google driven over real HTTP on a loopback port, as its clients drive it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchboard_sim_kit::{
    DemoHub, OrgSpec, Organisation, SimContext, SimPlatform, SimulatedConnect,
};

use crate::GoogleSim;
use crate::state::{HUB_SERVICE_ACCOUNT, HUB_SERVICE_ACCOUNT_ID};

struct Harness {
    base: String,
    sim: Arc<GoogleSim>,
    http: reqwest::Client,
    organisation: Organisation,
}

async fn start(rate_limits: bool) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let context = SimContext::new(base.clone(), rate_limits);
    context.webhooks.set_time_scale(0.0);
    let sim = GoogleSim::new(context);
    let organisation = Organisation::generate(&OrgSpec {
        people: 30,
        ..OrgSpec::new(vec![sim.org_platform()])
    });
    sim.seed(&organisation);
    let router = sim.clone().router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Harness {
        base,
        sim,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        organisation,
    }
}

impl Harness {
    fn email(&self, index: usize) -> String {
        self.organisation.people[index].email.clone()
    }

    fn user_id(&self, index: usize) -> String {
        self.sim.lock().user(&self.email(index)).unwrap().id.clone()
    }

    fn token(&self, index: usize) -> String {
        self.sim.mint_token(&self.email(index)).unwrap()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, token, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {value}");
        value
    }

    async fn form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A new key for the hub's service account, as its key file.
    async fn service_account_key(&self) -> Value {
        let path = format!(
            "/google/iam/v1/projects/switchboard-demo/serviceAccounts/{HUB_SERVICE_ACCOUNT}/keys"
        );
        let created = self
            .ok("POST", &path, &self.token(0), Some(json!({})))
            .await;
        let file = STANDARD
            .decode(created["privateKeyData"].as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&file).unwrap()
    }

    /// Exchanges a service account's assertion for a token, as google-auth does.
    async fn assertion(
        &self,
        key: &Value,
        scope: &str,
        subject: Option<&str>,
    ) -> (StatusCode, Value) {
        let now = crate::wire::now_micros() / 1_000_000;
        let mut claims = json!({"iss": key["client_email"], "scope": scope, "aud": key["token_uri"], "iat": now, "exp": now + 3600});
        if let Some(subject) = subject {
            claims["sub"] = json!(subject);
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = key["private_key_id"].as_str().map(str::to_owned);
        let signing = jsonwebtoken::EncodingKey::from_rsa_pem(
            key["private_key"].as_str().unwrap().as_bytes(),
        )
        .unwrap();
        let assertion = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
        let response = self
            .form(
                "/google/oauth2/token",
                &[
                    ("grant_type", crate::oauth::JWT_BEARER),
                    ("assertion", &assertion),
                ],
            )
            .await;
        (response.status(), response.json().await.unwrap())
    }
}

const CHAT: &str = "https://www.googleapis.com/auth/chat.messages";

#[tokio::test]
async fn delegation_is_refused_until_an_admin_authorises_the_client() {
    let h = start(false).await;
    let key = h.service_account_key().await;
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["client_id"], HUB_SERVICE_ACCOUNT_ID);
    assert_eq!(key["token_uri"], format!("{}/google/oauth2/token", h.base));
    let user = h.email(1);

    let (status, refused) = h.assertion(&key, CHAT, Some(&user)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["error"], "unauthorized_client");

    // Through the Admin console's form, as the super admin.
    let console = h
        .form(
            "/google/admin/delegation",
            &[
                ("login", &h.email(0)),
                ("client_id", HUB_SERVICE_ACCOUNT_ID),
                (
                    "scopes",
                    &format!("{CHAT},https://www.googleapis.com/auth/chat.spaces"),
                ),
            ],
        )
        .await;
    assert_eq!(console.status(), StatusCode::SEE_OTHER);
    let (status, granted) = h.assertion(&key, CHAT, Some(&user)).await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["expires_in"], 3599);
    let token = granted["access_token"].as_str().unwrap();
    assert!(token.starts_with("ya29."));
    let (status, _) = h
        .call("GET", "/google/chat/v1/spaces?pageSize=10", token, None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "chat.messages alone cannot list spaces"
    );

    // A scope beyond the delegation is refused; a suspended user cannot be impersonated.
    let (status, _) = h
        .assertion(
            &key,
            "https://www.googleapis.com/auth/admin.directory.user",
            Some(&user),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, suspended) = h.assertion(&key, CHAT, Some(&h.email(24))).await;
    assert_eq!(
        (status, suspended["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Without a subject the account acts as itself (the Chat app with chat.bot).
    let (status, _) = h
        .assertion(&key, "https://www.googleapis.com/auth/chat.bot", None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // A deleted key's tokens stop working, and it signs no more assertions.
    let key_id = key["private_key_id"].as_str().unwrap();
    let path = format!(
        "/google/iam/v1/projects/switchboard-demo/serviceAccounts/{HUB_SERVICE_ACCOUNT}/keys/{key_id}"
    );
    h.ok("DELETE", &path, &h.token(0), None).await;
    let (status, _) = h
        .call("GET", "/google/chat/v1/spaces/AAAA", token, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h.assertion(&key, CHAT, Some(&user)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_direct_message_is_set_up_found_and_used() {
    let h = start(false).await;
    let (ada, bob) = (h.token(1), h.token(2));
    let bob_id = h.user_id(2);
    let setup = json!({"space": {"spaceType": 3}, "memberships": [{"member": {"name": format!("users/{bob_id}"), "type": 1}}, {"member": {"name": format!("users/{}", h.email(2)), "type": 1}}]});
    let space = h
        .ok(
            "POST",
            "/google/chat/v1/spaces:setup?$alt=json;enum-encoding=int",
            &ada,
            Some(setup.clone()),
        )
        .await;
    assert_eq!(space["spaceType"], "DIRECT_MESSAGE");
    let again = h
        .ok("POST", "/google/chat/v1/spaces:setup", &ada, Some(setup))
        .await;
    assert_eq!(again["name"], space["name"], "the existing DM is returned");
    let name = space["name"].as_str().unwrap();
    let found = h
        .ok(
            "GET",
            &format!("/google/chat/v1/spaces:findDirectMessage?name=users/{bob_id}"),
            &ada,
            None,
        )
        .await;
    assert_eq!(found["name"], name);
    let (status, missing) = h
        .call(
            "GET",
            &format!(
                "/google/chat/v1/spaces:findDirectMessage?name=users/{}",
                h.user_id(3)
            ),
            &ada,
            None,
        )
        .await;
    assert_eq!(
        (status, missing["error"]["status"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let members = h
        .ok(
            "GET",
            &format!("/google/chat/v1/{name}/members"),
            &bob,
            None,
        )
        .await;
    assert_eq!(members["memberships"].as_array().unwrap().len(), 2);
    assert_eq!(members["memberships"][0]["state"], "JOINED");

    // A message with a client id and a thread key, then a reply in its thread (integer option).
    let first = h
        .ok("POST", &format!("/google/chat/v1/{name}/messages?messageId=client-one&requestId=r1&messageReplyOption=1"), &ada, Some(json!({"text": format!("hi <users/{bob_id}> *there*"), "thread": {"threadKey": "k1"}})))
        .await;
    assert_eq!(first["clientAssignedMessageId"], "client-one");
    assert_eq!(
        first["formattedText"],
        format!("hi <users/{bob_id}> *there*")
    );
    assert_eq!(first["annotations"][0]["type"], "USER_MENTION");
    assert_eq!(
        first["annotations"][0]["userMention"]["user"]["name"],
        format!("users/{bob_id}")
    );
    assert_eq!(first["annotations"][0]["startIndex"], 3);
    let retried = h
        .ok(
            "POST",
            &format!("/google/chat/v1/{name}/messages?requestId=r1"),
            &ada,
            Some(json!({"text": "hi again"})),
        )
        .await;
    assert_eq!(
        retried["name"], first["name"],
        "the same requestId is the same message"
    );
    let by_client_id = h
        .ok(
            "GET",
            &format!("/google/chat/v1/{name}/messages/client-one"),
            &bob,
            None,
        )
        .await;
    assert_eq!(by_client_id["name"], first["name"]);
    let reply = h
        .ok(
            "POST",
            &format!("/google/chat/v1/{name}/messages?messageReplyOption=REPLY_MESSAGE_OR_FAIL"),
            &bob,
            Some(json!({"text": "reply", "thread": {"name": first["thread"]["name"]}})),
        )
        .await;
    assert_eq!(reply["thread"]["name"], first["thread"]["name"]);
    assert_eq!(reply["threadReply"], true);
    let (status, _) = h
        .call(
            "POST",
            &format!("/google/chat/v1/{name}/messages?messageReplyOption=2"),
            &bob,
            Some(json!({"text": "x", "thread": {"threadKey": "nope"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .call(
            "POST",
            &format!("/google/chat/v1/{name}/messages?messageId=mine"),
            &bob,
            Some(json!({"text": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Edits by PUT and PATCH; only the sender edits and deletes.
    let first_name = first["name"].as_str().unwrap();
    let edited = h
        .ok(
            "PUT",
            &format!("/google/chat/v1/{first_name}?updateMask=text"),
            &ada,
            Some(json!({"text": "edited"})),
        )
        .await;
    assert_eq!(edited["text"], "edited");
    assert!(edited["lastUpdateTime"].is_string());
    let patched = h
        .ok(
            "PATCH",
            &format!("/google/chat/v1/{first_name}?updateMask=text"),
            &ada,
            Some(json!({"text": "patched"})),
        )
        .await;
    assert_eq!(patched["text"], "patched");
    let (status, _) = h
        .call(
            "PUT",
            &format!("/google/chat/v1/{first_name}?updateMask=text"),
            &bob,
            Some(json!({"text": "no"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Reactions.
    let reaction = h
        .ok(
            "POST",
            &format!("/google/chat/v1/{first_name}/reactions"),
            &bob,
            Some(json!({"emoji": {"unicode": "👍"}})),
        )
        .await;
    let message = h
        .ok("GET", &format!("/google/chat/v1/{first_name}"), &ada, None)
        .await;
    assert_eq!(message["emojiReactionSummaries"][0]["reactionCount"], 1);
    let listed = h
        .ok(
            "GET",
            &format!("/google/chat/v1/{first_name}/reactions"),
            &ada,
            None,
        )
        .await;
    assert_eq!(
        listed["reactions"][0]["user"]["name"],
        format!("users/{bob_id}")
    );
    h.ok(
        "DELETE",
        &format!("/google/chat/v1/{}", reaction["name"].as_str().unwrap()),
        &bob,
        None,
    )
    .await;

    // Listing, filtering by thread and time, ordering, deletion.
    let thread = first["thread"]["name"].as_str().unwrap();
    let in_thread = h
        .ok(
            "GET",
            &format!("/google/chat/v1/{name}/messages?filter=thread.name%20%3D%20{thread}"),
            &ada,
            None,
        )
        .await;
    assert_eq!(in_thread["messages"].as_array().unwrap().len(), 2);
    let after = first["createTime"].as_str().unwrap();
    let later = h.ok("GET", &format!("/google/chat/v1/{name}/messages?filter=createTime%20%3E%20%22{after}%22&orderBy=createTime%20DESC"), &ada, None).await;
    assert_eq!(later["messages"][0]["name"], reply["name"]);
    let (status, _) = h
        .call(
            "DELETE",
            &format!("/google/chat/v1/{first_name}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    h.ok(
        "DELETE",
        &format!("/google/chat/v1/{first_name}?force=true"),
        &ada,
        None,
    )
    .await;
    let all = h
        .ok(
            "GET",
            &format!("/google/chat/v1/{name}/messages?pageSize=1"),
            &ada,
            None,
        )
        .await;
    assert_eq!(all["messages"].as_array().unwrap().len(), 1);
    assert!(all.get("nextPageToken").is_none());
    let with_deleted = h
        .ok(
            "GET",
            &format!("/google/chat/v1/{name}/messages?showDeleted=true"),
            &ada,
            None,
        )
        .await;
    assert!(with_deleted["messages"][0]["deleteTime"].is_string());

    // Only members see the space; the DM is listed now that it has messages.
    let (status, _) = h
        .call("GET", &format!("/google/chat/v1/{name}"), &h.token(3), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let spaces = h
        .ok("GET", "/google/chat/v1/spaces?pageSize=10", &bob, None)
        .await;
    assert_eq!(spaces["spaces"][0]["name"], name);
}

#[tokio::test]
async fn the_chat_app_finds_its_direct_message_once_configured() {
    let h = start(false).await;
    let key = h.service_account_key().await;
    let (_, app) = h
        .assertion(&key, "https://www.googleapis.com/auth/chat.bot", None)
        .await;
    let app = app["access_token"].as_str().unwrap().to_owned();
    let user = h.user_id(2);
    let path = format!("/google/chat/v1/spaces:findDirectMessage?name=users/{user}");
    let (status, _) = h.call("GET", &path, &app, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.form(
        "/google/admin/chat-app",
        &[("login", &h.email(0)), ("name", "Switchboard")],
    )
    .await;
    let space = h.ok("GET", &path, &app, None).await;
    assert_eq!(space["singleUserBotDm"], true);
    let name = space["name"].as_str().unwrap();
    let posted = h
        .ok(
            "POST",
            &format!("/google/chat/v1/{name}/messages"),
            &app,
            Some(json!({"text": "Connect your account"})),
        )
        .await;
    assert_eq!(posted["sender"]["type"], "BOT");
    let seen = h
        .ok(
            "GET",
            &format!("/google/chat/v1/{name}/messages"),
            &h.token(2),
            None,
        )
        .await;
    assert_eq!(seen["messages"][0]["text"], "Connect your account");
}

#[tokio::test]
async fn the_directory_pages_users_and_creates_guests() {
    let h = start(false).await;
    let admin = h.token(0);
    let mut emails = Vec::new();
    let mut token = String::new();
    loop {
        let page = h.ok("GET", &format!("/google/admin/directory/v1/users?customer=my_customer&maxResults=7&pageToken={token}"), &admin, None).await;
        assert_eq!(page["kind"], "admin#directory#users");
        emails.extend(
            page["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["primaryEmail"].as_str().unwrap().to_owned()),
        );
        match page["nextPageToken"].as_str() {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(emails.len(), 30);
    let one = h
        .ok(
            "GET",
            &format!("/google/admin/directory/v1/users/{}", h.email(24)),
            &admin,
            None,
        )
        .await;
    assert_eq!(one["suspended"], true);
    assert_eq!(one["id"].as_str().unwrap().len(), 21);
    let found = h
        .ok(
            "GET",
            &format!(
                "/google/admin/directory/v1/users?customer=my_customer&query=email:{}",
                h.email(3)
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(found["users"].as_array().unwrap().len(), 1);
    let (status, denied) = h
        .call(
            "GET",
            "/google/admin/directory/v1/users?customer=my_customer",
            &h.token(1),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied["error"]["errors"][0]["reason"],
        "insufficientPermissions"
    );
    let (status, _) = h
        .call(
            "GET",
            "/google/admin/directory/v1/users/nobody@acme.example",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let guest = h
        .ok(
            "POST",
            "/google/admin/directory/v1/users:createGuest",
            &admin,
            Some(json!({"primaryGuestEmail": "kim.lee@partner.example"})),
        )
        .await;
    assert_eq!(guest["isGuestUser"], true);
    assert_eq!(
        guest["guestAccountInfo"]["primaryGuestEmail"],
        "kim.lee@partner.example"
    );
    assert_eq!(guest["name"]["fullName"], "Kim Lee");
    let (status, _) = h
        .call(
            "DELETE",
            "/google/admin/directory/v1/users/kim.lee@partner.example",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deleted = h
        .ok(
            "GET",
            "/google/admin/directory/v1/users?customer=my_customer&showDeleted=true",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        deleted["users"][0]["primaryEmail"],
        "kim.lee@partner.example"
    );

    let groups = h
        .ok(
            "GET",
            "/google/admin/directory/v1/groups?customer=my_customer",
            &admin,
            None,
        )
        .await;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 6);
    let direct = h
        .ok(
            "GET",
            "/google/admin/directory/v1/groups/all-staff@acme.example/members",
            &admin,
            None,
        )
        .await;
    assert_eq!(direct["members"][0]["type"], "GROUP");
    let derived = h.ok("GET", "/google/admin/directory/v1/groups/all-staff@acme.example/members?includeDerivedMembership=true&maxResults=200", &admin, None).await;
    assert_eq!(derived["members"].as_array().unwrap().len(), 30);
}

type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A push endpoint that fails its first `failures` deliveries with 500.
async fn receiver(failures: u32) -> (String, Received) {
    let received: Received = Arc::default();
    let calls = Arc::new(AtomicU32::new(0));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/push",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let (store, calls) = (store.clone(), calls.clone());
            async move {
                store.lock().unwrap().push((headers, body.0));
                if calls.fetch_add(1, Ordering::SeqCst) < failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn wait_for(received: &Received, count: usize) {
    for _ in 0..200 {
        if received.lock().unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "expected {count} deliveries, got {}",
        received.lock().unwrap().len()
    );
}

#[tokio::test]
async fn message_events_are_pushed_with_a_verifiable_token_and_redelivered() {
    let h = start(false).await;
    let (url, received) = receiver(1).await;
    let admin = h.token(0);
    h.ok(
        "PUT",
        "/google/pubsub/v1/projects/switchboard-demo/topics/events",
        &admin,
        Some(json!({})),
    )
    .await;
    let push = json!({"topic": "projects/switchboard-demo/topics/events", "pushConfig": {"pushEndpoint": url, "oidcToken": {"serviceAccountEmail": HUB_SERVICE_ACCOUNT, "audience": "https://hub.example/google"}}});
    h.ok(
        "PUT",
        "/google/pubsub/v1/projects/switchboard-demo/subscriptions/push",
        &admin,
        Some(push),
    )
    .await;

    let ada = h.token(1);
    let operation = h
        .ok(
            "POST",
            "/google/workspaceevents/v1/subscriptions",
            &ada,
            Some(json!({
                "targetResource": "//chat.googleapis.com/spaces/-",
                "eventTypes": ["google.workspace.chat.message.v1.created"],
                "notificationEndpoint": {"pubsubTopic": "projects/switchboard-demo/topics/events"},
                "payloadOptions": {"includeResource": true},
            })),
        )
        .await;
    assert_eq!(operation["done"], true);
    let subscription = &operation["response"];
    assert_eq!(
        subscription["@type"],
        "type.googleapis.com/google.apps.events.subscriptions.v1.Subscription"
    );
    assert_eq!(subscription["authority"], format!("users/{}", h.user_id(1)));
    assert_eq!(subscription["state"], "ACTIVE");

    let bob = h.token(2);
    let dm = h.ok("POST", "/google/chat/v1/spaces:setup", &bob, Some(json!({"space": {"spaceType": "DIRECT_MESSAGE"}, "memberships": [{"member": {"name": format!("users/{}", h.user_id(1)), "type": "HUMAN"}}]}))).await;
    let message = h
        .ok(
            "POST",
            &format!("/google/chat/v1/{}/messages", dm["name"].as_str().unwrap()),
            &bob,
            Some(json!({"text": "hello"})),
        )
        .await;
    wait_for(&received, 2).await;
    let deliveries = received.lock().unwrap().clone();
    assert_eq!(deliveries[0].1, deliveries[1].1, "redelivered after a 500");
    let (headers, envelope) = &deliveries[1];
    assert_eq!(
        envelope["subscription"],
        "projects/switchboard-demo/subscriptions/push"
    );
    let attributes = &envelope["message"]["attributes"];
    assert_eq!(
        attributes["ce-type"],
        "google.workspace.chat.message.v1.created"
    );
    assert_eq!(
        attributes["ce-subject"],
        format!(
            "//chat.googleapis.com/{}",
            message["name"].as_str().unwrap()
        )
    );
    assert_eq!(
        attributes["ce-source"],
        format!(
            "//workspaceevents.googleapis.com/{}",
            subscription["name"].as_str().unwrap()
        )
    );
    let data: Value = serde_json::from_slice(
        &STANDARD
            .decode(envelope["message"]["data"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["message"]["text"], "hello");

    // The push token verifies against the published JWKS.
    let jwks = h.ok("GET", "/google/oauth2/v3/certs", "", None).await;
    let jwk = &jwks["keys"][0];
    let token = headers["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["https://hub.example/google"]);
    validation.set_issuer(&["https://accounts.google.com"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["email"], HUB_SERVICE_ACCOUNT);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["sub"], HUB_SERVICE_ACCOUNT_ID);
    let v1 = h.ok("GET", "/google/oauth2/v1/certs", "", None).await;
    assert!(
        v1[jwk["kid"].as_str().unwrap()]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PUBLIC KEY-----")
    );
}

#[tokio::test]
async fn subscriptions_expire_are_renewed_and_are_suspended_with_their_user() {
    let h = start(false).await;
    let admin = h.token(0);
    h.ok(
        "PUT",
        "/google/pubsub/v1/projects/switchboard-demo/topics/events",
        &admin,
        Some(json!({})),
    )
    .await;
    h.ok(
        "PUT",
        "/google/pubsub/v1/projects/switchboard-demo/subscriptions/pull",
        &admin,
        Some(json!({"topic": "projects/switchboard-demo/topics/events"})),
    )
    .await;
    let ada = h.token(1);
    let create = |ttl: &str| {
        json!({
            "targetResource": "//chat.googleapis.com/spaces/-",
            "eventTypes": ["google.workspace.chat.message.v1.created", "google.workspace.chat.reaction.v1.created"],
            "notificationEndpoint": {"pubsubTopic": "projects/switchboard-demo/topics/events"},
            "payloadOptions": {"includeResource": true},
            "ttl": ttl,
        })
    };
    let (status, too_long) = h
        .call(
            "POST",
            "/google/workspaceevents/v1/subscriptions",
            &ada,
            Some(create("14401s")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{too_long}");
    let created = h
        .ok(
            "POST",
            "/google/workspaceevents/v1/subscriptions",
            &ada,
            Some(create("0s")),
        )
        .await;
    let name = created["response"]["name"].as_str().unwrap().to_owned();
    let (status, _) = h
        .call(
            "POST",
            "/google/workspaceevents/v1/subscriptions",
            &ada,
            Some(create("60s")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = h
        .call(
            "GET",
            "/google/workspaceevents/v1/subscriptions",
            &ada,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the filter is required");
    let listed = h
        .ok("GET", "/google/workspaceevents/v1/subscriptions?filter=event_types%3A%22google.workspace.chat.message.v1.created%22%20AND%20target_resource%3D%22%2F%2Fchat.googleapis.com%2Fspaces%2F-%22", &ada, None)
        .await;
    assert_eq!(listed["subscriptions"][0]["name"], name.as_str());

    let renewed = h
        .ok(
            "PATCH",
            &format!("/google/workspaceevents/v1/{name}?updateMask=ttl"),
            &ada,
            Some(json!({"ttl": "3600s"})),
        )
        .await;
    let operation = renewed["name"].as_str().unwrap();
    let fetched = h
        .ok(
            "GET",
            &format!("/google/workspaceevents/v1/{operation}"),
            &ada,
            None,
        )
        .await;
    assert_eq!(fetched["done"], true);
    let expires =
        crate::wire::parse_rfc3339(renewed["response"]["expireTime"].as_str().unwrap()).unwrap();
    let hour_from_now = crate::wire::now_micros() + 3_600_000_000;
    assert!(expires.abs_diff(hour_from_now) < 5_000_000);

    // Suspending the authorising user suspends it, with a lifecycle event; reactivation needs
    // the subscription suspended.
    h.sim
        .control("suspend_user", json!({"email": h.email(1)}))
        .unwrap();
    let pulled = h
        .ok(
            "POST",
            "/google/pubsub/v1/projects/switchboard-demo/subscriptions/pull:pull",
            &admin,
            Some(json!({"maxMessages": 10})),
        )
        .await;
    let received = pulled["receivedMessages"].as_array().unwrap();
    assert_eq!(
        received[0]["message"]["attributes"]["ce-type"],
        "google.workspace.events.subscription.v1.suspended"
    );
    let data: Value = serde_json::from_slice(
        &STANDARD
            .decode(received[0]["message"]["data"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        data["subscription"]["suspensionReason"],
        "USER_AUTHORIZATION_FAILURE"
    );
    let ack = received[0]["ackId"].clone();
    h.ok(
        "POST",
        "/google/pubsub/v1/projects/switchboard-demo/subscriptions/pull:acknowledge",
        &admin,
        Some(json!({"ackIds": [ack]})),
    )
    .await;

    h.sim
        .control("expire_subscription", json!({"name": name}))
        .unwrap();
    let pulled = h
        .ok(
            "POST",
            "/google/pubsub/v1/projects/switchboard-demo/subscriptions/pull:pull",
            &admin,
            Some(json!({"maxMessages": 10})),
        )
        .await;
    assert_eq!(
        pulled["receivedMessages"][0]["message"]["attributes"]["ce-type"],
        "google.workspace.events.subscription.v1.expired"
    );
    assert!(h.sim.lock().event_subscriptions.is_empty());
}

#[tokio::test]
async fn quotas_answer_429_with_retry_after_when_limits_are_on() {
    let h = start(true).await;
    let ada = h.token(1);
    let dm = h.ok("POST", "/google/chat/v1/spaces:setup", &ada, Some(json!({"space": {"spaceType": 3}, "memberships": [{"member": {"name": format!("users/{}", h.user_id(2)), "type": 1}}]}))).await;
    let path = format!("/google/chat/v1/{}/messages", dm["name"].as_str().unwrap());
    for n in 0..60 {
        h.ok("POST", &path, &ada, Some(json!({"text": format!("m{n}")})))
            .await;
    }
    let response = h
        .http
        .post(format!("{}{path}", h.base))
        .bearer_auth(&ada)
        .json(&json!({"text": "one too many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
}

#[tokio::test]
async fn the_consent_page_gives_a_code_for_tokens() {
    let h = start(false).await;
    let redirect = "https://hub.example/callback";
    let authorize = [
        ("response_type", "code"),
        ("client_id", crate::HUB_OAUTH_CLIENT_ID),
        ("redirect_uri", redirect),
        (
            "scope",
            "https://www.googleapis.com/auth/chat.messages https://www.googleapis.com/auth/chat.spaces",
        ),
        ("state", "s1"),
        ("access_type", "offline"),
    ];
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(authorize)
        .finish();
    let page = h
        .http
        .get(format!("{}/google/oauth2/auth?{query}", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"login\"") && page.contains("value=\"allow\""));
    let email = h.email(1);
    let mut decision: Vec<(&str, &str)> = authorize.to_vec();
    decision.extend([("login", email.as_str()), ("decision", "deny")]);
    let denied = h.form("/google/oauth2/auth", &decision).await;
    assert!(
        denied.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=access_denied&state=s1")
    );
    decision.pop();
    decision.push(("decision", "allow"));
    let allowed = h.form("/google/oauth2/auth", &decision).await;
    let location = allowed.headers()["location"].to_str().unwrap().to_owned();
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let code = form_urlencoded::parse(format!("c={code}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = h
        .form(
            "/google/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", crate::HUB_OAUTH_CLIENT_ID),
                ("client_secret", crate::HUB_OAUTH_CLIENT_SECRET),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshed: Value = h
        .form(
            "/google/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", crate::HUB_OAUTH_CLIENT_ID),
                ("client_secret", crate::HUB_OAUTH_CLIENT_SECRET),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    h.ok("GET", "/google/chat/v1/spaces", access, None).await;
}

#[tokio::test]
async fn the_demo_prepares_what_the_hub_needs() {
    let h = start(false).await;
    // The demo reads users and mints tokens through /_sim, which the simulator serves; here
    // the sim's own users stand in, so prepare's HTTP steps are run after those two.
    let hub = DemoHub {
        public_url: "https://hub.example".to_owned(),
        callback_url: "https://hub.example/callback".to_owned(),
        webhook_url: "https://hub.example/webhooks/google_chat".to_owned(),
        app_scopes: vec![
            CHAT.to_owned(),
            "https://www.googleapis.com/auth/admin.directory.user.readonly".to_owned(),
        ],
        paced: false,
    };
    let demo = crate::GoogleDemo;
    let table = demo.hub_table(&h.base, &hub, None).unwrap();
    assert_eq!(table["chat_base_url"], format!("{}/google/chat", h.base));
    assert_eq!(table["push_audience"], hub.webhook_url);
    let prepared = crate::demo::set_up_with_admin(&h.base, &hub, &h.email(0), &h.token(0))
        .await
        .unwrap();
    let consent = demo.consent(Some(&prepared)).unwrap();
    assert_eq!(consent.identity, ("login".to_owned(), h.email(0)));
    let key: Value = serde_json::from_str(&consent.inputs[0].1).unwrap();
    let (status, granted) = h.assertion(&key, CHAT, Some(&h.email(3))).await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    let state = h.sim.lock();
    assert!(state.chat_app.is_some());
    let push =
        state.pubsub_subscriptions["projects/switchboard-demo/subscriptions/switchboard-push"]
            .push
            .clone()
            .unwrap();
    assert_eq!(push.endpoint, hub.webhook_url);
}

#[tokio::test]
async fn people_chat_in_the_web_view_and_admins_see_the_console() {
    let h = start(false).await;
    let signed_in = h.form("/google/signin", &[("login", &h.email(1))]).await;
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let started = h
        .http
        .post(format!("{}/google/new", h.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("with", &h.email(2))
                .finish(),
        )
        .send()
        .await
        .unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let id = location.rsplit('=').next().unwrap().to_owned();
    let text = format!(
        "*bold* _it_ ~gone~ `x<y` <https://example.com|site> <users/{}>",
        h.user_id(2)
    );
    h.http
        .post(format!("{}/google/space/send", h.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("id", &id)
                .append_pair("text", &text)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    let page = h
        .http
        .get(format!("{}{location}", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let name = h.organisation.people[2].display_name.clone();
    for expected in [
        "<strong>bold</strong>",
        "<em>it</em>",
        "<s>gone</s>",
        "<code>x&lt;y</code>",
        "<a href=\"https://example.com\">site</a>",
        &format!("@{name}</span>"),
    ] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    let messages = h
        .ok(
            "GET",
            &format!("/google/chat/v1/spaces/{id}/messages"),
            &h.token(2),
            None,
        )
        .await;
    assert_eq!(messages["messages"][0]["formattedText"], text);

    h.sim
        .control("delegate", json!({"client_id": "123", "scopes": [CHAT]}))
        .unwrap();
    let console = h
        .http
        .get(format!("{}/google/admin/?login={}", h.base, h.email(0)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(console.contains("<code>123</code>") && console.contains("chat.messages"));
    let refused = h
        .http
        .get(format!("{}/google/admin/?login={}", h.base, h.email(1)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refused.contains("is not an administrator"));

    // Everything survives a save and restore, keys and conversations included.
    h.sim.restore(h.sim.save()).unwrap();
    let again = h
        .ok(
            "GET",
            &format!("/google/chat/v1/spaces/{id}/messages"),
            &h.token(2),
            None,
        )
        .await;
    assert_eq!(again["messages"], messages["messages"]);
}

#[tokio::test]
async fn reactions_are_published_and_revoking_delegation_suspends_its_subscriptions() {
    let h = start(false).await;
    let admin = h.token(0);
    h.ok(
        "PUT",
        "/google/pubsub/v1/projects/switchboard-demo/topics/events",
        &admin,
        Some(json!({})),
    )
    .await;
    h.ok(
        "PUT",
        "/google/pubsub/v1/projects/switchboard-demo/subscriptions/pull",
        &admin,
        Some(json!({"topic": "projects/switchboard-demo/topics/events"})),
    )
    .await;
    let key = h.service_account_key().await;
    let scopes = [
        CHAT,
        "https://www.googleapis.com/auth/chat.messages.reactions",
    ];
    h.sim
        .control(
            "delegate",
            json!({"client_id": HUB_SERVICE_ACCOUNT_ID, "scopes": scopes}),
        )
        .unwrap();
    let (_, granted) = h
        .assertion(&key, &scopes.join(" "), Some(&h.email(1)))
        .await;
    let as_ada = granted["access_token"].as_str().unwrap().to_owned();
    h.ok(
        "POST",
        "/google/workspaceevents/v1/subscriptions",
        &as_ada,
        Some(json!({
            "targetResource": "//chat.googleapis.com/spaces/-",
            "eventTypes": ["google.workspace.chat.reaction.v1.created"],
            "notificationEndpoint": {"pubsubTopic": "projects/switchboard-demo/topics/events"},
        })),
    )
    .await;
    let bob = h.token(2);
    let dm = h.ok("POST", "/google/chat/v1/spaces:setup", &bob, Some(json!({"space": {"spaceType": 3}, "memberships": [{"member": {"name": format!("users/{}", h.user_id(1)), "type": 1}}]}))).await;
    let message = h
        .ok(
            "POST",
            &format!("/google/chat/v1/{}/messages", dm["name"].as_str().unwrap()),
            &bob,
            Some(json!({"text": "react"})),
        )
        .await;
    let reaction = h
        .ok(
            "POST",
            &format!(
                "/google/chat/v1/{}/reactions",
                message["name"].as_str().unwrap()
            ),
            &bob,
            Some(json!({"emoji": {"unicode": "🎉"}})),
        )
        .await;

    h.sim
        .control(
            "revoke_delegation",
            json!({"client_id": HUB_SERVICE_ACCOUNT_ID}),
        )
        .unwrap();
    let pulled = h
        .ok(
            "POST",
            "/google/pubsub/v1/projects/switchboard-demo/subscriptions/pull:pull",
            &admin,
            Some(json!({"maxMessages": 10})),
        )
        .await;
    let received = pulled["receivedMessages"].as_array().unwrap();
    let types: Vec<&str> = received
        .iter()
        .map(|r| r["message"]["attributes"]["ce-type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "google.workspace.chat.reaction.v1.created",
            "google.workspace.events.subscription.v1.suspended"
        ]
    );
    let data: Value = serde_json::from_slice(
        &STANDARD
            .decode(received[0]["message"]["data"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["reaction"]["name"], reaction["name"]);
    let data: Value = serde_json::from_slice(
        &STANDARD
            .decode(received[1]["message"]["data"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        data["subscription"]["suspensionReason"],
        "USER_SCOPE_REVOKED"
    );
}

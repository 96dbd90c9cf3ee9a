//! The Google Chat module against the simulated Google (OAuth with domain-wide delegation, the
//! Admin SDK Directory, the Chat API, Workspace Events and Pub/Sub push): the common compliance
//! suite through [`GoogleDriver`].
//!
//! The driver sets the simulated Workspace up as its admin would, following the module's
//! documentation: a key for the project's service account (IAM), domain-wide delegation of
//! [`DELEGATION_SCOPES`], the Chat app, invitations accepted automatically, and a Pub/Sub topic
//! whose push subscription delivers, with an OIDC token, to a receiver standing in for the hub.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard_core::{Clock, ExternalChatId, ExternalUserId, Timestamp};
use switchboard_platform::{ConnectionContext, Credentials, WebhookRequest};
use switchboard_platform_compliance::{
    Driver, NativeUser, SeenMessage, Tampered, UserKind, compliance_tests,
};
use switchboard_platform_google::{DELEGATION_SCOPES, GoogleChatPlatform, GoogleChatSettings};
use switchboard_secrets::{ExposeSecret, SecretString};
use switchboard_sim::{SimConfig, Simulator};
use switchboard_sim_google::{
    HUB_OAUTH_CLIENT_ID, HUB_OAUTH_CLIENT_SECRET, HUB_SERVICE_ACCOUNT, PROJECT_ID,
};

compliance_tests!(GoogleDriver);

/// The hub's clock, as the hub gives it to the module.
struct WallClock;

impl Clock for WallClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_unix_millis(since.as_millis() as i64)
    }
}

const CALLBACK: &str = "https://hub.example/callback/google_chat";
const TOPIC: &str = "switchboard-events";
const PUSH_SUBSCRIPTION: &str = "switchboard-push";

/// The simulated Google, the Workspace set up for the hub, and a receiver standing in for the
/// hub's webhook.
struct GoogleDriver {
    base: String,
    _sim: Simulator,
    http: reqwest::Client,
    google: GoogleChatPlatform,
    events_url: String,
    deliveries: Arc<Mutex<Vec<WebhookRequest>>>,
    admin: String,
    key_file: String,
    client_id: String,
}

impl GoogleDriver {
    async fn launch(people: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let sim = Simulator::new(SimConfig {
            base_url: base.clone(),
            people,
            rate_limits: false,
            state_file: None,
            platforms: None,
        })
        .unwrap();
        let router = sim.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let deliveries = Arc::default();
        let events_url = format!("{}/events", receiver(Arc::clone(&deliveries)).await);
        let mut driver = Self {
            google: platform(&base, &events_url),
            base,
            _sim: sim,
            http,
            events_url,
            deliveries,
            admin: String::new(),
            key_file: String::new(),
            client_id: String::new(),
        };
        driver
            .sim_call(
                "/_sim/settings",
                reqwest::Method::PUT,
                json!({"webhook_time_scale": 0.001}),
            )
            .await;
        driver.set_up_workspace().await;
        driver
    }

    async fn sim_call(&self, path: &str, method: reqwest::Method, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn control(&self, action: &str, arguments: Value) -> Value {
        self.sim_call(
            &format!("/_sim/google_chat/{action}"),
            reqwest::Method::POST,
            arguments,
        )
        .await
    }

    async fn mint(&self, email: &str) -> String {
        let answer = self
            .sim_call(
                "/_sim/token",
                reqwest::Method::POST,
                json!({"platform": "google_chat", "email": email}),
            )
            .await;
        answer["token"].as_str().unwrap().to_owned()
    }

    /// What the Workspace's super admin does in the Cloud and Admin consoles for the hub.
    async fn set_up_workspace(&mut self) {
        self.admin = self.super_admin().await;
        let token = self.mint(&self.admin).await;
        let created: Value = self
            .http
            .post(format!(
                "{}/google/iam/v1/projects/{PROJECT_ID}/serviceAccounts/{HUB_SERVICE_ACCOUNT}/keys",
                self.base
            ))
            .bearer_auth(&token)
            .json(&json!({"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = base64::engine::general_purpose::STANDARD
            .decode(created["privateKeyData"].as_str().unwrap())
            .unwrap();
        self.key_file = String::from_utf8(key).unwrap();
        let key: Value = serde_json::from_str(&self.key_file).unwrap();
        self.client_id = key["client_id"].as_str().unwrap().to_owned();
        self.control(
            "delegate",
            json!({"client_id": self.client_id, "scopes": DELEGATION_SCOPES}),
        )
        .await;
        self.control("configure_chat_app", json!({"name": "Switchboard"}))
            .await;
        let accepted = self
            .http
            .post(format!("{}/google/admin/invitations", self.base))
            .form(&[("login", self.admin.as_str()), ("auto_accept", "on")])
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), 303);
        let topic = format!("projects/{PROJECT_ID}/topics/{TOPIC}");
        let made = self
            .http
            .put(format!("{}/google/pubsub/v1/{topic}", self.base))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success(), "{}", made.status());
        let made = self
            .http
            .put(format!(
                "{}/google/pubsub/v1/projects/{PROJECT_ID}/subscriptions/{PUSH_SUBSCRIPTION}",
                self.base
            ))
            .bearer_auth(&token)
            .json(&json!({
                "topic": topic,
                "pushConfig": {
                    "pushEndpoint": self.events_url,
                    "oidcToken": {"serviceAccountEmail": HUB_SERVICE_ACCOUNT, "audience": self.events_url},
                },
                "ackDeadlineSeconds": 10,
            }))
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success(), "{}", made.status());
    }

    async fn super_admin(&self) -> String {
        let listed: Vec<Value> = self
            .http
            .get(format!("{}/_sim/users?platform=google_chat", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed
            .iter()
            .find(|user| user["kind"] == "admin")
            .and_then(|user| user["email"].as_str())
            .unwrap()
            .to_owned()
    }

    fn inputs(&self, key: &str, admin: &str, topic: &str) -> Credentials {
        let mut inputs = Credentials::default();
        for (name, value) in [
            ("service_account_key", key),
            ("admin_email", admin),
            ("customer", "my_customer"),
            ("pubsub_topic", topic),
            ("push_service_account", HUB_SERVICE_ACCOUNT),
        ] {
            inputs.insert(name, SecretString::from(value));
        }
        inputs
    }
}

fn platform(base: &str, events_url: &str) -> GoogleChatPlatform {
    let settings: GoogleChatSettings = serde_json::from_value(json!({
        "chat_base_url": format!("{base}/google/chat"),
        "directory_base_url": format!("{base}/google/admin/directory/v1"),
        "reports_base_url": format!("{base}/google"),
        "events_base_url": format!("{base}/google/workspaceevents"),
        "authorize_url": format!("{base}/google/oauth2/auth"),
        "token_url": format!("{base}/google/oauth2/token"),
        "certs_url": format!("{base}/google/oauth2/v3/certs"),
        "push_audience": events_url,
        "oauth_client_id": HUB_OAUTH_CLIENT_ID,
        "oauth_client_secret": HUB_OAUTH_CLIENT_SECRET,
        "request_timeout_secs": 10,
        "page_size": 20,
    }))
    .unwrap();
    GoogleChatPlatform::new(settings, Arc::new(WallClock)).unwrap()
}

/// The hub's webhook stand-in: records every push and acknowledges it.
async fn receiver(deliveries: Arc<Mutex<Vec<WebhookRequest>>>) -> String {
    async fn receive(
        State(deliveries): State<Arc<Mutex<Vec<WebhookRequest>>>>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        deliveries.lock().unwrap().push(WebhookRequest {
            headers,
            query,
            body: body.to_vec(),
            held_subscriptions: Vec::new(),
        });
        StatusCode::NO_CONTENT
    }
    let router = Router::new()
        .route("/events", post(receive))
        .with_state(deliveries);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

#[async_trait]
impl Driver for GoogleDriver {
    type Platform = GoogleChatPlatform;

    async fn start() -> Self {
        Self::launch(150).await
    }

    fn platform(&self) -> &GoogleChatPlatform {
        &self.google
    }

    async fn connect_inputs(&self) -> Credentials {
        self.inputs(
            &self.key_file,
            &self.admin,
            &format!("projects/{PROJECT_ID}/topics/{TOPIC}"),
        )
    }

    fn callback_url(&self) -> String {
        CALLBACK.to_owned()
    }

    fn admin_login(&self) -> String {
        self.admin.clone()
    }

    /// Google's sign-in page: pick the account, then Allow or Cancel.
    async fn consent(
        &self,
        url: &str,
        login: &str,
        accept: bool,
    ) -> Result<Vec<(String, String)>, String> {
        let page = self.http.get(url).send().await.unwrap();
        let html = page.text().await.unwrap();
        let Some(at) = html.find("<form") else {
            return Err(html);
        };
        let form = &html[at..];
        let action = attribute(form, "action").unwrap();
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut rest = form;
        while let Some(at) = rest.find("<input type=\"hidden\"") {
            rest = &rest[at + 6..];
            let tag = &rest[..rest.find('>').unwrap()];
            fields.push((
                attribute(tag, "name").unwrap(),
                attribute(tag, "value").unwrap_or_default(),
            ));
        }
        fields.push(("login".to_owned(), login.to_owned()));
        fields.push((
            "decision".to_owned(),
            if accept { "allow" } else { "deny" }.to_owned(),
        ));
        let response = self
            .http
            .post(format!("{}{action}", self.base))
            .form(&fields)
            .send()
            .await
            .unwrap();
        if !response.status().is_redirection() {
            return Err(response.text().await.unwrap_or_default());
        }
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(CALLBACK), "{location}");
        Ok(reqwest::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect())
    }

    async fn directory(&self) -> Vec<NativeUser> {
        let listed: Vec<Value> = self
            .http
            .get(format!("{}/_sim/users?platform=google_chat", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed
            .iter()
            .map(|user| NativeUser {
                id: ExternalUserId::new(user["id"].as_str().unwrap()),
                email: user["email"].as_str().map(str::to_owned),
                display_name: user["display_name"].as_str().unwrap().to_owned(),
                kind: match user["kind"].as_str().unwrap() {
                    "guest" => UserKind::Guest,
                    "suspended" => UserKind::Deactivated,
                    _ => UserKind::Member,
                },
            })
            .collect()
    }

    /// The Chat app, a member of its direct messages as `users/app`.
    fn hub_account(&self, _connection: &ConnectionContext) -> ExternalUserId {
        ExternalUserId::new("app")
    }

    async fn read_chat(&self, reader: &NativeUser, chat: &ExternalChatId) -> Vec<SeenMessage> {
        let token = self.mint(reader.email.as_deref().unwrap()).await;
        let listed: Value = self
            .http
            .get(format!(
                "{}/google/chat/v1/{}/messages?pageSize=1000",
                self.base,
                chat.as_str()
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let messages: Vec<Value> = listed["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m["deleteTime"].is_null())
            .collect();
        let thread_root = |message: &Value| -> Option<String> {
            if message["threadReply"] != json!(true) {
                return None;
            }
            messages
                .iter()
                .find(|m| m["thread"]["name"] == message["thread"]["name"])
                .and_then(|m| m["name"].as_str())
                .map(str::to_owned)
        };
        messages
            .iter()
            .map(|m| SeenMessage {
                id: m["name"].as_str().unwrap().to_owned(),
                author: ExternalUserId::new(
                    m["sender"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches("users/"),
                ),
                text: m["text"].as_str().unwrap_or_default().to_owned(),
                reactions: m["emojiReactionSummaries"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .flat_map(|summary| {
                        let emoji = summary["emoji"]["unicode"].as_str().unwrap().to_owned();
                        let count = summary["reactionCount"].as_u64().unwrap_or(1) as usize;
                        std::iter::repeat_n(emoji, count)
                    })
                    .collect(),
                mentions: m["annotations"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .filter(|a| a["type"] == "USER_MENTION")
                    .filter_map(|a| a["userMention"]["user"]["name"].as_str())
                    .map(|name| ExternalUserId::new(name.trim_start_matches("users/")))
                    .collect(),
                replies_to: thread_root(m),
            })
            .collect()
    }

    async fn post_as(&self, author: &NativeUser, chat: &ExternalChatId, text: &str) -> String {
        let token = self.mint(author.email.as_deref().unwrap()).await;
        let response = self
            .http
            .post(format!(
                "{}/google/chat/v1/{}/messages",
                self.base,
                chat.as_str()
            ))
            .bearer_auth(token)
            .json(&json!({"text": text}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let posted: Value = response.json().await.unwrap();
        posted["name"].as_str().unwrap().to_owned()
    }

    fn events_url(&self) -> String {
        self.events_url.clone()
    }

    fn deliveries(&self) -> Vec<WebhookRequest> {
        self.deliveries.lock().unwrap().clone()
    }

    /// A push is authenticated by its OIDC token alone: without one, with its signature
    /// broken, or signed by another key under Google's key id, it is a forgery. Only Google can
    /// sign a token that has expired, so there is no stale copy to make (the module's unit
    /// tests check expiry with a key of their own).
    fn tamper(&self, _connection: &ConnectionContext, genuine: &WebhookRequest) -> Tampered {
        let token = genuine.headers["authorization"]
            .to_str()
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_owned();
        let with_token = |token: Option<String>| {
            let mut request = genuine.clone();
            request.headers.remove("authorization");
            if let Some(token) = token {
                request
                    .headers
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            request
        };
        let mut broken = token.clone();
        let last = broken.pop().unwrap();
        broken.push(if last == 'A' { 'B' } else { 'A' });
        let header = jsonwebtoken::decode_header(&token).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let mut forged_header = Header::new(Algorithm::RS256);
        forged_header.kid = header.kid;
        let resigned = jsonwebtoken::encode(
            &forged_header,
            &claims,
            &EncodingKey::from_rsa_pem(nobodys_key().as_bytes()).unwrap(),
        )
        .unwrap();
        Tampered {
            forged: vec![
                with_token(None),
                with_token(Some(broken)),
                with_token(Some(resigned)),
            ],
            stale: Vec::new(),
        }
    }

    async fn add_member(&self, email: &str, name: &str, _teams: &[String]) -> ExternalUserId {
        let added = self
            .control("add_user", json!({"email": email, "name": name}))
            .await;
        ExternalUserId::new(added["id"].as_str().unwrap())
    }

    /// Workspace admins suspend a leaver's account.
    async fn remove_member(&self, _account: &ExternalUserId, email: &str) {
        self.control("suspend_user", json!({"email": email})).await;
    }

    /// The admin removes the service account's domain-wide delegation.
    async fn revoke(&self, connection: &ConnectionContext) {
        let key: Value = serde_json::from_str(
            connection
                .credentials
                .get("service_account_key")
                .unwrap()
                .expose_secret(),
        )
        .unwrap();
        self.control(
            "revoke_delegation",
            json!({"client_id": key["client_id"].as_str().unwrap()}),
        )
        .await;
    }

    async fn now(&self) -> Timestamp {
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .unwrap();
        let date = response.headers()["date"].to_str().unwrap().to_owned();
        http_date(&date)
    }

    fn connects_without_browser(&self) -> bool {
        true
    }

    /// A file that is no key, an admin who is no user, and a topic that is no topic.
    async fn refused_connect_inputs(&self) -> Vec<Credentials> {
        let topic = format!("projects/{PROJECT_ID}/topics/{TOPIC}");
        let domain = self.admin.split_once('@').unwrap().1;
        vec![
            self.inputs("{\"type\": \"service_account\"}", &self.admin, &topic),
            self.inputs(&self.key_file, &format!("nobody.at.all@{domain}"), &topic),
            self.inputs(&self.key_file, &self.admin, "topics/t"),
        ]
    }

    /// Pub/Sub pushes sends no handshake.
    fn sends_handshakes(&self) -> bool {
        false
    }

    /// A service account's key does not expire: refreshing proves it still works.
    fn refresh_changes_credentials(&self) -> bool {
        false
    }
}

/// An RSA private key of nobody's, in PKCS#8 PEM.
fn nobodys_key() -> String {
    use aws_lc_rs::encoding::AsDer;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(pair.as_der().unwrap().as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn http_date(text: &str) -> Timestamp {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split([' ', ':']).collect();
    let (day, year): (i64, i64) = (parts[1].parse().unwrap(), parts[3].parse().unwrap());
    let month = MONTHS.iter().position(|m| *m == parts[2]).unwrap() as i64 + 1;
    let (h, m, s): (i64, i64, i64) = (
        parts[4].parse().unwrap(),
        parts[5].parse().unwrap(),
        parts[6].parse().unwrap(),
    );
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Timestamp::from_unix_millis(((days * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

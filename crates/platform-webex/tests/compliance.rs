//! The Webex module against the simulated Webex (the REST API, OAuth for integrations, Service
//! App guests and signed webhooks): the common compliance suite through [`WebexDriver`].
//!
//! The driver sets the simulated organisation up as its admin would, following the module's
//! documentation: the Service App authorised in Control Hub and its tokens generated (the
//! refresh token is the connect field), and the hub connected by signing in on the
//! integration's consent page as the organisation's service user. The module's settings are
//! the simulator's demo table (`WebexDemo::hub_table`), read by the module's own
//! [`WebexSettings`]: this is where the two independent readings are held to one table.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_core::{Clock, ExternalChatId, ExternalUserId, Timestamp};
use switchboard_platform::{ConnectionContext, Credentials, WebhookRequest};
use switchboard_platform_compliance::{
    Driver, NativeUser, SeenMessage, Tampered, UserKind, compliance_tests,
};
use switchboard_platform_webex::{WebexPlatform, WebexSettings, credential, sign};
use switchboard_secrets::{ExposeSecret, SecretString};
use switchboard_sim_kit::{
    DemoHub, OrgSpec, Organisation, SimContext, SimPlatform, SimulatedConnect,
};
use switchboard_sim_webex::{
    SERVICE_APP_CLIENT_ID, SERVICE_APP_CLIENT_SECRET, WebexDemo, WebexSim,
};

compliance_tests!(WebexDriver);

/// The hub's clock, as the hub gives it to the module; the simulator runs in this process, on
/// the same clock.
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

const CALLBACK: &str = "https://hub.example/connect/callback";

/// The simulated Webex, its organisation set up for the hub, and a receiver standing in for the
/// hub's webhook.
struct WebexDriver {
    base: String,
    sim: Arc<WebexSim>,
    http: reqwest::Client,
    webex: WebexPlatform,
    events_url: String,
    deliveries: Arc<Mutex<Vec<WebhookRequest>>>,
    admin: String,
    service_user: String,
}

impl WebexDriver {
    fn api(&self, path: &str) -> String {
        format!("{}/webex/v1/{path}", self.base)
    }

    fn user_with_kind(&self, kind: &str) -> String {
        self.sim
            .users()
            .into_iter()
            .find(|user| user.kind == kind)
            .and_then(|user| user.email)
            .unwrap_or_else(|| panic!("the organisation has a {kind}"))
    }

    fn control(&self, action: &str, arguments: Value) -> Value {
        self.sim
            .control(action, arguments)
            .unwrap_or_else(|error| panic!("{action}: {error:?}"))
    }

    /// A call of a person's own Webex app.
    async fn call(
        &self,
        email: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Value {
        let token = self.sim.mint_token(email).unwrap();
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{url}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The Service App's tokens for the organisation, generated as its page does once an admin
    /// authorised it; the refresh token is what the admin pastes into the connect form.
    async fn service_app_refresh_token(&self) -> String {
        let answer: Value = self
            .http
            .post(self.api("access_token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SERVICE_APP_CLIENT_ID),
                ("client_secret", SERVICE_APP_CLIENT_SECRET),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["refresh_token"].as_str().unwrap().to_owned()
    }

    /// Where a person's client reads and writes `chat`. The module names a direct chat
    /// `direct:A:B` by its two members, whether or not Webex made its room yet: the person's
    /// client reaches it as their 1:1 with the other member (`messages/direct`, and posts with
    /// `toPersonId`, which make the room with the first message).
    fn place(reader: &NativeUser, chat: &ExternalChatId) -> Place {
        let Some(members) = chat.as_str().strip_prefix("direct:") else {
            return Place::Room(chat.as_str().to_owned());
        };
        let (first, second) = members.split_once(':').expect("direct:A:B");
        let me = reader.id.as_str();
        assert!(
            me == first || me == second,
            "{} is not a member of {chat}",
            login(reader)
        );
        Place::DirectWith(if me == first { second } else { first }.to_owned())
    }
}

enum Place {
    Room(String),
    DirectWith(String),
}

fn login(user: &NativeUser) -> &str {
    user.email
        .as_deref()
        .expect("a person signs in with an address")
}

/// The hub's webhook stand-in: records every delivery and acknowledges it.
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
        StatusCode::OK
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
impl Driver for WebexDriver {
    type Platform = WebexPlatform;

    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let context = SimContext::new(base.clone(), false);
        // Deliveries are retried at once rather than after Webex's minutes.
        context.webhooks.set_time_scale(0.0);
        let sim = WebexSim::new(context);
        // Enough people that two teams of up to 50 take several pages of 20.
        let organisation = Organisation::generate(&OrgSpec {
            people: 150,
            ..OrgSpec::new(vec![sim.org_platform()])
        });
        sim.seed(&organisation);
        let router = Arc::clone(&sim).router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let deliveries = Arc::default();
        let events_url = format!("{}/events", receiver(Arc::clone(&deliveries)).await);
        let hub = DemoHub {
            public_url: "https://hub.example".to_owned(),
            callback_url: CALLBACK.to_owned(),
            webhook_url: events_url.clone(),
            app_scopes: Vec::new(),
            paced: false,
        };
        let mut table = WebexDemo.hub_table(&base, &hub, None).unwrap();
        // Small pages, so that an import needs several.
        table["page_size"] = json!(20);
        let settings: WebexSettings = serde_json::from_value(table)
            .expect("the simulator's demo table is the module's [platforms.webex]");
        let mut driver = Self {
            webex: WebexPlatform::new(settings, Arc::new(WallClock)).unwrap(),
            base,
            sim,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            events_url,
            deliveries,
            admin: String::new(),
            service_user: String::new(),
        };
        driver.admin = driver.user_with_kind("admin");
        driver.service_user = driver.user_with_kind("service");
        driver.control("authorise_service_app", json!({}));
        driver
    }

    fn platform(&self) -> &WebexPlatform {
        &self.webex
    }

    async fn connect_inputs(&self) -> Credentials {
        let mut inputs = Credentials::default();
        inputs.insert(
            credential::SERVICE_APP_REFRESH_TOKEN,
            SecretString::from(self.service_app_refresh_token().await),
        );
        inputs
    }

    fn callback_url(&self) -> String {
        CALLBACK.to_owned()
    }

    /// The admin signs in as the organisation's service user, as the module's docs say.
    fn admin_login(&self) -> String {
        self.service_user.clone()
    }

    /// Webex's consent page: say who signs in, then Accept or Decline.
    async fn consent(
        &self,
        url: &str,
        login: &str,
        accept: bool,
    ) -> Result<Vec<(String, String)>, String> {
        let html = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
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
        fields.push(("email".to_owned(), login.to_owned()));
        fields.push((
            "decision".to_owned(),
            if accept { "accept" } else { "decline" }.to_owned(),
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
        self.sim
            .users()
            .into_iter()
            .map(|user| NativeUser {
                id: ExternalUserId::new(user.id),
                email: user.email,
                display_name: user.display_name,
                kind: match user.kind.as_str() {
                    "guest" => UserKind::Guest,
                    // The service user is the hub's own account, the Service App's a machine.
                    "service" | "app" => UserKind::Bot,
                    "deactivated" => UserKind::Deactivated,
                    _ => UserKind::Member,
                },
            })
            .collect()
    }

    /// The teams' members as the service user (a member of every team) lists them.
    async fn team_members(&self, teams: &[String]) -> std::collections::HashSet<ExternalUserId> {
        let mut members = std::collections::HashSet::new();
        for team in teams {
            let listed = self
                .call(
                    &self.service_user,
                    reqwest::Method::GET,
                    &self.api(&format!("team/memberships?teamId={team}&max=1000")),
                    None,
                )
                .await;
            for member in listed["items"].as_array().unwrap() {
                members.insert(ExternalUserId::new(member["personId"].as_str().unwrap()));
            }
        }
        members
    }

    fn hub_account(&self, connection: &ConnectionContext) -> ExternalUserId {
        ExternalUserId::new(
            connection
                .credentials
                .get(credential::SERVICE_USER_ID)
                .unwrap()
                .expose_secret(),
        )
    }

    async fn read_chat(&self, reader: &NativeUser, chat: &ExternalChatId) -> Vec<SeenMessage> {
        let listing = match Self::place(reader, chat) {
            Place::Room(room) => format!("messages?roomId={room}&max=1000"),
            Place::DirectWith(person) => format!("messages/direct?personId={person}&max=1000"),
        };
        let listed = self
            .call(
                login(reader),
                reqwest::Method::GET,
                &self.api(&listing),
                None,
            )
            .await;
        // Webex lists newest first.
        let mut messages = listed["items"].as_array().cloned().unwrap_or_default();
        messages.reverse();
        messages
            .iter()
            .map(|m| SeenMessage {
                id: m["id"].as_str().unwrap().to_owned(),
                author: ExternalUserId::new(m["personId"].as_str().unwrap()),
                text: m["text"].as_str().unwrap_or_default().to_owned(),
                // Webex has no reactions.
                reactions: Vec::new(),
                mentions: m["mentionedPeople"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .filter_map(Value::as_str)
                    .map(ExternalUserId::new)
                    .collect(),
                replies_to: m["parentId"].as_str().map(str::to_owned),
            })
            .collect()
    }

    async fn post_as(&self, author: &NativeUser, chat: &ExternalChatId, text: &str) -> String {
        let target = match Self::place(author, chat) {
            Place::Room(room) => json!({"roomId": room, "text": text}),
            Place::DirectWith(person) => json!({"toPersonId": person, "text": text}),
        };
        let posted = self
            .call(
                login(author),
                reqwest::Method::POST,
                &self.api("messages"),
                Some(target),
            )
            .await;
        posted["id"].as_str().unwrap().to_owned()
    }

    fn events_url(&self) -> String {
        self.events_url.clone()
    }

    fn deliveries(&self) -> Vec<WebhookRequest> {
        self.deliveries.lock().unwrap().clone()
    }

    /// A delivery is authenticated by `X-Spark-Signature` alone: signed with another secret,
    /// altered after signing, or unsigned, it is a forgery. Webex signs no time, so there is no
    /// stale copy to make.
    fn tamper(&self, _connection: &ConnectionContext, genuine: &WebhookRequest) -> Tampered {
        let with = |body: &[u8], signature: Option<String>| {
            let mut request = genuine.clone();
            request.body = body.to_vec();
            request.headers.remove("x-spark-signature");
            if let Some(signature) = signature {
                request.headers.insert(
                    "x-spark-signature",
                    HeaderValue::from_str(&signature).unwrap(),
                );
            }
            request
        };
        let mut altered: Value = serde_json::from_slice(&genuine.body).unwrap();
        altered["data"]["personId"] = json!("someone-else");
        let altered = serde_json::to_vec(&altered).unwrap();
        let signature = genuine.headers["x-spark-signature"]
            .to_str()
            .unwrap()
            .to_owned();
        Tampered {
            forged: vec![
                with(
                    &genuine.body,
                    Some(sign(
                        &SecretString::from("not the webhook's secret"),
                        &genuine.body,
                    )),
                ),
                with(&altered, Some(signature)),
                with(&genuine.body, None),
            ],
            stale: Vec::new(),
        }
    }

    async fn add_member(&self, email: &str, name: &str, teams: &[String]) -> ExternalUserId {
        let added = self.control(
            "add_person",
            json!({"email": email, "name": name, "teams": teams}),
        );
        ExternalUserId::new(added["id"].as_str().unwrap())
    }

    /// Webex admins deactivate a leaver's account.
    async fn remove_member(&self, _account: &ExternalUserId, email: &str) {
        self.control("deactivate", json!({"email": email}));
    }

    /// The service user revokes the integration's access, and the admin the Service App's in
    /// Control Hub: everything the connection's credentials grant.
    async fn revoke(&self, _connection: &ConnectionContext) {
        self.control("revoke_integration", json!({"email": self.service_user}));
        let revoked = self
            .http
            .post(format!("{}/webex/admin/service-app", self.base))
            .form(&[("email", self.admin.as_str()), ("decision", "revoke")])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 303);
    }

    async fn now(&self) -> Timestamp {
        WallClock.now()
    }

    /// Webex sends no handshake when a webhook is registered.
    fn sends_handshakes(&self) -> bool {
        false
    }
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

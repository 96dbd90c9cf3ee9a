//! The Zoom module against the simulated Zoom (the REST API, Zoom OAuth, Marketplace apps with
//! signed event subscriptions, the Chatbot API): the common compliance suite through
//! [`ZoomDriver`].
//!
//! The driver sets the simulated account up as its admin would, following the module's
//! documentation: on the App Marketplace the account's owner creates the server-to-server app,
//! the user-managed app and the chatbot, and points the server-to-server app's Team Chat events
//! and the chatbot's notifications at the hub's webhook URL, which answers Zoom's URL
//! validation; the hub is then connected by the owner allowing the user-managed app. The
//! module's settings are the simulator's demo table (`ZoomDemo::hub_table`), read by the
//! module's own [`ZoomSettings`]: this is where the two independent readings are held to one
//! table.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_core::{Clock, ExternalChatId, ExternalUserId, Timestamp};
use switchboard_platform::{
    Actor, ChatPlatform, ConnectionContext, Credentials, InboundKind, PlatformError, WebhookRequest,
};
use switchboard_platform_compliance::{
    Connected, Driver, NativeUser, SeenMessage, Tampered, UserKind, compliance_tests,
};
use switchboard_platform_zoom::{ZoomPlatform, ZoomSettings, challenge_answer, sign};
use switchboard_secrets::SecretString;
use switchboard_sim_kit::{
    DemoHub, OrgSpec, Organisation, SimContext, SimPlatform, SimulatedConnect,
};
use switchboard_sim_zoom::{CHATBOT_SECRET_TOKEN, ROBOT_JID, S2S_SECRET_TOKEN, ZoomDemo, ZoomSim};

compliance_tests!(ZoomDriver);

/// Zoom's 1:1 events carry no mentions (`at_items` come with channel events only): a person's
/// mention of the representation in their 1:1 chat is still read as a mention of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_in_a_direct_message_is_read_as_one() {
    let h = Connected::<ZoomDriver>::start().await;
    let representation = h.represent("Nia Elsewhere").await;
    let held = h.subscribe(&[&representation]).await;
    let person = h.members().await.remove(0);
    let text = "Hi @You, look";
    let posted = h
        .driver
        .call(
            login(&person),
            reqwest::Method::POST,
            &h.driver.api("chat/users/me/messages"),
            Some(json!({
                "message": text,
                "to_contact": representation.account.as_str(),
                "at_items": [{"at_contact": representation.account.as_str(), "at_type": 1, "start_position": 3, "end_position": 6}],
            })),
        )
        .await;
    let (_, envelope) = h
        .delivery_announcing(posted["id"].as_str().unwrap(), &held)
        .await;
    let event = h
        .platform()
        .read_event(&h.connection, &envelope, None)
        .await
        .unwrap()
        .expect("a new message is an event to relay");
    let InboundKind::MessagePosted { body, sender, .. } = event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(sender, person.id);
    assert_eq!(body.to_plain_text(), text);
    let mentioned: Vec<&ExternalUserId> = body.mentions().map(|m| &m.user).collect();
    assert_eq!(mentioned, vec![&representation.account]);
}

/// A group chat a person at home on Zoom starts has nobody the hub acts as in it: the hub
/// cannot read it as itself (a chatbot), and reads its members and messages as the writer
/// through the server-to-server app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_the_hub_has_not_seen_is_read_for_its_writer() {
    let h = Connected::<ZoomDriver>::start().await;
    let representation = h.represent("Oto Elsewhere").await;
    let everyone = h.driver.directory().await;
    let represented = everyone
        .iter()
        .find(|user| user.id == representation.account)
        .expect("the representation is a user of the account");
    let (writer, other) = {
        let mut others = everyone
            .iter()
            .filter(|user| user.id != representation.account && user.email.is_some());
        (others.next().unwrap(), others.next().unwrap())
    };
    let channel = h
        .driver
        .call(
            login(writer),
            reqwest::Method::POST,
            &h.driver.api("chat/users/me/channels"),
            Some(json!({
                "name": "Started on Zoom",
                "type": 4,
                "members": [{"email": login(other)}, {"email": login(represented)}],
            })),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let chat = ExternalChatId::new(format!("channel:{channel}"));
    let text = "Hello from a new channel";
    h.driver.post_as(writer, &chat, text).await;

    let platform = h.platform();
    let as_hub = platform
        .chat_members(&h.connection, &Actor::Hub, &chat)
        .await;
    assert!(
        matches!(as_hub, Err(PlatformError::Unsupported(_))),
        "{as_hub:?}"
    );
    let (reader, read) =
        switchboard_platform::members_of_new_chat(platform, &h.connection, &chat, &writer.id)
            .await
            .unwrap();
    assert!(matches!(&reader, Actor::Delegated { account } if *account == writer.id));
    let read: HashSet<ExternalUserId> = read.into_iter().collect();
    let expected: HashSet<ExternalUserId> = [&writer.id, &other.id, &representation.account]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(read, expected);
    let history = platform
        .messages_since(&h.connection, &reader, &chat, 0)
        .await
        .unwrap();
    assert!(
        history.iter().any(|event| matches!(
            &event.kind,
            InboundKind::MessagePosted { body, sender, .. }
                if *sender == writer.id && body.to_plain_text() == text
        )),
        "{history:?}"
    );
}

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
/// The Team Chat events the hub's documentation has the admin subscribe to.
const TEAM_CHAT_EVENTS: [&str; 10] = [
    "team_chat.dm_message_posted",
    "team_chat.dm_message_updated",
    "team_chat.dm_message_deleted",
    "team_chat.dm_reaction_added",
    "team_chat.dm_reaction_removed",
    "team_chat.channel_message_posted",
    "team_chat.channel_message_updated",
    "team_chat.channel_message_deleted",
    "team_chat.channel_reaction_added",
    "team_chat.channel_reaction_removed",
];

/// The simulated Zoom, its account set up for the hub, and a receiver standing in for the
/// hub's webhook.
struct ZoomDriver {
    base: String,
    sim: Arc<ZoomSim>,
    http: reqwest::Client,
    zoom: ZoomPlatform,
    events_url: String,
    deliveries: Arc<Mutex<Vec<WebhookRequest>>>,
    owner: String,
}

/// Where a person's client reads and writes a chat the module named.
enum Place {
    /// `to_contact` or `to_channel`, with its value.
    Api(&'static str, String),
    /// The person's chat with the chatbot, which only the web view shows.
    Bot,
}

fn login(user: &NativeUser) -> &str {
    user.email
        .as_deref()
        .expect("a person signs in with an address")
}

/// The module names a 1:1 chat `dm:A:B` by its two members, a channel `channel:ID` and a
/// person's chat with the chatbot `bot:USER`.
fn place(reader: &NativeUser, chat: &ExternalChatId) -> Place {
    let text = chat.as_str();
    if let Some(pair) = text.strip_prefix("dm:") {
        let (one, other) = pair.split_once(':').expect("dm:A:B");
        let me = reader.id.as_str();
        assert!(
            me == one || me == other,
            "{} is not in {chat}",
            login(reader)
        );
        Place::Api("to_contact", if me == one { other } else { one }.to_owned())
    } else if let Some(channel) = text.strip_prefix("channel:") {
        Place::Api("to_channel", channel.to_owned())
    } else {
        assert_eq!(
            text.strip_prefix("bot:"),
            Some(reader.id.as_str()),
            "{chat}"
        );
        Place::Bot
    }
}

/// The emoji a reaction's `U+…` code points stand for.
fn emoji(codes: &str) -> String {
    codes
        .split(' ')
        .filter_map(|part| u32::from_str_radix(part.trim_start_matches("U+"), 16).ok())
        .filter_map(char::from_u32)
        .collect()
}

fn unescape(html: &str) -> String {
    html.replace("<br>", "\n")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hub's webhook stand-in: records every delivery and answers Zoom's URL validation, with
/// the secret token whose signature the challenge carries, as the module answers it.
async fn receiver(deliveries: Arc<Mutex<Vec<WebhookRequest>>>) -> String {
    async fn receive(
        State(deliveries): State<Arc<Mutex<Vec<WebhookRequest>>>>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let answer = validation_answer(&headers, &body);
        deliveries.lock().unwrap().push(WebhookRequest {
            headers,
            query,
            body: body.to_vec(),
            held_subscriptions: Vec::new(),
        });
        (StatusCode::OK, answer.unwrap_or_default())
    }
    let router = Router::new()
        .route("/events", post(receive))
        .with_state(deliveries);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

fn validation_answer(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let parsed: Value = serde_json::from_slice(body).ok()?;
    if parsed["event"] != "endpoint.url_validation" {
        return None;
    }
    let timestamp = headers.get("x-zm-request-timestamp")?.to_str().ok()?;
    let signature = headers.get("x-zm-signature")?.to_str().ok()?;
    let secret = [S2S_SECRET_TOKEN, CHATBOT_SECRET_TOKEN]
        .into_iter()
        .map(SecretString::from)
        .find(|secret| sign(secret, timestamp, body) == signature)?;
    Some(challenge_answer(
        &secret,
        parsed["payload"]["plainToken"].as_str()?,
    ))
}

impl ZoomDriver {
    fn api(&self, path: &str) -> String {
        format!("{}/zoom/v2/{path}", self.base)
    }

    fn control(&self, action: &str, arguments: Value) -> Value {
        self.sim
            .control(action, arguments)
            .unwrap_or_else(|error| panic!("{action}: {error:?}"))
    }

    /// One of the Marketplace page's forms, posted by the account's owner.
    async fn marketplace(&self, action: &str, fields: &[(&str, &str)]) {
        let response = self
            .http
            .post(format!("{}/zoom/admin/{action}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 303, "the Marketplace refused {action}: {text}");
    }

    /// A call of a person's own Zoom app.
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

    fn ids_by_address(&self) -> HashMap<String, ExternalUserId> {
        self.sim
            .users()
            .into_iter()
            .filter_map(|user| Some((user.email?.to_lowercase(), ExternalUserId::new(user.id))))
            .collect()
    }

    /// The person's chat with the chatbot, as their web view shows it.
    async fn read_bot_chat(&self, reader: &NativeUser) -> Vec<SeenMessage> {
        let live: Value = self
            .http
            .get(format!("{}/zoom/chat/live?bot=1", self.base))
            .header("cookie", format!("sb_zoom_user={}", login(reader)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        live["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|message| {
                let html = message["html"].as_str().unwrap_or_default();
                let sender = html
                    .split("<span class=\"sender\">")
                    .nth(1)
                    .and_then(|rest| rest.split("</span>").next())
                    .unwrap_or_default();
                let text = html
                    .split("</span><div>")
                    .nth(1)
                    .and_then(|rest| rest.split("</div>").next())
                    .unwrap_or_default();
                SeenMessage {
                    id: message["id"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches('m')
                        .to_owned(),
                    author: if sender == "Switchboard" {
                        ExternalUserId::new(ROBOT_JID)
                    } else {
                        reader.id.clone()
                    },
                    text: unescape(text),
                    reactions: Vec::new(),
                    mentions: Vec::new(),
                    replies_to: None,
                }
            })
            .collect()
    }
}

#[async_trait]
impl Driver for ZoomDriver {
    type Platform = ZoomPlatform;

    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let context = SimContext::new(base.clone(), false);
        // Deliveries are retried at once rather than after Zoom's minutes.
        context.webhooks.set_time_scale(0.0);
        let sim = ZoomSim::new(context);
        // Enough people that an import takes several pages of 20.
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
        let mut table = ZoomDemo.hub_table(&base, &hub, None).unwrap();
        // Small pages, so that an import needs several.
        table["page_size"] = json!(20);
        let settings: ZoomSettings = serde_json::from_value(table)
            .expect("the simulator's demo table is the module's [platforms.zoom]");
        let owner = sim
            .users()
            .into_iter()
            .find(|user| user.kind == "owner")
            .and_then(|user| user.email)
            .expect("the account has an owner");
        let driver = Self {
            zoom: ZoomPlatform::new(settings, Arc::new(WallClock)).unwrap(),
            base,
            sim,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            events_url,
            deliveries,
            owner,
        };
        for app in ["server_to_server", "user", "chatbot"] {
            driver
                .marketplace("apps", &[("email", driver.owner.as_str()), ("app", app)])
                .await;
        }
        let mut subscription = vec![
            ("email", driver.owner.as_str()),
            ("app", "server_to_server"),
            ("url", driver.events_url.as_str()),
        ];
        subscription.extend(TEAM_CHAT_EVENTS.iter().map(|event| ("event", *event)));
        driver.marketplace("events", &subscription).await;
        driver
            .marketplace(
                "events",
                &[
                    ("email", driver.owner.as_str()),
                    ("app", "chatbot"),
                    ("url", driver.events_url.as_str()),
                    ("event", "bot_notification"),
                ],
            )
            .await;
        driver
    }

    fn platform(&self) -> &ZoomPlatform {
        &self.zoom
    }

    /// Nothing to type in: the apps' credentials are the module's settings.
    async fn connect_inputs(&self) -> Credentials {
        Credentials::default()
    }

    fn callback_url(&self) -> String {
        CALLBACK.to_owned()
    }

    /// The account's owner connects the hub, as the module's docs say.
    fn admin_login(&self) -> String {
        self.owner.clone()
    }

    /// Zoom's consent page: say who signs in, then Allow or Decline.
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
            if accept { "allow" } else { "decline" }.to_owned(),
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
                    "deactivated" => UserKind::Deactivated,
                    // The owner and admins are people of the account like the members.
                    _ => UserKind::Member,
                },
            })
            .collect()
    }

    /// The hub writes as its chatbot.
    fn hub_account(&self, _connection: &ConnectionContext) -> ExternalUserId {
        ExternalUserId::new(ROBOT_JID)
    }

    async fn read_chat(&self, reader: &NativeUser, chat: &ExternalChatId) -> Vec<SeenMessage> {
        let (field, target) = match place(reader, chat) {
            Place::Bot => return self.read_bot_chat(reader).await,
            Place::Api(field, target) => (field, target),
        };
        let ids = self.ids_by_address();
        let id_of = |address: &Value| {
            address
                .as_str()
                .and_then(|address| ids.get(&address.to_lowercase()))
                .cloned()
        };
        let mut messages = Vec::new();
        let mut next = String::new();
        loop {
            let mut url = reqwest::Url::parse(&self.api("chat/users/me/messages")).unwrap();
            url.query_pairs_mut()
                .append_pair(field, &target)
                .append_pair("from", "2000-01-01T00:00:00Z")
                .append_pair("page_size", "50");
            if !next.is_empty() {
                url.query_pairs_mut().append_pair("next_page_token", &next);
            }
            let page = self
                .call(login(reader), reqwest::Method::GET, url.as_str(), None)
                .await;
            messages.extend(page["messages"].as_array().cloned().unwrap_or_default());
            next = page["next_page_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if next.is_empty() {
                break;
            }
        }
        // Zoom lists newest first.
        messages.reverse();
        messages
            .iter()
            .map(|m| SeenMessage {
                id: m["id"].as_str().unwrap().to_owned(),
                author: id_of(&m["sender"]).expect("a user of the account wrote it"),
                text: m["message"].as_str().unwrap_or_default().to_owned(),
                reactions: m["reactions"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .flat_map(|reaction| {
                        let count = reaction["total_count"].as_u64().unwrap_or(1) as usize;
                        std::iter::repeat_n(
                            emoji(reaction["emoji"].as_str().unwrap_or_default()),
                            count,
                        )
                    })
                    .collect(),
                mentions: m["at_items"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .filter_map(|item| id_of(&item["at_contact"]))
                    .collect(),
                replies_to: m["reply_main_message_id"].as_str().map(str::to_owned),
            })
            .collect()
    }

    async fn post_as(&self, author: &NativeUser, chat: &ExternalChatId, text: &str) -> String {
        let Place::Api(field, target) = place(author, chat) else {
            panic!("people write to the chatbot in the web view only")
        };
        let posted = self
            .call(
                login(author),
                reqwest::Method::POST,
                &self.api("chat/users/me/messages"),
                Some(json!({"message": text, field: target})),
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

    /// A delivery is authenticated by `x-zm-signature` over the time and the body: signed with
    /// another secret, altered after signing, or unsigned, it is a forgery; signed correctly an
    /// hour ago, it is stale.
    fn tamper(&self, _connection: &ConnectionContext, genuine: &WebhookRequest) -> Tampered {
        let with = |body: &[u8], timestamp: &str, signature: Option<String>| {
            let mut request = genuine.clone();
            request.body = body.to_vec();
            request.headers.insert(
                "x-zm-request-timestamp",
                HeaderValue::from_str(timestamp).unwrap(),
            );
            request.headers.remove("x-zm-signature");
            if let Some(signature) = signature {
                request
                    .headers
                    .insert("x-zm-signature", HeaderValue::from_str(&signature).unwrap());
            }
            request
        };
        let timestamp = genuine.headers["x-zm-request-timestamp"]
            .to_str()
            .unwrap()
            .to_owned();
        let signature = genuine.headers["x-zm-signature"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut altered: Value = serde_json::from_slice(&genuine.body).unwrap();
        altered["payload"]["operator_id"] = json!("someone-else");
        let altered = serde_json::to_vec(&altered).unwrap();
        let secret = SecretString::from(S2S_SECRET_TOKEN);
        let an_hour_ago = (timestamp.parse::<i64>().unwrap() - 3600).to_string();
        Tampered {
            forged: vec![
                with(
                    &genuine.body,
                    &timestamp,
                    Some(sign(
                        &SecretString::from("not the app's secret token"),
                        &timestamp,
                        &genuine.body,
                    )),
                ),
                with(&altered, &timestamp, Some(signature.clone())),
                with(&genuine.body, &an_hour_ago, Some(signature)),
                with(&genuine.body, &timestamp, None),
            ],
            stale: vec![with(
                &genuine.body,
                &an_hour_ago,
                Some(sign(&secret, &an_hour_ago, &genuine.body)),
            )],
        }
    }

    async fn add_member(&self, email: &str, name: &str, _teams: &[String]) -> ExternalUserId {
        let added = self.control("add_user", json!({"email": email, "name": name}));
        ExternalUserId::new(added["id"].as_str().unwrap())
    }

    /// Zoom admins deactivate a leaver's account.
    async fn remove_member(&self, _account: &ExternalUserId, email: &str) {
        self.control("deactivate", json!({"email": email}));
    }

    /// The simulator does not simulate removing an app; what it offers that withdraws
    /// everything the connection's credentials grant is deactivating the admin who created the
    /// apps, whose account the apps' tokens act for.
    async fn revoke(&self, _connection: &ConnectionContext) {
        self.control("deactivate", json!({"email": self.owner}));
    }

    async fn now(&self) -> Timestamp {
        WallClock.now()
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

//! The Slack module against the simulated Slack: the common compliance suite through
//! [`SlackDriver`], and what only Slack does (configuration-token rotation, per-app signing
//! secrets, its admin-approved bots, its own events and rate-limit tiers) in tests of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_core::{Clock, Email, ExternalChatId, ExternalUserId, Platform, Timestamp};
use switchboard_platform::{
    Actor, ChatKind, ChatPlatform, ConnectionContext, Credentials, FlowContext, FlowOutcome,
    FlowStep, ImportRequest, InboundEvent, InboundKind, OutboundMessage, PlatformError, Prompt,
    ProvisionRequest, Provisioning, RetryPolicy, WebhookRequest, WebhookVerdict,
};
use switchboard_platform_compliance::{
    Connected, Driver, NativeUser, SeenMessage, Tampered, UserKind, compliance_tests,
};
use switchboard_platform_slack::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use switchboard_platform_slack::{
    HUB_BOT_SCOPES, SlackPlatform, SlackSettings, app_signing_secret_name, credential,
};
use switchboard_secrets::{ExposeSecret, SecretString};
use switchboard_sim::{SimConfig, Simulator};

compliance_tests!(SlackDriver);

/// The test's wall clock, standing in for the hub's: webhook timestamps come from the
/// simulator's real clock.
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

struct FixedClock(i64);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0 * 1000)
    }
}

#[derive(Clone)]
struct Captured {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Captured {
    fn request(&self) -> WebhookRequest {
        WebhookRequest {
            headers: self.headers.clone(),
            query: None,
            body: self.body.clone(),
            held_subscriptions: Vec::new(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

type Inbox = Arc<Mutex<Vec<Captured>>>;

/// The hub's Request URL stand-in: records every delivery and answers challenges.
async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> String {
    let captured = Captured {
        headers,
        body: body.to_vec(),
    };
    let challenge = captured.json()["challenge"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    inbox.lock().unwrap().push(captured);
    challenge
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sim_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Value {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// A Web API call made by someone other than the module (a person's own client, the operator).
async fn slack_api(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    token: &str,
    form: &[(&str, &str)],
) -> Value {
    http.post(format!("{base}/slack/api/{method}"))
        .bearer_auth(token)
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Signs in to the simulated Slack as `email` and generates app configuration tokens on the
/// app settings page, as an admin would in a browser.
async fn configuration_tokens(http: &reqwest::Client, base: &str, email: &str) -> (String, String) {
    let signed_in = http
        .post(format!("{base}/slack/signin"))
        .form(&[("email", email)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .post(format!("{base}/slack/apps/tokens"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = between(&page, "<code id=\"access-token\">", "</code>").unwrap();
    let refresh = between(&page, "<code id=\"refresh-token\">", "</code>").unwrap();
    (unescape(token), unescape(refresh))
}

/// Follows a consent link as a browser: reads the page's form, fills in who is signed in and
/// presses `decision`. Returns the page when it did not redirect, else the callback's query.
async fn consent(
    http: &reqwest::Client,
    url: &str,
    email: &str,
    decision: &str,
) -> Result<Vec<(String, String)>, String> {
    let page = http.get(url).send().await.unwrap().text().await.unwrap();
    let form = between(&page, "<form method=\"post\"", "</form>").expect("a consent form");
    let action = unescape(between(form, "action=\"", "\"").unwrap());
    let mut fields: Vec<(String, String)> = form
        .split("<input ")
        .skip(1)
        .filter(|input| input.contains("type=\"hidden\""))
        .map(|input| {
            (
                unescape(between(input, "name=\"", "\"").unwrap()),
                unescape(between(input, "value=\"", "\"").unwrap()),
            )
        })
        .collect();
    fields.push(("email".into(), email.into()));
    fields.push(("decision".into(), decision.into()));
    let origin = &url[..url[8..].find('/').unwrap() + 8];
    let answer = http
        .post(format!("{origin}{action}"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    if answer.status() != reqwest::StatusCode::FOUND {
        return Err(answer.text().await.unwrap());
    }
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    Ok(form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect())
}

fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(20),
        max_wait: Duration::from_secs(5),
    }
}

fn inputs(token: &str, refresh: &str) -> Credentials {
    let mut inputs = Credentials::default();
    inputs.insert(
        credential::APP_CONFIGURATION_TOKEN,
        SecretString::from(token),
    );
    inputs.insert(
        credential::APP_CONFIGURATION_REFRESH_TOKEN,
        SecretString::from(refresh),
    );
    inputs
}

/// The simulated Slack with the hub's app created by its operator, and a receiver standing in
/// for the hub's Request URL.
struct SlackDriver {
    base: String,
    http: reqwest::Client,
    inbox: Inbox,
    admin: String,
    redirect_url: String,
    events_url: String,
    platform: SlackPlatform,
    hub_signing_secret: String,
    hub_app_id: String,
}

type World = Connected<SlackDriver>;

async fn world(people: usize, rate_limits: bool) -> World {
    Connected::with(SlackDriver::launch(people, rate_limits).await).await
}

impl SlackDriver {
    async fn launch(people: usize, rate_limits: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let simulator = Simulator::new(SimConfig {
            base_url: base.clone(),
            people,
            rate_limits,
            state_file: None,
            platforms: None,
        })
        .unwrap();
        let router = simulator.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let inbox: Inbox = Arc::default();
        let receiver = serve(
            axum::Router::new()
                .route("/events", post(receive))
                .with_state(inbox.clone()),
        )
        .await;
        let http = browser();
        sim_json(
            &http,
            reqwest::Method::PUT,
            format!("{base}/_sim/settings"),
            Some(json!({"webhook_time_scale": 0.001})),
        )
        .await;
        let users = sim_json(
            &http,
            reqwest::Method::GET,
            format!("{base}/_sim/users?platform=slack"),
            None,
        )
        .await;
        let admin = users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["kind"] == "primary_owner")
            .unwrap()["email"]
            .as_str()
            .unwrap()
            .to_owned();

        // The operator creates the hub's own app once (on Slack: from a manifest at api.slack.com).
        let events_url = format!("{receiver}/events");
        let redirect_url = format!("{receiver}/oauth/callback");
        let (operator_token, _) = configuration_tokens(&http, &base, &admin).await;
        let manifest = json!({
            "display_information": {"name": "Switchboard"},
            "features": {"bot_user": {"display_name": "Switchboard", "always_online": true}},
            "oauth_config": {"redirect_urls": [redirect_url], "scopes": {"bot": HUB_BOT_SCOPES}},
            "settings": {"event_subscriptions": {"request_url": events_url,
                "bot_events": ["team_join", "user_change", "message.im"]}},
        });
        let created = slack_api(
            &http,
            &base,
            "apps.manifest.create",
            &operator_token,
            &[("manifest", &manifest.to_string())],
        )
        .await;
        assert_eq!(created["ok"], true, "{created}");
        let hub_signing_secret = created["credentials"]["signing_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let settings: SlackSettings = serde_json::from_value(json!({
            "api_base_url": format!("{base}/slack"),
            "client_id": created["credentials"]["client_id"],
            "client_secret": created["credentials"]["client_secret"],
            "signing_secret": hub_signing_secret,
            "events_url": events_url,
            "redirect_url": redirect_url,
            "request_timeout_secs": 10,
        }))
        .unwrap();
        let platform = SlackPlatform::new(settings, Arc::new(WallClock))
            .unwrap()
            .with_retry_policy(fast_retries());
        Self {
            hub_app_id: created["app_id"].as_str().unwrap().to_owned(),
            base,
            http,
            inbox,
            admin,
            redirect_url,
            events_url,
            platform,
            hub_signing_secret,
        }
    }

    async fn users(&self) -> Vec<Value> {
        sim_json(
            &self.http,
            reqwest::Method::GET,
            format!("{}/_sim/users?platform=slack", self.base),
            None,
        )
        .await
        .as_array()
        .unwrap()
        .clone()
    }

    /// A person's own Slack client token.
    async fn person_token(&self, email: &str) -> String {
        sim_json(
            &self.http,
            reqwest::Method::POST,
            format!("{}/_sim/token", self.base),
            Some(json!({"platform": "slack", "email": email})),
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn api(&self, method: &str, token: &str, form: &[(&str, &str)]) -> Value {
        slack_api(&self.http, &self.base, method, token, form).await
    }

    async fn log(&self, path: &str) -> Vec<u16> {
        let entries = sim_json(
            &self.http,
            reqwest::Method::GET,
            format!("{}/_sim/log?kind=request&limit=10000", self.base),
            None,
        )
        .await;
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["target"].as_str().is_some_and(|t| t.starts_with(path)))
            .map(|e| e["status"].as_u64().unwrap() as u16)
            .collect()
    }

    async fn faults(&self, rules: Value) {
        sim_json(
            &self.http,
            reqwest::Method::PUT,
            format!("{}/_sim/faults", self.base),
            Some(rules),
        )
        .await;
    }

    /// Waits (bounded) for a delivery matching `pick`.
    async fn delivery(&self, pick: impl Fn(&Value) -> bool) -> Captured {
        for _ in 0..500 {
            if let Some(found) = self
                .inbox
                .lock()
                .unwrap()
                .iter()
                .find(|c| pick(&c.json()))
                .cloned()
            {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no matching delivery arrived");
    }
}

#[async_trait]
impl Driver for SlackDriver {
    type Platform = SlackPlatform;

    /// 500 people put about 300 on Slack: two pages of Slack's 200.
    async fn start() -> Self {
        Self::launch(500, false).await
    }

    fn platform(&self) -> &SlackPlatform {
        &self.platform
    }

    /// The workspace admin pastes configuration tokens generated for the occasion.
    async fn connect_inputs(&self) -> Credentials {
        let (token, refresh) = configuration_tokens(&self.http, &self.base, &self.admin).await;
        inputs(&token, &refresh)
    }

    fn callback_url(&self) -> String {
        self.redirect_url.clone()
    }

    fn admin_login(&self) -> String {
        self.admin.clone()
    }

    async fn consent(
        &self,
        url: &str,
        login: &str,
        accept: bool,
    ) -> Result<Vec<(String, String)>, String> {
        let decision = if accept { "allow" } else { "cancel" };
        consent(&self.http, url, login, decision).await
    }

    async fn directory(&self) -> Vec<NativeUser> {
        self.users()
            .await
            .iter()
            .map(|user| NativeUser {
                id: ExternalUserId::new(user["id"].as_str().unwrap()),
                email: user["email"].as_str().map(str::to_owned),
                display_name: user["display_name"].as_str().unwrap().to_owned(),
                kind: match user["kind"].as_str().unwrap() {
                    "bot" => UserKind::Bot,
                    "deactivated" => UserKind::Deactivated,
                    "guest" => UserKind::Guest,
                    _ => UserKind::Member,
                },
            })
            .collect()
    }

    fn hub_account(&self, connection: &ConnectionContext) -> ExternalUserId {
        ExternalUserId::new(hub_bot(connection))
    }

    /// The channel's history, each message followed by the replies in its thread.
    async fn read_chat(&self, reader: &NativeUser, chat: &ExternalChatId) -> Vec<SeenMessage> {
        let token = self.person_token(reader.email.as_deref().unwrap()).await;
        let history = self
            .api(
                "conversations.history",
                &token,
                &[("channel", chat.as_str())],
            )
            .await;
        let mut seen = Vec::new();
        for message in history["messages"].as_array().unwrap().iter().rev() {
            let ts = message["ts"].as_str().unwrap();
            seen.push(seen_message(message));
            let replies = self
                .api(
                    "conversations.replies",
                    &token,
                    &[("channel", chat.as_str()), ("ts", ts)],
                )
                .await;
            let thread = replies["messages"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            seen.extend(
                thread
                    .iter()
                    .filter(|reply| reply["ts"] != ts)
                    .map(seen_message),
            );
        }
        seen
    }

    async fn post_as(&self, author: &NativeUser, chat: &ExternalChatId, text: &str) -> String {
        let token = self.person_token(author.email.as_deref().unwrap()).await;
        let sent = self
            .api(
                "chat.postMessage",
                &token,
                &[("channel", chat.as_str()), ("text", text)],
            )
            .await;
        sent["ts"].as_str().unwrap().to_owned()
    }

    fn events_url(&self) -> String {
        self.events_url.clone()
    }

    fn deliveries(&self) -> Vec<WebhookRequest> {
        self.inbox
            .lock()
            .unwrap()
            .iter()
            .map(Captured::request)
            .collect()
    }

    /// Slack's replay protection is its five-minute window: a replay is a stale delivery.
    fn tamper(&self, connection: &ConnectionContext, genuine: &WebhookRequest) -> Tampered {
        let name = self.platform.webhook_secret_name(genuine);
        let secret = connection
            .credentials
            .iter()
            .find(|(held, _)| Some(*held) == name.as_deref())
            .map_or(self.hub_signing_secret.clone(), |(_, secret)| {
                secret.expose_secret().to_owned()
            });
        let now = WallClock.now().unix_millis() / 1000;
        let body = &genuine.body;
        let mut altered = signed(&secret, now, body);
        let last = altered.body.len() - 2;
        altered.body[last] ^= 1;
        let mut unsigned = signed(&secret, now, body);
        unsigned.headers.remove(SIGNATURE_HEADER);
        Tampered {
            forged: vec![signed("wrong", now, body), altered, unsigned],
            stale: vec![
                signed(&secret, now - 301, body),
                signed(&secret, now + 301, body),
            ],
        }
    }

    async fn add_member(&self, email: &str, name: &str, _teams: &[String]) -> ExternalUserId {
        let added = sim_json(
            &self.http,
            reqwest::Method::POST,
            format!("{}/_sim/slack/members", self.base),
            Some(json!({"email": email, "real_name": name})),
        )
        .await;
        ExternalUserId::new(added["id"].as_str().unwrap())
    }

    /// Slack deactivates a member who leaves; the account stays, flagged deleted.
    async fn remove_member(&self, account: &ExternalUserId, _email: &str) {
        sim_json(
            &self.http,
            reqwest::Method::POST,
            format!("{}/_sim/slack/deactivate", self.base),
            Some(json!({"user": account.as_str()})),
        )
        .await;
    }

    /// An admin uninstalls the hub's app (its bot token dies) and the configuration tokens are
    /// rotated by someone else (the connection's refresh token is spent).
    async fn revoke(&self, connection: &ConnectionContext) {
        sim_json(
            &self.http,
            reqwest::Method::POST,
            format!("{}/_sim/slack/uninstall", self.base),
            Some(json!({"app": self.hub_app_id})),
        )
        .await;
        let refresh = connection
            .credentials
            .get(credential::APP_CONFIGURATION_REFRESH_TOKEN)
            .unwrap()
            .expose_secret()
            .to_owned();
        let rotated: Value = self
            .http
            .post(format!("{}/slack/api/tooling.tokens.rotate", self.base))
            .form(&[("refresh_token", refresh.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(rotated["ok"], true, "{rotated}");
    }

    async fn now(&self) -> Timestamp {
        WallClock.now()
    }
}

/// A message of `conversations.history` or `conversations.replies` as its reader sees it.
fn seen_message(message: &Value) -> SeenMessage {
    let text = unescape(message["text"].as_str().unwrap_or_default());
    let mentions = text
        .split("<@")
        .skip(1)
        .filter_map(|rest| rest.split_once('>'))
        .map(|(id, _)| ExternalUserId::new(id))
        .collect();
    let reactions = message["reactions"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .flat_map(|reaction| {
            let name = reaction["name"].as_str().unwrap();
            let emoji = emojis::get_by_shortcode(name)
                .map_or_else(|| name.to_owned(), |e| e.as_str().to_owned());
            let count = reaction["count"].as_u64().unwrap_or(1) as usize;
            std::iter::repeat_n(emoji, count)
        })
        .collect();
    let ts = message["ts"].as_str().unwrap();
    SeenMessage {
        id: ts.to_owned(),
        author: ExternalUserId::new(message["user"].as_str().unwrap_or_default()),
        text,
        reactions,
        mentions,
        replies_to: message["thread_ts"]
            .as_str()
            .filter(|parent| *parent != ts)
            .map(str::to_owned),
    }
}

fn hub_bot(connection: &ConnectionContext) -> String {
    connection
        .credentials
        .get(credential::BOT_USER_ID)
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// Provisions a bot for `name` and has the admin approve it.
async fn bot(world: &World, name: &str) -> (ExternalUserId, Credentials) {
    let request = ProvisionRequest {
        display_name: name.into(),
        email: Email::parse(&format!(
            "{}@elsewhere.example",
            name.to_lowercase().replace(' ', ".")
        ))
        .unwrap(),
        avatar_url: None,
        existing_account: None,
        primary_platform: None,
    };
    let Provisioning::AwaitingConsent { url, state, .. } = world
        .platform
        .provision_representation(&world.connection, &request)
        .await
        .unwrap()
    else {
        panic!("a Slack bot awaits an admin's consent")
    };
    let flow = FlowContext {
        callback_url: param(&url, "redirect_uri"),
        state: param(&url, "state"),
    };
    assert_eq!(flow.callback_url, world.redirect_url);
    let callback = consent(&world.http, &url, &world.admin, "allow")
        .await
        .unwrap();
    match world
        .platform
        .continue_flow(Some(&world.connection), &state, &flow, &callback)
        .await
        .unwrap()
    {
        FlowStep::Done(FlowOutcome::Authorized {
            account,
            credentials,
        }) => (account, credentials),
        other => panic!("expected Authorized, got {other:?}"),
    }
}

fn member(users: &[Value], n: usize) -> (ExternalUserId, String) {
    let person = users
        .iter()
        .filter(|u| u["kind"] == "member")
        .nth(n)
        .unwrap();
    (
        ExternalUserId::new(person["id"].as_str().unwrap()),
        person["email"].as_str().unwrap().to_owned(),
    )
}

fn text(body: &str) -> OutboundMessage {
    OutboundMessage {
        body: switchboard_platform_slack::markup::parse(body),
        thread: None,
        idempotency_key: None,
    }
}

/// What only Slack's connection does: the hub app's bot in the workspace, configuration tokens
/// that expire in 12 hours and rotate (spending the old refresh token), bot tokens that do not
/// expire, and connect inputs that are spent once used.
#[tokio::test]
async fn connecting_installs_the_hub_app_and_keeps_fresh_configuration_tokens() {
    let world = world(40, false).await;
    let platform = &world.platform;
    assert_eq!(world.connection.connection.tenant.as_str(), "T00000001");
    assert_eq!(world.connection.connection.display_name, "Acme");
    let credentials = &world.connection.credentials;
    for name in [
        credential::BOT_TOKEN,
        credential::BOT_USER_ID,
        credential::APP_CONFIGURATION_TOKEN,
        credential::APP_CONFIGURATION_REFRESH_TOKEN,
    ] {
        assert!(credentials.get(name).is_ok(), "{name}");
    }
    let expires = credentials.expires_at().unwrap().unix_millis();
    let now = WallClock.now().unix_millis();
    assert!(
        (expires - now - 12 * 3600 * 1000).abs() < 60_000,
        "expires in about 12 h"
    );
    assert_eq!(platform.connect_fields().len(), 2);

    let health = platform.check_health(&world.connection).await.unwrap();
    // Named for the admin: the bot user in its workspace, with its id.
    assert!(
        health
            .identity
            .ends_with(&format!(" ({})", hub_bot(&world.connection)))
            && health.identity.contains(" in "),
        "{health:?}"
    );
    for scope in HUB_BOT_SCOPES {
        assert!(health.scopes.iter().any(|s| s == scope), "{scope}");
    }

    // Rotation: new configuration tokens, the same bot token; the old refresh token is spent.
    let renewed = platform
        .refresh(&world.connection, credentials)
        .await
        .unwrap();
    let old = credentials
        .get(credential::APP_CONFIGURATION_TOKEN)
        .unwrap()
        .expose_secret();
    let new = renewed
        .get(credential::APP_CONFIGURATION_TOKEN)
        .unwrap()
        .expose_secret();
    assert_ne!(old, new);
    assert_eq!(
        renewed.get(credential::BOT_TOKEN).unwrap().expose_secret(),
        credentials
            .get(credential::BOT_TOKEN)
            .unwrap()
            .expose_secret()
    );
    assert!(matches!(
        platform.refresh(&world.connection, credentials).await,
        Err(PlatformError::Unauthorized(_))
    ));
    platform.refresh(&world.connection, &renewed).await.unwrap();

    // A bot's credentials do not expire: they come back unchanged while they work, and a
    // revoked (or unknown) token is refused.
    let mut bot = Credentials::default();
    bot.insert(
        credential::BOT_TOKEN,
        renewed.get(credential::BOT_TOKEN).unwrap().clone(),
    );
    let same = platform.refresh(&world.connection, &bot).await.unwrap();
    assert_eq!(
        same.get(credential::BOT_TOKEN).unwrap().expose_secret(),
        renewed.get(credential::BOT_TOKEN).unwrap().expose_secret()
    );
    assert_eq!(same.expires_at(), None);
    let mut revoked = Credentials::default();
    revoked.insert(credential::BOT_TOKEN, SecretString::from("xoxb-unknown"));
    assert!(matches!(
        platform.refresh(&world.connection, &revoked).await,
        Err(PlatformError::Unauthorized(_))
    ));

    // Configuration tokens pasted once are spent by connecting; none at all are named.
    let (token, refresh) = configuration_tokens(&world.http, &world.base, &world.admin).await;
    let flow = FlowContext {
        callback_url: world.redirect_url.clone(),
        state: "connect-2".into(),
    };
    let FlowStep::Redirect { url, .. } = platform
        .begin_connect(&inputs(&token, &refresh), &flow)
        .await
        .unwrap()
    else {
        panic!("a redirect")
    };
    assert_eq!(param(&url, "state"), "connect-2");
    assert_eq!(param(&url, "redirect_uri"), world.redirect_url);
    assert!(matches!(
        platform
            .begin_connect(&inputs(&token, &refresh), &flow)
            .await,
        Err(PlatformError::Unauthorized(_))
    ));
    assert!(matches!(
        platform.begin_connect(&Credentials::default(), &flow).await,
        Err(PlatformError::MissingCredential(_))
    ));
}

/// Slack's pages hold at most 200 users; the simulated organisation of 2,200 people has 1,042
/// of them on Slack (9 in every 19), two seeded bots besides the hub's, and one deactivated
/// former colleague.
#[tokio::test]
async fn importing_pages_of_two_hundred_include_the_hub_bot() {
    let world = world(2200, false).await;
    let mut users = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = world
            .platform
            .import_users(
                &world.connection,
                &ImportRequest {
                    teams: Vec::new(),
                    cursor,
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.users.len() <= 200);
        users.extend(page.users);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, users.len().div_ceil(200));
    let humans = users.iter().filter(|u| !u.is_bot && !u.deactivated).count();
    let people_on_slack = world
        .directory()
        .await
        .iter()
        .filter(|user| matches!(user.kind, UserKind::Member | UserKind::Guest))
        .count();
    assert_eq!(humans, people_on_slack);
    assert!(humans >= 1_000, "enough people for several pages: {humans}");
    let bots: Vec<_> = users.iter().filter(|u| u.is_bot).collect();
    assert_eq!(bots.len(), 3, "{bots:?}");
    assert!(
        bots.iter()
            .any(|u| u.id.as_str() == hub_bot(&world.connection))
    );
    let gone: Vec<_> = users.iter().filter(|u| u.deactivated).collect();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].display_name, "Former Colleague");
    assert!(users.iter().all(|u| !u.is_guest));
}

/// A prompt's link is Slack's own link markup, labelled "Sync now".
#[tokio::test]
async fn prompts_link_with_slacks_markup() {
    let world = world(40, false).await;
    let users = world.users().await;
    let (id, email) = member(&users, 0);
    let prompt = Prompt {
        text: "Your colleagues on Teams want to chat with you.".into(),
        link: "https://hub.example/sync/abc?x=1&y=2".into(),
    };
    world
        .platform
        .send_prompt(&world.connection, &id, &prompt)
        .await
        .unwrap();
    let token = world.person_token(&email).await;
    let opened = world
        .api(
            "conversations.open",
            &token,
            &[("users", &hub_bot(&world.connection))],
        )
        .await;
    let channel = opened["channel"]["id"].as_str().unwrap();
    let history = world
        .api("conversations.history", &token, &[("channel", channel)])
        .await;
    let text = history["messages"][0]["text"].as_str().unwrap();
    assert!(text.starts_with(&prompt.text), "{text}");
    assert!(
        text.contains(&format!("<{}|Sync now>", prompt.link)),
        "{text}"
    );
}

/// What only Slack's bots do: each is an app an admin approves (a member cannot), whose
/// consent link the hub may rebind; it signs its own events with its own secret; reactions are
/// Slack names; and removing it deletes its app.
#[tokio::test]
async fn a_bot_is_an_app_the_admin_approves() {
    let world = world(40, false).await;
    let users = world.users().await;
    let (human, human_email) = member(&users, 1);
    let (other, _) = member(&users, 2);

    // A member who is not an admin cannot approve: the page explains and stays.
    let request = ProvisionRequest {
        display_name: "Bob Teams".into(),
        email: Email::parse("bob@elsewhere.example").unwrap(),
        avatar_url: None,
        existing_account: None,
        primary_platform: None,
    };
    let Provisioning::AwaitingConsent {
        url,
        state,
        created,
    } = world
        .platform
        .provision_representation(&world.connection, &request)
        .await
        .unwrap()
    else {
        panic!("consent first")
    };
    let refused = consent(&world.http, &url, &human_email, "allow")
        .await
        .unwrap_err();
    assert!(refused.contains("admin"), "{refused}");
    // The hub may rebind the consent link to a flow of its own.
    let own = FlowContext {
        callback_url: format!("{}?flow=7", world.redirect_url),
        state: "hub-flow-7".into(),
    };
    let FlowStep::Redirect {
        url: rebound,
        state: rebound_state,
    } = world
        .platform
        .continue_flow(Some(&world.connection), &state, &own, &[])
        .await
        .unwrap()
    else {
        panic!("a redirect")
    };
    assert_eq!(param(&rebound, "state"), "hub-flow-7");
    let callback = consent(&world.http, &rebound, &world.admin, "allow")
        .await
        .unwrap();
    let FlowStep::Done(FlowOutcome::Authorized {
        account: bob,
        credentials: bob_credentials,
    }) = world
        .platform
        .continue_flow(Some(&world.connection), &rebound_state, &own, &callback)
        .await
        .unwrap()
    else {
        panic!("authorized")
    };
    assert!(bob.as_str().starts_with('U'));
    assert_eq!(
        created.get(credential::APP_ID).unwrap().expose_secret(),
        bob_credentials
            .get(credential::APP_ID)
            .unwrap()
            .expose_secret(),
        "what AwaitingConsent names is the app being approved"
    );

    let (account, credentials) = bot(&world, "Alice Teams").await;
    for name in [
        credential::BOT_TOKEN,
        credential::APP_ID,
        credential::CLIENT_ID,
        credential::CLIENT_SECRET,
        credential::SIGNING_SECRET,
    ] {
        assert!(credentials.get(name).is_ok(), "{name}");
    }
    let alice = Actor::Representation {
        account: account.clone(),
        credentials: credentials.clone(),
    };
    // Slack adds the caller to its own chats: naming it among the members changes nothing.
    let chat = world
        .platform
        .open_chat(&world.connection, &alice, &[human.clone(), account.clone()])
        .await
        .unwrap();
    let group = world
        .platform
        .open_chat(&world.connection, &alice, &[human.clone(), other.clone()])
        .await
        .unwrap();

    let posted = world
        .platform
        .post_message(&world.connection, &alice, &chat, &text("Hello from Teams"))
        .await
        .unwrap();
    world
        .platform
        .set_reaction(&world.connection, &alice, &posted, "👍", true)
        .await
        .unwrap();
    let token = world.person_token(&human_email).await;
    let seen = world
        .api(
            "conversations.history",
            &token,
            &[("channel", chat.as_str())],
        )
        .await;
    assert_eq!(seen["messages"][0]["reactions"][0]["name"], "+1");
    assert!(matches!(
        world
            .platform
            .set_reaction(&world.connection, &alice, &posted, "not an emoji", true)
            .await,
        Err(PlatformError::Rejected(_))
    ));
    world
        .platform
        .delete_message(&world.connection, &alice, &posted)
        .await
        .unwrap();
    assert!(matches!(
        world
            .platform
            .delete_message(&world.connection, &alice, &posted)
            .await,
        Err(PlatformError::NotFound(_))
    ));

    // The person writes to the bot: each bot app's deliveries verify with its own secret, and
    // the person's edits, reactions and deletions are Slack events of their own.
    let app_id = credentials
        .get(credential::APP_ID)
        .unwrap()
        .expose_secret()
        .to_owned();
    let mut hub_view = world.connection.clone();
    hub_view.credentials.insert(
        app_signing_secret_name(&app_id),
        credentials.get(credential::SIGNING_SECRET).unwrap().clone(),
    );
    let bob_app = bob_credentials
        .get(credential::APP_ID)
        .unwrap()
        .expose_secret()
        .to_owned();
    hub_view.credentials.insert(
        app_signing_secret_name(&bob_app),
        bob_credentials
            .get(credential::SIGNING_SECRET)
            .unwrap()
            .clone(),
    );
    let sent = world
        .api(
            "chat.postMessage",
            &token,
            &[("channel", chat.as_str()), ("text", "Hi Alice")],
        )
        .await;
    let ts = sent["ts"].as_str().unwrap().to_owned();
    let delivery = world
        .delivery(|b| b["api_app_id"] == app_id.as_str() && b["event"]["ts"] == ts.as_str())
        .await;
    assert_eq!(
        world
            .platform
            .verify_webhook(&hub_view, &delivery.request()),
        Ok(WebhookVerdict::Events)
    );
    let events = read_events(&world.platform, &world.connection, &delivery.request())
        .await
        .unwrap();
    let sent_ref = switchboard_platform::MessageRef {
        chat: chat.clone(),
        id: ts.clone(),
    };
    assert_eq!(
        events[0].event_id,
        delivery.json()["event_id"].as_str().unwrap()
    );
    assert_eq!(
        events[0].kind,
        InboundKind::MessagePosted {
            message: sent_ref.clone(),
            chat_kind: ChatKind::Direct,
            sender: human.clone(),
            recipient: Some(account.clone()),
            sent_at_micros: switchboard_platform_slack::webhook::ts_micros(&ts),
            body: switchboard_platform_slack::markup::parse("Hi Alice"),
            thread: None,
        }
    );
    world
        .api(
            "chat.update",
            &token,
            &[
                ("channel", chat.as_str()),
                ("ts", &ts),
                ("text", "Hi Alice!"),
            ],
        )
        .await;
    world
        .api(
            "reactions.add",
            &token,
            &[
                ("channel", chat.as_str()),
                ("timestamp", &ts),
                ("name", "tada"),
            ],
        )
        .await;
    world
        .api(
            "chat.delete",
            &token,
            &[("channel", chat.as_str()), ("ts", &ts)],
        )
        .await;
    let kinds = [
        (
            "/event/message/ts",
            InboundKind::MessageEdited {
                message: sent_ref.clone(),
                body: switchboard_platform_slack::markup::parse("Hi Alice!"),
            },
        ),
        (
            "/event/item/ts",
            InboundKind::ReactionChanged {
                message: sent_ref.clone(),
                user: human.clone(),
                emoji: "🎉".into(),
                present: true,
            },
        ),
        (
            "/event/deleted_ts",
            InboundKind::MessageDeleted {
                message: sent_ref.clone(),
            },
        ),
    ];
    for (pointer, expected) in kinds {
        let delivery = world
            .delivery(|b| {
                b["api_app_id"] == app_id.as_str()
                    && b.pointer(pointer).and_then(Value::as_str) == Some(ts.as_str())
            })
            .await;
        assert_eq!(
            world
                .platform
                .verify_webhook(&hub_view, &delivery.request()),
            Ok(WebhookVerdict::Events)
        );
        assert_eq!(
            read_events(&world.platform, &world.connection, &delivery.request())
                .await
                .unwrap()[0]
                .kind,
            expected
        );
    }
    // A group DM message is a group chat's.
    world
        .api(
            "chat.postMessage",
            &token,
            &[("channel", group.as_str()), ("text", "to both")],
        )
        .await;
    let delivery = world
        .delivery(|b| b["api_app_id"] == app_id.as_str() && b["event"]["text"] == "to both")
        .await;
    assert!(matches!(
        &read_events(&world.platform, &world.connection, &delivery.request())
            .await
            .unwrap()[0]
            .kind,
        InboundKind::MessagePosted {
            chat_kind: ChatKind::Group,
            ..
        }
    ));

    // Removing the representation deletes its app, so removing it again finds nothing.
    world
        .platform
        .remove_representation(&world.connection, Some(&account), &credentials)
        .await
        .unwrap();
    let config = world
        .connection
        .credentials
        .get(credential::APP_CONFIGURATION_TOKEN)
        .unwrap()
        .expose_secret()
        .to_owned();
    let exported = world
        .api("apps.manifest.export", &config, &[("app_id", &app_id)])
        .await;
    assert_eq!(exported["error"], "invalid_app_id");
    assert!(matches!(
        world
            .platform
            .remove_representation(&world.connection, Some(&account), &credentials)
            .await,
        Err(PlatformError::NotFound(_))
    ));
}

fn signed(secret: &str, timestamp: i64, body: &[u8]) -> WebhookRequest {
    let mut headers = HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, timestamp.to_string().parse().unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        sign(&SecretString::from(secret), &timestamp.to_string(), body)
            .parse()
            .unwrap(),
    );
    WebhookRequest {
        headers,
        query: None,
        body: body.to_vec(),
        held_subscriptions: Vec::new(),
    }
}

/// Slack's published signature test vector, the challenge its app creation sends, and its
/// directory events.
#[tokio::test]
async fn slacks_test_vector_challenge_and_directory_events() {
    let world = world(40, false).await;
    let platform = &world.platform;
    let connection = &world.connection;
    // The vendor's test vector (a slash command, signed with a published secret and time).
    let vector = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let settings: SlackSettings = serde_json::from_value(json!({
        "client_id": "1.2", "client_secret": "s", "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5",
        "events_url": "https://hub.example/slack/events", "redirect_url": "https://hub.example/oauth/callback",
    }))
    .unwrap();
    let vendor = SlackPlatform::new(settings, Arc::new(FixedClock(1_531_420_618 + 60))).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, "1531420618".parse().unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
            .parse()
            .unwrap(),
    );
    let request = WebhookRequest {
        headers,
        query: None,
        body: vector.as_bytes().to_vec(),
        held_subscriptions: Vec::new(),
    };
    assert_eq!(
        vendor.verify_webhook(connection, &request),
        Ok(WebhookVerdict::Events)
    );
    assert!(
        read_events(&vendor, connection, &request).await.is_err()
            || read_events(&vendor, connection, &request)
                .await
                .unwrap()
                .is_empty()
    );
    let stale = SlackPlatform::new(
        serde_json::from_value(json!({"client_id": "1.2", "client_secret": "s", "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5",
            "events_url": "https://h.example/e", "redirect_url": "https://h.example/c"})).unwrap(),
        Arc::new(FixedClock(1_531_420_618 + 301)),
    )
    .unwrap();
    assert!(matches!(
        stale.verify_webhook(connection, &request),
        Err(PlatformError::BadWebhook(_))
    ));

    // The challenge the simulator sent when the hub's app was created.
    let challenge = world.delivery(|b| b["type"] == "url_verification").await;
    assert_eq!(
        platform.verify_webhook(connection, &challenge.request()),
        Ok(WebhookVerdict::Challenge(
            challenge.json()["challenge"].as_str().unwrap().to_owned()
        ))
    );

    // Real deliveries: a person joins, another renames themselves.
    sim_json(
        &world.http,
        reqwest::Method::POST,
        format!("{}/_sim/slack/members", world.base),
        Some(json!({"email": "new.joiner@acme.example", "real_name": "New Joiner"})),
    )
    .await;
    let joined = world.delivery(|b| b["event"]["type"] == "team_join").await;
    assert_eq!(
        platform.verify_webhook(connection, &joined.request()),
        Ok(WebhookVerdict::Events)
    );
    let events = read_events(platform, connection, &joined.request())
        .await
        .unwrap();
    let InboundKind::UserChanged { user } = &events[0].kind else {
        panic!("{events:?}")
    };
    assert_eq!(user.display_name, "New Joiner");
    assert!(!user.is_bot && !user.deactivated);
    let users = world.users().await;
    let (renamed, _) = member(&users, 4);
    sim_json(
        &world.http,
        reqwest::Method::POST,
        format!("{}/_sim/slack/display-name", world.base),
        Some(json!({"user": renamed.as_str(), "display_name": "Renamed Person"})),
    )
    .await;
    let changed = world
        .delivery(|b| b["event"]["type"] == "user_change")
        .await;
    assert_eq!(
        platform.verify_webhook(connection, &changed.request()),
        Ok(WebhookVerdict::Events)
    );
    let events = read_events(platform, connection, &changed.request())
        .await
        .unwrap();
    assert_eq!(events[0].platform, Platform::Slack);
    let InboundKind::UserChanged { user } = &events[0].kind else {
        panic!("{events:?}")
    };
    assert_eq!(
        (user.id.as_str(), user.display_name.as_str()),
        (renamed.as_str(), "Renamed Person")
    );
}

#[tokio::test]
async fn failures_are_classified_retried_and_reported() {
    let world = world(40, false).await;
    let platform = &world.platform;

    // A 503 is retried, then reported as unavailable.
    world
        .faults(json!([{"route_prefix": "/slack/api/auth.test", "error_rate": 1.0}]))
        .await;
    assert!(matches!(
        platform.check_health(&world.connection).await,
        Err(PlatformError::Unavailable(_))
    ));
    assert_eq!(world.log("/slack/api/auth.test").await, vec![503; 4]);

    // A 429 is retried after the Retry-After it names, then handed back with it.
    world.faults(json!([{"route_prefix": "/slack/api/users.lookupByEmail", "throttle_rate": 1.0, "retry_after_secs": 1}])).await;
    let email = Email::parse(&world.admin).unwrap();
    assert_eq!(
        platform.lookup_by_email(&world.connection, &email).await,
        Err(PlatformError::RateLimited {
            retry_after: Some(Duration::from_secs(1))
        })
    );
    assert_eq!(
        world.log("/slack/api/users.lookupByEmail").await,
        vec![429; 4]
    );
    world.faults(json!([])).await;

    // A missing scope names the scope: a person's bot may not read e-mail addresses.
    let (account, credentials) = bot(&world, "Carol Teams").await;
    let as_bot = ConnectionContext {
        connection: world.connection.connection.clone(),
        credentials: credentials.clone(),
    };
    let error = platform.lookup_by_email(&as_bot, &email).await.unwrap_err();
    assert!(
        matches!(&error, PlatformError::Unauthorized(m) if m.contains("users:read.email")),
        "{error}"
    );

    // Unknown channels are not found; a revoked token is unauthorized and not retried.
    let bot = Actor::Representation {
        account,
        credentials: credentials.clone(),
    };
    assert!(matches!(
        platform
            .post_message(
                &world.connection,
                &bot,
                &ExternalChatId::new("D99999999"),
                &text("x")
            )
            .await,
        Err(PlatformError::NotFound(_))
    ));
    let token = credentials
        .get(credential::BOT_TOKEN)
        .unwrap()
        .expose_secret()
        .to_owned();
    assert_eq!(world.api("auth.revoke", &token, &[]).await["revoked"], true);
    let before = world.log("/slack/api/auth.test").await.len();
    assert!(matches!(
        platform.check_health(&as_bot).await,
        Err(PlatformError::Unauthorized(_))
    ));
    assert_eq!(world.log("/slack/api/auth.test").await.len(), before + 1);
    let mut missing = world.connection.clone();
    missing.credentials = Credentials::default();
    assert_eq!(
        platform.check_health(&missing).await.unwrap_err(),
        PlatformError::MissingCredential(credential::BOT_TOKEN)
    );
}

#[tokio::test]
async fn slacks_own_rate_limits_are_waited_out() {
    let world = world(40, true).await;
    let token = world
        .connection
        .credentials
        .get(credential::BOT_TOKEN)
        .unwrap()
        .expose_secret()
        .to_owned();
    // users.list is tier 2: a burst of five, then one every three seconds.
    loop {
        let response = world
            .http
            .post(format!("{}/slack/api/users.list", world.base))
            .bearer_auth(&token)
            .form(&[("limit", "1")])
            .send()
            .await
            .unwrap();
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    let page = world
        .platform
        .import_users(
            &world.connection,
            &ImportRequest {
                teams: Vec::new(),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert!(!page.users.is_empty());
    let statuses = world.log("/slack/api/users.list").await;
    assert_eq!(statuses.last(), Some(&200));
    assert!(
        statuses
            .iter()
            .rev()
            .skip(1)
            .take_while(|s| **s == 429)
            .count()
            >= 2,
        "{statuses:?}"
    );
}

/// The events of a delivery, read as the relay reads them: split into stored items, then read.
async fn read_events(
    platform: &SlackPlatform,
    connection: &ConnectionContext,
    request: &WebhookRequest,
) -> Result<Vec<InboundEvent>, PlatformError> {
    let mut events = Vec::new();
    for envelope in platform.split_webhook(request)? {
        // Slack names no addressee: the relay hands none.
        events.extend(platform.read_event(connection, &envelope, None).await?);
    }
    Ok(events)
}

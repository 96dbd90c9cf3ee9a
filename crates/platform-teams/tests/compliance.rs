//! The Teams module against the simulated Microsoft (Entra ID + Graph): the common compliance
//! suite through [`TeamsDriver`], and what only Teams does (admin consent then the service
//! user's sign-in, interop guests, Graph's subscriptions and notices, token lifetimes, Graph's
//! errors) in tests of its own.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_core::{Email, ExternalChatId, ExternalUserId, RichText, Timestamp};
use switchboard_platform::{
    Actor, ChatPlatform, ConnectionContext, Credentials, EventSubscription, FlowContext,
    FlowOutcome, FlowStep, ImportRequest, InboundKind, MessageRef, OutboundMessage, PlatformError,
    Prompt, ProvisionRequest, Provisioning, WebhookRequest, WebhookVerdict,
};
use switchboard_platform_compliance::{
    Connected, Driver, NativeUser, SeenMessage, Tampered, UserKind, compliance_tests,
};
use switchboard_platform_teams::{
    ChangeNotice, ChangeType, InteropSettings, TeamsPlatform, TeamsSettings, credential,
};
use switchboard_secrets::{ExposeSecret, SecretString};
use switchboard_sim::{SimConfig, Simulator};
use switchboard_sim_kit::{OrgSpec, Organisation};

compliance_tests!(TeamsDriver);

const CUSTOMER_TENANT: &str = "5b000000-c057-4000-8000-000000000001";
const INTEROP_TENANT: &str = "5b000000-c057-4000-8000-000000000002";
const HUB_CLIENT_ID: &str = "5b000000-a990-4000-8000-000000000001";
const HUB_CLIENT_SECRET: &str = "sim~hub.app-secret_0nly-valid-in-the-simulator";
const SERVICE_USER: &str = "switchboard.service@acme.example";
const SERVICE_USER_ID: &str = "5b000003-0000-4000-8000-000000000000";
const CALLBACK: &str = "https://hub.example/callback/teams";

/// The simulated Microsoft tenant, and a receiver standing in for the hub's notification URL.
struct TeamsDriver {
    base: String,
    sim: Simulator,
    people: usize,
    http: reqwest::Client,
    teams: TeamsPlatform,
    events_url: String,
    deliveries: Arc<Mutex<Vec<WebhookRequest>>>,
}

type World = Connected<TeamsDriver>;

async fn world(people: usize) -> World {
    Connected::with(TeamsDriver::launch(people).await).await
}

impl TeamsDriver {
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
        let receiver = receiver(Arc::clone(&deliveries)).await;
        let driver = Self {
            teams: platform(&base),
            base,
            sim,
            people,
            http,
            events_url: format!("{receiver}/events"),
            deliveries,
        };
        driver
            .sim_call(
                reqwest::Method::PUT,
                "/_sim/settings",
                json!({"webhook_time_scale": 0.001}),
            )
            .await;
        driver
    }

    /// The organisation the simulator was seeded with, regenerated from the same spec: the
    /// simulator does not say who is in which team.
    fn organisation(&self) -> Organisation {
        Organisation::generate(&OrgSpec {
            people: self.people,
            ..self.sim.org_spec()
        })
    }

    async fn sim_call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    async fn mint(&self, email: &str) -> String {
        let answer = self
            .sim_call(
                reqwest::Method::POST,
                "/_sim/token",
                json!({"platform": "teams", "email": email}),
            )
            .await;
        answer["token"].as_str().unwrap().to_owned()
    }

    async fn graph_get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/graph/v1.0{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The newest requests the simulator served whose path starts with `prefix`.
    async fn log(&self, since: u64, prefix: &str) -> Vec<Value> {
        let entries = self
            .http
            .get(format!(
                "{}/_sim/log?since={since}&kind=request&limit=10000",
                self.base
            ))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap();
        entries
            .into_iter()
            .filter(|e| e["target"].as_str().is_some_and(|t| t.starts_with(prefix)))
            .collect()
    }

    async fn last_seq(&self) -> u64 {
        let entries: Vec<Value> = self
            .http
            .get(format!("{}/_sim/log?limit=10000", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        entries
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// Follows a consent or sign-in page as a browser: read the form, type `login`, press
    /// Accept (or Cancel), and return the query of the redirect to the callback URL.
    async fn browse(
        &self,
        url: &str,
        login: &str,
        accept: bool,
    ) -> Result<Vec<(String, String)>, String> {
        let page = self.http.get(url).send().await.unwrap();
        assert_eq!(page.status(), 200, "{url}");
        let html = page.text().await.unwrap();
        let form = &html[html.find("<form").expect("a form")..];
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
            if accept { "accept" } else { "cancel" }.to_owned(),
        ));
        let response = self
            .http
            .post(format!("{}{action}", self.base))
            .form(&fields)
            .send()
            .await
            .unwrap();
        if response.status() != 302 {
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
}

fn platform(base: &str) -> TeamsPlatform {
    let settings: TeamsSettings = serde_json::from_value(json!({
        "login_base_url": format!("{base}/login"),
        "graph_base_url": format!("{base}/graph/v1.0"),
        "client_id": HUB_CLIENT_ID,
        "client_secret": HUB_CLIENT_SECRET,
        "interop": {"tenant": INTEROP_TENANT, "domain": "switchboard-interop.example"},
        "request_timeout_secs": 10,
        "page_size": 20,
    }))
    .unwrap();
    let _: &Option<InteropSettings> = &settings.interop;
    TeamsPlatform::new(settings).unwrap()
}

/// The hub's notification URL stand-in: records every delivery and answers Graph's validation.
async fn receiver(deliveries: Arc<Mutex<Vec<WebhookRequest>>>) -> String {
    async fn receive(
        State(deliveries): State<Arc<Mutex<Vec<WebhookRequest>>>>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let token = query.as_deref().and_then(|q| {
            reqwest::Url::parse(&format!("http://x/?{q}"))
                .ok()?
                .query_pairs()
                .find(|(k, _)| k == "validationToken")
                .map(|(_, v)| v.into_owned())
        });
        deliveries.lock().unwrap().push(WebhookRequest {
            headers,
            query,
            body: body.to_vec(),
            held_subscriptions: Vec::new(),
        });
        match token {
            Some(token) => (StatusCode::OK, token),
            None => (StatusCode::ACCEPTED, String::new()),
        }
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
impl Driver for TeamsDriver {
    type Platform = TeamsPlatform;

    /// 300 people put about 180 on Teams, in teams of 50: two teams take several pages of 20.
    async fn start() -> Self {
        Self::launch(300).await
    }

    fn platform(&self) -> &TeamsPlatform {
        &self.teams
    }

    async fn connect_inputs(&self) -> Credentials {
        Credentials::default()
    }

    fn callback_url(&self) -> String {
        CALLBACK.to_owned()
    }

    /// A tenant admin who is also the service user.
    fn admin_login(&self) -> String {
        SERVICE_USER.to_owned()
    }

    async fn consent(
        &self,
        url: &str,
        login: &str,
        accept: bool,
    ) -> Result<Vec<(String, String)>, String> {
        self.browse(url, login, accept).await
    }

    async fn directory(&self) -> Vec<NativeUser> {
        let listed = self
            .http
            .get(format!("{}/_sim/users?platform=teams", self.base))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
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
                    "disabled" => UserKind::Deactivated,
                    _ => UserKind::Member,
                },
            })
            .collect()
    }

    async fn team_members(&self, teams: &[String]) -> HashSet<ExternalUserId> {
        self.organisation()
            .people
            .iter()
            .filter(|p| {
                p.team_on("teams")
                    .is_some_and(|t| teams.contains(&team_id(t)))
            })
            .map(|p| ExternalUserId::new(person_id(p.index)))
            .collect()
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

    /// Graph lists a chat's messages newest first and keeps deleted ones, marked.
    async fn read_chat(&self, reader: &NativeUser, chat: &ExternalChatId) -> Vec<SeenMessage> {
        let token = self.mint(reader.email.as_deref().unwrap()).await;
        messages(self, &token, chat)
            .await
            .iter()
            .rev()
            .filter(|m| m["deletedDateTime"].is_null())
            .map(|m| SeenMessage {
                id: m["id"].as_str().unwrap().to_owned(),
                author: ExternalUserId::new(m["from"]["user"]["id"].as_str().unwrap_or_default()),
                text: html_text(m["body"]["content"].as_str().unwrap_or_default()),
                reactions: m["reactions"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .map(|r| r["reactionType"].as_str().unwrap().to_owned())
                    .collect(),
                mentions: m["mentions"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .map(|r| ExternalUserId::new(r["mentioned"]["user"]["id"].as_str().unwrap()))
                    .collect(),
                replies_to: m["replyToId"].as_str().map(str::to_owned),
            })
            .collect()
    }

    async fn post_as(&self, author: &NativeUser, chat: &ExternalChatId, text: &str) -> String {
        let token = self.mint(author.email.as_deref().unwrap()).await;
        let response = self
            .http
            .post(format!(
                "{}/graph/v1.0/chats/{}/messages",
                self.base,
                chat.as_str()
            ))
            .bearer_auth(token)
            .json(&json!({"body": {"contentType": "text", "content": text}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let posted: Value = response.json().await.unwrap();
        posted["id"].as_str().unwrap().to_owned()
    }

    fn events_url(&self) -> String {
        self.events_url.clone()
    }

    fn deliveries(&self) -> Vec<WebhookRequest> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Graph signs nothing: a notification is authenticated by the `clientState` the hub gave
    /// its subscription, and by naming a subscription the hub holds. It has no timestamp to be
    /// stale by.
    fn tamper(&self, _connection: &ConnectionContext, genuine: &WebhookRequest) -> Tampered {
        let mut body: Value = serde_json::from_slice(&genuine.body).unwrap();
        for item in body["value"].as_array_mut().unwrap() {
            item["clientState"] = json!("somebody-else");
        }
        let other_client_state = WebhookRequest {
            body: body.to_string().into_bytes(),
            ..genuine.clone()
        };
        let foreign_subscription = WebhookRequest {
            held_subscriptions: vec![held_subscription("another-subscription")],
            ..genuine.clone()
        };
        Tampered {
            forged: vec![other_client_state, foreign_subscription],
            ..Tampered::default()
        }
    }

    /// Revokes the service user's sessions, as an admin does in Entra ID.
    async fn add_member(&self, email: &str, name: &str, teams: &[String]) -> ExternalUserId {
        let added = self
            .sim_call(
                reqwest::Method::POST,
                "/_sim/teams/users",
                json!({"email": email, "display_name": name, "teams": teams}),
            )
            .await;
        ExternalUserId::new(added["id"].as_str().unwrap())
    }

    /// Entra deletes a user who leaves the tenant.
    async fn remove_member(&self, _account: &ExternalUserId, email: &str) {
        self.sim_call(
            reqwest::Method::POST,
            "/_sim/teams/remove-user",
            json!({"email": email}),
        )
        .await;
    }

    async fn revoke(&self, _connection: &ConnectionContext) {
        self.sim_call(
            reqwest::Method::POST,
            "/_sim/teams/revoke",
            json!({"email": SERVICE_USER}),
        )
        .await;
    }

    /// The simulator's clock, from its `Date` header (the house rule keeps tests off the
    /// system clock too).
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
}

/// A message's HTML as its reader sees it: the text, with each link's target after it.
fn html_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let close = rest[open..]
            .find('>')
            .map_or(rest.len(), |at| open + at + 1);
        let tag = &rest[open..close];
        if let Some(href) = tag
            .starts_with("<a ")
            .then(|| attribute(tag, "href"))
            .flatten()
        {
            text.push_str(&href);
            text.push(' ');
        }
        rest = &rest[close..];
    }
    text.push_str(rest);
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
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

fn person_id(index: usize) -> String {
    format!("5b000001-0000-4000-8000-{index:012x}")
}

fn team_id(index: usize) -> String {
    format!("5b000002-0000-4000-8000-{index:012x}")
}

fn acting(account: &str, credentials: &Credentials) -> Actor {
    Actor::Representation {
        account: ExternalUserId::new(account),
        credentials: credentials.clone(),
    }
}

fn text(body: &str) -> OutboundMessage {
    OutboundMessage {
        body: RichText::plain(body),
        thread: None,
        idempotency_key: None,
    }
}

fn with_token(token: &str) -> Credentials {
    let mut credentials = Credentials::default();
    credentials.insert(
        credential::ACCESS_TOKEN,
        SecretString::from(token.to_owned()),
    );
    credentials
}

/// Messages of a chat as the holder of `token` sees them, newest first.
async fn messages(driver: &TeamsDriver, token: &str, chat: &ExternalChatId) -> Vec<Value> {
    let (status, page) = driver
        .graph_get(token, &format!("/chats/{}/messages", chat.as_str()))
        .await;
    assert_eq!(status, 200, "{page}");
    page["value"].as_array().unwrap().clone()
}

/// Members of the tenant who can sign in.
async fn enabled_members(driver: &TeamsDriver) -> Vec<NativeUser> {
    driver
        .directory()
        .await
        .into_iter()
        .filter(|user| user.kind == UserKind::Member && user.email.is_some())
        .collect()
}

fn email_of(user: &NativeUser) -> &str {
    user.email.as_deref().unwrap()
}

/// `account`'s owner is asked to authorise it; `login` is who actually signs in.
async fn authorize(
    world: &World,
    account: &NativeUser,
    login: &str,
) -> Result<Credentials, PlatformError> {
    let flow = FlowContext {
        callback_url: CALLBACK.to_owned(),
        state: format!("authorize-{}", account.id),
    };
    let FlowStep::Redirect { url, state } = world
        .teams
        .begin_authorize(&world.connection, &account.id, &flow)
        .await?
    else {
        panic!("authorising starts with a redirect")
    };
    assert!(url.contains("login_hint="), "{url}");
    let callback = world.browse(&url, login, true).await.unwrap();
    match world
        .teams
        .continue_flow(Some(&world.connection), &state, &flow, &callback)
        .await?
    {
        FlowStep::Done(FlowOutcome::Authorized { credentials, .. }) => Ok(credentials),
        other => panic!("unexpected {other:?}"),
    }
}

/// Connecting is two pages: the admin consents for the tenant, then the service user signs in
/// (with PKCE); the connection holds the service user's tokens and a `clientState` of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_consents_for_the_tenant_then_signs_in_the_service_user() {
    let driver = TeamsDriver::launch(40).await;
    let teams = &driver.teams;
    let flow = FlowContext {
        callback_url: CALLBACK.to_owned(),
        state: "connect-state-1".to_owned(),
    };
    let FlowStep::Redirect { url, state } = teams
        .begin_connect(&Credentials::default(), &flow)
        .await
        .unwrap()
    else {
        panic!("connecting starts with a redirect")
    };
    assert!(url.contains("/organizations/v2.0/adminconsent?"), "{url}");
    let callback = driver.browse(&url, SERVICE_USER, true).await.unwrap();
    let FlowStep::Redirect { url, state } = teams
        .continue_flow(None, &state, &flow, &callback)
        .await
        .unwrap()
    else {
        panic!("admin consent is followed by the service user's sign-in")
    };
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let callback = driver.browse(&url, SERVICE_USER, true).await.unwrap();
    let FlowStep::Done(FlowOutcome::Connected {
        tenant,
        display_name,
        credentials,
    }) = teams
        .continue_flow(None, &state, &flow, &callback)
        .await
        .unwrap()
    else {
        panic!("the service user's sign-in connects")
    };
    assert_eq!(tenant.as_str(), CUSTOMER_TENANT);
    assert_eq!(display_name, "acme.example");
    assert_eq!(
        credentials
            .get(credential::SERVICE_USER_ID)
            .unwrap()
            .expose_secret(),
        SERVICE_USER_ID
    );
    assert!(credentials.get(credential::REFRESH_TOKEN).is_ok());
    assert!(credentials.get(credential::CLIENT_STATE).is_ok());
    assert!(credentials.expires_at().is_some());

    let world = Connected::with(driver).await;
    let health = world.teams.check_health(&world.connection).await.unwrap();
    assert!(health.identity.contains(SERVICE_USER), "{health:?}");
    assert!(health.scopes.iter().any(|s| s == "Chat.ReadWrite"));
}

/// Graph pages teams as well as their members; a member's addresses include the aliases of
/// `proxyAddresses`, by which they are found too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_are_paged_and_aliases_are_addresses() {
    // Half the organisation is on Teams, in teams of 50: more than a page of teams.
    let world = world(2_500).await;
    let teams = &world.teams;
    let connection = &world.connection;
    let listed = teams.list_teams(connection).await.unwrap();
    assert_eq!(listed.len(), world.organisation().teams_on("teams").len());
    assert!(listed.len() > 20, "teams are paged too");
    let selected = vec![team_id(0), team_id(1)];
    assert!(selected.iter().all(|id| listed.iter().any(|t| &t.id == id)));
    let mut request = ImportRequest {
        teams: selected,
        cursor: None,
    };
    let mut imported = Vec::new();
    let mut pages = 0;
    loop {
        let page = teams.import_users(connection, &request).await.unwrap();
        pages += 1;
        imported.extend(page.users);
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    assert!(pages >= 6, "{pages} pages");
    let with_alias = imported
        .iter()
        .find(|u| u.emails.iter().any(|e| e.as_str().contains("@legacy.")))
        .expect("a member with a legacy alias in proxyAddresses");
    assert!(with_alias.emails.len() >= 2);
    let alias = with_alias
        .emails
        .iter()
        .find(|e| e.as_str().contains("@legacy."))
        .unwrap()
        .clone();
    let found = teams
        .lookup_by_email(connection, &alias)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, with_alias.id);
    let found = teams
        .lookup_by_email(connection, &with_alias.emails[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, with_alias.id);
}

/// A guest lives in the interop tenant and is invited into the customer's: it is found by its
/// interop address, shows in the people's own clients as the hub posts, reacts in chats of
/// people who authorised their own accounts, and is the only kind of account the hub removes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_live_in_the_interop_tenant() {
    let world = world(40).await;
    let teams = &world.teams;
    let connection = &world.connection;
    let members = enabled_members(&world).await;
    let (ada, bob) = (&members[0], &members[1]);
    let ada_id = ada.id.as_str().to_owned();
    let ada_credentials = authorize(&world, ada, email_of(ada)).await.unwrap();
    let impostor = authorize(&world, bob, email_of(&members[2])).await;
    assert!(
        matches!(&impostor, Err(PlatformError::Rejected(m)) if m.contains("not as the account")),
        "{impostor:?}"
    );

    let Provisioning::Ready {
        account: guest,
        credentials: guest_credentials,
    } = teams
        .provision_representation(
            connection,
            &ProvisionRequest {
                display_name: "Sam Slack".to_owned(),
                email: Email::parse("sam.slack@elsewhere.example").unwrap(),
                avatar_url: None,
                existing_account: None,
                primary_platform: None,
            },
        )
        .await
        .unwrap()
    else {
        panic!("a guest is ready at once")
    };
    let interop_address = guest_credentials
        .get(credential::INTEROP_UPN)
        .unwrap()
        .expose_secret()
        .to_owned();
    assert!(interop_address.ends_with("@switchboard-interop.example"));
    let as_seen = teams
        .lookup_by_email(connection, &Email::parse(&interop_address).unwrap())
        .await
        .unwrap()
        .expect("the guest is found by its interop address");
    assert_eq!(as_seen.id, guest);
    assert!(as_seen.is_guest);
    let guest_actor = acting(guest.as_str(), &guest_credentials);

    // The prompt's link is HTML, its ampersand escaped.
    teams
        .send_prompt(
            connection,
            &ada.id,
            &Prompt {
                text: "Colleagues on Slack want to chat with you.".to_owned(),
                link: "https://hub.example/sync/abc?x=1&y=2".to_owned(),
            },
        )
        .await
        .unwrap();
    let ada_token = world.mint(email_of(ada)).await;
    let (_, chats) = world.graph_get(&ada_token, "/me/chats").await;
    let prompt_chat = chats["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chatType"] == "oneOnOne")
        .expect("the prompt's chat");
    let prompt_chat = ExternalChatId::new(prompt_chat["id"].as_str().unwrap());
    let prompt = &messages(&world, &ada_token, &prompt_chat).await[0];
    assert!(
        prompt["body"]["content"]
            .as_str()
            .unwrap()
            .contains("https://hub.example/sync/abc?x=1&amp;y=2")
    );

    // Ada, authorised, opens a group chat with the guest and Bob; the guest reacts to her post.
    let ada_actor = acting(&ada_id, &ada_credentials);
    let group = teams
        .open_chat(connection, &ada_actor, &[guest.clone(), bob.id.clone()])
        .await
        .unwrap();
    let posted = teams
        .post_message(connection, &ada_actor, &group, &text("Hi all"))
        .await
        .unwrap();
    teams
        .set_reaction(connection, &guest_actor, &posted, "🎉", true)
        .await
        .unwrap();
    let seen = &messages(&world, &ada_token, &group).await[0];
    assert_eq!(seen["reactions"][0]["user"]["user"]["id"], guest.as_str());

    // Removing: only hub-created guests; then the guest is gone from both tenants, and removing
    // it again is harmless.
    assert!(matches!(
        teams
            .remove_representation(connection, Some(&ada.id), &ada_credentials)
            .await,
        Err(PlatformError::Rejected(_))
    ));
    teams
        .remove_representation(connection, Some(&guest), &guest_credentials)
        .await
        .unwrap();
    let (status, _) = world
        .graph_get(&ada_token, &format!("/users/{}", guest.as_str()))
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        teams
            .lookup_by_email(connection, &Email::parse(&interop_address).unwrap())
            .await
            .unwrap(),
        None
    );
    teams
        .remove_representation(connection, Some(&guest), &guest_credentials)
        .await
        .unwrap();
}

/// Access tokens expire; refreshing rotates the refresh token, a guest signs in again with its
/// interop password, and a dead refresh token is `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_refresh_tokens_rotate() {
    let world = world(40).await;
    let teams = &world.teams;
    let connection = &world.connection;
    let members = enabled_members(&world).await;
    let (ada, cy) = (&members[0], &members[2]);
    let Provisioning::Ready {
        account: guest,
        credentials: guest_credentials,
    } = teams
        .provision_representation(
            connection,
            &ProvisionRequest {
                display_name: "Sam Slack".to_owned(),
                email: Email::parse("sam.slack@elsewhere.example").unwrap(),
                avatar_url: None,
                existing_account: None,
                primary_platform: None,
            },
        )
        .await
        .unwrap()
    else {
        panic!("a guest is ready at once")
    };
    let direct = teams
        .open_chat(
            connection,
            &acting(guest.as_str(), &guest_credentials),
            std::slice::from_ref(&ada.id),
        )
        .await
        .unwrap();

    world
        .sim_call(
            reqwest::Method::POST,
            "/_sim/teams/token-lifetime",
            json!({"seconds": 1}),
        )
        .await;
    let short = authorize(&world, cy, email_of(cy)).await.unwrap();
    let short_guest = teams.refresh(connection, &guest_credentials).await.unwrap();
    world
        .sim_call(
            reqwest::Method::POST,
            "/_sim/teams/token-lifetime",
            json!({"seconds": 3900}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let cy_actor = acting(cy.id.as_str(), &short);
    let expired = teams
        .open_chat(connection, &cy_actor, std::slice::from_ref(&ada.id))
        .await;
    assert!(
        matches!(&expired, Err(PlatformError::Unauthorized(m)) if m.contains("InvalidAuthenticationToken")),
        "{expired:?}"
    );
    let refreshed = teams.refresh(connection, &short).await.unwrap();
    assert_ne!(
        refreshed
            .get(credential::REFRESH_TOKEN)
            .unwrap()
            .expose_secret(),
        short
            .get(credential::REFRESH_TOKEN)
            .unwrap()
            .expose_secret(),
        "refresh tokens rotate"
    );
    let cy_actor = acting(cy.id.as_str(), &refreshed);
    let chat = teams
        .open_chat(connection, &cy_actor, std::slice::from_ref(&ada.id))
        .await
        .unwrap();
    teams
        .post_message(connection, &cy_actor, &chat, &text("back"))
        .await
        .unwrap();
    assert!(short_guest.get(credential::INTEROP_PASSWORD).is_ok());
    let guest_again = teams.refresh(connection, &short_guest).await.unwrap();
    teams
        .post_message(
            connection,
            &acting(guest.as_str(), &guest_again),
            &direct,
            &text("still here"),
        )
        .await
        .unwrap();
    let mut revoked = refreshed.clone();
    revoked.insert(
        credential::REFRESH_TOKEN,
        SecretString::from("1.not-a-refresh-token".to_owned()),
    );
    assert!(matches!(
        teams.refresh(connection, &revoked).await,
        Err(PlatformError::Unauthorized(m)) if m.contains("invalid_grant")
    ));
}

/// The next delivery that `keep` accepts, waiting for it.
async fn next_delivery(world: &World, keep: impl Fn(&WebhookRequest) -> bool) -> WebhookRequest {
    for _ in 0..1000 {
        if let Some(found) = world.deliveries().into_iter().find(|d| keep(d)) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no matching delivery within 20 s");
}

fn held(request: WebhookRequest, subscription: &str) -> WebhookRequest {
    WebhookRequest {
        held_subscriptions: vec![held_subscription(subscription)],
        ..request
    }
}

/// Graph's own subscription API, its notices as the module reads them (a created message
/// fetched as the hub, a soft delete without fetching), and lifecycle notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_notifications_are_graphs_notices() {
    let world = world(40).await;
    let teams = &world.teams;
    let connection = &world.connection;
    let now = world.now().await;
    let events_url = world.events_url();
    let subscription = teams
        .subscribe(
            connection,
            Some(&Actor::Hub),
            &format!("/users/{SERVICE_USER_ID}/chats/getAllMessages"),
            "created,updated,deleted",
            &events_url,
            Some(&events_url),
            Timestamp::from_unix_millis(now.unix_millis() + 50 * 60_000),
        )
        .await
        .unwrap();
    let handshake = next_delivery(&world, |d| d.query.is_some()).await;
    let WebhookVerdict::Challenge(token) = teams
        .verify_webhook(connection, &held(handshake, &subscription))
        .unwrap()
    else {
        panic!("a validation request is a challenge")
    };
    assert!(!token.contains('%'), "{token}");

    let person = enabled_members(&world).await.remove(0);
    let link = "https://hub.example/sync/n1";
    teams
        .send_prompt(
            connection,
            &person.id,
            &Prompt {
                text: "Sync".to_owned(),
                link: link.to_owned(),
            },
        )
        .await
        .unwrap();
    let created = next_delivery(&world, |d| {
        d.query.is_none() && String::from_utf8_lossy(&d.body).contains("\"created\"")
    })
    .await;
    let request = held(created, &subscription);
    assert_eq!(
        teams.verify_webhook(connection, &request),
        Ok(WebhookVerdict::Events)
    );
    let envelopes = teams.split_webhook(&request).unwrap();
    assert_eq!(envelopes.len(), 1);
    let read = teams
        .read_event(connection, &envelopes[0], None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&read.kind, InboundKind::MessagePosted { sender, .. } if sender.as_str() == SERVICE_USER_ID)
    );
    let notices = teams.notices(&request).unwrap();
    let [
        notice @ ChangeNotice::ChatMessage {
            change: ChangeType::Created,
            message,
            ..
        },
    ] = notices.as_slice()
    else {
        panic!("{notices:?}")
    };
    let event = teams
        .fetch_change(connection, Some(&Actor::Hub), notice)
        .await
        .unwrap()
        .unwrap();
    let InboundKind::MessagePosted {
        sender,
        body,
        chat_kind,
        ..
    } = &event.kind
    else {
        panic!("{event:?}")
    };
    assert_eq!(sender.as_str(), SERVICE_USER_ID);
    assert!(body.to_plain_text().contains(link));
    assert_eq!(*chat_kind, switchboard_platform::ChatKind::Direct);

    // A soft delete is an event without fetching anything.
    let message = message.clone();
    teams
        .delete_message(connection, &Actor::Hub, &message)
        .await
        .unwrap();
    let deleted = next_delivery(&world, |d| {
        d.query.is_none() && String::from_utf8_lossy(&d.body).contains("\"deleted\"")
    })
    .await;
    let request = held(deleted, &subscription);
    assert_eq!(
        teams.verify_webhook(connection, &request),
        Ok(WebhookVerdict::Events)
    );
    let mut events = Vec::new();
    for envelope in teams.split_webhook(&request).unwrap() {
        events.extend(teams.read_event(connection, &envelope, None).await.unwrap());
    }
    assert_eq!(
        events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        vec![InboundKind::MessageDeleted {
            message: MessageRef {
                chat: message.chat.clone(),
                id: message.id.clone()
            }
        }]
    );

    // Lifecycle notifications are verified the same way and read as such.
    world
        .sim_call(
            reqwest::Method::POST,
            "/_sim/teams/lifecycle",
            json!({"subscription_id": subscription, "event": "missed"}),
        )
        .await;
    let lifecycle = next_delivery(&world, |d| {
        String::from_utf8_lossy(&d.body).contains("lifecycleEvent")
    })
    .await;
    let request = held(lifecycle, &subscription);
    assert_eq!(
        teams.verify_webhook(connection, &request),
        Ok(WebhookVerdict::Events)
    );
    assert!(matches!(
        teams.notices(&request).unwrap().as_slice(),
        [ChangeNotice::Lifecycle { event, subscription_id, .. }] if event == "missed" && *subscription_id == subscription
    ));
    teams
        .renew_subscription(
            connection,
            Some(&Actor::Hub),
            &subscription,
            Timestamp::from_unix_millis(now.unix_millis() + 55 * 60_000),
        )
        .await
        .unwrap();
    teams
        .delete_subscription(connection, Some(&Actor::Hub), &subscription)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified_retried_and_throttling_honoured() {
    let world = world(40).await;
    let teams = &world.teams;
    let connection = world.connection.clone();
    let person_id = enabled_members(&world).await.remove(0).id;

    // 401: a token Graph cannot read.
    let mut broken = connection.clone();
    broken.credentials.insert(
        credential::ACCESS_TOKEN,
        SecretString::from("not-a-token".to_owned()),
    );
    assert!(matches!(
        teams.check_health(&broken).await,
        Err(PlatformError::Unauthorized(m)) if m.contains("InvalidAuthenticationToken")
    ));

    // An application token may create a chat but never post or react in it.
    let app_token: Value = world
        .http
        .post(format!(
            "{}/login/{CUSTOMER_TENANT}/oauth2/v2.0/token",
            world.base
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", HUB_CLIENT_ID),
            ("client_secret", HUB_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app = acting(
        SERVICE_USER_ID,
        &with_token(app_token["access_token"].as_str().unwrap()),
    );
    let chat = teams
        .open_chat(&connection, &Actor::Hub, std::slice::from_ref(&person_id))
        .await
        .unwrap();
    let posted = teams
        .post_message(&connection, &Actor::Hub, &chat, &text("hi"))
        .await
        .unwrap();
    assert!(matches!(
        teams.post_message(&connection, &app, &chat, &text("as the app")).await,
        Err(PlatformError::Unauthorized(m)) if m.contains("application-only")
    ));
    assert!(matches!(
        teams.set_reaction(&connection, &app, &posted, "👍", true).await,
        Err(PlatformError::Unauthorized(m)) if m.contains("missing permission")
    ));
    assert!(matches!(
        teams
            .edit_message(
                &connection,
                &Actor::Hub,
                &MessageRef {
                    chat: chat.clone(),
                    id: "1".to_owned()
                },
                &text("x")
            )
            .await,
        Err(PlatformError::NotFound(_))
    ));

    // 503 on every attempt: retried, then Unavailable.
    world
        .sim_call(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/graph/v1.0/me", "error_rate": 1.0}]),
        )
        .await;
    let since = world.last_seq().await;
    assert!(matches!(
        teams.check_health(&connection).await,
        Err(PlatformError::Unavailable(_))
    ));
    let attempts = world.log(since, "/graph/v1.0/me").await;
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert!(attempts.iter().all(|a| a["status"] == 503));

    // 429 with a Retry-After longer than the policy allows is handed back at once.
    world
        .sim_call(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/graph/v1.0/me", "throttle_rate": 1.0, "retry_after_secs": 120}]),
        )
        .await;
    assert_eq!(
        teams.check_health(&connection).await.unwrap_err(),
        PlatformError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );

    // 429 with a short Retry-After: waited for, then the call succeeds once the throttling
    // stops (the fault is lifted as soon as the first 429 is logged).
    world
        .sim_call(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/graph/v1.0/me", "throttle_rate": 1.0, "retry_after_secs": 1}]),
        )
        .await;
    let since = world.last_seq().await;
    let lifter = {
        let http = world.http.clone();
        let base = world.base.clone();
        tokio::spawn(async move {
            loop {
                let entries: Vec<Value> = http
                    .get(format!("{base}/_sim/log?since={since}&kind=request"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if entries.iter().any(|e| e["status"] == 429) {
                    http.delete(format!("{base}/_sim/faults"))
                        .send()
                        .await
                        .unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let health = teams.check_health(&connection).await.unwrap();
    assert!(health.identity.contains(SERVICE_USER));
    lifter.await.unwrap();
    let statuses: Vec<u64> = world
        .log(since, "/graph/v1.0/me")
        .await
        .iter()
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert_eq!(statuses.first(), Some(&429));
    assert_eq!(statuses.last(), Some(&200));

    // Missing credentials are named.
    let empty = ConnectionContext {
        connection: connection.connection.clone(),
        credentials: Credentials::default(),
    };
    assert_eq!(
        teams.check_health(&empty).await.unwrap_err(),
        PlatformError::MissingCredential(credential::ACCESS_TOKEN)
    );
}

/// A subscription the hub holds, as the webhook handler hands it to the module.
fn held_subscription(id: &str) -> EventSubscription {
    EventSubscription {
        id: id.to_owned(),
        resource: "/chats/getAllMessages".to_owned(),
        expires_at: Timestamp::from_unix_millis(0),
    }
}

//! A world for the relay's black-box tests: a running demo (or one the test runs itself), its
//! REST API, and the simulated platforms' own APIs, through which simulated people type and
//! read.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::RunningDemo;
use super::browser::{Browser, any_sync_link};
use super::native::native;

/// The simulated Microsoft tenant and the hub's app there, as docs/simulator-microsoft.md lists
/// them.
const SIM_TENANT: &str = "5b000000-c057-4000-8000-000000000001";
const SIM_HUB_APP_ID: &str = "5b000000-a990-4000-8000-000000000001";
const SIM_HUB_APP_SECRET: &str = "sim~hub.app-secret_0nly-valid-in-the-simulator";

/// The API token the relay's tests give the demo.
pub const TOKEN: &str = "relay-test-token-0123456789";

pub struct World {
    _process: Option<RunningDemo>,
    api: String,
    pub sim: String,
    pub http: reqwest::Client,
}

impl World {
    /// Starts the demo and lifts the simulator's rate limits, so that tests polling the
    /// platforms' APIs are not throttled (the demo itself starts with them on).
    pub fn start(people: usize) -> Self {
        Self::launch(people, &[])
    }

    /// Like [`World::start`], with only `platforms` simulated and connected (their keys,
    /// comma-separated): a test about two platforms keeps its people however many platforms
    /// the simulator knows.
    pub fn start_on(people: usize, platforms: &str) -> Self {
        Self::launch(people, &[("SWITCHBOARD_DEMO_PLATFORMS", platforms)])
    }

    /// Like [`World::start`], with these environment variables set for the demo.
    pub fn start_with(people: usize, environment: &[(&str, &str)]) -> Self {
        Self::launch(people, environment)
    }

    fn launch(people: usize, environment: &[(&str, &str)]) -> Self {
        // Off from the start: the demo syncs at once, and lifting the limits afterwards raced
        // its third Slack app, which then waited a minute.
        let mut environment = environment.to_vec();
        environment.push(("SWITCHBOARD_DEMO_SIM_RATE_LIMITS", "off"));
        let process = RunningDemo::start(people, TOKEN, &environment);
        let mut world = Self::of(&process);
        world._process = Some(process);
        world
    }

    /// Speaks to a demo the test runs (and stops) itself.
    pub fn of(process: &RunningDemo) -> Self {
        Self {
            _process: None,
            api: format!("{}/api/v1", process.hub_url()),
            sim: process.sim_url(),
            http: super::client(),
        }
    }

    /// Where the hub's REST API is, `…/api/v1`.
    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// The sum of a counter's series (every label) on the hub's `/metrics`; 0 when absent.
    pub async fn metric_sum(&self, name: &str) -> f64 {
        let hub = self.api.trim_end_matches("/api/v1");
        let text = self
            .http
            .get(format!("{hub}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub async fn representation(&self, id: &str, platform: &str) -> Value {
        let person = self
            .api(reqwest::Method::GET, &format!("/people/{id}"), None)
            .await;
        person["representations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["platform"] == platform)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// What the hub's own Slack app said to someone, oldest first.
    pub async fn told_by_the_hub(&self, token: &str) -> Vec<String> {
        let hub_bot = self
            .sim_users("slack")
            .await
            .into_iter()
            .find(|u| u["kind"] == "bot" && u["display_name"] == "Switchboard")
            .expect("the hub's app has a bot user");
        let hub_bot = hub_bot["id"].as_str().unwrap();
        let channel = self.slack_dm(token, hub_bot).await;
        self.slack_history(token, &channel)
            .await
            .into_iter()
            .filter(|(user, _)| user == hub_bot)
            .map(|(_, text)| text)
            .collect()
    }

    pub async fn sim_users(&self, platform: &str) -> Vec<Value> {
        self.http
            .get(format!("{}/_sim/users?platform={platform}", self.sim))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
    }

    /// The chat between a Teams user and an account, and what the account said there oldest
    /// first, once it said at least `count` things.
    pub async fn teams_chat_with(
        &self,
        token: &str,
        other: &str,
        count: usize,
    ) -> (String, Vec<String>) {
        eventually("the messages reaching Teams", async || {
            let chats = self
                .graph(reqwest::Method::GET, "/me/chats", token, None)
                .await;
            for chat in chats["value"].as_array()? {
                let id = chat["id"].as_str()?;
                let texts: Vec<String> = self
                    .teams_messages(token, id)
                    .await
                    .into_iter()
                    .filter(|(from, _)| from == other)
                    .map(|(_, text)| text)
                    .collect();
                if texts.len() >= count {
                    return Some((id.to_owned(), texts));
                }
            }
            None
        })
        .await
    }

    pub async fn people(&self) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/people?limit=1000", self.api))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        response.json::<Value>().await.unwrap()["people"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The first person on only `home` whose representation on `other` is synced, waiting for
    /// the demo's auto-sync to make one.
    /// The cast of most relay tests: Alice at home on Slack and Bob at home on Teams, both
    /// synced, with their tokens and Alice's Slack DM with Bob's bot.
    pub async fn slack_and_teams(&self) -> SlackAndTeams {
        let alice = self.synced_person("slack", "teams").await;
        let bob = self.synced_person("teams", "slack").await;
        let alice_token = self.token("slack", &alice.email).await;
        let bob_token = self.token("teams", &bob.email).await;
        let dm = self.slack_dm(&alice_token, &bob.representation).await;
        SlackAndTeams {
            alice,
            bob,
            alice_token,
            bob_token,
            dm,
        }
    }

    /// Writes `text` in a Slack conversation as the owner of `token`.
    pub async fn post_in_slack(&self, token: &str, channel: &str, text: &str) -> Value {
        self.slack(
            "chat.postMessage",
            token,
            &[("channel", channel), ("text", text)],
        )
        .await
    }

    pub async fn synced_person(&self, home: &str, other: &str) -> Person {
        self.synced_people(home, other, 1).await.remove(0)
    }

    /// `count` people on only `home` whose representations on `other` are synced, waiting for
    /// the demo's auto-sync (Slack bots come at Slack's pace, about one a minute).
    pub async fn synced_people(&self, home: &str, other: &str, count: usize) -> Vec<Person> {
        let started = Instant::now();
        loop {
            let found: Vec<Person> = self
                .people()
                .await
                .into_iter()
                .filter_map(|p| {
                    let representation = p["representations"]
                        .as_array()?
                        .iter()
                        .find(|r| r["platform"] == other && r["status"] == "synced")?
                        .clone();
                    (p["platforms"] == json!([home])).then(|| Person {
                        id: p["id"].as_str().unwrap().to_owned(),
                        email: p["email"].as_str().unwrap().to_owned(),
                        representation: representation["external_account"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    })
                })
                .take(count)
                .collect();
            if found.len() == count {
                return found;
            }
            assert!(
                started.elapsed() < Duration::from_secs(150),
                "fewer than {count} people on {home} got a synced {other} representation"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The platforms that cannot represent a person without an account of their own there
    /// (their module declares it `unsupported`): scenarios reach them with people whose own
    /// account there is linked.
    pub async fn account_only_platforms(&self) -> Vec<String> {
        self.api(reqwest::Method::GET, "/platforms", None).await["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|module| module["rules"]["without_account"]["kind"] == "unsupported")
            .map(|module| module["platform"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `count` people at home on `home` represented on `other`: by what `other` makes for people
    /// without an account, or, where `other` is one of `account_only` (see
    /// [`World::account_only_platforms`]) and makes nothing, by their own account there, linked.
    pub async fn represented_people(
        &self,
        home: &str,
        other: &str,
        count: usize,
        account_only: &[String],
    ) -> Vec<Person> {
        if account_only.iter().any(|p| p == other) {
            self.linked_people(home, other, count).await
        } else {
            self.synced_people(home, other, count).await
        }
    }

    /// A person on `home` and `other` alone whose own account on `other` is linked (see
    /// [`World::linked_people`]).
    pub async fn linked_person(&self, home: &str, other: &str) -> Person {
        self.linked_people(home, other, 1).await.remove(0)
    }

    /// `count` people on `home` and `other` alone whose own accounts on `other` are linked:
    /// synced, with `home` their primary platform. For each one missing, the admin chooses
    /// `home` for the next such person and syncs them on `other`; the hub prompts them on
    /// `home`, and they follow the prompt's link and authorise the hub on `other`'s consent page.
    pub async fn linked_people(&self, home: &str, other: &str, count: usize) -> Vec<Person> {
        let mut both = [home, other];
        both.sort_unstable();
        let candidates: Vec<Value> = self
            .people()
            .await
            .into_iter()
            .filter(|p| {
                let mut on: Vec<&str> = p["platforms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                on.sort_unstable();
                on == both
            })
            .collect();
        let (linked, unchosen): (Vec<&Value>, Vec<&Value>) = candidates
            .iter()
            .filter(|p| p["primary"] == home || p["primary"].is_null())
            .partition(|p| p["primary"] == home);
        let mut people: Vec<&Value> = linked.into_iter().take(count).collect();
        let missing = count - people.len();
        assert!(
            unchosen.len() >= missing,
            "fewer than {count} people on {home} and {other} alone to link"
        );
        for person in unchosen.into_iter().take(missing) {
            self.link(person, home, other).await;
            people.push(person);
        }
        let mut found = Vec::new();
        for person in people {
            let id = person["id"].as_str().unwrap().to_owned();
            found.push(Person {
                representation: self.representation_on(&id, other).await,
                email: person["email"].as_str().unwrap().to_owned(),
                id,
            });
        }
        found
    }

    /// Approves, as each platform's owner or an admin of it, every representation waiting for an
    /// admin's approval (`GET /consents`: a Slack bot's app). The demo's own admin approves
    /// them too while its first auto-sync runs: a consent it took first is no longer pending.
    pub async fn approve_pending(&self) {
        let pending = self.api(reqwest::Method::GET, "/consents", None).await;
        for consent in pending["consents"].as_array().unwrap() {
            let platform = consent["platform"].as_str().unwrap();
            let approver = self
                .sim_users(platform)
                .await
                .into_iter()
                .find(|u| {
                    u["kind"]
                        .as_str()
                        .is_some_and(|kind| kind.contains("owner") || kind == "admin")
                })
                .unwrap_or_else(|| panic!("{platform} has no owner or admin"));
            let (field, decision) = native(platform).consent();
            let url = consent["url"].as_str().unwrap();
            let (status, page) = Browser::default()
                .walk(url, (field, approver["email"].as_str().unwrap()), decision)
                .await;
            let still_pending = self.api(reqwest::Method::GET, "/consents", None).await["consents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["url"] == url);
            assert!(status == 200 || !still_pending, "{status}: {page}");
        }
    }

    /// The first person on `home` alone, and their representation on `other` as the API shows
    /// it (`null` when it lists none).
    pub async fn unrepresented_person(&self, home: &str, other: &str) -> (String, Value) {
        let person = self
            .people()
            .await
            .into_iter()
            .find(|p| p["platforms"] == json!([home]))
            .unwrap_or_else(|| panic!("nobody is on {home} alone"));
        let id = person["id"].as_str().unwrap().to_owned();
        let representation = self.representation(&id, other).await;
        (id, representation)
    }

    /// See [`World::linked_person`].
    async fn link(&self, person: &Value, home: &str, other: &str) {
        let id = person["id"].as_str().unwrap();
        let email = person["email"].as_str().unwrap();
        self.api(
            reqwest::Method::PUT,
            &format!("/people/{id}/primary"),
            Some(json!({ "platform": home })),
        )
        .await;
        let synced = self
            .api(
                reqwest::Method::POST,
                &format!("/people/{id}/sync/{other}"),
                None,
            )
            .await;
        assert_eq!(
            (&synced["status"], &synced["prompted_on"]),
            (&json!("pending"), &json!(home)),
            "{synced}"
        );
        let home_client = native(home);
        let token = self.token(home, email).await;
        let link = eventually(
            &format!("the prompt reaching {email} on {home}"),
            async || {
                home_client
                    .hub_said(self, &token)
                    .await
                    .iter()
                    .rev()
                    .find_map(|text| any_sync_link(text))
            },
        )
        .await;
        let (field, decision) = native(other).consent();
        let (status, page) = Browser::default()
            .sync_through_as(&link, home, (field, email), decision)
            .await;
        assert_eq!(status, 200, "{page}");
    }

    /// A person's own account on a platform.
    pub async fn account(&self, person: &Person, platform: &str) -> String {
        let detail = self
            .api(
                reqwest::Method::GET,
                &format!("/people/{}", person.id),
                None,
            )
            .await;
        detail["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["platform"] == platform)
            .unwrap()["external_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Calls the simulator's control API.
    pub async fn sim(&self, method: reqwest::Method, path: &str, body: Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.sim));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    /// The hub's Entra app token in the simulated tenant (client credentials, as the hub gets
    /// one), to look at what the hub subscribed to.
    pub async fn teams_app_token(&self) -> String {
        let answer: Value = self
            .http
            .post(format!("{}/login/{SIM_TENANT}/oauth2/v2.0/token", self.sim))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SIM_HUB_APP_ID),
                ("client_secret", SIM_HUB_APP_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    }

    /// A token for a simulated person, as their own client would have.
    pub async fn token(&self, platform: &str, email: &str) -> String {
        let answer: Value = self
            .http
            .post(format!("{}/_sim/token", self.sim))
            .json(&json!({"platform": platform, "email": email}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["token"].as_str().unwrap().to_owned()
    }

    pub async fn slack(&self, method: &str, token: &str, args: &[(&str, &str)]) -> Value {
        let answer: Value = self
            .http
            .post(format!("{}/slack/api/{method}", self.sim))
            .bearer_auth(token)
            .form(args)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["ok"], true, "{method}: {answer}");
        answer
    }

    pub async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/graph/v1.0{path}", self.sim))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// A call to the simulated Google Chat API (`/google/chat/v1{path}`) with a person's token.
    pub async fn google_chat(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, body) = self.google_chat_answer(method, path, token, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// [`World::google_chat`]'s status and body, whatever the status.
    pub async fn google_chat_answer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/google/chat/v1{path}", self.sim))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A call to the simulated Webex API (`/webex/v1{path}`) with a person's token; a 204 answers
    /// null.
    pub async fn webex(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/webex/v1{path}", self.sim))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Calls the simulated Zoom's REST API (`/zoom/v2`) with a person's token, `query` encoded
    /// as Zoom's clients encode it; a `204` answers `null`.
    pub async fn zoom(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/zoom/v2{path}", self.sim))
            .query(query)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Who a Google token acts as, from Google's token information endpoint.
    pub async fn google_token_info(&self, token: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/google/oauth2/tokeninfo", self.sim))
            .query(&[("access_token", token)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.unwrap()
    }

    /// The Slack DM (or group DM) between the token's user and `users` (comma-separated).
    pub async fn slack_dm(&self, token: &str, users: &str) -> String {
        self.slack("conversations.open", token, &[("users", users)])
            .await["channel"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A Teams one-on-one chat the token's user starts with a guest of the tenant (Graph wants
    /// an in-tenant guest in the guest role).
    pub async fn teams_chat_with_guest(&self, token: &str, guest: &str) -> String {
        let me = self.graph(reqwest::Method::GET, "/me", token, None).await;
        let member = |id: &str, role: &str| {
            json!({
                "@odata.type": "#microsoft.graph.aadUserConversationMember",
                "roles": [role],
                "user@odata.bind": format!("https://graph.microsoft.com/v1.0/users('{id}')"),
            })
        };
        let body = json!({
            "chatType": "oneOnOne",
            "members": [member(me["id"].as_str().unwrap(), "owner"), member(guest, "guest")],
        });
        self.graph(reqwest::Method::POST, "/chats", token, Some(body))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Messages of a Slack conversation, oldest first, as `(user, text)`.
    pub async fn slack_history(&self, token: &str, channel: &str) -> Vec<(String, String)> {
        let history = self
            .slack("conversations.history", token, &[("channel", channel)])
            .await;
        let mut messages: Vec<(String, String)> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["user"].as_str().unwrap_or_default().to_owned(),
                    m["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        messages.reverse();
        messages
    }

    /// Messages of a Teams chat as `(sender id, message id, content)`.
    pub async fn teams_message_ids(
        &self,
        token: &str,
        chat: &str,
    ) -> Vec<(String, String, String)> {
        let listed = self
            .graph(
                reqwest::Method::GET,
                &format!("/chats/{chat}/messages?$top=50"),
                token,
                None,
            )
            .await;
        listed["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["from"]["user"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    m["id"].as_str().unwrap_or_default().to_owned(),
                    m["body"]["content"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Messages of a Teams chat, oldest first, as `(sender id, content)`: every page.
    pub async fn teams_messages(&self, token: &str, chat: &str) -> Vec<(String, String)> {
        self.teams_message_list(token, chat)
            .await
            .into_iter()
            .filter(|m| m["messageType"] == "message")
            .map(|m| {
                (
                    m["from"]["user"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    m["body"]["content"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Every item of a Teams chat, oldest first, as Graph lists them: every page.
    pub async fn teams_message_list(&self, token: &str, chat: &str) -> Vec<Value> {
        let mut messages: Vec<Value> = Vec::new();
        let mut next = Some(format!(
            "{}/graph/v1.0/chats/{chat}/messages?$top=50",
            self.sim
        ));
        while let Some(url) = next {
            let response = self.http.get(&url).bearer_auth(token).send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            let page: Value = response.json().await.unwrap();
            messages.extend(page["value"].as_array().unwrap().iter().cloned());
            next = page["@odata.nextLink"].as_str().map(str::to_owned);
        }
        messages.sort_by_key(|m| m["createdDateTime"].as_str().unwrap_or_default().to_owned());
        messages
    }
}

/// The service user the demo connects Microsoft Teams as (docs/simulator-microsoft.md).
const TEAMS_SERVICE_USER: &str = "switchboard.service@acme.example";

impl World {
    /// Connects a connected platform again, as an admin would from the Connect Center: Slack
    /// with new app configuration tokens from its owner's page, Teams by consenting and
    /// signing in the service user again. Waits until the hub says it is connected.
    pub async fn reconnect(&self, platform: &str) {
        let browser = Browser::default();
        let (request, identity, decision) = match platform {
            "slack" => {
                let (owner, tokens) =
                    super::browser::slack_configuration_tokens(&browser.http, &self.sim).await;
                let inputs = json!({
                    "app_configuration_token": tokens.0,
                    "app_configuration_refresh_token": tokens.1,
                });
                (
                    json!({"platform": "slack", "inputs": inputs}),
                    ("email", owner),
                    "allow",
                )
            }
            "teams" => (
                json!({"platform": "teams"}),
                ("login", TEAMS_SERVICE_USER.to_owned()),
                "accept",
            ),
            other => panic!("no way to reconnect {other}"),
        };
        let started = self
            .api(reqwest::Method::POST, "/connections", Some(request))
            .await;
        let (_, page) = browser
            .walk(
                started["authorize_url"].as_str().unwrap(),
                (identity.0, &identity.1),
                decision,
            )
            .await;
        assert!(page.contains("<h1>Connected</h1>"), "{page}");
    }

    /// The platforms the hub is connected to, as the API names them, in its order.
    pub async fn connected_platforms(&self) -> Vec<String> {
        self.api(reqwest::Method::GET, "/connections", None).await["connections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "connected")
            .map(|c| c["platform"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The account that represents a person on a platform, once it is synced.
    pub async fn representation_on(&self, person: &str, platform: &str) -> String {
        eventually(
            &format!("a synced representation on {platform}"),
            async || {
                let detail = self
                    .api(reqwest::Method::GET, &format!("/people/{person}"), None)
                    .await;
                detail["representations"]
                .as_array()?
                .iter()
                .find(|r| r["platform"] == platform && r["status"] == "synced")?["external_account"]
                .as_str()
                .map(str::to_owned)
            },
        )
        .await
    }

    /// A connection as `GET /connections` lists it.
    pub async fn connection(&self, platform: &str) -> Value {
        self.api(reqwest::Method::GET, "/connections", None).await["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["platform"] == platform && c["status"] == "connected")
            .cloned()
            .unwrap_or_else(|| panic!("no {platform} connection"))
    }
}

/// Every ordered pair of different platforms among `platforms`.
pub fn ordered_pairs(platforms: &[String]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for home in platforms {
        for other in platforms.iter().filter(|other| *other != home) {
            pairs.push((home.clone(), other.clone()));
        }
    }
    pairs
}

/// See [`World::slack_and_teams`].
pub struct SlackAndTeams {
    pub alice: Person,
    pub bob: Person,
    pub alice_token: String,
    pub bob_token: String,
    pub dm: String,
}

pub struct Person {
    pub id: String,
    pub email: String,
    /// Their account on their secondary platform (a Teams guest, a Slack bot).
    pub representation: String,
}

pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

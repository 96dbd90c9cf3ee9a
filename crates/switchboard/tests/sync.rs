//! User sync through the real binary: `switchboard demo` against the built-in simulator, driven
//! over HTTP as an admin's script, a Slack admin's browser and a prompted person's browser
//! would, and checked against what the simulated platforms then hold.

mod common;

use std::time::{Duration, Instant};

use common::RunningDemo;
use common::browser::{self, Browser, location};

use serde_json::{Value, json};

const TOKEN: &str = "sync-test-token-0123456789";

struct Demo {
    _process: RunningDemo,
    api: String,
    sim: String,
    http: reqwest::Client,
    /// A browser: follows no redirect by itself, so each step can be checked.
    browser: reqwest::Client,
}

/// Starts the demo with the simulator's rate limits off, so that the test does not wait a
/// minute for each Slack app (the demo keeps them on by default), and waits until it is ready.
fn start_demo(people: usize) -> Demo {
    start_demo_with(people, &[])
}

/// Like [`start_demo`], with these environment variables set for the binary too.
fn start_demo_with(people: usize, environment: &[(&str, &str)]) -> Demo {
    let mut environment = environment.to_vec();
    environment.push(("SWITCHBOARD_DEMO_SIM_RATE_LIMITS", "off"));
    let process = RunningDemo::start(people, TOKEN, &environment);
    Demo {
        api: format!("{}/api/v1", process.hub_url()),
        sim: process.sim_url(),
        _process: process,
        http: reqwest::Client::new(),
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl Demo {
    /// The admin chooses a person's primary platform; it must be accepted.
    async fn choose_primary(&self, id: &str, platform: &str) {
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/people/{id}/primary"),
                Some(json!({ "platform": platform })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn people(&self) -> Vec<Value> {
        self.get("/people?limit=1000").await["people"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The first person on exactly these platforms.
    async fn someone_on(&self, platforms: &[&str]) -> Value {
        self.people()
            .await
            .into_iter()
            .find(|p| p["platforms"] == json!(platforms))
            .unwrap_or_else(|| panic!("nobody on exactly {platforms:?}"))
    }

    async fn representation(&self, id: &str, platform: &str) -> Value {
        let person = self.get(&format!("/people/{id}")).await;
        person["representations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["platform"] == platform)
            .cloned()
            .unwrap_or(Value::Null)
    }

    async fn sim_users(&self, platform: &str) -> Vec<Value> {
        self.http
            .get(format!("{}/_sim/users?platform={platform}", self.sim))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
    }

    async fn sim_kind(&self, platform: &str, id: &str) -> Option<String> {
        self.sim_users(platform)
            .await
            .into_iter()
            .find(|u| u["id"] == id)
            .and_then(|u| u["kind"].as_str().map(str::to_owned))
    }

    async fn slack(&self, method: &str, token: &str, args: &[(&str, &str)]) -> Value {
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

    /// The texts of the DM the hub's Slack app sent `email`, oldest first.
    async fn hub_dm(&self, email: &str) -> Vec<String> {
        let token: Value = self
            .http
            .post(format!("{}/_sim/token", self.sim))
            .json(&json!({"platform": "slack", "email": email}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["token"].as_str().unwrap().to_owned();
        let hub_bot = self
            .sim_users("slack")
            .await
            .into_iter()
            .find(|u| u["kind"] == "bot" && u["display_name"] == "Switchboard")
            .expect("the hub's app has a bot user");
        let opened = self
            .slack(
                "conversations.open",
                &token,
                &[("users", hub_bot["id"].as_str().unwrap())],
            )
            .await;
        let channel = opened["channel"]["id"].as_str().unwrap().to_owned();
        let history = self
            .slack("conversations.history", &token, &[("channel", &channel)])
            .await;
        let mut texts: Vec<String> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["user"] == hub_bot["id"])
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect();
        texts.reverse();
        texts
    }

    /// Walks consent pages as a browser: follows redirects, and on each form signs in as
    /// `identity` and presses `decision`, until a page without a form.
    async fn walk(&self, start: &str, identity: (&str, &str), decision: &str) -> (u16, String) {
        Browser {
            http: self.browser.clone(),
        }
        .walk(start, identity, decision)
        .await
    }

    /// Presses "Sync now" on a prompt's link, keeping Slack: answers the platform's sign-in
    /// page it leads to.
    async fn start_sign_in(&self, link: &str) -> String {
        let started = self
            .browser
            .post(link)
            .form(&[("primary", "slack")])
            .send()
            .await
            .unwrap();
        assert!(started.status().is_redirection(), "{}", started.status());
        location(link, &started)
    }

    async fn wait_for_status(&self, id: &str, platform: &str, status: &str) -> Value {
        let started = Instant::now();
        loop {
            let representation = self.representation(id, platform).await;
            if representation["status"] == status {
                return representation;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{id} on {platform} never became {status}: {representation}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The "Sync now" link in a Slack prompt (`<URL|Sync now>`).
fn sync_link(text: &str) -> String {
    browser::sync_link(text).unwrap_or_else(|| panic!("no Sync now link in {text}"))
}

#[tokio::test]
async fn a_person_without_teams_gets_a_guest_which_reset_and_remove_take_away() {
    let demo = start_demo(40);
    let ada = demo.someone_on(&["slack"]).await;
    let id = ada["id"].as_str().unwrap();

    // The demo's auto-sync gave her a guest on Teams, which really exists there.
    let guest = demo.wait_for_status(id, "teams", "synced").await;
    assert_eq!(guest["type"], "guest_account");
    let guest_id = guest["external_account"].as_str().unwrap().to_owned();
    assert_eq!(
        demo.sim_kind("teams", &guest_id).await.as_deref(),
        Some("guest")
    );

    // Synced already: syncing again changes nothing and says so, and there is no prompt to
    // send again.
    let (status, body) = demo
        .post(&format!("/people/{id}/sync/teams"), json!({}))
        .await;
    assert_eq!(
        (status, &body["status"], &body["already_synced"]),
        (200, &json!("synced"), &json!(true)),
        "{body}"
    );
    assert_eq!(
        demo.representation(id, "teams").await["external_account"],
        guest_id.as_str(),
        "the same guest"
    );
    let (status, body) = demo
        .post(&format!("/people/{id}/reprompt"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("nothing_to_reprompt")),
        "{body}"
    );
    let (status, body) = demo
        .post(&format!("/people/{id}/sync/slack"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("is_primary")),
        "{body}"
    );

    // Reset removes the guest from Teams and records why; on Slack alone, she has Slack as
    // her primary platform again at once, chosen automatically as on her first import.
    let (status, body) = demo.post(&format!("/people/{id}/reset"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["reset"].as_array().unwrap().contains(&json!("teams")),
        "every platform she was represented on, Teams among them: {body}"
    );
    assert_eq!(
        demo.sim_kind("teams", &guest_id).await,
        None,
        "the guest is gone"
    );
    let person = demo.get(&format!("/people/{id}")).await;
    assert_eq!(
        (&person["primary"], &person["primary_chosen_by"]),
        (&json!("slack"), &json!("automatic")),
        "{person}"
    );
    let teams = demo.representation(id, "teams").await;
    assert_eq!(
        (&teams["status"], &teams["external_account"]),
        (&json!("not_created"), &Value::Null)
    );
    let history: Vec<(&str, &str)> = teams["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["to"].as_str().unwrap(), t["cause"].as_str().unwrap()))
        .collect();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].0, "synced");
    assert_eq!(history[1], ("not_created", "token:demo: reset"));

    // So she can be synced again, with no one choosing anything: she gets a new guest.
    let (status, body) = demo
        .post(&format!("/people/{id}/sync/teams"), json!({}))
        .await;
    assert_eq!((status, &body["status"]), (200, &json!("synced")), "{body}");
    let guest_id = demo.representation(id, "teams").await["external_account"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        demo.sim_kind("teams", &guest_id).await.as_deref(),
        Some("guest")
    );

    // Removing her takes the guest away too, and she is gone from the hub.
    let (status, _) = demo
        .call(reqwest::Method::DELETE, &format!("/people/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = demo
        .call(reqwest::Method::GET, &format!("/people/{id}"), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(demo.sim_kind("teams", &guest_id).await, None);

    let audit = demo.get("/audit?limit=1000").await;
    let entries: Vec<(&str, &str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == id)
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["detail"].as_str().unwrap(),
            )
        })
        .collect();
    for action in ["person.reset", "person.sync", "person.remove"] {
        assert!(
            entries.iter().any(|(_, a, _)| *a == action),
            "{action} audited: {entries:?}"
        );
    }
    // Every outcome is audited: the no-op, and the demo's auto-sync that created her first
    // guest, as itself.
    assert!(
        entries.contains(&("token:demo", "person.sync", "teams: already synced")),
        "{entries:?}"
    );
    assert!(
        entries.contains(&("auto-sync", "person.sync", "teams: synced")),
        "{entries:?}"
    );
}

#[tokio::test]
async fn a_slack_bot_waits_for_the_admins_approval_then_syncs_and_reset_deletes_it() {
    let demo = start_demo_with(40, &[("SWITCHBOARD_DEMO_PLATFORMS", "slack,teams")]);
    let bob = demo.someone_on(&["slack", "teams"]).await;
    let id = bob["id"].as_str().unwrap();
    demo.choose_primary(id, "teams").await;

    let (status, body) = demo
        .post(&format!("/people/{id}/sync/slack"), json!({}))
        .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("pending")),
        "{body}"
    );
    let url = body["consent_url"].as_str().unwrap().to_owned();
    let consents = demo.get("/consents").await;
    let listed = consents["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["person_id"] == id)
        .cloned()
        .expect("the pending approval is listed");
    assert_eq!(listed["url"], url.as_str());
    // Asking again while it waits gives the same approval link, not a second app.
    let (status, again) = demo
        .post(&format!("/people/{id}/sync/slack"), json!({}))
        .await;
    assert_eq!(
        (status, &again["consent_url"]),
        (200, &json!(url)),
        "{again}"
    );

    // A workspace admin walks the approval page.
    let owner = demo
        .sim_users("slack")
        .await
        .into_iter()
        .find(|u| u["kind"] == "primary_owner")
        .unwrap();
    let (status, page) = demo
        .walk(&url, ("email", owner["email"].as_str().unwrap()), "allow")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Synced</h1>"), "{page}");
    let bot = demo.representation(id, "slack").await;
    assert_eq!(
        (&bot["type"], &bot["status"]),
        (&json!("bot"), &json!("synced")),
        "{bot}"
    );
    let bot_user = bot["external_account"].as_str().unwrap().to_owned();
    assert_eq!(
        demo.sim_kind("slack", &bot_user).await.as_deref(),
        Some("bot")
    );
    assert!(
        !demo.get("/consents").await["consents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["person_id"] == id)
    );

    // Reset deletes the bot's app: its bot user is deactivated.
    let (status, body) = demo.post(&format!("/people/{id}/reset"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        demo.sim_kind("slack", &bot_user).await.as_deref(),
        Some("deactivated")
    );
    assert_eq!(
        demo.representation(id, "slack").await["status"],
        "not_created"
    );

    // A bot never approved is deleted by a reset too, and its approval link is withdrawn.
    let dee = demo
        .people()
        .await
        .into_iter()
        .filter(|p| p["platforms"] == json!(["slack", "teams"]))
        .nth(1)
        .unwrap();
    let dee_id = dee["id"].as_str().unwrap();
    let unapproved = demo.slack_bot_awaiting_approval(&dee).await;
    let (status, body) = demo
        .post(&format!("/people/{dee_id}/reset"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    demo.assert_bot_withdrawn(dee_id, &unapproved).await;
}

#[tokio::test]
async fn moving_the_primary_to_where_the_hub_represents_someone_resets_that_representation() {
    let demo = start_demo(40);
    let fay = demo.someone_on(&["slack", "teams"]).await;
    let id = fay["id"].as_str().unwrap();
    let app = demo.slack_bot_awaiting_approval(&fay).await;

    // She chats from Slack after all: the bot waiting to act for her there would act on her
    // own primary platform, so it is removed, its approval withdrawn, and the representation
    // is not created.
    demo.choose_primary(id, "slack").await;
    assert_eq!(
        demo.representation(id, "slack").await["status"],
        "not_created"
    );
    demo.assert_bot_withdrawn(id, &app).await;
}

impl Demo {
    /// Makes `person` chat from Teams and syncs them on Slack: a bot whose app waits for a
    /// workspace admin's approval. Returns the bot as the simulated Slack lists it.
    async fn slack_bot_awaiting_approval(&self, person: &Value) -> Value {
        let id = person["id"].as_str().unwrap();
        self.choose_primary(id, "teams").await;
        let (status, body) = self
            .post(&format!("/people/{id}/sync/slack"), json!({}))
            .await;
        assert_eq!(
            (status, &body["status"]),
            (200, &json!("pending")),
            "{body}"
        );
        self.sim_users("slack")
            .await
            .into_iter()
            .find(|u| u["kind"] == "bot" && u["display_name"] == person["display_name"])
            .expect("the bot's app exists before approval")
    }

    /// The bot the hub created for person `id` is gone from Slack and its approval withdrawn.
    async fn assert_bot_withdrawn(&self, id: &str, bot: &Value) {
        assert_eq!(
            self.sim_kind("slack", bot["id"].as_str().unwrap())
                .await
                .as_deref(),
            Some("deactivated")
        );
        assert!(
            !self.get("/consents").await["consents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["person_id"] == id)
        );
    }
}

#[tokio::test]
async fn a_teams_account_is_prompted_on_slack_and_synced_through_the_link() {
    let demo = start_demo(40);
    let cy = demo.someone_on(&["slack", "teams"]).await;
    let (id, email) = (cy["id"].as_str().unwrap(), cy["email"].as_str().unwrap());
    demo.choose_primary(id, "slack").await;

    let (status, body) = demo
        .post(&format!("/people/{id}/sync/teams"), json!({}))
        .await;
    assert_eq!(
        (status, &body["status"], &body["prompted"]),
        (200, &json!("pending"), &json!(true)),
        "{body}"
    );
    let first = demo.hub_dm(email).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let first_link = sync_link(&first[0]);

    // Reprompting sends a second, different link.
    let (status, body) = demo
        .post(&format!("/people/{id}/reprompt"), json!({}))
        .await;
    assert_eq!(
        (status, &body["reprompted"]),
        (200, &json!(["teams"])),
        "{body}"
    );
    let prompts = demo.hub_dm(email).await;
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    let link = sync_link(&prompts[1]);
    assert_ne!(link, first_link);
    let teams = demo.representation(id, "teams").await;
    assert_eq!(
        (&teams["type"], &teams["status"], &teams["prompts_sent"]),
        (&json!("existing_account"), &json!("pending"), &json!(2))
    );

    // The person opens the link: a page to confirm the app they chat from.
    let page = demo.browser.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("value=\"slack\" checked"), "{page}");
    let started = demo
        .browser
        .post(&link)
        .form(&[("primary", "slack")])
        .send()
        .await
        .unwrap();
    assert!(started.status().is_redirection(), "{}", started.status());
    let microsoft = location(&link, &started);
    // Then signs in to Microsoft as themselves and accepts.
    let (status, page) = demo.walk(&microsoft, ("login", email), "accept").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Synced</h1>"), "{page}");
    let teams = demo.representation(id, "teams").await;
    assert_eq!(teams["status"], "synced", "{teams}");
    let own_account = demo.get(&format!("/people/{id}")).await["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["platform"] == "teams")
        .unwrap()["external_id"]
        .clone();
    assert_eq!(teams["external_account"], own_account, "their own account");

    // Both links are spent now; a synced account has nothing to be prompted for.
    for spent in [&link, &first_link] {
        assert_eq!(demo.browser.get(spent).send().await.unwrap().status(), 410);
    }
    let (status, body) = demo
        .post(&format!("/people/{id}/reprompt"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("nothing_to_reprompt")),
        "{body}"
    );

    // Reset never deletes the person's own account.
    let (status, _) = demo.post(&format!("/people/{id}/reset"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        demo.sim_kind("teams", own_account.as_str().unwrap())
            .await
            .as_deref(),
        Some("member")
    );
}

/// On a platform whose rules let the admin's grant cover people's own accounts (Google Chat's
/// domain-wide delegation), a person with an account there is synced at once, as that account,
/// with no prompt; with `prompt_own_accounts` on, they are prompted instead and synced through
/// the link, signing in to their own account.
#[tokio::test]
async fn an_own_account_the_admins_grant_covers_syncs_at_once_unless_prompts_are_asked_for() {
    let demo = start_demo_with(40, &[("SWITCHBOARD_DEMO_PLATFORMS", "slack,google_chat")]);
    let rules = demo.get("/platforms").await["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platform"] == "google_chat")
        .unwrap()["rules"]
        .clone();
    assert_eq!(rules["with_account"]["authorised_by"], "admin", "{rules}");
    assert_eq!(
        rules["removal"], "deleted",
        "guest accounts are deleted: {rules}"
    );
    let people = demo.people().await;
    let on_both: Vec<&Value> = people
        .iter()
        .filter(|p| {
            p["platforms"] == json!(["google_chat", "slack"])
                || p["platforms"] == json!(["slack", "google_chat"])
        })
        .collect();
    assert!(on_both.len() >= 2, "two people on Slack and Google Chat");

    // Synced at once, as their own account, and nobody was prompted.
    let ann = on_both[0];
    let (id, email) = (ann["id"].as_str().unwrap(), ann["email"].as_str().unwrap());
    demo.choose_primary(id, "slack").await;
    let (status, body) = demo
        .post(&format!("/people/{id}/sync/google_chat"), json!({}))
        .await;
    assert_eq!((status, &body["status"]), (200, &json!("synced")), "{body}");
    let google = demo.representation(id, "google_chat").await;
    assert_eq!(
        (&google["type"], &google["status"], &google["prompts_sent"]),
        (&json!("existing_account"), &json!("synced"), &json!(0)),
        "{google}"
    );
    assert_eq!(google["external_account"], google_account(&demo, ann).await);
    assert!(demo.hub_dm(email).await.is_empty(), "no prompt on Slack");

    // Asked to, the hub prompts the next one instead; their link leads to Google's sign-in.
    let (status, body) = demo
        .call(
            reqwest::Method::PUT,
            "/settings",
            Some(json!({"prompt_own_accounts": true})),
        )
        .await;
    assert_eq!(
        (status, &body["prompt_own_accounts"]),
        (200, &json!(true)),
        "{body}"
    );
    let bo = on_both[1];
    let (id, email) = (bo["id"].as_str().unwrap(), bo["email"].as_str().unwrap());
    demo.choose_primary(id, "slack").await;
    let (status, body) = demo
        .post(&format!("/people/{id}/sync/google_chat"), json!({}))
        .await;
    assert_eq!(
        (status, &body["status"], &body["prompted"]),
        (200, &json!("pending"), &json!(true)),
        "{body}"
    );
    let prompts = demo.hub_dm(email).await;
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    let link = sync_link(&prompts[0]);
    let google_sign_in = demo.start_sign_in(&link).await;
    let (status, page) = demo.walk(&google_sign_in, ("login", email), "allow").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Synced</h1>"), "{page}");
    let google = demo.representation(id, "google_chat").await;
    assert_eq!(google["status"], "synced", "{google}");
    assert_eq!(google["external_account"], google_account(&demo, bo).await);
}

/// The person's own Google Chat account.
async fn google_account(demo: &Demo, person: &Value) -> Value {
    demo.get(&format!("/people/{}", person["id"].as_str().unwrap()))
        .await["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["platform"] == "google_chat")
        .unwrap()["external_id"]
        .clone()
}

/// A person who pressed "Sync now" and left the platform's sign-in unfinished can come back:
/// the link is spent only once their account is linked. Of two sign-ins started from it (two
/// tabs), the first to finish links the account and the other is refused.
#[tokio::test]
async fn an_abandoned_sign_in_leaves_the_link_working_until_the_account_is_linked() {
    let demo = start_demo(40);
    let cy = demo.someone_on(&["slack", "teams"]).await;
    let (id, email) = (cy["id"].as_str().unwrap(), cy["email"].as_str().unwrap());
    demo.choose_primary(id, "slack").await;
    let (status, body) = demo
        .post(&format!("/people/{id}/sync/teams"), json!({}))
        .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("pending")),
        "{body}"
    );
    let link = sync_link(&demo.hub_dm(email).await[0]);

    // Sync now, then Microsoft's sign-in is left unfinished.
    let abandoned = demo.start_sign_in(&link).await;
    let page = demo.browser.get(&link).send().await.unwrap();
    let status = page.status();
    assert_eq!(status, 200, "{}", page.text().await.unwrap());

    // The link is followed again in two tabs; the first sign-in to finish links the account.
    let (first, second) = (
        demo.start_sign_in(&link).await,
        demo.start_sign_in(&link).await,
    );
    let (status, page) = demo.walk(&first, ("login", email), "accept").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Synced</h1>"), "{page}");
    let synced = demo.representation(id, "teams").await;
    assert_eq!(synced["status"], "synced", "{synced}");
    for other in [&second, &abandoned] {
        let (status, page) = demo.walk(other, ("login", email), "accept").await;
        assert_eq!(status, 409, "{page}");
        assert!(page.contains("already linked"), "{page}");
    }
    assert_eq!(demo.representation(id, "teams").await, synced, "unchanged");

    // The link says so, and starts nothing any more.
    let page = demo.browser.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 410);
    let page = page.text().await.unwrap();
    assert!(page.contains("already linked"), "{page}");
    assert!(!page.contains("<form"), "{page}");
    let started = demo
        .browser
        .post(&link)
        .form(&[("primary", "slack")])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 410);
}

#[tokio::test]
async fn bulk_actions_answer_per_person_and_settings_round_trip() {
    let demo = start_demo(40);
    let single = demo.someone_on(&["slack"]).await;
    let both = demo.someone_on(&["slack", "teams"]).await;
    let single_id = single["id"].as_str().unwrap();
    demo.wait_for_status(single_id, "teams", "synced").await;

    let both_id = both["id"].as_str().unwrap();
    let (status, body) = demo
        .post(
            "/people/bulk/sync",
            json!({"ids": [single_id, both_id, "not-an-id"], "platform": "teams"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let codes: Vec<Option<&str>> = results
        .iter()
        .map(|r| r["error"]["code"].as_str())
        .collect();
    assert_eq!(codes, vec![None, Some("no_primary"), Some("bad_id")]);
    // Someone synced already is a success that changed nothing; a refusal says what to do.
    assert_eq!(
        (&results[0]["ok"], &results[0]["already_synced"]),
        (&json!(true), &json!(true)),
        "{body}"
    );
    assert_eq!(
        results[1]["error"]["message"],
        "no primary platform chosen: choose one first"
    );
    assert_eq!(
        body["summary"],
        json!({"synced": 0, "already_synced": 1, "prompted": 0, "awaiting_consent": 0, "queued": 0, "failed": 2}),
        "{body}"
    );
    // Each person's outcome is audited, the refusal too.
    let audit = demo.get("/audit?limit=1000").await;
    let refused = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == both_id && e["action"] == "person.sync")
        .unwrap_or_else(|| panic!("the refusal is audited: {audit}"));
    assert_eq!(
        (&refused["actor"], &refused["detail"]),
        (
            &json!("token:demo"),
            &json!("teams: refused: no primary platform chosen: choose one first")
        )
    );

    let (status, body) = demo
        .post("/people/bulk/reset", json!({"ids": [single_id]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["ok"], true, "{body}");
    assert!(
        body["results"][0]["reset"]
            .as_array()
            .unwrap()
            .contains(&json!("teams")),
        "{body}"
    );
    let (status, body) = demo
        .post("/people/bulk/sync", json!({"ids": [single_id]}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_body"))
    );
    let (status, _) = demo.post("/people/bulk/explode", json!({"ids": []})).await;
    assert_eq!(status, 404);
    let (status, body) = demo
        .post(&format!("/people/{single_id}/sync/msteams"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_platform"))
    );

    let settings = demo.get("/settings").await;
    assert_eq!(settings["auto_sync"], true, "the demo turns auto-sync on");
    assert_eq!(settings["prompt_throttle_hours"], 24);
    let (status, body) = demo
        .call(
            reqwest::Method::PUT,
            "/settings",
            Some(json!({"prompt_throttle_hours": 0})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_setting"))
    );
    let (status, body) = demo
        .call(
            reqwest::Method::PUT,
            "/settings",
            Some(json!({"auto_prompt": true, "prompt_throttle_hours": 12, "prompt_text": "Link your account"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let settings = demo.get("/settings").await;
    assert_eq!(
        (
            &settings["auto_prompt"],
            &settings["prompt_throttle_hours"],
            &settings["prompt_text"]
        ),
        (&json!(true), &json!(12), &json!("Link your account"))
    );
}

#[tokio::test]
async fn the_demo_approves_its_bots_and_auto_sync_follows_imports() {
    let demo = start_demo(40);
    // The demo's auto-sync creates a bot for someone only on Teams and approves it on the
    // simulated Slack's consent page by itself.
    let started = Instant::now();
    let bot = loop {
        let synced = demo.people().await.into_iter().find_map(|p| {
            let on_teams_only = p["platforms"] == json!(["teams"]);
            p["representations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| on_teams_only && r["platform"] == "slack" && r["status"] == "synced")
                .cloned()
        });
        if let Some(bot) = synced {
            break bot;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no bot was approved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(bot["type"], "bot");
    assert_eq!(
        demo.sim_kind("slack", bot["external_account"].as_str().unwrap())
            .await
            .as_deref(),
        Some("bot")
    );

    // With auto-sync on, an import is followed by a sync of everyone with a primary: someone
    // on both platforms, given Slack as primary, is prompted for their Teams account.
    let eve = demo.someone_on(&["slack", "teams"]).await;
    let id = eve["id"].as_str().unwrap();
    demo.choose_primary(id, "slack").await;
    assert_eq!(demo.representation(id, "teams").await, Value::Null);
    let connections = demo.get("/connections").await;
    let slack = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["platform"] == "slack")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, run) = demo
        .post(&format!("/connections/{slack}/import"), json!({}))
        .await;
    assert_eq!(status, 202, "{run}");
    let teams = demo.wait_for_status(id, "teams", "pending").await;
    assert_eq!(teams["type"], "existing_account");
    assert_eq!(demo.hub_dm(eve["email"].as_str().unwrap()).await.len(), 1);
}

impl Demo {
    async fn teams_connection(&self) -> Value {
        self.get("/connections").await["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["platform"] == "teams")
            .cloned()
            .expect("the demo connects Teams")
    }

    /// Waits until the Teams connection's health satisfies `test`.
    async fn wait_for_health(&self, what: &str, test: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let connection = self.teams_connection().await;
            if test(&connection["health"]) {
                return connection;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the Teams connection never became {what}: {connection}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn sim_action(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/_sim/{path}", self.sim))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary under test runs on the wall clock; its expiry times are compared to it"
)]
fn now_millis() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_refresher_keeps_tokens_fresh_and_a_revoked_one_fails_representations_until_reconnected()
 {
    // Every second, renew whatever expires within two hours: every token, every pass.
    let demo = start_demo_with(
        12,
        &[
            ("SWITCHBOARD_REFRESH_INTERVAL_SECS", "1"),
            ("SWITCHBOARD_REFRESH_MARGIN_SECS", "7200"),
        ],
    );
    let guest = demo.someone_on(&["slack"]).await;
    let id = guest["id"].as_str().unwrap().to_owned();
    demo.wait_for_status(&id, "teams", "synced").await;

    // Tokens now live 3 s; the refresher renews them before each runs out and the health
    // check, made with the renewed token, keeps passing.
    demo.sim_action("teams/token-lifetime", json!({"seconds": 3}))
        .await;
    let short = demo
        .wait_for_health("renewed with a short-lived token", |h| {
            h["ok"] == true
                && h["expires_at"]
                    .as_i64()
                    .is_some_and(|e| e < now_millis() + 10_000)
        })
        .await;
    let first_expiry = short["health"]["expires_at"].as_i64().unwrap();
    assert!(
        short["health"]["identity"]
            .as_str()
            .unwrap()
            .contains("switchboard.service@"),
        "{short}"
    );
    assert!(
        !short["health"]["scopes"].as_array().unwrap().is_empty(),
        "{short}"
    );
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(first_expiry - now_millis()).unwrap_or(0) + 1_500,
    ))
    .await;
    let later = demo
        .wait_for_health("checked after the first token expired", |h| {
            h["ok"] == true
                && h["last_checked_at"]
                    .as_i64()
                    .is_some_and(|t| t > first_expiry)
        })
        .await;
    assert!(
        later["health"]["expires_at"].as_i64().unwrap() > first_expiry,
        "{later}"
    );
    assert_eq!(later["health"]["last_error"], Value::Null, "{later}");
    assert_eq!(demo.representation(&id, "teams").await["status"], "synced");

    // The service user's sessions are revoked: the next refresh is refused, the connection
    // says why and the Teams representations fail with that reason.
    let revoked = demo
        .sim_action(
            "teams/revoke",
            json!({"email": "switchboard.service@acme.example"}),
        )
        .await;
    assert!(revoked["revoked"].as_u64().unwrap() > 0, "{revoked}");
    let failing = demo.wait_for_health("failing", |h| h["ok"] == false).await;
    let error = failing["health"]["last_error"].as_str().unwrap();
    assert!(error.starts_with("token refresh: "), "{failing}");
    assert!(error.contains("invalid_grant"), "{failing}");
    let failed = demo.wait_for_status(&id, "teams", "failed").await;
    assert!(
        failed["failure_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("token refresh: ")),
        "{failed}"
    );

    // The admin reconnects Teams (the same tenant: its credentials are replaced), and a sync
    // brings the representation back.
    let (status, started) = demo
        .post("/connections", json!({"platform": "teams", "inputs": {}}))
        .await;
    assert_eq!(status, 202, "{started}");
    let (_, page) = demo
        .walk(
            started["authorize_url"].as_str().unwrap(),
            ("login", "switchboard.service@acme.example"),
            "accept",
        )
        .await;
    assert!(page.contains("<h1>Connected</h1>"), "{page}");
    demo.wait_for_health("healthy again", |h| h["ok"] == true)
        .await;
    let (status, synced) = demo
        .post(&format!("/people/{id}/sync/teams"), json!({}))
        .await;
    assert_eq!(status, 200, "{synced}");
    demo.wait_for_status(&id, "teams", "synced").await;
    // Everyone else it failed comes back with one bulk sync.
    let mut failed = Vec::new();
    for person in demo.get("/people?status=failed&limit=1000").await["people"]
        .as_array()
        .unwrap()
    {
        let person = person["id"].as_str().unwrap().to_owned();
        if demo.representation(&person, "teams").await["status"] == "failed" {
            failed.push(person);
        }
    }
    assert!(
        !failed.is_empty(),
        "the revocation failed the other guests too"
    );
    let (status, bulk) = demo
        .post(
            "/people/bulk/sync",
            json!({"ids": failed, "platform": "teams"}),
        )
        .await;
    assert_eq!(status, 200, "{bulk}");
    for result in bulk["results"].as_array().unwrap() {
        assert_eq!(result["ok"], true, "{result}");
    }
    for person in &failed {
        demo.wait_for_status(person, "teams", "synced").await;
    }
}

#[tokio::test]
async fn a_persons_revoked_grant_fails_only_their_representation_until_they_authorise_again() {
    let demo = start_demo_with(
        40,
        &[
            ("SWITCHBOARD_REFRESH_INTERVAL_SECS", "1"),
            ("SWITCHBOARD_REFRESH_MARGIN_SECS", "7200"),
        ],
    );
    let cy = demo.someone_on(&["slack", "teams"]).await;
    let (id, email) = (cy["id"].as_str().unwrap(), cy["email"].as_str().unwrap());
    demo.choose_primary(id, "slack").await;

    // The person authorises their own Teams account through the prompt's link.
    authorise(&demo, id, email, 1).await;
    demo.wait_for_status(id, "teams", "synced").await;
    // The refresher renews the person's token too (every pass, with this margin).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(demo.representation(id, "teams").await["status"], "synced");

    // Their sessions are revoked: their representation fails with the reason; the connection,
    // acting as the service user, stays healthy.
    let revoked = demo
        .sim_action("teams/revoke", json!({"email": email}))
        .await;
    assert!(revoked["revoked"].as_u64().unwrap() > 0, "{revoked}");
    let failed = demo.wait_for_status(id, "teams", "failed").await;
    assert!(
        failed["failure_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("token refresh: ") && r.contains("invalid_grant")),
        "{failed}"
    );
    let connection = demo.teams_connection().await;
    assert_ne!(connection["health"]["ok"], false, "{connection}");

    // Syncing from failed prompts them again; authorising once more brings it back.
    authorise(&demo, id, email, 2).await;
    demo.wait_for_status(id, "teams", "synced").await;
}

/// Syncs `id` on Teams (a prompt: their `round`-th) and authorises their own account through the
/// prompt's link, as the person would.
async fn authorise(demo: &Demo, id: &str, email: &str, round: usize) {
    let (status, body) = demo
        .post(&format!("/people/{id}/sync/teams"), json!({}))
        .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("pending")),
        "{body}"
    );
    let prompts = demo.hub_dm(email).await;
    assert_eq!(prompts.len(), round, "{prompts:?}");
    let link = sync_link(&prompts[round - 1]);
    let started = demo
        .browser
        .post(&link)
        .form(&[("primary", "slack")])
        .send()
        .await
        .unwrap();
    assert!(started.status().is_redirection(), "{}", started.status());
    let microsoft = location(&link, &started);
    let (_, page) = demo.walk(&microsoft, ("login", email), "accept").await;
    assert!(page.contains("<h1>Synced</h1>"), "{page}");
}

#[tokio::test]
async fn a_transient_refresh_failure_is_shown_but_fails_nothing() {
    let demo = start_demo_with(
        12,
        &[
            ("SWITCHBOARD_REFRESH_INTERVAL_SECS", "1"),
            ("SWITCHBOARD_REFRESH_MARGIN_SECS", "7200"),
        ],
    );
    let guest = demo.someone_on(&["slack"]).await;
    let id = guest["id"].as_str().unwrap().to_owned();
    demo.wait_for_status(&id, "teams", "synced").await;
    demo.wait_for_health("healthy", |h| h["ok"] == true).await;

    // Entra's token endpoint answers 503 to everything.
    let faults = demo
        .http
        .put(format!("{}/_sim/faults", demo.sim))
        .json(&json!([{"route_prefix": "/login/", "error_rate": 1.0}]))
        .send()
        .await
        .unwrap();
    assert!(faults.status().is_success());
    let unavailable = demo
        .wait_for_health("showing the outage", |h| {
            h["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("token refresh: the platform is unavailable"))
        })
        .await;
    assert_eq!(unavailable["health"]["ok"], true, "{unavailable}");
    assert_eq!(demo.representation(&id, "teams").await["status"], "synced");

    // The outage ends: the next pass renews and the error clears.
    let cleared = demo
        .http
        .delete(format!("{}/_sim/faults", demo.sim))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    demo.wait_for_health("recovered", |h| {
        h["ok"] == true && h["last_error"].is_null()
    })
    .await;
    assert_eq!(demo.representation(&id, "teams").await["status"], "synced");
}

impl Demo {
    async fn connection_id(&self, platform: &str) -> String {
        self.get("/connections").await["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["platform"] == platform)
            .and_then(|c| c["id"].as_str())
            .unwrap_or_else(|| panic!("the demo connects {platform}"))
            .to_owned()
    }

    /// Imports `platform`'s connection again and answers the finished run.
    async fn reimport(&self, platform: &str) -> Value {
        let connection = self.connection_id(platform).await;
        let (status, run) = self
            .post(&format!("/connections/{connection}/import"), json!({}))
            .await;
        assert_eq!(status, 202, "{run}");
        let started = Instant::now();
        loop {
            let run = self
                .get(&format!("/imports/{}", run["id"].as_str().unwrap()))
                .await;
            if run["status"] != "running" {
                assert_eq!(run["status"], "succeeded", "{run}");
                return run;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the import never finished: {run}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until someone on exactly `platforms` has a representation on `on` with `status`.
    async fn someone_represented(&self, platforms: &[&str], on: &str, status: &str) -> Value {
        let started = Instant::now();
        loop {
            let found = self.people().await.into_iter().find(|p| {
                p["platforms"] == json!(platforms)
                    && p["representations"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["platform"] == on && r["status"] == status)
            });
            if let Some(person) = found {
                return person;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "nobody on {platforms:?} became {status} on {on}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn person_by_email(&self, email: &str) -> Value {
        let matching: Vec<Value> = self
            .people()
            .await
            .into_iter()
            .filter(|p| p["email"].as_str().unwrap().eq_ignore_ascii_case(email))
            .collect();
        assert_eq!(matching.len(), 1, "{email}: {matching:?}");
        matching[0].clone()
    }
}

#[tokio::test]
async fn a_reimport_after_people_left_and_joined_resets_leavers_and_adds_joiners_once() {
    let demo = start_demo_with(30, &[("SWITCHBOARD_DEMO_PLATFORMS", "slack,teams")]);
    // Before anyone leaves: a Slack-only person with a guest on Teams, and a Teams-only person
    // with an approved bot on Slack (the demo approves its bots itself).
    let ann = demo
        .someone_represented(&["slack"], "teams", "synced")
        .await;
    let ben = demo
        .someone_represented(&["teams"], "slack", "synced")
        .await;
    let (ann_id, ben_id) = (ann["id"].as_str().unwrap(), ben["id"].as_str().unwrap());
    let ann_guest = demo.representation(ann_id, "teams").await["external_account"]
        .as_str()
        .unwrap()
        .to_owned();
    let ben_bot = demo.representation(ben_id, "slack").await["external_account"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(demo.sim_kind("teams", &ann_guest).await.is_some());
    let before = demo.people().await.len();

    // Ann is deactivated on Slack; Ben leaves his team (he stays in the Microsoft tenant, but
    // no selected team has him); Dee, on Teams only too, is deleted from the tenant.
    let ann_email = ann["email"].as_str().unwrap();
    let ann_slack = demo
        .sim_users("slack")
        .await
        .into_iter()
        .find(|u| {
            u["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(ann_email))
        })
        .expect("Ann is on Slack");
    demo.sim_action("slack/deactivate", json!({"user": ann_slack["id"]}))
        .await;
    let teams_connection = demo.connection_id("teams").await;
    let all_teams: Vec<String> = demo
        .get(&format!("/connections/{teams_connection}/teams"))
        .await["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    let mut ben_teams = Vec::new();
    for team in &all_teams {
        let members = demo.get(&format!("/people?team={team}&limit=1000")).await;
        if members["people"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == ben_id)
        {
            ben_teams.push(team.clone());
        }
    }
    assert_eq!(ben_teams.len(), 1, "Ben is in one team: {ben_teams:?}");
    demo.sim_action(
        "teams/remove-user",
        json!({"email": ben["email"], "team": ben_teams[0]}),
    )
    .await;
    let dee = demo
        .people()
        .await
        .into_iter()
        .find(|p| p["platforms"] == json!(["teams"]) && p["id"] != ben_id)
        .expect("someone else on Teams only");
    let dee_id = dee["id"].as_str().unwrap();
    demo.sim_action("teams/remove-user", json!({"email": dee["email"]}))
        .await;
    // June joins Slack, Jo joins a Teams team, Jay joins both.
    let team = all_teams[0].clone();
    demo.sim_action(
        "slack/members",
        json!({"email": "june.joiner@acme.example", "real_name": "June Joiner"}),
    )
    .await;
    demo.sim_action(
        "teams/users",
        json!({"email": "jo.joiner@acme.example", "display_name": "Jo Joiner", "teams": [team]}),
    )
    .await;
    demo.sim_action(
        "slack/members",
        json!({"email": "jay.joiner@acme.example", "real_name": "Jay Joiner"}),
    )
    .await;
    demo.sim_action(
        "teams/users",
        json!({"email": "Jay.Joiner@acme.example", "display_name": "Jay Joiner", "teams": [team]}),
    )
    .await;

    let slack_run = demo.reimport("slack").await;
    let teams_run = demo.reimport("teams").await;
    // Slack also lists the bots the hub created since the first import.
    assert!(
        slack_run["added"].as_i64().unwrap() >= 2,
        "June and Jay: {slack_run}"
    );
    assert_eq!(teams_run["added"], 2, "Jo and Jay: {teams_run}");
    assert_eq!(teams_run["deactivated"], 2, "Ben and Dee: {teams_run}");
    let ben_email = ben["email"].as_str().unwrap();
    assert!(
        demo.sim_users("teams").await.iter().any(|u| u["email"]
            .as_str()
            .is_some_and(|e| e.eq_ignore_ascii_case(ben_email))),
        "Ben is still in the tenant"
    );

    // The leavers stay visible, on no platform, with inactive accounts; auto-sync resets them,
    // removing the guest and the bot the hub had created for them.
    for (id, platform) in [(ann_id, "teams"), (ben_id, "slack")] {
        let reset = demo.wait_for_status(id, platform, "not_created").await;
        assert!(
            reset["external_account"].is_null(),
            "{id} on {platform}: {reset}"
        );
        // A reset goes through the person's representations one platform after another and
        // clears the primary platform last.
        let started = Instant::now();
        let person = loop {
            let person = demo.get(&format!("/people/{id}")).await;
            if person["primary"].is_null() {
                break person;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{id} kept a primary platform: {person}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let own: Vec<&Value> = person["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "human")
            .collect();
        assert!(!own.is_empty(), "{person}");
        assert!(own.iter().all(|a| a["active"] == false), "{person}");
        let history = person["representations"][0]["history"].as_array().unwrap();
        assert!(
            history
                .iter()
                .any(|t| t["cause"] == "auto-sync: left every platform: reset"),
            "{person}"
        );
    }
    assert_eq!(demo.sim_kind("teams", &ann_guest).await, None);
    assert_eq!(
        demo.sim_kind("slack", &ben_bot).await.as_deref(),
        Some("deactivated")
    );
    for leaver in [ann_id, ben_id, dee_id] {
        let listed = demo
            .people()
            .await
            .into_iter()
            .find(|p| p["id"] == leaver)
            .expect("leavers stay listed");
        assert_eq!(listed["platforms"], json!([]), "{listed}");
    }

    // The joiners are new people, each once; Jay's two accounts are one person.
    let people = demo.people().await;
    assert_eq!(people.len(), before + 3);
    let mut emails: Vec<String> = people
        .iter()
        .map(|p| p["email"].as_str().unwrap().to_lowercase())
        .collect();
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), people.len(), "nobody is listed twice");
    let june = demo.person_by_email("june.joiner@acme.example").await;
    assert_eq!(
        (&june["platforms"], &june["primary"]),
        (&json!(["slack"]), &json!("slack"))
    );
    let jo = demo.person_by_email("jo.joiner@acme.example").await;
    assert_eq!(
        (&jo["platforms"], &jo["primary"]),
        (&json!(["teams"]), &json!("teams"))
    );
    let jay = demo.person_by_email("jay.joiner@acme.example").await;
    assert_eq!(jay["platforms"], json!(["slack", "teams"]), "{jay}");
    let jay = demo
        .get(&format!("/people/{}", jay["id"].as_str().unwrap()))
        .await;
    assert_eq!(jay["accounts"].as_array().unwrap().len(), 2, "{jay}");
    // Auto-sync represents the joiners on their one platform's other side.
    demo.wait_for_status(june["id"].as_str().unwrap(), "teams", "synced")
        .await;
    let jo_bot = demo
        .representation(jo["id"].as_str().unwrap(), "slack")
        .await;
    assert_eq!(jo_bot["type"], "bot", "{jo_bot}");

    // Importing again changes nobody.
    // (Slack's listing grows by the bots auto-sync keeps creating; none of them is a person.)
    let again = demo.reimport("slack").await;
    assert_eq!(again["deactivated"], 0, "{again}");
    let again = demo.reimport("teams").await;
    assert_eq!(
        (&again["added"], &again["deactivated"]),
        (&json!(0), &json!(0)),
        "{again}"
    );
    assert_eq!(demo.people().await.len(), before + 3);
}

#[tokio::test]
async fn a_rule_sends_a_teams_members_to_teams_and_the_hubs_bots_stay_the_hubs() {
    let demo = start_demo(40);
    // A team with members on both platforms.
    let connection = demo.connection_id("teams").await;
    let teams = demo.get(&format!("/connections/{connection}/teams")).await;
    let mut chosen = None;
    for team in teams["teams"].as_array().unwrap() {
        let id = team["id"].as_str().unwrap();
        let members = demo.get(&format!("/people?team={id}&limit=1000")).await["people"]
            .as_array()
            .unwrap()
            .clone();
        if members
            .iter()
            .any(|p| p["platforms"] == json!(["slack", "teams"]))
        {
            chosen = Some((id.to_owned(), members));
            break;
        }
    }
    let (team, members) = chosen.expect("a team has members on both platforms");
    let several: Vec<&Value> = members
        .iter()
        .filter(|p| p["platforms"].as_array().unwrap().len() > 1)
        .collect();
    let on_slack_too = members
        .iter()
        .find(|p| p["platforms"] == json!(["slack", "teams"]))
        .unwrap();
    assert!(
        members
            .iter()
            .all(|p| p["platforms"].as_array().unwrap().contains(&json!("teams"))),
        "members of a Teams team are on Teams"
    );

    // One of them chats from Slack for now, and is prompted for their Teams account.
    let gil = on_slack_too["id"].as_str().unwrap();
    demo.choose_primary(gil, "slack").await;
    let (status, body) = demo
        .post(&format!("/people/{gil}/sync/teams"), json!({}))
        .await;
    assert_eq!((status, &body["prompted"]), (200, &json!(true)), "{body}");

    let rule = |platform: &str| json!({"rule": {"team": team, "platform": platform}});
    let (status, answer) = demo.post("/people/primary", rule("teams")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], several.len(), "{answer}");
    // Teams is their primary platform now: the prompt that waited for them there is reset.
    assert_eq!(
        demo.representation(gil, "teams").await["status"],
        "not_created"
    );
    let after = demo.get(&format!("/people?team={team}&limit=1000")).await["people"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(after.len(), members.len());
    for person in &after {
        let before = members.iter().find(|p| p["id"] == person["id"]).unwrap();
        if person["platforms"].as_array().unwrap().len() > 1 {
            assert_eq!(
                (&person["primary"], &person["primary_chosen_by"]),
                (&json!("teams"), &json!("admin")),
                "{person}"
            );
            assert_eq!(person["choose_primary"], false, "{person}");
        } else {
            assert_eq!(person["primary"], before["primary"], "{person}");
            assert_eq!(person["primary_chosen_by"], "automatic", "{person}");
        }
    }
    let (status, again) = demo.post("/people/primary", rule("teams")).await;
    assert_eq!((status, &again["changed"]), (200, &json!(0)), "{again}");
    let audit = demo.get("/audit").await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "people.set_primary_by_rule" && e["target"] == team.as_str()),
        "{audit}"
    );
    for (body, expected, code) in [
        (
            json!({"rule": {"team": "no-such-team", "platform": "teams"}}),
            404,
            "not_found",
        ),
        (rule("myspace"), 400, "bad_platform"),
        (json!({"team": team, "platform": "teams"}), 400, "bad_body"),
    ] {
        let (status, answer) = demo.post("/people/primary", body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (expected, Some(code)),
            "{answer}"
        );
    }
    let (status, answer) = demo.call(reqwest::Method::GET, "/people?team=", None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("bad_filter")),
        "{answer}"
    );

    // The demo's bots are listed by Slack; a re-import recognises them as the hub's, each
    // belonging to the person it represents, and makes no one of them.
    let ben = demo
        .someone_represented(&["teams"], "slack", "synced")
        .await;
    let bot = demo
        .representation(ben["id"].as_str().unwrap(), "slack")
        .await["external_account"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = demo.people().await.len();
    demo.reimport("slack").await;
    assert_eq!(demo.people().await.len(), before);
    let ben = demo
        .get(&format!("/people/{}", ben["id"].as_str().unwrap()))
        .await;
    let accounts = ben["accounts"].as_array().unwrap();
    let slack_account = accounts
        .iter()
        .find(|a| a["platform"] == "slack")
        .unwrap_or_else(|| panic!("the bot is among the person's accounts: {ben}"));
    assert_eq!(
        (&slack_account["external_id"], &slack_account["kind"]),
        (&json!(bot), &json!("hub_representation")),
        "{ben}"
    );
    assert_eq!(ben["primary"], "teams", "{ben}");
    // A bot is no account to chat from.
    let (status, refused) = demo
        .call(
            reqwest::Method::PUT,
            &format!("/people/{}/primary", ben["id"].as_str().unwrap()),
            Some(json!({"platform": "slack"})),
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (422, &json!("no_account_there")),
        "{refused}"
    );
}

impl Demo {
    /// Waits until `platform`'s connection health satisfies `test`.
    async fn wait_for_connection(
        &self,
        platform: &str,
        what: &str,
        test: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let connection = self.get("/connections").await["connections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["platform"] == platform)
                .cloned()
                .unwrap();
            if test(&connection["health"]) {
                return connection;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the {platform} connection never became {what}: {connection}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The simulated Slack's owner, signed in: their address and session cookie.
    async fn slack_owner(&self) -> (String, String) {
        browser::slack_owner(&self.browser, &self.sim).await
    }
}

#[tokio::test]
async fn an_uninstalled_slack_app_fails_the_bots_until_slack_is_reconnected() {
    // Every second, renew whatever expires within 14 hours (Slack's configuration token lives
    // 12) and check the connections.
    let demo = start_demo_with(
        40,
        &[
            ("SWITCHBOARD_REFRESH_INTERVAL_SECS", "1"),
            ("SWITCHBOARD_REFRESH_MARGIN_SECS", "50400"),
        ],
    );
    let ben = demo
        .someone_represented(&["teams"], "slack", "synced")
        .await;
    let id = ben["id"].as_str().unwrap().to_owned();
    let old_bot = demo.representation(&id, "slack").await["external_account"].clone();
    demo.wait_for_connection("slack", "healthy", |h| h["ok"] == true)
        .await;

    // A workspace admin removes the hub's app from Slack: its bot token is revoked. The next
    // check says so, and the bots the hub manages through the connection fail with the reason.
    let removed = demo
        .sim_action("slack/uninstall", json!({"app": "Switchboard"}))
        .await;
    assert!(removed["app_id"].is_string(), "{removed}");
    let failing = demo
        .wait_for_connection("slack", "failing", |h| h["ok"] == false)
        .await;
    let error = failing["health"]["last_error"].as_str().unwrap();
    assert!(error.starts_with("health check: "), "{failing}");
    assert!(error.contains("token_revoked"), "{failing}");
    let failed = demo.wait_for_status(&id, "slack", "failed").await;
    assert_eq!(failed["failure_reason"].as_str(), Some(error), "{failed}");
    // Teams is unaffected.
    let teams = demo.teams_connection().await;
    assert_ne!(teams["health"]["ok"], false, "{teams}");

    // The admin reconnects Slack: new configuration tokens, and the app installed again
    // through Slack's consent page.
    let (owner, (access, refresh)) =
        browser::slack_configuration_tokens(&demo.browser, &demo.sim).await;
    let (status, started) = demo
        .post(
            "/connections",
            json!({"platform": "slack", "inputs": {
                "app_configuration_token": access,
                "app_configuration_refresh_token": refresh,
            }}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let (_, page) = demo
        .walk(
            started["authorize_url"].as_str().unwrap(),
            ("email", &owner),
            "allow",
        )
        .await;
    assert!(page.contains("<h1>Connected</h1>"), "{page}");
    demo.wait_for_connection("slack", "healthy again", |h| h["ok"] == true)
        .await;

    // One bulk sync replaces every failed bot; the admin approves the new ones.
    let mut failed = Vec::new();
    for person in demo.get("/people?status=failed&limit=1000").await["people"]
        .as_array()
        .unwrap()
    {
        let person = person["id"].as_str().unwrap().to_owned();
        if demo.representation(&person, "slack").await["status"] == "failed" {
            failed.push(person);
        }
    }
    assert!(failed.contains(&id), "{failed:?}");
    let (status, bulk) = demo
        .post(
            "/people/bulk/sync",
            json!({"ids": failed, "platform": "slack"}),
        )
        .await;
    assert_eq!(status, 200, "{bulk}");
    for result in bulk["results"].as_array().unwrap() {
        assert_eq!(
            (&result["ok"], &result["status"]),
            (&json!(true), &json!("pending")),
            "{result}"
        );
    }
    for consent in demo.get("/consents").await["consents"].as_array().unwrap() {
        let (_, page) = demo
            .walk(consent["url"].as_str().unwrap(), ("email", &owner), "allow")
            .await;
        assert!(page.contains("<h1>Synced</h1>"), "{page}");
    }
    for person in &failed {
        demo.wait_for_status(person, "slack", "synced").await;
    }
    // The old bot was removed before its replacement was made: nothing left behind.
    let bot = demo.representation(&id, "slack").await;
    assert_ne!(bot["external_account"], old_bot, "{bot}");
    assert_eq!(
        demo.sim_kind("slack", old_bot.as_str().unwrap())
            .await
            .as_deref(),
        Some("deactivated")
    );
}

#[tokio::test]
async fn a_bot_whose_app_an_admin_removed_fails_alone_and_a_sync_replaces_it() {
    // Every second, checking each bot's token once it has not been checked for ten.
    let demo = start_demo_with(
        40,
        &[
            ("SWITCHBOARD_REFRESH_INTERVAL_SECS", "1"),
            ("SWITCHBOARD_REFRESH_MARGIN_SECS", "7200"),
        ],
    );
    let ben = demo
        .someone_represented(&["teams"], "slack", "synced")
        .await;
    let id = ben["id"].as_str().unwrap().to_owned();
    let old_bot = demo.representation(&id, "slack").await["external_account"].clone();

    // A workspace admin removes Ben's bot app: its token is revoked. The refresher's next check
    // of it fails Ben's representation alone; the hub's own connection stays healthy.
    demo.sim_action("slack/uninstall", json!({"app": ben["display_name"]}))
        .await;
    let failed = demo.wait_for_status(&id, "slack", "failed").await;
    assert!(
        failed["failure_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("token refresh: ") && r.contains("token_revoked")),
        "{failed}"
    );
    let connection = demo
        .wait_for_connection("slack", "checked", |h| !h["ok"].is_null())
        .await;
    assert_eq!(connection["health"]["ok"], true, "{connection}");

    // Syncing again removes the old app and makes a new bot for the admin to approve.
    let (status, synced) = demo
        .post(&format!("/people/{id}/sync/slack"), json!({}))
        .await;
    assert_eq!(
        (status, &synced["status"]),
        (200, &json!("pending")),
        "{synced}"
    );
    let (owner, _) = demo.slack_owner().await;
    let (_, page) = demo
        .walk(
            synced["consent_url"].as_str().unwrap(),
            ("email", &owner),
            "allow",
        )
        .await;
    assert!(page.contains("<h1>Synced</h1>"), "{page}");
    let bot = demo.wait_for_status(&id, "slack", "synced").await;
    assert_ne!(bot["external_account"], old_bot, "{bot}");
}

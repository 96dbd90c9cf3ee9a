//! The admin console through the real binary, spoken to as a browser would: the first owner
//! from the setup link, sessions and their cookies, CSRF tokens, sign-in limits, roles, and
//! actions reaching the audit log.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{RunningDemo, RunningSim, free_port, switchboard};
use reqwest::StatusCode;
use serde_json::Value;

const TOKEN: &str = "console-test-token-0123456789";
const PASSWORD: &str = "correct horse battery staple";

/// A browser without JavaScript: keeps its cookies, follows no redirect by itself.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self::from_address(base, "127.0.0.1")
    }

    /// A browser on another machine: its connections come from `address` (any of loopback's).
    fn from_address(base: &str, address: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(address.parse::<std::net::IpAddr>().unwrap())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: Vec::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) -> Vec<String> {
        let mut set = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap().to_owned();
            let (pair, _) = text.split_once(';').unwrap_or((&text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
            set.push(text);
        }
        set
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, String) {
        let response = self
            .http
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        let status = response.status();
        let location = location(&response);
        (status, location, response.text().await.unwrap())
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        let body: String = form_encode(form);
        let response = self
            .http
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        let status = response.status();
        let location = location(&response);
        (status, location, response.text().await.unwrap())
    }

    /// Signs in, as the sign-in page's form does.
    async fn sign_in(&mut self, email: &str, password: &str) -> (StatusCode, String, String) {
        let (_, _, page) = self.get("/console/sign-in").await;
        let csrf = field(&page, "csrf");
        self.post(
            "/console/sign-in",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}

fn form_encode(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                k,
                v.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The value of the first form field named `name` on a page.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} on {page}"))
        + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

async fn api(demo_url: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{demo_url}/api/v1{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Creates the owner through the demo's setup link; answers a browser signed in as them.
async fn owner_through_setup_link(demo: &RunningDemo) -> Browser {
    let mut browser = Browser::new(&demo.hub_url());
    let link = demo.console.split_whitespace().next().unwrap().to_owned();
    assert!(link.contains("/console/setup?token="), "{}", demo.console);
    let (status, _, page) = browser.get(&link).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (csrf, token) = (field(&page, "csrf"), field(&page, "token"));

    // A forged form (no matching token) creates nobody.
    let (status, _, _) = browser
        .post(
            "/console/setup",
            &[
                ("csrf", "forged"),
                ("token", &token),
                ("email", "mallory@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, page) = browser
        .post(
            "/console/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("email", "owner@example.com"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("at least 12 characters"), "{page}");

    let response = browser
        .http
        .post(browser.url("/console/setup"))
        .header("cookie", browser.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_encode(&[
            ("csrf", &csrf),
            ("token", &token),
            ("email", "Owner@Example.com"),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set = browser.keep_cookies(&response);
    let session = set
        .iter()
        .find(|c| c.starts_with("sb_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Path=/console;"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "the demo is served over http: {session}"
    );

    // The link works once.
    let (status, _, _) = Browser::new(&demo.hub_url()).get(&link).await;
    assert_eq!(status, StatusCode::GONE);
    browser
}

#[tokio::test]
async fn the_first_owner_signs_in_and_out_and_forged_or_unsigned_requests_change_nothing() {
    let demo = RunningDemo::start(30, TOKEN, &[]);
    let hub = demo.hub_url();

    // Before anyone signs in, the console sends browsers to the sign-in page, which says how
    // the first owner is created.
    let mut stranger = Browser::new(&hub);
    let (status, location, _) = stranger.get("/").await;
    assert!(
        status.is_redirection() && location == "/console/",
        "{location}"
    );
    let (status, location, _) = stranger.get("/console/people").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/console/sign-in?next=%2Fconsole%2Fpeople");
    let (_, _, page) = stranger.get("/console/sign-in").await;
    assert!(page.contains("switchboard admin create EMAIL"), "{page}");

    let mut owner = owner_through_setup_link(&demo).await;
    let (status, _, page) = owner.get("/console/people").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("owner@example.com · owner"), "{page}");
    let csrf = field(&page, "csrf");

    // Someone on Slack and Teams, whose primary nobody chose yet.
    let people = api(&hub, "/people?primary=unchosen&limit=1000").await;
    let person = people["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platforms"] == serde_json::json!(["slack", "teams"]))
        .expect("someone on Slack and Teams");
    let id = person["id"].as_str().unwrap();
    let name = person["display_name"].as_str().unwrap();
    assert!(page.contains(name), "{name} is listed");

    // A search with a control character is refused, as the API refuses it (SQLite's LIKE stops
    // at a NUL, so it matched everyone).
    let (status, _, page) = owner.get("/console/people?q=%00").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("control characters"), "{page}");

    // A form posted without the session's token (as another site would) is refused.
    let primary = format!("/console/people/{id}/primary");
    let (status, _, page) = owner.post(&primary, &[("platform", "slack")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    let (status, _, _) = owner
        .post(
            &primary,
            &[("csrf", "not-the-token"), ("platform", "slack")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        api(&hub, &format!("/people/{id}")).await["primary"],
        Value::Null
    );

    // A sync the hub refuses (no primary platform yet) tells the page's script why, in the cell.
    let response = owner
        .http
        .post(owner.url(&format!("/console/people/{id}/sync/teams")))
        .header("cookie", owner.cookie_header())
        .header("x-requested-with", "fetch")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let cell = response.text().await.unwrap();
    assert!(
        cell.contains("role=\"alert\"") && cell.contains("choose one first"),
        "{cell}"
    );

    // With it, the primary platform is chosen, and the audit log says who did it, from where.
    let (status, location, _) = owner
        .post(
            &primary,
            &[
                ("csrf", &csrf),
                ("platform", "slack"),
                ("return", "/console/people?q=x"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/console/people?q=x")
    );
    assert_eq!(
        api(&hub, &format!("/people/{id}")).await["primary"],
        "slack"
    );
    let (_, _, page) = owner.get("/console/people").await;
    assert!(
        page.contains(&format!("{name} chats from Slack now.")),
        "the message of the last action"
    );
    let audit = api(&hub, "/audit?limit=1000").await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "person.set_primary")
        .expect("the choice is audited");
    assert_eq!(
        (&entry["actor"], &entry["target"], &entry["source"]),
        (
            &Value::from("admin:owner@example.com"),
            &Value::from(id),
            &Value::from("127.0.0.1")
        )
    );

    // Signing out ends the session on the server: the old cookie opens nothing.
    let session = owner.cookies.clone();
    let (status, location, _) = owner.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/console/sign-in")
    );
    let mut replayed = Browser::new(&hub);
    replayed.cookies = session;
    let (status, _, _) = replayed.get("/console/people").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Signing in again works; wrong passwords are counted per account and address and then
    // refused from that address.
    let (status, location, _) = owner.sign_in("owner@example.com", PASSWORD).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/console/people")
    );
    let mut guesser = Browser::from_address(&hub, "127.0.0.2");
    for _ in 0..5 {
        let (status, _, page) = guesser
            .sign_in("owner@example.com", "wrong password!")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    }
    let (status, _, page) = guesser.sign_in("owner@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    // Someone else's guesses lock nobody out: the owner, from an address with no failures,
    // signs in with the right password.
    let mut elsewhere = Browser::from_address(&hub, "127.0.0.3");
    let (status, location, _) = elsewhere.sign_in("owner@example.com", PASSWORD).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/console/people")
    );
    // Guessing from many addresses costs one guess each once the account had its five: an
    // address that failed once for it is then refused, even with the right password.
    let mut another = Browser::from_address(&hub, "127.0.0.4");
    let (status, _, _) = another
        .sign_in("owner@example.com", "wrong password!")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = another.sign_in("owner@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_change_and_the_status_stream_reports_each_cell() {
    let sim = RunningSim::start(30, false);
    let data = tempfile::tempdir().unwrap();
    let demo = RunningDemo::start_on(&sim, data.path(), free_port(), TOKEN);
    let hub = demo.hub_url();
    let mut owner = owner_through_setup_link(&demo).await;

    // The command line adds a viewer to the running hub's database.
    let mut create = switchboard()
        .args([
            "admin",
            "create",
            "viewer@example.com",
            "--role",
            "viewer",
            "--password-stdin",
            "--data-dir",
            data.path().to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(create.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let output = create.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("viewer@example.com (viewer)"),
        "{output:?}"
    );

    let mut viewer = Browser::new(&hub);
    let (status, _, _) = viewer.sign_in("viewer@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = viewer.get("/console/people").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("Sync selected"),
        "no actions are offered to a viewer"
    );
    let csrf = field(&page, "csrf");
    let people = api(&hub, "/people?primary=unchosen&limit=1").await;
    let id = people["people"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, page) = viewer
        .post(
            &format!("/console/people/{id}/primary"),
            &[("csrf", &csrf), ("platform", "teams")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("Viewers cannot change anything"), "{page}");
    assert_eq!(
        api(&hub, &format!("/people/{id}")).await["primary"],
        Value::Null
    );

    // The owner's page follows status changes as server-sent events, one cell each.
    let mut synced = api(&hub, "/people?status=synced&limit=1").await;
    for _ in 0..100 {
        if synced["people"][0].is_object() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        synced = api(&hub, "/people?status=synced&limit=1").await;
    }
    let person = &synced["people"][0];
    let representation = &person["representations"][0];
    let cell = format!(
        "{}.{}",
        person["id"].as_str().unwrap(),
        representation["platform"].as_str().unwrap()
    );
    let mut events = owner
        .http
        .get(owner.url(&format!("/console/people/events?cells={cell}")))
        .header("cookie", owner.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let chunk = String::from_utf8(events.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(chunk.starts_with("event: status\ndata: "), "{chunk}");
    let data: Value = serde_json::from_str(
        chunk
            .trim_end()
            .strip_prefix("event: status\ndata: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data[0]["id"], format!("rep-{}", cell.replace('.', "-")));
    assert!(
        data[0]["html"]
            .as_str()
            .unwrap()
            .contains("data-status=\"synced\""),
        "{data}"
    );

    // Signing out ends the stream too.
    let (_, _, page) = owner.get("/console/people").await;
    let csrf = field(&page, "csrf");
    owner.post("/console/sign-out", &[("csrf", &csrf)]).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            let text = String::from_utf8_lossy(&chunk).into_owned();
            assert!(!text.contains("event: status"), "nothing changed: {text}");
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended with the session");
}

/// An API call of the demo's token, answering its status.
async fn api_call(demo_url: &str, method: reqwest::Method, path: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .request(method, format!("{demo_url}/api/v1{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_sync_is_confirmed_in_words_and_a_bulk_sync_shows_each_outcome_and_audits_every_one() {
    let demo = RunningDemo::start(30, TOKEN, &[("SWITCHBOARD_DEMO_PLATFORMS", "slack,teams")]);
    let hub = demo.hub_url();
    let mut owner = owner_through_setup_link(&demo).await;
    let everyone = api(&hub, "/people?limit=1000").await["people"]
        .as_array()
        .unwrap()
        .clone();
    let on = |platforms: Value| {
        everyone
            .iter()
            .find(|p| p["platforms"] == platforms)
            .cloned()
            .unwrap_or_else(|| panic!("nobody on exactly {platforms}"))
    };
    let all_on = |platforms: Value| -> Vec<Value> {
        everyone
            .iter()
            .filter(|p| p["platforms"] == platforms)
            .cloned()
            .collect()
    };
    let (single, both, teams_only) = (
        on(serde_json::json!(["slack"])),
        on(serde_json::json!(["slack", "teams"])),
        on(serde_json::json!(["teams"])),
    );
    let (other_single, other_both, last_on_teams) = (
        all_on(serde_json::json!(["slack"]))[1].clone(),
        all_on(serde_json::json!(["slack", "teams"]))[1].clone(),
        all_on(serde_json::json!(["teams"])).last().unwrap().clone(),
    );
    let id = |person: &Value| person["id"].as_str().unwrap().to_owned();
    let name = |person: &Value| person["display_name"].as_str().unwrap().to_owned();
    // The demo's auto-sync gives the one on Slack alone a guest on Teams.
    let mut synced = false;
    for _ in 0..150 {
        let person = api(&hub, &format!("/people/{}", id(&single))).await;
        if person["representations"][0]["status"] == "synced" {
            synced = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(synced, "auto-sync synced {}", name(&single));

    // The Sync status column's header opens the legend of the four icons.
    let (_, _, page) = owner.get("/console/people").await;
    let csrf = field(&page, "csrf");
    let legend = &page[page.find("<details class=\"legend\">").expect("a legend")..];
    let legend = &legend[..legend.find("</details>").unwrap()];
    assert!(
        legend.contains("aria-label=\"Legend of the sync icons\""),
        "{legend}"
    );
    for (class, meaning) in [
        ("not-created", "Not created"),
        ("pending", "Pending"),
        ("synced", "Synced"),
        ("failed", "Failed"),
    ] {
        assert!(
            legend.contains(&format!("icon {class}")) && legend.contains(meaning),
            "{meaning} in {legend}"
        );
    }

    // Each sync says what it will do, in the words of the platform's rules, before it does it:
    // a page with the sentence and a form that does it.
    for person in [&single, &other_single] {
        let status = api_call(
            &hub,
            reqwest::Method::POST,
            &format!("/people/{}/reset", id(person)),
            serde_json::json!({}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let status = api_call(
        &hub,
        reqwest::Method::PUT,
        &format!("/people/{}/primary", id(&other_both)),
        serde_json::json!({ "platform": "slack" }),
    )
    .await;
    assert_eq!(status, 200);
    for (person, platform, sentence) in [
        (
            &single,
            "teams",
            format!(
                "Create a guest account for {} in Microsoft Teams.",
                name(&single)
            ),
        ),
        (
            &last_on_teams,
            "slack",
            format!("Create a bot for {} in Slack.", name(&last_on_teams)),
        ),
        (
            &other_both,
            "teams",
            format!(
                "Prompt {} to link their Microsoft Teams account.",
                name(&other_both)
            ),
        ),
    ] {
        let confirm = format!("/console/people/{}/sync/{platform}", id(person));
        let (status, _, page) = owner.get(&confirm).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let page = page.replace("&#39;", "'");
        assert!(page.contains(&sentence), "{sentence} in {page}");
        assert!(
            page.contains(&format!("<form method=\"post\" action=\"{confirm}\">"))
                && field(&page, "csrf") == csrf,
            "{page}"
        );
    }
    let confirm = format!("/console/people/{}/sync/teams", id(&single));
    let (status, _, _) = owner.post(&confirm, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let on_teams = api(&hub, &format!("/people/{}", id(&single))).await["representations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["platform"] == "teams")
        .cloned()
        .unwrap();
    assert_eq!(on_teams["status"], "synced");
    // A sync the hub would refuse says why, with nothing to press.
    let (status, _, page) = owner
        .get(&format!("/console/people/{}/sync/teams", id(&both)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("no primary platform chosen")
            && !page.contains("method=\"post\" action=\"/console/people/"),
        "{page}"
    );

    // A bulk sync sums up what it will do, and names who it will not sync, before it runs.
    let selection = [
        ("csrf", csrf.as_str()),
        ("ids", &id(&single)),
        ("ids", &id(&other_single)),
        ("ids", &id(&both)),
        ("ids", &id(&teams_only)),
        ("action", "sync"),
        ("platform", "teams"),
    ];
    let (status, _, page) = owner.post("/console/people/bulk", &selection).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page = page.replace("&#39;", "'");
    assert!(
        page.contains(
            "Create 1 guest account in Microsoft Teams, leave 1 person synced already as they are."
        ) && page.contains(&format!("{}</a>: no primary platform chosen", name(&both))),
        "{page}"
    );
    let mut confirmed = selection.to_vec();
    confirmed.push(("confirmed", "yes"));
    let (status, location, _) = owner.post("/console/people/bulk", &confirmed).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with("/console/people/bulk/"),
        "the admin is shown the outcome: {location}"
    );
    let mut page = String::new();
    for _ in 0..150 {
        let (status, _, body) = owner.get(&location).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        page = body;
        if page.contains("Done:") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let page = page.replace("&#39;", "'");
    assert!(
        page.contains(
            "Done: 1 synced, 1 already synced, 0 prompted, 0 waiting for approval, 0 queued, 2 failed."
        ),
        "{page}"
    );
    for (person, reason) in [
        (&both, "no primary platform chosen: choose one first"),
        (
            &teams_only,
            "Microsoft Teams is the person's primary platform; representations are for the others",
        ),
    ] {
        assert!(
            page.contains(&name(person)) && page.contains(reason),
            "{} failed with {reason}: {page}",
            name(person)
        );
    }

    // Every outcome is in the audit log, as the admin's.
    let audit = api(&hub, "/audit?limit=1000").await;
    for (person, detail) in [
        (&single, "teams: already synced".to_owned()),
        (
            &both,
            "teams: refused: no primary platform chosen: choose one first".to_owned(),
        ),
        (
            &teams_only,
            "teams: refused: Microsoft Teams is the person's primary platform; representations are for the others".to_owned(),
        ),
    ] {
        assert!(
            audit["entries"].as_array().unwrap().iter().any(|e| {
                e["target"] == id(person).as_str()
                    && e["action"] == "person.sync"
                    && e["actor"] == "admin:owner@example.com"
                    && e["detail"] == detail.as_str()
            }),
            "{detail} audited: {audit}"
        );
    }
}

/// `switchboard serve` without an admin logs the one-time setup link; once an admin exists it
/// logs none.
#[tokio::test]
async fn a_hub_without_an_admin_logs_a_setup_link_and_one_with_an_admin_does_not() {
    use std::io::{BufRead, BufReader};

    let data = tempfile::tempdir().unwrap();
    let serve = |port: u16| {
        switchboard()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let port = free_port();
    let mut hub = serve(port);
    let mut log = BufReader::new(hub.stderr.take().unwrap());
    let mut line = String::new();
    let link = loop {
        line.clear();
        assert!(log.read_line(&mut line).unwrap() > 0, "the hub stopped");
        if line.contains("hub listening") {
            continue;
        }
        if let Some(at) = line.find("link=") {
            break line[at + 5..].split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{port}/console/setup?token=")),
        "{line}"
    );
    let (status, _, page) = Browser::new(&format!("http://127.0.0.1:{port}"))
        .get(&link)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let _ = hub.kill();
    let _ = hub.wait();

    let mut create = switchboard()
        .args([
            "admin",
            "create",
            "ada@example.com",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(create.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let output = create.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("ada@example.com (owner)"),
        "the first admin is the owner: {output:?}"
    );

    let port = free_port();
    let mut hub = serve(port);
    let mut log = BufReader::new(hub.stderr.take().unwrap());
    loop {
        line.clear();
        assert!(log.read_line(&mut line).unwrap() > 0, "the hub stopped");
        assert!(!line.contains("link="), "{line}");
        if line.contains("hub listening") {
            break;
        }
    }
    // The log line about the link would follow the listening one at once; give it the chance.
    let mut browser = Browser::new(&format!("http://127.0.0.1:{port}"));
    for _ in 0..50 {
        if browser.get("/healthz").await.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _, _) = browser.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let _ = hub.kill();
    let _ = hub.wait();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert!(!rest.contains("link="), "{rest}");
}

/// Where sign-in leads (`next`) must be one of the console's own pages: anything else
/// (control characters, another site, a path that is not ASCII) is refused before a session
/// starts, with a 400 and no session cookie, and so is a signed-in admin sent there.
#[tokio::test]
async fn a_sign_in_leading_anywhere_but_a_console_page_is_refused_before_a_session_starts() {
    let demo = RunningDemo::start(12, TOKEN, &[]);
    let hub = demo.hub_url();
    let mut owner = owner_through_setup_link(&demo).await;
    for next in [
        "/console/people\r\nSet-Cookie: sb_session=forged",
        "/console/\u{0}",
        "/console/\u{7f}",
        "/console/caf\u{e9}",
        "/console/a b",
        "https://elsewhere.example/console/",
        "//elsewhere.example/console/",
        "/console/\\elsewhere",
        "/people",
    ] {
        let mut stranger = Browser::new(&hub);
        let (_, _, page) = stranger.get("/console/sign-in").await;
        let csrf = field(&page, "csrf");
        let (status, location, page) = stranger
            .post(
                "/console/sign-in",
                &[
                    ("csrf", &csrf),
                    ("email", "owner@example.com"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(
            (status, location.as_str()),
            (StatusCode::BAD_REQUEST, ""),
            "{next:?}: {page}"
        );
        assert!(page.contains("not a page of this console"), "{page}");
        assert!(
            stranger
                .cookies
                .iter()
                .all(|(name, _)| name != "sb_session"),
            "{next:?}: {:?}",
            stranger.cookies
        );

        let (status, _, page) = owner
            .get(&format!(
                "/console/sign-in?{}",
                form_encode(&[("next", next)])
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{next:?}: {page}");
    }

    let mut admin = Browser::new(&hub);
    let (_, _, page) = admin.get("/console/sign-in").await;
    let csrf = field(&page, "csrf");
    let (status, location, _) = admin
        .post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("email", "owner@example.com"),
                ("password", PASSWORD),
                ("next", "/console/audit?before=9"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/console/audit?before=9")
    );
    assert!(admin.cookies.iter().any(|(name, _)| name == "sb_session"));
}

/// A manual bot sync that would wait for Slack's pace (one new app a minute, which the demo's
/// auto-sync is using already) is queued and answered at once with an estimate; the row shows
/// the clock while it waits, and the bot is created later, at the pace, without an error.
#[tokio::test]
async fn a_sync_waiting_for_the_platforms_pace_is_queued_and_answered_at_once() {
    // Slack and Teams only, seven people: one member on Teams only, whose bot auto-sync
    // creates at Slack's pace (the other is deactivated there), and one on Slack and Teams. The
    // simulator's rate limits are on, as in the demo: Slack lets an organisation create two
    // apps, then one a minute, and the hub's own app is the first.
    let demo = RunningDemo::start(7, TOKEN, &[("SWITCHBOARD_DEMO_PLATFORMS", "slack,teams")]);
    let hub = demo.hub_url();
    let mut owner = owner_through_setup_link(&demo).await;
    let everyone = api(&hub, "/people?limit=1000").await["people"]
        .as_array()
        .unwrap()
        .clone();
    let both = everyone
        .iter()
        .find(|p| p["platforms"] == serde_json::json!(["slack", "teams"]))
        .expect("someone on both platforms");
    let id = both["id"].as_str().unwrap();
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Value| {
        http.request(method, format!("{hub}/api/v1{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let chosen = call(
        reqwest::Method::PUT,
        format!("/people/{id}/primary"),
        serde_json::json!({ "platform": "teams" }),
    )
    .await
    .unwrap();
    assert_eq!(chosen.status(), StatusCode::OK);

    let asked = std::time::Instant::now();
    let answer = call(
        reqwest::Method::POST,
        format!("/people/{id}/sync/slack"),
        serde_json::json!({}),
    )
    .await
    .unwrap();
    let elapsed = asked.elapsed();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        elapsed < std::time::Duration::from_secs(1),
        "answered in {elapsed:?}"
    );
    assert_eq!(body["status"], "queued", "{body}");
    // The third app: behind at most two, one a minute.
    let estimate = body["estimated_wait_seconds"].as_u64().unwrap();
    assert!((2..=130).contains(&estimate), "{body}");

    // The row shows the clock while the sync waits its turn.
    let (_, _, page) = owner
        .get(&format!(
            "/console/people?q={}",
            both["email"].as_str().unwrap()
        ))
        .await;
    let cell = format!("data-cell=\"{id}.slack\" data-status=\"syncing\"");
    assert!(page.contains(&cell), "{page}");
    // So does the cell the page's script gets back from another sync of it, which is refused
    // while the queued one holds the representation.
    let response = owner
        .http
        .post(owner.url(&format!("/console/people/{id}/sync/slack")))
        .header("cookie", owner.cookie_header())
        .header("x-requested-with", "fetch")
        .header("x-csrf-token", field(&page, "csrf"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let refused = response.text().await.unwrap();
    assert!(
        refused.contains(&cell) && refused.contains("being synced or reset right now"),
        "{refused}"
    );

    // The bot is created at the pace: it waits for a workspace admin's approval (or the demo's
    // autopilot approved it already), and nothing failed on the way.
    let mut representation = Value::Null;
    for _ in 0..((estimate + 30) * 5) {
        let person = api(&hub, &format!("/people/{id}")).await;
        representation = person["representations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["platform"] == "slack")
            .cloned()
            .unwrap_or(Value::Null);
        if representation["status"] == "pending" || representation["status"] == "synced" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        representation["status"] == "pending" || representation["status"] == "synced",
        "the bot was created: {representation}"
    );
    let audit = api(&hub, "/audit?limit=1000").await;
    let details: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == id && e["action"] == "person.sync")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert!(
        details.contains(&"slack: waiting for an admin's approval"),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .all(|d| !d.contains("failed") && !d.contains("rate limited")),
        "{details:?}"
    );
}

/// Polls the API until `found` accepts what `path` answers.
async fn api_until(demo_url: &str, path: &str, found: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..150 {
        let answer = api(demo_url, path).await;
        if found(&answer) {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("{path} never answered what was expected");
}

#[tokio::test]
async fn pages_say_what_they_show_in_the_projects_words() {
    let demo = RunningDemo::start(30, TOKEN, &[]);
    let hub = demo.hub_url();
    let mut owner = owner_through_setup_link(&demo).await;

    // An unknown console page is the console's own 404, in its frame, with a way on.
    let (status, _, page) = owner.get("/console/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    assert!(
        page.contains("aria-label=\"Console\""),
        "the navigation: {page}"
    );
    assert!(page.contains("/console/no-such-page"), "{page}");
    assert!(page.contains("href=\"/console/people\""), "{page}");

    // Sync users counts the people the filters match, on every page.
    let everyone = api(&hub, "/people?limit=500").await["people"]
        .as_array()
        .unwrap()
        .len();
    let (_, _, page) = owner.get("/console/people").await;
    assert!(
        page.contains(&format!("{everyone} people in all")),
        "{everyone}: {page}"
    );
    let someone = api(&hub, "/people?limit=1").await["people"][0].clone();
    let email = someone["email"].as_str().unwrap();
    let (_, _, page) = owner.get(&format!("/console/people?q={email}")).await;
    assert!(page.contains("1 person matches"), "{page}");

    // A person on one platform: their primary was chosen automatically; their page offers the
    // row menu's actions.
    let single = api(&hub, "/people?limit=500").await["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["primary_chosen_by"] == "automatic")
        .unwrap()
        .clone();
    let id = single["id"].as_str().unwrap();
    let (status, _, page) = owner.get(&format!("/console/people/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("(chosen automatically)"), "{page}");
    assert!(!page.contains("chosen by automatic"), "{page}");
    for action in ["reset", "reprompt", "remove"] {
        assert!(
            page.contains(&format!("/console/people/{id}/confirm/{action}")),
            "{action}: {page}"
        );
    }

    // The audit log names and links the person an action was on.
    let choosable = api(&hub, "/people?primary=unchosen&limit=1").await["people"][0].clone();
    let chosen_id = choosable["id"].as_str().unwrap();
    let chosen_platform = choosable["platforms"][0].as_str().unwrap();
    let (_, _, page) = owner.get("/console/people").await;
    let csrf = field(&page, "csrf");
    let (status, _, _) = owner
        .post(
            &format!("/console/people/{chosen_id}/primary"),
            &[("csrf", &csrf), ("platform", chosen_platform)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = owner.get("/console/audit?action=person.set_primary").await;
    let name = choosable["display_name"].as_str().unwrap();
    assert!(
        page.contains(&format!(
            "<a href=\"/console/people/{chosen_id}\">{name}</a>"
        )),
        "{page}"
    );

    // The Connect Center names who Slack's connection acts as, and tucks a healthy
    // connection's reconnect form away.
    let slack = api_until(&hub, "/connections", |c| {
        c["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["platform"] == "slack" && c["health"]["identity"].is_string())
    })
    .await["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["platform"] == "slack")
        .unwrap()
        .clone();
    let identity = slack["health"]["identity"].as_str().unwrap();
    assert!(identity.contains(' '), "a name, not only an id: {identity}");
    let (_, _, page) = owner.get("/console/connections").await;
    assert!(page.contains(identity), "{page}");
    assert!(
        page.contains("<details class=\"reconnect\"><summary>Reconnect Slack</summary>"),
        "{page}"
    );

    // An import's summary adds up, and says what it skipped.
    let connections = api(&hub, "/connections").await;
    for connection in connections["connections"].as_array().unwrap() {
        let run = &connection["last_import"];
        let part = |name: &str| run[name].as_i64().unwrap();
        assert_eq!(
            part("seen"),
            part("added") + part("updated") + part("skipped"),
            "{run}"
        );
    }
    let (_, _, page) = owner.get("/console/imports").await;
    assert!(
        page.contains("skipped (bots, deactivated users and the hub's own guests and bots, which are no people)"),
        "{page}"
    );
}

/// What the hub made for a person on a platform that cannot delete it (its module declares the
/// removal "forgotten") is named in the reset and removal confirmations, and nowhere else.
#[tokio::test]
async fn a_reset_and_a_removal_warn_of_what_the_platform_cannot_delete() {
    // Enough people for some on two platforms, whom nobody chose a primary for yet: they have
    // no representation.
    let demo = RunningDemo::start(20, TOKEN, &[]);
    let hub = demo.hub_url();
    let mut owner = owner_through_setup_link(&demo).await;
    let forgetting: Vec<Value> = api(&hub, "/platforms").await["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|module| module["rules"]["removal"] == "forgotten")
        .map(|module| module["platform"].clone())
        .collect();
    assert!(!forgetting.is_empty(), "a module declares it forgets");

    let kept_by = |person: &Value| {
        person["representations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| {
                forgetting.contains(&r["platform"])
                    && r["type"] != "existing_account"
                    && !r["external_account"].is_null()
            })
    };
    let started = std::time::Instant::now();
    let (kept, none) = loop {
        let people = api(&hub, "/people?limit=1000").await["people"]
            .as_array()
            .unwrap()
            .clone();
        let kept = people.iter().find(|p| kept_by(p)).cloned();
        let none = people
            .iter()
            .find(|p| p["representations"].as_array().unwrap().is_empty())
            .cloned();
        if let (Some(kept), Some(none)) = (kept, none) {
            break (kept, none);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no one got a representation a platform cannot delete"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };

    let warning = "cannot be deleted there";
    for (person, action, warned) in [
        (&kept, "reset", true),
        (&kept, "remove", true),
        (&kept, "reprompt", false),
        (&none, "reset", false),
    ] {
        let id = person["id"].as_str().unwrap();
        let (status, _, page) = owner
            .get(&format!("/console/people/{id}/confirm/{action}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page.contains(warning), warned, "{action}: {page}");
    }
    let name = kept["display_name"].as_str().unwrap();
    let (_, _, page) = owner
        .get(&format!(
            "/console/people?q={}",
            kept["email"].as_str().unwrap()
        ))
        .await;
    assert!(
        page.contains(warning),
        "{name}'s row menu warns too: {page}"
    );
}

/// A platform that represents only people with an account there (its module declares the rest
/// `unsupported`) shows everyone else as not represented, with the reason, and offers no sync.
#[tokio::test]
async fn a_platform_that_cannot_represent_someone_says_so_and_offers_no_sync() {
    let demo = RunningDemo::start(20, TOKEN, &[]);
    let hub = demo.hub_url();
    let mut owner = owner_through_setup_link(&demo).await;
    let modules = api(&hub, "/platforms").await["platforms"]
        .as_array()
        .unwrap()
        .clone();
    let account_only: Vec<String> = modules
        .iter()
        .filter(|module| module["rules"]["without_account"]["kind"] == "unsupported")
        .map(|module| module["platform"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !account_only.is_empty(),
        "a module represents only account holders"
    );
    let only = &account_only[0];
    let only_name = modules
        .iter()
        .find(|module| module["platform"] == only.as_str())
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let people = api(&hub, "/people?limit=1000").await["people"]
        .as_array()
        .unwrap()
        .clone();
    let elsewhere = people
        .iter()
        .find(|p| {
            let on = p["platforms"].as_array().unwrap();
            on.len() == 1 && on[0] != only.as_str()
        })
        .expect("someone on one other platform alone");
    let id = elsewhere["id"].as_str().unwrap();
    let email = elsewhere["email"].as_str().unwrap();
    let reason = format!(
        "{only_name} can represent only people with a {only_name} account, and this person has none"
    );

    let (status, _, page) = owner
        .get(&format!("/console/people?q={}", email.replace('@', "%40")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("{only_name}: not represented: {reason}")),
        "{page}"
    );
    assert!(
        !page.contains(&format!("/console/people/{id}/sync/{only}")),
        "{page}"
    );

    let (status, _, page) = owner.get(&format!("/console/people/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("Not represented on {only_name}: {reason}.")),
        "{page}"
    );
    assert!(!page.contains(&format!("/sync/{only}")), "{page}");
}

#[tokio::test]
async fn the_directory_page_previews_a_choice_of_groups_and_applies_it() {
    let demo = RunningDemo::start(12, TOKEN, &[("SWITCHBOARD_DEMO_PLATFORMS", "slack,teams")]);
    let hub = demo.hub_url();
    let mut owner = owner_through_setup_link(&demo).await;
    let teams = api(&hub, "/connections").await["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["platform"] == "teams")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let chosen = format!("{teams}:5b000005-0000-4000-8000-000000000000");

    let (status, _, page) = owner.get("/console/directory").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("No group is chosen: everyone is in scope."),
        "{page}"
    );
    assert!(page.contains("Switchboard users"), "{page}");
    assert!(page.contains("security group (Microsoft Teams)"), "{page}");
    let csrf = field(&page, "csrf");

    // The preview says who would leave and changes nothing.
    let (status, _, page) = owner
        .post(
            "/console/directory/preview",
            &[("csrf", &csrf), ("group", &chosen)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("would leave (reset and removed)"), "{page}");
    assert!(page.contains(&format!("value=\"{chosen}\"")), "{page}");
    assert_eq!(
        api(&hub, "/directory").await["groups"],
        serde_json::json!([])
    );

    // Applied, the group is followed, read, and shown with its reading.
    let (status, location, _) = owner
        .post("/console/directory", &[("csrf", &csrf), ("group", &chosen)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/console/directory");
    let directory = api_until(&hub, "/directory", |d| {
        !d["groups"][0]["last_read"].is_null()
    })
    .await;
    assert_eq!(directory["groups"][0]["name"], "Switchboard users");
    let (_, _, page) = owner.get("/console/directory").await;
    assert!(page.contains("Directory Sync follows 1 group"), "{page}");
    assert!(page.contains("of the hub's people are in scope."), "{page}");
    let audit = api(&hub, "/audit?limit=50").await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "directory.update"
                && e["actor"].as_str().unwrap().starts_with("admin:")),
        "{audit}"
    );
}

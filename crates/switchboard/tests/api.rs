//! The REST API of a real hub, set up by `switchboard demo` against the built-in simulator: the
//! demo connects every simulated platform as an admin would and imports, then these
//! tests speak HTTP to it as a script would.

mod common;

use std::time::Duration;

use common::RunningDemo;

use serde_json::{Value, json};

const TOKEN: &str = "api-test-token-0123456789";

struct Demo {
    process: RunningDemo,
    base: String,
    http: reqwest::Client,
}

/// Starts the demo and waits until it says it is ready (after setting up and importing).
fn start_demo(people: usize) -> Demo {
    start_demo_with(people, &[])
}

fn start_demo_with(people: usize, environment: &[(&str, &str)]) -> Demo {
    let process = RunningDemo::start(people, TOKEN, environment);
    Demo {
        base: format!("{}/api/v1", process.hub_url()),
        process,
        http: reqwest::Client::new(),
    }
}

impl Demo {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
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

    async fn all_people(&self, filter: &str) -> Vec<Value> {
        let mut people = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .get(&format!(
                    "/people?limit=37{filter}{}",
                    cursor
                        .as_deref()
                        .map(|c| format!("&cursor={c}"))
                        .unwrap_or_default()
                ))
                .await;
            people.extend(page["people"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return people,
            }
        }
    }
}

#[tokio::test]
async fn the_demo_connects_imports_and_matches_people() {
    let demo = start_demo(200);
    let connections = demo.get("/connections").await;
    let connections = connections["connections"].as_array().unwrap().clone();
    let platforms: Vec<&str> = connections
        .iter()
        .map(|c| c["platform"].as_str().unwrap())
        .collect();
    let modules = demo.get("/platforms").await;
    let mut modules: Vec<&str> = modules["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    let mut connected = platforms.clone();
    connected.sort_unstable();
    modules.sort_unstable();
    assert_eq!(connected, modules, "the demo connects every platform");
    for connection in &connections {
        assert_eq!(
            connection["last_import"]["status"], "succeeded",
            "{connection}"
        );
    }

    let people = demo.all_people("").await;
    let on_several: Vec<&Value> = people
        .iter()
        .filter(|p| p["platforms"].as_array().unwrap().len() >= 2)
        .collect();
    assert!(
        people.len() >= 195 && people.len() <= 200,
        "{} people",
        people.len()
    );
    assert!(on_several.len() >= 38, "{} on several", on_several.len());
    let mut emails: Vec<&str> = people
        .iter()
        .map(|p| p["email"].as_str().unwrap())
        .collect();
    emails.sort_unstable();
    emails.dedup();
    assert_eq!(
        emails.len(),
        people.len(),
        "every person once, across pages"
    );
    for person in &on_several {
        assert_eq!(person["primary"], Value::Null, "{person}");
        assert_eq!(person["choose_primary"], true);
    }
    for person in people
        .iter()
        .filter(|p| p["platforms"].as_array().unwrap().len() == 1)
    {
        assert_eq!(person["primary"], person["platforms"][0], "{person}");
        assert_eq!(person["primary_chosen_by"], "automatic");
    }
    let unchosen = demo.all_people("&primary=unchosen").await;
    assert_eq!(unchosen.len(), on_several.len());
}

#[tokio::test]
async fn the_admin_chooses_primaries_and_reimports_change_nothing() {
    let demo = start_demo(60);
    let unchosen = demo.all_people("&primary=unchosen").await;
    let chosen = unchosen
        .iter()
        .find(|p| p["platforms"] == json!(["slack", "teams"]))
        .expect("someone on Slack and Teams alone");
    let id = chosen["id"].as_str().unwrap();
    let (status, person) = demo
        .call(
            reqwest::Method::PUT,
            &format!("/people/{id}/primary"),
            Some(json!({"platform": "teams"})),
        )
        .await;
    assert_eq!(status, 200, "{person}");
    assert_eq!(
        (
            person["primary"].as_str(),
            person["primary_chosen_by"].as_str()
        ),
        (Some("teams"), Some("admin"))
    );
    assert_eq!(
        demo.all_people("&primary=unchosen").await.len(),
        unchosen.len() - 1
    );
    let detail = demo.get(&format!("/people/{id}")).await;
    let accounts: Vec<&str> = detail["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["platform"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, vec!["slack", "teams"]);

    let slack_only = demo.all_people("&primary=slack").await;
    let slack_only = slack_only
        .iter()
        .find(|p| p["platforms"].as_array().unwrap().len() == 1)
        .unwrap();
    let (status, refused) = demo
        .call(
            reqwest::Method::PUT,
            &format!("/people/{}/primary", slack_only["id"].as_str().unwrap()),
            Some(json!({"platform": "teams"})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("no_account_there"))
    );

    let before = demo.all_people("").await.len();
    let connections = demo.get("/connections").await;
    let slack = connections["connections"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, run) = demo
        .call(
            reqwest::Method::POST,
            &format!("/connections/{slack}/import"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let finished = loop {
        let current = demo.get(&format!("/imports/{run_id}")).await;
        if current["status"] != "running" {
            break current;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finished["status"], "succeeded", "{finished}");
    // The demo's auto-sync creates bots on Slack in the background, at Slack's pace, so a
    // re-import may find one the hub made meanwhile (its account recorded as the hub's); no
    // human is added and no person (below).
    assert_eq!(finished["deactivated"].as_i64(), Some(0));
    let hubs_bots = demo.all_people("&type=bot").await.len();
    assert!(
        finished["added"].as_u64().unwrap() <= hubs_bots as u64,
        "only the hub's own bots may be new: {finished}"
    );
    assert!(finished["updated"].as_i64().unwrap() > 0);
    assert_eq!(
        demo.all_people("").await.len(),
        before,
        "a re-import duplicates nothing"
    );
    let still = demo.get(&format!("/people/{id}")).await;
    assert_eq!(
        still["primary"], "teams",
        "the admin's choice survives a re-import"
    );

    // Auto-sync's outcomes are audited too, so the admin's entries are further back.
    let audit = demo.get("/audit?limit=1000").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"person.set_primary") && actions.contains(&"connection.import"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn bad_requests_get_stable_codes_never_a_server_error() {
    // Zoom is left unconnected, to be the platform the hub knows but has no connection for.
    let demo = start_demo_with(20, &[("SWITCHBOARD_DEMO_PLATFORMS", "slack,teams")]);
    let unknown = "01a20000-0000-7000-8000-000000000000";
    for (method, path, body, status, code) in [
        (
            reqwest::Method::GET,
            "/people?status=bogus".to_owned(),
            None,
            400,
            "bad_filter",
        ),
        (
            reqwest::Method::GET,
            "/people?type=robot".to_owned(),
            None,
            400,
            "bad_filter",
        ),
        (
            reqwest::Method::GET,
            "/people?primary=myspace".to_owned(),
            None,
            400,
            "bad_filter",
        ),
        (
            // Known, but no connection: no one can have it as their primary.
            reqwest::Method::GET,
            "/people?primary=zoom".to_owned(),
            None,
            400,
            "bad_filter",
        ),
        (
            reqwest::Method::GET,
            "/people?limit=0".to_owned(),
            None,
            400,
            "bad_filter",
        ),
        (
            reqwest::Method::GET,
            "/people?cursor=%%%".to_owned(),
            None,
            400,
            "bad_cursor",
        ),
        (
            reqwest::Method::GET,
            "/people?cursor=bm90IGEgY3Vyc29y".to_owned(),
            None,
            400,
            "bad_cursor",
        ),
        (
            reqwest::Method::GET,
            "/people?colour=red".to_owned(),
            None,
            400,
            "bad_filter",
        ),
        (
            reqwest::Method::GET,
            "/people/not-an-id".to_owned(),
            None,
            400,
            "bad_id",
        ),
        (
            reqwest::Method::GET,
            format!("/people/{unknown}"),
            None,
            404,
            "not_found",
        ),
        (
            reqwest::Method::PUT,
            format!("/people/{unknown}/primary"),
            Some(json!({"platform": "slack"})),
            404,
            "not_found",
        ),
        (
            reqwest::Method::PUT,
            format!("/people/{unknown}/primary"),
            Some(json!({"platform": "icq"})),
            400,
            "bad_filter",
        ),
        (
            reqwest::Method::PUT,
            format!("/people/{unknown}/primary"),
            Some(json!({"platfrom": "slack"})),
            400,
            "bad_body",
        ),
        (
            reqwest::Method::POST,
            format!("/connections/{unknown}/import"),
            None,
            404,
            "not_found",
        ),
        (
            reqwest::Method::GET,
            "/imports/nope".to_owned(),
            None,
            404,
            "not_found",
        ),
        (
            reqwest::Method::POST,
            "/connections".to_owned(),
            Some(json!({"platform": "zoom"})),
            409,
            "platform_not_configured",
        ),
        (
            reqwest::Method::POST,
            "/connections".to_owned(),
            Some(json!({"platform": "slack", "inputs": {"password": "x"}})),
            400,
            "unknown_input",
        ),
        (
            reqwest::Method::GET,
            "/no/such/thing".to_owned(),
            None,
            404,
            "not_found",
        ),
    ] {
        let (got, answer) = demo.call(method.clone(), &path, body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {body:?}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    for token in [None, Some("wrong-token-0000000000")] {
        let mut request = demo.http.get(format!("{}/people", demo.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn errors_raised_before_an_endpoint_runs_are_json_too() {
    let demo = start_demo(12);
    let long = |length: usize| format!("/people?q={}", "a".repeat(length));
    for (method, path, status, code) in [
        (
            reqwest::Method::GET,
            "/people/%FF".to_owned(),
            400,
            "bad_id",
        ),
        (
            reqwest::Method::POST,
            "/relay/dead-letters/%FF%FE/retry".to_owned(),
            400,
            "bad_id",
        ),
        (
            reqwest::Method::GET,
            "/relay/dead-letters?limit=many".to_owned(),
            400,
            "bad_query",
        ),
        (
            reqwest::Method::GET,
            "/relay/dead-letters?colour=red".to_owned(),
            400,
            "bad_query",
        ),
        (
            reqwest::Method::GET,
            "/people?q=%00".to_owned(),
            400,
            "bad_query",
        ),
        (
            reqwest::Method::GET,
            "/people?q=ann%1Bb".to_owned(),
            400,
            "bad_query",
        ),
        (reqwest::Method::GET, long(257), 400, "bad_query"),
        (reqwest::Method::GET, long(60_000), 400, "bad_query"),
        (
            reqwest::Method::DELETE,
            "/relay".to_owned(),
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::PATCH,
            "/people".to_owned(),
            405,
            "method_not_allowed",
        ),
    ] {
        let response = demo
            .http
            .request(method.clone(), format!("{}{path}", demo.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let shown = &path[..path.len().min(60)];
        assert_eq!(response.status().as_u16(), status, "{method} {shown}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method} {shown}"
        );
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["error"]["code"].as_str(),
            Some(code),
            "{method} {shown}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }

    // A prompt link's secret pasted as a token is recognised for what it is.
    let response = demo
        .http
        .get(format!("{}/people", demo.base))
        .bearer_auth("sbp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "unauthorised", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prompt link"),
        "{answer}"
    );

    // A search of 256 characters is still a search.
    let (status, _) = demo.call(reqwest::Method::GET, &long(256), None).await;
    assert_eq!(status, 200);

    // Past 64 KiB a request target cannot be represented at all (`http::Uri`, which reqwest
    // refuses to send too), so the HTTP parser refuses it before any handler runs, with no
    // body (docs/api.md says so).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut connection = tokio::net::TcpStream::connect(("127.0.0.1", demo.process.hub))
        .await
        .unwrap();
    let request = format!(
        "GET /api/v1{} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
        long(100_000)
    );
    connection.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    connection.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 414 URI Too Long\r\n") && answer.ends_with("\r\n\r\n"),
        "{answer}"
    );
}

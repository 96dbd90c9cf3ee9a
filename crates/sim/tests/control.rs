//! The simulator's own `/_sim/` API, over real HTTP on a loopback port.

use serde_json::{Value, json};
use switchboard_sim::{SimConfig, Simulator};

async fn start(config: SimConfig) -> (String, Simulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let simulator = Simulator::new(SimConfig {
        base_url: base.clone(),
        ..config
    })
    .unwrap();
    let router = simulator.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, simulator)
}

fn config(people: usize) -> SimConfig {
    SimConfig {
        base_url: String::new(),
        people,
        rate_limits: true,
        state_file: None,
        platforms: None,
    }
}

async fn send(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn seeding_fills_every_platform_and_users_are_listed() {
    let (base, _sim) = start(config(10)).await;
    let (status, seeded) = send(
        reqwest::Method::POST,
        format!("{base}/_sim/seed"),
        Some(json!({"people": 100, "seed": 3})),
    )
    .await;
    assert_eq!(status, 200, "{seeded}");
    assert_eq!(seeded["people"], 100);
    let (_, slack) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/users?platform=slack"),
        None,
    )
    .await;
    let (_, teams) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/users?platform=teams"),
        None,
    )
    .await;
    let has = |users: &Value, email: &str| {
        users.as_array().unwrap().iter().any(|u| {
            u["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
    };
    let org = switchboard_sim_kit::Organisation::generate(&switchboard_sim_kit::OrgSpec {
        people: 100,
        seed: 3,
        ..switchboard_sim_kit::OrgSpec::new(vec![
            switchboard_sim_kit::OrgPlatform::new("slack"),
            switchboard_sim_kit::OrgPlatform::new("teams"),
            switchboard_sim_kit::OrgPlatform::new("google_chat"),
            switchboard_sim_kit::OrgPlatform::new("webex"),
            switchboard_sim_kit::OrgPlatform::new("zoom"),
        ])
    });
    for person in &org.people {
        assert_eq!(
            has(&slack, &person.email),
            person.is_on("slack"),
            "{}",
            person.email
        );
        assert_eq!(
            has(&teams, &person.email),
            person.is_on("teams"),
            "{}",
            person.email
        );
    }
}

#[tokio::test]
async fn tokens_are_minted_for_simulated_users_only() {
    let (base, _sim) = start(config(40)).await;
    let (_, users) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/users?platform=slack"),
        None,
    )
    .await;
    let email = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "member")
        .and_then(|u| u["email"].as_str())
        .unwrap()
        .to_owned();
    let (status, minted) = send(
        reqwest::Method::POST,
        format!("{base}/_sim/token"),
        Some(json!({"platform": "slack", "email": email})),
    )
    .await;
    assert_eq!(status, 200, "{minted}");
    assert!(minted["token"].as_str().is_some_and(|t| !t.is_empty()));

    let (status, _) = send(
        reqwest::Method::POST,
        format!("{base}/_sim/token"),
        Some(json!({"platform": "slack", "email": "nobody@nowhere.example"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = send(
        reqwest::Method::POST,
        format!("{base}/_sim/token"),
        Some(json!({"platform": "myspace", "email": email})),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("myspace"));
}

#[tokio::test]
async fn bad_control_requests_get_clear_4xx_answers() {
    let (base, _sim) = start(config(5)).await;
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/_sim/seed",
            json!({"people": "many"}),
        ),
        (
            reqwest::Method::POST,
            "/_sim/seed",
            json!({"people": 10_000_000}),
        ),
        (
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"error_rate": 0.5}]),
        ),
        (
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/x", "error_rate": 2}]),
        ),
        (
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/x", "error_status": 200}]),
        ),
        (
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"channel": "D1", "error_rate": 1, "duration_secs": 0}]),
        ),
        (
            reqwest::Method::PUT,
            "/_sim/settings",
            json!({"webhook_time_scale": -1}),
        ),
        (
            reqwest::Method::PUT,
            "/_sim/settings",
            json!({"rate_limitz": false}),
        ),
        (reqwest::Method::POST, "/_sim/save", json!({})),
    ] {
        let (status, answer) =
            send(method.clone(), format!("{base}{path}"), Some(body.clone())).await;
        assert!(
            (400..500).contains(&status),
            "{method} {path} {body} -> {status} {answer}"
        );
        assert!(
            answer["error"].is_string() || answer.is_string(),
            "{answer}"
        );
    }
    let (status, _) = send(reqwest::Method::GET, format!("{base}/_sim/users"), None).await;
    assert_eq!(status, 400);
    let (status, _) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/log?kind=everything"),
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn injected_faults_answer_in_the_platforms_shapes_and_are_logged() {
    let (base, _sim) = start(config(5)).await;
    let (status, _) = send(
        reqwest::Method::PUT,
        format!("{base}/_sim/faults"),
        Some(json!([
            {"route_prefix": "/slack/api/users.list", "throttle_rate": 1.0, "retry_after_secs": 7},
            {"route_prefix": "/graph/v1.0/users", "error_rate": 1.0, "error_status": 502}
        ])),
    )
    .await;
    assert_eq!(status, 200);
    let response = reqwest::get(format!("{base}/slack/api/users.list"))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"ok": false, "error": "ratelimited"}));

    let response = reqwest::get(format!("{base}/graph/v1.0/users"))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);

    let (_, log) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/log?kind=request"),
        None,
    )
    .await;
    let injected: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["note"] == "injected fault")
        .collect();
    assert_eq!(injected.len(), 2, "{log}");
    assert_eq!(injected[0]["target"], "/slack/api/users.list");

    let (status, _) = send(reqwest::Method::DELETE, format!("{base}/_sim/faults"), None).await;
    assert_eq!(status, 200);
    let response = reqwest::get(format!("{base}/slack/api/users.list"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn state_survives_a_restart_through_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("sim-state.json");
    let with_state = |people| SimConfig {
        state_file: Some(state_file.clone()),
        platforms: None,
        ..config(people)
    };
    let (base, _sim) = start(with_state(30)).await;
    let (_, before) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/users?platform=teams"),
        None,
    )
    .await;
    let (status, _) = send(reqwest::Method::POST, format!("{base}/_sim/save"), None).await;
    assert_eq!(status, 200);

    let (base, _sim) = start(with_state(5)).await;
    let (_, after) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/users?platform=teams"),
        None,
    )
    .await;
    assert_eq!(before, after, "the state file wins over --people");

    std::fs::write(&state_file, "{\"version\": 99, \"platforms\": {}}").unwrap();
    let error = Simulator::new(with_state(5)).err().unwrap().to_string();
    assert!(error.contains("version 99"), "{error}");
}

#[tokio::test]
async fn platforms_offer_their_own_actions() {
    let (base, _sim) = start(config(10)).await;
    let (status, added) = send(
        reqwest::Method::POST,
        format!("{base}/_sim/slack/members"),
        Some(json!({"email": "New.Joiner@acme.example", "real_name": "New Joiner"})),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    let (_, slack) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/users?platform=slack"),
        None,
    )
    .await;
    assert!(
        slack
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == added["id"])
    );

    let (status, set) = send(
        reqwest::Method::POST,
        format!("{base}/_sim/teams/token-lifetime"),
        Some(json!({"seconds": 5})),
    )
    .await;
    assert_eq!((status, set["seconds"].as_u64()), (200, Some(5)));

    for (path, body, expected) in [
        ("/_sim/slack/frobnicate", json!({}), 404),
        ("/_sim/myspace/members", json!({}), 404),
        ("/_sim/slack/members", json!({"email": "x@y.example"}), 422),
        (
            "/_sim/teams/lifecycle",
            json!({"subscription_id": "nope", "event": "missed"}),
            422,
        ),
        (
            "/_sim/teams/lifecycle",
            json!({"subscription_id": "nope", "event": "exploded"}),
            422,
        ),
    ] {
        let (status, answer) =
            send(reqwest::Method::POST, format!("{base}{path}"), Some(body)).await;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
}

#[tokio::test]
async fn people_join_and_leave_each_platform() {
    let (base, _sim) = start(config(10)).await;
    let post =
        |path: &str, body: Value| send(reqwest::Method::POST, format!("{base}{path}"), Some(body));
    let users = |platform: &'static str| {
        let url = format!("{base}/_sim/users?platform={platform}");
        async move { send(reqwest::Method::GET, url, None).await.1 }
    };
    let kind_of = |users: &Value, id: &Value| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == *id)
            .map(|u| u["kind"].as_str().unwrap().to_owned())
    };

    // Slack: a member is deactivated (kept, listed as deactivated); an app is uninstalled.
    let (status, joined) = post(
        "/_sim/slack/members",
        json!({"email": "leaver@acme.example", "real_name": "Lee Leaver"}),
    )
    .await;
    assert_eq!(status, 200, "{joined}");
    let (status, answer) = post("/_sim/slack/deactivate", json!({"user": joined["id"]})).await;
    assert_eq!(
        (status, &answer["deleted"]),
        (200, &json!(true)),
        "{answer}"
    );
    assert_eq!(
        kind_of(&users("slack").await, &joined["id"]).as_deref(),
        Some("deactivated")
    );
    let (status, answer) = post("/_sim/slack/uninstall", json!({"app": "A00000001"})).await;
    assert_eq!(
        (status, &answer["app_id"]),
        (200, &json!("A00000001")),
        "{answer}"
    );

    // Teams: a new member joins a team, leaves it (staying in the tenant), then the tenant.
    let team = "5b000002-0000-4000-8000-000000000000";
    let (status, joined) = post(
        "/_sim/teams/users",
        json!({"email": "joiner@acme.example", "display_name": "Jo Joiner", "teams": [team]}),
    )
    .await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(
        kind_of(&users("teams").await, &joined["id"]).as_deref(),
        Some("member")
    );
    let (status, answer) = post(
        "/_sim/teams/remove-user",
        json!({"email": "joiner@acme.example", "team": team}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(kind_of(&users("teams").await, &joined["id"]).is_some());
    let (status, answer) = post(
        "/_sim/teams/remove-user",
        json!({"email": "joiner@acme.example"}),
    )
    .await;
    assert_eq!(
        (status, &answer["removed_from"]),
        (200, &json!("tenant")),
        "{answer}"
    );
    assert!(kind_of(&users("teams").await, &joined["id"]).is_none());

    for (path, body) in [
        ("/_sim/slack/deactivate", json!({"user": "U999999"})),
        ("/_sim/slack/uninstall", json!({"app": "A00000001"})),
        ("/_sim/slack/uninstall", json!({"app": "No Such App"})),
        (
            "/_sim/teams/users",
            json!({"email": "x@elsewhere.example", "display_name": "X"}),
        ),
        (
            "/_sim/teams/users",
            json!({"email": "y@acme.example", "display_name": "Y", "teams": ["nope"]}),
        ),
        (
            "/_sim/teams/remove-user",
            json!({"email": "joiner@acme.example"}),
        ),
    ] {
        let (status, answer) = post(path, body.clone()).await;
        assert_eq!(status, 422, "{path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
}

#[tokio::test]
async fn a_fault_can_hold_one_slack_channel_for_a_while() {
    let (base, _sim) = start(config(40)).await;
    let (_, users) = send(
        reqwest::Method::GET,
        format!("{base}/_sim/users?platform=slack"),
        None,
    )
    .await;
    let people: Vec<&Value> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] != "bot" && u["kind"] != "deactivated")
        .collect();
    let (_, minted) = send(
        reqwest::Method::POST,
        format!("{base}/_sim/token"),
        Some(json!({"platform": "slack", "email": people[0]["email"]})),
    )
    .await;
    let token = minted["token"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let call = |method: &str, body: Value| {
        client
            .post(format!("{base}/slack/api/{method}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let mut dms = Vec::new();
    for other in &people[1..3] {
        let opened: Value = call("conversations.open", json!({"users": other["id"]}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        dms.push(opened["channel"]["id"].as_str().unwrap().to_owned());
    }

    let (status, rules) = send(
        reqwest::Method::PUT,
        format!("{base}/_sim/faults"),
        Some(json!([{
            "route_prefix": "/slack/api/chat.postMessage",
            "channel": dms[0],
            "error_rate": 1.0,
            "error_status": 429,
            "retry_after_secs": 60,
            "duration_secs": 0.5,
        }])),
    )
    .await;
    assert_eq!(status, 200, "{rules}");
    assert_eq!(rules[0]["channel"], dms[0].as_str());

    let held = call(
        "chat.postMessage",
        json!({"channel": dms[0], "text": "held"}),
    )
    .await
    .unwrap();
    assert_eq!(held.status(), 429);
    assert_eq!(held.headers()["retry-after"], "60");
    let form = client
        .post(format!("{base}/slack/api/chat.postMessage"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("channel={}&text=held", dms[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 429, "form posts are read as well");
    let other: Value = call(
        "chat.postMessage",
        json!({"channel": dms[1], "text": "free"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(other["ok"], true, "{other}");

    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let released: Value = call(
        "chat.postMessage",
        json!({"channel": dms[0], "text": "free"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(released["ok"], true, "{released}");
    let (_, rules) = send(reqwest::Method::GET, format!("{base}/_sim/faults"), None).await;
    assert_eq!(rules, json!([]), "the lapsed rule is gone");
}

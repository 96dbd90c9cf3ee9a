//! Disconnecting a platform and restricting people, through the real binary: `switchboard
//! demo` against the built-in simulator, driven over the REST API and the platforms' own APIs.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::world::{TOKEN, World, eventually};
use serde_json::{Value, json};

/// The hub's answer to an API call, whatever its status.
async fn call(
    world: &World,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", world.api_url()))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_restricted_persons_messages_stay_home_with_one_notice_while_replies_reach_them() {
    let world = World::start(10);
    let alice = world.synced_person("slack", "teams").await;
    let bob = world.synced_person("teams", "slack").await;

    // An address the hub knows nobody by is refused, and nothing changes.
    let (status, refused) = call(
        &world,
        reqwest::Method::PUT,
        "/settings",
        Some(json!({"restricted_users": [alice.email, "nobody@nowhere.example"]})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody@nowhere.example"),
        "{refused}"
    );
    let (status, refused) = call(
        &world,
        reqwest::Method::PUT,
        "/settings",
        Some(json!({"restricted_users": ["not an address"]})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let settings = world.api(reqwest::Method::GET, "/settings", None).await;
    assert_eq!(settings["restricted_users"], json!([]));

    let settings = world
        .api(
            reqwest::Method::PUT,
            "/settings",
            Some(json!({"restricted_users": [alice.email.to_uppercase()]})),
        )
        .await;
    assert_eq!(settings["restricted_users"], json!([alice.email]));

    // Alice writes to Bob's bot twice: nothing reaches Teams, and she is told once.
    let alice_token = world.token("slack", &alice.email).await;
    let dm = world.slack_dm(&alice_token, &bob.representation).await;
    for text in ["Restricted hello", "Restricted again"] {
        world
            .slack(
                "chat.postMessage",
                &alice_token,
                &[("channel", &dm), ("text", text)],
            )
            .await;
    }
    eventually("Alice being told", async || {
        world
            .told_by_the_hub(&alice_token)
            .await
            .iter()
            .any(|t| t.contains("restricted cross-platform messaging"))
            .then_some(())
    })
    .await;

    // Bob writes to Alice's guest account in Teams: she reads it in Slack, from Bob's bot.
    let bob_token = world.token("teams", &bob.email).await;
    let chat = world
        .teams_chat_with_guest(&bob_token, &alice.representation)
        .await;
    world
        .graph(
            reqwest::Method::POST,
            &format!("/chats/{chat}/messages"),
            &bob_token,
            Some(json!({"body": {"content": "Bob to restricted Alice"}})),
        )
        .await;
    eventually("Bob's message reaching Alice", async || {
        world
            .slack_history(&alice_token, &dm)
            .await
            .iter()
            .any(|(user, text)| {
                user == &bob.representation && text.contains("Bob to restricted Alice")
            })
            .then_some(())
    })
    .await;

    // Once everything settled: Bob's Teams holds no message of Alice's, and she was told once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = world.api(reqwest::Method::GET, "/relay", None).await;
    assert_eq!(
        (&status["outbox"], &status["dead_letters"]),
        (&json!(0), &json!(0)),
        "{status}"
    );
    let in_teams = world.teams_messages(&bob_token, &chat).await;
    assert!(
        in_teams
            .iter()
            .all(|(_, text)| !text.contains("Restricted")),
        "{in_teams:?}"
    );
    let notices: Vec<String> = world
        .told_by_the_hub(&alice_token)
        .await
        .into_iter()
        .filter(|t| t.contains("restricted cross-platform messaging"))
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");

    // Lifted: what she writes is relayed again; the change is in the audit log.
    world
        .api(
            reqwest::Method::PUT,
            "/settings",
            Some(json!({"restricted_users": []})),
        )
        .await;
    world
        .slack(
            "chat.postMessage",
            &alice_token,
            &[("channel", &dm), ("text", "Free to write")],
        )
        .await;
    let (_, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("Free to write"), "{texts:?}");
    let audit = world.api(reqwest::Method::GET, "/audit", None).await;
    let updates = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "settings.update")
        .count();
    assert_eq!(updates, 2, "{audit}");
}

#[tokio::test]
async fn a_disconnected_platform_is_forgotten_but_its_people_wait_for_its_reconnection() {
    let world = World::start(10);
    let alice = world.synced_person("slack", "teams").await;
    let connections = world.api(reqwest::Method::GET, "/connections", None).await;
    let teams = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["platform"] == "teams")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let accounts_before = world.people().await.len();

    // Disconnected, removing the guest accounts the hub created in the tenant first.
    let done = world
        .api(
            reqwest::Method::DELETE,
            &format!("/connections/{teams}?remove_representations=true"),
            None,
        )
        .await;
    assert!(
        done["removed"]
            .as_array()
            .unwrap()
            .contains(&json!(alice.id)),
        "{done}"
    );
    assert_eq!(done["not_removed"], json!([]), "{done}");
    assert_eq!(
        world.representation(&alice.id, "teams").await["status"],
        "not_created"
    );
    let guests: Vec<Value> = world
        .sim_users("teams")
        .await
        .into_iter()
        .filter(|u| u["id"] == alice.representation.as_str())
        .collect();
    assert!(
        guests.is_empty(),
        "the guest is gone from the tenant: {guests:?}"
    );

    // Listed as disconnected; imports, syncs and a second disconnection are refused clearly.
    let listed = world.api(reqwest::Method::GET, "/connections", None).await;
    let entry = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == teams.as_str())
        .cloned()
        .unwrap();
    assert_eq!(entry["status"], "disconnected", "{entry}");
    let (status, refused) = call(
        &world,
        reqwest::Method::POST,
        &format!("/connections/{teams}/import"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "disconnected", "{refused}");
    let (status, refused) = call(
        &world,
        reqwest::Method::POST,
        &format!("/people/{}/sync/teams", alice.id),
        None,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "not_connected", "{refused}");
    let (status, _) = call(
        &world,
        reqwest::Method::DELETE,
        &format!("/connections/{teams}"),
        None,
    )
    .await;
    assert_eq!(status, 409);

    // What Graph sends to the hub for the tenant is refused; nothing waits to go there.
    let refused = reqwest::Client::new()
        .post(world.api_url().replace("/api/v1", "/webhooks/teams"))
        .json(&json!({"value": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 404);
    let status = world.api(reqwest::Method::GET, "/relay", None).await;
    assert_eq!(status["outbox"], 0, "{status}");

    // People and accounts stay; the audit log says who disconnected what.
    assert_eq!(world.people().await.len(), accounts_before);
    let audit = world.api(reqwest::Method::GET, "/audit", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "connection.disconnect" && e["target"] == teams.as_str()),
        "{audit}"
    );

    // The same tenant connected again is the same connection, with everyone in it.
    let started = world
        .api(
            reqwest::Method::POST,
            "/connections",
            Some(json!({"platform": "teams", "inputs": {}})),
        )
        .await;
    let (_, page) = Browser::default()
        .walk(
            started["authorize_url"].as_str().unwrap(),
            ("login", "switchboard.service@acme.example"),
            "accept",
        )
        .await;
    assert!(page.contains("<h1>Connected</h1>"), "{page}");
    let listed = world.api(reqwest::Method::GET, "/connections", None).await;
    let entry = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["platform"] == "teams")
        .cloned()
        .unwrap();
    assert_eq!(
        (&entry["id"], &entry["status"]),
        (&json!(teams), &json!("connected"))
    );
    let synced = world
        .api(
            reqwest::Method::POST,
            &format!("/people/{}/sync/teams", alice.id),
            None,
        )
        .await;
    assert_eq!(synced["status"], "synced", "{synced}");
}

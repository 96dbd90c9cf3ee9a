//! What the hub keeps at rest: a message relayed both ways between Slack and Teams, then the hub
//! stopped, and no byte of any file in its data directory holds the message's text or a secret
//! the platforms' webhooks carried (Slack's signing secrets and verification tokens, Graph's
//! `clientState`). The README promises that content is not kept once delivered; freed pages
//! and WAL frames count.

mod common;

use std::path::Path;

use common::world::{TOKEN, World, eventually};
use common::{RunningDemo, RunningSim, free_port};
use serde_json::{Value, json};

const FROM_SLACK: &str = "canary-from-slack-5d1e0b7a";
const FROM_TEAMS: &str = "canary-from-teams-93c4f2e8";

#[tokio::test]
async fn no_relayed_text_nor_webhook_secret_is_left_in_the_data_directory() {
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("sim.json");
    let sim = RunningSim::start_saving_to(10, false, &state_file);
    let data = tempfile::tempdir().unwrap();
    let hub = RunningDemo::start_on(&sim, data.path(), free_port(), TOKEN);
    let world = World::of(&hub);
    let cast = world.slack_and_teams().await;

    // Alice writes from Slack; Bob reads it in Teams and answers there; Alice reads the answer.
    world
        .post_in_slack(&cast.alice_token, &cast.dm, FROM_SLACK)
        .await;
    let (chat, texts) = world
        .teams_chat_with(&cast.bob_token, &cast.alice.representation, 1)
        .await;
    assert!(
        texts.iter().any(|text| text.contains(FROM_SLACK)),
        "{texts:?}"
    );
    world
        .graph(
            reqwest::Method::POST,
            &format!("/chats/{chat}/messages"),
            &cast.bob_token,
            Some(json!({"body": {"content": FROM_TEAMS}})),
        )
        .await;
    eventually("the answer reaching Slack", async || {
        world
            .slack_history(&cast.alice_token, &cast.dm)
            .await
            .iter()
            .any(|(user, text)| user == &cast.bob.representation && text.contains(FROM_TEAMS))
            .then_some(())
    })
    .await;
    // Nothing left to do: every event read, every copy delivered.
    eventually("the relay settling", async || {
        let status = world.api(reqwest::Method::GET, "/relay", None).await;
        (status["inbox"] == 0 && status["outbox"] == 0 && status["dead_letters"] == 0).then_some(())
    })
    .await;

    let secrets = webhook_secrets(&sim, &state_file).await;
    assert!(
        secrets.iter().any(|(kind, _)| kind == "client_state")
            && secrets.iter().any(|(kind, _)| kind == "signing_secret")
            && secrets.iter().any(|(kind, _)| kind == "verification_token"),
        "the simulator's state names no webhook secrets: {:?}",
        secrets.iter().map(|(kind, _)| kind).collect::<Vec<_>>()
    );
    let status = hub.stop();
    assert!(status.success(), "the hub stopped with {status}");

    let files = files_under(data.path());
    assert!(
        files
            .iter()
            .any(|(name, _)| name.ends_with("switchboard.db")),
        "no database in {}: {:?}",
        data.path().display(),
        files.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    // Stopped cleanly, the hub checkpointed its WAL into the database and removed it.
    assert!(
        !files.iter().any(|(name, _)| name.ends_with("-wal")),
        "{:?}",
        files.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    // The search reads what the database keeps: the directory it is meant to keep is there.
    assert!(
        files
            .iter()
            .any(|(_, bytes)| contains(bytes, &cast.alice.email)),
        "the files do not hold even the directory's e-mail addresses"
    );
    let mut needles: Vec<(String, String)> = vec![
        ("the message from Slack".to_owned(), FROM_SLACK.to_owned()),
        ("the message from Teams".to_owned(), FROM_TEAMS.to_owned()),
    ];
    needles.extend(secrets);
    let found: Vec<String> = files
        .iter()
        .flat_map(|(name, bytes)| {
            needles
                .iter()
                .filter(|(_, needle)| contains(bytes, needle))
                .map(move |(what, _)| format!("{name} holds {what}"))
        })
        .collect();
    assert!(found.is_empty(), "in plaintext: {found:#?}");
}

/// The secrets with which the simulated platforms signed or vouched for their webhooks, as
/// (kind, value): each Slack app's signing secret and verification token, each Graph
/// subscription's `clientState`. Read from the simulator's saved state, outside the hub.
async fn webhook_secrets(sim: &RunningSim, state_file: &Path) -> Vec<(String, String)> {
    let saved = reqwest::Client::new()
        .post(format!("{}/_sim/save", sim.url()))
        .send()
        .await
        .unwrap();
    assert!(saved.status().is_success(), "{}", saved.status());
    let state: Value = serde_json::from_slice(&std::fs::read(state_file).unwrap()).unwrap();
    let mut found = Vec::new();
    collect(&state, &mut found);
    found
}

fn collect(value: &Value, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                match (key.as_str(), value.as_str()) {
                    ("signing_secret" | "verification_token" | "client_state", Some(secret))
                        if !secret.is_empty() =>
                    {
                        found.push((key.clone(), secret.to_owned()));
                    }
                    _ => collect(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect(item, found)),
        _ => {}
    }
}

/// Every byte of every file under `dir`, by path.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

//! The relay through the real binary: `switchboard demo` against the built-in simulator, with
//! simulated people typing through the platforms' own APIs (Slack's Web API, Microsoft Graph)
//! and reading what arrives the same way.

mod common;

use std::time::Duration;

use common::browser::{Browser, sync_link};
use common::world::{SlackAndTeams, TOKEN, World, eventually};
use common::{RunningDemo, RunningSim, free_port};
use serde_json::{Value, json};

/// These scenarios are between Slack and Teams: only those two are simulated and connected.
const SLACK_AND_TEAMS: &str = "slack,teams";

#[tokio::test]
async fn a_direct_message_its_reply_edit_reaction_and_deletion_cross_between_slack_and_teams() {
    let world = World::start_on(10, SLACK_AND_TEAMS);
    let alice = world.synced_person("slack", "teams").await;
    let bob = world.synced_person("teams", "slack").await;

    // Alice writes to Bob's bot in Slack.
    let alice_token = world.token("slack", &alice.email).await;
    let dm = world.slack_dm(&alice_token, &bob.representation).await;
    let hello = world
        .slack(
            "chat.postMessage",
            &alice_token,
            &[("channel", &dm), ("text", "Hello Bob, from Slack")],
        )
        .await;
    let hello_ts = hello["ts"].as_str().unwrap().to_owned();

    // Bob finds it in Teams, in a chat with Alice's guest account.
    let bob_token = world.token("teams", &bob.email).await;
    let chat = eventually("the message reaching Teams", async || {
        let chats = world
            .graph(reqwest::Method::GET, "/me/chats", &bob_token, None)
            .await;
        for chat in chats["value"].as_array()? {
            let id = chat["id"].as_str()?;
            let messages = world.teams_messages(&bob_token, id).await;
            if messages.iter().any(|(from, text)| {
                from == &alice.representation && text.contains("Hello Bob, from Slack")
            }) {
                return Some(id.to_owned());
            }
        }
        None
    })
    .await;

    // Bob replies in Teams; Alice reads it in her Slack DM, from Bob's bot.
    let reply = world
        .graph(
            reqwest::Method::POST,
            &format!("/chats/{chat}/messages"),
            &bob_token,
            Some(json!({"body": {"content": "Hi Alice, from Teams"}})),
        )
        .await;
    let reply_id = reply["id"].as_str().unwrap().to_owned();
    eventually("the reply reaching Slack", async || {
        let history = world.slack_history(&alice_token, &dm).await;
        history
            .iter()
            .any(|(user, text)| {
                user == &bob.representation && text.contains("Hi Alice, from Teams")
            })
            .then_some(())
    })
    .await;

    // Nothing echoes: each side holds exactly the two messages.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(world.slack_history(&alice_token, &dm).await.len(), 2);
    assert_eq!(world.teams_messages(&bob_token, &chat).await.len(), 2);
    // Each copy came back as its platform announced it, and was recognised as the hub's own.
    assert_eq!(
        world
            .metric_sum("switchboard_relay_own_posts_recognised_total")
            .await,
        2.0
    );

    // Alice edits her message: Bob's copy changes.
    world
        .slack(
            "chat.update",
            &alice_token,
            &[
                ("channel", &dm),
                ("ts", &hello_ts),
                ("text", "Hello Bob, edited in Slack"),
            ],
        )
        .await;
    eventually("the edit reaching Teams", async || {
        world
            .teams_messages(&bob_token, &chat)
            .await
            .iter()
            .any(|(_, text)| text.contains("edited in Slack"))
            .then_some(())
    })
    .await;

    // Alice reacts to Bob's reply in Slack: the reaction appears on his message in Teams, from
    // her guest account.
    let history = world
        .slack("conversations.history", &alice_token, &[("channel", &dm)])
        .await;
    let reply_copy = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == bob.representation.as_str())
        .unwrap()["ts"]
        .as_str()
        .unwrap()
        .to_owned();
    world
        .slack(
            "reactions.add",
            &alice_token,
            &[
                ("channel", &dm),
                ("timestamp", &reply_copy),
                ("name", "thumbsup"),
            ],
        )
        .await;
    eventually("the reaction reaching Teams", async || {
        let message = world
            .graph(
                reqwest::Method::GET,
                &format!("/chats/{chat}/messages/{reply_id}"),
                &bob_token,
                None,
            )
            .await;
        message["reactions"]
            .as_array()?
            .iter()
            .any(|r| {
                r["reactionType"] == "👍"
                    && r["user"]["user"]["id"] == alice.representation.as_str()
            })
            .then_some(())
    })
    .await;

    // Alice answers Bob's reply in a Slack thread: Teams chats have no threads, so the answer
    // arrives quoting the start of what it answers.
    world
        .slack(
            "chat.postMessage",
            &alice_token,
            &[
                ("channel", &dm),
                ("thread_ts", &reply_copy),
                ("text", "Agreed"),
            ],
        )
        .await;
    eventually("the thread reply reaching Teams", async || {
        world
            .teams_messages(&bob_token, &chat)
            .await
            .iter()
            .any(|(from, html)| {
                from == &alice.representation
                    && html.contains("<blockquote>")
                    && html.contains("↪ Hi Alice, from Teams")
                    && html.contains("Agreed")
            })
            .then_some(())
    })
    .await;

    // Bob reacts in Teams to the copy of Alice's message: the reaction appears on her message
    // in Slack, from his bot; and goes when he takes it back.
    let hello_copy = world
        .teams_message_ids(&bob_token, &chat)
        .await
        .into_iter()
        .find(|(from, _, content)| {
            from == &alice.representation && content.contains("edited in Slack")
        })
        .unwrap()
        .1;
    let bobs_reaction = |action: &'static str| {
        let (world, bob_token, chat, hello_copy) = (&world, &bob_token, &chat, &hello_copy);
        async move {
            world
                .graph(
                    reqwest::Method::POST,
                    &format!("/chats/{chat}/messages/{hello_copy}/{action}"),
                    bob_token,
                    Some(json!({"reactionType": "❤️"})),
                )
                .await;
        }
    };
    let hearts = async || {
        let history = world
            .slack("conversations.history", &alice_token, &[("channel", &dm)])
            .await;
        history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["ts"] == hello_ts.as_str())
            .and_then(|m| m["reactions"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|r| r["name"] == "heart")
            .flat_map(|r| r["users"].as_array().cloned().unwrap_or_default())
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect::<Vec<String>>()
    };
    bobs_reaction("setReaction").await;
    eventually("Bob's reaction reaching Slack", async || {
        (hearts().await == [bob.representation.clone()]).then_some(())
    })
    .await;
    bobs_reaction("unsetReaction").await;
    eventually("Bob's reaction leaving Slack", async || {
        hearts().await.is_empty().then_some(())
    })
    .await;

    // Bob edits his reply in Teams: Alice's copy changes in Slack.
    world
        .graph(
            reqwest::Method::PATCH,
            &format!("/chats/{chat}/messages/{reply_id}"),
            &bob_token,
            Some(json!({"body": {"contentType": "html", "content": "<p>Hi Alice, edited in Teams</p>"}})),
        )
        .await;
    eventually("Bob's edit reaching Slack", async || {
        world
            .slack_history(&alice_token, &dm)
            .await
            .iter()
            .any(|(user, text)| user == &bob.representation && text == "Hi Alice, edited in Teams")
            .then_some(())
    })
    .await;

    // Bob deletes his reply in Teams: Alice's copy disappears from Slack.
    let bob_id = world
        .graph(reqwest::Method::GET, "/me", &bob_token, None)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    world
        .graph(
            reqwest::Method::POST,
            &format!("/users/{bob_id}/chats/{chat}/messages/{reply_id}/softDelete"),
            &bob_token,
            None,
        )
        .await;
    eventually("the deletion reaching Slack", async || {
        let history = world.slack_history(&alice_token, &dm).await;
        (history.len() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_message_from_someone_not_synced_yet_waits_prompts_them_once_and_arrives_after_they_sync()
{
    let world = World::start_on(10, SLACK_AND_TEAMS);
    world
        .api(
            reqwest::Method::PUT,
            "/settings",
            Some(json!({"auto_prompt": true})),
        )
        .await;
    let bob = world.synced_person("teams", "slack").await;
    // Eve is on both platforms and chats from Slack; her Teams account is not synced.
    let eve = world
        .people()
        .await
        .into_iter()
        .find(|p| p["platforms"] == json!(["slack", "teams"]))
        .unwrap();
    let (eve_id, eve_email) = (eve["id"].as_str().unwrap(), eve["email"].as_str().unwrap());
    world
        .api(
            reqwest::Method::PUT,
            &format!("/people/{eve_id}/primary"),
            Some(json!({"platform": "slack"})),
        )
        .await;

    let eve_token = world.token("slack", eve_email).await;
    let dm = world.slack_dm(&eve_token, &bob.representation).await;
    for text in ["first, while not synced", "second, while not synced"] {
        world
            .slack(
                "chat.postMessage",
                &eve_token,
                &[("channel", &dm), ("text", text)],
            )
            .await;
    }

    // She is prompted once — not once per message — and told that her message waits.
    eventually("Eve being prompted", async || {
        let told = world.told_by_the_hub(&eve_token).await;
        (told.iter().any(|t| t.contains("Sync now")) && told.iter().any(|t| t.contains("waiting")))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let told = world.told_by_the_hub(&eve_token).await;
    let prompts: Vec<&String> = told.iter().filter(|t| t.contains("Sync now")).collect();
    assert_eq!(prompts.len(), 1, "{told:?}");
    assert_eq!(
        world.representation(eve_id, "teams").await["status"],
        "pending"
    );
    // The prompt is audited as auto-prompt's.
    let audit = world
        .api(reqwest::Method::GET, "/audit?limit=1000", None)
        .await;
    let prompted: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == eve_id && e["actor"] == "auto-prompt")
        .collect();
    assert_eq!(prompted.len(), 1, "{audit}");
    assert_eq!(
        (
            &prompted[0]["action"],
            &prompted[0]["detail"],
            &prompted[0]["source"]
        ),
        (
            &json!("person.sync"),
            &json!("teams: prompted"),
            &json!("hub")
        )
    );

    // Eve follows the link and authorises her Teams account; both messages then reach Bob, in
    // order, from her own account.
    let bob_token = world.token("teams", &bob.email).await;
    let link = sync_link(prompts[0]).unwrap();
    let (status, page) = Browser::default()
        .sync_through(&link, "slack", eve_email)
        .await;
    assert_eq!(status, 200, "{page}");
    let eve_teams = world.representation(eve_id, "teams").await;
    assert_eq!(eve_teams["status"], "synced", "{eve_teams}");
    let (_, texts) = world
        .teams_chat_with(
            &bob_token,
            eve_teams["external_account"].as_str().unwrap(),
            2,
        )
        .await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("first, while not synced"), "{texts:?}");
    assert!(texts[1].contains("second, while not synced"), "{texts:?}");
}

#[tokio::test]
async fn a_group_chat_of_two_slack_and_two_teams_people_reaches_everyone_once() {
    // Enough people for two on Slack alone and two members on Teams alone (person 2, the first
    // on Teams alone, is deactivated there).
    let world = World::start_on(20, SLACK_AND_TEAMS);
    let on_slack = world.synced_people("slack", "teams", 2).await;
    let on_teams = world.synced_people("teams", "slack", 2).await;
    let (alice, carol) = (&on_slack[0], &on_slack[1]);
    let (bob, dan) = (&on_teams[0], &on_teams[1]);

    // Alice starts a group DM in Slack with Carol and the bots of Bob and Dan.
    let alice_token = world.token("slack", &alice.email).await;
    let carol_account = world.account(carol, "slack").await;
    let members = [
        carol_account.as_str(),
        &bob.representation,
        &dan.representation,
    ]
    .join(",");
    let group = world.slack_dm(&alice_token, &members).await;
    world
        .slack(
            "chat.postMessage",
            &alice_token,
            &[("channel", &group), ("text", "Hello group, from Slack")],
        )
        .await;

    // Bob and Dan read it in the same Teams group chat, from Alice's guest account.
    let bob_token = world.token("teams", &bob.email).await;
    let dan_token = world.token("teams", &dan.email).await;
    let (chat, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;
    assert!(texts[0].contains("Hello group, from Slack"), "{texts:?}");
    let (dans_chat, _) = world
        .teams_chat_with(&dan_token, &alice.representation, 1)
        .await;
    assert_eq!(chat, dans_chat);
    let members = world
        .graph(
            reqwest::Method::GET,
            &format!("/chats/{chat}/members"),
            &bob_token,
            None,
        )
        .await;
    assert_eq!(members["value"].as_array().unwrap().len(), 4, "{members}");

    // Bob answers in Teams: Alice and Carol read it in their Slack group DM, from his bot;
    // Dan reads it where Bob wrote it.
    world
        .graph(
            reqwest::Method::POST,
            &format!("/chats/{chat}/messages"),
            &bob_token,
            Some(json!({"body": {"content": "Hello from Bob, in Teams"}})),
        )
        .await;
    let carol_token = world.token("slack", &carol.email).await;
    for token in [&alice_token, &carol_token] {
        eventually("Bob's answer reaching Slack", async || {
            world
                .slack_history(token, &group)
                .await
                .iter()
                .any(|(user, text)| user == &bob.representation && text.contains("Hello from Bob"))
                .then_some(())
        })
        .await;
    }

    // Once each: the Slack group DM and the Teams chat hold two messages.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(world.slack_history(&alice_token, &group).await.len(), 2);
    assert_eq!(world.teams_messages(&dan_token, &chat).await.len(), 2);
}

#[tokio::test]
async fn a_copy_the_platform_refuses_is_dead_lettered_the_sender_told_and_an_admin_retry_delivers_it()
 {
    let world = World::start_on(10, SLACK_AND_TEAMS);
    let alice = world.synced_person("slack", "teams").await;
    let bob = world.synced_person("teams", "slack").await;
    // Graph refuses every chat call for now, as it would a guest without access.
    world
        .sim(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/graph/v1.0/chats", "error_rate": 1.0, "error_status": 403}]),
        )
        .await;
    let alice_token = world.token("slack", &alice.email).await;
    let dm = world.slack_dm(&alice_token, &bob.representation).await;
    world
        .slack(
            "chat.postMessage",
            &alice_token,
            &[("channel", &dm), ("text", "Refused at first")],
        )
        .await;

    // Given up at once (a refusal is not worth retrying), listed for the admin, and Alice told.
    let letter = eventually("the copy being dead-lettered", async || {
        let letters = world
            .api(reqwest::Method::GET, "/relay/dead-letters", None)
            .await;
        letters["dead_letters"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(
        (
            &letter["platform"],
            &letter["action"],
            &letter["origin"]["platform"]
        ),
        (&json!("teams"), &json!("post"), &json!("slack")),
        "{letter}"
    );
    assert!(!letter["error"].as_str().unwrap().is_empty(), "{letter}");
    eventually("Alice being told", async || {
        world
            .told_by_the_hub(&alice_token)
            .await
            .iter()
            .any(|t| t.contains("could not be delivered to Microsoft Teams"))
            .then_some(())
    })
    .await;
    let status = world.api(reqwest::Method::GET, "/relay", None).await;
    assert_eq!(status["dead_letters"], 1, "{status}");

    // The fault is gone; the admin retries and Bob gets the message.
    world
        .sim(reqwest::Method::DELETE, "/_sim/faults", Value::Null)
        .await;
    let id = letter["id"].as_i64().unwrap();
    let retried = world
        .api(
            reqwest::Method::POST,
            &format!("/relay/dead-letters/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(retried["retried"], true);
    let bob_token = world.token("teams", &bob.email).await;
    let (_, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;
    assert!(texts[0].contains("Refused at first"), "{texts:?}");
    let status = world.api(reqwest::Method::GET, "/relay", None).await;
    assert_eq!(
        (&status["dead_letters"], &status["outbox"]),
        (&json!(0), &json!(0)),
        "{status}"
    );
    let audit = world.api(reqwest::Method::GET, "/audit", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "relay.retry"),
        "{audit}"
    );
}

#[tokio::test]
async fn edits_deletions_and_replies_follow_their_messages_across_a_hub_restart() {
    let sim = RunningSim::start_serving(10, true, SLACK_AND_TEAMS);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let hub = RunningDemo::start_on(&sim, data.path(), port, TOKEN);
    let world = World::of(&hub);
    // A delivery missed while the hub is down comes again within moments, not minutes.
    world
        .sim(
            reqwest::Method::PUT,
            "/_sim/settings",
            json!({"webhook_time_scale": 0.01}),
        )
        .await;
    let SlackAndTeams {
        alice,
        bob,
        alice_token,
        bob_token,
        dm,
    } = world.slack_and_teams().await;
    let sent = world
        .slack(
            "chat.postMessage",
            &alice_token,
            &[("channel", &dm), ("text", "Before the restart")],
        )
        .await;
    let ts = sent["ts"].as_str().unwrap().to_owned();
    let (chat, _) = world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;

    // The hub is killed and started again on the same data.
    hub.kill();
    let hub = RunningDemo::start_on(&sim, data.path(), port, TOKEN);
    let world = World::of(&hub);

    world
        .slack(
            "chat.update",
            &alice_token,
            &[
                ("channel", &dm),
                ("ts", &ts),
                ("text", "Edited after the restart"),
            ],
        )
        .await;
    eventually("the edit reaching Teams", async || {
        world
            .teams_messages(&bob_token, &chat)
            .await
            .iter()
            .any(|(_, text)| text.contains("Edited after the restart"))
            .then_some(())
    })
    .await;
    world
        .graph(
            reqwest::Method::POST,
            &format!("/chats/{chat}/messages"),
            &bob_token,
            Some(json!({"body": {"content": "A reply after the restart"}})),
        )
        .await;
    eventually("the reply reaching Slack, in the same DM", async || {
        world
            .slack_history(&alice_token, &dm)
            .await
            .iter()
            .any(|(user, text)| user == &bob.representation && text.contains("after the restart"))
            .then_some(())
    })
    .await;
    world
        .slack(
            "chat.delete",
            &alice_token,
            &[("channel", &dm), ("ts", &ts)],
        )
        .await;
    eventually("the deletion reaching Teams", async || {
        let listed = world
            .graph(
                reqwest::Method::GET,
                &format!("/chats/{chat}/messages"),
                &bob_token,
                None,
            )
            .await;
        listed["value"]
            .as_array()?
            .iter()
            .any(|m| {
                m["from"]["user"]["id"] == alice.representation.as_str()
                    && !m["deletedDateTime"].is_null()
            })
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn formatting_emoji_and_mentions_are_translated_both_ways() {
    let world = World::start_on(10, SLACK_AND_TEAMS);
    let alice = world.synced_person("slack", "teams").await;
    let bob = world.synced_person("teams", "slack").await;
    let alice_token = world.token("slack", &alice.email).await;
    let bob_token = world.token("teams", &bob.email).await;
    let alice_slack = world.account(&alice, "slack").await;
    let bob_teams = world.account(&bob, "teams").await;

    // Slack mrkdwn, a mention of Bob (his bot, as Alice sees him) and a short code.
    let dm = world.slack_dm(&alice_token, &bob.representation).await;
    let text = format!(
        "*bold* _it_ ~gone~ `x < y` <https://example.org|a link> <@{}> :smile:",
        bob.representation
    );
    world
        .slack(
            "chat.postMessage",
            &alice_token,
            &[("channel", &dm), ("text", &text)],
        )
        .await;
    let (chat, _) = world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;
    let listed = world
        .graph(
            reqwest::Method::GET,
            &format!("/chats/{chat}/messages"),
            &bob_token,
            None,
        )
        .await;
    let copy = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"]["user"]["id"] == alice.representation.as_str())
        .unwrap()
        .clone();
    let html = copy["body"]["content"].as_str().unwrap();
    for part in [
        "<b>bold</b>",
        "<i>it</i>",
        "<s>gone</s>",
        "<code>x &lt; y</code>",
        "<a href=\"https://example.org\">a link</a>",
        "😄",
    ] {
        assert!(html.contains(part), "{part} missing from {html}");
    }
    // The mention is of Bob's own Teams account, tagged and listed as Graph requires.
    assert!(html.contains("<at id=\"0\">"), "{html}");
    assert_eq!(
        copy["mentions"][0]["mentioned"]["user"]["id"],
        bob_teams.as_str(),
        "{copy}"
    );

    // Bob answers with HTML and a mention of Alice (her guest, as he sees her): Slack shows
    // mrkdwn and a mention of Alice's own Slack account.
    world
        .graph(
            reqwest::Method::POST,
            &format!("/chats/{chat}/messages"),
            &bob_token,
            Some(json!({
                "body": {"contentType": "html", "content": "<p><b>Sure</b>, <at id=\"0\">Alice</at> &amp; co</p>"},
                "mentions": [{"id": 0, "mentionText": "Alice", "mentioned": {"user": {"id": alice.representation, "displayName": "Alice", "userIdentityType": "aadUser"}}}],
            })),
        )
        .await;
    let answer = eventually("the answer reaching Slack", async || {
        world
            .slack_history(&alice_token, &dm)
            .await
            .into_iter()
            .find(|(user, _)| user == &bob.representation)
            .map(|(_, text)| text)
    })
    .await;
    assert!(answer.contains("*Sure*"), "{answer}");
    assert!(answer.contains(&format!("<@{alice_slack}>")), "{answer}");
    assert!(answer.contains("&amp; co"), "{answer}");
}

#[tokio::test]
async fn files_are_named_in_the_copies_that_go_without_them_both_ways() {
    let world = World::start_on(10, SLACK_AND_TEAMS);
    let SlackAndTeams {
        alice,
        bob,
        alice_token,
        bob_token,
        dm,
    } = world.slack_and_teams().await;

    // Alice shares files in Slack, Slack's way: an upload URL, the bytes, the upload completed.
    let share = async |filename: &str, comment: Option<&str>| {
        let content = b"a,b\n1,2\n";
        let upload = world
            .slack(
                "files.getUploadURLExternal",
                &alice_token,
                &[
                    ("filename", filename),
                    ("length", &content.len().to_string()),
                ],
            )
            .await;
        let sent = reqwest::Client::new()
            .post(upload["upload_url"].as_str().unwrap())
            .body(content.to_vec())
            .send()
            .await
            .unwrap();
        assert!(sent.status().is_success());
        let files = json!([{"id": upload["file_id"]}]).to_string();
        let mut args = vec![("files", files.as_str()), ("channel_id", dm.as_str())];
        args.extend(comment.map(|comment| ("initial_comment", comment)));
        world
            .slack("files.completeUploadExternal", &alice_token, &args)
            .await;
    };
    share("plan.csv", Some("the plan, as promised")).await;
    let (chat, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;
    assert!(texts[0].contains("the plan, as promised"), "{texts:?}");
    assert!(
        texts[0].contains("Sent with this message, not relayed: plan.csv"),
        "{texts:?}"
    );
    // A file shared without a word still makes a copy: the line naming it.
    share("photo.png", None).await;
    let (_, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 2)
        .await;
    assert!(
        texts[1].contains("Sent with this message, not relayed: photo.png"),
        "{texts:?}"
    );

    // Bob answers in Teams with a file from OneDrive and a card.
    world
        .graph(
            reqwest::Method::POST,
            &format!("/chats/{chat}/messages"),
            &bob_token,
            Some(json!({
                "body": {"contentType": "html", "content":
                    "<p>Mine <attachment id=\"f1\"></attachment></p><attachment id=\"c1\"></attachment>"},
                "attachments": [
                    {"id": "f1", "contentType": "reference", "name": "budget.xlsx",
                     "contentUrl": "https://contoso.sharepoint.com/budget.xlsx"},
                    {"id": "c1", "contentType": "application/vnd.microsoft.card.adaptive",
                     "content": "{}"},
                ],
            })),
        )
        .await;
    let answer = eventually("Bob's answer reaching Slack", async || {
        world
            .slack_history(&alice_token, &dm)
            .await
            .into_iter()
            .find(|(user, text)| user == &bob.representation && text.contains("Mine"))
            .map(|(_, text)| text)
    })
    .await;
    assert!(
        answer.contains("Sent with this message, not relayed: budget.xlsx, a card"),
        "{answer}"
    );
}

#[tokio::test]
async fn messages_whose_notifications_graph_lost_are_read_back_when_it_says_so() {
    let world = World::start_on(10, SLACK_AND_TEAMS);
    let SlackAndTeams {
        alice,
        bob,
        alice_token,
        bob_token,
        dm,
    } = world.slack_and_teams().await;
    world
        .slack(
            "chat.postMessage",
            &alice_token,
            &[("channel", &dm), ("text", "Hi Bob")],
        )
        .await;
    let (chat, _) = world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;
    let from_bob = |text: &'static str| {
        let (world, bob_token, chat) = (&world, &bob_token, &chat);
        async move {
            world
                .graph(
                    reqwest::Method::POST,
                    &format!("/chats/{chat}/messages"),
                    bob_token,
                    Some(json!({"body": {"content": text}})),
                )
                .await;
        }
    };
    let in_slack = |text: &'static str| {
        let (world, alice_token, dm, bob) = (&world, &alice_token, &dm, &bob);
        async move {
            world
                .slack_history(alice_token, dm)
                .await
                .iter()
                .any(|(user, said)| user == &bob.representation && said.contains(text))
        }
    };
    from_bob("Hi Alice").await;
    eventually("Bob's first answer", async || {
        in_slack("Hi Alice").await.then_some(())
    })
    .await;

    // Graph's deliveries are lost, every retry too (its four hours of retries pass in a blink).
    world
        .sim(
            reqwest::Method::PUT,
            "/_sim/settings",
            json!({"webhook_time_scale": 0.0001}),
        )
        .await;
    world
        .sim(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"webhooks_of": "teams", "drop_rate": 1.0}]),
        )
        .await;
    from_bob("Lost in transit").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    world
        .sim(reqwest::Method::DELETE, "/_sim/faults", Value::Null)
        .await;
    assert!(!in_slack("Lost in transit").await);

    // Graph then says notifications were missed: the hub reads the chat back and relays it.
    let app = world.teams_app_token().await;
    let subscriptions = world
        .graph(reqwest::Method::GET, "/subscriptions", &app, None)
        .await;
    let subscription = subscriptions["value"][0]["id"].as_str().unwrap().to_owned();
    world
        .sim(
            reqwest::Method::POST,
            "/_sim/teams/lifecycle",
            json!({"subscription_id": subscription, "event": "missed"}),
        )
        .await;
    eventually("the lost message being read back", async || {
        in_slack("Lost in transit").await.then_some(())
    })
    .await;

    // Graph removes the subscription: the hub creates another, and messages keep coming.
    world
        .sim(
            reqwest::Method::POST,
            "/_sim/teams/lifecycle",
            json!({"subscription_id": subscription, "event": "subscriptionRemoved"}),
        )
        .await;
    eventually("a new subscription", async || {
        let listed = world
            .graph(reqwest::Method::GET, "/subscriptions", &app, None)
            .await;
        let ids: Vec<&str> = listed["value"]
            .as_array()?
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect();
        (ids.len() == 1 && ids[0] != subscription).then_some(())
    })
    .await;
    from_bob("Through the new one").await;
    eventually("a message through the new subscription", async || {
        in_slack("Through the new one").await.then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_message_slack_gave_up_delivering_is_read_back_once_a_retry_shows_deliveries_failing() {
    let world = World::start_on(10, SLACK_AND_TEAMS);
    let SlackAndTeams {
        alice,
        bob: _,
        alice_token,
        bob_token,
        dm,
    } = world.slack_and_teams().await;
    let from_alice = async |text: &str| {
        world.post_in_slack(&alice_token, &dm, text).await;
    };
    let faults = |scale: f64, rules: Value| {
        let world = &world;
        async move {
            world
                .sim(
                    reqwest::Method::PUT,
                    "/_sim/settings",
                    json!({ "webhook_time_scale": scale }),
                )
                .await;
            world.sim(reqwest::Method::PUT, "/_sim/faults", rules).await;
        }
    };
    from_alice("Good morning").await;
    world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;

    // Every delivery of the next message fails, its retries too (Slack's six minutes of them
    // pass in a third of a second), and Slack gives it up without a word.
    faults(0.001, json!([{"webhooks_of": "slack", "drop_rate": 1.0}])).await;
    from_alice("Lost on every attempt").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The next one's first delivery fails too, and a retry gets through: the only sign Slack
    // gives that it is failing to deliver.
    faults(
        0.05,
        json!([{"webhooks_of": "slack", "drop_rate": 1.0, "duration_secs": 0.5}]),
    )
    .await;
    from_alice("Through on a retry").await;
    let (_, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 2)
        .await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("Through on a retry"), "{texts:?}");

    // The hub reads the chat back and relays what it never heard of, saying it is late.
    let (_, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 3)
        .await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[2].contains("Lost on every attempt"), "{texts:?}");
    assert!(
        texts[2].contains("reached Switchboard late"),
        "out of place, the copy says so: {texts:?}"
    );
    // What was read back and had been relayed already is not relayed again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 3)
        .await;
    assert_eq!(texts.len(), 3, "{texts:?}");
}

#[tokio::test]
async fn a_message_whose_event_comes_after_newer_ones_went_out_says_it_is_late() {
    let world = World::start_on(10, SLACK_AND_TEAMS);
    let SlackAndTeams {
        alice,
        bob: _,
        alice_token,
        bob_token,
        dm,
    } = world.slack_and_teams().await;
    let from_alice = async |text: &str| {
        world.post_in_slack(&alice_token, &dm, text).await;
    };
    from_alice("Good morning").await;
    world
        .teams_chat_with(&bob_token, &alice.representation, 1)
        .await;

    // Slack's delivery of the next message fails, and so does its immediate retry; the next
    // retry comes a minute later (here 3 s), after Alice's following message went out.
    world
        .sim(
            reqwest::Method::PUT,
            "/_sim/settings",
            json!({"webhook_time_scale": 0.05}),
        )
        .await;
    world
        .sim(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"webhooks_of": "slack", "drop_rate": 1.0, "duration_secs": 0.5}]),
        )
        .await;
    from_alice("Written first").await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    from_alice("Written second").await;

    let (_, texts) = world
        .teams_chat_with(&bob_token, &alice.representation, 3)
        .await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[0].contains("Good morning"), "{texts:?}");
    assert!(texts[1].contains("Written second"), "{texts:?}");
    assert!(
        !texts[1].contains("late"),
        "in its place, the copy says nothing: {texts:?}"
    );
    assert!(texts[2].contains("Written first"), "{texts:?}");
    assert!(
        texts[2].contains("before the messages above: it reached Switchboard late"),
        "out of place, the copy says so: {texts:?}"
    );
}

/// Slack → Teams and back in the cast's chat, each message marked with `round`.
async fn relay_both_ways(world: &World, cast: &SlackAndTeams, round: &str) {
    let SlackAndTeams {
        alice,
        bob,
        alice_token,
        bob_token,
        dm,
    } = cast;
    let outbound = format!("From Slack, {round}");
    world.post_in_slack(alice_token, dm, &outbound).await;
    let chat = eventually(&format!("{outbound} reaching Teams"), async || {
        let chats = world
            .graph(reqwest::Method::GET, "/me/chats", bob_token, None)
            .await;
        for chat in chats["value"].as_array()? {
            let id = chat["id"].as_str()?;
            if world
                .teams_messages(bob_token, id)
                .await
                .iter()
                .any(|(from, text)| from == &alice.representation && text.contains(&outbound))
            {
                return Some(id.to_owned());
            }
        }
        None
    })
    .await;
    let inbound = format!("From Teams, {round}");
    world
        .graph(
            reqwest::Method::POST,
            &format!("/chats/{chat}/messages"),
            bob_token,
            Some(json!({"body": {"content": inbound}})),
        )
        .await;
    eventually(&format!("{inbound} reaching Slack"), async || {
        world
            .slack_history(alice_token, dm)
            .await
            .iter()
            .any(|(user, text)| user == &bob.representation && text.contains(&inbound))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn reconnecting_either_platform_leaves_messages_flowing_both_ways_and_refused_webhooks_fail_its_health()
 {
    let world = World::start_on(10, SLACK_AND_TEAMS);
    let cast = world.slack_and_teams().await;
    relay_both_ways(&world, &cast, "before any reconnect").await;

    // A delivery the hub refuses makes the connection fail, with the reason, until one is
    // accepted again: refused deliveries are lost events.
    let hub = world.api_url().trim_end_matches("/api/v1").to_owned();
    let forged = reqwest::Client::new()
        .post(format!("{hub}/webhooks/teams"))
        .json(&json!({"value": [{
            "subscriptionId": "not-one-of-the-hub's",
            "clientState": "guessed",
            "changeType": "created",
            "resource": "chats('19:x@thread.v2')/messages('1')",
        }]}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let teams = world.connection("teams").await;
    assert_eq!(teams["health"]["ok"], false, "{teams}");
    assert_eq!(teams["health"]["webhooks"]["refused_since_accepted"], 1);
    let error = teams["health"]["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("webhooks refused: ") && error.contains("clientState"),
        "{error}"
    );

    world.reconnect("teams").await;
    relay_both_ways(&world, &cast, "after Teams was reconnected").await;
    world.reconnect("slack").await;
    relay_both_ways(&world, &cast, "after Slack was reconnected").await;

    for platform in ["slack", "teams"] {
        let connection = world.connection(platform).await;
        let webhooks = &connection["health"]["webhooks"];
        assert_eq!(webhooks["refused_since_accepted"], 0, "{connection}");
        assert!(webhooks["accepted"].as_u64().unwrap() > 0, "{connection}");
        assert_ne!(connection["health"]["ok"], false, "{connection}");
    }
}

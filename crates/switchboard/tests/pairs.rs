//! The scenarios every pair of platforms must pass, run over every ordered pair of the platforms
//! the demo connects, and a group chat across all of them. A new platform joins them by being
//! registered (and by its simulated client in `common/native.rs`): nothing here names one.

mod common;

use std::time::Duration;

use serde_json::Value;

use common::native::{Formatted, Native, Seen, native};
use common::world::{Person, World, eventually, ordered_pairs};

/// Enough people for everyone on one platform alone and on each pair of platforms, up to five
/// platforms (the organisation's mix puts two on each platform alone first, then one on each
/// pair): the people on a pair are linked where a platform is account-only.
const PEOPLE: usize = 20;

/// What a platform's module declares about itself (`GET /platforms`).
async fn rules(world: &World, platform: &str) -> Value {
    world.api(reqwest::Method::GET, "/platforms", None).await["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platform"] == platform)
        .unwrap_or_else(|| panic!("no {platform} module"))["rules"]
        .clone()
}

/// Which of `other`'s rules represents a person at home elsewhere in the scenarios:
/// `without_account`, or `with_account` where `other` is account-only.
fn rule_key(other: &str, account_only: &[String]) -> &'static str {
    if account_only.iter().any(|p| p == other) {
        "with_account"
    } else {
        "without_account"
    }
}

/// A person at home on `home` represented on `other` (see [`World::represented_people`]).
async fn represented_person(
    world: &World,
    home: &str,
    other: &str,
    account_only: &[String],
) -> Person {
    world
        .represented_people(home, other, 1, account_only)
        .await
        .remove(0)
}

/// The first message in `messages` from `from` that says `text`.
fn said<'m>(messages: &'m [Seen], from: &str, text: &str) -> Option<&'m Seen> {
    messages
        .iter()
        .find(|m| m.from == from && m.text.contains(text))
}

#[tokio::test]
async fn on_every_ordered_pair_a_person_is_represented_as_the_platform_declares() {
    let world = World::start(PEOPLE);
    let platforms = world.connected_platforms().await;
    assert!(platforms.len() >= 2, "the demo connects {platforms:?}");
    let account_only = world.account_only_platforms().await;
    for (home, other) in ordered_pairs(&platforms) {
        if account_only.contains(&other) {
            // Nobody without an account there is represented, and the console says why.
            let (id, unrepresented) = world.unrepresented_person(&home, &other).await;
            assert!(
                unrepresented.is_null() || unrepresented["status"] == "not_created",
                "{home} → {other}: {unrepresented}"
            );
            // Auto-sync does not try what cannot be done.
            let audit = world
                .api(reqwest::Method::GET, "/audit?limit=1000", None)
                .await;
            let tried = audit["entries"].as_array().unwrap().iter().find(|e| {
                e["target"] == id.as_str()
                    && e["action"] == "person.sync"
                    && e["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with(&format!("{other}:")))
            });
            assert!(tried.is_none(), "{home} → {other}: {tried:?}");
        }
        let person = represented_person(&world, &home, &other, &account_only).await;
        let declared = rules(&world, &other).await[rule_key(&other, &account_only)]["kind"].clone();
        let detail = world
            .api(
                reqwest::Method::GET,
                &format!("/people/{}", person.id),
                None,
            )
            .await;
        let representation = detail["representations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["platform"] == other.as_str())
            .unwrap();
        assert_eq!(
            representation["type"], declared,
            "{home} → {other}: a person without an account there is represented as declared"
        );
        let users = world.sim_users(&other).await;
        assert!(
            users
                .iter()
                .any(|u| u["id"] == person.representation.as_str()),
            "{home} → {other}: the representation {} exists on {other}",
            person.representation
        );
    }
}

/// One person at home on each side of a pair, each represented on the other's platform, with
/// their tokens and clients.
struct Pair {
    home: Box<dyn Native>,
    other: Box<dyn Native>,
    alice: Person,
    bob: Person,
    alice_token: String,
    bob_token: String,
}

impl Pair {
    async fn of(world: &World, home: &str, other: &str, account_only: &[String]) -> Self {
        let alice = represented_person(world, home, other, account_only).await;
        let bob = represented_person(world, other, home, account_only).await;
        Self {
            home: native(home),
            other: native(other),
            alice_token: world.token(home, &alice.email).await,
            bob_token: world.token(other, &bob.email).await,
            alice,
            bob,
        }
    }

    fn name(&self) -> String {
        format!("{} → {}", self.home.platform(), self.other.platform())
    }
}

#[tokio::test]
async fn on_every_ordered_pair_a_message_its_reply_edit_reactions_and_deletion_cross() {
    let world = World::start(PEOPLE);
    let platforms = world.connected_platforms().await;
    let account_only = world.account_only_platforms().await;
    for (home, other) in ordered_pairs(&platforms) {
        let pair = Pair::of(&world, &home, &other, &account_only).await;
        let round = pair.name();
        let abilities_home =
            rules(&world, &home).await[rule_key(&home, &account_only)]["abilities"].clone();
        let abilities_other =
            rules(&world, &other).await[rule_key(&other, &account_only)]["abilities"].clone();
        let (alice, bob) = (&pair.alice, &pair.bob);

        // Alice writes, on her platform, to Bob's representation there.
        let chat_home = pair
            .home
            .open_chat(&world, &pair.alice_token, &[&bob.representation])
            .await;
        let hello_text = format!("Hello Bob ({round})");
        let hello = pair
            .home
            .post(&world, &pair.alice_token, &chat_home, &hello_text)
            .await;

        // Bob reads it on his, from Alice's representation.
        let chat_other = eventually(&format!("{round}: the message arriving"), async || {
            let chat = pair
                .other
                .find_chat(&world, &pair.bob_token, &[&alice.representation])
                .await?;
            let messages = pair.other.messages(&world, &pair.bob_token, &chat).await;
            said(&messages, &alice.representation, &hello_text).map(|_| chat)
        })
        .await;

        // Bob replies there; Alice reads it from Bob's representation.
        let reply_text = format!("Hi Alice ({round})");
        let reply = pair
            .other
            .post(&world, &pair.bob_token, &chat_other, &reply_text)
            .await;
        eventually(&format!("{round}: the reply arriving"), async || {
            let messages = pair
                .home
                .messages(&world, &pair.alice_token, &chat_home)
                .await;
            said(&messages, &bob.representation, &reply_text).map(|_| ())
        })
        .await;

        // Nothing echoes: each side holds each message once.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (client, token, chat) in [
            (&pair.home, &pair.alice_token, &chat_home),
            (&pair.other, &pair.bob_token, &chat_other),
        ] {
            let messages = client.messages(&world, token, chat).await;
            for text in [&hello_text, &reply_text] {
                let copies = messages.iter().filter(|m| m.text.contains(text.as_str()));
                assert_eq!(
                    copies.count(),
                    1,
                    "{round}: {text:?} on {}",
                    client.platform()
                );
            }
        }

        // Alice edits her message: Bob's copy changes, as her representation can edit there.
        if abilities_other["edit"] == true {
            let edited = format!("Hello Bob, edited ({round})");
            pair.home
                .edit(&world, &pair.alice_token, &chat_home, &hello, &edited)
                .await;
            eventually(&format!("{round}: the edit arriving"), async || {
                let messages = pair
                    .other
                    .messages(&world, &pair.bob_token, &chat_other)
                    .await;
                said(&messages, &alice.representation, &edited).map(|_| ())
            })
            .await;
        }

        // Bob reacts to his copy of Alice's message: the reaction shows on hers, from his
        // representation, and goes when he takes it back. His own platform must let him: one
        // whose representations cannot react has no reactions in its API.
        if abilities_home["react"] == true && abilities_other["react"] == true {
            let copy = pair
                .other
                .messages(&world, &pair.bob_token, &chat_other)
                .await
                .into_iter()
                .find(|m| m.from == alice.representation && m.text.contains(&round))
                .unwrap()
                .id;
            let reactions = async || {
                pair.home
                    .messages(&world, &pair.alice_token, &chat_home)
                    .await
                    .into_iter()
                    .find(|m| m.id == hello)
                    .map(|m| m.reactions)
                    .unwrap_or_default()
            };
            pair.other
                .react(&world, &pair.bob_token, &chat_other, &copy, "👍", true)
                .await;
            eventually(&format!("{round}: the reaction arriving"), async || {
                let expected = vec![(bob.representation.clone(), "👍".to_owned())];
                (reactions().await == expected).then_some(())
            })
            .await;
            pair.other
                .react(&world, &pair.bob_token, &chat_other, &copy, "👍", false)
                .await;
            eventually(&format!("{round}: the reaction leaving"), async || {
                reactions().await.is_empty().then_some(())
            })
            .await;
        }

        // Bob deletes his reply: Alice's copy goes.
        if abilities_home["delete"] == true {
            pair.other
                .delete(&world, &pair.bob_token, &chat_other, &reply)
                .await;
            eventually(&format!("{round}: the deletion arriving"), async || {
                let messages = pair
                    .home
                    .messages(&world, &pair.alice_token, &chat_home)
                    .await;
                said(&messages, &bob.representation, &reply_text)
                    .is_none()
                    .then_some(())
            })
            .await;
        }
    }
}

#[tokio::test]
async fn a_group_chat_across_every_connected_platform_reaches_everyone_once() {
    let world = World::start(PEOPLE);
    let platforms = world.connected_platforms().await;
    let account_only = world.account_only_platforms().await;
    // One person at home on each platform, and a second on the first, so that the chat has
    // people on the same platform as well as across. Each must be represented on every
    // platform: on an account-only one by their own account, linked, so the first is one
    // whose people every other platform represents without an account.
    let first = platforms
        .iter()
        .find(|p| account_only.iter().all(|only| only == *p))
        .expect("a platform whose people every other platform can represent");
    assert!(
        account_only.len() <= 1,
        "the scenario links people on one account-only platform, not on {account_only:?}"
    );
    let mut members: Vec<(String, Person)> = Vec::new();
    let homes = std::iter::once(first).chain(platforms.iter().filter(|p| *p != first));
    for home in homes {
        let people = match account_only.iter().find(|only| *only != home) {
            Some(only) => {
                let person = world.linked_person(home, only).await;
                // Represented on the rest as people without an account there are, once asked
                // (and, where the platform wants it, approved).
                for platform in platforms.iter().filter(|p| *p != home && *p != only) {
                    world
                        .api(
                            reqwest::Method::POST,
                            &format!("/people/{}/sync/{platform}", person.id),
                            None,
                        )
                        .await;
                }
                world.approve_pending().await;
                vec![person]
            }
            None => {
                let other = platforms.iter().find(|p| *p != home).unwrap();
                let count = if home == first { 2 } else { 1 };
                world.synced_people(home, other, count).await
            }
        };
        members.extend(people.into_iter().map(|person| (home.clone(), person)));
    }
    // How each member appears on each platform: their own account at home, else their
    // representation.
    let mut accounts: Vec<Vec<String>> = Vec::new();
    for (home, person) in &members {
        let mut on = Vec::new();
        for platform in &platforms {
            on.push(if platform == home {
                world.account(person, platform).await
            } else {
                world.representation_on(&person.id, platform).await
            });
        }
        accounts.push(on);
    }
    let at = |member: usize, platform: &str| -> String {
        let index = platforms.iter().position(|p| p == platform).unwrap();
        accounts[member][index].clone()
    };
    let others_on = |member: usize, platform: &str| -> Vec<String> {
        (0..members.len())
            .filter(|other| *other != member)
            .map(|other| at(other, platform))
            .collect()
    };
    let mut tokens = Vec::new();
    for (home, person) in &members {
        tokens.push(world.token(home, &person.email).await);
    }

    // The first member starts the group on their platform and writes.
    let starter_home = members[0].0.clone();
    let starter = native(&starter_home);
    let invited = others_on(0, &starter_home);
    let invited: Vec<&str> = invited.iter().map(String::as_str).collect();
    let group = starter.open_chat(&world, &tokens[0], &invited).await;
    // No apostrophe or other character a platform writes as an entity.
    let hello = "Hello everyone, from the start of the group";
    starter.post(&world, &tokens[0], &group, hello).await;

    // Everyone finds it in their own client, from the starter as they see them, and answers.
    let mut chats = vec![group.clone()];
    for member in 1..members.len() {
        let (home, _) = &members[member];
        let client = native(home);
        let others = others_on(member, home);
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        let starter_there = at(0, home);
        let chat = eventually(
            &format!("the group reaching member {member} on {home}"),
            async || {
                let chat = client.find_chat(&world, &tokens[member], &others).await?;
                let messages = client.messages(&world, &tokens[member], &chat).await;
                said(&messages, &starter_there, hello).map(|_| chat)
            },
        )
        .await;
        client
            .post(
                &world,
                &tokens[member],
                &chat,
                &format!("Answer from member {member}"),
            )
            .await;
        chats.push(chat);
    }

    // Every member reads every answer once, each from its writer as they see them.
    for member in 0..members.len() {
        let (home, _) = &members[member];
        let client = native(home);
        eventually(
            &format!("every answer reaching member {member} on {home}"),
            async || {
                let messages = client
                    .messages(&world, &tokens[member], &chats[member])
                    .await;
                (1..members.len())
                    .all(|writer| {
                        said(
                            &messages,
                            &at(writer, home),
                            &format!("Answer from member {writer}"),
                        )
                        .is_some()
                    })
                    .then_some(())
            },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for member in 0..members.len() {
        let (home, _) = &members[member];
        let messages = native(home)
            .messages(&world, &tokens[member], &chats[member])
            .await;
        assert_eq!(
            messages.len(),
            members.len(),
            "member {member} on {home} reads the greeting and each answer once: {messages:?}"
        );
    }
}

#[tokio::test]
async fn on_every_ordered_pair_formatting_and_a_mention_are_translated() {
    let world = World::start(PEOPLE);
    let platforms = world.connected_platforms().await;
    let account_only = world.account_only_platforms().await;
    for (home, other) in ordered_pairs(&platforms) {
        let pair = Pair::of(&world, &home, &other, &account_only).await;
        let round = pair.name();
        let (alice, bob) = (&pair.alice, &pair.bob);
        if rules(&world, &other).await[rule_key(&other, &account_only)]["abilities"]["mention"]
            != true
        {
            continue;
        }
        // Alice writes with her platform's markup and mentions Bob as she sees him: his
        // representation there.
        let chat_home = pair
            .home
            .open_chat(&world, &pair.alice_token, &[&bob.representation])
            .await;
        let bold = format!("strongly{home}");
        let message = Formatted {
            bold: &bold,
            code: "x = 1",
            link: ("https://example.org/pairs", "a link"),
            mention: &bob.representation,
        };
        pair.home
            .post_formatted(&world, &pair.alice_token, &chat_home, &message)
            .await;

        // Bob reads it in his platform's markup, mentioning his own account there.
        let bob_there = world.account(bob, &other).await;
        let copy = eventually(
            &format!("{round}: the formatted message arriving"),
            async || {
                let chat = pair
                    .other
                    .find_chat(&world, &pair.bob_token, &[&alice.representation])
                    .await?;
                pair.other
                    .messages(&world, &pair.bob_token, &chat)
                    .await
                    .into_iter()
                    .find(|m| m.from == alice.representation && m.text.contains(&bold))
            },
        )
        .await;
        let expected = Formatted {
            mention: &bob_there,
            ..message
        };
        let missing: Vec<String> = pair
            .other
            .unformatted(&copy.text, &expected)
            .into_iter()
            // Code written on a platform without inline code is plain text, and arrives so.
            .filter(|part| pair.home.inline_code() || !part.contains(message.code))
            .collect();
        assert_eq!(missing, Vec::<String>::new(), "{round}: {}", copy.text);
        assert!(copy.text.contains(message.code), "{round}: {}", copy.text);
        assert_eq!(copy.mentions, vec![bob_there.clone()], "{round}: {copy:?}");
    }
}

/// The display name the hub knows a person by.
async fn display_name(world: &World, id: &str) -> String {
    world
        .api(reqwest::Method::GET, &format!("/people/{id}"), None)
        .await["display_name"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A platform that cannot represent people without an account of their own there, but declares
/// a fallback, carries a direct message both ways through it once the admin allows it: from
/// every platform that represents people without an account, someone without an account on the
/// fallback's platform (represented by it at once, by auto-sync) reaches a person at home
/// there, under their name and platform, and the answer comes back; edits and deletions follow
/// as the fallback can. With two writers, an answer that begins with one's name goes to them;
/// someone nobody wrote to is told so. When the admin turns the fallback off, nobody stays
/// represented by it.
#[tokio::test]
async fn where_the_admin_allows_it_a_fallback_carries_a_direct_message_both_ways() {
    let world = World::start(PEOPLE);
    let platforms = world.connected_platforms().await;
    let account_only = world.account_only_platforms().await;
    let mut with_fallback = Vec::new();
    for platform in &platforms {
        let declared = rules(&world, platform).await;
        if !declared["fallback"].is_null() {
            with_fallback.push((platform.clone(), declared["fallback"].clone()));
        }
    }
    assert!(
        !with_fallback.is_empty(),
        "no connected platform declares a fallback: nothing here is tested"
    );
    let settings = world
        .api(
            reqwest::Method::PUT,
            "/settings",
            Some(serde_json::json!({"fallback_representations": true})),
        )
        .await;
    assert_eq!(settings["fallback_representations"], true);
    let mut relayed = Vec::new();
    for (other, fallback) in &with_fallback {
        let homes: Vec<&String> = platforms
            .iter()
            .filter(|home| *home != other && !account_only.contains(home))
            .collect();
        for (round_number, home) in homes.iter().enumerate() {
            let round = format!("{home} → {other} (fallback)");
            let client_home = native(home);
            let client_other = native(other);
            // Alice has no account on the fallback's platform: once the admin allows the
            // fallback, the demo's auto-sync represents her by it, at once.
            let (alice_id, _) = world.unrepresented_person(home, other).await;
            eventually(&format!("{round}: Alice synced by auto-sync"), async || {
                (world.representation(&alice_id, other).await["status"] == "synced").then_some(())
            })
            .await;
            let synced = world
                .api(
                    reqwest::Method::POST,
                    &format!("/people/{alice_id}/sync/{other}"),
                    None,
                )
                .await;
            assert_eq!(synced["status"], "synced", "{round}: {synced}");
            let representation = world.representation(&alice_id, other).await;
            assert_eq!(representation["type"], fallback["kind"], "{round}");
            relayed.push((alice_id.clone(), other.clone()));
            let alice_name = display_name(&world, &alice_id).await;
            let alice_email = world
                .api(reqwest::Method::GET, &format!("/people/{alice_id}"), None)
                .await["email"]
                .as_str()
                .unwrap()
                .to_owned();
            let bob = represented_person(&world, other, home, &account_only).await;
            let alice_token = world.token(home, &alice_email).await;
            let bob_token = world.token(other, &bob.email).await;

            // Alice writes to Bob's representation on her platform; Bob reads it in his chat
            // with the hub, labelled with her name and platform.
            let chat_home = client_home
                .open_chat(&world, &alice_token, &[&bob.representation])
                .await;
            let hello_text = format!("Hello Bob ({round})");
            let hello = client_home
                .post(&world, &alice_token, &chat_home, &hello_text)
                .await;
            eventually(&format!("{round}: the message arriving"), async || {
                client_other
                    .hub_said(&world, &bob_token)
                    .await
                    .into_iter()
                    .find(|said| said.contains(&hello_text) && said.contains(&alice_name))
            })
            .await;

            // Bob answers there; Alice reads it from Bob's representation.
            let reply_text = format!("Hi Alice ({round})");
            client_other
                .write_to_hub(&world, &bob_token, &reply_text)
                .await;
            eventually(&format!("{round}: the answer arriving"), async || {
                let messages = client_home.messages(&world, &alice_token, &chat_home).await;
                said(&messages, &bob.representation, &reply_text).map(|_| ())
            })
            .await;

            if fallback["abilities"]["edit"] == true {
                let edited = format!("Hello Bob, edited ({round})");
                client_home
                    .edit(&world, &alice_token, &chat_home, &hello, &edited)
                    .await;
                eventually(&format!("{round}: the edit arriving"), async || {
                    client_other
                        .hub_said(&world, &bob_token)
                        .await
                        .into_iter()
                        .find(|said| said.contains(&edited))
                })
                .await;
            }
            if fallback["abilities"]["delete"] == true {
                client_home
                    .delete(&world, &alice_token, &chat_home, &hello)
                    .await;
                eventually(&format!("{round}: the deletion arriving"), async || {
                    let said = client_other.hub_said(&world, &bob_token).await;
                    (!said.iter().any(|said| {
                        said.contains(&format!("({round})")) && said.contains("Hello Bob")
                    }))
                    .then_some(())
                })
                .await;
            }
            if round_number > 0 {
                continue;
            }

            // Carol writes to Bob too; his answer that begins with Alice's name goes to Alice,
            // though Carol wrote last.
            let carol_id = world
                .people()
                .await
                .into_iter()
                .filter(|p| p["platforms"] == serde_json::json!([home]))
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .find(|id| *id != alice_id)
                .unwrap_or_else(|| panic!("{round}: a second person on {home} alone"));
            eventually(&format!("{round}: Carol synced by auto-sync"), async || {
                (world.representation(&carol_id, other).await["status"] == "synced").then_some(())
            })
            .await;
            let carol_email = world
                .api(reqwest::Method::GET, &format!("/people/{carol_id}"), None)
                .await["email"]
                .as_str()
                .unwrap()
                .to_owned();
            let carol_token = world.token(home, &carol_email).await;
            let carol_chat = client_home
                .open_chat(&world, &carol_token, &[&bob.representation])
                .await;
            let carol_text = format!("Bob, Carol here ({round})");
            client_home
                .post(&world, &carol_token, &carol_chat, &carol_text)
                .await;
            eventually(&format!("{round}: Carol's message arriving"), async || {
                client_other
                    .hub_said(&world, &bob_token)
                    .await
                    .into_iter()
                    .find(|said| said.contains(&carol_text))
            })
            .await;
            let for_alice = format!("Only for Alice ({round})");
            client_other
                .write_to_hub(&world, &bob_token, &format!("@{alice_name}: {for_alice}"))
                .await;
            eventually(&format!("{round}: the named answer arriving"), async || {
                let messages = client_home.messages(&world, &alice_token, &chat_home).await;
                said(&messages, &bob.representation, &for_alice)
                    .filter(|seen| !seen.text.contains(&alice_name))
                    .map(|_| ())
            })
            .await;
            let carols = client_home
                .messages(&world, &carol_token, &carol_chat)
                .await;
            assert!(
                carols.iter().all(|m| !m.text.contains(&for_alice)),
                "{round}: the answer named Alice, not Carol: {carols:?}"
            );

            // Someone at home on the fallback's platform to whom nobody wrote is told that
            // what they write there reaches no one.
            let lonely = world
                .people()
                .await
                .into_iter()
                .filter(|p| p["platforms"] == serde_json::json!([other]))
                .map(|p| p["email"].as_str().unwrap().to_owned())
                .find(|email| *email != bob.email)
                .unwrap_or_else(|| panic!("{round}: a second person on {other} alone"));
            let lonely_token = world.token(other, &lonely).await;
            client_other
                .write_to_hub(&world, &lonely_token, "Is anyone there?")
                .await;
            eventually(&format!("{round}: the notice arriving"), async || {
                client_other
                    .hub_said(&world, &lonely_token)
                    .await
                    .into_iter()
                    .find(|said| said.contains("Nobody has written to you"))
            })
            .await;
        }
    }

    world
        .api(
            reqwest::Method::PUT,
            "/settings",
            Some(serde_json::json!({"fallback_representations": false})),
        )
        .await;
    for (id, other) in &relayed {
        eventually(&format!("{id} no longer reached on {other}"), async || {
            let representation = world.representation(id, other).await;
            (representation.is_null() || representation["status"] == "not_created").then_some(())
        })
        .await;
    }
}

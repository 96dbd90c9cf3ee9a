//! Directory Sync from the directories' own groups, black-box: the running demo follows an
//! Entra ID group (with a group nested in it) or a Google group of the simulated platforms; an
//! administrator changes the group's members through the simulator, as in the Entra admin
//! centre or the Google Admin console; the person joins and is synced, or leaves and their
//! bots and guests disappear — announced by the platform's change notifications, or, when an
//! announcement is lost, caught by the periodic reconciliation.

mod common;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use common::world::World;

/// The simulated Entra ID's groups for Directory Sync, as docs/simulator.md lists them.
const ENTRA_USERS: &str = "5b000005-0000-4000-8000-000000000000";
const ENTRA_PILOTS: &str = "5b000005-0000-4000-8000-000000000001";

/// Waits up to Directory Sync's promise, a minute, for `check`.
async fn within_a_minute<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn connection_of(world: &World, platform: &str) -> String {
    let connections = world.api(Method::GET, "/connections", None).await;
    connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["platform"] == platform)
        .unwrap_or_else(|| panic!("no {platform} connection: {connections}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn change_membership(world: &World, platform: &str, change: Value) -> Value {
    let response = world
        .http
        .post(format!("{}/_sim/{platform}/group-members", world.sim))
        .json(&change)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{change}: {status} {body}");
    body
}

async fn person_with_email(world: &World, email: &str) -> Option<Value> {
    world.people().await.into_iter().find(|p| {
        p["email"]
            .as_str()
            .is_some_and(|e| e.eq_ignore_ascii_case(email))
    })
}

/// The person at `email`, once their representation on `platform` is synced, and the account
/// that represents them there.
async fn synced_on(world: &World, email: &str, platform: &str) -> (Value, String) {
    within_a_minute(&format!("{email} synced on {platform}"), async || {
        let person = person_with_email(world, email).await?;
        let id = person["id"].as_str()?;
        let representation = world.representation(id, platform).await;
        let account = representation["external_account"].as_str()?.to_owned();
        (representation["status"] == "synced").then_some((person, account))
    })
    .await
}

/// Whether the simulated `platform` has the account `id`, not suspended nor disabled.
async fn on_platform(world: &World, platform: &str, id: &str) -> bool {
    world.sim_users(platform).await.iter().any(|user| {
        user["id"] == id
            && !matches!(
                user["kind"].as_str(),
                Some("suspended" | "disabled" | "deactivated")
            )
    })
}

/// The members of `platform` with an address who have no account on `other` (so their primary
/// platform is chosen for them, and `other` represents them by a guest), by address and name.
async fn members_only_on(world: &World, platform: &str, other: &str) -> Vec<(String, String)> {
    let on_other: std::collections::HashSet<String> = world
        .sim_users(other)
        .await
        .iter()
        .filter_map(|user| Some(user["email"].as_str()?.to_lowercase()))
        .collect();
    world
        .sim_users(platform)
        .await
        .into_iter()
        .filter(|user| user["kind"] == "member")
        .filter_map(|user| {
            Some((
                user["email"].as_str()?.to_owned(),
                user["display_name"].as_str()?.to_owned(),
            ))
        })
        .filter(|(email, _)| {
            !email.starts_with("switchboard.service@") && !on_other.contains(&email.to_lowercase())
        })
        .collect()
}

/// Waits until whoever the demo represented has left (an empty group was chosen).
async fn nobody_represented(world: &World) {
    within_a_minute("everyone represented gone", async || {
        world
            .people()
            .await
            .iter()
            .all(|p| {
                p["representations"]
                    .as_array()
                    .is_none_or(|r| r.iter().all(|r| r["status"] == "not_created"))
            })
            .then_some(())
    })
    .await;
}

async fn follow(world: &World, groups: Value) -> Value {
    world
        .api(Method::PUT, "/directory", Some(json!({ "groups": groups })))
        .await
}

#[tokio::test]
async fn an_entra_groups_members_and_nested_members_are_synced_and_leavers_removed() {
    // Only announcements drive this test: the periodic reconciliation waits an hour.
    let world = World::start_with(
        12,
        &[
            ("SWITCHBOARD_DEMO_PLATFORMS", "teams,google_chat"),
            ("SWITCHBOARD_DIRECTORY_RECONCILE_SECS", "3600"),
        ],
    );
    let teams = connection_of(&world, "teams").await;
    let choosable = world.api(Method::GET, "/directory/groups", None).await;
    let kinds: Vec<(&str, &str)> = choosable["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["source"] == teams.as_str())
        .map(|g| (g["name"].as_str().unwrap(), g["kind"].as_str().unwrap()))
        .collect();
    for expected in [
        ("Switchboard users", "security group"),
        ("Switchboard pilots", "security group"),
        ("All employees", "dynamic group"),
        ("Leadership", "Microsoft 365 group"),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {choosable}");
    }

    // Following an empty group: whoever the demo represented leaves.
    let members = members_only_on(&world, "teams", "google_chat").await;
    let (direct, nested) = (&members[0], &members[1]);
    let chosen = follow(&world, json!([{"source": teams, "id": ENTRA_USERS}])).await;
    assert_eq!(chosen["in_scope"], 0, "{chosen}");
    nobody_represented(&world).await;

    // Added to the group, and to the group nested in it: each becomes a synced person,
    // represented on Google Chat by a guest account.
    change_membership(
        &world,
        "teams",
        json!({"group": ENTRA_USERS, "email": direct.0, "action": "add"}),
    )
    .await;
    change_membership(
        &world,
        "teams",
        json!({"group": ENTRA_PILOTS, "email": nested.0, "action": "add"}),
    )
    .await;
    let mut guests = Vec::new();
    for (email, _) in [direct, nested] {
        let (_, guest) = synced_on(&world, email, "google_chat").await;
        assert!(
            on_platform(&world, "google_chat", &guest).await,
            "{email}'s guest"
        );
        guests.push(guest);
    }
    let directory = world.api(Method::GET, "/directory", None).await;
    assert_eq!(directory["in_scope"], 2, "{directory}");
    assert_eq!(directory["groups"][0]["name"], "Switchboard users");
    assert!(
        directory["groups"][0]["last_read"]["members"].as_i64() >= Some(2),
        "{directory}"
    );

    // Removed from the nested group: reset, their guest gone from Google, and out of the hub.
    change_membership(
        &world,
        "teams",
        json!({"group": ENTRA_PILOTS, "email": nested.0, "action": "remove"}),
    )
    .await;
    within_a_minute("the leaver removed from the hub", async || {
        person_with_email(&world, &nested.0)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        !on_platform(&world, "google_chat", &guests[1]).await,
        "the leaver's guest is still on Google"
    );
    assert!(person_with_email(&world, &direct.0).await.is_some());

    // Disabled in Entra ID, the direct member leaves too, though no group changed.
    let disabled = world
        .http
        .post(format!("{}/_sim/teams/disable-user", world.sim))
        .json(&json!({"email": direct.0}))
        .send()
        .await
        .unwrap();
    assert!(disabled.status().is_success());
    within_a_minute("the disabled member removed from the hub", async || {
        person_with_email(&world, &direct.0)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        !on_platform(&world, "google_chat", &guests[0]).await,
        "the disabled member's guest is still on Google"
    );
    let audit = world.api(Method::GET, "/audit?limit=1000", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"directory.leave"), "{audit}");

    // A group the directory does not have is refused.
    let refused = world
        .http
        .put(format!("{}/directory", world.api_url()))
        .bearer_auth(common::world::TOKEN)
        .json(&json!({"groups": [{"source": teams, "id": "no-such-group"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_group", "{body}");
}

#[tokio::test]
async fn a_lost_announcement_is_caught_by_the_reconciliation() {
    let world = World::start_with(
        8,
        &[
            ("SWITCHBOARD_DEMO_PLATFORMS", "teams,google_chat"),
            ("SWITCHBOARD_DIRECTORY_RECONCILE_SECS", "5"),
        ],
    );
    let teams = connection_of(&world, "teams").await;
    let members = members_only_on(&world, "teams", "google_chat").await;
    follow(&world, json!([{"source": teams, "id": ENTRA_USERS}])).await;
    nobody_represented(&world).await;
    // Every notification Graph sends from now on is lost on its way.
    let faults = world
        .http
        .put(format!("{}/_sim/faults", world.sim))
        .json(&json!([{"webhooks_of": "teams", "drop_rate": 1.0}]))
        .send()
        .await
        .unwrap();
    assert!(faults.status().is_success());
    change_membership(
        &world,
        "teams",
        json!({"group": ENTRA_USERS, "email": members[0].0, "action": "add"}),
    )
    .await;
    synced_on(&world, &members[0].0, "google_chat").await;
}

#[tokio::test]
async fn a_google_groups_nested_member_is_synced_and_leaves() {
    let world = World::start_with(
        12,
        &[
            ("SWITCHBOARD_DEMO_PLATFORMS", "teams,google_chat"),
            ("SWITCHBOARD_DIRECTORY_RECONCILE_SECS", "3600"),
        ],
    );
    let google = connection_of(&world, "google_chat").await;
    let choosable = world.api(Method::GET, "/directory/groups", None).await;
    let group = |name: &str| -> String {
        choosable["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["source"] == google.as_str() && g["name"] == name)
            .unwrap_or_else(|| panic!("no Google group {name}: {choosable}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (users, pilots) = (group("Switchboard users"), group("Switchboard pilots"));
    let (email, name) = members_only_on(&world, "google_chat", "teams")
        .await
        .into_iter()
        .next()
        .expect("a Google member without a Slack account");
    follow(&world, json!([{"source": google, "id": users}])).await;
    nobody_represented(&world).await;
    change_membership(
        &world,
        "google_chat",
        json!({"group": pilots, "email": email, "action": "add"}),
    )
    .await;
    let (_, guest) = synced_on(&world, &email, "teams").await;
    assert!(on_platform(&world, "teams", &guest).await, "{name}'s guest");
    change_membership(
        &world,
        "google_chat",
        json!({"group": pilots, "email": email, "action": "remove"}),
    )
    .await;
    within_a_minute("the Google leaver removed", async || {
        person_with_email(&world, &email)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        !on_platform(&world, "teams", &guest).await,
        "{name}'s guest is still on Teams"
    );
}

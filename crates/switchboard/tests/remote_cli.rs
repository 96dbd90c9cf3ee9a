//! Black-box tests of the commands that script a running hub: `switchboard demo` is started,
//! then the real binary's `people`, `connections`, `import`, `teams`, `settings` and `relay`
//! subcommands are run against it, and what they did is checked through the REST API.

mod common;

use std::process::{Output, Stdio};

use common::{RunningDemo, free_port, switchboard};
use serde_json::Value;

const TOKEN: &str = "remote-cli-test-token-0123456789";

/// Runs `switchboard ARGS` against `hub` with the token in the environment, as a script would.
fn cli(hub: &str, args: &[&str]) -> Output {
    switchboard()
        .env("SWITCHBOARD_HUB_URL", hub)
        .env("SWITCHBOARD_API_TOKEN", TOKEN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs a command that must succeed and returns its standard output.
fn succeeds(hub: &str, args: &[&str]) -> String {
    let output = cli(hub, args);
    assert!(
        output.status.success(),
        "switchboard {args:?}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The JSON lines of `people list --json`.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn api(demo: &RunningDemo, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1{path}", demo.hub_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// Every person the API lists with `filter`, following its cursor.
async fn api_people(demo: &RunningDemo, filter: &str) -> Vec<Value> {
    let mut people = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api(demo, &format!("/people?limit=1000{filter}{cursor}")).await;
        people.extend(page["people"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return people,
        }
    }
}

fn on_teams(person: &Value) -> &Value {
    person["representations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["platform"] == "teams")
        .unwrap()
}

fn ids(people: &[Value]) -> Vec<&str> {
    people.iter().map(|p| p["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn people_are_listed_as_a_table_or_json_filtered_and_followed_across_pages() {
    let demo = RunningDemo::start(60, TOKEN, &[]);
    let hub = demo.hub_url();
    let everyone = api_people(&demo, "").await;

    let table = succeeds(&hub, &["people", "list", "--limit", "1000"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "E-MAIL",
            "PRIMARY",
            "GOOGLE_CHAT",
            "SLACK",
            "TEAMS",
            "WEBEX",
            "ZOOM"
        ]
    );
    assert_eq!(lines.count(), everyone.len(), "{table}");
    let first = &everyone[0];
    assert!(
        table.contains(first["email"].as_str().unwrap()),
        "{first} missing from\n{table}"
    );

    let paged = cli(&hub, &["people", "list", "--all", "--limit", "7", "--json"]);
    assert!(paged.status.success(), "{}", stderr(&paged));
    let paged = json_lines(&String::from_utf8(paged.stdout).unwrap());
    assert!(everyone.len() > 14, "several pages of 7");
    assert_eq!(ids(&paged), ids(&everyone), "every person once, in order");

    let page_table = succeeds(&hub, &["people", "list", "--all", "--limit", "7"]);
    assert_eq!(page_table.lines().count(), everyone.len() + 1, "one header");

    let one_page = cli(&hub, &["people", "list", "--limit", "7", "--json"]);
    assert_eq!(
        json_lines(&String::from_utf8_lossy(&one_page.stdout)).len(),
        7
    );
    assert!(
        stderr(&one_page).contains("--cursor"),
        "says how to go on: {}",
        stderr(&one_page)
    );

    let unchosen = api_people(&demo, "&primary=unchosen").await;
    assert!(!unchosen.is_empty());
    let listed = json_lines(&succeeds(
        &hub,
        &["people", "list", "--primary", "none", "--all", "--json"],
    ));
    assert_eq!(ids(&listed), ids(&unchosen));

    let on_slack = api_people(&demo, "&primary=slack&type=bot").await;
    let listed = json_lines(&succeeds(
        &hub,
        &[
            "people",
            "list",
            "--primary",
            "slack",
            "--type",
            "bot",
            "--all",
            "--json",
        ],
    ));
    assert_eq!(ids(&listed), ids(&on_slack));

    let email = first["email"].as_str().unwrap();
    let found = json_lines(&succeeds(&hub, &["people", "list", "--q", email, "--json"]));
    assert_eq!(ids(&found), [first["id"].as_str().unwrap()]);

    let shown = succeeds(&hub, &["people", "show", first["id"].as_str().unwrap()]);
    assert!(
        shown.contains(email) && shown.contains("accounts:"),
        "{shown}"
    );
    let shown: Value = serde_json::from_str(&succeeds(
        &hub,
        &["people", "show", first["id"].as_str().unwrap(), "--json"],
    ))
    .unwrap();
    assert_eq!(shown["id"], first["id"]);
    assert!(!shown["accounts"].as_array().unwrap().is_empty());

    // Who chose a primary platform, in words.
    let automatic = everyone
        .iter()
        .find(|p| p["primary_chosen_by"] == "automatic")
        .unwrap();
    let shown = succeeds(&hub, &["people", "show", automatic["id"].as_str().unwrap()]);
    assert!(shown.contains("(chosen automatically)"), "{shown}");
}

#[tokio::test]
async fn an_admin_chooses_primaries_syncs_and_resets_through_the_cli() {
    let demo = RunningDemo::start(40, TOKEN, &[("SWITCHBOARD_DEMO_PLATFORMS", "slack,teams")]);
    let hub = demo.hub_url();
    let unchosen: Vec<Value> = api_people(&demo, "&primary=unchosen")
        .await
        .into_iter()
        .filter(|p| p["platforms"] == serde_json::json!(["slack", "teams"]))
        .collect();
    assert!(unchosen.len() >= 2, "{unchosen:?}");
    let (alice, bob) = (
        unchosen[0]["id"].as_str().unwrap(),
        unchosen[1]["id"].as_str().unwrap(),
    );

    let chosen = succeeds(&hub, &["people", "primary", alice, "--platform", "slack"]);
    assert!(chosen.contains("chats from slack"), "{chosen}");
    succeeds(&hub, &["people", "primary", bob, "--platform", "slack"]);
    let person = api(&demo, &format!("/people/{alice}")).await;
    assert_eq!(
        (&person["primary"], &person["primary_chosen_by"]),
        (&Value::from("slack"), &Value::from("admin"))
    );

    // On Teams a person with an account of their own is prompted to authorise it; the prompt
    // goes to their primary platform, which the output names.
    let synced = succeeds(&hub, &["people", "sync", alice, "--platform", "teams"]);
    assert_eq!(
        synced.trim(),
        format!(
            "{alice}: pending on teams: prompted on slack (their primary platform) to authorise their own account"
        )
    );
    let person = api(&demo, &format!("/people/{alice}")).await;
    assert_eq!(on_teams(&person)["status"], "pending", "{person}");
    let reprompted = succeeds(&hub, &["people", "reprompt", alice]);
    assert_eq!(
        reprompted.trim(),
        format!("{alice}: prompted again on slack (their primary platform) for teams")
    );
    let person = api(&demo, &format!("/people/{alice}")).await;
    assert_eq!(person["representations"][0]["prompts_sent"], 2, "{person}");

    let reset = succeeds(&hub, &["people", "reset", alice, bob]);
    assert!(
        reset.contains(&format!("{alice}: reset on teams")) && reset.contains(bob),
        "{reset}"
    );
    for id in [alice, bob] {
        let person = api(&demo, &format!("/people/{id}")).await;
        assert_eq!(person["primary"], Value::Null, "{person}");
        for representation in person["representations"].as_array().unwrap() {
            assert_eq!(representation["status"], "not_created", "{person}");
        }
    }

    // Several ids go through the bulk endpoint: each person is reported, and one refusal
    // (no primary any more) makes the command fail.
    let refused = cli(&hub, &["people", "sync", alice, bob, "--platform", "teams"]);
    assert_eq!(refused.status.code(), Some(1));
    let report = String::from_utf8_lossy(&refused.stdout);
    assert!(
        report.contains(&format!("{alice}: error:")) && report.contains("(no_primary)"),
        "{report}"
    );

    // The rule "members of team X chat from platform P", then the team filter.
    let connections = api(&demo, "/connections").await;
    let teams_connection = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["platform"] == "teams")
        .unwrap();
    let team = teams_connection["selected_teams"][0]["id"]
        .as_str()
        .unwrap();
    let rule = succeeds(
        &hub,
        &["people", "primary", "--team", team, "--platform", "teams"],
    );
    assert!(rule.contains("changed"), "{rule}");
    let members = json_lines(&succeeds(
        &hub,
        &["people", "list", "--team", team, "--all", "--json"],
    ));
    assert!(!members.is_empty());
    for member in members
        .iter()
        .filter(|m| m["platforms"].as_array().unwrap().len() > 1)
    {
        assert_eq!(member["primary"], "teams", "{member}");
    }

    let remove = cli(&hub, &["people", "remove", bob]);
    assert_eq!(remove.status.code(), Some(2), "no --yes, no terminal");
    assert!(stderr(&remove).contains("--yes"), "{}", stderr(&remove));
    succeeds(&hub, &["people", "remove", bob, "--yes"]);
    let gone = cli(&hub, &["people", "show", bob]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("(not_found)"), "{}", stderr(&gone));
}

#[tokio::test]
async fn connections_imports_teams_settings_and_the_relay_through_the_cli() {
    let demo = RunningDemo::start(30, TOKEN, &[]);
    let hub = demo.hub_url();

    let table = succeeds(&hub, &["connections"]);
    assert!(
        table.starts_with("ID") && table.contains("slack") && table.contains("teams"),
        "{table}"
    );
    let listed: Value = serde_json::from_str(&succeeds(&hub, &["connections", "--json"])).unwrap();
    let teams_connection = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["platform"] == "teams")
        .unwrap();
    let connection = teams_connection["id"].as_str().unwrap();

    let teams = succeeds(&hub, &["teams", connection]);
    let team = teams_connection["selected_teams"][0]["id"]
        .as_str()
        .unwrap();
    assert!(teams.contains(team) && teams.contains("yes"), "{teams}");
    let selected = succeeds(&hub, &["teams", connection, "--select", team]);
    assert!(selected.contains(team), "{selected}");

    let imported = cli(&hub, &["import", connection, "--wait"]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let imported = String::from_utf8_lossy(&imported.stdout).into_owned();
    assert!(imported.contains("succeeded"), "{imported}");
    let runs = api(&demo, &format!("/connections/{connection}/imports")).await;
    assert_eq!(runs["imports"][0]["status"], "succeeded");
    assert!(
        imported.contains(runs["imports"][0]["id"].as_str().unwrap()),
        "{imported}"
    );

    let changed = succeeds(
        &hub,
        &[
            "settings",
            "set",
            "prompt_throttle_hours=48",
            "auto_prompt=on",
        ],
    );
    assert!(changed.contains("prompt_throttle_hours = 48"), "{changed}");
    let settings: Value = serde_json::from_str(&succeeds(&hub, &["settings", "--json"])).unwrap();
    assert_eq!(
        (&settings["prompt_throttle_hours"], &settings["auto_prompt"]),
        (&Value::from(48), &Value::from(true))
    );
    let refused = cli(&hub, &["settings", "set", "prompt_throttle_hours=0"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("(bad_setting)"),
        "{}",
        stderr(&refused)
    );
    let unknown = cli(&hub, &["settings", "set", "colour=blue"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));

    let relay = succeeds(&hub, &["relay"]);
    assert!(relay.contains("dead letters: 0"), "{relay}");
    let letters: Value =
        serde_json::from_str(&succeeds(&hub, &["relay", "dead-letters", "--json"])).unwrap();
    assert_eq!(letters["dead_letters"], Value::Array(Vec::new()));
    let missing = cli(&hub, &["relay", "retry", "999999"]);
    assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));

    let scope = succeeds(&hub, &["directory"]);
    assert!(scope.contains("everyone is in scope"), "{scope}");
    let shown: Value = serde_json::from_str(&succeeds(&hub, &["directory", "--json"])).unwrap();
    assert_eq!(shown["groups"], Value::Array(Vec::new()));
    let cleared = succeeds(&hub, &["directory", "clear", "--preview"]);
    assert!(
        cleared.contains("0 would leave") && cleared.contains("nothing changed"),
        "{cleared}"
    );
    let unknown_group = cli(
        &hub,
        &["directory", "set", "scim:no-such-group", "--preview"],
    );
    assert_eq!(unknown_group.status.code(), Some(1));
    assert!(
        stderr(&unknown_group).contains("(unknown_group)"),
        "{}",
        stderr(&unknown_group)
    );
    let malformed = cli(&hub, &["directory", "set", "sales"]);
    assert_eq!(malformed.status.code(), Some(2), "{}", stderr(&malformed));
    // The groups that may be chosen, each as SOURCE:ID with its kind, and one of them chosen.
    let groups = succeeds(&hub, &["directory", "groups"]);
    let users = groups
        .lines()
        .find(|line| line.contains("Switchboard users") && line.contains("security group"))
        .unwrap_or_else(|| panic!("{groups}"));
    let group = users.split_whitespace().next().unwrap();
    let previewed = succeeds(&hub, &["directory", "set", group, "--preview"]);
    assert!(previewed.contains("would leave"), "{previewed}");
}

#[tokio::test]
async fn failures_get_one_line_and_their_own_exit_status_and_never_show_the_token() {
    let demo = RunningDemo::start(20, TOKEN, &[]);
    let hub = demo.hub_url();

    let wrong = "wrong-token-that-must-not-echo";
    for bad_token in [
        switchboard()
            .args(["people", "list", "--hub", &hub, "--token", wrong])
            .output()
            .unwrap(),
        switchboard()
            .env("SWITCHBOARD_API_TOKEN", wrong)
            .args(["connections", "--hub", &hub])
            .output()
            .unwrap(),
    ] {
        assert_eq!(bad_token.status.code(), Some(1));
        let message = stderr(&bad_token);
        assert!(message.contains("unknown or revoked"), "{message}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            !message.contains(wrong) && !message.contains(TOKEN),
            "{message}"
        );
        assert!(bad_token.stdout.is_empty());
    }

    let bad_filter = cli(&hub, &["people", "list", "--status", "bogus"]);
    assert_eq!(bad_filter.status.code(), Some(1));
    assert_eq!(
        stderr(&bad_filter).trim(),
        "error: unknown sync status 'bogus' (bad_filter)"
    );

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let unreachable = cli(&nobody, &["people", "list"]);
    assert_eq!(unreachable.status.code(), Some(3));
    let message = stderr(&unreachable);
    assert!(
        message.contains("cannot reach the hub") && message.contains(&nobody),
        "{message}"
    );
    assert!(!message.contains(TOKEN), "{message}");

    let not_a_url = cli("hub.example:8080", &["relay"]);
    assert_eq!(not_a_url.status.code(), Some(2), "{}", stderr(&not_a_url));
    let bad_flag = cli(&hub, &["people", "list", "--colour"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    let no_token = switchboard()
        .args(["settings", "--hub", &hub])
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(2));
    assert!(stderr(&no_token).contains("SWITCHBOARD_API_TOKEN"));

    let help = succeeds(&hub, &["people", "--help"]);
    assert!(help.contains("3 when the hub"), "{help}");
    let with_secret_env = switchboard()
        .env("SWITCHBOARD_API_TOKEN", TOKEN)
        .args(["people", "list", "--help"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&with_secret_env.stdout).contains(TOKEN));
}

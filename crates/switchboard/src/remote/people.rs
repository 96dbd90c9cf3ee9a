//! `switchboard people …`: the Sync users page of the admin console, as commands.

use std::io::{BufRead, IsTerminal, Write};

use reqwest::Method;
use serde_json::{Value, json};

use super::output::{self, Table};
use super::{Failure, Hub, Outcome};
use crate::cli::{PeopleArgs, PeopleCommand, PeopleListArgs};

/// The most ids `POST /people/bulk/{action}` takes at once.
const BULK_LIMIT: usize = 1_000;

pub async fn people(args: PeopleArgs) -> Outcome {
    let hub = Hub::new(args.hub)?;
    match args.command {
        PeopleCommand::List(list_args) => list(&hub, list_args).await,
        PeopleCommand::Show { id, json } => show(&hub, &id, json).await,
        PeopleCommand::Sync { ids, platform } => {
            act(
                &hub,
                BulkAction::Sync {
                    platform: &platform,
                },
                &ids,
            )
            .await
        }
        PeopleCommand::Reset { ids } => act(&hub, BulkAction::Reset, &ids).await,
        PeopleCommand::Reprompt { ids } => act(&hub, BulkAction::Reprompt, &ids).await,
        PeopleCommand::Remove { ids, yes } => remove(&hub, &ids, yes).await,
        PeopleCommand::Primary {
            id: Some(id),
            platform,
            ..
        } => {
            let person = hub
                .send(
                    Method::PUT,
                    hub.url(&["people", &id, "primary"]),
                    Some(json!({ "platform": platform })),
                )
                .await?;
            output::line(&format!(
                "{} chats from {} now",
                name_and_email(&person),
                output::text(&person["primary"])
            ))
        }
        PeopleCommand::Primary {
            team: Some(team),
            platform,
            ..
        } => {
            let result = hub
                .send(
                    Method::POST,
                    hub.url(&["people", "primary"]),
                    Some(json!({ "rule": { "team": team, "platform": platform } })),
                )
                .await?;
            output::line(&format!(
                "members of team {team} on several platforms chat from {platform}: {} changed",
                result["changed"]
            ))
        }
        PeopleCommand::Primary {
            id: None,
            team: None,
            ..
        } => Err(Failure::Usage(
            "say whose primary platform to set: a person's id or --team".to_owned(),
        )),
    }
}

/// Prints the people page by page as they arrive, so that `--all` over 200,000 people holds
/// one page in memory, never the whole list.
async fn list(hub: &Hub, args: PeopleListArgs) -> Outcome {
    let platforms = if args.json {
        Vec::new()
    } else {
        connected_platforms(hub).await?
    };
    let mut cursor = args.cursor.clone();
    let mut table: Option<Table> = None;
    let mut listed = 0_usize;
    loop {
        let page = hub
            .get(people_page_url(hub, &args, cursor.as_deref()))
            .await?;
        let people = page["people"].as_array().cloned().unwrap_or_default();
        listed += people.len();
        if args.json {
            for person in &people {
                output::line(&person.to_string())?;
            }
        } else {
            let rows: Vec<Vec<String>> = people
                .iter()
                .map(|person| person_row(person, &platforms))
                .collect();
            let table = match &table {
                Some(table) => table,
                None => table.insert(Table::start(&people_header(&platforms), &rows)?),
            };
            for row in &rows {
                table.row(row)?;
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        match &cursor {
            Some(_) if args.all => {}
            Some(next) => {
                eprintln!("more people follow: add --all, or --cursor {next} for the next page");
                return Ok(());
            }
            None => break,
        }
    }
    if listed == 0 {
        eprintln!("no people match (import a connection first, or loosen the filters)");
    }
    Ok(())
}

fn people_page_url(hub: &Hub, args: &PeopleListArgs, cursor: Option<&str>) -> reqwest::Url {
    let mut url = hub.url(&["people"]);
    {
        let mut query = url.query_pairs_mut();
        // The API says `unchosen`; `none` reads better on a command line.
        let primary = args.primary.as_deref().map(|primary| match primary {
            "none" => "unchosen",
            other => other,
        });
        for (name, value) in [
            ("primary", primary),
            ("status", args.status.as_deref()),
            ("type", args.kind.as_deref()),
            ("team", args.team.as_deref()),
            ("q", args.q.as_deref()),
            ("cursor", cursor),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        query.append_pair("limit", &args.limit.to_string());
    }
    url
}

/// The platforms of the hub's connections, in its order: one table column each.
async fn connected_platforms(hub: &Hub) -> Outcome<Vec<String>> {
    let connections = hub.get(hub.url(&["connections"])).await?;
    let mut platforms: Vec<String> = Vec::new();
    for connection in connections["connections"].as_array().into_iter().flatten() {
        let platform = output::text(&connection["platform"]);
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    Ok(platforms)
}

fn people_header(platforms: &[String]) -> Vec<String> {
    ["NAME", "E-MAIL", "PRIMARY"]
        .into_iter()
        .map(str::to_owned)
        .chain(platforms.iter().map(|platform| platform.to_uppercase()))
        .collect()
}

/// Name, e-mail, primary, then for each platform the representation's status and type, the
/// icons of the console's table in words.
fn person_row(person: &Value, platforms: &[String]) -> Vec<String> {
    let primary = match person["primary"].as_str() {
        Some(primary) => primary.to_owned(),
        None if person["choose_primary"] == true => "(to choose)".to_owned(),
        None => "-".to_owned(),
    };
    let mut row = vec![
        output::text(&person["display_name"]),
        output::text(&person["email"]),
        primary,
    ];
    let representations = person["representations"].as_array();
    for platform in platforms {
        let representation = representations
            .into_iter()
            .flatten()
            .find(|representation| representation["platform"] == platform.as_str());
        row.push(match representation {
            Some(representation) => format!(
                "{} {}",
                output::text(&representation["status"]),
                output::text(&representation["type"])
            ),
            None if person["primary"] == platform.as_str() => "primary".to_owned(),
            None => "-".to_owned(),
        });
    }
    row
}

async fn show(hub: &Hub, id: &str, json: bool) -> Outcome {
    let person = hub.get(hub.url(&["people", id])).await?;
    if json {
        return output::json(&person);
    }
    output::line(&name_and_email(&person))?;
    output::line(&format!("  id:       {}", output::text(&person["id"])))?;
    output::line(&format!(
        "  primary:  {}{}",
        output::text(&person["primary"]),
        person["primary_chosen_by"]
            .as_str()
            .map(|by| match by {
                "automatic" => " (chosen automatically)".to_owned(),
                "admin" => " (chosen by an admin)".to_owned(),
                "person" => " (chosen by the person)".to_owned(),
                other => format!(" (chosen by {other})"),
            })
            .unwrap_or_default()
    ))?;
    output::line("accounts:")?;
    for account in person["accounts"].as_array().into_iter().flatten() {
        output::line(&format!(
            "  {}  {}  {}  {}  {}{}",
            output::text(&account["platform"]),
            output::text(&account["external_id"]),
            output::text(&account["display_name"]),
            output::text(&account["email"]),
            output::text(&account["kind"]),
            if account["active"] == false {
                "  (inactive)"
            } else {
                ""
            }
        ))?;
    }
    output::line("representations:")?;
    for representation in person["representations"].as_array().into_iter().flatten() {
        output::line(&format!(
            "  {}  {} {}{}  prompts sent: {}",
            output::text(&representation["platform"]),
            output::text(&representation["status"]),
            output::text(&representation["type"]),
            representation["failure_reason"]
                .as_str()
                .map(|reason| format!(" ({reason})"))
                .unwrap_or_default(),
            representation["prompts_sent"].as_i64().unwrap_or(0),
        ))?;
        for transition in representation["history"].as_array().into_iter().flatten() {
            output::line(&format!(
                "    {}  {} -> {}  {}",
                output::time(&transition["at"]),
                output::text(&transition["from"]),
                output::text(&transition["to"]),
                output::text(&transition["cause"]),
            ))?;
        }
    }
    Ok(())
}

fn name_and_email(person: &Value) -> String {
    format!(
        "{} <{}>",
        output::text(&person["display_name"]),
        output::text(&person["email"])
    )
}

#[derive(Clone, Copy)]
enum BulkAction<'a> {
    Sync { platform: &'a str },
    Reset,
    Reprompt,
}

impl BulkAction<'_> {
    fn name(self) -> &'static str {
        match self {
            Self::Sync { .. } => "sync",
            Self::Reset => "reset",
            Self::Reprompt => "reprompt",
        }
    }
}

/// One id goes to the person's own endpoint, so a refusal is the API's plain error; several go
/// to the bulk endpoint, a thousand at a time, and each person's outcome is reported.
async fn act(hub: &Hub, action: BulkAction<'_>, ids: &[String]) -> Outcome {
    if let [id] = ids {
        let url = match action {
            BulkAction::Sync { platform } => hub.url(&["people", id, "sync", platform]),
            BulkAction::Reset | BulkAction::Reprompt => hub.url(&["people", id, action.name()]),
        };
        let result = hub.send(Method::POST, url, None).await?;
        return output::line(&format!("{id}: {}", describe(action, &result)));
    }
    let mut failed = 0;
    for chunk in ids.chunks(BULK_LIMIT) {
        let mut body = json!({ "ids": chunk });
        if let BulkAction::Sync { platform } = action {
            body["platform"] = json!(platform);
        }
        let answer = hub
            .send(
                Method::POST,
                hub.url(&["people", "bulk", action.name()]),
                Some(body),
            )
            .await?;
        for result in answer["results"].as_array().into_iter().flatten() {
            let id = output::text(&result["id"]);
            if result["ok"] == true {
                output::line(&format!("{id}: {}", describe(action, result)))?;
            } else {
                failed += 1;
                output::line(&format!("{id}: error: {}", api_error(&result["error"])))?;
            }
        }
    }
    every_one_or_fail(failed, ids.len(), action.name())
}

fn describe(action: BulkAction<'_>, result: &Value) -> String {
    let platforms = |field: &str| {
        let names: Vec<String> = result[field]
            .as_array()
            .into_iter()
            .flatten()
            .map(output::text)
            .collect();
        names.join(", ")
    };
    match action {
        BulkAction::Sync { platform } => {
            let status = output::text(&result["status"]);
            if let Some(url) = result["consent_url"].as_str() {
                format!("{status} on {platform}: an admin of it approves at {url}")
            } else if result["prompted"] == true {
                format!(
                    "{status} on {platform}: prompted{} to authorise their own account",
                    prompted_on(result)
                )
            } else if result["already_synced"] == true {
                format!("{status} on {platform} already: nothing to do")
            } else if status == "queued" {
                format!(
                    "queued on {platform}: {}; created in about {} s (the audit log has the outcome)",
                    output::text(&result["pace"]),
                    output::text(&result["estimated_wait_seconds"])
                )
            } else {
                format!("{status} on {platform}")
            }
        }
        BulkAction::Reset => match platforms("reset").as_str() {
            "" => "reset (nothing was synced)".to_owned(),
            names => format!("reset on {names}"),
        },
        BulkAction::Reprompt => format!(
            "prompted again{} for {}",
            prompted_on(result),
            platforms("reprompted")
        ),
    }
}

/// Where a prompt went, as " on PLATFORM (their primary platform)"; nothing from a hub that
/// does not say.
fn prompted_on(result: &Value) -> String {
    result["prompted_on"]
        .as_str()
        .map(|platform| format!(" on {platform} (their primary platform)"))
        .unwrap_or_default()
}

fn api_error(error: &Value) -> String {
    format!(
        "{} ({})",
        output::text(&error["message"]),
        output::text(&error["code"])
    )
}

fn every_one_or_fail(failed: usize, of: usize, action: &str) -> Outcome {
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::Refused(format!(
            "{action} failed for {failed} of {of} people (see above)"
        )))
    }
}

/// There is no bulk removal in the API: people are removed one at a time, each reported.
async fn remove(hub: &Hub, ids: &[String], yes: bool) -> Outcome {
    if !yes {
        confirm_removal(ids.len())?;
    }
    if let [id] = ids {
        hub.send(Method::DELETE, hub.url(&["people", id]), None)
            .await?;
        return output::line(&format!("{id}: removed"));
    }
    let mut failed = 0;
    for id in ids {
        match hub
            .send(Method::DELETE, hub.url(&["people", id]), None)
            .await
        {
            Ok(_) => output::line(&format!("{id}: removed"))?,
            Err(Failure::Refused(message)) => {
                failed += 1;
                output::line(&format!("{id}: error: {message}"))?;
            }
            Err(other) => return Err(other),
        }
    }
    every_one_or_fail(failed, ids.len(), "remove")
}

/// Removing cannot be undone, so a person at a terminal confirms it; a script must say --yes
/// rather than have its standard input taken for an answer.
fn confirm_removal(count: usize) -> Outcome {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::Usage(
            "removing people cannot be undone: add --yes to remove without a question".to_owned(),
        ));
    }
    let whom = if count == 1 {
        "this person".to_owned()
    } else {
        format!("these {count} people")
    };
    eprint!(
        "Remove {whom} from the hub? The guests and bots it created for them are deleted. [y/N] "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Failure::Refused("nothing removed".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_sync_says_when_its_turn_comes() {
        let queued = json!({
            "id": "p",
            "platform": "slack",
            "status": "queued",
            "estimated_wait_seconds": 58,
            "pace": "Slack allows one new app a minute",
        });
        assert_eq!(
            describe(BulkAction::Sync { platform: "slack" }, &queued),
            "queued on slack: Slack allows one new app a minute; created in about 58 s (the audit log has the outcome)"
        );
    }
}

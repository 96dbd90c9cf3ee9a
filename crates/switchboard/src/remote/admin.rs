//! `switchboard connections | import | teams | settings | relay`: the Connect Center, Import,
//! Settings and Activity pages of the admin console, as commands.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::output::{self, Table};
use super::{Failure, Hub, Outcome};
use crate::cli::{
    ConnectionsArgs, ConnectionsCommand, DirectoryArgs, DirectoryCommand, ImportArgs, RelayArgs,
    RelayCommand, SettingsArgs, SettingsCommand, TeamsArgs,
};

/// How often `import --wait` asks for progress: quick enough to look live, and a few requests
/// a second at most for the hub.
const IMPORT_POLL: Duration = Duration::from_millis(500);

pub async fn connections(args: ConnectionsArgs) -> Outcome {
    let hub = Hub::new(args.hub)?;
    if let Some(ConnectionsCommand::Disconnect {
        id,
        remove_representations,
    }) = args.command
    {
        let mut url = hub.url(&["connections", &id]);
        if remove_representations {
            url.query_pairs_mut()
                .append_pair("remove_representations", "true");
        }
        let done = hub.send(Method::DELETE, url, None).await?;
        if args.json {
            return output::json(&done);
        }
        return disconnected(&id, &done);
    }
    let answer = hub.get(hub.url(&["connections"])).await?;
    if args.json {
        return output::json(&answer);
    }
    let connections = answer["connections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if connections.is_empty() {
        eprintln!(
            "no connections yet: connect a platform with POST /api/v1/connections (docs/api.md)"
        );
        return Ok(());
    }
    let header = [
        "ID",
        "PLATFORM",
        "NAME",
        "HEALTH",
        "TOKEN EXPIRES",
        "LAST IMPORT",
    ]
    .map(str::to_owned);
    let rows: Vec<Vec<String>> = connections
        .iter()
        .map(|connection| {
            let health = &connection["health"];
            vec![
                output::text(&connection["id"]),
                output::text(&connection["platform"]),
                output::text(&connection["display_name"]),
                match (connection["status"].as_str(), health["ok"].as_bool()) {
                    (Some("disconnected"), _) => format!(
                        "disconnected {}",
                        output::time(&connection["disconnected_at"])
                    ),
                    (_, Some(true)) => "ok".to_owned(),
                    (_, Some(false)) => "failing".to_owned(),
                    (_, None) => "not checked yet".to_owned(),
                },
                match health["expires_at"] {
                    Value::Null => "never".to_owned(),
                    ref at => output::time(at),
                },
                match &connection["last_import"] {
                    Value::Null => "never".to_owned(),
                    run => format!(
                        "{} {}",
                        output::text(&run["status"]),
                        output::time(&run["started_at"])
                    ),
                },
            ]
        })
        .collect();
    let table = Table::start(&header, &rows)?;
    for row in &rows {
        table.row(row)?;
    }
    for connection in &connections {
        if let Some(error) = connection["health"]["last_error"].as_str() {
            output::line(&format!(
                "{} ({}): {error}",
                output::text(&connection["id"]),
                output::text(&connection["platform"])
            ))?;
        }
    }
    Ok(())
}

/// What a disconnection did, one fact a line; every guest or bot left on the platform named.
fn disconnected(id: &str, done: &Value) -> Outcome {
    output::line(&format!("connection {id} disconnected"))?;
    if let Some(removed) = done["removed"].as_array()
        && !removed.is_empty()
    {
        output::line(&format!(
            "{} guest accounts or bots removed from the platform",
            removed.len()
        ))?;
    }
    for failure in done["not_removed"].as_array().into_iter().flatten() {
        output::line(&format!(
            "not removed: person {}: {}",
            output::text(&failure["person_id"]),
            output::text(&failure["error"])
        ))?;
    }
    if let Some(error) = done["unsubscribe_error"].as_str() {
        output::line(&format!("event subscriptions not removed: {error}"))?;
    }
    output::line(&format!(
        "{} copies dead-lettered, {} representations failed",
        output::text(&done["dead_lettered"]),
        output::text(&done["representations_failed"])
    ))
}

pub async fn import(args: ImportArgs) -> Outcome {
    let hub = Hub::new(args.hub)?;
    let run = hub
        .send(
            Method::POST,
            hub.url(&["connections", &args.connection, "import"]),
            None,
        )
        .await?;
    let run_id = output::text(&run["id"]);
    if !args.wait {
        return output::line(&format!(
            "import {run_id} started (follow it with --wait, or GET /api/v1/imports/{run_id})"
        ));
    }
    // indicatif (three small crates) draws the live line on a terminal and hides itself
    // otherwise; there, progress goes out as plain lines, one per change, for logs.
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} importing: {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message("starting");
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut last_shown = String::new();
    let finished = loop {
        let progress = hub.get(hub.url(&["imports", &run_id])).await?;
        let counts = import_counts(&progress);
        if counts != last_shown {
            if bar.is_hidden() {
                eprintln!("importing: {counts}");
            }
            bar.set_message(counts.clone());
            last_shown = counts;
        }
        if progress["status"] != "running" {
            break progress;
        }
        tokio::time::sleep(IMPORT_POLL).await;
    };
    bar.finish_and_clear();
    let counts = import_counts(&finished);
    match finished["status"].as_str() {
        Some("succeeded") => output::line(&format!("import {run_id} succeeded: {counts}")),
        _ => Err(Failure::Refused(format!(
            "import {run_id} failed: {} ({counts})",
            output::text(&finished["error"])
        ))),
    }
}

fn import_counts(run: &Value) -> String {
    format!(
        "{} pages, {} seen, {} added, {} updated, {} deactivated, {} skipped",
        run["pages"], run["seen"], run["added"], run["updated"], run["deactivated"], run["skipped"]
    )
}

pub async fn teams(args: TeamsArgs) -> Outcome {
    let hub = Hub::new(args.hub)?;
    let url = hub.url(&["connections", &args.connection, "teams"]);
    if let Some(selection) = args.select {
        let answer = hub
            .send(Method::PUT, url, Some(json!({ "teams": selection })))
            .await?;
        if args.json {
            return output::json(&answer);
        }
        let names: Vec<String> = answer["selected"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|team| {
                format!(
                    "{} ({})",
                    output::text(&team["name"]),
                    output::text(&team["id"])
                )
            })
            .collect();
        return output::line(&format!(
            "selected for import: {} (run `switchboard import {}` to import them)",
            names.join(", "),
            args.connection
        ));
    }
    let answer = hub.get(url).await?;
    if args.json {
        return output::json(&answer);
    }
    let header = ["ID", "NAME", "MEMBERS", "SELECTED"].map(str::to_owned);
    let rows: Vec<Vec<String>> = answer["teams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|team| {
            vec![
                output::text(&team["id"]),
                output::text(&team["name"]),
                output::text(&team["member_count"]),
                if team["selected"] == true {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
            ]
        })
        .collect();
    let table = Table::start(&header, &rows)?;
    for row in &rows {
        table.row(row)?;
    }
    Ok(())
}

pub async fn settings(args: SettingsArgs) -> Outcome {
    let hub = Hub::new(args.hub)?;
    let url = hub.url(&["settings"]);
    let current = hub.get(url.clone()).await?;
    let shown = match args.command {
        None => current,
        Some(SettingsCommand::Set { changes }) => {
            let change = settings_change(&current, &changes)?;
            hub.send(Method::PUT, url, Some(Value::Object(change)))
                .await?
        }
        Some(SettingsCommand::Restrict { emails }) => {
            let mut restricted = restricted_users(&current);
            restricted.extend(emails);
            let change = json!({ "restricted_users": restricted });
            hub.send(Method::PUT, url, Some(change)).await?
        }
        Some(SettingsCommand::Unrestrict { emails }) => {
            let lifted: Vec<String> = emails.iter().map(|e| e.trim().to_lowercase()).collect();
            let restricted: Vec<String> = restricted_users(&current)
                .into_iter()
                .filter(|email| !lifted.contains(email))
                .collect();
            let change = json!({ "restricted_users": restricted });
            hub.send(Method::PUT, url, Some(change)).await?
        }
    };
    if args.json {
        return output::json(&shown);
    }
    for (key, value) in shown.as_object().into_iter().flatten() {
        // A list as `set` takes it back.
        let shown = match value {
            Value::Array(items) => items.iter().map(output::text).collect::<Vec<_>>().join(","),
            other => output::text(other),
        };
        output::line(&format!("{key} = {shown}"))?;
    }
    Ok(())
}

fn restricted_users(settings: &Value) -> Vec<String> {
    settings["restricted_users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|email| email.as_str().map(str::to_owned))
        .collect()
}

/// Reads `KEY=VALUE` pairs as the JSON types the hub's current settings have, so the command
/// needs no list of its own of the settings that exist; a list is comma-separated.
fn settings_change(current: &Value, changes: &[String]) -> Outcome<Map<String, Value>> {
    let known: Vec<&str> = current
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, _)| key.as_str())
        .collect();
    let mut change = Map::new();
    for pair in changes {
        let Some((key, text)) = pair.split_once('=') else {
            return Err(Failure::Usage(format!(
                "'{pair}' is not KEY=VALUE (settings: {})",
                known.join(", ")
            )));
        };
        let value =
            match &current[key] {
                Value::Bool(_) => Value::Bool(match text.to_lowercase().as_str() {
                    "true" | "on" | "yes" => true,
                    "false" | "off" | "no" => false,
                    _ => {
                        return Err(Failure::Usage(format!(
                            "{key} is on or off (true or false), not '{text}'"
                        )));
                    }
                }),
                Value::Number(_) => Value::from(text.parse::<i64>().map_err(|_| {
                    Failure::Usage(format!("{key} is a whole number, not '{text}'"))
                })?),
                Value::String(_) => Value::String(text.to_owned()),
                Value::Array(_) => Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| Value::String(item.to_owned()))
                        .collect(),
                ),
                _ => {
                    return Err(Failure::Usage(format!(
                        "unknown setting '{key}' (settings: {})",
                        known.join(", ")
                    )));
                }
            };
        change.insert(key.to_owned(), value);
    }
    Ok(change)
}

pub async fn directory(args: DirectoryArgs) -> Outcome {
    let hub = Hub::new(args.hub)?;
    let url = hub.url(&["directory"]);
    let (groups, preview) = match args.command {
        None => {
            let shown = hub.get(url).await?;
            if args.json {
                return output::json(&shown);
            }
            let groups = shown["groups"].as_array().cloned().unwrap_or_default();
            if groups.is_empty() {
                return output::line("no group is chosen: everyone is in scope");
            }
            for group in &groups {
                let read = &group["last_read"];
                let reading = if read.is_null() {
                    String::new()
                } else if !read["error"].is_null() {
                    format!("  (last reading failed: {})", output::text(&read["error"]))
                } else {
                    format!("  ({} addresses read)", read["members"])
                };
                output::line(&format!(
                    "{}:{}  {}{reading}",
                    output::text(&group["source"]),
                    output::text(&group["id"]),
                    output::text(&group["name"])
                ))?;
            }
            return output::line(&format!("{} people in scope", shown["in_scope"]));
        }
        Some(DirectoryCommand::Groups) => {
            let found = hub.get(hub.url(&["directory", "groups"])).await?;
            if args.json {
                return output::json(&found);
            }
            for group in found["groups"].as_array().cloned().unwrap_or_default() {
                output::line(&format!(
                    "{}:{}  {} ({}{})",
                    output::text(&group["source"]),
                    output::text(&group["id"]),
                    output::text(&group["name"]),
                    output::text(&group["kind"]),
                    group["platform"]
                        .as_str()
                        .map(|platform| format!(", {platform}"))
                        .unwrap_or_default()
                ))?;
            }
            for unreadable in found["unreadable"].as_array().cloned().unwrap_or_default() {
                output::line(&format!("cannot read: {}", output::text(&unreadable)))?;
            }
            return Ok(());
        }
        Some(DirectoryCommand::Set { groups, preview }) => (groups, preview),
        Some(DirectoryCommand::Clear { preview }) => (Vec::new(), preview),
    };
    let mut chosen = Vec::with_capacity(groups.len());
    for group in &groups {
        let (source, id) = group.split_once(':').ok_or_else(|| {
            Failure::Usage(format!(
                "'{group}' is not SOURCE:ID (a SCIM group is scim:ID)"
            ))
        })?;
        chosen.push(json!({ "source": source, "id": id }));
    }
    let mut url = url;
    if preview {
        url.query_pairs_mut().append_pair("preview", "true");
    }
    let answer = hub
        .send(Method::PUT, url, Some(json!({ "groups": chosen })))
        .await?;
    if args.json {
        return output::json(&answer);
    }
    let leaving = answer["leaving"].as_array().cloned().unwrap_or_default();
    let verb = if preview { "would leave" } else { "leave" };
    output::line(&format!(
        "{} {verb} (reset and removed){}",
        leaving.len(),
        if leaving.is_empty() { "" } else { ":" }
    ))?;
    for person in &leaving {
        output::line(&format!(
            "  {} <{}>",
            output::text(&person["display_name"]),
            output::text(&person["email"])
        ))?;
    }
    if preview {
        output::line("nothing changed (--preview)")?;
    }
    Ok(())
}

pub async fn relay(args: RelayArgs) -> Outcome {
    let hub = Hub::new(args.hub)?;
    match args.command {
        None => {
            let status = hub.get(hub.url(&["relay"])).await?;
            if args.json {
                return output::json(&status);
            }
            output::line(&format!(
                "inbox: {} events to read\noutbox: {} copies to send, {} of them retrying\ndead letters: {}",
                status["inbox"], status["outbox"], status["retrying"], status["dead_letters"]
            ))
        }
        Some(RelayCommand::DeadLetters { limit, json }) => {
            let mut url = hub.url(&["relay", "dead-letters"]);
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
            let answer = hub.get(url).await?;
            if json || args.json {
                return output::json(&answer);
            }
            let letters = answer["dead_letters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if letters.is_empty() {
                eprintln!("no dead letters: every copy was delivered or is still being tried");
                return Ok(());
            }
            let header = [
                "ID",
                "DEAD SINCE",
                "TO",
                "ACTION",
                "SENDER",
                "ATTEMPTS",
                "ERROR",
            ]
            .map(str::to_owned);
            let rows: Vec<Vec<String>> = letters
                .iter()
                .map(|letter| {
                    vec![
                        output::text(&letter["id"]),
                        output::time(&letter["dead_at"]),
                        output::text(&letter["platform"]),
                        output::text(&letter["action"]),
                        output::text(&letter["sender_id"]),
                        output::text(&letter["attempts"]),
                        output::text(&letter["error"]),
                    ]
                })
                .collect();
            let table = Table::start(&header, &rows)?;
            for row in &rows {
                table.row(row)?;
            }
            Ok(())
        }
        Some(RelayCommand::Retry { id }) => {
            hub.send(
                Method::POST,
                hub.url(&["relay", "dead-letters", &id.to_string(), "retry"]),
                None,
            )
            .await?;
            output::line(&format!(
                "dead letter {id} is back in its lane, with fresh retries"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_as_the_types_the_hub_has() {
        let current = json!({"auto_sync": false, "prompt_throttle_hours": 24, "prompt_text": "Hi", "restricted_users": []});
        let change = settings_change(
            &current,
            &[
                "auto_sync=on".to_owned(),
                "prompt_throttle_hours=48".to_owned(),
                "prompt_text=Sync = easy".to_owned(),
                "restricted_users=a@acme.com, b@acme.com".to_owned(),
            ],
        )
        .unwrap();
        assert_eq!(
            Value::Object(change),
            json!({"auto_sync": true, "prompt_throttle_hours": 48, "prompt_text": "Sync = easy", "restricted_users": ["a@acme.com", "b@acme.com"]})
        );
        let nobody = settings_change(&current, &["restricted_users=".to_owned()]).unwrap();
        assert_eq!(Value::Object(nobody), json!({"restricted_users": []}));
        for bad in [
            "auto_sync=maybe",
            "prompt_throttle_hours=two",
            "colour=blue",
            "auto_sync",
        ] {
            assert!(
                matches!(
                    settings_change(&current, &[bad.to_owned()]),
                    Err(Failure::Usage(_))
                ),
                "{bad} accepted"
            );
        }
    }
}

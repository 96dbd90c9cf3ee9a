//! Directory Sync: the groups the hub's people are the members of — those chosen, with each
//! one's last reading (when, how many, when its members last changed, what went wrong), and
//! every group that may be chosen, previewed (who would leave) before it is applied. The same
//! application functions as the REST API's `/directory`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use switchboard_store::{DirectoryRead, ScopeGroup};

use super::connections::when;
use super::layout::{self, Nav};
use super::{ConsoleError, Fields, Session};
use crate::AppState;
use crate::admin::directory::{Choosable, choosable, choose, preview};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/directory", get(show).post(apply))
        .route("/console/directory/preview", post(show_preview))
}

/// The groups a form names, each as `SOURCE:ID`.
fn chosen_in(fields: &Fields) -> Vec<ScopeGroup> {
    fields
        .all("group")
        .filter_map(|value| value.split_once(':'))
        .map(|(source, id)| ScopeGroup {
            source: source.to_owned(),
            group_id: id.to_owned(),
        })
        .collect()
}

fn key(group: &ScopeGroup) -> String {
    format!("{}:{}", group.source, group.group_id)
}

async fn show(
    state: State<AppState>,
    session: Extension<Session>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    page(state, session, headers, None).await
}

/// The page with what choosing the form's groups would do, and a button that does it.
async fn show_preview(
    state: State<AppState>,
    session: Extension<Session>,
    headers: HeaderMap,
    Extension(fields): Extension<Fields>,
) -> Result<Response, ConsoleError> {
    page(state, session, headers, Some(chosen_in(&fields))).await
}

async fn apply(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
) -> Result<Response, ConsoleError> {
    let groups = chosen_in(&fields);
    let done = choose(&state, &session.caller(), groups.clone()).await?;
    let message = if groups.is_empty() {
        "No group is chosen: everyone is in scope.".to_owned()
    } else {
        format!(
            "Directory Sync follows {} group{}; {} leave (reset and removed).",
            groups.len(),
            if groups.len() == 1 { "" } else { "s" },
            done.leaving.len()
        )
    };
    let mut response = Redirect::to("/console/directory").into_response();
    layout::flash(&state, &mut response, &message);
    Ok(response)
}

async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    previewing: Option<Vec<ScopeGroup>>,
) -> Result<Response, ConsoleError> {
    let chosen = state.store.directory_scope().await?;
    let now = preview(&state, &chosen).await?;
    let (groups, unreadable) = choosable(&state).await?;
    let by_group: HashMap<&ScopeGroup, &Choosable> =
        groups.iter().map(|found| (&found.group, found)).collect();
    let reads: HashMap<ScopeGroup, DirectoryRead> = state
        .store
        .directory_reads()
        .await?
        .into_iter()
        .map(|read| (read.group.clone(), read))
        .collect();
    let previewed = match &previewing {
        Some(groups) => Some((groups.clone(), preview(&state, groups).await?)),
        None => None,
    };
    let selected: Vec<&ScopeGroup> = match &previewing {
        Some(groups) => groups.iter().collect(),
        None => chosen.iter().collect(),
    };
    let editable = session.can_change();
    let where_it_lives = |found: &Choosable| match &found.platform {
        Some(platform) => format!("{} ({platform})", found.kind),
        None => found.kind.clone(),
    };
    let body = html! {
        h1 { "Directory Sync" }
        p.lead {
            "The hub's people are the members of the groups chosen here: a person in none of them is never synced, and one who leaves them is reset — the guests and bots made for them removed from every platform — and removed from the hub. Changes are heard from the directory within seconds, and every group is read again every few minutes in case one was missed."
        }
        h2 { "Followed groups" }
        @if chosen.is_empty() {
            div.empty { p { "No group is chosen: everyone is in scope." } }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Group" } th scope="col" { "Kind" } th scope="col" { "Last reading" }
                    th scope="col" { "Addresses" } th scope="col" { "Last change" } th scope="col" { "Error" }
                } }
                tbody {
                    @for group in &chosen {
                        @let found = by_group.get(group);
                        @let read = reads.get(group);
                        tr {
                            td { (found.map_or(group.group_id.as_str(), |f| f.name.as_str())) }
                            td { (found.map_or_else(|| "gone".to_owned(), |f| where_it_lives(f))) }
                            td { (read.map_or_else(|| "not yet".to_owned(), |r| when(r.read_at))) }
                            td { (read.map_or_else(String::new, |r| r.members.to_string())) }
                            td { (read.and_then(|r| r.changed_at).map_or_else(String::new, when)) }
                            td { (read.and_then(|r| r.error.clone()).unwrap_or_default()) }
                        }
                    }
                }
            }
            p { (now.in_scope.unwrap_or_default()) " of the hub's people are in scope." }
        }
        @if let Some((groups, outcome)) = &previewed {
            div.notice role="status" {
                p {
                    @match outcome.in_scope {
                        Some(count) => { "With these groups, " (count) " of the hub's people are in scope. " }
                        None => { "With no group, everyone is in scope. " }
                    }
                    (outcome.leaving.len()) " would leave (reset and removed)" @if outcome.leaving.is_empty() { "." } @else { ":" }
                }
                @if !outcome.leaving.is_empty() {
                    ul { @for person in &outcome.leaving { li { a href={"/console/people/" (person.id)} { (person.display_name) } " <" (person.email.as_str()) ">" } } }
                }
                @if editable {
                    form method="post" action="/console/directory" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        @for group in groups { input type="hidden" name="group" value=(key(group)); }
                        button type="submit" { "Apply" }
                    }
                }
            }
        }
        h2 { "Choose groups" }
        @if groups.is_empty() {
            div.empty { p { "No group can be chosen yet: connect a platform whose directory has groups, or provision groups through SCIM." } }
        } @else {
            form method="post" action="/console/directory/preview" {
                input type="hidden" name="csrf" value=(session.csrf);
                fieldset {
                    legend { "Groups" }
                    @for found in &groups {
                        @let id = format!("g-{}", key(&found.group));
                        div {
                            input type="checkbox" id=(id) name="group" value=(key(&found.group)) checked[selected.contains(&&found.group)];
                            label for=(id) { (found.name) span.hint { " — " (where_it_lives(found)) } }
                        }
                    }
                }
                div.buttons { button type="submit" disabled[!editable] { "Preview" } }
            }
        }
        @for reason in &unreadable {
            p.hint { "Cannot read the groups of " (reason) }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Directory,
        "Directory Sync",
        body,
    ))
}

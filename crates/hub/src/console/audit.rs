//! The audit log: every admin action (console, API, command line), who, when, what, from
//! where; filtered by actor and action, paged by entry. A person or connection acted on is
//! shown by name, linked to its page.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use switchboard_core::{Connection, ConnectionId, PersonId};
use switchboard_store::AuditEntry;

use super::connections::when;
use super::layout::{self, Nav};
use super::{ConsoleError, Session};
use crate::AppState;

/// What the entries on a page acted on, by name: the people and connections their targets' ids
/// name, looked up once per page.
struct Targets {
    people: HashMap<PersonId, String>,
    /// Each with whether it is connected still.
    connections: HashMap<ConnectionId, (Connection, bool)>,
}

impl Targets {
    async fn of(state: &AppState, entries: &[AuditEntry]) -> Result<Self, ConsoleError> {
        let mut people = HashMap::new();
        for entry in entries {
            if let Some(id) = person_target(entry).filter(|id| !people.contains_key(id))
                && let Some(person) = state.store.person(id).await?
            {
                people.insert(id, person.display_name);
            }
        }
        let mut connections = HashMap::new();
        if entries.iter().any(|e| connection_target(e).is_some()) {
            for connection in state.store.connections().await? {
                connections.insert(connection.id, (connection, true));
            }
            for (connection, _) in state.store.disconnected_connections().await? {
                connections.insert(connection.id, (connection, false));
            }
        }
        Ok(Self {
            people,
            connections,
        })
    }

    /// The target by name, linked to its page where it has one; as recorded otherwise (a
    /// token's name, a dead letter's id, a settings section).
    fn show(&self, entry: &AuditEntry) -> Markup {
        if let Some(id) = person_target(entry) {
            return match self.people.get(&id) {
                Some(name) => html! { a href={"/console/people/" (id)} { (name) } },
                None => html! { (entry.target) span.hint { " (a person no longer in the hub)" } },
            };
        }
        if let Some(id) = connection_target(entry) {
            return match self.connections.get(&id) {
                Some((connection, true)) => html! {
                    a href={"/console/connections#platform-" (connection.platform.as_str())} {
                        (connection.platform.display_name()) ": " (connection.display_name)
                    }
                },
                Some((connection, false)) => html! {
                    (connection.platform.display_name()) ": " (connection.display_name)
                    span.hint { " (disconnected)" }
                },
                None => html! { (entry.target) },
            };
        }
        html! { (entry.target) }
    }
}

/// The person an entry acted on: actions on one person (`person.…`) name them by id.
fn person_target(entry: &AuditEntry) -> Option<PersonId> {
    entry
        .action
        .starts_with("person.")
        .then(|| entry.target.parse().ok())
        .flatten()
}

/// The connection an entry acted on (`connection.…`).
fn connection_target(entry: &AuditEntry) -> Option<ConnectionId> {
    entry
        .action
        .starts_with("connection.")
        .then(|| entry.target.parse().ok())
        .flatten()
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/audit", get(show))
}

const PAGE: i64 = 100;

#[derive(Deserialize)]
struct Filters {
    actor: Option<String>,
    action: Option<String>,
    before: Option<i64>,
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Result<Response, ConsoleError> {
    let actor = filters.actor.unwrap_or_default();
    let action = filters.action.unwrap_or_default();
    let entries = state
        .store
        .audit_log_matching(&actor, &action, filters.before, PAGE)
        .await?;
    let targets = Targets::of(&state, &entries).await?;
    let older = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|before| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("actor", &actor);
            query.append_pair("action", &action);
            query.append_pair("before", &before.to_string());
            format!("/console/audit?{}", query.finish())
        });
    let body = html! {
        h1 { "Audit log" }
        form.filters method="get" role="search" {
            div {
                label for="a-actor" { "Who (contains)" }
                input #a-actor type="search" name="actor" value=(actor) placeholder="admin:ada@ or token:";
            }
            div {
                label for="a-action" { "Action (starts with)" }
                input #a-action type="search" name="action" value=(action) placeholder="person.";
            }
            div.buttons { button type="submit" { "Filter" } }
        }
        @if entries.is_empty() {
            div.empty { p { "Nothing matches. Every change an admin makes — in this console, through the API or on the command line — is listed here." } }
        } @else {
            table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Detail" } th scope="col" { "From" } } }
                tbody {
                    @for entry in &entries {
                        tr {
                            td { (when(entry.at)) }
                            td { (entry.actor) }
                            td { code { (entry.action) } }
                            td { (targets.show(entry)) }
                            td { (entry.detail) }
                            td { (entry.source) }
                        }
                    }
                }
            }
            @if let Some(older) = older {
                nav.pages aria-label="Pages" { a href=(older) { "Older entries" } }
            }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Audit,
        "Audit log",
        body,
    ))
}

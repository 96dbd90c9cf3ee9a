//! The audit log: every admin action (console, API, command line), who, when, what, from
//! where; filtered by actor and action, paged by entry.

use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use maud::html;
use serde::Deserialize;

use super::connections::when;
use super::layout::{self, Nav};
use super::{ConsoleError, Session};
use crate::AppState;

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
                            td { (entry.target) }
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

//! One person: the actions on them (as in their row's menu on Sync users), their accounts on each
//! platform, their representations with each status change (when, why) and the prompts sent to
//! them.

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use maud::html;
use switchboard_core::{AccountKind, ChosenBy, PersonId, Platform, SyncStatus};

use super::connections::when;
use super::layout::{self, Icon, Nav, icon};
use super::people::{action_links, confirm_dialog, kept_on_removal, status_label};
use super::{ConsoleError, Session};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/people/{id}", get(show))
}

/// Who chose a primary platform, in a sentence's words.
fn chosen(by: ChosenBy) -> &'static str {
    match by {
        ChosenBy::Automatic => "chosen automatically",
        ChosenBy::Admin => "chosen by an admin",
        ChosenBy::Person => "chosen by the person",
    }
}

/// Relayed messages listed on a person's page.
const RELAYED_SHOWN: i64 = 20;

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let missing = || ConsoleError::not_found(format!("no person with id {id}"));
    let person_id: PersonId = id.parse().map_err(|_| missing())?;
    let person = state.store.person(person_id).await?.ok_or_else(missing)?;
    let accounts = state.store.accounts_of_person(person_id).await?;
    let mut representations = Vec::new();
    for representation in state.store.representations_of(person_id).await? {
        let history = state
            .store
            .transitions(person_id, representation.platform)
            .await?;
        let prompts = state
            .store
            .prompts_sent(person_id, representation.platform)
            .await?;
        representations.push((representation, history, prompts));
    }
    let relayed = state.store.relayed_by(person_id, RELAYED_SHOWN).await?;
    let back = format!("/console/people/{person_id}");
    // Where a sync can be started from here, each after its confirmation: the connected
    // platforms other than the primary where nothing works or waits yet.
    let mut syncable: Vec<Platform> = Vec::new();
    // The connected platforms that cannot represent the person at all, said as such.
    let mut unrepresentable: Vec<Platform> = Vec::new();
    let on: Vec<Platform> = accounts
        .iter()
        .filter(|account| account.active && account.kind == AccountKind::Human)
        .map(|account| account.platform)
        .collect();
    let fallback = crate::settings::fallback_representations(&state.store).await?;
    if let Some(primary) = person.primary {
        for connection in state.store.connections().await? {
            let platform = connection.platform;
            if platform == primary.platform
                || syncable.contains(&platform)
                || unrepresentable.contains(&platform)
            {
                continue;
            }
            if super::people::cannot_represent(&state.platforms, platform, &on, fallback) {
                unrepresentable.push(platform);
                continue;
            }
            let settled = representations.iter().any(|(r, _, _)| {
                r.platform == platform
                    && matches!(r.status, SyncStatus::Pending | SyncStatus::Synced)
            });
            if !settled && session.can_change() {
                syncable.push(platform);
            }
        }
    }
    let body = html! {
        p { a href="/console/people" { "← Sync users" } }
        h1 { (person.display_name) }
        dl.facts {
            dt { "E-mail" } dd { (person.email.as_str()) }
            dt { "Primary platform" }
            dd {
                @match person.primary {
                    Some(primary) => { (primary.platform.display_name()) " (" (chosen(primary.chosen_by)) ")" }
                    None => span.hint { "not chosen yet: choose it on Sync users" },
                }
            }
        }
        @if session.can_change() {
            h2 { "Actions" }
            ul.actions { (action_links(person_id, &person.display_name, &kept_on_removal(&state.platforms, representations.iter().map(|(r, _, _)| r)), &back)) }
        }
        h2 { "Accounts" }
        @if accounts.is_empty() {
            p.hint { "No account is linked to this person; the next import links the accounts that share their e-mail address." }
        } @else {
            table {
                thead { tr { th scope="col" { "Platform" } th scope="col" { "Name there" } th scope="col" { "E-mail" } th scope="col" { "Id" } th scope="col" { "Kind" } th scope="col" { "Active" } } }
                tbody {
                    @for account in &accounts {
                        tr {
                            td { (account.platform.display_name()) }
                            td { (account.display_name) }
                            td { (account.email.as_ref().map_or("", |e| e.as_str())) }
                            td { code { (account.external_id.as_str()) } }
                            td { (account.kind.as_str()) }
                            td { @if account.active { "yes" } @else { "no (left or deactivated)" } }
                        }
                    }
                }
            }
        }
        h2 { "Representations" }
        @if !syncable.is_empty() {
            p.buttons {
                @for platform in &syncable {
                    a.button href={"/console/people/" (person_id) "/sync/" (platform.as_str()) "?return=/console/people/" (person_id)} { "Sync on " (platform.display_name()) }
                }
            }
        }
        @if representations.is_empty() {
            p.hint { "Not represented anywhere yet. Sync them from Sync users." }
        }
        @for platform in &unrepresentable {
            p.hint {
                (icon(Icon::NotRepresented)) " Not represented on " (platform.display_name()) ": "
                (platform.display_name()) " can represent only people with a " (platform.display_name())
                " account, and this person has none."
                @if state.platforms.get(*platform).is_some_and(|module| module.rules().fallback.is_some()) {
                    " An admin can have them reached there through the hub's own bot instead (not native): Settings, Fallback."
                }
            }
        }
        @for (representation, history, prompts) in &representations {
            section.card aria-labelledby={"rep-" (representation.platform.as_str())} {
                h3 #{"rep-" (representation.platform.as_str())} { (representation.platform.display_name()) ": " (state.platforms.called(representation.platform, representation.kind).one) ", " (status_label(representation.status.code())) }
                @if let Some(reason) = representation.status.failure_reason() {
                    p.failed-text { "Failed: " (reason) }
                }
                @if state.platforms.get(representation.platform).is_some_and(|module| module.rules().is_fallback(representation.kind)) {
                    p.hint {
                        "Not native: " (representation.platform.display_name()) " users get this person's messages from the hub's own bot there, in their chat with it, labelled with this person's name and primary platform; what they answer there comes back to them. Group chats do not reach them there."
                    }
                }
                p { "Prompts sent: " (prompts) }
                table {
                    caption { "History" }
                    thead { tr { th scope="col" { "When" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Why" } } }
                    tbody {
                        @for step in history {
                            tr {
                                td { (when(step.at)) }
                                td { (status_label(step.from)) }
                                td { (status_label(step.to.code())) @if let Some(reason) = step.to.failure_reason() { ": " (reason) } }
                                td { (step.cause) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Recent relay activity" }
        @if relayed.is_empty() {
            p.hint { "None of their messages was relayed yet: once they and the people they write to are synced, each message they send across platforms is listed here (when and where, never what it said)." }
        } @else {
            table {
                caption { "Their last " (relayed.len()) " messages relayed, newest first" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Written on" } th scope="col" { "Delivered to" } } }
                tbody {
                    @for message in &relayed {
                        tr {
                            td { (when(message.at)) }
                            td { (message.copy.origin.platform.display_name()) }
                            td { (message.copy.copy.platform.display_name()) }
                        }
                    }
                }
            }
        }
        @if session.can_change() {
            (confirm_dialog(&session, &back))
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::People,
        &person.display_name,
        body,
    ))
}

//! Import teams and users: per connection, "Import users" (platforms that import everyone) or
//! "Select teams" (team-scoped platforms), the running import's progress with the orange clock,
//! and the last import's summary. Imports start through the REST API's own function.

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use switchboard_core::{ConnectionId, ImportScope};
use switchboard_store::{ImportRun, ImportStatus};

use super::connections::when;
use super::layout::{self, Icon, Nav, icon};
use super::{ConsoleError, Fields, Session};
use crate::AppState;
use crate::admin::connections::{choose_teams, context_and_platform, import};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/imports", get(list))
        .route("/console/imports/{connection}/progress", get(progress))
        .route("/console/imports/{connection}/start", post(start))
        .route(
            "/console/imports/{connection}/teams",
            get(teams_page).post(save_teams),
        )
}

fn connection_id(text: &str) -> Result<ConnectionId, ConsoleError> {
    text.parse()
        .map_err(|_| ConsoleError::not_found(format!("no connection with id {text}")))
}

/// The latest import of a connection: the orange clock and its progress while it runs (the
/// page asks for this fragment again until it stops), its summary once it has.
fn run_summary(connection: ConnectionId, run: Option<&ImportRun>) -> Markup {
    html! {
        div.import-run id={"import-" (connection)} data-status=(run.map_or("none", |r| r.status.as_str()))
            data-progress=[run.filter(|r| r.status == ImportStatus::Running).map(|_| format!("/console/imports/{connection}/progress"))]
            aria-live="polite" {
            @match run {
                None => p { (icon(Icon::NotCreated)) " Not imported yet." },
                Some(run) => {
                    @match run.status {
                        ImportStatus::Running => p {
                            (icon(Icon::Pending)) " Importing: " (run.pages) " pages, " (run.seen) " accounts read so far…"
                        },
                        ImportStatus::Succeeded => p {
                            (icon(Icon::Synced)) " Last import " (run.finished_at.map(when).unwrap_or_default()) ": "
                            (run.seen) " accounts read: " (run.added) " new people's, " (run.updated) " already known, "
                            (run.skipped) " skipped (bots, deactivated users and the hub's own guests and bots, which are no people). "
                            (run.deactivated) " accounts not listed any more were marked as left."
                        },
                        ImportStatus::Failed => p {
                            (icon(Icon::Failed)) " The last import failed: " (run.error.as_deref().unwrap_or("no reason given"))
                        },
                    }
                }
            }
        }
    }
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let connections = state.store.connections().await?;
    let mut rows = Vec::new();
    for connection in &connections {
        let latest = state.store.import_runs(connection.id, 1).await?;
        let scope = state
            .platforms
            .get(connection.platform)
            .map(|p| p.rules().import);
        let team = match scope {
            Some(ImportScope::SelectedTeams { team }) => Some(team),
            _ => None,
        };
        let teams = state.store.selected_teams(connection.id).await?;
        rows.push(html! {
            section.card aria-labelledby={"connection-" (connection.id)} {
                h2 #{"connection-" (connection.id)} { (connection.platform.display_name()) ": " (connection.display_name) }
                (run_summary(connection.id, latest.first()))
                @if let Some(team) = team {
                    p {
                        @if teams.is_empty() { "No " (team.one) " selected yet: choose the " (team.many) " whose members are imported." }
                        @else { "Imported " (team.many) ": " (teams.iter().map(|(_, name)| name.as_str()).collect::<Vec<_>>().join(", ")) }
                    }
                }
                @if session.can_change() {
                    div.buttons {
                        @if let Some(team) = team {
                            a.button href={"/console/imports/" (connection.id) "/teams"} { "Select " (team.many) }
                        }
                        @if scope == Some(ImportScope::AllUsers) || !teams.is_empty() {
                            form.inline method="post" action={"/console/imports/" (connection.id) "/start"} {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" { "Import users" }
                            }
                        }
                    }
                }
            }
        });
    }
    let scopes: Vec<String> = state
        .platforms
        .platforms()
        .filter_map(|platform| {
            let name = platform.display_name();
            Some(match state.platforms.get(platform)?.rules().import {
                ImportScope::AllUsers => format!("{name} imports all users"),
                ImportScope::SelectedTeams { team } => {
                    format!("{name} imports the members of the {} you select", team.many)
                }
            })
        })
        .collect();
    let body = html! {
        h1 { "Import teams and users" }
        p.lead {
            "Importing reads each platform's users and matches their accounts into people by e-mail address. "
            @if !scopes.is_empty() { (scopes.join("; ")) ". " }
            "Import again at any time: leavers are marked inactive, nothing is duplicated."
        }
        @if rows.is_empty() {
            div.empty {
                p { "No platform is connected yet. " a href="/console/connections" { "Connect your platforms" } " first, then import their users here." }
            }
        } @else {
            div.cards { @for row in rows { (row) } }
            p { "Next: " a href="/console/people" { "sync users" } "." }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Imports,
        "Import teams and users",
        body,
    ))
}

async fn progress(
    State(state): State<AppState>,
    Path(connection): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = connection_id(&connection)?;
    let latest = state.store.import_runs(id, 1).await?;
    Ok(run_summary(id, latest.first()).into_response())
}

async fn start(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(connection): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = connection_id(&connection)?;
    import(&state, &session.caller(), id).await?;
    let mut response = Redirect::to("/console/imports").into_response();
    layout::flash(
        &state,
        &mut response,
        "The import started; its progress shows below.",
    );
    Ok(response)
}

async fn teams_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path(connection): Path<String>,
) -> Result<Response, ConsoleError> {
    let (context, platform) = context_and_platform(&state, connection_id(&connection)?).await?;
    let rules = platform.rules();
    let ImportScope::SelectedTeams { team } = rules.import else {
        return Err(ConsoleError::not_found(format!(
            "{} imports all users; it has no teams to select",
            context.connection.platform.display_name()
        )));
    };
    let connection_word = rules.words.connection.one;
    let teams = platform.list_teams(&context).await.map_err(|error| {
        ConsoleError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "{} did not list its {}: {error}",
                context.connection.platform.display_name(),
                team.many
            ),
        )
    })?;
    let selected = state.store.selected_teams(context.connection.id).await?;
    let body = html! {
        h1 { "Select " (team.many) ": " (context.connection.display_name) }
        @if teams.is_empty() {
            div.empty { p { "This " (connection_word) " has no " (team.many) ". Create a " (team.one) " on the platform, then come back." } }
        } @else {
            form method="post" {
                input type="hidden" name="csrf" value=(session.csrf);
                fieldset {
                    legend { "The " (team.many) " whose members are imported" }
                    @for team in &teams {
                        label.check {
                            input type="checkbox" name="teams" value=(team.id) checked[selected.iter().any(|(id, _)| *id == team.id)];
                            " " (team.name)
                            @if let Some(count) = team.member_count { span.hint { " (" (count) " members)" } }
                        }
                    }
                }
                div.buttons {
                    a href="/console/imports" { "Cancel" }
                    button type="submit" disabled[!session.can_change()] { "Import " (team.many) " and users" }
                }
            }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Imports,
        &format!("Select {}", team.many),
        body,
    ))
}

/// Saves the selection and imports its members at once, as the seeds' button says.
async fn save_teams(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
    Path(connection): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = connection_id(&connection)?;
    let teams: Vec<String> = fields.all("teams").map(str::to_owned).collect();
    let caller = session.caller();
    let chosen = choose_teams(&state, &caller, id, &teams).await?;
    let team = chosen.team;
    let message = if chosen.teams.is_empty() {
        format!(
            "No {} is selected now; nobody is imported from this connection.",
            team.one
        )
    } else {
        import(&state, &caller, id).await?;
        format!(
            "{} {} selected; importing their members.",
            chosen.teams.len(),
            team.counted(chosen.teams.len())
        )
    };
    let mut response = Redirect::to("/console/imports").into_response();
    layout::flash(&state, &mut response, &message);
    Ok(response)
}

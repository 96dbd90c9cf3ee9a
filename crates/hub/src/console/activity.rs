//! Activity: what the relay has to do (inbox, outbox, retries) and the copies it gave up on,
//! each with a Retry button (the REST API's retry).

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use super::connections::when;
use super::layout::{self, Nav};
use super::{ConsoleError, Session};
use crate::AppState;
use crate::api::relay::retry_dead_letter;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/activity", get(show))
        .route("/console/activity/dead-letters/{id}/retry", post(retry))
}

/// Dead letters shown at once; the API pages further.
const SHOWN: i64 = 200;

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let counts = state.store.relay_counts().await?;
    let letters = state.store.dead_letters(SHOWN).await?;
    let body = html! {
        h1 { "Activity" }
        p.lead { "What the relay has to do now, and the copies it gave up on after its retries. Message content is never kept once delivered." }
        dl.facts {
            dt { "Events waiting to be read" } dd { (counts.inbox) }
            dt { "Copies waiting to be sent" } dd { (counts.outbox) }
            dt { "Of those, retrying or held for a sync" } dd { (counts.retrying) }
            dt { "Dead letters" } dd { (counts.dead_letters) }
        }
        h2 { "Dead letters" }
        @if letters.is_empty() {
            div.empty { p { "No dead letters: every copy was delivered or is still being tried. A copy the destination keeps refusing lands here, and can be retried once the cause is fixed." } }
        } @else {
            table {
                thead { tr { th scope="col" { "Given up" } th scope="col" { "To" } th scope="col" { "Action" } th scope="col" { "Attempts" } th scope="col" { "Last error" } th scope="col" { span.visually-hidden { "Retry" } } } }
                tbody {
                    @for letter in &letters {
                        tr {
                            td { (when(letter.dead_at)) }
                            td { (letter.item.platform.display_name()) }
                            td { (letter.item.action.as_str()) }
                            td { (letter.item.attempts) }
                            td { (letter.last_error) }
                            td {
                                @if session.can_change() {
                                    form.inline method="post" action={"/console/activity/dead-letters/" (letter.item.id) "/retry"} {
                                        input type="hidden" name="csrf" value=(session.csrf);
                                        button type="submit" aria-label={"Retry dead letter " (letter.item.id)} { "Retry" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Activity,
        "Activity",
        body,
    ))
}

async fn retry(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ConsoleError::not_found(format!("no dead letter with id {id}")))?;
    retry_dead_letter(&state, &session.caller(), id).await?;
    let mut response = Redirect::to("/console/activity").into_response();
    layout::flash(
        &state,
        &mut response,
        "The copy is back in its lane with fresh retries.",
    );
    Ok(response)
}

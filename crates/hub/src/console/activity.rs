//! Activity: messages relayed per day and platform and the people who wrote them, what the
//! relay has to do (inbox, outbox, retries), and the copies it gave up on, each with a Retry
//! button (the REST API's retry).

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use std::collections::BTreeSet;
use switchboard_core::{Platform, Timestamp};

use super::connections::when;
use super::layout::{self, Nav};
use super::{ConsoleError, Session};
use crate::AppState;
use crate::admin::relay::retry_dead_letter;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/activity", get(show))
        .route("/console/activity/dead-letters/{id}/retry", post(retry))
}

/// Dead letters shown at once; the API pages further.
const SHOWN: i64 = 200;
/// Days of relayed messages counted.
const DAYS_SHOWN: i64 = 14;
const DAY_MILLIS: i64 = 86_400_000;

/// `2026-11-22` for a day counted since 1970-01-01.
fn day_label(day: i64) -> String {
    when(Timestamp::from_unix_millis(day * DAY_MILLIS))
        .chars()
        .take(10)
        .collect()
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let counts = state.store.relay_counts().await?;
    let letters = state.store.dead_letters(SHOWN).await?;
    let now = state.clock.now().unix_millis();
    let days_ago = |days: i64| Timestamp::from_unix_millis(now - days * DAY_MILLIS);
    // Whole days: the oldest one shown from its start.
    let since = Timestamp::from_unix_millis((now / DAY_MILLIS - (DAYS_SHOWN - 1)) * DAY_MILLIS);
    let daily = state.store.copies_per_day(since).await?;
    let platforms: Vec<Platform> = daily
        .iter()
        .map(|d| d.platform)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let days: BTreeSet<i64> = daily.iter().map(|d| d.day).collect();
    let active_week = state.store.active_senders(days_ago(7)).await?;
    let active_day = state.store.active_senders(days_ago(1)).await?;
    let body = html! {
        h1 { "Activity" }
        p.lead { "What the relay has to do now, and the copies it gave up on after its retries. Message content is never kept once delivered." }
        dl.facts {
            dt { "Events waiting to be read" } dd { (counts.inbox) }
            dt { "Copies waiting to be sent" } dd { (counts.outbox) }
            dt { "Of those, retrying or held for a sync" } dd { (counts.retrying) }
            dt { "Dead letters" } dd { (counts.dead_letters) }
        }
        h2 { "Messages relayed" }
        dl.facts {
            dt { "People whose messages were relayed, last 24 hours" } dd { (active_day) }
            dt { "Last 7 days" } dd { (active_week) }
        }
        @if daily.is_empty() {
            div.empty { p { "No message was relayed in the last " (DAYS_SHOWN) " days. Once people are synced, their direct messages and group chats with people on other platforms are counted here, per day and per platform they were delivered to." } }
        } @else {
            table {
                caption { "Copies delivered per day (UTC) and platform, last " (DAYS_SHOWN) " days" }
                thead { tr { th scope="col" { "Day" } @for platform in &platforms { th scope="col" { "To " (platform.display_name()) } } } }
                tbody {
                    @for day in days.iter().rev() {
                        tr {
                            td { (day_label(*day)) }
                            @for platform in &platforms {
                                td { (daily.iter().find(|d| d.day == *day && d.platform == *platform).map_or(0, |d| d.copies)) }
                            }
                        }
                    }
                }
            }
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

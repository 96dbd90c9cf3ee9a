//! Connect Center: each platform this hub has a module for, its connection's state and health
//! as the token refresher last saw it (scopes, expiry, last error), and connecting or
//! reconnecting through the platform's consent pages (`crate::connect`, as `POST
//! /api/v1/connections` does).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use switchboard_core::Timestamp;

use super::layout::{self, Icon, Nav, icon};
use super::{ConsoleError, Fields, Session};
use crate::AppState;
use crate::api::connections::begin_connect;
use crate::connect::Started;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/connections", get(list))
        .route("/console/connections/connect", post(connect))
}

/// A time as the console shows it: UTC, to the minute.
pub fn when(at: Timestamp) -> String {
    let seconds = at.unix_millis().div_euclid(1000);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let connections = state.store.connections().await?;
    let mut cards: Vec<Markup> = Vec::new();
    for platform in state.platforms.platforms() {
        let Some(module) = state.platforms.get(platform) else {
            continue;
        };
        let connected: Vec<_> = connections
            .iter()
            .filter(|c| c.platform == platform)
            .collect();
        let mut details = Vec::new();
        for connection in &connected {
            let health = state.store.connection_health(connection.id).await?;
            let expires = state.store.credentials_expire_at(connection.id).await?;
            details.push((connection, health, expires));
        }
        let fields = module.connect_fields();
        cards.push(html! {
            section.card aria-labelledby={"platform-" (platform.as_str())} {
                h2 #{"platform-" (platform.as_str())} { (platform.display_name()) }
                @if details.is_empty() {
                    p { (icon(Icon::NotCreated)) " Not connected. Connect it to import its users." }
                }
                @for (connection, health, expires) in &details {
                    dl.facts {
                        dt { "Connection" }
                        dd { (connection.display_name) " (" (connection.tenant.as_str()) ")" }
                        dt { "Health" }
                        dd {
                            @match health {
                                Some(h) if h.ok => { (icon(Icon::Synced)) " Healthy" }
                                Some(_) => { (icon(Icon::Failed)) " Failing: reconnect" }
                                None => { (icon(Icon::Pending)) " Not checked yet" }
                            }
                        }
                        @if let Some(identity) = health.as_ref().and_then(|h| h.identity.as_deref()) {
                            dt { "Acting as" }
                            dd { (identity) }
                        }
                        dt { "Scopes granted" }
                        dd {
                            @match health.as_ref().map(|h| h.scopes.join(", ")) {
                                Some(scopes) if !scopes.is_empty() => { (scopes) }
                                _ => span.hint { "not reported yet" },
                            }
                        }
                        dt { "Token expires" }
                        dd {
                            @match expires {
                                Some(at) => { (when(*at)) " (renewed before then)" }
                                None => "never",
                            }
                        }
                        @if let Some(checked) = health.as_ref().map(|h| h.last_checked_at) {
                            dt { "Last checked" }
                            dd { (when(checked)) }
                        }
                        dt { "Last error" }
                        dd {
                            @match health.as_ref().and_then(|h| h.last_error.as_deref()) {
                                Some(error) => span.failed-text { (error) },
                                None => "none",
                            }
                        }
                    }
                }
                @if session.can_change() {
                    form method="post" action="/console/connections/connect" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="platform" value=(platform.as_str());
                        @for field in fields {
                            label for={"field-" (platform.as_str()) "-" (field.name)} { (field.label) }
                            input id={"field-" (platform.as_str()) "-" (field.name)}
                                type=(if field.secret { "password" } else { "text" })
                                name={"input." (field.name)} autocomplete="off";
                            p.hint { (field.help) }
                        }
                        button type="submit" {
                            @if details.is_empty() { "Connect " (platform.display_name()) } @else { "Reconnect " (platform.display_name()) }
                        }
                    }
                }
            }
        });
    }
    let body = html! {
        h1 { "Connect Center" }
        p.lead { "Connect each platform once, as an admin of it. The hub renews its tokens before they expire and checks every connection's health; a failing one is reconnected here." }
        @if cards.is_empty() {
            div.empty {
                p { "This hub has no platform module configured. Add a " code { "[platforms.slack]" } " or " code { "[platforms.teams]" } " table to its configuration file (see docs/platforms/) and restart it." }
            }
        } @else {
            div.cards { @for card in cards { (card) } }
            p { "Next: " a href="/console/imports" { "import teams and users" } "." }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Connections,
        "Connect Center",
        body,
    ))
}

/// Starts connecting: the browser goes on to the platform's consent pages, which end at the
/// hub's callback.
async fn connect(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
) -> Result<Response, ConsoleError> {
    let platform = fields.get("platform").unwrap_or_default().to_owned();
    let inputs: BTreeMap<String, String> = fields
        .0
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .filter_map(|(name, value)| {
            name.strip_prefix("input.")
                .map(|name| (name.to_owned(), value.clone()))
        })
        .collect();
    match begin_connect(&state, &session.caller(), &platform, inputs).await? {
        Started::Redirect { url } => Ok(Redirect::to(&url).into_response()),
        Started::Connected { connection } => {
            let mut response = Redirect::to("/console/connections").into_response();
            layout::flash(
                &state,
                &mut response,
                &format!("Connected {}.", connection.display_name),
            );
            Ok(response)
        }
    }
}

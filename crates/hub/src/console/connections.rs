//! Connect Center: each platform this hub has a module for, its connection's state and health
//! as the token refresher last saw it (scopes, expiry, last error), connecting or
//! reconnecting through the platform's consent pages (`crate::connect`, as `POST
//! /api/v1/connections` does), and disconnecting after a confirmation that says what will
//! happen (`crate::disconnect`, as `DELETE /api/v1/connections/{id}` does).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use switchboard_core::{Noun, Platform, Timestamp};

use super::layout::{self, Icon, Nav, icon};
use super::{ConsoleError, Fields, Session};
use crate::AppState;
use crate::admin::connections::{self, begin_connect};
use crate::connect::Started;
use crate::disconnect::{self, DisconnectError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/connections", get(list))
        .route("/console/connections/connect", post(connect))
        .route(
            "/console/connections/{id}/disconnect",
            get(confirm_disconnect).post(disconnect),
        )
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
    let disconnected = state.store.disconnected_connections().await?;
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
            let webhooks = state.webhook_health.tally(connection.id);
            details.push((connection, health, expires, webhooks));
        }
        let fields = module.connect_fields();
        cards.push(html! {
            section.card aria-labelledby={"platform-" (platform.as_str())} {
                h2 #{"platform-" (platform.as_str())} { (platform.display_name()) }
                @if details.is_empty() {
                    p { (icon(Icon::NotCreated)) " Not connected. Connect it to import its users." }
                }
                @for (connection, at) in disconnected.iter().filter(|(c, _)| c.platform == platform) {
                    p.hint {
                        (connection.display_name) " (" (connection.tenant.as_str()) ") was disconnected " (when(*at))
                        ". Its people, accounts and message history are kept: connecting the same "
                        (module.rules().words.connection.one)
                        " again restores them."
                    }
                }
                @for (connection, health, expires, webhooks) in &details {
                    dl.facts {
                        dt { "Connection" }
                        dd { (connection.display_name) " (" (connection.tenant.as_str()) ")" }
                        dt { "Health" }
                        dd {
                            @match health {
                                _ if webhooks.failing() => { (icon(Icon::Failed)) " Failing: its events are refused" }
                                Some(h) if h.ok => { (icon(Icon::Synced)) " Healthy" }
                                Some(_) => { (icon(Icon::Failed)) " Failing: reconnect" }
                                None => { (icon(Icon::Pending)) " Not checked yet" }
                            }
                        }
                        dt { "Webhooks" }
                        dd {
                            (webhooks.accepted) " accepted, " (webhooks.refused) " refused since the hub started"
                            @if webhooks.failing() {
                                br;
                                span.failed-text {
                                    (webhooks.refused_since_accepted) " refused since the last accepted one"
                                    @if let Some(at) = webhooks.last_refused_at { ", the latest " (when(at)) }
                                    @if let Some(reason) = &webhooks.last_refusal { ": " (reason) }
                                }
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
                    @if session.can_change() {
                        p {
                            a.button.danger href={"/console/connections/" (connection.id) "/disconnect"}
                                aria-label={"Disconnect " (connection.display_name) " (" (platform.display_name()) ")"} {
                                "Disconnect"
                            }
                        }
                    }
                }
                @if session.can_change() {
                    @if details.is_empty() {
                        (connect_form(&session, platform, &fields, "Connect"))
                    } @else {
                        // A connection that works needs no new credentials: the form waits behind
                        // a disclosure, open at once only when the connection is failing.
                        details.reconnect open[details.iter().any(|(_, health, _, webhooks)| webhooks.failing() || health.as_ref().is_some_and(|h| !h.ok))] {
                            summary { "Reconnect " (platform.display_name()) }
                            (connect_form(&session, platform, &fields, "Reconnect"))
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
                p { "This hub has no platform module configured. Add a " code { "[platforms.<platform>]" } " table for each platform to connect to its configuration file (docs/platforms/ has one page per platform, with its table) and restart it." }
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

/// The fields a platform's module asks for to connect (or reconnect) it.
fn connect_form(
    session: &Session,
    platform: Platform,
    fields: &[switchboard_platform::ConnectField],
    verb: &str,
) -> Markup {
    html! {
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
            button type="submit" { (verb) " " (platform.display_name()) }
        }
    }
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
    let platform = crate::admin::platform_named(&platform)?;
    match begin_connect(&state, &session.caller(), platform, inputs).await? {
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

fn connection_id(text: &str) -> Result<switchboard_core::ConnectionId, ConsoleError> {
    text.parse()
        .map_err(|_| ConsoleError::not_found(format!("no connection with id {text}")))
}

fn plan_error(error: DisconnectError) -> ConsoleError {
    match error {
        DisconnectError::Unknown(_) => ConsoleError::not_found(error.to_string()),
        DisconnectError::AlreadyDisconnected(_) => {
            ConsoleError::new(StatusCode::CONFLICT, error.to_string())
        }
        DisconnectError::Store(error) => error.into(),
    }
}

/// What a platform's module calls one connection and what the hub creates there; general words
/// where no module of the platform is configured.
struct PlatformWords {
    connection: Noun,
    created: Noun,
}

impl PlatformWords {
    fn of(state: &AppState, platform: Platform) -> Self {
        let rules = state.platforms.get(platform).map(|module| module.rules());
        PlatformWords {
            connection: rules.map_or(
                Noun {
                    one: "connection",
                    many: "connections",
                },
                |rules| rules.words.connection,
            ),
            created: rules
                .and_then(|rules| rules.created_by_hub())
                .unwrap_or(Noun {
                    one: "representation",
                    many: "representations",
                }),
        }
    }
}

/// What disconnecting will do, with the counts, and the choice to remove the hub's guests or
/// bots first.
async fn confirm_disconnect(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let plan = disconnect::plan(&state, connection_id(&id)?)
        .await
        .map_err(plan_error)?;
    let connection = &plan.connection;
    let platform = connection.platform.display_name();
    let words = PlatformWords::of(&state, connection.platform);
    let created = words.created.many;
    let title = format!("Disconnect {platform}");
    let body = html! {
        h1 { (title) }
        p.lead { "Disconnecting " (connection.display_name) " (" (connection.tenant.as_str()) ") will:" }
        ul #disconnect-effects {
            li { "delete its credentials and every secret the hub keeps for it (nothing of it stays at rest), so the hub stops importing, syncing and relaying through it, and refuses its webhooks;" }
            li { "dead-letter the " strong { (plan.queued) } " copies waiting to be sent to " (platform) " (reason \"connection disconnected\"; they show on Activity);" }
            li { "turn the representations that act on " (platform) " (" strong { (plan.represented) } " now) to failed, since their credentials are deleted too, unless removed below;" }
            li { "keep its " strong { (plan.accounts) } " imported accounts, the people and the message history: connecting the same " (words.connection.one) " again restores them." }
        }
        form method="post" action={"/console/connections/" (connection.id) "/disconnect"} {
            input type="hidden" name="csrf" value=(session.csrf);
            fieldset {
                legend { "What the hub created on " (platform) }
                @if plan.created.is_empty() {
                    p { "The hub created no " (created) " on " (platform) "." }
                } @else {
                    label.check {
                        input type="checkbox" name="remove_representations" value="on";
                        "Also remove the " (plan.created.len()) " " (created) " the hub created on " (platform)
                        " (before the credentials are deleted; they cannot be removed afterwards)"
                    }
                    p.hint { "Left unchecked, they stay on " (platform) " for its admin to remove." }
                }
            }
            div.buttons {
                a href="/console/connections" { "Cancel" }
                button.danger type="submit" disabled[!session.can_change()] { (title) }
            }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Connections,
        &title,
        body,
    ))
}

/// Disconnects, then says what was done, listing every guest or bot that could not be
/// removed.
async fn disconnect(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = connection_id(&id)?;
    let plan = disconnect::plan(&state, id).await.map_err(plan_error)?;
    let remove = fields.get("remove_representations") == Some("on");
    let outcome = connections::disconnect(&state, &session.caller(), id, remove).await?;
    let platform = plan.connection.platform.display_name();
    let created = PlatformWords::of(&state, plan.connection.platform).created;
    let mut not_removed = Vec::new();
    for (person, error) in &outcome.not_removed {
        let name = state
            .store
            .person(*person)
            .await?
            .map_or_else(|| person.to_string(), |p| p.display_name);
        not_removed.push((*person, name, error.clone()));
    }
    let title = format!("{platform} disconnected");
    let body = html! {
        h1 { (title) }
        ul #disconnect-result {
            @if remove {
                li { (outcome.removed.len()) " " (created.counted(outcome.removed.len())) " removed from " (platform) "." }
            }
            li { (outcome.dead_lettered) " copies dead-lettered." }
            li { (outcome.failed) " representations failed." }
        }
        @if !not_removed.is_empty() {
            h2 { "Not removed" }
            p { "These are left on " (platform) "; remove them there:" }
            ul {
                @for (id, name, error) in &not_removed {
                    li { a href={"/console/people/" (id)} { (name) } ": " span.failed-text { (error) } }
                }
            }
        }
        @if let Some(error) = &outcome.unsubscribe_error {
            p { (icon(Icon::Failed)) " Its event subscriptions could not be removed (" (error) "); they expire on their own, and what they send is refused meanwhile." }
        }
        p { a href="/console/connections" { "Back to the Connect Center" } }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Connections,
        &title,
        body,
    ))
}

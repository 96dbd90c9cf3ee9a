//! Sync users: the people, their primary platform, one status icon per secondary platform,
//! filters, search and keyset pages (the store's people list, as `GET /api/v1/people` reads
//! it); actions one at a time or on a selection, each through the REST API's own functions;
//! and a stream of status changes (server-sent events) that keeps the icons current.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use maud::{Markup, html};
use serde::Deserialize;
use switchboard_core::{
    ChosenBy, PersonId, Platform, Representation, RepresentationKind, SyncStatus, SyncStatusCode,
};
use switchboard_store::{PeopleQuery, PersonSummary, PrimaryFilter};

use super::layout::{self, Icon, Nav, icon, info_icon};
use super::{ConsoleError, Fields, Session};
use crate::AppState;
use crate::admin::people::{choose_primary, decode_cursor, encode_cursor, remove_person, search};
use crate::admin::sync::{Acted, Action, act};
use crate::sync::SyncOutcome;
use crate::sync::{Plan, plan};
use switchboard_platform::{PlatformRegistry, Removal};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/people", get(list))
        .route("/console/people/events", get(events))
        .route("/console/people/bulk", post(bulk))
        .route("/console/people/bulk/{run}", get(bulk_run))
        .route(
            "/console/people/{id}/sync/{platform}",
            get(sync_confirm).post(sync_one),
        )
        .route("/console/people/{id}/primary", post(set_primary))
        .route("/console/people/{id}/confirm/{action}", get(confirm_page))
        .route("/console/people/{id}/act/{action}", post(person_action))
}

/// People per page.
const PAGE: u32 = 50;
/// The most people one bulk action takes (the REST API's limit too).
const MAX_BULK: usize = 1_000;
/// How many bulk actions the console remembers the outcomes of, the latest ones.
const KEPT_RUNS: usize = 20;
/// How often a bulk action's page reloads itself while the action runs, in seconds.
const RUN_REFRESH_SECONDS: u32 = 2;
/// How often the status stream looks for changes.
const STATUS_POLL: Duration = Duration::from_secs(1);
/// The most status cells one stream follows (a page has at most `PAGE` × platforms).
const MAX_CELLS: usize = 500;

#[derive(Deserialize, Default)]
struct Filters {
    primary: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl Filters {
    fn query(&self) -> Result<PeopleQuery, ConsoleError> {
        let bad = |e: String| ConsoleError::new(StatusCode::BAD_REQUEST, e);
        Ok(PeopleQuery {
            primary: match given(self.primary.as_ref()) {
                None => None,
                Some("unchosen") => Some(PrimaryFilter::Unchosen),
                Some(name) => Some(PrimaryFilter::Is(
                    name.parse()
                        .map_err(|e: switchboard_core::UnknownPlatform| bad(e.to_string()))?,
                )),
            },
            status: given(self.status.as_ref())
                .map(SyncStatusCode::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            kind: given(self.kind.as_ref())
                .map(RepresentationKind::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            search: given(self.q.as_ref())
                .map(|q| search(q.to_owned()))
                .transpose()
                .map_err(ConsoleError::from)?,
            team: None,
            after: given(self.cursor.as_ref())
                .map(decode_cursor)
                .transpose()
                .map_err(ConsoleError::from)?,
            limit: PAGE,
        })
    }

    fn is_filtered(&self) -> bool {
        [&self.primary, &self.status, &self.kind, &self.q]
            .into_iter()
            .any(|f| given(f.as_ref()).is_some())
    }

    /// This page's address with another cursor (or none: the first page).
    fn href(&self, cursor: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("primary", &self.primary),
            ("status", &self.status),
            ("type", &self.kind),
            ("q", &self.q),
        ] {
            if let Some(value) = given(value.as_ref()) {
                query.append_pair(name, value);
            }
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        format!("/console/people?{}", query.finish())
    }
}

pub fn status_label(code: SyncStatusCode) -> &'static str {
    match code {
        SyncStatusCode::NotCreated => "not created",
        SyncStatusCode::Pending => "pending",
        SyncStatusCode::Synced => "synced",
        SyncStatusCode::Failed => "failed",
    }
}

/// The platforms a person is represented on: every connected platform but their primary.
fn secondaries(connected: &[Platform], summary: &PersonSummary) -> Vec<Platform> {
    match summary.person.primary {
        Some(primary) => connected
            .iter()
            .copied()
            .filter(|p| *p != primary.platform)
            .collect(),
        None => Vec::new(),
    }
}

async fn connected_platforms(state: &AppState) -> Result<Vec<Platform>, ConsoleError> {
    let mut platforms: Vec<Platform> = state
        .store
        .connections()
        .await?
        .into_iter()
        .map(|c| c.platform)
        .collect();
    platforms.sort_by_key(|p| p.as_str());
    platforms.dedup();
    Ok(platforms)
}

fn cell_id(person: PersonId, platform: Platform) -> String {
    format!("rep-{person}-{}", platform.as_str())
}

fn kinds_id(person: PersonId) -> String {
    format!("kinds-{person}")
}

/// A person's sync types: how they are represented on each platform.
fn kinds_cell<'r>(
    platforms: &PlatformRegistry,
    person: PersonId,
    representations: impl Iterator<Item = &'r Representation>,
) -> Markup {
    html! {
        td.kinds id=(kinds_id(person)) {
            @for representation in representations {
                div { (representation.platform.display_name()) ": " (platforms.called(representation.platform, representation.kind).one) }
            }
        }
    }
}

/// Whether `platform` cannot represent a person on `on` at all: they have no account there,
/// and its module represents nobody without one (Zoom, by the seeds' rule), or only by a
/// fallback the admin has not allowed (`fallback`).
pub(super) fn cannot_represent(
    platforms: &PlatformRegistry,
    platform: Platform,
    on: &[Platform],
    fallback: bool,
) -> bool {
    !on.contains(&platform)
        && platforms.get(platform).is_some_and(|module| {
            module.rules().representation_allowing(false, fallback)
                == RepresentationKind::Unsupported
        })
}

/// A secondary platform that cannot represent the person: nothing to sync, so no link and no
/// live status, and the reason.
fn not_represented_cell(platform: Platform) -> Markup {
    let name = platform.display_name();
    let description = format!(
        "{name}: not represented: {name} can represent only people with a {name} account, and this person has none"
    );
    html! {
        span.rep {
            span.status title=(description) role="img" aria-label=(description) {
                (icon(Icon::NotRepresented)) span.platform aria-hidden="true" { (name) }
            }
        }
    }
}

/// What a status cell says under its icon, after the admin's sync.
enum Said<'a> {
    /// Why the hub refused the sync.
    Refused(&'a str),
    /// When a sync queued for the platform's pace comes.
    Queued(&'a str),
}

/// One secondary platform's status: an icon, the platform's name, and where something can be
/// done (not created, failed) a link to the sync's confirmation.
fn status_cell(
    platforms: &PlatformRegistry,
    session: &Session,
    person: PersonId,
    platform: Platform,
    representation: Option<&Representation>,
    busy: bool,
    said: Option<Said<'_>>,
) -> Markup {
    let name = platform.display_name();
    let status = representation.map_or(SyncStatus::NotCreated, |r| r.status.clone());
    // The type shows in the cell too, since a sync that starts here decides it.
    let described = match representation {
        Some(r) if r.kind != RepresentationKind::Unsupported => {
            format!("{name} ({})", platforms.called(platform, r.kind).one)
        }
        _ => name.to_owned(),
    };
    let (shown, description) = if busy {
        (
            Icon::Pending,
            format!("{described}: syncing now, or queued for the platform's pace"),
        )
    } else {
        match &status {
            SyncStatus::NotCreated => (Icon::NotCreated, format!("{described}: not created")),
            SyncStatus::Pending => (
                Icon::Pending,
                format!("{described}: pending (waiting for the person or a workspace admin)"),
            ),
            SyncStatus::Synced => (Icon::Synced, format!("{described}: synced")),
            SyncStatus::Failed { reason } => {
                (Icon::Failed, format!("{described}: failed: {reason}"))
            }
        }
    };
    let actionable = !busy
        && session.can_change()
        && matches!(status, SyncStatus::NotCreated | SyncStatus::Failed { .. });
    let code = if busy {
        "syncing"
    } else {
        status.code().as_str()
    };
    html! {
        span.rep id=(cell_id(person, platform)) data-cell={(person) "." (platform.as_str())} data-status=(code) {
            @if actionable {
                a.icon-button href={"/console/people/" (person) "/sync/" (platform.as_str())} data-sync title={(description) ". Sync now"} aria-label={(description) ". Sync now"} {
                    (icon(shown)) span.platform { (name) }
                }
            } @else {
                span.status title=(description) role="img" aria-label=(description) {
                    (icon(shown)) span.platform aria-hidden="true" { (name) }
                }
            }
            @match said {
                Some(Said::Refused(refused)) => span.refused role="alert" { (refused) },
                Some(Said::Queued(queued)) => span.queued role="status" { (queued) },
                None => {},
            }
        }
    }
}

/// Legend of the sync icons, behind an info icon on the column's header: the seeds' legend.
fn status_legend() -> Markup {
    html! {
        details.legend {
            summary title="Legend of the sync icons" aria-label="Legend of the sync icons" { (info_icon()) }
            ul aria-label="Sync icons" {
                li { (icon(Icon::NotCreated)) " Not created: press it to sync the person there." }
                li { (icon(Icon::Pending)) " Pending: waiting for the person or a workspace admin, or being synced (queued for the platform's pace)." }
                li { (icon(Icon::Synced)) " Synced: messages reach the person there." }
                li { (icon(Icon::Failed)) " Failed: point at it for why; press it to try again." }
                li { (icon(Icon::NotRepresented)) " Not represented: the platform can represent only people with an account there, and the person has none." }
            }
        }
    }
}

/// What a sync of one person will do, as the admin confirms it: "Create a bot for Ann Lee in
/// Slack". The words come from the representation the platform's rules call for and the
/// platform's name.
fn sync_sentence(platforms: &PlatformRegistry, plan: &Plan, platform: Platform) -> String {
    let (name, on) = (plan.person.display_name.as_str(), platform.display_name());
    if plan.synced {
        return format!("{name} is synced on {on} already: there is nothing to do");
    }
    match plan.kind {
        _ if plan.prompts => format!("Prompt {name} to link their {on} account"),
        kind if platforms
            .get(platform)
            .is_some_and(|module| module.rules().is_fallback(kind)) =>
        {
            format!(
                "Reach {name} in {on} through the hub's {}",
                platforms.called(platform, kind).one
            )
        }
        kind if !kind.created_by_hub() => format!(
            "Sync {name}'s {} in {on}",
            platforms.called(platform, kind).one
        ),
        kind => format!(
            "Create a {} for {name} in {on}",
            platforms.called(platform, kind).one
        ),
    }
}

/// What a sync of several people on `platform` will do, as one sentence: "Create 3 bots in
/// Slack, prompt 1 person to link their Slack account".
fn bulk_sentence(platforms: &PlatformRegistry, plans: &[Plan], platform: Platform) -> String {
    let on = platform.display_name();
    let mut parts = Vec::new();
    for kind in RepresentationKind::ALL {
        let n = plans
            .iter()
            .filter(|p| !p.synced && !p.prompts && p.kind == kind)
            .count();
        if n > 0 {
            let called = platforms.called(platform, kind).counted(n);
            let verb = if kind.created_by_hub() {
                "create"
            } else {
                "sync"
            };
            parts.push(format!("{verb} {n} {called} in {on}"));
        }
    }
    let prompted = plans.iter().filter(|p| !p.synced && p.prompts).count();
    if prompted > 0 {
        parts.push(format!(
            "prompt {} to link their {on} account",
            count(prompted)
        ));
    }
    let synced = plans.iter().filter(|p| p.synced).count();
    if synced > 0 {
        parts.push(format!(
            "leave {} synced already as they are",
            count(synced)
        ));
    }
    let sentence = parts.join(", ");
    let mut letters = sentence.chars();
    match letters.next() {
        Some(first) => first.to_uppercase().chain(letters).collect(),
        None => "Nothing to do".to_owned(),
    }
}

/// What the hub created for a person that its platform cannot delete (a module declaring
/// [`Removal::Forgotten`]), named for the confirmation of a reset or removal, e.g. "their
/// guest identity on Webex".
pub fn kept_on_removal<'r>(
    platforms: &PlatformRegistry,
    representations: impl Iterator<Item = &'r Representation>,
) -> Vec<String> {
    representations
        .filter(|r| r.kind.created_by_hub() && r.external_account.is_some())
        .filter(|r| {
            platforms
                .get(r.platform)
                .is_some_and(|module| module.removal() == Removal::Forgotten)
        })
        .map(|r| {
            format!(
                "their {} on {}",
                platforms.called(r.platform, r.kind).one,
                r.platform.display_name()
            )
        })
        .collect()
}

/// The sentence that warns what a reset or removal leaves behind, from [`kept_on_removal`].
fn left_behind(kept: &[String]) -> String {
    let mut named = kept.join(" and ");
    let Some(first) = named.get_mut(..1) else {
        return String::new();
    };
    first.make_ascii_uppercase();
    let (them, they_stay) = if kept.len() == 1 {
        ("it", "it stays")
    } else {
        ("them", "they stay")
    };
    format!(
        " {named} cannot be deleted there: the hub stops using {them}, but {they_stay} on the platform, unused, and tokens already issued work until they expire."
    )
}

fn confirm_text(action: &str, name: &str, kept: &[String]) -> Option<(&'static str, String)> {
    Some(match action {
        "reset" => (
            "Reset user",
            format!(
                "Reset {name}? The guest accounts and bots the hub created for them are removed and their primary platform is chosen again (automatically if they are on one platform only). Their own accounts stay.{}",
                left_behind(kept)
            ),
        ),
        "reprompt" => (
            "Reprompt user",
            format!(
                "Send {name} the prompt again? Each pending sync that waits for them gets a new link on their primary platform."
            ),
        ),
        "remove" => (
            "Remove user",
            format!(
                "Remove {name} from the hub? Every sync is reset first; their accounts stay on the platforms, unlinked, until the next import matches them again.{}",
                left_behind(kept)
            ),
        ),
        _ => return None,
    })
}

fn row(
    platforms: &PlatformRegistry,
    session: &Session,
    connected: &[Platform],
    fallback: bool,
    summary: &PersonSummary,
    busy: &dyn Fn(PersonId, Platform) -> bool,
    back: &str,
) -> Markup {
    let person = &summary.person;
    let id = person.id;
    let name = person.display_name.as_str();
    let secondaries = secondaries(connected, summary);
    html! {
        tr {
            td.select {
                input type="checkbox" name="ids" value=(id) form="bulk" aria-label={"Select " (name)};
            }
            th scope="row" { a href={"/console/people/" (id)} { (name) } }
            td.email { (person.email.as_str()) }
            td.primary {
                @if summary.platforms.len() > 1 {
                    form.inline method="post" action={"/console/people/" (id) "/primary"} data-primary {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="return" value=(back);
                        select name="platform" aria-label={"Primary platform of " (name)} disabled[!session.can_change()] {
                            @if person.primary.is_none() {
                                option value="" selected { "Choose…" }
                            }
                            @for platform in &summary.platforms {
                                option value=(platform.as_str()) selected[person.primary.is_some_and(|p| p.platform == *platform)] { (platform.display_name()) }
                            }
                        }
                        @if session.can_change() {
                            button.small type="submit" aria-label={"Save the primary platform of " (name)} { "Save" }
                        }
                        @if person.primary.is_some_and(|p| p.chosen_by == ChosenBy::Automatic) {
                            span.hint { " (automatic)" }
                        }
                    }
                } @else if let Some(primary) = person.primary {
                    (primary.platform.display_name())
                } @else if let Some(only) = summary.platforms.first() {
                    (only.display_name())
                } @else {
                    span.hint { "no active account" }
                }
            }
            td.statuses {
                @if person.primary.is_none() {
                    span.hint { "Choose a primary platform first" }
                } @else if secondaries.is_empty() {
                    span.hint { "Connect another platform to sync" }
                }
                @for platform in &secondaries {
                    @if cannot_represent(platforms, *platform, &summary.platforms, fallback) {
                        (not_represented_cell(*platform))
                    } @else {
                        (status_cell(platforms, session, id, *platform, summary.representations.iter().find(|r| r.platform == *platform), busy(id, *platform), None))
                    }
                }
            }
            (kinds_cell(platforms, id, summary.representations.iter()))
            td.menu-cell {
                @if session.can_change() {
                    details.menu {
                        summary aria-label={"More actions for " (name)} { "· · ·" }
                        ul { (action_links(id, name, &kept_on_removal(platforms, summary.representations.iter()), back)) }
                    }
                }
            }
        }
    }
}

/// The actions on one person (reset, reprompt, remove), each confirmed first: in the page's
/// [`confirm_dialog`] with the script, on a page of its own without. Listed in a row's menu and
/// on the person's page.
pub fn action_links(id: PersonId, name: &str, kept: &[String], back: &str) -> Markup {
    html! {
        @for action in ["reset", "reprompt", "remove"] {
            @if let Some((label, question)) = confirm_text(action, name, kept) {
                li {
                    a href={"/console/people/" (id) "/confirm/" (action) "?return=" (encode(back))}
                        data-confirm=(question)
                        data-action={"/console/people/" (id) "/act/" (action)}
                        data-label=(label) { (label) }
                }
            }
        }
    }
}

/// The dialog that confirms an action of [`action_links`].
pub fn confirm_dialog(session: &Session, back: &str) -> Markup {
    html! {
        dialog #confirm aria-labelledby="confirm-title" {
            form method="post" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="return" value=(back);
                h2 #confirm-title { "Confirm" }
                p #confirm-text {}
                div.buttons {
                    button type="button" value="cancel" data-close { "Cancel" }
                    button.danger type="submit" #confirm-button { "Confirm" }
                }
            }
        }
    }
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    uri: Uri,
    filters: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let Query(filters) =
        filters.map_err(|r| ConsoleError::new(StatusCode::BAD_REQUEST, r.body_text()))?;
    let query = filters.query()?;
    let page = state.store.list_people(&query).await?;
    let matching = state.store.count_people(&query).await?;
    let connected = connected_platforms(&state).await?;
    let fallback = crate::settings::fallback_representations(&state.store).await?;
    let back = uri
        .path_and_query()
        .map_or("/console/people", |p| p.as_str())
        .to_owned();
    let busy = |person, platform| state.syncing.is_busy(person, platform);
    let option = |value: &str, label: &str, current: &Option<String>| {
        html! { option value=(value) selected[given(current.as_ref()) == Some(value)] { (label) } }
    };
    let body = html! {
        h1 { "Sync users" }
        p.lead { "Each person chats from their primary platform and is represented on the others. "
            "Press a circular arrow to sync someone there; the icons change as syncs complete." }
        form.filters method="get" action="/console/people" role="search" {
            div {
                label for="f-primary" { "Primary platform" }
                select #f-primary name="primary" {
                    (option("", "Any", &filters.primary))
                    @for platform in state.platforms.platforms() {
                        (option(platform.as_str(), platform.display_name(), &filters.primary))
                    }
                    (option("unchosen", "Not chosen yet", &filters.primary))
                }
            }
            div {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    (option("", "Any", &filters.status))
                    @for code in SyncStatusCode::ALL {
                        (option(code.as_str(), status_label(code), &filters.status))
                    }
                }
            }
            div {
                label for="f-type" { "Sync type" }
                select #f-type name="type" {
                    (option("", "Any", &filters.kind))
                    @for kind in [RepresentationKind::GuestAccount, RepresentationKind::Bot, RepresentationKind::ExistingAccount] {
                        (option(kind.as_str(), kind.general_name().one, &filters.kind))
                    }
                }
            }
            div {
                label for="f-q" { "Search" }
                input #f-q type="search" name="q" value=[given(filters.q.as_ref())] placeholder="Name or e-mail";
            }
            div.buttons {
                button type="submit" { "Apply" }
                @if filters.is_filtered() {
                    a href="/console/people" { "Clear filters" }
                }
            }
        }
        p #matching {
            @match (filters.is_filtered(), matching) {
                (true, 1) => "1 person matches",
                (true, n) => { (n) " people match" },
                (false, 1) => "1 person in all",
                (false, n) => { (n) " people in all" },
            }
            @if page.next.is_some() || filters.cursor.is_some() { "; " (PAGE) " are listed per page" }
            "."
        }
        @if session.can_change() && !page.people.is_empty() {
            form #bulk.bulk method="post" action="/console/people/bulk" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="return" value=(back);
                span { "With the selected people:" }
                label for="bulk-platform" { "Sync on" }
                select #bulk-platform name="platform" {
                    @for platform in &connected {
                        option value=(platform.as_str()) { (platform.display_name()) }
                    }
                }
                button type="submit" name="action" value="sync" { "Sync selected" }
                button type="submit" name="action" value="reset" { "Reset selected" }
                button type="submit" name="action" value="reprompt" { "Reprompt selected" }
            }
        }
        @if page.people.is_empty() {
            div.empty {
                @if filters.is_filtered() || filters.cursor.is_some() {
                    p { "No one matches these filters." }
                    p { a href="/console/people" { "Clear the filters" } " to see everyone." }
                } @else {
                    p { "No people yet." }
                    p { "People appear here once the hub has imported the users of its platforms: "
                        a href="/console/connections" { "connect your platforms" } ", then "
                        a href="/console/imports" { "import their users" } "." }
                }
            }
        } @else {
            table.people {
                caption.visually-hidden { "People and their sync status on each secondary platform" }
                thead {
                    tr {
                        th scope="col" {
                            @if session.can_change() {
                                input #select-all type="checkbox" aria-label="Select everyone on this page" hidden;
                            }
                        }
                        th scope="col" { "Name" }
                        th.email scope="col" { "E-mail" }
                        th scope="col" { "Primary platform" }
                        th scope="col" { "Sync status " (status_legend()) }
                        th.kinds scope="col" { "Sync type" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    }
                }
                tbody #people data-events="/console/people/events" {
                    @for summary in &page.people {
                        (row(&state.platforms, &session, &connected, fallback, summary, &busy, &back))
                    }
                }
            }
            nav.pages aria-label="Pages" {
                @if filters.cursor.is_some() {
                    a href=(filters.href(None)) { "First page" }
                }
                @if let Some(next) = &page.next {
                    a rel="next" href=(filters.href(Some(&encode_cursor(next)))) { "Next page" }
                }
            }
        }
        (confirm_dialog(&session, &back))
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::People,
        "Sync users",
        body,
    ))
}

/// Where to go back to after an action: a console page, never elsewhere.
fn back_to(fields: Option<&Fields>) -> String {
    fields
        .and_then(|f| f.get("return"))
        .filter(|r| r.starts_with("/console/") && !r.starts_with("//") && !r.contains('\\'))
        .unwrap_or("/console/people")
        .to_owned()
}

fn done(state: &AppState, fields: Option<&Fields>, message: &str) -> Response {
    let mut response = Redirect::to(&back_to(fields)).into_response();
    layout::flash(state, &mut response, message);
    response
}

fn person_id(text: &str) -> Result<PersonId, ConsoleError> {
    text.parse()
        .map_err(|_| ConsoleError::not_found(format!("no person with id {text}")))
}

fn platform_named(text: &str) -> Result<Platform, ConsoleError> {
    text.parse()
        .map_err(|e: switchboard_core::UnknownPlatform| {
            ConsoleError::new(StatusCode::BAD_REQUEST, e.to_string())
        })
}

async fn display_name(state: &AppState, id: PersonId) -> Result<String, ConsoleError> {
    Ok(state
        .store
        .person(id)
        .await?
        .ok_or_else(|| ConsoleError::not_found(format!("no person with id {id}")))?
        .display_name)
}

/// A sync's confirmation, as a page of its own: the sentence that says what the sync will do,
/// and the form that does it (the page's script asks the same in a dialog, from this page).
/// A sync the hub would refuse says why, with nothing to press.
async fn sync_confirm(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path((id, platform)): Path<(String, String)>,
    Query(query): Query<ReturnQuery>,
) -> Result<Response, ConsoleError> {
    let (id, platform) = (person_id(&id)?, platform_named(&platform)?);
    let back = back_to(
        query
            .back
            .map(|b| Fields(vec![("return".to_owned(), b)]))
            .as_ref(),
    );
    let title = format!("Sync on {}", platform.display_name());
    let body = match plan(&state, id, platform).await {
        Ok(plan) => html! {
            h1 { (title) }
            p.lead data-sentence { (sync_sentence(&state.platforms, &plan, platform)) "." }
            @if !plan.synced {
                form method="post" action={"/console/people/" (id) "/sync/" (platform.as_str())} {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="return" value=(back);
                    div.buttons {
                        a href=(back) { "Cancel" }
                        button type="submit" disabled[!session.can_change()] { "Sync" }
                    }
                }
            } @else {
                p { a href=(back) { "Back" } }
            }
        },
        Err(crate::sync::SyncError::NoPerson(_)) => {
            return Err(ConsoleError::not_found(format!("no person with id {id}")));
        }
        Err(refused) => html! {
            h1 { (title) }
            p.error role="alert" { "This sync cannot be done: " (refused) "." }
            p { a href=(back) { "Back" } }
        },
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::People,
        &title,
        body,
    ))
}

/// What the console says of a sync queued for the platform's pace: "Queued: Slack allows one
/// new app a minute; this bot is created in about 40 s."
fn queued_text(
    platforms: &PlatformRegistry,
    (wait, pace): (Duration, &str),
    representation: Option<&Representation>,
) -> String {
    let what = representation.map_or("representation", |r| {
        platforms.called(r.platform, r.kind).one
    });
    format!(
        "Queued: {pace}; this {what} is created in about {} s.",
        crate::sync::seconds(wait)
    )
}

/// Syncs one person on one platform, once confirmed. A script (`X-Requested-With: fetch`) gets
/// the new status cell; a plain form is sent back to the page.
async fn sync_one(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    fields: Option<Extension<Fields>>,
    headers: HeaderMap,
    Path((id, platform)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let (id, platform) = (person_id(&id)?, platform_named(&platform)?);
    let name = display_name(&state, id).await?;
    let result = act(&state, &session.caller(), id, Action::Sync(platform)).await;
    let representation = state.store.representation(id, platform).await?;
    let queued = result
        .as_ref()
        .ok()
        .and_then(Acted::queued)
        .map(|queued| queued_text(&state.platforms, queued, representation.as_ref()));
    if headers
        .get("x-requested-with")
        .is_some_and(|v| v == "fetch")
    {
        let (status, said) = match (&result, &queued) {
            (Ok(_), Some(queued)) => (StatusCode::ACCEPTED, Some(Said::Queued(queued))),
            (Ok(_), None) => (StatusCode::OK, None),
            (Err(refused), _) => (
                crate::http::status_of(refused.refusal),
                Some(Said::Refused(&refused.message)),
            ),
        };
        // A queued sync holds its representation: the cell shows the clock until it runs.
        let cell = status_cell(
            &state.platforms,
            &session,
            id,
            platform,
            representation.as_ref(),
            state.syncing.is_busy(id, platform),
            said,
        );
        return Ok((status, cell).into_response());
    }
    let acted = result.map_err(ConsoleError::from)?;
    let fields = fields.map(|Extension(f)| f);
    let Acted::Synced {
        outcome,
        prompted_on,
        ..
    } = acted
    else {
        return Err(ConsoleError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "a sync answered with another action's outcome",
        ));
    };
    let message = match outcome {
        _ if let Some(queued) = queued => queued,
        SyncOutcome::Prompted => format!(
            "{name} was prompted{} to authorise their {} account; the clock turns into a check when they do.",
            prompted_on
                .map(|p| format!(" on {}", p.display_name()))
                .unwrap_or_default(),
            platform.display_name()
        ),
        SyncOutcome::AwaitingConsent { .. } => {
            let (called, connection) =
                representation
                    .as_ref()
                    .map_or(("representation", "platform"), |r| {
                        (
                            state.platforms.called(platform, r.kind).one,
                            state
                                .platforms
                                .get(platform)
                                .map_or("platform", |m| m.rules().words.connection.one),
                        )
                    });
            format!(
                "{name}'s {} {called} waits for a {connection} admin's approval.",
                platform.display_name()
            )
        }
        _ => format!("{name} is synced on {}.", platform.display_name()),
    };
    Ok(done(&state, fields.as_ref(), &message))
}

async fn set_primary(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = person_id(&id)?;
    let chosen = platform_named(fields.get("platform").unwrap_or_default())?;
    let person = choose_primary(&state, &session.caller(), id, chosen).await?;
    Ok(done(
        &state,
        Some(&fields),
        &format!(
            "{} chats from {} now.",
            person.display_name,
            chosen.display_name()
        ),
    ))
}

#[derive(Deserialize)]
struct ReturnQuery {
    #[serde(rename = "return")]
    back: Option<String>,
}

/// The confirmation of a row-menu action, as a page of its own for browsers without
/// JavaScript (with it, the same question opens in a dialog).
async fn confirm_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Query(query): Query<ReturnQuery>,
) -> Result<Response, ConsoleError> {
    let id = person_id(&id)?;
    let name = display_name(&state, id).await?;
    let representations = state.store.representations_of(id).await?;
    let kept = kept_on_removal(&state.platforms, representations.iter());
    let (label, question) = confirm_text(&action, &name, &kept)
        .ok_or_else(|| ConsoleError::not_found("the actions are reset, reprompt and remove"))?;
    let back = back_to(
        query
            .back
            .map(|b| Fields(vec![("return".to_owned(), b)]))
            .as_ref(),
    );
    let body = html! {
        h1 { (label) }
        p { (question) }
        form method="post" action={"/console/people/" (id) "/act/" (action)} {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="return" value=(back);
            div.buttons {
                a href=(back) { "Cancel" }
                button.danger type="submit" disabled[!session.can_change()] { (label) }
            }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::People,
        label,
        body,
    ))
}

async fn person_action(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let id = person_id(&id)?;
    let name = display_name(&state, id).await?;
    let caller = session.caller();
    let message = match action.as_str() {
        "reset" => {
            act(&state, &caller, id, Action::Reset).await?;
            format!("{name} was reset.")
        }
        "reprompt" => {
            act(&state, &caller, id, Action::Reprompt).await?;
            format!("{name} was prompted again.")
        }
        "remove" => {
            remove_person(&state, &caller, id).await?;
            // Their own page is gone with them: back to the list.
            if back_to(Some(&fields)) == format!("/console/people/{id}") {
                let mut response = Redirect::to("/console/people").into_response();
                layout::flash(
                    &state,
                    &mut response,
                    &format!("{name} was removed from the hub."),
                );
                return Ok(response);
            }
            format!("{name} was removed from the hub.")
        }
        _ => {
            return Err(ConsoleError::not_found(
                "the actions are reset, reprompt and remove",
            ));
        }
    };
    Ok(done(&state, Some(&fields), &message))
}

/// The console's latest bulk actions, each with every person's outcome as it comes: an action
/// runs in the background (a sync waits for the platform's pace), and its page shows the admin
/// how it went.
#[derive(Debug, Clone, Default)]
pub struct BulkRuns(Arc<Mutex<VecDeque<BulkRun>>>);

#[derive(Debug, Clone)]
struct BulkRun {
    /// Unguessable, as it names the run in its page's address.
    id: String,
    /// What was asked, as a heading: "Syncing 3 people on Slack".
    what: String,
    /// The outcomes one person's action can have, in the order the summary counts them.
    outcomes: &'static [&'static str],
    total: usize,
    done: Vec<PersonOutcome>,
}

#[derive(Debug, Clone)]
struct PersonOutcome {
    id: PersonId,
    name: String,
    outcome: &'static str,
    /// Why the action failed for them, as the admin can act on it.
    reason: Option<String>,
}

impl BulkRuns {
    fn runs(&self) -> std::sync::MutexGuard<'_, VecDeque<BulkRun>> {
        // Every change is one push or one field set, so a panic elsewhere leaves the runs
        // consistent and a poisoned lock usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn start(&self, what: String, outcomes: &'static [&'static str], total: usize) -> String {
        let id = crate::tokens::generate();
        let mut runs = self.runs();
        if runs.len() == KEPT_RUNS {
            runs.pop_front();
        }
        runs.push_back(BulkRun {
            id: id.clone(),
            what,
            outcomes,
            total,
            done: Vec::new(),
        });
        id
    }

    fn record(&self, run: &str, outcome: PersonOutcome) {
        if let Some(run) = self.runs().iter_mut().find(|r| r.id == run) {
            run.done.push(outcome);
        }
    }

    fn get(&self, run: &str) -> Option<BulkRun> {
        self.runs().iter().find(|r| r.id == run).cloned()
    }
}

fn outcome_label(outcome: &str) -> &str {
    match outcome {
        "already_synced" => "already synced",
        "awaiting_consent" => "waiting for approval",
        "reprompted" => "prompted again",
        other => other,
    }
}

impl BulkRun {
    /// "1 synced, 0 prompted, 2 failed": how many people came to each outcome so far.
    fn summary(&self) -> String {
        self.outcomes
            .iter()
            .map(|outcome| {
                let n = self.done.iter().filter(|d| d.outcome == *outcome).count();
                format!("{n} {}", outcome_label(outcome))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A bulk action on the selected people. It runs in the background, one person after the
/// other as the REST API's bulk action does, so that a sync paced by the platform's limits
/// does not hold the browser; the admin is sent to the action's page, which counts the
/// outcomes as they come and names each failure with its reason. Each outcome is audited.
async fn bulk(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let ids: Vec<PersonId> = fields.all("ids").map(person_id).collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(done(
            &state,
            Some(&fields),
            "Select people first, with the boxes at the start of each row.",
        ));
    }
    if ids.len() > MAX_BULK {
        return Err(ConsoleError::new(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_BULK} people at once"),
        ));
    }
    let (action, what) = match fields.get("action") {
        Some("sync") => {
            let platform = platform_named(fields.get("platform").unwrap_or_default())?;
            if fields.get("confirmed").is_none() {
                return confirm_bulk_sync(&state, &session, &headers, &fields, &ids, platform)
                    .await;
            }
            (
                Action::Sync(platform),
                format!(
                    "Syncing {} on {}",
                    count(ids.len()),
                    platform.display_name()
                ),
            )
        }
        Some("reset") => (Action::Reset, format!("Resetting {}", count(ids.len()))),
        Some("reprompt") => (
            Action::Reprompt,
            format!("Prompting {} again", count(ids.len())),
        ),
        _ => {
            return Err(ConsoleError::new(
                StatusCode::BAD_REQUEST,
                "the bulk actions are sync, reset and reprompt",
            ));
        }
    };
    let runs = state.console.bulk_runs.clone();
    let run = runs.start(what, action.outcomes(), ids.len());
    let caller = session.caller();
    let background = state.clone();
    let recorded = run.clone();
    tokio::spawn(async move {
        for id in ids {
            let answer = act(&background, &caller, id, action).await;
            let name = match background.store.person(id).await {
                Ok(Some(person)) => person.display_name,
                _ => id.to_string(),
            };
            runs.record(
                &recorded,
                PersonOutcome {
                    id,
                    name,
                    outcome: action.outcome(&answer),
                    reason: answer.err().map(|error| error.message),
                },
            );
        }
    });
    Ok(Redirect::to(&format!("/console/people/bulk/{run}")).into_response())
}

/// A bulk sync's confirmation: what it will do, as one sentence, and who it cannot sync and
/// why; confirming sends the same selection again, confirmed.
async fn confirm_bulk_sync(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    fields: &Fields,
    ids: &[PersonId],
    platform: Platform,
) -> Result<Response, ConsoleError> {
    let mut plans = Vec::new();
    let mut refused = Vec::new();
    for id in ids {
        match plan(state, *id, platform).await {
            Ok(plan) => plans.push(plan),
            Err(error) => {
                let name = state
                    .store
                    .person(*id)
                    .await?
                    .map_or_else(|| id.to_string(), |p| p.display_name);
                refused.push((*id, name, error.to_string()));
            }
        }
    }
    let back = back_to(Some(fields));
    let title = format!("Sync {} on {}", count(ids.len()), platform.display_name());
    let body = html! {
        h1 { (title) }
        p.lead data-sentence { (bulk_sentence(&state.platforms, &plans, platform)) "." }
        @if !refused.is_empty() {
            h2 { "Not synced" }
            ul.failures {
                @for (id, name, reason) in &refused {
                    li { a href={"/console/people/" (id)} { (name) } ": " (reason) }
                }
            }
        }
        form method="post" action="/console/people/bulk" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="return" value=(back);
            input type="hidden" name="action" value="sync";
            input type="hidden" name="platform" value=(platform.as_str());
            input type="hidden" name="confirmed" value="yes";
            @for id in ids {
                input type="hidden" name="ids" value=(id);
            }
            div.buttons {
                a href=(back) { "Cancel" }
                button type="submit" { "Sync" }
            }
        }
    };
    Ok(layout::page(
        state,
        headers,
        session,
        Nav::People,
        &title,
        body,
    ))
}

/// A bulk action's outcome: while it runs, how far it got (the page reloads itself); then how
/// many people came to each outcome, and each failure with its reason.
async fn bulk_run(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> Result<Response, ConsoleError> {
    let run = state.console.bulk_runs.get(&run).ok_or_else(|| {
        ConsoleError::not_found(
            "no such bulk action: the console keeps the latest ones until the hub restarts",
        )
    })?;
    let finished = run.done.len() == run.total;
    let failures: Vec<&PersonOutcome> = run.done.iter().filter(|d| d.reason.is_some()).collect();
    let body = html! {
        h1 { (run.what) }
        @if finished {
            p.lead role="status" { "Done: " (run.summary()) "." }
        } @else {
            p.lead role="status" {
                (run.done.len()) " of " (run.total) " done so far: " (run.summary()) ". "
                "This page follows until every one is done."
            }
        }
        @if !failures.is_empty() {
            h2 { "Failed" }
            ul.failures {
                @for failure in &failures {
                    li {
                        a href={"/console/people/" (failure.id)} { (failure.name) } ": "
                        (failure.reason.as_deref().unwrap_or_default())
                    }
                }
            }
        }
        p { "Every outcome is in the " a href="/console/audit" { "audit log" } ". "
            a href="/console/people" { "Back to the people" } }
    };
    let mut response = layout::page(&state, &headers, &session, Nav::People, &run.what, body);
    if !finished {
        response.headers_mut().insert(
            "refresh",
            axum::http::HeaderValue::from(RUN_REFRESH_SECONDS),
        );
    }
    Ok(response)
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 person".to_owned()
    } else {
        format!("{n} people")
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    /// The cells a page shows: `PERSON.PLATFORM`, comma-separated.
    cells: String,
}

/// Server-sent events: each status cell of the page that changed since the last look, as
/// `{"id": …, "html": …}`, the cell rendered as the page renders it.
async fn events(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ConsoleError> {
    let cells: Vec<(PersonId, Platform)> = query
        .cells
        .split(',')
        .filter(|c| !c.is_empty())
        .take(MAX_CELLS)
        .map(|cell| {
            let (person, platform) = cell.split_once('.').ok_or_else(|| {
                ConsoleError::new(StatusCode::BAD_REQUEST, "cells are PERSON.PLATFORM")
            })?;
            Ok((person_id(person)?, platform_named(platform)?))
        })
        .collect::<Result<_, ConsoleError>>()?;
    let mut people: Vec<PersonId> = cells.iter().map(|(p, _)| *p).collect();
    people.sort();
    people.dedup();
    let shown: HashMap<String, String> = HashMap::new();
    let stream = futures_util::stream::unfold(
        (state, session, cells, people, shown, true),
        |(state, session, cells, people, mut shown, first)| async move {
            let mut wait = !first;
            loop {
                if wait {
                    tokio::time::sleep(STATUS_POLL).await;
                }
                wait = true;
                // A stream outlives neither its session nor a sign-out.
                match state.store.admin_session(&session.id_hash).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return None,
                    Err(error) => {
                        tracing::warn!(%error, "the console's status stream cannot read the store");
                        continue;
                    }
                }
                let representations = match state.store.representations_of_people(&people).await {
                    Ok(found) => found,
                    Err(error) => {
                        tracing::warn!(%error, "the console's status stream cannot read the store");
                        continue;
                    }
                };
                let mut changed = Vec::new();
                for (person, platform) in &cells {
                    let representation = representations
                        .iter()
                        .find(|(p, r)| p == person && r.platform == *platform)
                        .map(|(_, r)| r);
                    let html = status_cell(
                        &state.platforms,
                        &session,
                        *person,
                        *platform,
                        representation,
                        state.syncing.is_busy(*person, *platform),
                        None,
                    )
                    .into_string();
                    let id = cell_id(*person, *platform);
                    if shown.get(&id) != Some(&html) {
                        shown.insert(id.clone(), html.clone());
                        changed.push(serde_json::json!({ "id": id, "html": html }));
                    }
                }
                for person in &people {
                    let html = kinds_cell(
                        &state.platforms,
                        *person,
                        representations
                            .iter()
                            .filter(|(p, _)| p == person)
                            .map(|(_, r)| r),
                    )
                    .into_string();
                    let id = kinds_id(*person);
                    if shown.get(&id) != Some(&html) {
                        shown.insert(id.clone(), html.clone());
                        changed.push(serde_json::json!({ "id": id, "html": html }));
                    }
                }
                if !changed.is_empty() {
                    let event = Event::default()
                        .event("status")
                        .data(serde_json::Value::Array(changed).to_string());
                    return Some((Ok(event), (state, session, cells, people, shown, false)));
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

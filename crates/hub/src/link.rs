//! Where a prompt's "Sync now" link leads: a small page on which the person confirms (or, when
//! they chat from several platforms, chooses) their primary platform, then is sent to the
//! secondary platform's sign-in to authorise their own account there.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Router};
use serde::Deserialize;
use switchboard_core::{AccountKind, ChosenBy, Platform, Primary};

use crate::AppState;
use crate::connect::{page, store_failure};
use crate::sync::{self, SYNC_LINK_PATH};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        &format!("{SYNC_LINK_PATH}/{{token}}"),
        axum::routing::get(confirm).post(start),
    )
}

const SPENT: &str =
    "This link has expired or was already used. Ask your administrator to send a new one.";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The platforms the person may chat from: where they have an active account of their own,
/// other than the one being linked.
async fn choices(
    state: &AppState,
    person: switchboard_core::PersonId,
    linking: Platform,
) -> Result<Vec<Platform>, switchboard_store::StoreError> {
    let mut platforms: Vec<Platform> = state
        .store
        .accounts_of_person(person)
        .await?
        .into_iter()
        .filter(|a| a.active && a.kind == AccountKind::Human && a.platform != linking)
        .map(|a| a.platform)
        .collect();
    platforms.sort();
    platforms.dedup();
    Ok(platforms)
}

async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let grant = match sync::prompt_of_link(&state, &token).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return page(StatusCode::GONE, SPENT),
        Err(error) => return store_failure(error),
    };
    let (person, platforms) = match (
        state.store.person(grant.person_id).await,
        choices(&state, grant.person_id, grant.platform).await,
    ) {
        (Ok(Some(person)), Ok(platforms)) => (person, platforms),
        (Ok(None), _) => return page(StatusCode::GONE, SPENT),
        (Err(error), _) | (_, Err(error)) => return store_failure(error),
    };
    let current = person.primary.map(|p| p.platform);
    let options: String = platforms
        .iter()
        .map(|p| {
            format!(
                "<p><label><input type=\"radio\" name=\"primary\" value=\"{}\"{}> {}</label></p>",
                p.as_str(),
                if Some(*p) == current { " checked" } else { "" },
                p.display_name()
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Sync your {target} account</title></head><body>\
         <h1>Hello {name}</h1>\
         <p>Colleagues who chat on {target} will reach you through your own {target} account. \
         Which app do you chat from every day? Messages from {target} will arrive there.</p>\
         <form method=\"post\" action=\"{SYNC_LINK_PATH}/{token}\">{options}\
         <button type=\"submit\">Sync now</button></form></body></html>",
        target = grant.platform.display_name(),
        name = escape(&person.display_name),
        token = escape(&token),
    ))
    .into_response()
}

#[derive(Deserialize)]
struct Choice {
    primary: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(choice): Form<Choice>,
) -> Response {
    let grant = match sync::prompt_of_link(&state, &token).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return page(StatusCode::GONE, SPENT),
        Err(error) => return store_failure(error),
    };
    let platforms = match choices(&state, grant.person_id, grant.platform).await {
        Ok(platforms) => platforms,
        Err(error) => return store_failure(error),
    };
    let chosen = choice
        .primary
        .as_deref()
        .and_then(|name| name.parse::<Platform>().ok())
        .filter(|p| platforms.contains(p));
    let Some(chosen) = chosen else {
        return page(
            StatusCode::BAD_REQUEST,
            "Choose the app you chat from, then press Sync now.",
        );
    };
    // Only now is the link spent: a person who opened it and left can still come back.
    match sync::use_link(&state, &token).await {
        Ok(Some(_)) => {}
        Ok(None) => return page(StatusCode::GONE, SPENT),
        Err(error) => return store_failure(error),
    }
    let person = match state.store.person(grant.person_id).await {
        Ok(Some(person)) => person,
        Ok(None) => return page(StatusCode::GONE, SPENT),
        Err(error) => return store_failure(error),
    };
    let confirmed = person
        .primary
        .is_some_and(|p| p.platform == chosen && p.chosen_by != ChosenBy::Automatic);
    if !confirmed {
        let primary = Primary {
            platform: chosen,
            chosen_by: ChosenBy::Person,
        };
        if let Err(error) = sync::move_primary(&state, person.id, primary, "person:browser").await {
            return page(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "Your choice could not be saved: {error}. Try again, or ask your administrator."
                ),
            );
        }
    }
    match sync::begin_authorize(&state, grant.person_id, grant.platform).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(error) => page(
            StatusCode::BAD_GATEWAY,
            &format!(
                "{} could not start your sign-in: {error}. Ask your administrator for a new link.",
                grant.platform.display_name()
            ),
        ),
    }
}

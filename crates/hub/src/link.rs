//! Where a prompt's "Sync now" link leads: a small page on which the person confirms (or, when
//! they chat from several platforms, chooses) their primary platform, then is sent to the
//! secondary platform's sign-in to authorise their own account there.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;
use switchboard_core::{AccountKind, ChosenBy, Platform, Primary};
use switchboard_store::{PromptGrant, PromptLink};

use crate::AppState;
use crate::pages::{Outcome, message, page, store_failure};
use crate::sync::{self, SYNC_LINK_PATH};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        &format!("{SYNC_LINK_PATH}/{{token}}"),
        axum::routing::get(confirm).post(start),
    )
}

fn expired() -> Response {
    message(
        StatusCode::GONE,
        Outcome::Refused,
        "This link has expired",
        "Ask your administrator to send you a new one.",
    )
}

/// The prompt a link stands for while it may start a sign-in, or the page that says why not.
async fn open_prompt(state: &AppState, token: &str) -> Result<PromptGrant, Response> {
    match sync::prompt_link(state, token).await {
        Ok(PromptLink::Open(grant)) => Ok(grant),
        Ok(PromptLink::Linked { platform }) => Err(message(
            StatusCode::GONE,
            Outcome::Done,
            "Already linked",
            &format!(
                "Your {} account is already linked: there is nothing left to do. You can close \
                 this page.",
                platform.display_name()
            ),
        )),
        Ok(PromptLink::Gone) => Err(expired()),
        Err(error) => Err(store_failure(error)),
    }
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
    let grant = match open_prompt(&state, &token).await {
        Ok(grant) => grant,
        Err(refused) => return refused,
    };
    let (person, platforms) = match (
        state.store.person(grant.person_id).await,
        choices(&state, grant.person_id, grant.platform).await,
    ) {
        (Ok(Some(person)), Ok(platforms)) => (person, platforms),
        (Ok(None), _) => return expired(),
        (Err(error), _) | (_, Err(error)) => return store_failure(error),
    };
    let current = person.primary.map(|p| p.platform);
    let target = grant.platform.display_name();
    page(
        StatusCode::OK,
        &format!("Sync your {target} account"),
        html! {
            h1 { "Hello " (person.display_name) }
            p {
                "Colleagues who chat on " (target) " will reach you through your own " (target)
                " account. Which app do you chat from every day? Messages from " (target)
                " will arrive there."
            }
            form method="post" action={ (SYNC_LINK_PATH) "/" (token) } {
                fieldset {
                    legend { "The app you chat from" }
                    @for platform in &platforms {
                        label.choice {
                            input type="radio" name="primary" value=(platform.as_str())
                                checked[Some(*platform) == current] required;
                            (platform.display_name())
                        }
                    }
                }
                button type="submit" { "Sync now" }
            }
        },
    )
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
    let grant = match open_prompt(&state, &token).await {
        Ok(grant) => grant,
        Err(refused) => return refused,
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
        return message(
            StatusCode::BAD_REQUEST,
            Outcome::Refused,
            "Choose an app",
            "Go back, choose the app you chat from, then press Sync now.",
        );
    };
    // The link is not spent here but when the account is linked: a person who leaves the
    // platform's sign-in unfinished can follow it again.
    let person = match state.store.person(grant.person_id).await {
        Ok(Some(person)) => person,
        Ok(None) => return expired(),
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
            return message(
                StatusCode::BAD_GATEWAY,
                Outcome::Refused,
                "Your choice could not be saved",
                &format!("{error}. Try again, or ask your administrator."),
            );
        }
    }
    match sync::begin_authorize(&state, grant.person_id, grant.platform, grant.expires_at).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(error) => message(
            StatusCode::BAD_GATEWAY,
            Outcome::Refused,
            "Your sign-in could not start",
            &format!(
                "{} could not start your sign-in: {error}. Ask your administrator for a new link.",
                grant.platform.display_name()
            ),
        ),
    }
}

//! The hub's pages outside the console, mostly seen by a person on their phone: where a
//! prompt's "Sync now" link leads and where a platform's sign-in returns (synced, expired,
//! refused, failed). One card in the console's look, from the console's stylesheet: these pages'
//! Content-Security-Policy allows the hub's stylesheet and nothing inline (see `http.rs`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use switchboard_store::StoreError;

use crate::console::layout::{Icon, icon};

/// A page: its title, then `body` on a card.
pub(crate) fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Switchboard" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body.person {
                main.card {
                    p.brand { "Switchboard" }
                    (body)
                }
            }
        }
    };
    (status, markup).into_response()
}

/// What a message page tells: done, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    Refused,
}

/// A page that says one thing: a heading marked with the outcome's icon, and a sentence.
pub(crate) fn message(status: StatusCode, outcome: Outcome, title: &str, text: &str) -> Response {
    let mark = match outcome {
        Outcome::Done => Icon::Synced,
        Outcome::Refused => Icon::Failed,
    };
    page(
        status,
        title,
        html! {
            div.outcome {
                (icon(mark))
                h1 { (title) }
            }
            p { (text) }
        },
    )
}

pub(crate) fn store_failure(error: StoreError) -> Response {
    tracing::error!(%error, "store failure in a browser flow");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        Outcome::Refused,
        "Try again in a moment",
        "The hub's database did not answer; try again in a moment.",
    )
}

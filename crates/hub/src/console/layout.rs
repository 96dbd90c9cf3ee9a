//! The frame every console page shares (navigation, who is signed in, the message left by the
//! last action), the status icons, error pages, and the embedded CSS and JavaScript.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::{Session, cookie};
use crate::AppState;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
/// A one-line message to show on the next page, after a redirect.
const FLASH_COOKIE: &str = "sb_flash";

/// The sections of the console, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Connections,
    Imports,
    People,
    Activity,
    Directory,
    Settings,
    Audit,
}

impl Nav {
    const ALL: [Nav; 7] = [
        Nav::Connections,
        Nav::Imports,
        Nav::People,
        Nav::Activity,
        Nav::Directory,
        Nav::Settings,
        Nav::Audit,
    ];

    fn label(self) -> &'static str {
        match self {
            Nav::Connections => "Connect Center",
            Nav::Imports => "Import teams and users",
            Nav::People => "Sync users",
            Nav::Activity => "Activity",
            Nav::Directory => "Directory Sync",
            Nav::Settings => "Settings",
            Nav::Audit => "Audit log",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Nav::Connections => "/console/connections",
            Nav::Imports => "/console/imports",
            Nav::People => "/console/people",
            Nav::Activity => "/console/activity",
            Nav::Directory => "/console/directory",
            Nav::Settings => "/console/settings",
            Nav::Audit => "/console/audit",
        }
    }
}

pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Switchboard" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A page without navigation: sign-in, setup, errors.
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main #main { (body) }
            }
        }
    }
}

/// A signed-in page. Shows (and clears) the message the last action left.
pub fn page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    current: Nav,
    title: &str,
    body: Markup,
) -> Response {
    frame(state, headers, session, Some(current), title, body)
}

/// A console address that leads nowhere, answered in the console's frame (so the navigation
/// is right there) rather than as a bare error.
pub fn not_found_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    path: &str,
) -> Response {
    let body = html! {
        h1 { "Page not found" }
        div.error role="alert" {
            p #error-message { "There is no console page at " code { (path) } "." }
        }
        p { "The link may be mistyped, or lead to something that was removed. Choose a section above, or go back to " a href=(Nav::People.href()) { "Sync users" } "." }
    };
    let mut response = frame(state, headers, session, None, "Page not found", body);
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

fn frame(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    current: Option<Nav>,
    title: &str,
    body: Markup,
) -> Response {
    let flash = cookie(headers, FLASH_COOKIE).map(|value| {
        form_urlencoded::parse(format!("m={value}").as_bytes())
            .next()
            .map(|(_, message)| message.into_owned())
            .unwrap_or_default()
    });
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-csrf=(session.csrf) {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    span.brand { "Switchboard" }
                    nav aria-label="Console" {
                        ul {
                            @for section in Nav::ALL {
                                li {
                                    a href=(section.href()) aria-current=[(Some(section) == current).then_some("page")] { (section.label()) }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (session.admin.email.as_str()) " · " (session.admin.role.as_str()) }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    @if let Some(message) = &flash {
                        div.notice role="status" { p { (message) } }
                    }
                    (body)
                }
            }
        }
    };
    let mut response = markup.into_response();
    if flash.is_some() {
        super::auth::append_cookie(
            &mut response,
            &super::auth::set_cookie(state, FLASH_COOKIE, "", 0),
        );
    }
    response
}

/// Leaves a message for the next page the admin sees.
pub fn flash(state: &AppState, response: &mut Response, message: &str) {
    let encoded: String = form_urlencoded::byte_serialize(message.as_bytes()).collect();
    super::auth::append_cookie(
        response,
        &super::auth::set_cookie(state, FLASH_COOKIE, &encoded, 60),
    );
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        bare_page(
            title,
            html! {
                h1 { (title) }
                div.error role="alert" { p #error-message { (message) } }
                p { a href="/console/" { "Back to the console" } }
            },
        ),
    )
        .into_response()
}

/// The four sync statuses as the seeds draw them, and a platform that cannot represent someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    /// Circular arrow: not created.
    NotCreated,
    /// Orange clock: pending, or being synced right now.
    Pending,
    /// Green check: synced.
    Synced,
    /// Red triangle: failed.
    Failed,
    /// Grey circle with a bar: the platform cannot represent the person at all.
    NotRepresented,
}

pub fn icon(icon: Icon) -> Markup {
    let (class, path) = match icon {
        Icon::NotCreated => (
            "icon not-created",
            "M12 4a8 8 0 1 0 7.75 6h-2.1A6 6 0 1 1 12 6c1.66 0 3.14.69 4.22 1.78L13 11h7V4l-2.35 2.35A7.96 7.96 0 0 0 12 4z",
        ),
        Icon::Pending => (
            "icon pending",
            "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 2a8 8 0 1 1 0 16 8 8 0 0 1 0-16zm-1 3v6l5 3 1-1.7-4-2.4V7z",
        ),
        Icon::Synced => (
            "icon synced",
            "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm-1.5 14.5-4.2-4.2 1.4-1.4 2.8 2.8 6.3-6.3 1.4 1.4z",
        ),
        Icon::Failed => (
            "icon failed",
            "M12 2 1 21h22L12 2zm-1 7h2v6h-2V9zm0 8h2v2h-2v-2z",
        ),
        Icon::NotRepresented => (
            "icon not-represented",
            "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 2a8 8 0 1 1 0 16 8 8 0 0 1 0-16zM7 11v2h10v-2H7z",
        ),
    };
    html! {
        svg class=(class) viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false" {
            path d=(path) {}
        }
    }
}

/// An "i" in a circle: where a legend or an explanation opens.
pub fn info_icon() -> Markup {
    html! {
        svg class="icon info" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false" {
            path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 2a8 8 0 1 1 0 16 8 8 0 0 1 0-16zm-1 3v2h2V7h-2zm0 4v6h2v-6h-2z" {}
        }
    }
}

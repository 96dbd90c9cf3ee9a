//! The Zoom App Marketplace as the account's admin uses it for the hub, at `/zoom/admin/`:
//! create the server-to-server app, the user-managed app and the chatbot, see their
//! credentials and secret token, and set an app's event subscription (its endpoint, validated
//! with `endpoint.url_validation` before it is saved, and its events).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use switchboard_sim_kit::html::{Pick, escape, hidden_field, people_picker};

use crate::ZoomSim;
use crate::state::{ACCOUNT_ID, App, AppKind, ROBOT_JID, Role, State, User};
use crate::wire::{form_decode, now_millis, param};

pub fn routes() -> Router<Arc<ZoomSim>> {
    Router::new()
        .route(
            "/zoom/admin",
            get(|| async { Redirect::to("/zoom/admin/") }),
        )
        .route("/zoom/admin/", get(console))
        .route("/zoom/admin/apps", post(create_app))
        .route("/zoom/admin/events", post(subscribe))
}

/// The admin signed in on the page: the account's owner or an admin, active.
fn admin_of<'s>(state: &'s State, email: &str) -> Option<&'s User> {
    state
        .user(email.trim())
        .filter(|u| u.active() && matches!(u.role, Role::Owner | Role::Admin))
}

fn sign_in_page(state: &State, status: StatusCode, problem: Option<&str>) -> Response {
    let picks: Vec<Pick> = state
        .users
        .iter()
        .filter(|u| u.active() && matches!(u.role, Role::Owner | Role::Admin))
        .map(|u| Pick {
            value: u.email.clone(),
            label: u.display_name.clone(),
        })
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\">{}</p>", escape(p))
    });
    let body = format!(
        "<h1>Zoom App Marketplace</h1>{problem}<form method=\"get\" action=\"/zoom/admin/\">{}\
         <p><button>Sign in</button></p></form>",
        people_picker("email", "Admin's e-mail", "", &picks)
    );
    (status, crate::web::page("Zoom App Marketplace", &body)).into_response()
}

fn app_section(admin: &User, kind: AppKind, app: Option<&App>) -> String {
    let me = hidden_field("email", &admin.email);
    let app_field = hidden_field("app", kind.name());
    let Some(app) = app else {
        return format!(
            "<section><h2>{title}</h2><p class=\"meta\">Not created.</p>\
             <form method=\"post\" action=\"/zoom/admin/apps\">{me}{app_field}\
             <p><button>Create</button></p></form></section>",
            title = escape(kind.title()),
        );
    };
    let mut details = format!(
        "<dl><dt>Client ID</dt><dd><code>{}</code></dd><dt>Client secret</dt><dd><code>{}</code></dd>\
         <dt>Secret token</dt><dd><code>{}</code></dd>",
        escape(kind.client_id()),
        escape(kind.client_secret()),
        escape(kind.secret_token()),
    );
    match kind {
        AppKind::ServerToServer => {
            let _ = write!(
                details,
                "<dt>Account ID</dt><dd><code>{ACCOUNT_ID}</code></dd>"
            );
        }
        AppKind::Chatbot => {
            let _ = write!(details, "<dt>Bot JID</dt><dd><code>{ROBOT_JID}</code></dd>");
        }
        AppKind::UserManaged => {}
    }
    details.push_str("</dl>");
    let events: String = kind
        .events()
        .iter()
        .map(|event| {
            let checked = if app.events.iter().any(|e| e == event) {
                " checked"
            } else {
                ""
            };
            format!(
                "<label><input type=\"checkbox\" name=\"event\" value=\"{e}\"{checked}> {e}</label><br>",
                e = escape(event)
            )
        })
        .collect();
    format!(
        "<section><h2>{title}</h2>{details}<h3>Event subscription</h3>\
         <form method=\"post\" action=\"/zoom/admin/events\">{me}{app_field}\
         <p><label>Event notification endpoint URL<br><input name=\"url\" size=\"60\" value=\"{url}\"></label></p>\
         <p>{events}</p><p><button>Validate and save</button></p></form></section>",
        title = escape(kind.title()),
        url = escape(app.event_url.as_deref().unwrap_or_default()),
    )
}

async fn console(
    Shared(sim): Shared<Arc<ZoomSim>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(email) = param(&params, "email") else {
        return sign_in_page(&state, StatusCode::OK, None);
    };
    let Some(admin) = admin_of(&state, email) else {
        return sign_in_page(
            &state,
            StatusCode::FORBIDDEN,
            Some(&format!("{email} is not an admin of this account.")),
        );
    };
    let sections: String = AppKind::ALL
        .into_iter()
        .map(|kind| app_section(admin, kind, state.app(kind)))
        .collect();
    let body = format!(
        "<h1>Zoom App Marketplace — {domain}</h1><p>Signed in as {admin} · account <code>{ACCOUNT_ID}</code></p>{sections}",
        domain = escape(&state.domain),
        admin = escape(&admin.email),
    );
    crate::web::page("Zoom App Marketplace", &body).into_response()
}

fn back_to_console(email: &str) -> Response {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", email)
        .finish();
    Redirect::to(&format!("/zoom/admin/?{query}")).into_response()
}

fn problem(status: StatusCode, text: &str) -> Response {
    (
        status,
        crate::web::page(
            "Zoom App Marketplace",
            &format!("<p class=\"error\">{}</p>", escape(text)),
        ),
    )
        .into_response()
}

/// Creates an app of the account, made by the signed-in admin; creating it again keeps it.
async fn create_app(Shared(sim): Shared<Arc<ZoomSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let email = param(&params, "email").unwrap_or_default().to_owned();
    let mut state = sim.lock();
    let Some(admin) = admin_of(&state, &email).map(|u| u.id.clone()) else {
        return sign_in_page(&state, StatusCode::FORBIDDEN, Some("Sign in as an admin."));
    };
    let Some(kind) = param(&params, "app").and_then(AppKind::from_name) else {
        return problem(StatusCode::BAD_REQUEST, "Choose an app type.");
    };
    if state.app(kind).is_none() {
        state.apps.push(App {
            kind,
            creator: admin,
            event_url: None,
            events: Vec::new(),
            created: now_millis(),
        });
    }
    back_to_console(&email)
}

/// Validates the endpoint with Zoom's challenge, then saves the app's event subscription.
async fn subscribe(Shared(sim): Shared<Arc<ZoomSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let email = param(&params, "email").unwrap_or_default().to_owned();
    let url = param(&params, "url").unwrap_or_default().trim().to_owned();
    let events: Vec<String> = params
        .iter()
        .filter(|(key, _)| key == "event")
        .map(|(_, value)| value.clone())
        .collect();
    let kind = {
        let state = sim.lock();
        if admin_of(&state, &email).is_none() {
            return sign_in_page(&state, StatusCode::FORBIDDEN, Some("Sign in as an admin."));
        }
        let Some(kind) = param(&params, "app")
            .and_then(AppKind::from_name)
            .filter(|kind| state.app(*kind).is_some())
        else {
            return problem(StatusCode::BAD_REQUEST, "Create the app first.");
        };
        if let Some(unknown) = events.iter().find(|e| !kind.events().contains(&e.as_str())) {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("The app cannot subscribe to {unknown}."),
            );
        }
        kind
    };
    if let Err(refusal) = crate::events::validate_endpoint(&sim, kind, &url).await {
        return problem(StatusCode::BAD_REQUEST, &refusal);
    }
    if let Some(app) = sim.lock().app_mut(kind) {
        app.event_url = Some(url);
        app.events = events;
    }
    back_to_console(&email)
}

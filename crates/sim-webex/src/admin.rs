//! What a Webex admin does in Control Hub for the hub, at `/webex/admin/`: authorise the
//! hub's Service App for the organisation (after which it can fetch its token and issue
//! guests), and see the organisation's teams and service user.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use switchboard_sim_kit::html::{Pick, escape, hidden_field, people_picker};

use crate::WebexSim;
use crate::state::{Person, PersonKind, SERVICE_APP_CLIENT_ID, State};
use crate::wire::{form_decode, param};

pub fn routes() -> Router<Arc<WebexSim>> {
    Router::new()
        .route(
            "/webex/admin",
            get(|| async { Redirect::to("/webex/admin/") }),
        )
        .route("/webex/admin/", get(console))
        .route("/webex/admin/service-app", post(service_app))
}

/// The admin signed in on the page: an active full admin of the organisation.
fn admin_of<'s>(state: &'s State, email: &str) -> Option<&'s Person> {
    state
        .person(email.trim())
        .filter(|p| p.kind == PersonKind::Admin && p.login_enabled)
}

fn sign_in_page(state: &State, problem: Option<&str>) -> Response {
    let picks: Vec<Pick> = state
        .people
        .iter()
        .filter(|p| p.kind == PersonKind::Admin && p.login_enabled)
        .map(|p| Pick {
            value: p.email.clone(),
            label: p.display_name.clone(),
        })
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\">{}</p>", escape(p))
    });
    let body = format!(
        "<h1>Control Hub</h1>{problem}<form method=\"get\" action=\"/webex/admin/\">{}\
         <p><button>Sign in</button></p></form>",
        people_picker("email", "Administrator's e-mail", "", &picks)
    );
    crate::web::page("Control Hub", &body).into_response()
}

async fn console(
    Shared(sim): Shared<Arc<WebexSim>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(email) = param(&params, "email") else {
        return sign_in_page(&state, None);
    };
    let Some(admin) = admin_of(&state, email) else {
        return sign_in_page(
            &state,
            Some(&format!("{email} is not a full administrator.")),
        );
    };
    let status = if state.service_app_authorised {
        "<p>Authorised for this organisation.</p>"
    } else {
        "<p>Not authorised: it cannot get a token or issue guests.</p>"
    };
    let service_user = state.service_user().map_or_else(String::new, |p| {
        format!(
            "<h2>Service user</h2><p>{} &lt;{}&gt;, a member of every team below.</p>",
            escape(&p.display_name),
            escape(&p.email)
        )
    });
    let mut teams = String::new();
    for team in &state.teams {
        let _ = write!(
            teams,
            "<li>{} <span class=\"meta\">{} members</span></li>",
            escape(&team.name),
            team.members.len()
        );
    }
    let body = format!(
        "<h1>Control Hub — {domain}</h1><p>Signed in as {admin}</p>\
         <h2>Service App <code>{client}</code></h2>{status}\
         <form method=\"post\" action=\"/webex/admin/service-app\">{me}\
         <p><button name=\"decision\" value=\"authorise\">Authorise</button> \
         <button name=\"decision\" value=\"revoke\">Revoke</button></p></form>\
         {service_user}<h2>Teams</h2><ul>{teams}</ul>",
        domain = escape(&state.domain),
        admin = escape(&admin.email),
        client = escape(SERVICE_APP_CLIENT_ID),
        me = hidden_field("email", &admin.email),
    );
    crate::web::page("Control Hub", &body).into_response()
}

/// Authorises or revokes the Service App. Revoking ends its tokens, as Control Hub does.
async fn service_app(Shared(sim): Shared<Arc<WebexSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let email = param(&params, "email").unwrap_or_default().to_owned();
    let mut state = sim.lock();
    if admin_of(&state, &email).is_none() {
        return (
            StatusCode::FORBIDDEN,
            sign_in_page(&state, Some("Sign in as a full administrator.")),
        )
            .into_response();
    }
    match param(&params, "decision") {
        Some("authorise") => state.service_app_authorised = true,
        Some("revoke") => {
            state.service_app_authorised = false;
            state
                .access_tokens
                .retain(|_, grant| grant.client_id != SERVICE_APP_CLIENT_ID);
            state
                .refresh_tokens
                .retain(|_, grant| grant.client_id != SERVICE_APP_CLIENT_ID);
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                crate::web::page(
                    "Control Hub",
                    "<p class=\"error\">Choose authorise or revoke.</p>",
                ),
            )
                .into_response();
        }
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", &email)
        .finish();
    Redirect::to(&format!("/webex/admin/?{query}")).into_response()
}

//! What an administrator does outside the APIs the hub calls: the Admin console at
//! `/google/admin/` (domain-wide delegation, the Chat app, the invitation setting) and the IAM
//! API's service-account keys.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use switchboard_sim_kit::html::{Pick, escape, hidden_field, people_picker};

use crate::GoogleSim;
use crate::keys::RsaKey;
use crate::state::{PROJECT_ID, Principal, State};
use crate::wire::{Answer, GoogleError, form_decode, form_value, ok};

pub fn routes() -> Router<Arc<GoogleSim>> {
    Router::new()
        .route(
            "/google/admin",
            get(|| async { Redirect::to("/google/admin/") }),
        )
        .route("/google/admin/", get(console))
        .route("/google/admin/delegation", post(add_delegation))
        .route("/google/admin/delegation/delete", post(delete_delegation))
        .route("/google/admin/chat-app", post(configure_chat_app))
        .route("/google/admin/invitations", post(invitations))
        .route(
            "/google/iam/v1/projects/{project}/serviceAccounts/{account}/keys",
            get(list_keys).post(create_key),
        )
        .route(
            "/google/iam/v1/projects/{project}/serviceAccounts/{account}/keys/{key}",
            delete(delete_key),
        )
}

/// The admin signed in on the console: an active super admin of the domain.
fn admin_of<'s>(state: &'s State, login: &str) -> Option<&'s crate::state::User> {
    state
        .user(login.trim())
        .filter(|user| user.admin && user.active())
}

fn sign_in_page(state: &State, problem: Option<&str>) -> Response {
    let picks: Vec<Pick> = state
        .users
        .iter()
        .filter(|user| user.admin && user.active())
        .map(|user| Pick {
            value: user.email.clone(),
            label: user.full_name(),
        })
        .collect();
    let problem = problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\">{}</p>", escape(p))
    });
    let body = format!(
        "<h1>Admin console</h1>{problem}<form method=\"get\" action=\"/google/admin/\">{}\
         <p><button>Sign in</button></p></form>",
        people_picker("login", "Administrator's e-mail", "", &picks)
    );
    crate::web::page("Admin console", &body).into_response()
}

async fn console(
    Shared(sim): Shared<Arc<GoogleSim>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let state = sim.lock();
    let Some(login) = form_value(&params, "login").filter(|l| !l.is_empty()) else {
        return sign_in_page(&state, None);
    };
    let Some(admin) = admin_of(&state, login) else {
        return sign_in_page(&state, Some(&format!("{login} is not an administrator.")));
    };
    let me = hidden_field("login", &admin.email);
    let delegations: String = state
        .delegations
        .iter()
        .map(|(client, scopes)| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td><form method=\"post\" \
                 action=\"/google/admin/delegation/delete\">{me}{}<button>Delete</button></form></td></tr>",
                escape(client),
                escape(&scopes.join(", ")),
                hidden_field("client_id", client),
            )
        })
        .collect();
    let chat_app = state.chat_app.as_deref().map_or_else(
        || "<p>No Chat app is configured.</p>".to_owned(),
        |name| {
            format!(
                "<p>Configured: <strong>{}</strong>, available to everyone in the domain.</p>",
                escape(name)
            )
        },
    );
    let accept = if state.auto_accept_invitations {
        "checked"
    } else {
        ""
    };
    let body = format!(
        "<h1>Admin console — {domain}</h1><p>Signed in as {email}</p>\
         <h2>Domain-wide delegation</h2><table><tr><th>Client ID</th><th>OAuth scopes</th><th></th></tr>{delegations}</table>\
         <form method=\"post\" action=\"/google/admin/delegation\">{me}\
         <p><label>Client ID<br><input name=\"client_id\" size=\"30\"></label></p>\
         <p><label>OAuth scopes (comma-delimited)<br><input name=\"scopes\" size=\"80\"></label></p>\
         <p><button name=\"decision\" value=\"authorise\">Authorise</button></p></form>\
         <h2>Google Chat app</h2>{chat_app}<form method=\"post\" action=\"/google/admin/chat-app\">{me}\
         <p><label>App name<br><input name=\"name\" value=\"Switchboard\"></label></p>\
         <p><button name=\"decision\" value=\"configure\">Configure</button></p></form>\
         <h2>Chat settings</h2><form method=\"post\" action=\"/google/admin/invitations\">{me}\
         <p><label><input type=\"checkbox\" name=\"auto_accept\" value=\"on\" {accept}> \
         Automatically accept invitations between users of the domain</label></p>\
         <p><button name=\"decision\" value=\"save\">Save</button></p></form>",
        domain = escape(&state.domain),
        email = escape(&admin.email),
    );
    crate::web::page("Admin console", &body).into_response()
}

/// Runs an admin's form against the state, then shows the console again.
fn as_admin(
    sim: &GoogleSim,
    body: &Bytes,
    change: impl FnOnce(&mut State, &[(String, String)]),
) -> Response {
    let params = form_decode(body);
    let login = form_value(&params, "login").unwrap_or_default().to_owned();
    let mut state = sim.lock();
    if admin_of(&state, &login).is_none() {
        return (
            StatusCode::FORBIDDEN,
            sign_in_page(&state, Some("Sign in as an administrator.")),
        )
            .into_response();
    }
    change(&mut state, &params);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("login", &login)
        .finish();
    Redirect::to(&format!("/google/admin/?{query}")).into_response()
}

async fn add_delegation(Shared(sim): Shared<Arc<GoogleSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let login = form_value(&params, "login").unwrap_or_default();
    let client_id = form_value(&params, "client_id").unwrap_or_default().trim();
    if admin_of(&sim.lock(), login).is_none() || client_id.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            crate::web::page(
                "Admin console",
                "<p class=\"error\">Sign in as an administrator and give a client ID.</p>",
            ),
        )
            .into_response();
    }
    crate::oauth::delegate(
        &sim,
        client_id,
        form_value(&params, "scopes").unwrap_or_default(),
    );
    as_admin(&sim, &body, |_, _| {})
}

async fn delete_delegation(Shared(sim): Shared<Arc<GoogleSim>>, body: Bytes) -> Response {
    let params = form_decode(&body);
    let login = form_value(&params, "login").unwrap_or_default();
    if admin_of(&sim.lock(), login).is_some() {
        // Deleting what is not there changes nothing, as on the console.
        let _ = crate::oauth::revoke_delegation(
            &sim,
            form_value(&params, "client_id").unwrap_or_default(),
        );
    }
    as_admin(&sim, &body, |_, _| {})
}

async fn configure_chat_app(Shared(sim): Shared<Arc<GoogleSim>>, body: Bytes) -> Response {
    as_admin(&sim, &body, |state, params| {
        let name = form_value(params, "name").unwrap_or("Switchboard").trim();
        state.chat_app = Some(if name.is_empty() { "Switchboard" } else { name }.to_owned());
    })
}

async fn invitations(Shared(sim): Shared<Arc<GoogleSim>>, body: Bytes) -> Response {
    as_admin(&sim, &body, |state, params| {
        state.auto_accept_invitations = form_value(params, "auto_accept") == Some("on");
    })
}

/// IAM calls are the project owner's: a domain admin's token, as the demo's admin has.
fn project_owner(
    sim: &GoogleSim,
    state: &State,
    headers: &HeaderMap,
    project: &str,
) -> Result<(), GoogleError> {
    let caller = sim.caller(state, headers)?;
    let admin = match &caller.principal {
        Principal::User(id) => state.user(id).is_some_and(|user| user.admin),
        Principal::ServiceAccount(_) => false,
    };
    if !admin {
        return Err(GoogleError::denied(
            "Permission 'iam.serviceAccountKeys.create' denied on resource (or it may not exist).",
        ));
    }
    if project != PROJECT_ID && project != "-" {
        return Err(GoogleError::not_found(format!(
            "Project {project} not found."
        )));
    }
    Ok(())
}

fn key_name(account: &str, key: &str) -> String {
    format!("projects/{PROJECT_ID}/serviceAccounts/{account}/keys/{key}")
}

async fn create_key(
    Shared(sim): Shared<Arc<GoogleSim>>,
    Path((project, account)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    // Generated before taking the lock: RSA key generation takes a while.
    let key = RsaKey::generate();
    let mut state = sim.lock();
    project_owner(&sim, &state, &headers, &project)?;
    let token_uri = sim.token_url();
    let base = sim.base().to_owned();
    let service_account = state
        .service_accounts
        .iter_mut()
        .find(|sa| sa.email.eq_ignore_ascii_case(&account) || sa.unique_id == account)
        .ok_or_else(|| {
            GoogleError::not_found(format!(
                "Service account projects/{project}/serviceAccounts/{account} does not exist."
            ))
        })?;
    let file = json!({
        "type": "service_account",
        "project_id": PROJECT_ID,
        "private_key_id": key.id,
        "private_key": key.private_pem,
        "client_email": service_account.email,
        "client_id": service_account.unique_id,
        "auth_uri": format!("{base}/google/oauth2/auth"),
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": format!("{base}/google/oauth2/v1/certs"),
        "client_x509_cert_url": format!("{base}/google/oauth2/v1/certs"),
        "universe_domain": "googleapis.com",
    });
    let name = key_name(&service_account.email, &key.id);
    service_account.keys.push(key);
    ok(json!({
        "name": name,
        "privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE",
        "keyAlgorithm": "KEY_ALG_RSA_2048",
        "privateKeyData": STANDARD.encode(file.to_string()),
        "keyOrigin": "GOOGLE_PROVIDED",
        "keyType": "USER_MANAGED",
    }))
}

async fn list_keys(
    Shared(sim): Shared<Arc<GoogleSim>>,
    Path((project, account)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let state = sim.lock();
    project_owner(&sim, &state, &headers, &project)?;
    let service_account = state.service_account(&account).ok_or_else(|| {
        GoogleError::not_found(format!("Service account {account} does not exist."))
    })?;
    let keys: Vec<_> = service_account
        .keys
        .iter()
        .map(|key| json!({"name": key_name(&service_account.email, &key.id), "keyAlgorithm": "KEY_ALG_RSA_2048", "keyType": "USER_MANAGED"}))
        .collect();
    ok(json!({ "keys": keys }))
}

async fn delete_key(
    Shared(sim): Shared<Arc<GoogleSim>>,
    Path((project, account, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    let mut state = sim.lock();
    project_owner(&sim, &state, &headers, &project)?;
    let service_account = state
        .service_accounts
        .iter_mut()
        .find(|sa| sa.email.eq_ignore_ascii_case(&account) || sa.unique_id == account)
        .ok_or_else(|| {
            GoogleError::not_found(format!("Service account {account} does not exist."))
        })?;
    let before = service_account.keys.len();
    service_account.keys.retain(|k| k.id != key);
    if service_account.keys.len() == before {
        return Err(GoogleError::not_found(format!(
            "Service account key {key} does not exist."
        )));
    }
    ok(json!({}))
}

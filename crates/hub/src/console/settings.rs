//! Settings: auto-sync, auto-prompt and its throttle, the prompt's text, the restricted users
//! (the REST API's settings change); the console's admins and their roles (owners only); and the REST API's
//! tokens, created (shown once), listed and revoked.

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use switchboard_store::AdminRole;

use super::auth::{check_new_admin, hash_password};
use super::connections::when;
use super::layout::{self, Nav};
use super::{ConsoleError, Fields, Session};
use crate::AppState;
use crate::admin::settings::{SettingsChange, change_settings};
use crate::settings::{MAX_PROMPT_THROTTLE_HOURS, SyncSettings};
use crate::tokens;
use switchboard_store::TokenPurpose;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/settings", get(show).post(save))
        .route("/console/settings/admins", post(add_admin))
        .route("/console/settings/admins/{id}/role", post(set_role))
        .route("/console/settings/admins/{id}/delete", post(delete_admin))
        .route("/console/settings/restricted", post(restrict))
        .route("/console/settings/restricted/remove", post(unrestrict))
        .route("/console/settings/tokens", post(create_token))
        .route("/console/settings/tokens/{id}/revoke", post(revoke_token))
}

fn back(state: &AppState, message: &str) -> Response {
    let mut response = Redirect::to("/console/settings").into_response();
    layout::flash(state, &mut response, message);
    response
}

fn owners_only(session: &Session) -> Result<(), ConsoleError> {
    if session.admin.role == AdminRole::Owner {
        Ok(())
    } else {
        Err(ConsoleError::forbidden("Only owners manage admins."))
    }
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let settings = SyncSettings::load(&state.store).await?;
    let admins = state.store.admins().await?;
    let api_tokens = state.store.api_tokens().await?;
    let owner = session.admin.role == AdminRole::Owner;
    let editable = session.can_change();
    let body = html! {
        h1 { "Settings" }
        section.card aria-labelledby="sync-settings" {
            h2 #sync-settings { "User sync" }
            form method="post" action="/console/settings" {
                input type="hidden" name="csrf" value=(session.csrf);
                fieldset disabled[!editable] {
                    legend { "Automatic actions" }
                    label.check { input type="checkbox" name="auto_sync" value="on" checked[settings.auto_sync]; "Auto-sync: represent every imported person on their secondary platforms, and reset leavers" }
                    label.check { input type="checkbox" name="auto_prompt" value="on" checked[settings.auto_prompt]; "Auto-prompt: prompt unsynced people when they message synced ones" }
                    label.check { input type="checkbox" name="prompt_own_accounts" value="on" checked[settings.prompt_own_accounts]; "Ask first: prompt people to link their own account even where the platform's admin grant lets the hub act as it at once" }
                    label.check { input type="checkbox" name="fallback_representations" value="on" checked[settings.fallback_representations]; "Fallback: where a platform cannot represent someone who has no account there, reach its users through the hub's own bot there instead (not native: messages arrive in each person's chat with the bot, labelled with the sender's name and platform)" }
                    label for="throttle" { "Prompt a person at most once every (hours)" }
                    input #throttle type="number" name="prompt_throttle_hours" min="1" max=(MAX_PROMPT_THROTTLE_HOURS) value=(settings.prompt_throttle_hours) required;
                    label for="prompt-text" { "Prompt text" }
                    textarea #prompt-text name="prompt_text" rows="3" cols="70" maxlength="1000" required { (settings.prompt_text) }
                }
                @if editable { div.buttons { button type="submit" { "Save settings" } } }
            }
        }
        section.card aria-labelledby="restricted-users" {
            h2 #restricted-users { "Restricted users" }
            p.hint { "What a restricted person writes is not relayed to other platforms; instead the hub tells them, at most once a day per conversation, that an admin restricted cross-platform messaging for them. Messages others send them are still delivered. They are not synced or prompted automatically." }
            @if settings.restricted_users.is_empty() {
                p { "Nobody is restricted." }
            } @else {
                ul.restricted aria-label="Restricted users" {
                    @for email in &settings.restricted_users {
                        li {
                            (email)
                            @if editable {
                                " "
                                form.inline method="post" action="/console/settings/restricted/remove" {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    input type="hidden" name="email" value=(email);
                                    button.small type="submit" aria-label={"Remove the restriction of " (email)} { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            @if editable {
                form method="post" action="/console/settings/restricted" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="restrict-email" { "Restrict a person (their e-mail address)" }
                    input #restrict-email type="email" name="email" autocomplete="off" required;
                    div.buttons { button type="submit" { "Restrict" } }
                }
            }
        }
        section.card aria-labelledby="admins" {
            h2 #admins { "Admins and roles" }
            p.hint { "Owners manage admins; admins change everything else; viewers only read." }
            table {
                thead { tr { th scope="col" { "E-mail" } th scope="col" { "Role" } th scope="col" { "Since" } th scope="col" { span.visually-hidden { "Remove" } } } }
                tbody {
                    @for admin in &admins {
                        tr {
                            td { (admin.email.as_str()) }
                            td {
                                @if owner {
                                    form.inline method="post" action={"/console/settings/admins/" (admin.id) "/role"} {
                                        input type="hidden" name="csrf" value=(session.csrf);
                                        select name="role" aria-label={"Role of " (admin.email.as_str())} {
                                            @for role in AdminRole::ALL {
                                                option value=(role.as_str()) selected[role == admin.role] { (role.as_str()) }
                                            }
                                        }
                                        button.small type="submit" { "Change" }
                                    }
                                } @else { (admin.role.as_str()) }
                            }
                            td { (when(admin.created_at)) }
                            td {
                                @if owner && admin.id != session.admin.id {
                                    form.inline method="post" action={"/console/settings/admins/" (admin.id) "/delete"} {
                                        input type="hidden" name="csrf" value=(session.csrf);
                                        button.small type="submit" aria-label={"Remove admin " (admin.email.as_str())} { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if owner {
                form method="post" action="/console/settings/admins" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    h3 { "Add an admin" }
                    label for="new-email" { "E-mail address" }
                    input #new-email type="email" name="email" autocomplete="off" required;
                    label for="new-password" { "First password (they sign in with it)" }
                    input #new-password type="password" name="password" autocomplete="new-password" minlength="12" required;
                    label for="new-role" { "Role" }
                    select #new-role name="role" {
                        option value="admin" { "admin" }
                        option value="viewer" { "viewer" }
                        option value="owner" { "owner" }
                    }
                    div.buttons { button type="submit" { "Add admin" } }
                }
            }
        }
        section.card aria-labelledby="tokens" {
            h2 #tokens { "API tokens" }
            p.hint { "Scripts and the command line reach the REST API (/api/v1) with these; an identity provider provisions users and groups through SCIM (/scim/v2) with a SCIM token. Neither kind opens the other. A token is shown once, when created; only its hash is kept." }
            @if api_tokens.is_empty() {
                p { "No API token yet." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "State" } } }
                    tbody {
                        @for token in &api_tokens {
                            tr {
                                td { (token.name) @if token.purpose == TokenPurpose::Scim { " (SCIM)" } }
                                td { (when(token.created_at)) }
                                td { (token.last_used_at.map(when).unwrap_or_else(|| "never".to_owned())) }
                                td {
                                    @if let Some(revoked) = token.revoked_at { "revoked " (when(revoked)) }
                                    @else if editable {
                                        form.inline method="post" action={"/console/settings/tokens/" (token.id) "/revoke"} {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            button.small type="submit" aria-label={"Revoke token " (token.name)} { "Revoke" }
                                        }
                                    } @else { "live" }
                                }
                            }
                        }
                    }
                }
            }
            @if editable {
                form method="post" action="/console/settings/tokens" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="token-name" { "New token's name (what it is for)" }
                    input #token-name type="text" name="name" required maxlength="100";
                    label.check { input type="checkbox" name="scim" value="on"; "A SCIM token, for an identity provider (not the REST API)" }
                    div.buttons { button type="submit" { "Create token" } }
                }
            }
        }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Settings,
        "Settings",
        body,
    ))
}

async fn save(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
) -> Result<Response, ConsoleError> {
    let hours = fields
        .get("prompt_throttle_hours")
        .unwrap_or_default()
        .trim()
        .parse::<i64>()
        .map_err(|_| {
            ConsoleError::new(
                StatusCode::BAD_REQUEST,
                "The throttle is a whole number of hours.",
            )
        })?;
    let change = SettingsChange {
        auto_sync: Some(fields.get("auto_sync") == Some("on")),
        auto_prompt: Some(fields.get("auto_prompt") == Some("on")),
        prompt_throttle_hours: Some(hours),
        prompt_text: fields.get("prompt_text").map(str::to_owned),
        prompt_own_accounts: Some(fields.get("prompt_own_accounts") == Some("on")),
        fallback_representations: Some(fields.get("fallback_representations") == Some("on")),
        restricted_users: None,
    };
    change_settings(&state, &session.caller(), change).await?;
    Ok(back(&state, "Settings saved."))
}

/// Adds a person to the restricted ones, by e-mail address (an unknown one is refused).
async fn restrict(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
) -> Result<Response, ConsoleError> {
    let email = fields.get("email").unwrap_or_default().trim().to_owned();
    let mut restricted = SyncSettings::load(&state.store).await?.restricted_users;
    restricted.push(email.clone());
    change_restricted(&state, &session, restricted).await?;
    Ok(back(&state, &format!("{email} is restricted.")))
}

async fn unrestrict(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
) -> Result<Response, ConsoleError> {
    let email = fields.get("email").unwrap_or_default().to_owned();
    let mut restricted = SyncSettings::load(&state.store).await?.restricted_users;
    restricted.retain(|e| *e != email);
    change_restricted(&state, &session, restricted).await?;
    Ok(back(&state, &format!("{email} is no longer restricted.")))
}

async fn change_restricted(
    state: &AppState,
    session: &Session,
    restricted: Vec<String>,
) -> Result<(), ConsoleError> {
    let change = SettingsChange {
        auto_sync: None,
        auto_prompt: None,
        prompt_throttle_hours: None,
        prompt_text: None,
        prompt_own_accounts: None,
        fallback_representations: None,
        restricted_users: Some(restricted),
    };
    change_settings(state, &session.caller(), change).await?;
    Ok(())
}

async fn add_admin(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
) -> Result<Response, ConsoleError> {
    owners_only(&session)?;
    let password = fields.get("password").unwrap_or_default().to_owned();
    let email = check_new_admin(fields.get("email").unwrap_or_default(), &password)
        .map_err(|problem| ConsoleError::new(StatusCode::UNPROCESSABLE_ENTITY, problem))?;
    let role = AdminRole::parse(fields.get("role").unwrap_or_default()).ok_or_else(|| {
        ConsoleError::new(
            StatusCode::BAD_REQUEST,
            "The role is owner, admin or viewer.",
        )
    })?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ConsoleError::internal())?
        .map_err(|_| ConsoleError::internal())?;
    let admin = state.store.create_admin(&email, &hash, role).await?;
    state
        .store
        .audit(
            &session.actor(),
            "admin.create",
            admin.email.as_str(),
            admin.role.as_str(),
            &session.source,
        )
        .await?;
    Ok(back(
        &state,
        &format!(
            "{} can sign in now, as {}.",
            admin.email,
            admin.role.as_str()
        ),
    ))
}

async fn set_role(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    owners_only(&session)?;
    let role = AdminRole::parse(fields.get("role").unwrap_or_default()).ok_or_else(|| {
        ConsoleError::new(
            StatusCode::BAD_REQUEST,
            "The role is owner, admin or viewer.",
        )
    })?;
    let admin = state.store.set_admin_role(&id, role).await?;
    state
        .store
        .audit(
            &session.actor(),
            "admin.set_role",
            admin.email.as_str(),
            role.as_str(),
            &session.source,
        )
        .await?;
    Ok(back(
        &state,
        &format!("{} is {} now.", admin.email, role.as_str()),
    ))
}

async fn delete_admin(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    owners_only(&session)?;
    if id == session.admin.id {
        return Err(ConsoleError::new(
            StatusCode::CONFLICT,
            "Owners cannot remove themselves; another owner can.",
        ));
    }
    let email = state
        .store
        .admins()
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .map(|a| a.email.to_string())
        .ok_or_else(|| ConsoleError::not_found("no such admin"))?;
    state.store.delete_admin(&id).await?;
    state
        .store
        .audit(
            &session.actor(),
            "admin.delete",
            &email,
            "",
            &session.source,
        )
        .await?;
    Ok(back(&state, &format!("{email} can no longer sign in.")))
}

async fn create_token(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Extension(fields): Extension<Fields>,
) -> Result<Response, ConsoleError> {
    let name = fields.get("name").unwrap_or_default().trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ConsoleError::new(
            StatusCode::BAD_REQUEST,
            "A token's name has 1 to 100 characters.",
        ));
    }
    let purpose = if fields.get("scim") == Some("on") {
        TokenPurpose::Scim
    } else {
        TokenPurpose::Api
    };
    let secret = tokens::issue(
        &state.store,
        &name,
        purpose,
        &session.actor(),
        &session.source,
    )
    .await?;
    let body = html! {
        h1 { "API token created" }
        div.notice role="status" {
            p { "The token " strong { (name) } " is shown only now. Copy it into the script's secret store:" }
            p { code #new-token { (secret) } }
        }
        p { a href="/console/settings" { "Back to Settings" } }
    };
    Ok(layout::page(
        &state,
        &headers,
        &session,
        Nav::Settings,
        "API token created",
        body,
    ))
}

async fn revoke_token(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    state.store.revoke_api_token(&id).await?;
    state
        .store
        .audit(&session.actor(), "token.revoke", &id, "", &session.source)
        .await?;
    Ok(back(
        &state,
        "The token is revoked; requests with it are refused from now on.",
    ))
}

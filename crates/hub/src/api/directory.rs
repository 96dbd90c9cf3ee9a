//! `/directory`: Directory Sync's scope, the groups whose members are the hub's people.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use std::collections::HashMap;

use serde_json::{Value, json};
use switchboard_store::{DirectoryRead, ScopeGroup};

use super::ApiError;
use crate::AppState;
use crate::admin::Caller;
use crate::admin::directory::{choosable, choose, preview};
use crate::scope::Preview;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/directory", get(show).put(change))
        .route("/directory/groups", get(list_choosable))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRef {
    source: String,
    id: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeChange {
    groups: Vec<GroupRef>,
}

#[derive(serde::Deserialize)]
struct ChangeParams {
    /// Say what the change would do, and do nothing.
    #[serde(default)]
    preview: bool,
}

fn preview_json(preview: &Preview) -> Value {
    json!({
        "in_scope": preview.in_scope,
        "leaving": preview.leaving.iter().map(|person| json!({
            "id": person.id.to_string(),
            "display_name": person.display_name,
            "email": person.email.as_str(),
        })).collect::<Vec<_>>(),
    })
}

/// The groups `groups`, each with its name where it lives and its last reading (groups in a
/// connection's directory).
async fn groups_json(state: &AppState, groups: &[ScopeGroup]) -> Result<Vec<Value>, ApiError> {
    let names: HashMap<ScopeGroup, String> = if groups.is_empty() {
        HashMap::new()
    } else {
        choosable(state)
            .await?
            .0
            .into_iter()
            .map(|found| (found.group, found.name))
            .collect()
    };
    let reads: HashMap<ScopeGroup, DirectoryRead> = state
        .store
        .directory_reads()
        .await?
        .into_iter()
        .map(|read| (read.group.clone(), read))
        .collect();
    Ok(groups
        .iter()
        .map(|group| {
            let mut value = json!({
                "source": group.source,
                "id": group.group_id,
                "name": names.get(group),
            });
            if let Some(read) = reads.get(group) {
                value["last_read"] = json!({
                    "at": read.read_at.unix_millis(),
                    "members": read.members,
                    "changed_at": read.changed_at.map(|at| at.unix_millis()),
                    "error": read.error,
                });
            }
            value
        })
        .collect())
}

async fn show(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let groups = state.store.directory_scope().await?;
    let now = preview(&state, &groups).await?;
    Ok(Json(json!({
        "groups": groups_json(&state, &groups).await?,
        "in_scope": now.in_scope,
    })))
}

/// Every group the admin may choose.
async fn list_choosable(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (groups, unreadable) = choosable(&state).await?;
    Ok(Json(json!({
        "groups": groups.iter().map(|found| json!({
            "source": found.group.source,
            "id": found.group.group_id,
            "name": found.name,
            "kind": found.kind,
            "platform": found.platform,
        })).collect::<Vec<_>>(),
        "unreadable": unreadable,
    })))
}

async fn change(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<ChangeParams>,
    body: Result<Json<ScopeChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(change) = body.map_err(|r| ApiError::bad_request("bad_body", r.body_text()))?;
    let groups: Vec<ScopeGroup> = change
        .groups
        .into_iter()
        .map(|group| ScopeGroup {
            source: group.source,
            group_id: group.id,
        })
        .collect();
    let done = if params.preview {
        preview(&state, &groups).await?
    } else {
        choose(&state, &caller, groups.clone()).await?
    };
    let mut answer = preview_json(&done);
    answer["groups"] = Value::Array(groups_json(&state, &groups).await?);
    answer["applied"] = Value::Bool(!params.preview);
    Ok(Json(answer))
}

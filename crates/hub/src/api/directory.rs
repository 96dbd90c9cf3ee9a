//! `/directory`: Directory Sync's scope, the groups whose members are the hub's people.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use switchboard_store::ScopeGroup;

use super::ApiError;
use crate::AppState;
use crate::admin::Caller;
use crate::admin::directory::{choose, preview};
use crate::scope::Preview;

pub fn routes() -> Router<AppState> {
    Router::new().route("/directory", get(show).put(change))
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

async fn groups_json(state: &AppState, groups: &[ScopeGroup]) -> Result<Vec<Value>, ApiError> {
    let mut named = Vec::with_capacity(groups.len());
    for group in groups {
        let name = state
            .store
            .scim_group(&group.group_id)
            .await?
            .map(|found| found.display_name);
        named.push(json!({"source": group.source, "id": group.group_id, "name": name}));
    }
    Ok(named)
}

async fn show(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let groups = state.store.directory_scope().await?;
    let now = preview(&state, &groups).await?;
    Ok(Json(json!({
        "groups": groups_json(&state, &groups).await?,
        "in_scope": now.in_scope,
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

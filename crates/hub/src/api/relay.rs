//! The relay as an admin sees it: what waits in the inbox and the outbox, and the copies given
//! up on (dead letters), each retryable.

use axum::extract::{Extension, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_store::DeadLetter;

use super::{ApiError, ApiPath};
use crate::AppState;
use crate::admin::Caller;
use crate::admin::relay::retry_dead_letter;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/relay", get(status))
        .route("/relay/dead-letters", get(dead_letters))
        .route("/relay/dead-letters/{id}/retry", post(retry))
}

async fn status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let counts = state.store.relay_counts().await?;
    Ok(Json(json!({
        "inbox": counts.inbox,
        "outbox": counts.outbox,
        "retrying": counts.retrying,
        "dead_letters": counts.dead_letters,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<i64>,
}

const MAX_PAGE: i64 = 500;

async fn dead_letters(
    State(state): State<AppState>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(page) = page.map_err(|r| ApiError::bad_request("bad_query", r.body_text()))?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let letters = state.store.dead_letters(limit).await?;
    Ok(Json(json!({
        "dead_letters": letters.iter().map(dead_letter_json).collect::<Vec<_>>(),
    })))
}

fn dead_letter_json(letter: &DeadLetter) -> Value {
    let item = &letter.item;
    json!({
        "id": item.id,
        "conversation_id": item.conversation.to_string(),
        "platform": item.platform.as_str(),
        "sender_id": item.sender.to_string(),
        "action": item.action.as_str(),
        "origin": {
            "platform": item.origin.platform.as_str(),
            "chat": item.origin.chat.as_str(),
            "message": item.origin.message,
        },
        "attempts": item.attempts,
        "error": letter.last_error,
        "dead_at": letter.dead_at.unix_millis(),
    })
}

async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("'{id}' is not a dead letter id")))?;
    retry_dead_letter(&state, &caller, id).await?;
    Ok(Json(json!({ "id": id, "retried": true })))
}

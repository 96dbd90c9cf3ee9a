//! The Users API at `/zoom/v2/users`: the account's users listed by status, paged by
//! `next_page_token`, and one user by id, e-mail address or `me`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};

use crate::state::{LIST_USERS_SCOPE, Status, User};
use crate::wire::{Answer, ZoomError, iso, ok, page, page_size, param};
use crate::{Category, ZoomSim};

pub fn routes() -> Router<Arc<ZoomSim>> {
    Router::new()
        .route("/zoom/v2/users", get(list))
        .route("/zoom/v2/users/{user_id}", get(get_one))
}

/// A user as the list shows them.
pub fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "display_name": user.display_name,
        "email": user.email,
        "type": 2,
        "role_id": user.role.id(),
        "status": user.status.name(),
        "verified": 1,
        "timezone": "UTC",
        "language": "en-US",
        "created_at": iso(user.created),
        "user_created_at": iso(user.created),
    })
}

async fn list(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Medium)?;
    caller.require_exactly(LIST_USERS_SCOPE)?;
    // The simulated account has no invited users waiting to join: `pending` lists nobody.
    let status = match param(&params, "status").unwrap_or("active") {
        "active" => Some(Status::Active),
        "inactive" => Some(Status::Inactive),
        "pending" => None,
        other => {
            return Err(ZoomError::invalid(format!(
                "Invalid field: status {other}; it must be active, inactive or pending."
            )));
        }
    };
    let size = page_size(&params, 30, 300)?;
    let all: Vec<&User> = state
        .users
        .iter()
        .filter(|u| Some(u.status) == status)
        .collect();
    let total = all.len();
    let scope = format!("users:{}", param(&params, "status").unwrap_or("active"));
    let (users, next) = page(all, &params, &scope, size)?;
    ok(json!({
        "next_page_token": next,
        "page_count": total.div_ceil(size),
        "page_number": 1,
        "page_size": size,
        "total_records": total,
        "users": users.into_iter().map(user_json).collect::<Vec<_>>(),
    }))
}

async fn get_one(
    Shared(sim): Shared<Arc<ZoomSim>>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Answer {
    let state = sim.lock();
    let caller = sim.caller(&state, &headers, Category::Light)?;
    let key = if user_id == "me" {
        caller.user.as_str()
    } else {
        user_id.as_str()
    };
    let user = state
        .user(key)
        .ok_or_else(|| ZoomError::no_user(&user_id))?;
    // Another user, even deactivated, is the account's data: an admin scope reads it.
    if user.id == caller.user {
        caller.require("user:read:user")?;
    } else {
        caller.require_exactly("user:read:user:admin")?;
    }
    let mut value = user_json(user);
    value["account_id"] = json!(crate::state::ACCOUNT_ID);
    value["jid"] = json!(user.jid);
    ok(value)
}

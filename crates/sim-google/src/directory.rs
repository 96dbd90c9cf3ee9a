//! The Admin SDK Directory API at `/google/admin/directory/v1/…`: users (list, get, delete,
//! guest creation) and groups with their members, for the domain's administrators.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::state::{CUSTOMER_ID, Principal, State, User};
use crate::wire::{Answer, GoogleError, form_value, ok, rfc3339};
use crate::{Caller, GoogleSim};
use switchboard_sim_kit::{GroupMember, MembershipRequest};

type Params = Query<Vec<(String, String)>>;

pub fn routes() -> Router<Arc<GoogleSim>> {
    Router::new()
        .route("/google/admin/directory/v1/users", get(list_users))
        .route(
            "/google/admin/directory/v1/users:createGuest",
            post(create_guest),
        )
        .route(
            "/google/admin/directory/v1/users/{user}",
            get(get_user).delete(delete_user),
        )
        .route("/google/admin/directory/v1/groups", get(list_groups))
        .route(
            "/google/admin/directory/v1/groups/{group}/members",
            get(list_members),
        )
}

/// Directory calls are an administrator's (signed in, or impersonated through domain-wide
/// delegation) with one of `scopes`.
pub(crate) fn admin(
    sim: &GoogleSim,
    state: &State,
    headers: &HeaderMap,
    scopes: &[&str],
) -> Result<Caller, GoogleError> {
    let caller = sim
        .caller(state, headers)
        .map_err(|e| e.reason("authError"))?;
    caller
        .require(scopes)
        .map_err(|e| e.reason("insufficientPermissions"))?;
    match &caller.principal {
        Principal::User(id) if state.user(id).is_some_and(|user| user.admin) => Ok(caller),
        _ => Err(
            GoogleError::denied("Not Authorized to access this resource/api").reason("forbidden"),
        ),
    }
}

const USER_READ: [&str; 2] = ["admin.directory.user", "admin.directory.user.readonly"];
const GROUP_READ: [&str; 4] = [
    "admin.directory.group",
    "admin.directory.group.readonly",
    "admin.directory.group.member",
    "admin.directory.group.member.readonly",
];

fn check_customer(params: &[(String, String)], state: &State) -> Result<(), GoogleError> {
    let customer = form_value(params, "customer");
    let domain = form_value(params, "domain");
    if customer.is_none() && domain.is_none() {
        return Err(GoogleError::invalid("Bad Request").reason("badRequest"));
    }
    if customer.is_some_and(|c| c != "my_customer" && c != CUSTOMER_ID)
        || domain.is_some_and(|d| !d.eq_ignore_ascii_case(&state.domain))
    {
        return Err(GoogleError::not_found("Resource Not Found: customer").reason("notFound"));
    }
    Ok(())
}

pub fn user_json(user: &User) -> Value {
    let mut value = json!({
        "kind": "admin#directory#user",
        "id": user.id,
        "etag": format!("\"{}\"", user.id),
        "primaryEmail": user.email,
        "name": {"givenName": user.given_name, "familyName": user.family_name, "fullName": user.full_name()},
        "isAdmin": user.admin,
        "isDelegatedAdmin": false,
        "suspended": user.suspended,
        "archived": false,
        "customerId": CUSTOMER_ID,
        "orgUnitPath": "/",
        "isMailboxSetup": !user.guest,
        "emails": [{"address": user.email, "primary": true}],
        "creationTime": rfc3339(user.created - user.created % 1000),
        "agreedToTerms": true,
        "isGuestUser": user.guest,
    });
    if user.guest {
        value["guestAccountInfo"] = json!({"primaryGuestEmail": user.email});
    }
    if user.suspended {
        value["suspensionReason"] = json!("ADMIN");
    }
    if user.deleted {
        value["deletionTime"] = json!(rfc3339(user.created));
    }
    value
}

/// `maxResults` (1 to `max`, default 100) and the opaque `pageToken` (an offset here).
pub(crate) fn page<T>(
    items: Vec<T>,
    params: &[(String, String)],
    max: usize,
) -> Result<(Vec<T>, Option<String>), GoogleError> {
    let size = match form_value(params, "maxResults") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                GoogleError::invalid(format!(
                    "Invalid value '{text}'. Values must be within the range: [1, {max}]"
                ))
                .reason("invalid")
            })?,
        None => 100.min(max),
    };
    let start = match form_value(params, "pageToken").filter(|t| !t.is_empty()) {
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| GoogleError::invalid("Invalid Input: pageToken").reason("invalid"))?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    Ok((
        page,
        (start + size < total).then(|| (start + size).to_string()),
    ))
}

/// The `query` of a users list: `email:…`, `givenName:…`, `familyName:…`, `isSuspended=…`,
/// `isAdmin=…`, or a bare word matched against name and e-mail (a trailing `*` is a prefix).
fn matches_query(user: &User, query: &str) -> bool {
    query.split_whitespace().all(|term| {
        let matches = |field: &str, value: &str| {
            let field = field.to_lowercase();
            let value = value.trim_matches(['\'', '"']).to_lowercase();
            match value.strip_suffix('*') {
                Some(prefix) => field.starts_with(prefix),
                None => field == value || field.split(['@', ' ']).next() == Some(value.as_str()),
            }
        };
        if let Some((key, value)) = term.split_once([':', '=']) {
            match key {
                "email" => matches(&user.email, value),
                "givenName" => matches(&user.given_name, value),
                "familyName" => matches(&user.family_name, value),
                "name" => {
                    matches(&user.full_name(), value)
                        || matches(&user.given_name, value)
                        || matches(&user.family_name, value)
                }
                "isSuspended" => user.suspended.to_string() == value,
                "isAdmin" => user.admin.to_string() == value,
                _ => false,
            }
        } else {
            let term = term.to_lowercase();
            user.email.contains(&term) || user.full_name().to_lowercase().contains(&term)
        }
    })
}

async fn list_users(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Answer {
    let state = sim.lock();
    admin(&sim, &state, &headers, &USER_READ)?;
    check_customer(&params, &state)?;
    let show_deleted = form_value(&params, "showDeleted") == Some("true");
    let query = form_value(&params, "query").unwrap_or_default();
    // Paged before the users are written out: an import reads 100,000 users a page at a time.
    let users: Vec<&User> = state
        .users
        .iter()
        .filter(|u| u.deleted == show_deleted)
        .filter(|u| matches_query(u, query))
        .collect();
    let (users, next) = page(users, &params, 500)?;
    let users: Vec<Value> = users.into_iter().map(user_json).collect();
    let mut answer = json!({"kind": "admin#directory#users", "etag": "\"users\"", "users": users});
    if let Some(next) = next {
        answer["nextPageToken"] = json!(next);
    }
    ok(answer)
}

fn user_not_found() -> GoogleError {
    GoogleError::not_found("Resource Not Found: userKey").reason("notFound")
}

async fn get_user(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Answer {
    let state = sim.lock();
    admin(&sim, &state, &headers, &USER_READ)?;
    state
        .user(&key)
        .map(user_json)
        .map_or_else(|| Err(user_not_found()), ok)
}

async fn delete_user(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Answer {
    {
        let state = sim.lock();
        admin(&sim, &state, &headers, &["admin.directory.user"])?;
    }
    retire(&sim, &key, true).map_err(|_| user_not_found())?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// Suspends or deletes a user: their tokens stop working, and the Workspace Events
/// subscriptions they authorised are suspended. Answers their id.
pub fn retire(sim: &GoogleSim, key: &str, delete: bool) -> Result<String, String> {
    let mut state = sim.lock();
    let user = state
        .user_mut(key)
        .ok_or_else(|| format!("no user {key}"))?;
    if delete {
        user.deleted = true;
    } else {
        user.suspended = true;
    }
    let (id, email) = (user.id.clone(), user.email.clone());
    crate::events::suspend_where(sim, &mut state, "USER_AUTHORIZATION_FAILURE", |s| {
        s.authority == id
    });
    crate::reports::record(
        sim,
        &mut state,
        "USER_SETTINGS",
        if delete {
            "DELETE_USER"
        } else {
            "SUSPEND_USER"
        },
        vec![("USER_EMAIL".to_owned(), email)],
    );
    Ok(id)
}

/// An administrator adds a member to a group, or removes one (a user by address, or a group
/// to nest), which the Reports API records as `ADD_GROUP_MEMBER` / `REMOVE_GROUP_MEMBER`.
pub fn change_group_membership(
    sim: &GoogleSim,
    request: &MembershipRequest,
) -> Result<String, String> {
    let mut state = sim.lock();
    let group_index = state
        .groups
        .iter()
        .position(|g| g.id == request.group || g.email.eq_ignore_ascii_case(&request.group))
        .ok_or_else(|| format!("no group {}", request.group))?;
    let (member_id, member_email) = match &request.member {
        GroupMember::User(email) => {
            let user = state
                .user(email)
                .ok_or_else(|| format!("no user {email}"))?;
            (user.id.clone(), user.email.clone())
        }
        GroupMember::Group(key) => {
            let nested = state
                .groups
                .iter()
                .find(|g| &g.id == key || g.email.eq_ignore_ascii_case(key))
                .ok_or_else(|| format!("no group {key}"))?;
            if nested.id == state.groups[group_index].id {
                return Err("a group cannot be nested in itself".to_owned());
            }
            (nested.id.clone(), nested.email.clone())
        }
    };
    let group = &mut state.groups[group_index];
    let present = group.members.contains(&member_id);
    if present == request.add {
        return Err(format!(
            "{member_email} is {} a member of {}",
            if request.add { "already" } else { "not" },
            group.email
        ));
    }
    if request.add {
        group.members.push(member_id.clone());
    } else {
        group.members.retain(|member| member != &member_id);
    }
    let group_email = group.email.clone();
    crate::reports::record(
        sim,
        &mut state,
        "GROUP_SETTINGS",
        if request.add {
            "ADD_GROUP_MEMBER"
        } else {
            "REMOVE_GROUP_MEMBER"
        },
        vec![
            ("USER_EMAIL".to_owned(), member_email),
            ("GROUP_EMAIL".to_owned(), group_email),
        ],
    );
    Ok(member_id)
}

async fn create_guest(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        GoogleError::invalid(format!("Invalid JSON payload received. {e}")).reason("parseError")
    })?;
    let mut state = sim.lock();
    admin(&sim, &state, &headers, &["admin.directory.user"])?;
    if request["customer"]
        .as_str()
        .is_some_and(|c| c != CUSTOMER_ID && c != "my_customer")
    {
        return Err(GoogleError::not_found("Resource Not Found: customer").reason("notFound"));
    }
    let email = request["primaryGuestEmail"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let Some((local, domain)) = email
        .split_once('@')
        .filter(|(l, d)| !l.is_empty() && d.contains('.'))
    else {
        return Err(GoogleError::invalid("Invalid Input: primaryGuestEmail").reason("invalid"));
    };
    if domain.eq_ignore_ascii_case(&state.domain) {
        return Err(
            GoogleError::invalid("A guest's e-mail must be outside the domain.").reason("invalid"),
        );
    }
    if state.user(&email).is_some() {
        return Err(GoogleError::conflict("Entity already exists.").reason("duplicate"));
    }
    let mut words = local
        .split(['.', '_', '-'])
        .filter(|w| !w.is_empty())
        .map(capitalised);
    let given = words.next().unwrap_or_default();
    let family = words.collect::<Vec<_>>().join(" ");
    let user = state.add_user(&email, &given, &family, true);
    ok(user_json(user))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

async fn list_groups(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Answer {
    let state = sim.lock();
    admin(&sim, &state, &headers, &GROUP_READ)?;
    let groups: Vec<Value> = match form_value(&params, "userKey") {
        Some(key) => {
            let user = state.user(key).ok_or_else(user_not_found)?;
            state
                .groups
                .iter()
                .filter(|g| g.members.contains(&user.id))
                .map(group_json)
                .collect()
        }
        None => {
            check_customer(&params, &state)?;
            state.groups.iter().map(group_json).collect()
        }
    };
    let (groups, next) = page(groups, &params, 200)?;
    let mut answer =
        json!({"kind": "admin#directory#groups", "etag": "\"groups\"", "groups": groups});
    if let Some(next) = next {
        answer["nextPageToken"] = json!(next);
    }
    ok(answer)
}

fn group_json(group: &crate::state::Group) -> Value {
    json!({
        "kind": "admin#directory#group",
        "id": group.id,
        "etag": format!("\"{}\"", group.id),
        "email": group.email,
        "name": group.name,
        "directMembersCount": group.members.len().to_string(),
        "description": "",
        "adminCreated": true,
    })
}

async fn list_members(
    Shared(sim): Shared<Arc<GoogleSim>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(params): Params,
) -> Answer {
    let state = sim.lock();
    admin(&sim, &state, &headers, &GROUP_READ)?;
    let group = state
        .groups
        .iter()
        .find(|g| g.id == key || g.email.eq_ignore_ascii_case(&key))
        .ok_or_else(|| GoogleError::not_found("Resource Not Found: groupKey").reason("notFound"))?;
    let derived = form_value(&params, "includeDerivedMembership") == Some("true");
    let mut members: Vec<Value> = Vec::new();
    collect_members(
        &state,
        &group.members,
        derived,
        &mut members,
        &mut Vec::new(),
    );
    let (members, next) = page(members, &params, 200)?;
    let mut answer =
        json!({"kind": "admin#directory#members", "etag": "\"members\"", "members": members});
    if let Some(next) = next {
        answer["nextPageToken"] = json!(next);
    }
    ok(answer)
}

/// A group's members; with `derived`, the users of nested groups instead of the groups.
fn collect_members(
    state: &State,
    keys: &[String],
    derived: bool,
    out: &mut Vec<Value>,
    seen: &mut Vec<String>,
) {
    for key in keys {
        if seen.contains(key) {
            continue;
        }
        seen.push(key.clone());
        if let Some(user) = state.users.iter().find(|u| &u.id == key && !u.deleted) {
            out.push(json!({
                "kind": "admin#directory#member", "id": user.id, "email": user.email,
                "role": "MEMBER", "type": "USER", "status": if user.suspended { "SUSPENDED" } else { "ACTIVE" },
                "etag": format!("\"{}\"", user.id),
            }));
        } else if let Some(group) = state.groups.iter().find(|g| &g.id == key) {
            if derived {
                collect_members(state, &group.members, derived, out, seen);
            } else {
                out.push(json!({
                    "kind": "admin#directory#member", "id": group.id, "email": group.email,
                    "role": "MEMBER", "type": "GROUP", "status": "ACTIVE", "etag": format!("\"{}\"", group.id),
                }));
            }
        }
    }
}

//! The directory: users (list, filter, get, create, delete, delta), groups and their members,
//! teams and their members, joined teams, and B2B invitations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use switchboard_sim_kit::{GroupMember, Limit, MembershipRequest};

use crate::MicrosoftSim;
use crate::entra::{Caller, authenticate};
use crate::odata::{
    Filter, GraphError, GraphResult, QueryOptions, decode_token, encode_token, iso, json_response,
    no_content, now_ms, parse_body, select, wants_count,
};
use crate::state::{
    CUSTOMER_TENANT_ID, E3_SKU_ID, Group, GroupKind, SEEDED_PASSWORD, State, Tenant, User, iso_opt,
};
use crate::subscriptions::{Event, publish, remove_for_user};

/// The properties `GET /users` returns when no `$select` is given.
const USER_DEFAULT: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];
/// All that `User.ReadBasic.All` may see.
const USER_BASIC: [&str; 6] = [
    "displayName",
    "givenName",
    "id",
    "mail",
    "surname",
    "userPrincipalName",
];
const GROUP_DEFAULT: [&str; 14] = [
    "id",
    "membershipRule",
    "membershipRuleProcessingState",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "resourceProvisioningOptions",
    "securityEnabled",
    "visibility",
    "renewedDateTime",
];

const READ_USERS_DELEGATED: [&str; 5] = [
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const READ_USERS_APP: [&str; 4] = [
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const FULL_USER_READ: [&str; 4] = [
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const READ_GROUPS: [&str; 5] = [
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const WRITE_USERS: [&str; 2] = ["User.ReadWrite.All", "Directory.ReadWrite.All"];

/// Entra's global budget: 130,000 requests per 10 s per app.
const DIRECTORY_LIMIT: Limit = Limit {
    per_second: 13_000.0,
    burst: 130_000.0,
};
/// `POST /invitations`: 150 requests per 5 s per tenant.
const INVITATION_LIMIT: Limit = Limit {
    per_second: 30.0,
    burst: 150.0,
};

fn directory_call(sim: &MicrosoftSim, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let caller = authenticate(sim, headers)?;
    sim.limit(&format!("graph:{}", caller.app_id), DIRECTORY_LIMIT)?;
    Ok(caller)
}

fn basic_only(caller: &Caller) -> bool {
    caller.user_id.is_some() && !caller.has(&FULL_USER_READ, &[])
}

pub fn user_object(user: &User, tenant_id: &str) -> Map<String, Value> {
    let mut object = Map::new();
    let mut put = |name: &str, value: Value| {
        object.insert(name.to_owned(), value);
    };
    put("id", json!(user.id));
    put("businessPhones", json!([]));
    put("displayName", json!(user.display_name));
    put("givenName", json!(user.given_name));
    put("jobTitle", json!(user.job_title));
    put("mail", json!(user.mail));
    put("mobilePhone", Value::Null);
    put("officeLocation", Value::Null);
    put("preferredLanguage", json!("en-US"));
    put("surname", json!(user.surname));
    put("userPrincipalName", json!(user.upn));
    put("accountEnabled", json!(user.account_enabled));
    put("userType", json!(user.user_type));
    put("department", json!(user.department));
    put("companyName", Value::Null);
    put("proxyAddresses", json!(user.proxy_addresses));
    put("otherMails", json!(user.other_mails));
    put(
        "assignedLicenses",
        if user.licensed {
            json!([{"disabledPlans": [], "skuId": E3_SKU_ID}])
        } else {
            json!([])
        },
    );
    put("creationType", json!(user.creation_type));
    put("externalUserState", json!(user.external_user_state));
    put(
        "externalUserStateChangeDateTime",
        iso_opt(user.external_state_changed_ms),
    );
    put("createdDateTime", json!(iso(user.created_ms)));
    put("deletedDateTime", iso_opt(user.deleted_ms));
    put(
        "mailNickname",
        json!(user.upn.split('@').next().unwrap_or_default()),
    );
    put(
        "identities",
        json!([{
            "signInType": "userPrincipalName",
            "issuer": user.upn.rsplit('@').next().unwrap_or_default(),
            "issuerAssignedId": user.upn,
        }]),
    );
    put("onPremisesSyncEnabled", Value::Null);
    put("usageLocation", json!("US"));
    put("tenantId", json!(tenant_id));
    object
}

/// A user as the caller may see it, with the requested properties.
fn user_view(caller: &Caller, user: &User, options: &QueryOptions) -> Result<Value, GraphError> {
    let mut view = select(
        user_object(user, &caller.tenant_id),
        options.select.as_deref(),
        &USER_DEFAULT,
        "microsoft.graph.user",
    )?;
    view.as_object_mut().map(|object| object.remove("tenantId"));
    if basic_only(caller)
        && let Some(object) = view.as_object_mut()
    {
        object.retain(|name, _| name.starts_with('@') || USER_BASIC.contains(&name.as_str()));
    }
    Ok(view)
}

fn context_url(sim: &MicrosoftSim, set: &str, options: &QueryOptions) -> String {
    match &options.select {
        Some(fields) => format!("{}/$metadata#{set}({})", sim.graph_base(), fields.join(",")),
        None => format!("{}/$metadata#{set}", sim.graph_base()),
    }
}

fn position(options: &QueryOptions) -> Result<usize, GraphError> {
    match &options.skiptoken {
        None => Ok(0),
        Some(token) => decode_token(token)
            .and_then(|text| text.strip_prefix("p:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| GraphError::directory_bad_request("Invalid $skiptoken value.")),
    }
}

/// One page of a filtered collection: the items and where the next page starts, if any.
fn page<T>(
    items: &[T],
    start: usize,
    size: usize,
    keep: impl Fn(&T) -> Result<bool, GraphError>,
) -> Result<(Vec<&T>, Option<usize>), GraphError> {
    let mut found = Vec::with_capacity(size.min(items.len()));
    for (index, item) in items.iter().enumerate().skip(start) {
        if !keep(item)? {
            continue;
        }
        if found.len() == size {
            return Ok((found, Some(index)));
        }
        found.push(item);
    }
    Ok((found, None))
}

fn collection(
    context: String,
    value: Vec<Value>,
    next: Option<String>,
    count: Option<usize>,
) -> Value {
    let mut body = json!({"@odata.context": context});
    if let Some(count) = count {
        body["@odata.count"] = json!(count);
    }
    if let Some(next) = next {
        body["@odata.nextLink"] = json!(next);
    }
    body["value"] = json!(value);
    body
}

fn tenant_of<'a>(state: &'a State, caller: &Caller) -> Result<&'a Tenant, GraphError> {
    state
        .tenant(&caller.tenant_id)
        .ok_or_else(|| GraphError::invalid_token("Access token validation failure."))
}

pub async fn list_users(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    caller.require_directory(&READ_USERS_DELEGATED, &READ_USERS_APP)?;
    let options = QueryOptions::parse(&pairs)?;
    let size = options.page_size(100, 999)?;
    let filter = options.filter.as_deref().map(Filter::parse).transpose()?;
    let count = wants_count(&options, &headers)?;
    let start = position(&options)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, &caller)?;
    let keep = |user: &User| -> Result<bool, GraphError> {
        if !user.active() {
            return Ok(false);
        }
        filter
            .as_ref()
            .map_or(Ok(true), |filter| filter.matches(user))
    };
    if let Some(filter) = &filter
        && let Some(sample) = tenant.users.first()
    {
        filter.matches(sample)?;
    }
    let (users, next) = page(&tenant.users, start, size, keep)?;
    let value = users
        .into_iter()
        .map(|user| user_view(&caller, user, &options))
        .collect::<Result<Vec<_>, _>>()?;
    let total = if count {
        let mut total = 0;
        for user in &tenant.users {
            if keep(user)? {
                total += 1;
            }
        }
        Some(total)
    } else {
        None
    };
    let next = next.map(|index| {
        options.next_link(
            &format!("{}/users", sim.graph_base()),
            &encode_token(&format!("p:{index}")),
        )
    });
    Ok(json_response(
        StatusCode::OK,
        &collection(context_url(&sim, "users", &options), value, next, total),
    ))
}

fn single_user(
    sim: &MicrosoftSim,
    caller: &Caller,
    key: &str,
    pairs: &[(String, String)],
) -> GraphResult {
    let options = QueryOptions::parse(pairs)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, caller)?;
    let user = tenant
        .user(key)
        .ok_or_else(|| GraphError::directory_not_found(key))?;
    let own = caller.user_id.as_deref() == Some(user.id.as_str());
    if !(own && caller.has(&["User.Read", "User.ReadWrite"], &[])) {
        caller.require_directory(&READ_USERS_DELEGATED, &READ_USERS_APP)?;
    }
    let mut view = if own {
        select(
            user_object(user, &caller.tenant_id),
            options.select.as_deref(),
            &USER_DEFAULT,
            "microsoft.graph.user",
        )?
    } else {
        user_view(caller, user, &options)?
    };
    if let Some(object) = view.as_object_mut() {
        object.remove("tenantId");
        object.insert(
            "@odata.context".to_owned(),
            json!(format!("{}/$entity", context_url(sim, "users", &options))),
        );
    }
    Ok(json_response(StatusCode::OK, &view))
}

pub async fn get_user(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    single_user(&sim, &caller, &key, &pairs)
}

pub async fn me(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    let user_id = caller.user()?.to_owned();
    single_user(&sim, &caller, &user_id, &pairs)
}

fn text<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

fn invalid_property(name: &str, resource: &str) -> GraphError {
    GraphError::directory_bad_request(format!(
        "Invalid value specified for property '{name}' of resource '{resource}'."
    ))
}

pub async fn create_user(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    caller.require_directory(&WRITE_USERS, &WRITE_USERS)?;
    let body = parse_body(&body)?;
    let display_name =
        text(&body, "displayName").ok_or_else(|| invalid_property("displayName", "User"))?;
    text(&body, "mailNickname").ok_or_else(|| invalid_property("mailNickname", "User"))?;
    let upn = text(&body, "userPrincipalName")
        .ok_or_else(|| invalid_property("userPrincipalName", "User"))?;
    let enabled = body
        .get("accountEnabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| invalid_property("accountEnabled", "User"))?;
    let password = body
        .get("passwordProfile")
        .and_then(|profile| text(profile, "password"))
        .ok_or_else(|| invalid_property("passwordProfile", "User"))?;
    let mail = text(&body, "mail").map(str::to_owned);
    let other_mails: Vec<String> = body
        .get("otherMails")
        .and_then(Value::as_array)
        .map(|mails| {
            mails
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let (tenant_id, user_id, answer) = {
        let mut state = sim.lock();
        let delegated_admin = match &caller.user_id {
            Some(user_id) => tenant_of(&state, &caller)?
                .user(user_id)
                .is_some_and(|user| user.admin),
            None => true,
        };
        if !delegated_admin {
            return Err(GraphError::insufficient_privileges());
        }
        let tenant = state
            .tenant_mut(&caller.tenant_id)
            .ok_or_else(|| GraphError::invalid_token("Access token validation failure."))?;
        let domain_ok = upn.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.eq_ignore_ascii_case(&tenant.domain)
        });
        if !domain_ok {
            return Err(GraphError::directory_bad_request(
                "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
            ));
        }
        if tenant
            .users
            .iter()
            .any(|user| user.upn.eq_ignore_ascii_case(upn))
        {
            return Err(GraphError::directory_bad_request(
                "Another object with the same value for property userPrincipalName already exists.",
            ));
        }
        let now = now_ms();
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            upn: upn.to_owned(),
            proxy_addresses: mail.iter().map(|mail| format!("SMTP:{mail}")).collect(),
            mail,
            display_name: display_name.to_owned(),
            given_name: text(&body, "givenName").map(str::to_owned),
            surname: text(&body, "surname").map(str::to_owned),
            job_title: text(&body, "jobTitle").map(str::to_owned),
            department: text(&body, "department").map(str::to_owned),
            user_type: "Member".to_owned(),
            account_enabled: enabled,
            other_mails,
            password: Some(password.to_owned()),
            created_ms: now,
            ..User::default()
        };
        let index = tenant.add_user(user);
        let user = &tenant.users[index];
        let mut answer = user_object(user, &tenant.id);
        answer.remove("tenantId");
        answer.insert(
            "@odata.context".to_owned(),
            json!(format!("{}/$metadata#users/$entity", sim.graph_base())),
        );
        (tenant.id.clone(), user.id.clone(), answer)
    };
    publish(&sim, vec![Event::user(&tenant_id, &user_id, "updated")]);
    Ok(json_response(StatusCode::CREATED, &Value::Object(answer)))
}

pub async fn delete_user(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    let allowed = [
        "User.ReadWrite.All",
        "User.DeleteRestore.All",
        "Directory.ReadWrite.All",
    ];
    caller.require_directory(&allowed, &allowed)?;
    let (tenant_id, user_id, groups) = {
        let mut state = sim.lock();
        if let Some(me) = &caller.user_id
            && !tenant_of(&state, &caller)?
                .user(me)
                .is_some_and(|user| user.admin)
        {
            return Err(GraphError::insufficient_privileges());
        }
        let tenant = state
            .tenant_mut(&caller.tenant_id)
            .ok_or_else(|| GraphError::invalid_token("Access token validation failure."))?;
        let index = tenant
            .user_index(&key)
            .ok_or_else(|| GraphError::directory_not_found(&key))?;
        let tenant_id = tenant.id.clone();
        let (user_id, groups) = soft_delete_user(&mut state, &tenant_id, index);
        (tenant_id, user_id, groups)
    };
    announce_deletion(&sim, &tenant_id, &user_id, &groups);
    Ok(no_content())
}

/// Deletes the user at `index` of a tenant as Entra does: the object goes to deleted items,
/// leaves every group, and its refresh tokens stop working. Answers its id and the groups it
/// left, for [`announce_deletion`] once the state is unlocked.
fn soft_delete_user(state: &mut State, tenant_id: &str, index: usize) -> (String, Vec<String>) {
    let Some(tenant) = state.tenant_mut(tenant_id) else {
        return (String::new(), Vec::new());
    };
    let user_id = tenant.users[index].id.clone();
    tenant.users[index].deleted_ms = Some(now_ms());
    tenant.touch(index);
    let groups: Vec<String> = tenant
        .groups
        .iter()
        .filter(|group| group.members.contains(&user_id))
        .map(|group| group.id.clone())
        .collect();
    for group in &groups {
        tenant.change_membership(group, &user_id, false);
    }
    state
        .refresh_tokens
        .retain(|_, grant| !(grant.tenant_id == tenant_id && grant.user_id == user_id));
    (user_id, groups)
}

fn announce_deletion(sim: &MicrosoftSim, tenant_id: &str, user_id: &str, groups: &[String]) {
    let mut events = vec![Event::user(tenant_id, user_id, "deleted")];
    events.extend(
        groups
            .iter()
            .map(|group| Event::member_removed(tenant_id, group, user_id)),
    );
    publish(sim, events);
    remove_for_user(sim, tenant_id, user_id);
}

/// An administrator creates a member of the customer's tenant (in the Entra admin centre) and
/// adds them to `teams`. Answers the new user's object id.
pub fn add_member(
    sim: &MicrosoftSim,
    email: &str,
    display_name: &str,
    teams: &[String],
) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    let (tenant_id, user_id) = {
        let mut state = sim.lock();
        let tenant = state
            .tenant_mut(CUSTOMER_TENANT_ID)
            .ok_or("the customer tenant is missing")?;
        let domain_ok = email.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.eq_ignore_ascii_case(&tenant.domain)
        });
        if !domain_ok {
            return Err(format!(
                "{email} is not an address of the tenant's domain {}",
                tenant.domain
            ));
        }
        if tenant
            .users
            .iter()
            .any(|u| u.active() && u.answers_to(&email))
        {
            return Err(format!("{email} is already a user of the tenant"));
        }
        if let Some(unknown) = teams
            .iter()
            .find(|id| !tenant.group(id).is_some_and(Group::is_team))
        {
            return Err(format!("no team {unknown}"));
        }
        let (given, surname) = display_name
            .trim()
            .split_once(' ')
            .map_or((display_name.trim(), None), |(g, s)| (g, Some(s)));
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            upn: email.clone(),
            mail: Some(email.clone()),
            proxy_addresses: vec![format!("SMTP:{email}")],
            display_name: display_name.trim().to_owned(),
            given_name: Some(given.to_owned()),
            surname: surname.map(str::to_owned),
            job_title: Some("Employee".to_owned()),
            user_type: "Member".to_owned(),
            account_enabled: true,
            licensed: true,
            password: Some(SEEDED_PASSWORD.to_owned()),
            created_ms: now_ms(),
            ..User::default()
        };
        let user_id = user.id.clone();
        tenant.add_user(user);
        for team in teams {
            tenant.change_membership(team, &user_id, true);
        }
        (tenant.id.clone(), user_id)
    };
    publish(sim, vec![Event::user(&tenant_id, &user_id, "updated")]);
    Ok(user_id)
}

/// A member of the customer's tenant leaves: removed from one team when `team` is given (they
/// stay in the tenant), else deleted from the tenant as `DELETE /users/{id}` does.
pub fn remove_member(
    sim: &MicrosoftSim,
    email: &str,
    team: Option<&str>,
) -> Result<String, String> {
    let (user_id, groups) = {
        let mut state = sim.lock();
        let index = state
            .sign_in(CUSTOMER_TENANT_ID, email)
            .ok_or_else(|| format!("no Teams user {email}"))?;
        let tenant = state
            .tenant_mut(CUSTOMER_TENANT_ID)
            .ok_or("the customer tenant is missing")?;
        let user_id = tenant.users[index].id.clone();
        match team {
            Some(team) => {
                if !tenant.group(team).is_some_and(Group::is_team) {
                    return Err(format!("no team {team}"));
                }
                if !tenant.change_membership(team, &user_id, false) {
                    return Err(format!("{email} is not a member of team {team}"));
                }
                (user_id, None)
            }
            None => {
                let (user_id, groups) = soft_delete_user(&mut state, CUSTOMER_TENANT_ID, index);
                (user_id, Some(groups))
            }
        }
    };
    match (groups, team) {
        (Some(groups), _) => announce_deletion(sim, CUSTOMER_TENANT_ID, &user_id, &groups),
        (None, Some(team)) => publish(
            sim,
            vec![Event::member_removed(CUSTOMER_TENANT_ID, team, &user_id)],
        ),
        (None, None) => {}
    }
    Ok(user_id)
}

/// Delta tokens carry the round's bounds and `$select`, opaque to clients as Graph's are.
#[derive(serde::Serialize, serde::Deserialize)]
struct DeltaCursor {
    since: u64,
    upto: u64,
    position: usize,
    select: Option<Vec<String>>,
}

fn decode_cursor(token: &str) -> Option<DeltaCursor> {
    decode_token(token).and_then(|text| serde_json::from_str(&text).ok())
}

fn encode_cursor(cursor: &DeltaCursor) -> String {
    encode_token(&serde_json::to_string(cursor).unwrap_or_default())
}

pub async fn users_delta(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    caller.require_directory(&FULL_USER_READ, &FULL_USER_READ)?;
    let mut options = QueryOptions::parse(&pairs)?;
    let size = options.page_size(100, 999)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, &caller)?;
    let cursor = delta_cursor(&options, tenant.change_seq)?;
    options.select.clone_from(&cursor.select);
    let initial = cursor.since == 0;
    let keep = |user: &User| -> Result<bool, GraphError> {
        Ok(user.changed_seq > cursor.since
            && user.changed_seq <= cursor.upto
            && (user.active() || !initial))
    };
    let (users, next) = page(&tenant.users, cursor.position, size, keep)?;
    let mut value = Vec::with_capacity(users.len());
    for user in users {
        if user.active() {
            let mut view = user_view(&caller, user, &options)?;
            view["id"] = json!(user.id);
            value.push(view);
        } else {
            value.push(json!({"@odata.type": "#microsoft.graph.user", "id": user.id, "@removed": {"reason": "changed"}}));
        }
    }
    let mut body = json!({"@odata.context": context_url(&sim, "users", &options)});
    link_delta_page(
        &mut body,
        &format!("{}/users/delta", sim.graph_base()),
        next,
        cursor,
    );
    body["value"] = json!(value);
    Ok(json_response(StatusCode::OK, &body))
}

/// The round's cursor where a delta round's state is read from: a `$skiptoken` continues it,
/// a `$deltatoken` starts the next round after it, neither starts from nothing.
fn delta_cursor(options: &QueryOptions, change_seq: u64) -> Result<DeltaCursor, GraphError> {
    let bad_token = || GraphError::bad_request("Invalid delta token or skip token.");
    Ok(if let Some(token) = &options.skiptoken {
        decode_cursor(token).ok_or_else(bad_token)?
    } else if let Some(token) = &options.deltatoken {
        let previous = decode_cursor(token).ok_or_else(bad_token)?;
        DeltaCursor {
            since: previous.upto,
            upto: change_seq,
            position: 0,
            select: previous.select,
        }
    } else {
        DeltaCursor {
            since: 0,
            upto: change_seq,
            position: 0,
            select: options.select.clone(),
        }
    })
}

/// The `@odata.nextLink` of a page that has a next one, else the round's `@odata.deltaLink`.
fn link_delta_page(body: &mut Value, base: &str, next: Option<usize>, cursor: DeltaCursor) {
    match next {
        Some(position) => {
            let token = encode_cursor(&DeltaCursor { position, ..cursor });
            body["@odata.nextLink"] = json!(crate::odata::with_query(
                base,
                &[("$skiptoken".to_owned(), token)]
            ));
        }
        None => {
            let token = encode_cursor(&DeltaCursor {
                since: cursor.upto,
                position: 0,
                ..cursor
            });
            body["@odata.deltaLink"] = json!(crate::odata::with_query(
                base,
                &[("$deltatoken".to_owned(), token)]
            ));
        }
    }
}

/// `GET /groups/delta`: the first round lists every group with its direct members in
/// `members@delta`; later rounds list the groups whose members changed, with who was added
/// and who removed (`@removed`).
pub async fn groups_delta(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    caller.require_directory(&READ_GROUPS, &READ_GROUPS)?;
    let mut options = QueryOptions::parse(&pairs)?;
    let size = options.page_size(100, 999)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, &caller)?;
    let cursor = delta_cursor(&options, tenant.change_seq)?;
    // `members` is no property to select but asks for `members@delta`, which an unselected
    // round carries too.
    let with_members = cursor
        .select
        .as_ref()
        .is_none_or(|fields| fields.iter().any(|f| f.eq_ignore_ascii_case("members")));
    options.select = cursor.select.as_ref().map(|fields| {
        fields
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("members"))
            .cloned()
            .collect()
    });
    let initial = cursor.since == 0;
    let changes: Vec<_> = tenant
        .membership_log
        .iter()
        .filter(|change| change.seq > cursor.since && change.seq <= cursor.upto)
        .collect();
    let (groups, next) = page(&tenant.groups, cursor.position, size, |group| {
        Ok(initial || changes.iter().any(|change| change.group_id == group.id))
    })?;
    let object_type = |id: &str| {
        if tenant.user(id).is_none() && tenant.group(id).is_some() {
            "#microsoft.graph.group"
        } else {
            "#microsoft.graph.user"
        }
    };
    let mut value = Vec::with_capacity(groups.len());
    for group in groups {
        let members: Vec<Value> = if initial {
            tenant
                .direct_members(group)
                .iter()
                .map(|id| json!({"@odata.type": object_type(id), "id": id}))
                .collect()
        } else {
            // A member added and removed within the round shows as it ended, once, as Graph
            // collapses a round's changes to each object's last state.
            let mut last: Vec<&&crate::state::MembershipChange> = Vec::new();
            for change in changes.iter().filter(|change| change.group_id == group.id) {
                last.retain(|seen| seen.member_id != change.member_id);
                last.push(change);
            }
            last.into_iter()
                .map(|change| {
                    let mut member =
                        json!({"@odata.type": object_type(&change.member_id), "id": change.member_id});
                    if !change.added {
                        member["@removed"] = json!({"reason": "deleted"});
                    }
                    member
                })
                .collect()
        };
        let mut view = select(
            group_object(group, &tenant.domain),
            options.select.as_deref(),
            &GROUP_DEFAULT,
            "microsoft.graph.group",
        )?;
        view["id"] = json!(group.id);
        if with_members {
            view["members@delta"] = json!(members);
        }
        value.push(view);
    }
    let mut body = json!({"@odata.context": context_url(&sim, "groups", &options)});
    link_delta_page(
        &mut body,
        &format!("{}/groups/delta", sim.graph_base()),
        next,
        cursor,
    );
    body["value"] = json!(value);
    Ok(json_response(StatusCode::OK, &body))
}

fn group_object(group: &Group, domain: &str) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".to_owned(), json!(group.id));
    object.insert("createdDateTime".to_owned(), json!(iso(group.created_ms)));
    object.insert("renewedDateTime".to_owned(), json!(iso(group.created_ms)));
    object.insert("description".to_owned(), json!(group.description));
    object.insert("displayName".to_owned(), json!(group.display_name));
    let unified = matches!(group.kind, GroupKind::Team | GroupKind::Microsoft365);
    object.insert("groupTypes".to_owned(), json!(group.group_types()));
    object.insert(
        "mail".to_owned(),
        if unified {
            json!(format!("{}@{domain}", group.mail_nickname))
        } else {
            Value::Null
        },
    );
    object.insert("mailEnabled".to_owned(), json!(unified));
    object.insert("mailNickname".to_owned(), json!(group.mail_nickname));
    object.insert(
        "resourceProvisioningOptions".to_owned(),
        json!(if group.is_team() {
            vec!["Team"]
        } else {
            Vec::new()
        }),
    );
    object.insert("securityEnabled".to_owned(), json!(!unified));
    object.insert("membershipRule".to_owned(), json!(group.membership_rule()));
    object.insert(
        "membershipRuleProcessingState".to_owned(),
        json!(group.membership_rule().map(|_| "On")),
    );
    object.insert(
        "visibility".to_owned(),
        if unified {
            json!("Private")
        } else {
            Value::Null
        },
    );
    object
}

pub async fn list_groups(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    caller.require_directory(&READ_GROUPS, &READ_GROUPS)?;
    let options = QueryOptions::parse(&pairs)?;
    let size = options.page_size(100, 999)?;
    let filter = options.filter.as_deref().map(Filter::parse).transpose()?;
    let start = position(&options)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, &caller)?;
    let (groups, next) = page(&tenant.groups, start, size, |group| {
        filter
            .as_ref()
            .map_or(Ok(true), |filter| filter.matches(group))
    })?;
    let value = groups
        .into_iter()
        .map(|group| {
            select(
                group_object(group, &tenant.domain),
                options.select.as_deref(),
                &GROUP_DEFAULT,
                "microsoft.graph.group",
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next = next.map(|index| {
        options.next_link(
            &format!("{}/groups", sim.graph_base()),
            &encode_token(&format!("p:{index}")),
        )
    });
    Ok(json_response(
        StatusCode::OK,
        &collection(context_url(&sim, "groups", &options), value, next, None),
    ))
}

pub async fn get_group(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    caller.require_directory(&READ_GROUPS, &READ_GROUPS)?;
    let options = QueryOptions::parse(&pairs)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, &caller)?;
    let group = tenant
        .group(&id)
        .ok_or_else(|| GraphError::directory_not_found(&id))?;
    let mut view = select(
        group_object(group, &tenant.domain),
        options.select.as_deref(),
        &GROUP_DEFAULT,
        "microsoft.graph.group",
    )?;
    view["@odata.context"] = json!(format!("{}/$entity", context_url(&sim, "groups", &options)));
    Ok(json_response(StatusCode::OK, &view))
}

pub async fn group_members(
    sim: Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Query<Vec<(String, String)>>,
) -> GraphResult {
    members_of(sim, headers, id, query, Members::Direct)
}

pub async fn group_transitive_members(
    sim: Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Query<Vec<(String, String)>>,
) -> GraphResult {
    members_of(sim, headers, id, query, Members::Transitive)
}

/// `transitiveMembers/microsoft.graph.user`: the users only, cast as OData allows.
pub async fn group_transitive_users(
    sim: Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Query<Vec<(String, String)>>,
) -> GraphResult {
    members_of(sim, headers, id, query, Members::TransitiveUsers)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Members {
    Direct,
    Transitive,
    TransitiveUsers,
}

impl Members {
    fn segment(self) -> &'static str {
        match self {
            Members::Direct => "members",
            Members::Transitive => "transitiveMembers",
            Members::TransitiveUsers => "transitiveMembers/microsoft.graph.user",
        }
    }
}

fn members_of(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    id: String,
    Query(pairs): Query<Vec<(String, String)>>,
    wanted: Members,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    caller.require_directory(&READ_GROUPS, &READ_GROUPS)?;
    let options = QueryOptions::parse(&pairs)?;
    let size = options.page_size(100, 999)?;
    let start = position(&options)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, &caller)?;
    let group = tenant
        .group(&id)
        .ok_or_else(|| GraphError::directory_not_found(&id))?;
    let members = match wanted {
        Members::Direct => tenant.direct_members(group),
        Members::Transitive | Members::TransitiveUsers => tenant.transitive_members(group),
    };
    let (members, next) = page(&members, start, size, |member| {
        Ok(tenant.user(member).is_some()
            || (wanted != Members::TransitiveUsers && tenant.group(member).is_some()))
    })?;
    let mut value = Vec::with_capacity(members.len());
    for member in members {
        if let Some(user) = tenant.user(member) {
            let mut view = user_view(&caller, user, &options)?;
            view["@odata.type"] = json!("#microsoft.graph.user");
            value.push(view);
        } else if let Some(nested) = tenant.group(member) {
            let mut view = Value::Object(group_object(nested, &tenant.domain));
            view["@odata.type"] = json!("#microsoft.graph.group");
            value.push(view);
        }
    }
    let next = next.map(|index| {
        options.next_link(
            &format!("{}/groups/{id}/{}", sim.graph_base(), wanted.segment()),
            &encode_token(&format!("p:{index}")),
        )
    });
    let context = if wanted == Members::TransitiveUsers {
        "users"
    } else {
        "directoryObjects"
    };
    Ok(json_response(
        StatusCode::OK,
        &collection(
            format!("{}/$metadata#{context}", sim.graph_base()),
            value,
            next,
            None,
        ),
    ))
}

/// A conversation member's id: opaque in Graph, stable here.
pub fn membership_id(tenant_id: &str, container: &str, user_id: &str) -> String {
    encode_token(&format!("1#{tenant_id}#{container}#{user_id}"))
}

fn team_json(group: &Group, tenant_id: &str) -> Value {
    json!({
        "id": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "isArchived": false,
        "tenantId": tenant_id,
        "webUrl": format!("https://teams.microsoft.com/l/team/19%3A{}%40thread.tacv2/conversations?groupId={}&tenantId={tenant_id}", group.id.replace('-', ""), group.id),
    })
}

const TEAM_READ_DELEGATED: [&str; 4] = [
    "Team.ReadBasic.All",
    "TeamSettings.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
];

pub async fn get_team(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    caller.require(&TEAM_READ_DELEGATED, &TEAM_READ_DELEGATED)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, &caller)?;
    let group = tenant
        .group(&id)
        .filter(|group| group.is_team())
        .ok_or_else(|| GraphError::not_found(format!("No team found with Group Id {id}")))?;
    let mut body = team_json(group, &tenant.id);
    body["@odata.context"] = json!(format!("{}/$metadata#teams/$entity", sim.graph_base()));
    Ok(json_response(StatusCode::OK, &body))
}

pub fn conversation_member(
    tenant: &Tenant,
    container: &str,
    user_id: &str,
    roles: &[String],
    since: Option<u64>,
) -> Value {
    let user = tenant.users.iter().find(|user| user.id == user_id);
    json!({
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": membership_id(&tenant.id, container, user_id),
        "roles": roles,
        "displayName": user.map(|user| user.display_name.clone()),
        "visibleHistoryStartDateTime": since.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), iso),
        "userId": user_id,
        "email": user.and_then(|user| user.mail.clone()),
        "tenantId": tenant.id,
    })
}

pub async fn team_members(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    let allowed = [
        "TeamMember.Read.All",
        "TeamMember.ReadWrite.All",
        "Group.Read.All",
    ];
    caller.require(&allowed, &allowed)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, &caller)?;
    let group = tenant
        .group(&id)
        .filter(|group| group.is_team())
        .ok_or_else(|| GraphError::not_found(format!("No team found with Group Id {id}")))?;
    let value: Vec<Value> = group
        .members
        .iter()
        .filter(|member| tenant.user(member).is_some())
        .map(|member| {
            let roles: Vec<String> = if group.owners.contains(member) {
                vec!["owner".to_owned()]
            } else {
                Vec::new()
            };
            conversation_member(tenant, &group.id, member, &roles, None)
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("{}/$metadata#teams('{id}')/members", sim.graph_base()),
            "@odata.count": value.len(),
            "value": value,
        }),
    ))
}

fn joined(sim: &MicrosoftSim, caller: &Caller, key: &str) -> GraphResult {
    let allowed = [
        "Team.ReadBasic.All",
        "TeamSettings.Read.All",
        "Directory.Read.All",
    ];
    caller.require(&allowed, &allowed)?;
    let state = sim.lock();
    let tenant = tenant_of(&state, caller)?;
    let user = tenant
        .user(key)
        .ok_or_else(|| GraphError::directory_not_found(key))?;
    let value: Vec<Value> = tenant
        .groups
        .iter()
        .filter(|group| group.is_team() && group.members.contains(&user.id))
        .map(|group| team_json(group, &tenant.id))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"@odata.context": format!("{}/$metadata#teams", sim.graph_base()), "@odata.count": value.len(), "value": value}),
    ))
}

pub async fn joined_teams(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    joined(&sim, &caller, &key)
}

pub async fn my_joined_teams(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    let me = caller.user()?.to_owned();
    joined(&sim, &caller, &me)
}

fn plausible_address(address: &str) -> bool {
    address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !address.contains(char::is_whitespace)
            && address.matches('@').count() == 1
    })
}

pub async fn invite(
    Shared(sim): Shared<Arc<MicrosoftSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> GraphResult {
    let caller = directory_call(&sim, &headers)?;
    let allowed = [
        "User.Invite.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ];
    caller.require_directory(&allowed, &allowed)?;
    sim.limit(
        &format!("invitations:{}", caller.tenant_id),
        INVITATION_LIMIT,
    )?;
    let body = parse_body(&body)?;
    let address = text(&body, "invitedUserEmailAddress")
        .ok_or_else(|| invalid_property("invitedUserEmailAddress", "Invitation"))?;
    if !plausible_address(address) {
        return Err(GraphError::bad_request(format!(
            "The specified email address '{address}' is invalid."
        )));
    }
    let redirect = text(&body, "inviteRedirectUrl")
        .ok_or_else(|| invalid_property("inviteRedirectUrl", "Invitation"))?;
    let user_type = match text(&body, "invitedUserType").unwrap_or("Guest") {
        kind if kind.eq_ignore_ascii_case("guest") => "Guest",
        kind if kind.eq_ignore_ascii_case("member") => "Member",
        _ => return Err(invalid_property("invitedUserType", "Invitation")),
    };
    let display_name = text(&body, "invitedUserDisplayName");
    let send_message = body
        .get("sendInvitationMessage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (tenant_id, user_id, state_name) = {
        let mut state = sim.lock();
        let home = state.home_identity(address, &caller.tenant_id);
        let home = home.and_then(|home_id| {
            state
                .tenants
                .iter()
                .find(|tenant| tenant.id != caller.tenant_id && tenant.user(&home_id).is_some())
                .map(|tenant| (tenant.id.clone(), home_id))
        });
        let tenant = state
            .tenant_mut(&caller.tenant_id)
            .ok_or_else(|| GraphError::invalid_token("Access token validation failure."))?;
        if tenant
            .users
            .iter()
            .any(|user| user.active() && !user.is_guest() && user.answers_to(address))
        {
            return Err(GraphError::bad_request(format!(
                "The invited user already exists in this directory as a member: '{address}'."
            )));
        }
        let existing = tenant
            .users
            .iter()
            .position(|user| user.active() && user.is_guest() && user.answers_to(address));
        let index = match existing {
            Some(index) => index,
            None => {
                let (local, domain) = address.split_once('@').unwrap_or((address, ""));
                let upn = format!(
                    "{}_{}#EXT#@{}",
                    local.to_lowercase(),
                    domain.to_lowercase(),
                    tenant.domain
                );
                let now = now_ms();
                tenant.add_user(User {
                    id: uuid::Uuid::new_v4().to_string(),
                    upn,
                    mail: Some(address.to_owned()),
                    display_name: display_name.unwrap_or(local).to_owned(),
                    user_type: user_type.to_owned(),
                    account_enabled: true,
                    proxy_addresses: vec![format!("SMTP:{address}")],
                    other_mails: vec![address.to_owned()],
                    creation_type: Some("Invitation".to_owned()),
                    external_user_state: Some("PendingAcceptance".to_owned()),
                    external_state_changed_ms: Some(now),
                    home,
                    created_ms: now,
                    ..User::default()
                })
            }
        };
        let user = &tenant.users[index];
        (
            tenant.id.clone(),
            user.id.clone(),
            user.external_user_state.clone().unwrap_or_default(),
        )
    };
    publish(&sim, vec![Event::user(&tenant_id, &user_id, "updated")]);
    let redeem = format!(
        "{}/login/{tenant_id}/oauth2/v2.0/authorize?client_id={}&response_type=code&scope=User.Read&redirect_uri={}&login_hint={}",
        sim.context.base_url,
        crate::state::TEAMS_CLIENT_ID,
        crate::odata::encode_component(redirect),
        crate::odata::encode_component(address),
    );
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "@odata.context": format!("{}/$metadata#invitations/$entity", sim.graph_base()),
            "id": uuid::Uuid::new_v4().to_string(),
            "inviteRedeemUrl": redeem,
            "invitedUserDisplayName": display_name,
            "invitedUserType": user_type,
            "invitedUserEmailAddress": address,
            "sendInvitationMessage": send_message,
            "resetRedemption": false,
            "inviteRedirectUrl": redirect,
            "status": state_name,
            "invitedUserMessageInfo": body.get("invitedUserMessageInfo").cloned().unwrap_or_else(|| json!({"messageLanguage": null, "customizedMessageBody": null, "ccRecipients": []})),
            "invitedUser": {"id": user_id},
        }),
    ))
}

/// An administrator adds a member to, or removes one from, a group of the customer's tenant
/// (a user by address, or a group to nest): the group's subscriptions are told, and the change
/// shows in `/groups/delta`. A dynamic group's members follow its rule and cannot be changed.
pub fn change_group_membership(
    sim: &MicrosoftSim,
    request: &MembershipRequest,
) -> Result<String, String> {
    let member_id = {
        let mut state = sim.lock();
        let member_id = match &request.member {
            GroupMember::User(email) => {
                let index = state
                    .sign_in(CUSTOMER_TENANT_ID, email)
                    .ok_or_else(|| format!("no Teams user {email}"))?;
                state.customer().users[index].id.clone()
            }
            GroupMember::Group(id) => {
                if id == &request.group {
                    return Err("a group cannot be nested in itself".to_owned());
                }
                state
                    .customer()
                    .group(id)
                    .ok_or_else(|| format!("no group {id}"))?
                    .id
                    .clone()
            }
        };
        let tenant = state
            .tenant_mut(CUSTOMER_TENANT_ID)
            .ok_or("the customer tenant is missing")?;
        let group = tenant
            .group(&request.group)
            .ok_or_else(|| format!("no group {}", request.group))?;
        if group.kind == GroupKind::Dynamic {
            return Err(format!(
                "{} is a dynamic group: its members follow its rule",
                group.display_name
            ));
        }
        if !tenant.change_membership(&request.group, &member_id, request.add) {
            return Err(format!(
                "{member_id} is {} a member of {}",
                if request.add { "already" } else { "not" },
                request.group
            ));
        }
        member_id
    };
    publish(
        sim,
        vec![Event::membership(
            CUSTOMER_TENANT_ID,
            &request.group,
            &member_id,
            request.add,
        )],
    );
    Ok(member_id)
}

/// An administrator blocks a user's sign-in (`accountEnabled: false`): the user stays in the
/// tenant and its groups, leaves every dynamic group, and `/users` subscriptions are told.
pub fn disable_user(sim: &MicrosoftSim, email: &str) -> Result<String, String> {
    let user_id = {
        let mut state = sim.lock();
        let index = state
            .sign_in(CUSTOMER_TENANT_ID, email)
            .ok_or_else(|| format!("no Teams user {email}"))?;
        let tenant = state
            .tenant_mut(CUSTOMER_TENANT_ID)
            .ok_or("the customer tenant is missing")?;
        tenant.users[index].account_enabled = false;
        tenant.touch(index);
        tenant.users[index].id.clone()
    };
    publish(
        sim,
        vec![Event::user(CUSTOMER_TENANT_ID, &user_id, "updated")],
    );
    Ok(user_id)
}

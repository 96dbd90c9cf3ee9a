//! The SCIM 2.0 service provider at `/scim/v2` (RFC 7643/7644), through which an identity
//! provider (Entra ID, Okta, any other) provisions the organisation's users and groups: list
//! with `filter` (equalities joined by `and`), `startIndex` and `count`; create, read, replace,
//! `PATCH` and delete; `active: false` kept as a soft delete. Authenticated by a SCIM token of
//! its own (`switchboard token create --scim`), which opens nothing else. Answers
//! `application/scim+json`, errors as SCIM error objects.
//!
//! Written by hand: no well-kept Rust crate serves SCIM over axum; the protocol surface the
//! providers use is small (see `filter` and `patch`).

mod error;
mod filter;
mod patch;
mod projection;
mod resources;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use switchboard_store::{ScimField, ScimQuery, StoreError, TokenPurpose};

use crate::AppState;
use crate::tokens;
use error::ScimError;
use filter::Attribute;
use patch::ResourceKind;
use projection::Projection;
use resources::{GROUP_SCHEMA, USER_SCHEMA};

const CONTENT_TYPE: &str = "application/scim+json";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Resources per page when the provider does not say, and the most it may ask for.
const DEFAULT_COUNT: i64 = 100;
const MAX_COUNT: i64 = 1_000;
/// Where the service provider is, below the hub's public URL.
pub const PATH: &str = "/scim/v2";

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{name}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/.search", axum::routing::post(search_all))
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", axum::routing::post(search_users))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", axum::routing::post(search_groups))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .fallback(|| async { ScimError::not_found("no such SCIM endpoint") })
        .layer(middleware::from_fn_with_state(state, authenticate))
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        scim(status, self.to_json())
    }
}

impl From<StoreError> for ScimError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => ScimError::uniqueness(what),
            StoreError::NotFound { kind, id } => ScimError::not_found(format!("no {kind} {id}")),
            other => {
                tracing::error!(error = %other, "scim: the store failed");
                ScimError {
                    status: 500,
                    scim_type: None,
                    detail: "the hub could not read or write its database".to_owned(),
                }
            }
        }
    }
}

fn scim(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// A resource answered with its location and version.
fn resource(status: StatusCode, body: Value) -> Response {
    let location = body["meta"]["location"].as_str().map(str::to_owned);
    let version = body["meta"]["version"].as_str().map(str::to_owned);
    let mut response = scim(status, body);
    let headers = response.headers_mut();
    if let Some(value) = version.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::ETAG, value);
    }
    if status == StatusCode::CREATED
        && let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok())
    {
        headers.insert(header::LOCATION, value);
    }
    response
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = crate::http::bearer_token(request.headers());
    let Some(presented) = presented else {
        return unauthorised("send a SCIM token as `Authorization: Bearer TOKEN`");
    };
    match state.store.use_api_token(&tokens::hash(presented)).await {
        Ok(Some(token)) if token.purpose == TokenPurpose::Scim => next.run(request).await,
        Ok(Some(_)) => unauthorised(
            "this is a REST API token; SCIM takes a SCIM token (`switchboard token create --scim`)",
        ),
        Ok(None) => unauthorised("the SCIM token is unknown or revoked"),
        Err(error) => ScimError::from(error).into_response(),
    }
}

fn unauthorised(detail: &str) -> Response {
    let mut response = ScimError::unauthorized(detail).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Where the service provider is, as the provider reached it (for `meta.location`).
fn base(state: &AppState) -> String {
    format!("{}{PATH}", state.public_url.trim_end_matches('/'))
}

fn body_json(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|error| ScimError::invalid_syntax(format!("the body is not JSON: {error}")))
}

#[derive(serde::Deserialize, Default)]
struct ListParams {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

impl ListParams {
    fn projection(&self) -> Projection {
        Projection::of(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }
}

/// What only reads one resource asks of its attributes.
#[derive(serde::Deserialize)]
struct ReadParams {
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

impl ReadParams {
    fn projection(&self) -> Projection {
        Projection::of(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }
}

/// A search request's body (RFC 7644 §3.4.3), as the list parameters it stands for.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    #[serde(default)]
    attributes: Vec<String>,
    #[serde(default)]
    excluded_attributes: Vec<String>,
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
}

fn search_params(body: &Bytes) -> Result<(ListParams, Projection), ScimError> {
    let request: SearchRequest = serde_json::from_slice(body)
        .map_err(|error| ScimError::invalid_syntax(format!("not a search request: {error}")))?;
    let projection = Projection::of_lists(&request.attributes, &request.excluded_attributes);
    Ok((
        ListParams {
            filter: request.filter,
            start_index: request.start_index.map(|n| n.to_string()),
            count: request.count.map(|n| n.to_string()),
            ..ListParams::default()
        },
        projection,
    ))
}

/// The store's query for a list request. RFC 7644 §3.4.2.4: a `startIndex` below 1 is 1, a
/// negative `count` is 0.
fn query(params: &ListParams) -> Result<ScimQuery, ScimError> {
    let number = |name: &str, text: &Option<String>, default: i64| match text {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::invalid_value(format!("{name} is a whole number"))),
    };
    let start = number("startIndex", &params.start_index, 1)?.max(1);
    let count = number("count", &params.count, DEFAULT_COUNT)?.clamp(0, MAX_COUNT);
    let equals = match params.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(text) => filter::parse(text)?
            .equals
            .into_iter()
            .map(|(attribute, value)| {
                let field = match attribute {
                    Attribute::Id => ScimField::Id,
                    Attribute::UserName => ScimField::UserName,
                    Attribute::ExternalId => ScimField::ExternalId,
                    Attribute::DisplayName => ScimField::DisplayName,
                    Attribute::Email => ScimField::Email,
                };
                (field, value)
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(ScimQuery {
        equals,
        start: start - 1,
        count,
    })
}

fn list(resources: Vec<Value>, total: i64, query: &ScimQuery) -> Response {
    scim(
        StatusCode::OK,
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": query.start + 1,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

/// A resource's id: random, so that it says nothing of the organisation (RFC 7643 §3.1 asks
/// it be unique and stable, and never reassigned).
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

async fn list_users(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    users_page(&state, &params, &params.projection()).await
}

async fn search_users(State(state): State<AppState>, body: Bytes) -> Result<Response, ScimError> {
    let (params, projection) = search_params(&body)?;
    users_page(&state, &params, &projection).await
}

async fn users_page(
    state: &AppState,
    params: &ListParams,
    projection: &Projection,
) -> Result<Response, ScimError> {
    let query = query(params)?;
    let (users, total) = state.store.scim_users(&query).await?;
    let base = base(state);
    Ok(list(
        users
            .iter()
            .map(|user| projection.apply(resources::user_json(user, &base)))
            .collect(),
        total,
        &query,
    ))
}

async fn create_user(State(state): State<AppState>, body: Bytes) -> Result<Response, ScimError> {
    let written = body_json(&body)?;
    let now = state.clock.now();
    let user = resources::user_record(&new_id(), &written, now, now, 1)?;
    state.store.insert_scim_user(&user).await?;
    crate::scope::reconcile_in_background(&state, "scim: a user was created");
    Ok(resource(
        StatusCode::CREATED,
        resources::user_json(&user, &base(&state)),
    ))
}

async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Response, ScimError> {
    let user = state
        .store
        .scim_user(&id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no user {id}")))?;
    Ok(resource(
        StatusCode::OK,
        params
            .projection()
            .apply(resources::user_json(&user, &base(&state))),
    ))
}

async fn replace_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let written = body_json(&body)?;
    let read = state
        .store
        .scim_user(&id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no user {id}")))?;
    let user = resources::user_record(
        &id,
        &written,
        read.created_at,
        state.clock.now(),
        read.version + 1,
    )?;
    state.store.update_scim_user(&user, read.version).await?;
    crate::scope::reconcile_in_background(&state, "scim: a user changed");
    Ok(resource(
        StatusCode::OK,
        resources::user_json(&user, &base(&state)),
    ))
}

async fn patch_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let request = body_json(&body)?;
    let read = state
        .store
        .scim_user(&id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no user {id}")))?;
    let mut current = resources::user_json(&read, &base(&state));
    patch::apply(&mut current, &request, ResourceKind::User)?;
    let user = resources::user_record(
        &id,
        &current,
        read.created_at,
        state.clock.now(),
        read.version + 1,
    )?;
    state.store.update_scim_user(&user, read.version).await?;
    crate::scope::reconcile_in_background(&state, "scim: a user changed");
    Ok(resource(
        StatusCode::OK,
        resources::user_json(&user, &base(&state)),
    ))
}

async fn delete_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    if state.store.delete_scim_user(&id).await? {
        crate::scope::reconcile_in_background(&state, "scim: a user was deleted");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ScimError::not_found(format!("no user {id}")))
    }
}

/// A search at the root (RFC 7644 §3.4.3): users, then groups, as one list.
async fn search_all(State(state): State<AppState>, body: Bytes) -> Result<Response, ScimError> {
    let (params, projection) = search_params(&body)?;
    let query = query(&params)?;
    let (users, users_total) = state.store.scim_users(&query).await?;
    let groups_query = ScimQuery {
        equals: query.equals.clone(),
        start: (query.start - users_total).max(0),
        count: query.count - users.len() as i64,
    };
    let (groups, groups_total) = state.store.scim_groups(&groups_query).await?;
    let base = base(&state);
    let found = users
        .iter()
        .map(|user| projection.apply(resources::user_json(user, &base)))
        .chain(
            groups
                .iter()
                .map(|group| projection.apply(resources::group_json(group, &base))),
        )
        .collect();
    Ok(list(found, users_total + groups_total, &query))
}

async fn list_groups(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    groups_page(&state, &params, &params.projection()).await
}

async fn search_groups(State(state): State<AppState>, body: Bytes) -> Result<Response, ScimError> {
    let (params, projection) = search_params(&body)?;
    groups_page(&state, &params, &projection).await
}

async fn groups_page(
    state: &AppState,
    params: &ListParams,
    projection: &Projection,
) -> Result<Response, ScimError> {
    let query = query(params)?;
    let (groups, total) = state.store.scim_groups(&query).await?;
    let base = base(state);
    Ok(list(
        groups
            .iter()
            .map(|group| projection.apply(resources::group_json(group, &base)))
            .collect(),
        total,
        &query,
    ))
}

/// A member that is no user is the provider's mistake in the value it sent.
fn member_error(error: StoreError) -> ScimError {
    match error {
        StoreError::NotFound { kind, id } => {
            ScimError::invalid_value(format!("member {id} is no {kind}"))
        }
        other => other.into(),
    }
}

async fn create_group(State(state): State<AppState>, body: Bytes) -> Result<Response, ScimError> {
    let written = body_json(&body)?;
    let now = state.clock.now();
    let group = resources::group_record(&new_id(), &written, now, now, 1)?;
    state
        .store
        .insert_scim_group(&group)
        .await
        .map_err(member_error)?;
    crate::scope::reconcile_in_background(&state, "scim: a group changed");
    Ok(resource(
        StatusCode::CREATED,
        resources::group_json(&group, &base(&state)),
    ))
}

async fn get_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Response, ScimError> {
    let group = state
        .store
        .scim_group(&id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no group {id}")))?;
    Ok(resource(
        StatusCode::OK,
        params
            .projection()
            .apply(resources::group_json(&group, &base(&state))),
    ))
}

async fn replace_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let written = body_json(&body)?;
    let read = state
        .store
        .scim_group(&id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no group {id}")))?;
    let group = resources::group_record(
        &id,
        &written,
        read.created_at,
        state.clock.now(),
        read.version + 1,
    )?;
    state
        .store
        .update_scim_group(&group, read.version)
        .await
        .map_err(member_error)?;
    crate::scope::reconcile_in_background(&state, "scim: a group changed");
    Ok(resource(
        StatusCode::OK,
        resources::group_json(&group, &base(&state)),
    ))
}

async fn patch_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let request = body_json(&body)?;
    let read = state
        .store
        .scim_group(&id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no group {id}")))?;
    let mut current = resources::group_json(&read, &base(&state));
    patch::apply(&mut current, &request, ResourceKind::Group)?;
    let group = resources::group_record(
        &id,
        &current,
        read.created_at,
        state.clock.now(),
        read.version + 1,
    )?;
    state
        .store
        .update_scim_group(&group, read.version)
        .await
        .map_err(member_error)?;
    crate::scope::reconcile_in_background(&state, "scim: a group changed");
    Ok(resource(
        StatusCode::OK,
        resources::group_json(&group, &base(&state)),
    ))
}

async fn delete_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    if state.store.delete_scim_group(&id).await? {
        crate::scope::reconcile_in_background(&state, "scim: a group was deleted");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ScimError::not_found(format!("no group {id}")))
    }
}

/// RFC 7644 §5: what this service provider supports.
async fn service_provider_config(State(state): State<AppState>) -> Response {
    scim(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_COUNT},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM token created in the console's settings or with `switchboard token create --scim`",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{}/ServiceProviderConfig", base(&state)),
            },
        }),
    )
}

fn user_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": resources::ENTERPRISE_USER_SCHEMA, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
    })
}

fn group_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "schema": GROUP_SCHEMA,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
    })
}

async fn resource_types(State(state): State<AppState>) -> Response {
    let base = base(&state);
    let types = vec![user_type(&base), group_type(&base)];
    list(
        types,
        2,
        &ScimQuery {
            equals: Vec::new(),
            start: 0,
            count: 2,
        },
    )
}

async fn resource_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ScimError> {
    let base = base(&state);
    match name.as_str() {
        "User" => Ok(scim(StatusCode::OK, user_type(&base))),
        "Group" => Ok(scim(StatusCode::OK, group_type(&base))),
        other => Err(ScimError::not_found(format!("no resource type {other}"))),
    }
}

/// One attribute of a schema (RFC 7643 §7).
fn attribute(name: &str, kind: &str, required: bool, uniqueness: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "required": required,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": uniqueness,
    })
}

fn multi_valued(name: &str, sub_attributes: Vec<Value>) -> Value {
    json!({
        "name": name,
        "type": "complex",
        "multiValued": true,
        "required": false,
        "mutability": "readWrite",
        "returned": "default",
        "subAttributes": sub_attributes,
    })
}

fn schema_definitions(base: &str) -> Vec<Value> {
    let meta =
        |id: &str| json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")});
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": USER_SCHEMA,
            "name": "User",
            "description": "A user of the organisation",
            "attributes": [
                attribute("userName", "string", true, "server"),
                attribute("externalId", "string", false, "none"),
                attribute("displayName", "string", false, "none"),
                json!({
                    "name": "name", "type": "complex", "multiValued": false, "required": false,
                    "mutability": "readWrite", "returned": "default",
                    "subAttributes": [
                        attribute("formatted", "string", false, "none"),
                        attribute("givenName", "string", false, "none"),
                        attribute("familyName", "string", false, "none"),
                    ],
                }),
                attribute("active", "boolean", false, "none"),
                multi_valued("emails", vec![
                    attribute("value", "string", false, "none"),
                    attribute("type", "string", false, "none"),
                    attribute("primary", "boolean", false, "none"),
                ]),
            ],
            "meta": meta(USER_SCHEMA),
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": resources::ENTERPRISE_USER_SCHEMA,
            "name": "EnterpriseUser",
            "description": "Enterprise User (RFC 7643 §4.3), kept as written",
            "attributes": [
                attribute("employeeNumber", "string", false, "none"),
                attribute("costCenter", "string", false, "none"),
                attribute("organization", "string", false, "none"),
                attribute("division", "string", false, "none"),
                attribute("department", "string", false, "none"),
            ],
            "meta": meta(resources::ENTERPRISE_USER_SCHEMA),
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": GROUP_SCHEMA,
            "name": "Group",
            "description": "A group of users",
            "attributes": [
                attribute("displayName", "string", true, "none"),
                attribute("externalId", "string", false, "none"),
                multi_valued("members", vec![
                    attribute("value", "string", false, "none"),
                    json!({
                        "name": "$ref", "type": "reference", "referenceTypes": ["User"],
                        "multiValued": false, "required": false, "mutability": "immutable",
                        "returned": "default",
                    }),
                    attribute("type", "string", false, "none"),
                ]),
            ],
            "meta": meta(GROUP_SCHEMA),
        }),
    ]
}

async fn schemas(State(state): State<AppState>) -> Response {
    let definitions = schema_definitions(&base(&state));
    let total = definitions.len() as i64;
    list(
        definitions,
        total,
        &ScimQuery {
            equals: Vec::new(),
            start: 0,
            count: total,
        },
    )
}

async fn schema(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    schema_definitions(&base(&state))
        .into_iter()
        .find(|definition| definition["id"] == id.as_str())
        .map(|definition| scim(StatusCode::OK, definition))
        .ok_or_else(|| ScimError::not_found(format!("no schema {id}")))
}

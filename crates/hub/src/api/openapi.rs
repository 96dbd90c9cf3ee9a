//! The OpenAPI 3.1 document of `/api/v1`, served unauthenticated at `GET /api/openapi.json` and
//! committed as `docs/openapi.json`.
//!
//! It is written here by hand, as one value next to the router, rather than derived with
//! `utoipa`: the handlers build their bodies with `json!` (fields are added per endpoint, e.g. a
//! person in a list carries `platforms` and `choose_primary`), so a derive would first need every
//! handler turned into typed response structs, or it would describe a parallel set of structs
//! rather than what the handlers send. The crate also has a build cost beyond its own: even with
//! only its `macros` feature it turns on `indexmap`'s `serde` feature, which rebuilds sqlx and the
//! store. What keeps this document honest instead: the tests below fail when a route of the
//! router is missing here (or the other way round) and when `docs/openapi.json` differs from this
//! value; `crates/switchboard/tests/openapi.rs` calls every documented operation on the demo
//! (documented statuses and error shape only) and checks the read operations' bodies against
//! their schemas; the black-box tests there pin the bodies themselves.
//!
//! When an endpoint changes, change it here, then regenerate the committed copy:
//! `UPDATE_OPENAPI=1 cargo test -p switchboard-hub openapi`.

use serde_json::{Value, json};

/// Where the document is served, outside the token-protected tree.
pub const PATH: &str = "/api/openapi.json";

const STATUSES: [&str; 4] = ["not_created", "pending", "synced", "failed"];
const KINDS: [&str; 4] = ["existing_account", "guest_account", "bot", "unsupported"];

/// The names of every platform the hub knows, as the API spells them.
fn platform_names() -> Vec<&'static str> {
    switchboard_core::Platform::ALL
        .iter()
        .map(|platform| platform.as_str())
        .collect()
}

/// `GET /api/openapi.json`.
pub async fn serve() -> axum::Json<Value> {
    axum::Json(document())
}

/// The document, pretty-printed as it is committed (keys sorted, a final newline).
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("a JSON value serialises");
    text.push('\n');
    text
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(schema: &str) -> Value {
    json!({ "type": [schema, "null"] })
}

fn array_of(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn path_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn query_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn id_parameter(of: &str) -> Value {
    path_parameter(
        "id",
        &format!("the {of}'s id (`bad_id` when malformed)"),
        json!({ "type": "string" }),
    )
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": reference(schema) } },
    })
}

/// The error responses an operation may give (besides 401, which every operation may give).
fn errors(statuses: &[&str]) -> Vec<(String, Value)> {
    statuses
        .iter()
        .map(|status| {
            (
                (*status).to_owned(),
                json!({ "$ref": format!("#/components/responses/E{status}") }),
            )
        })
        .collect()
}

/// One operation: its id, summary, tag, parameters, body and responses.
fn operation(
    id: &str,
    summary: &str,
    tag: &str,
    parameters: Vec<Value>,
    body: Option<Value>,
    success: (&str, Value),
    error_statuses: &[&str],
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(success.0.to_owned(), success.1);
    for (status, response) in errors(&["401"]).into_iter().chain(errors(error_statuses)) {
        responses.insert(status, response);
    }
    let mut operation = json!({
        "operationId": id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    });
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = body {
        operation["requestBody"] = body;
    }
    operation
}

/// `operation` with a second success: an answer other than the usual one (202, queued).
fn also(mut operation: Value, status: &str, response: Value) -> Value {
    operation["responses"][status] = response;
    operation
}

fn error_response(description: &str, codes: &[&str]) -> Value {
    json!({
        "description": format!("{description} Codes: {}.", codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")),
        "content": { "application/json": { "schema": reference("Error") } },
    })
}

fn schemas() -> Value {
    let platform = reference("Platform");
    let timestamp = json!({ "type": "integer", "format": "int64", "description": "milliseconds since the Unix epoch" });
    let restricted_users = json!({ "type": "array", "items": { "type": "string", "format": "email" }, "description": "the e-mail addresses of the people who may not write through the hub: what they write is not relayed (they are told so, at most once a day per conversation), nor are they synced or prompted automatically; what others write to them is delivered. A change replaces the list; an address the hub knows no person by is refused (`bad_setting`)" });
    json!({
        "Platform": { "type": "string", "enum": platform_names() },
        "SyncStatus": { "type": "string", "enum": STATUSES },
        "RepresentationKind": { "type": "string", "enum": KINDS },
        "Error": object(&["error"], json!({
            "error": object(&["code", "message"], json!({
                "code": { "type": "string", "description": "stable, for programs: an operation's codes are listed with its error statuses; besides those, a method a path does not take answers 405 `method_not_allowed` (with `Allow`)" },
                "message": { "type": "string", "description": "what happened, for people" },
            })),
        })),
        "ConnectField": object(&["name", "label", "help", "secret"], json!({
            "name": { "type": "string" },
            "label": { "type": "string" },
            "help": { "type": "string" },
            "secret": { "type": "boolean", "description": "sealed at rest and never shown again" },
        })),
        "Noun": object(&["one", "many"], json!({
            "one": { "type": "string" },
            "many": { "type": "string" },
        })),
        "RepresentationRule": object(&["kind", "called", "authorised_by", "abilities"], json!({
            "kind": { "type": "string", "enum": KINDS },
            "called": reference("Noun"),
            "authorised_by": { "type": "string", "enum": ["owner", "admin"], "description": "who agrees that the hub acts as it: the person through a prompt (`owner`), or the admin once for the whole connection (`admin`), when it is synced at once" },
            "abilities": object(&["edit", "delete", "react", "thread", "mention", "file"], json!({
                "edit": { "type": "boolean" },
                "delete": { "type": "boolean" },
                "react": { "type": "boolean" },
                "thread": { "type": "boolean", "description": "replies in a thread natively, not as a quote of the parent" },
                "mention": { "type": "boolean" },
                "file": { "type": "boolean" },
            })),
        })),
        "PlatformRules": object(&["import_scope", "team", "connection", "with_account", "without_account", "fallback", "provisioning_pace", "removal"], json!({
            "import_scope": { "type": "string", "enum": ["all_users", "selected_teams"] },
            "team": { "description": "what the platform calls a team; null when it imports all users", "oneOf": [reference("Noun"), { "type": "null" }] },
            "connection": { "description": "what one connection is on the platform: a workspace, a tenant…", "$ref": "#/components/schemas/Noun" },
            "with_account": { "description": "how a person who has an account there is represented", "$ref": "#/components/schemas/RepresentationRule" },
            "without_account": { "description": "how a person who has none is represented", "$ref": "#/components/schemas/RepresentationRule" },
            "fallback": { "description": "how a person who has none is reached, not natively, where `without_account` is unsupported and the `fallback_representations` setting is on; null when the platform has no fallback", "oneOf": [reference("RepresentationRule"), { "type": "null" }] },
            "provisioning_pace": { "type": ["string", "null"], "description": "the platform's limit on creating representations, in its words (`one new app a minute`); null when it sets none the hub would reach" },
            "removal": { "type": "string", "enum": ["deleted", "forgotten"], "description": "what removing a representation the hub created leaves on the platform: the account deleted or deactivated (`deleted`), or kept, unused (`forgotten`: the platform has no API to delete it; the hub forgets its credentials and its event subscriptions, and credentials already issued work until they expire)" },
        })),
        "PlatformModule": object(&["platform", "name", "connect_fields", "rules"], json!({
            "platform": platform,
            "name": { "type": "string" },
            "connect_fields": array_of(reference("ConnectField")),
            "rules": reference("PlatformRules"),
        })),
        "PlatformList": object(&["platforms"], json!({
            "platforms": array_of(reference("PlatformModule")),
        })),
        "ConnectRequest": {
            "type": "object",
            "required": ["platform"],
            "additionalProperties": false,
            "properties": {
                "platform": { "type": "string", "description": "a platform name (`bad_platform` otherwise)" },
                "inputs": {
                    "type": "object",
                    "additionalProperties": { "type": "string" },
                    "description": "values of the platform's `connect_fields`, by name (`unknown_input` for any other)",
                },
            },
        },
        "ConnectStarted": object(&["authorize_url"], json!({
            "authorize_url": { "type": "string", "description": "send the admin's browser here" },
        })),
        "Connected": object(&["connection_id"], json!({
            "connection_id": { "type": "string" },
        })),
        "Team": object(&["id", "name"], json!({
            "id": { "type": "string" },
            "name": { "type": "string" },
        })),
        "AvailableTeam": object(&["id", "name", "member_count", "selected"], json!({
            "id": { "type": "string" },
            "name": { "type": "string" },
            "member_count": nullable("integer"),
            "selected": { "type": "boolean" },
        })),
        "TeamList": object(&["teams"], json!({ "teams": array_of(reference("AvailableTeam")) })),
        "TeamSelection": {
            "type": "object",
            "required": ["teams"],
            "additionalProperties": false,
            "properties": { "teams": array_of(json!({ "type": "string" })) },
        },
        "SelectedTeams": object(&["selected"], json!({ "selected": array_of(reference("Team")) })),
        "Connection": object(
            &["id", "platform", "tenant", "display_name", "status", "module_configured", "import_scope", "selected_teams", "last_import", "health"],
            json!({
                "id": { "type": "string" },
                "platform": platform,
                "tenant": { "type": "string" },
                "display_name": { "type": "string" },
                "status": { "type": "string", "enum": ["connected"] },
                "module_configured": { "type": "boolean" },
                "import_scope": { "type": ["string", "null"], "enum": ["all_users", "selected_teams", null], "description": "null when the module is not configured" },
                "selected_teams": array_of(reference("Team")),
                "last_import": { "oneOf": [reference("ImportRun"), { "type": "null" }] },
                "health": reference("ConnectionHealth"),
            }),
        ),
        "ConnectionHealth": object(
            &["ok", "identity", "scopes", "expires_at", "last_checked_at", "last_error", "webhooks"],
            json!({
                "ok": { "type": ["boolean", "null"], "description": "false while the platform's latest webhooks are refused; otherwise whether the credentials worked when last checked, null until the first check after they were stored" },
                "identity": { "type": ["string", "null"], "description": "who the credentials act as (the bot, the service user)" },
                "scopes": { "type": "array", "items": { "type": "string" } },
                "expires_at": { "type": ["integer", "null"], "format": "int64", "description": "when the access token expires, in milliseconds since the Unix epoch; null when it does not" },
                "last_checked_at": { "type": ["integer", "null"], "format": "int64", "description": "milliseconds since the Unix epoch" },
                "last_error": { "type": ["string", "null"], "description": "why the connection is failing: the latest webhook refusal, prefixed `webhooks refused:`, while the latest webhooks are refused; otherwise the last refresh or health check error, prefixed `token refresh:` or `health check:`" },
                "webhooks": reference("WebhookTally"),
            }),
        ),
        "WebhookTally": object(
            &["accepted", "refused", "refused_since_accepted", "last_refused_at", "last_refusal"],
            json!({
                "accepted": { "type": "integer", "format": "int64", "description": "webhook deliveries verified since the hub started" },
                "refused": { "type": "integer", "format": "int64", "description": "deliveries refused since the hub started (bad signature or secret, a subscription the connection does not hold, a malformed body)" },
                "refused_since_accepted": { "type": "integer", "format": "int64", "description": "deliveries refused since the last one accepted; above zero, the platform's events are not arriving" },
                "last_refused_at": { "type": ["integer", "null"], "format": "int64", "description": "milliseconds since the Unix epoch" },
                "last_refusal": { "type": ["string", "null"], "description": "why the last refused delivery was refused" },
            }),
        ),
        "DisconnectedConnection": object(
            &["id", "platform", "tenant", "display_name", "status", "disconnected_at"],
            json!({
                "id": { "type": "string" },
                "platform": platform,
                "tenant": { "type": "string" },
                "display_name": { "type": "string" },
                "status": { "type": "string", "enum": ["disconnected"], "description": "its credentials are deleted; connecting the same workspace or tenant again restores its people, accounts and message map" },
                "disconnected_at": timestamp,
            }),
        ),
        "ConnectionList": object(&["connections"], json!({ "connections": array_of(json!({ "oneOf": [reference("Connection"), reference("DisconnectedConnection")] })) })),
        "Disconnected": object(
            &["removed", "not_removed", "unsubscribe_error", "dead_lettered", "representations_failed"],
            json!({
                "removed": { "type": "array", "items": { "type": "string" }, "description": "the people whose guest account or bot was removed from the platform first (`remove_representations`)" },
                "not_removed": array_of(object(&["person_id", "error"], json!({
                    "person_id": { "type": "string" },
                    "error": { "type": "string", "description": "why it could not be removed: it stays on the platform, for its admin to remove" },
                }))),
                "unsubscribe_error": { "type": ["string", "null"], "description": "why the platform's event subscriptions could not be removed (they expire on their own; what they send is refused)" },
                "dead_lettered": { "type": "integer", "description": "copies that were waiting to be sent through the connection, now dead letters with the error `connection disconnected`" },
                "representations_failed": { "type": "integer", "description": "representations that acted through the connection, now failed (their credentials were deleted)" },
            }),
        ),
        "ImportRun": object(
            &["id", "connection_id", "status", "pages", "seen", "added", "updated", "deactivated", "skipped", "error", "started_at", "finished_at"],
            json!({
                "id": { "type": "string" },
                "connection_id": { "type": "string" },
                "status": { "type": "string", "enum": ["running", "succeeded", "failed"] },
                "pages": { "type": "integer" },
                "seen": { "type": "integer", "description": "accounts listed: added + updated + skipped" },
                "added": { "type": "integer", "description": "people's accounts new to the hub" },
                "updated": { "type": "integer", "description": "people's accounts the hub knew already" },
                "deactivated": { "type": "integer", "description": "accounts no longer listed, now inactive" },
                "skipped": { "type": "integer", "description": "accounts that are no people: bots, deactivated users, the hub's own guests and bots" },
                "error": nullable("string"),
                "started_at": timestamp,
                "finished_at": { "type": ["integer", "null"], "format": "int64", "description": "milliseconds since the Unix epoch" },
            }),
        ),
        "ImportProgress": {
            "allOf": [
                reference("ImportRun"),
                object(&["running"], json!({ "running": { "type": "boolean" } })),
            ],
        },
        "ImportList": object(&["imports"], json!({ "imports": array_of(reference("ImportRun")) })),
        "Person": object(&["id", "display_name", "email", "primary", "primary_chosen_by"], json!({
            "id": { "type": "string" },
            "display_name": { "type": "string" },
            "email": { "type": "string" },
            "primary": { "oneOf": [reference("Platform"), { "type": "null" }] },
            "primary_chosen_by": { "type": ["string", "null"], "enum": ["automatic", "admin", "person", null] },
        })),
        "Representation": object(&["platform", "type", "status", "failure_reason", "account_id", "external_account"], json!({
            "platform": platform,
            "type": reference("RepresentationKind"),
            "status": reference("SyncStatus"),
            "failure_reason": nullable("string"),
            "account_id": nullable("string"),
            "external_account": nullable("string"),
        })),
        "PersonSummary": {
            "allOf": [
                reference("Person"),
                object(&["platforms", "choose_primary", "representations"], json!({
                    "platforms": array_of(reference("Platform")),
                    "choose_primary": { "type": "boolean", "description": "on several platforms and no primary chosen by anyone but the hub" },
                    "representations": array_of(reference("Representation")),
                })),
            ],
        },
        "PeoplePage": object(&["people", "next_cursor"], json!({
            "people": array_of(reference("PersonSummary")),
            "next_cursor": { "type": ["string", "null"], "description": "pass as `cursor` for the next page; null on the last" },
        })),
        "Account": object(&["id", "platform", "connection_id", "external_id", "display_name", "email", "kind", "active"], json!({
            "id": { "type": "string" },
            "platform": platform,
            "connection_id": { "type": "string" },
            "external_id": { "type": "string" },
            "display_name": { "type": "string" },
            "email": nullable("string"),
            "kind": { "type": "string", "enum": ["human", "bot", "hub_representation"], "description": "`hub_representation`: a guest or bot the hub created to represent this person" },
            "active": { "type": "boolean" },
        })),
        "Transition": object(&["from", "to", "failure_reason", "cause", "at"], json!({
            "from": reference("SyncStatus"),
            "to": reference("SyncStatus"),
            "failure_reason": nullable("string"),
            "cause": { "type": "string" },
            "at": timestamp,
        })),
        "RepresentationDetail": {
            "allOf": [
                reference("Representation"),
                object(&["prompts_sent", "history"], json!({
                    "prompts_sent": { "type": "integer" },
                    "history": array_of(reference("Transition")),
                })),
            ],
        },
        "PersonDetail": {
            "allOf": [
                reference("Person"),
                object(&["accounts", "representations"], json!({
                    "accounts": array_of(reference("Account")),
                    "representations": array_of(reference("RepresentationDetail")),
                })),
            ],
        },
        "PrimaryChoice": {
            "type": "object",
            "required": ["platform"],
            "additionalProperties": false,
            "properties": { "platform": platform },
        },
        "PrimaryRuleRequest": {
            "type": "object",
            "required": ["rule"],
            "additionalProperties": false,
            "properties": {
                "rule": {
                    "type": "object",
                    "required": ["team", "platform"],
                    "additionalProperties": false,
                    "properties": {
                        "team": { "type": "string", "description": "a team selected for import (`not_found` otherwise)" },
                        "platform": platform,
                    },
                },
            },
        },
        "PrimaryRuleResult": object(&["team", "platform", "changed"], json!({
            "team": { "type": "string" },
            "platform": platform,
            "changed": { "type": "integer", "minimum": 0, "description": "people whose primary platform or who chose it changed" },
        })),
        "SyncResult": object(&["id", "platform", "status", "consent_url", "prompted", "prompted_on", "already_synced"], json!({
            "id": { "type": "string" },
            "platform": platform,
            "status": { "type": "string", "enum": ["synced", "pending"] },
            "consent_url": { "type": ["string", "null"], "description": "a bot waiting for a workspace admin's approval: open it signed in as an admin" },
            "prompted": { "type": "boolean", "description": "the person was prompted on their primary platform to authorise their own account" },
            "already_synced": { "type": "boolean", "description": "the representation was synced already: nothing was done" },
            "prompted_on": { "oneOf": [reference("Platform"), { "type": "null" }], "description": "where the prompt went (the person's primary platform); null when nobody was prompted" },
        })),
        "SyncQueued": object(&["id", "platform", "status", "estimated_wait_seconds", "pace"], json!({
            "id": { "type": "string" },
            "platform": platform,
            "status": { "const": "queued" },
            "estimated_wait_seconds": { "type": "integer", "minimum": 1, "description": "about how long until the platform's pace lets the hub create the guest or bot, in whole seconds" },
            "pace": { "type": "string", "description": "why it waits, in the platform's words: the platform's name and its `provisioning_pace` (see `listPlatforms`), e.g. `<platform> allows one new app a minute`" },
        })),
        "ResetResult": object(&["id", "reset"], json!({
            "id": { "type": "string" },
            "reset": array_of(reference("Platform")),
        })),
        "RepromptResult": object(&["id", "reprompted", "prompted_on"], json!({
            "id": { "type": "string" },
            "reprompted": array_of(reference("Platform")),
            "prompted_on": { "oneOf": [reference("Platform"), { "type": "null" }], "description": "where the prompts went: the person's primary platform" },
        })),
        "BulkRequest": {
            "type": "object",
            "required": ["ids"],
            "additionalProperties": false,
            "properties": {
                "ids": { "type": "array", "items": { "type": "string" }, "maxItems": 1000 },
                "platform": { "type": "string", "description": "for `sync` only, and required there" },
            },
        },
        "BulkResult": {
            "oneOf": [
                {
                    "allOf": [
                        { "oneOf": [reference("SyncResult"), reference("SyncQueued"), reference("ResetResult"), reference("RepromptResult")] },
                        object(&["ok"], json!({ "ok": { "const": true } })),
                    ],
                },
                object(&["id", "ok", "error"], json!({
                    "id": { "type": "string", "description": "as given in the request" },
                    "ok": { "const": false },
                    "error": object(&["code", "message"], json!({
                        "code": { "type": "string" },
                        "message": { "type": "string" },
                    })),
                })),
            ],
        },
        "BulkResults": object(&["results", "summary"], json!({
            "results": array_of(reference("BulkResult")),
            "summary": {
                "type": "object",
                "additionalProperties": { "type": "integer", "minimum": 0 },
                "description": "how many people came to each outcome, every outcome of the action named: for `sync` `synced`, `already_synced`, `prompted`, `awaiting_consent`, `queued` and `failed`; for `reset` `reset` and `failed`; for `reprompt` `reprompted` and `failed` (`failed` counts every result with `ok: false`)",
            },
        })),
        "PendingConsent": object(&["person_id", "display_name", "platform", "url", "expires_at"], json!({
            "person_id": { "type": "string" },
            "display_name": nullable("string"),
            "platform": platform,
            "url": { "type": "string" },
            "expires_at": timestamp,
        })),
        "ConsentList": object(&["consents"], json!({ "consents": array_of(reference("PendingConsent")) })),
        "Settings": object(&["auto_sync", "auto_prompt", "prompt_throttle_hours", "prompt_text", "prompt_own_accounts", "fallback_representations", "restricted_users"], json!({
            "auto_sync": { "type": "boolean" },
            "auto_prompt": { "type": "boolean", "description": "prompt an unsynced person who writes to someone on a platform they are not synced to, at most once per throttle period" },
            "prompt_throttle_hours": { "type": "integer", "minimum": 1, "maximum": 744 },
            "prompt_text": { "type": "string" },
            "prompt_own_accounts": { "type": "boolean", "description": "prompt people to link their own account even where the connection's admin grant lets the hub act as it at once (a platform whose rules say `authorised_by: admin`)" },
            "fallback_representations": { "type": "boolean", "description": "represent a person a platform cannot represent (no account there; its rules' `without_account` is unsupported) by the platform's `fallback`, where it declares one: not native (a bot of the hub's relays their messages into each colleague's chat with it, labelled with their name and platform)" },
            "restricted_users": restricted_users,
        })),
        "RelayStatus": object(&["inbox", "outbox", "retrying", "dead_letters"], json!({
            "inbox": { "type": "integer", "description": "events stored and not read yet" },
            "outbox": { "type": "integer", "description": "copies waiting to be sent" },
            "retrying": { "type": "integer", "description": "of those, copies that failed at least once (retrying, or held until a person syncs)" },
            "dead_letters": { "type": "integer", "description": "copies given up on" },
        })),
        "DeadLetter": object(&["id", "conversation_id", "platform", "sender_id", "action", "origin", "attempts", "error", "dead_at"], json!({
            "id": { "type": "integer", "format": "int64" },
            "conversation_id": { "type": "string" },
            "platform": { "$ref": "#/components/schemas/Platform", "description": "where the copy was to go" },
            "sender_id": { "type": "string", "description": "the person whose representation was to send it" },
            "action": { "type": "string", "enum": ["post", "edit", "delete", "react", "unreact"] },
            "origin": object(&["platform", "chat", "message"], json!({
                "platform": { "$ref": "#/components/schemas/Platform" },
                "chat": { "type": "string" },
                "message": { "type": "string" },
            })),
            "attempts": { "type": "integer", "description": "failed attempts; those the platform throttled (429) do not count" },
            "error": { "type": "string", "description": "why the last attempt failed" },
            "dead_at": timestamp,
        })),
        "DeadLetterList": object(&["dead_letters"], json!({ "dead_letters": array_of(reference("DeadLetter")) })),
        "Retried": object(&["id", "retried"], json!({
            "id": { "type": "integer", "format": "int64" },
            "retried": { "type": "boolean" },
        })),
        "DirectoryGroup": object(&["source", "id"], json!({
            "source": { "type": "string", "description": "where the group lives: `scim`, a group provisioned through SCIM; else the id of the connection whose directory holds it" },
            "id": { "type": "string" },
            "name": { "type": ["string", "null"], "description": "its name there; null when it is gone (its members then count as none)" },
            "last_read": object(&["at", "members"], json!({
                "at": timestamp,
                "members": { "type": "integer", "description": "addresses read (a member with several counts each)" },
                "changed_at": { "type": ["integer", "null"], "format": "int64", "description": "when a reading last found other members than the one before (milliseconds since the Unix epoch)" },
                "error": { "type": ["string", "null"], "description": "why the last reading failed; the members are those of the last that succeeded" },
            })),
        })),
        "ChoosableGroups": object(&["groups", "unreadable"], json!({
            "groups": array_of(object(&["source", "id", "name", "kind"], json!({
                "source": { "type": "string", "description": "`scim`, or the id of the connection whose directory holds the group" },
                "id": { "type": "string" },
                "name": { "type": "string" },
                "kind": { "type": "string", "description": "what kind of group, in the words of where it lives (the platform module's, or `SCIM group`)" },
                "platform": { "type": ["string", "null"] },
            }))),
            "unreadable": array_of(json!({ "type": "string", "description": "a connection whose groups could not be read now, and why" })),
        })),
        "Directory": object(&["groups", "in_scope"], json!({
            "groups": array_of(reference("DirectoryGroup")),
            "in_scope": { "type": ["integer", "null"], "description": "how many of the hub's people are members; null when no group is chosen (everyone is in scope)" },
        })),
        "DirectoryChange": {
            "type": "object",
            "additionalProperties": false,
            "required": ["groups"],
            "properties": { "groups": array_of(object(&["source", "id"], json!({ "source": { "type": "string" }, "id": { "type": "string" } }))) },
        },
        "DirectoryPreview": object(&["groups", "in_scope", "leaving", "applied"], json!({
            "groups": array_of(reference("DirectoryGroup")),
            "in_scope": { "type": ["integer", "null"] },
            "leaving": array_of(object(&["id", "display_name", "email"], json!({
                "id": { "type": "string" },
                "display_name": { "type": "string" },
                "email": { "type": "string" },
            }))),
            "applied": { "type": "boolean", "description": "false for a preview" },
        })),
        "SettingsChange": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "auto_sync": { "type": "boolean" },
                "auto_prompt": { "type": "boolean" },
                "prompt_throttle_hours": { "type": "integer", "minimum": 1, "maximum": 744 },
                "prompt_text": { "type": "string", "minLength": 1, "maxLength": 1000 },
                "prompt_own_accounts": { "type": "boolean" },
                "fallback_representations": { "type": "boolean" },
                "restricted_users": restricted_users,
            },
        },
        "AuditEntry": object(&["id", "at", "actor", "action", "target", "detail", "source"], json!({
            "id": { "type": "integer", "format": "int64" },
            "at": timestamp,
            "actor": { "type": "string", "description": "`token:NAME`, `admin:E-MAIL` or `system`" },
            "action": { "type": "string" },
            "target": { "type": "string" },
            "detail": { "type": "string" },
            "source": { "type": "string", "description": "the client's address, or `cli`" },
        })),
        "AuditLog": object(&["entries"], json!({ "entries": array_of(reference("AuditEntry")) })),
    })
}

fn responses() -> Value {
    json!({
        "E400": error_response("The request was malformed; nothing changed.", &["bad_filter", "bad_query", "bad_limit", "bad_cursor", "bad_id", "bad_body", "bad_platform", "bad_setting", "unknown_input", "unknown_team", "bad_request"]),
        "E401": {
            "description": "No API token, or an unknown or revoked one. Code: `unauthorised`.",
            "headers": { "WWW-Authenticate": { "schema": { "type": "string", "const": "Bearer" } } },
            "content": { "application/json": { "schema": reference("Error") } },
        },
        "E404": error_response("No such resource, or no such API endpoint.", &["not_found"]),
        "E409": error_response("The request conflicts with the current state; nothing changed.", &["conflict", "illegal_transition", "platform_not_configured", "no_teams_selected", "no_primary", "is_primary", "not_connected", "unsupported", "no_primary_account", "nothing_to_reprompt", "sync_in_progress"]),
        "E422": error_response("The person has no active account on that platform.", &["no_account_there"]),
        "E429": error_response("The platform asked the hub to slow down; nothing changed, try again later.", &["rate_limited"]),
        "E502": error_response("The platform refused or failed; the message says why.", &["platform_error", "sync_failed", "unexpected_flow_outcome"]),
        "E503": error_response("The hub's database failed; the request was not completed.", &["store_unavailable"]),
    })
}

fn paths() -> Value {
    let person_id = id_parameter("person");
    let connection_id = id_parameter("connection");
    let platform_path = path_parameter(
        "platform",
        "the platform to represent the person on (`bad_platform` otherwise)",
        reference("Platform"),
    );
    let sync_errors = ["400", "404", "409", "429", "502", "503"];
    let mut connect = operation(
        "connect",
        "Starts connecting a platform",
        "connections",
        vec![],
        Some(json_body(reference("ConnectRequest"))),
        (
            "202",
            ok(
                "send the admin's browser to `authorize_url`; the platform's consent pages return to `/connect/callback`, which finishes the connection",
                "ConnectStarted",
            ),
        ),
        &["400", "409", "502", "503"],
    );
    connect["responses"]["201"] = ok(
        "connected at once: the platform needed no browser step",
        "Connected",
    );
    json!({
        "/platforms": {
            "get": operation("listPlatforms", "The platform modules this hub has, with the fields an admin types in to connect and what each declares: how it imports, how it represents people and what they can do there, its words", "connections",
                vec![], None, ("200", ok("the modules", "PlatformList")), &[]),
        },
        "/connections": {
            "get": operation("listConnections", "Connections with their platform, tenant, selected teams and last import", "connections",
                vec![], None, ("200", ok("the connections", "ConnectionList")), &["503"]),
            "post": connect,
        },
        "/connections/{id}": {
            "delete": operation("disconnectConnection", "Disconnects a platform: removes its event subscriptions (best effort), deletes its credentials and every secret kept for it, dead-letters the copies waiting for it (`connection disconnected`) and fails the representations acting through it; the hub then refuses its webhooks and neither imports, syncs nor relays through it. People, accounts and the message map stay: connecting the same workspace or tenant again restores them", "connections",
                vec![connection_id.clone(), query_parameter("remove_representations", "first remove the guest accounts and bots the hub created on the platform (they cannot be removed once the credentials are deleted); each failure is listed", json!({ "type": "boolean", "default": false }))],
                None, ("200", ok("what was done", "Disconnected")), &["400", "404", "409", "503"]),
        },
        "/connections/{id}/teams": {
            "get": operation("listTeams", "The teams an admin may select, on platforms that import the members of selected teams, each with `selected`", "connections",
                vec![connection_id.clone()], None, ("200", ok("the teams", "TeamList")), &["400", "404", "409", "502", "503"]),
            "put": operation("selectTeams", "Selects the teams whose members are imported", "connections",
                vec![connection_id.clone()], Some(json_body(reference("TeamSelection"))),
                ("200", ok("the selected teams", "SelectedTeams")), &["400", "404", "409", "502", "503"]),
        },
        "/connections/{id}/import": {
            "post": operation("startImport", "Starts an import in the background", "connections",
                vec![connection_id.clone()], None, ("202", ok("the run, just started", "ImportRun")), &["400", "404", "409", "503"]),
        },
        "/connections/{id}/imports": {
            "get": operation("listImports", "The connection's last 20 imports, newest first", "connections",
                vec![connection_id], None, ("200", ok("the runs", "ImportList")), &["400", "404", "503"]),
        },
        "/imports/{id}": {
            "get": operation("getImport", "One import's progress", "connections",
                vec![path_parameter("id", "the import's id", json!({ "type": "string" }))], None,
                ("200", ok("the run", "ImportProgress")), &["404", "503"]),
        },
        "/people": {
            "get": operation("listPeople", "A page of people, by name", "people",
                vec![
                    query_parameter("primary", "only people with this primary platform (one the hub has a connection on, `bad_filter` otherwise), or `unchosen` for those whose primary nobody chose: anyone without one, and people on several platforms whose primary was set automatically",
                        json!({ "type": "string", "enum": platform_names().into_iter().chain(["unchosen"]).collect::<Vec<_>>() })),
                    query_parameter("status", "only people with a representation in this sync status", reference("SyncStatus")),
                    query_parameter("type", "only people with a representation of this kind", reference("RepresentationKind")),
                    query_parameter("q", "searches name and e-mail; at most 256 characters, none of them a control character (`bad_query` otherwise)", json!({ "type": "string", "maxLength": 256 })),
                    query_parameter("team", "only members of this imported team (an active account of theirs was imported from it)", json!({ "type": "string", "minLength": 1 })),
                    query_parameter("cursor", "the `next_cursor` of the previous page (`bad_cursor` otherwise)", json!({ "type": "string" })),
                    query_parameter("limit", "people per page", json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 })),
                ],
                None, ("200", ok("the page", "PeoplePage")), &["400", "503"]),
        },
        "/people/{id}": {
            "get": operation("getPerson", "One person with their accounts and representations (with history)", "people",
                vec![person_id.clone()], None, ("200", ok("the person", "PersonDetail")), &["400", "404", "503"]),
            "delete": operation("removePerson", "Resets the person, then deletes them from the hub; their accounts stay, unlinked", "sync",
                vec![person_id.clone()], None, ("204", json!({ "description": "removed" })), &sync_errors),
        },
        "/people/{id}/primary": {
            "put": operation("setPrimary", "The admin chooses the primary platform; the person must have an active account there. A representation of theirs on that platform (a guest, a bot, a prompt) is reset first; if that is refused, the primary stays as it was", "people",
                vec![person_id.clone()], Some(json_body(reference("PrimaryChoice"))),
                ("200", ok("the person", "Person")), &["400", "404", "409", "422", "429", "502", "503"]),
        },
        "/people/primary": {
            "post": operation("setPrimaryByRule", "The admin's rule \"members of team X chat from platform P\": sets, as chosen by the admin, the primary of every member of the team who has an active account on the platform and is on several platforms (people on one keep their automatic primary); a member's representation on the platform is then reset", "people",
                vec![], Some(json_body(reference("PrimaryRuleRequest"))),
                ("200", ok("how many people's primary changed", "PrimaryRuleResult")), &["400", "404", "409", "429", "502", "503"]),
        },
        "/people/{id}/sync/{platform}": {
            "post": also(operation("syncPerson", "Represents the person on a platform other than their primary", "sync",
                vec![person_id.clone(), platform_path], None,
                ("200", ok("`synced` (e.g. a guest account the hub created; `already_synced` when it was, and nothing was done), or `pending` with a `consent_url` (a bot waiting for an admin's approval of its installation) or `prompted` (the person was asked to authorise their own account)", "SyncResult")),
                &sync_errors),
                "202", ok("queued: the platform's pace (its `provisioning_pace`, see `listPlatforms`) puts the guest's or bot's creation more than a second away; it runs then, in the background, and its outcome is audited as the caller's. Meanwhile the representation is being synced (the console shows the clock), and another sync or a reset of it is refused (`sync_in_progress`)", "SyncQueued")),
        },
        "/people/{id}/reset": {
            "post": operation("resetPerson", "Breaks every sync: removes the guests and bots the hub created, returns each representation to `not_created`, and decides the primary platform again (a person on one platform has it again, chosen automatically; one on several has none until it is chosen)", "sync",
                vec![person_id.clone()], None, ("200", ok("the platforms reset", "ResetResult")), &sync_errors),
        },
        "/people/{id}/reprompt": {
            "post": operation("repromptPerson", "Sends the prompt again for representations waiting for the person", "sync",
                vec![person_id], None, ("200", ok("the platforms prompted for", "RepromptResult")), &sync_errors),
        },
        "/people/bulk/{action}": {
            "post": operation("bulkAction", "The action for each person in turn, each outcome audited; one person's failure does not stop the others", "sync",
                vec![path_parameter("action", "what to do (`not_found` for anything else)", json!({ "type": "string", "enum": ["sync", "reset", "reprompt"] }))],
                Some(json_body(reference("BulkRequest"))),
                ("200", ok("each person's result, in the order given, and how many came to each outcome", "BulkResults")), &["400", "404", "503"]),
        },
        "/consents": {
            "get": operation("listConsents", "The bots waiting for a workspace admin's approval, oldest first", "sync",
                vec![], None, ("200", ok("open each `url` in turn, signed in to the platform as an admin", "ConsentList")), &["503"]),
        },
        "/settings": {
            "get": operation("getSettings", "The sync settings", "sync",
                vec![], None, ("200", ok("the settings", "Settings")), &["503"]),
            "put": operation("updateSettings", "Changes any of the sync settings", "sync",
                vec![], Some(json_body(reference("SettingsChange"))), ("200", ok("the settings now", "Settings")), &["400", "503"]),
        },
        "/directory": {
            "get": operation("getDirectory", "Directory Sync's scope: the groups whose members are the hub's people (none: everyone)", "directory",
                vec![], None, ("200", ok("the groups and how many people are in scope", "Directory")), &["503"]),
            "put": operation("changeDirectory", "Chooses the groups; whoever is represented and outside them is reset and removed, in the background. With `preview=true`, says what it would do and does nothing", "directory",
                vec![query_parameter("preview", "say what the change would do, and do nothing", json!({ "type": "boolean", "default": false }))],
                Some(json_body(reference("DirectoryChange"))), ("200", ok("what the change does (or would do)", "DirectoryPreview")), &["400", "503"]),
        },
        "/directory/groups": {
            "get": operation("listChoosableGroups", "Every group Directory Sync may follow: those provisioned through SCIM and those of each connection whose platform has a directory", "directory",
                vec![], None, ("200", ok("the groups, and the connections whose groups could not be read", "ChoosableGroups")), &["503"]),
        },
        "/relay": {
            "get": operation("relayStatus", "What the relay has to do: events to read, copies to send, retries, dead letters", "relay",
                vec![], None, ("200", ok("the counts", "RelayStatus")), &["503"]),
        },
        "/relay/dead-letters": {
            "get": operation("listDeadLetters", "Copies the relay gave up on, newest first (the sender was told)", "relay",
                vec![query_parameter("limit", "at most this many (1–500; `bad_limit` otherwise, `bad_query` when not a number)", json!({ "type": "integer", "default": 100 }))],
                None, ("200", ok("the dead letters", "DeadLetterList")), &["400", "503"]),
        },
        "/relay/dead-letters/{id}/retry": {
            "post": operation("retryDeadLetter", "Puts a dead letter back in its lane, with fresh retries", "relay",
                vec![id_parameter("dead letter")], None, ("200", ok("it will be sent again", "Retried")), &["400", "404", "503"]),
        },
        "/audit": {
            "get": operation("auditLog", "The audit log, newest first", "audit",
                vec![
                    query_parameter("before", "only entries with an id below this one (for the next page)", json!({ "type": "integer", "format": "int64" })),
                    query_parameter("limit", "entries per page", json!({ "type": "integer", "default": 100 })),
                ],
                None, ("200", ok("the entries", "AuditLog")), &["400", "503"]),
        },
    })
}

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON over HTTP under `/api/v1`, authenticated with an API token. Every change is written to the audit log. See docs/api.md.",
            "license": { "name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later" },
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "tags": [
            { "name": "connections", "description": "Platforms, connections and imports" },
            { "name": "people", "description": "People and their primary platforms" },
            { "name": "sync", "description": "Representing people on their secondary platforms" },
            { "name": "relay", "description": "The relay's queues and dead letters" },
            { "name": "directory", "description": "Directory Sync's scope" },
            { "name": "audit", "description": "The audit log" },
        ],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `switchboard token create --name NAME`, sent as `Authorization: Bearer TOKEN`",
                },
            },
            "schemas": schemas(),
            "responses": responses(),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

    /// The drift check CI runs: `docs/openapi.json` is what the hub serves.
    #[test]
    fn the_committed_document_is_what_the_hub_serves() {
        let rendered = render();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(COMMITTED, &rendered).expect("write docs/openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
        assert!(
            committed == rendered,
            "docs/openapi.json differs from the document the hub serves (crates/hub/src/api/openapi.rs); \
             regenerate it with `UPDATE_OPENAPI=1 cargo test -p switchboard-hub openapi` and commit it"
        );
    }

    /// Every `.route(PATH, METHODS)` of the API's source, as `(method, path)`.
    fn served_routes() -> BTreeSet<(String, String)> {
        let sources = [
            include_str!("mod.rs"),
            include_str!("connections.rs"),
            include_str!("directory.rs"),
            include_str!("people.rs"),
            include_str!("relay.rs"),
            include_str!("sync.rs"),
        ];
        let mut routes = BTreeSet::new();
        for line in sources.iter().flat_map(|source| source.lines()) {
            let Some(rest) = line
                .find(".route(\"")
                .map(|at| &line[at + ".route(\"".len()..])
            else {
                continue;
            };
            let (path, methods) = rest.split_once('"').expect("a quoted path");
            let mut found = false;
            for method in ["get", "post", "put", "delete", "patch"] {
                let call = format!("{method}(");
                let mut text = methods;
                while let Some(at) = text.find(&call) {
                    let before = text[..at].chars().next_back();
                    if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
                        routes.insert((method.to_owned(), path.to_owned()));
                        found = true;
                    }
                    text = &text[at + call.len()..];
                }
            }
            assert!(found, "no method found in route line: {line}");
        }
        routes
    }

    fn documented_routes() -> BTreeSet<(String, String)> {
        let document = document();
        let mut routes = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                routes.insert((method.clone(), path.clone()));
            }
        }
        routes
    }

    #[test]
    fn every_route_of_the_api_is_documented_and_nothing_else() {
        let served = served_routes();
        assert!(
            served.len() >= 20,
            "the route scan found too little: {served:?}"
        );
        let documented = documented_routes();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "served but not documented: {undocumented:?}; documented but not served: {unserved:?}"
        );
    }

    #[test]
    fn every_reference_resolves_and_every_path_parameter_is_declared() {
        let document = document();
        let mut references = Vec::new();
        collect_references(&document, &mut references);
        for reference in references {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            assert!(document.pointer(pointer).is_some(), "dangling {reference}");
        }
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let declared: BTreeSet<&str> = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                let in_path: BTreeSet<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
            }
        }
    }

    fn collect_references(value: &Value, into: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => into.push(target.clone()),
                        _ => collect_references(value, into),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_references(v, into)),
            _ => {}
        }
    }
}

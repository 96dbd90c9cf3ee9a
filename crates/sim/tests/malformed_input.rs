//! Bad input gets the vendor's error for it, never a 500 or a panic: random and malformed
//! requests — broken JSON and forms, wrong types, unknown and hostile ids, odd content types —
//! sent to every Slack and Graph route the simulator serves, in process.
//!
//! `MALFORMED_INPUT_CASES` sets the number of cases (default 1,500); the long runs recorded in
//! docs/simulator.md raise it.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use switchboard_sim::{SimConfig, Simulator};
use tower::ServiceExt;

const SLACK_METHODS: &[&str] = &[
    "auth.test",
    "users.list",
    "users.info",
    "users.lookupByEmail",
    "conversations.open",
    "conversations.info",
    "conversations.members",
    "conversations.history",
    "conversations.replies",
    "chat.postMessage",
    "chat.update",
    "chat.delete",
    "reactions.add",
    "reactions.remove",
    "apps.manifest.create",
    "apps.manifest.update",
    "apps.manifest.delete",
    "apps.manifest.validate",
    "tooling.tokens.rotate",
    "oauth.v2.access",
    "no.such.method",
];

const SLACK_PARAMS: &[&str] = &[
    "channel",
    "users",
    "text",
    "ts",
    "thread_ts",
    "limit",
    "cursor",
    "email",
    "user",
    "name",
    "timestamp",
    "token",
    "manifest",
    "app_id",
    "refresh_token",
    "code",
    "client_id",
    "client_secret",
    "redirect_uri",
    "username",
    "icon_url",
    "latest",
    "oldest",
    "inclusive",
    "return_im",
    "prevent_creation",
];

/// Graph and Entra paths; `{}` is replaced by an id from the pool.
const MICROSOFT_PATHS: &[(&str, &str)] = &[
    ("GET", "/graph/v1.0/users"),
    ("GET", "/graph/v1.0/users/{}"),
    ("DELETE", "/graph/v1.0/users/{}"),
    ("GET", "/graph/v1.0/users/delta"),
    ("GET", "/graph/v1.0/groups"),
    ("GET", "/graph/v1.0/groups/{}/members"),
    ("GET", "/graph/v1.0/teams/{}/members"),
    ("POST", "/graph/v1.0/invitations"),
    ("POST", "/graph/v1.0/chats"),
    ("GET", "/graph/v1.0/chats/{}"),
    ("GET", "/graph/v1.0/chats/{}/members"),
    ("GET", "/graph/v1.0/chats/{}/messages"),
    ("POST", "/graph/v1.0/chats/{}/messages"),
    ("GET", "/graph/v1.0/chats/{}/messages/{}"),
    ("PATCH", "/graph/v1.0/chats/{}/messages/{}"),
    ("POST", "/graph/v1.0/chats/{}/messages/{}/setReaction"),
    ("POST", "/graph/v1.0/chats/{}/messages/{}/unsetReaction"),
    (
        "POST",
        "/graph/v1.0/users/{}/chats/{}/messages/{}/softDelete",
    ),
    ("POST", "/graph/v1.0/subscriptions"),
    ("GET", "/graph/v1.0/subscriptions/{}"),
    ("PATCH", "/graph/v1.0/subscriptions/{}"),
    ("DELETE", "/graph/v1.0/subscriptions/{}"),
    ("POST", "/login/{}/oauth2/v2.0/token"),
    ("GET", "/login/{}/oauth2/v2.0/authorize"),
    ("GET", "/login/{}/v2.0/adminconsent"),
];

const JSON_KEYS: &[&str] = &[
    "body",
    "content",
    "contentType",
    "chatType",
    "members",
    "user@odata.bind",
    "@odata.type",
    "roles",
    "topic",
    "reactionType",
    "invitedUserEmailAddress",
    "inviteRedirectUrl",
    "changeType",
    "notificationUrl",
    "resource",
    "expirationDateTime",
    "clientState",
    "lifecycleNotificationUrl",
    "mentions",
    "channel",
    "text",
    "users",
    "display_information",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(JSON_KEYS), inner), 0..6).prop_map(
                |pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of(form_body())
}

fn form_body() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![
                prop::sample::select(SLACK_PARAMS).prop_map(str::to_owned),
                "[a-z_%]{0,8}"
            ],
            prop_oneof![
                ".{0,30}",
                "[0-9.]{0,20}",
                "[A-Z0-9,]{0,30}",
                "%[0-9A-Fa-f]{0,2}"
            ],
        ),
        0..6,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{}={}", urlencode(&k), urlencode(&v)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[derive(Debug, Clone)]
enum Payload {
    None,
    Json(String),
    Form(String),
    Bytes(String, Vec<u8>),
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        Just(Payload::None),
        json_value().prop_map(|v| Payload::Json(v.to_string())),
        ".{0,60}".prop_map(Payload::Json),
        form_body().prop_map(Payload::Form),
        (
            prop::sample::select(
                &[
                    "text/plain",
                    "application/octet-stream",
                    "multipart/form-data",
                    "application/json; charset=utf-16",
                    ""
                ][..]
            ),
            prop::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(ct, bytes)| Payload::Bytes(ct.to_owned(), bytes)),
    ]
}

fn id_pool(real: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(real),
        "[A-Za-z0-9:@._-]{0,40}",
        Just("..".to_owned()),
        Just("%00".to_owned()),
        Just("x".repeat(5_000)),
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
    ]
}

struct Fixture {
    router: Router,
    slack_token: String,
    graph_token: String,
    ids: Vec<String>,
}

async fn fixture() -> Fixture {
    let simulator = Simulator::new(SimConfig {
        base_url: "http://127.0.0.1:9".to_owned(),
        people: 40,
        rate_limits: false,
        state_file: None,
        platforms: None,
    })
    .unwrap();
    let router = simulator.router();
    let get = |uri: String| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let mint = |platform: &'static str, users: Value| {
        let router = router.clone();
        async move {
            let email = users
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["kind"] == "member")
                .and_then(|u| u["email"].as_str())
                .unwrap()
                .to_owned();
            let body = serde_json::json!({"platform": platform, "email": email}).to_string();
            let response = router
                .oneshot(
                    Request::post("/_sim/token")
                        .header("content-type", "application/json")
                        .body(Body::from(body))
                        .unwrap(),
                )
                .await
                .unwrap();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let slack_users = get("/_sim/users?platform=slack".to_owned()).await;
    let teams_users = get("/_sim/users?platform=teams".to_owned()).await;
    let ids = slack_users
        .as_array()
        .unwrap()
        .iter()
        .chain(teams_users.as_array().unwrap())
        .filter_map(|u| u["id"].as_str().map(str::to_owned))
        .collect();
    Fixture {
        slack_token: mint("slack", slack_users).await,
        graph_token: mint("teams", teams_users).await,
        router,
        ids,
    }
}

fn request(method: &str, uri: &str, token: Option<&str>, payload: &Payload) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match payload {
        Payload::None => Body::empty(),
        Payload::Json(text) => {
            builder = builder.header("content-type", "application/json");
            Body::from(text.clone())
        }
        Payload::Form(text) => {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
            Body::from(text.clone())
        }
        Payload::Bytes(content_type, bytes) => {
            if !content_type.is_empty() {
                builder = builder.header("content-type", content_type.as_str());
            }
            Body::from(bytes.clone())
        }
    };
    builder.body(body).unwrap()
}

fn cases() -> u32 {
    std::env::var("MALFORMED_INPUT_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_500)
}

#[test]
fn no_request_gets_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixture = runtime.block_on(fixture());
    let slack_case = (
        prop::sample::select(SLACK_METHODS),
        prop::sample::select(&["GET", "POST"][..]),
        query(),
        any::<bool>(),
        payload(),
    )
        .prop_map(|(method_name, verb, query, authed, payload)| {
            let uri = match query {
                Some(q) => format!("/slack/api/{method_name}?{q}"),
                None => format!("/slack/api/{method_name}"),
            };
            (verb.to_owned(), uri, authed, "slack", payload)
        });
    let microsoft_case = (
        prop::sample::select(MICROSOFT_PATHS),
        prop::collection::vec(id_pool(fixture.ids.clone()), 3),
        query(),
        any::<bool>(),
        payload(),
    )
        .prop_map(|((verb, template), ids, query, authed, payload)| {
            let mut path = (*template).to_owned();
            for id in &ids {
                path = path.replacen("{}", &urlencode(id), 1);
            }
            let uri = match query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            (verb.to_owned(), uri, authed, "teams", payload)
        });
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        ..Config::default()
    });
    runner
        .run(
            &prop_oneof![slack_case, microsoft_case],
            |(verb, uri, authed, platform, payload): (String, String, bool, &str, Payload)| {
                let token = authed.then_some(if platform == "slack" {
                    fixture.slack_token.as_str()
                } else {
                    fixture.graph_token.as_str()
                });
                let response = runtime.block_on(
                    fixture
                        .router
                        .clone()
                        .oneshot(request(&verb, &uri, token, &payload)),
                );
                let status = response.unwrap().status();
                prop_assert!(
                    !status.is_server_error(),
                    "{verb} {uri} with {payload:?} -> {status}"
                );
                Ok(())
            },
        )
        .unwrap();
}

/// Percent-encodes what a URI path cannot hold, so that hostile ids still make a valid request.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'@'
            | b'%' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

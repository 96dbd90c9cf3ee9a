//! Feeds the simulator's Slack and Graph routes arbitrary requests, in process, and fails on any
//! server error or panic. Run (nightly): `cargo fuzz run sim_routes -- -dict=fuzz/sim_routes.dict`.
#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use switchboard_sim::{SimConfig, Simulator};
use tower::ServiceExt;

#[derive(Arbitrary, Debug)]
struct Input {
    slack: bool,
    method: u8,
    path: String,
    query: String,
    authorised: bool,
    content_type: u8,
    body: Vec<u8>,
}

struct World {
    runtime: tokio::runtime::Runtime,
    router: Router,
    slack_token: String,
    graph_token: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let simulator = Simulator::new(SimConfig {
            base_url: "http://127.0.0.1:9".to_owned(),
            people: 20,
            rate_limits: false,
            state_file: None,
        })
        .expect("a simulator");
        let router = {
            let _inside = runtime.enter();
            simulator.router()
        };
        let (slack_token, graph_token) = runtime.block_on(async {
            (mint(&router, "slack").await, mint(&router, "teams").await)
        });
        World {
            runtime,
            router,
            slack_token,
            graph_token,
        }
    })
}

async fn json(router: &Router, request: Request<Body>) -> serde_json::Value {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    serde_json::from_slice(&bytes).expect("JSON")
}

async fn mint(router: &Router, platform: &str) -> String {
    let users = json(
        router,
        Request::get(format!("/_sim/users?platform={platform}"))
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    let email = users
        .as_array()
        .and_then(|users| users.iter().find(|u| u["kind"] == "member"))
        .and_then(|u| u["email"].as_str())
        .expect("a member")
        .to_owned();
    let body = serde_json::json!({"platform": platform, "email": email}).to_string();
    let token = json(
        router,
        Request::post("/_sim/token")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("a request"),
    )
    .await;
    token["token"].as_str().expect("a token").to_owned()
}

/// Keeps the characters a URI may hold and percent-encodes the rest.
fn uri_safe(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:@/&=+%!$'()*,;".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const METHODS: [&str; 5] = ["GET", "POST", "PATCH", "DELETE", "PUT"];
const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "multipart/form-data",
    "application/json; charset=utf-8",
];

fuzz_target!(|input: Input| {
    let world = world();
    let prefix = if input.slack { "/slack/api/" } else { "/graph/v1.0/" };
    let uri = format!("{prefix}{}?{}", uri_safe(&input.path), uri_safe(&input.query));
    let mut request = Request::builder()
        .method(METHODS[usize::from(input.method) % METHODS.len()])
        .uri(uri.as_str())
        .header(
            "content-type",
            CONTENT_TYPES[usize::from(input.content_type) % CONTENT_TYPES.len()],
        );
    if input.authorised {
        let token = if input.slack {
            &world.slack_token
        } else {
            &world.graph_token
        };
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let Ok(request) = request.body(Body::from(input.body)) else {
        return;
    };
    let status = world
        .runtime
        .block_on(world.router.clone().oneshot(request))
        .expect("infallible")
        .status();
    assert!(!status.is_server_error(), "{uri} -> {status}");
});

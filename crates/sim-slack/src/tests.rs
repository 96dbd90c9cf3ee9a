//! The simulated Slack driven over real HTTP on a loopback port, as its clients will drive it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_sim_kit::{OrgPlatform, OrgSpec, Organisation, SimContext, SimPlatform};

use crate::SlackSim;
use crate::encoding::slack_id;
use crate::events::signature;

struct Harness {
    base: String,
    sim: Arc<SlackSim>,
    http: reqwest::Client,
    organisation: Organisation,
}

async fn start(people: usize, rate_limits: bool) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let context = SimContext::new(base.clone(), rate_limits);
    context.webhooks.set_time_scale(0.0);
    let sim = SlackSim::new(context);
    let organisation = Organisation::generate(&OrgSpec {
        people,
        ..OrgSpec::new(vec![sim.org_platform(), OrgPlatform::new("teams")])
    });
    sim.seed(&organisation);
    let router = sim.clone().router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Harness {
        base,
        sim,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        organisation,
    }
}

impl Harness {
    async fn call(&self, method: &str, token: Option<&str>, params: &[(&str, &str)]) -> Value {
        let mut request = self
            .http
            .post(format!("{}/slack/api/{method}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                params
                    .iter()
                    .map(|(n, v)| format!("{n}={}", crate::encoding::percent_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{method}");
        response.json().await.unwrap()
    }

    async fn ok(&self, method: &str, token: &str, params: &[(&str, &str)]) -> Value {
        let answer = self.call(method, Some(token), params).await;
        assert_eq!(answer["ok"], true, "{method}: {answer}");
        answer
    }

    async fn error(&self, method: &str, token: Option<&str>, params: &[(&str, &str)]) -> String {
        let answer = self.call(method, token, params).await;
        assert_eq!(answer["ok"], false, "{method}: {answer}");
        answer["error"].as_str().unwrap().to_owned()
    }

    fn slack_people(&self) -> Vec<&switchboard_sim_kit::SeedPerson> {
        self.organisation.people_on("slack").collect()
    }

    fn token(&self, rank: usize) -> String {
        self.sim
            .mint_token(&self.slack_people()[rank].email)
            .unwrap()
    }
}

/// An Events API receiver: answers `url_verification`, fails the first `failures` other
/// deliveries with a 500, and keeps every request.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    failures: Arc<AtomicU32>,
    echo_challenge: bool,
}

impl Receiver {
    async fn start(echo_challenge: bool, failures: u32) -> (String, Self) {
        let receiver = Self {
            echo_challenge,
            failures: Arc::new(AtomicU32::new(failures)),
            ..Self::default()
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/events",
            post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state.received.lock().unwrap().push((headers, body.clone()));
                    let payload: Value = serde_json::from_str(&body).unwrap_or_default();
                    if payload["type"] == "url_verification" {
                        let answer = if state.echo_challenge {
                            payload["challenge"].as_str().unwrap_or_default().to_owned()
                        } else {
                            "nope".to_owned()
                        };
                        return (StatusCode::OK, answer);
                    }
                    let failing = state
                        .failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        (StatusCode::INTERNAL_SERVER_ERROR, String::new())
                    } else {
                        (StatusCode::OK, String::new())
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, receiver)
    }

    /// Waits (generously) until `count` callbacks have arrived, and returns them.
    async fn callbacks(&self, count: usize) -> Vec<(HeaderMap, Value)> {
        for _ in 0..500 {
            let callbacks: Vec<(HeaderMap, Value)> = self
                .received
                .lock()
                .unwrap()
                .iter()
                .map(|(h, b)| (h.clone(), serde_json::from_str::<Value>(b).unwrap()))
                .filter(|(_, b)| b["type"] == "event_callback")
                .collect();
            if callbacks.len() >= count {
                return callbacks;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {count} event callbacks arrived");
    }
}

fn verify(headers: &HeaderMap, body: &Value, secret: &str) {
    let timestamp = headers["x-slack-request-timestamp"].to_str().unwrap();
    let expected = signature(secret, timestamp, body.to_string().as_bytes());
    assert_eq!(headers["x-slack-signature"].to_str().unwrap(), expected);
}

fn manifest(name: &str, request_url: Option<&str>) -> String {
    let mut manifest = json!({
        "display_information": {"name": name},
        "features": {"bot_user": {"display_name": name, "always_online": true}},
        "oauth_config": {
            "redirect_urls": ["https://hub.example/slack/callback"],
            "scopes": {
                "bot": ["chat:write", "im:history", "im:write", "mpim:history", "reactions:read", "users:read"],
                "user": ["chat:write"],
            },
        },
    });
    if let Some(url) = request_url {
        manifest["settings"] = json!({"event_subscriptions": {
            "request_url": url,
            "bot_events": ["message.im", "message.mpim", "reaction_added", "team_join"],
        }});
    }
    manifest.to_string()
}

/// Creates an app and installs it through the consent page as the workspace's first admin.
/// Returns the app's creation answer and the `oauth.v2.access` answer.
async fn create_and_install(h: &Harness, request_url: Option<&str>) -> (Value, Value) {
    let admin = h.slack_people()[0].user_id();
    let config = h.sim.issue_config_tokens(&admin);
    let config_token = config["token"].as_str().unwrap();
    let created = h
        .ok(
            "apps.manifest.create",
            config_token,
            &[("manifest", &manifest("Relay", request_url))],
        )
        .await;
    let client_id = created["credentials"]["client_id"].as_str().unwrap();
    let client_secret = created["credentials"]["client_secret"].as_str().unwrap();
    let decision = h
        .http
        .post(format!("{}/slack/oauth/v2/authorize", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={client_id}&scope=chat%3Awrite%2Cim%3Ahistory%2Cim%3Awrite%2Cmpim%3Ahistory%2Creactions%3Aread%2Cusers%3Aread&user_scope=chat%3Awrite&redirect_uri=https%3A%2F%2Fhub.example%2Fslack%2Fcallback&state=xyz&email={}&decision=allow",
            crate::encoding::percent_encode(&h.slack_people()[0].email)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(decision.status(), 302);
    let location = decision.headers()["location"].to_str().unwrap().to_owned();
    let code = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_owned();
    let access = h
        .http
        .post(format!("{}/slack/api/oauth.v2.access", h.base))
        .basic_auth(client_id, Some(client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "code={code}&redirect_uri=https%3A%2F%2Fhub.example%2Fslack%2Fcallback"
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(access["ok"], true, "{access}");
    (created, access)
}

trait PersonId {
    fn user_id(&self) -> String;
}

impl PersonId for switchboard_sim_kit::SeedPerson {
    fn user_id(&self) -> String {
        slack_id('U', self.index as u64)
    }
}

#[tokio::test]
async fn users_list_pages_through_everyone_exactly_once() {
    let h = start(2_000, false).await;
    let token = h.token(5);
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = h
            .ok(
                "users.list",
                &token,
                &[("limit", "150"), ("cursor", &cursor)],
            )
            .await;
        pages += 1;
        for member in page["members"].as_array().unwrap() {
            assert!(seen.insert(member["id"].as_str().unwrap().to_owned()));
        }
        cursor = page["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        if cursor.is_empty() {
            break;
        }
    }
    let expected: HashSet<String> = h.sim.users().into_iter().map(|u| u.id).collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.len(), 1_200 + 3);
    assert_eq!(pages, 1_203_usize.div_ceil(150));
    assert!(seen.contains(&h.slack_people()[0].user_id()));
    assert_eq!(
        h.error("users.list", Some(&token), &[]).await,
        "limit_required"
    );
    assert_eq!(
        h.error(
            "users.list",
            Some(&token),
            &[("limit", "10"), ("cursor", "bm9wZQ==")]
        )
        .await,
        "invalid_cursor"
    );
}

#[tokio::test]
async fn users_are_seeded_with_admins_bots_and_a_deactivated_person() {
    let h = start(40, false).await;
    let token = h.token(3);
    let members = h.ok("users.list", &token, &[]).await["members"].clone();
    let members = members.as_array().unwrap();
    let first = &members[0];
    assert_eq!(first["id"], h.slack_people()[0].user_id());
    assert_eq!(first["is_admin"], true);
    assert_eq!(first["is_primary_owner"], true);
    assert_eq!(first["profile"]["email"], h.slack_people()[0].email);
    assert_eq!(members.iter().filter(|m| m["is_bot"] == true).count(), 2);
    assert_eq!(members.iter().filter(|m| m["deleted"] == true).count(), 1);
    let email = &h.slack_people()[7].email;
    let found = h
        .ok(
            "users.lookupByEmail",
            &token,
            &[("email", &email.to_uppercase())],
        )
        .await;
    assert_eq!(found["user"]["id"], h.slack_people()[7].user_id());
    assert_eq!(
        h.error(
            "users.lookupByEmail",
            Some(&token),
            &[("email", "nobody@x.example")]
        )
        .await,
        "users_not_found"
    );
    let info = h
        .ok(
            "users.info",
            &token,
            &[("user", &h.slack_people()[1].user_id())],
        )
        .await;
    assert_eq!(info["user"]["real_name"], h.slack_people()[1].display_name);
    assert_eq!(
        h.error("users.info", Some(&token), &[("user", "UNOPE")])
            .await,
        "user_not_found"
    );
}

#[tokio::test]
async fn bad_requests_get_slack_errors() {
    let h = start(20, false).await;
    let token = h.token(0);
    assert_eq!(h.error("auth.test", None, &[]).await, "not_authed");
    assert_eq!(
        h.error("auth.test", Some("xoxp-nope"), &[]).await,
        "invalid_auth"
    );
    let test = h.ok("auth.test", &token, &[]).await;
    assert_eq!(test["user_id"], h.slack_people()[0].user_id());
    assert_eq!(
        h.error("apps.manifest.create", Some(&token), &[("manifest", "{}")])
            .await,
        "not_allowed_token_type"
    );
    let unknown = h
        .http
        .get(format!("{}/slack/api/nope.nothing", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"],
        "unknown_method"
    );
    for (content_type, body, error) in [
        ("application/json", "{not json", "invalid_json"),
        (
            "application/x-www-form-urlencoded",
            "channel=%zz",
            "invalid_form_data",
        ),
        ("text/csv", "a,b", "invalid_post_type"),
    ] {
        let answer: Value = h
            .http
            .post(format!("{}/slack/api/chat.postMessage", h.base))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["error"], error);
    }
    let by_json: Value = h
        .http
        .post(format!("{}/slack/api/auth.test", h.base))
        .header("content-type", "application/json")
        .body(json!({"token": token}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_json["error"], "not_authed");
    let by_query: Value = h
        .http
        .get(format!("{}/slack/api/auth.test?token={token}", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_query["ok"], true);
}

#[tokio::test]
async fn people_chat_in_dms_and_group_dms() {
    let h = start(40, false).await;
    let (alice, bob, carol) = (h.token(0), h.token(1), h.token(2));
    let bob_id = h.slack_people()[1].user_id();
    let carol_id = h.slack_people()[2].user_id();
    let opened = h
        .ok("conversations.open", &alice, &[("users", &bob_id)])
        .await;
    let dm = opened["channel"]["id"].as_str().unwrap().to_owned();
    assert!(dm.starts_with('D'));
    let again = h
        .ok(
            "conversations.open",
            &bob,
            &[("users", &h.slack_people()[0].user_id())],
        )
        .await;
    assert_eq!(again["channel"]["id"], dm.as_str());
    assert_eq!(again["already_open"], true);
    let group = h
        .ok(
            "conversations.open",
            &alice,
            &[("users", &format!("{bob_id},{carol_id}"))],
        )
        .await;
    assert!(group["channel"]["id"].as_str().unwrap().starts_with('G'));
    assert_eq!(group["channel"]["is_mpim"], true);

    let posted = h
        .ok(
            "chat.postMessage",
            &alice,
            &[("channel", &dm), ("text", "hello bob")],
        )
        .await;
    let ts = posted["ts"].as_str().unwrap().to_owned();
    assert_eq!(posted["message"]["user"], h.slack_people()[0].user_id());
    h.ok(
        "chat.postMessage",
        &bob,
        &[("channel", &dm), ("text", "hi!"), ("thread_ts", &ts)],
    )
    .await;
    let history = h
        .ok("conversations.history", &bob, &[("channel", &dm)])
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["reply_count"], 1);
    let replies = h
        .ok(
            "conversations.replies",
            &bob,
            &[("channel", &dm), ("ts", &ts)],
        )
        .await;
    assert_eq!(replies["messages"].as_array().unwrap().len(), 2);
    assert_eq!(replies["messages"][1]["thread_ts"], ts.as_str());

    assert_eq!(
        h.error(
            "chat.update",
            Some(&bob),
            &[("channel", &dm), ("ts", &ts), ("text", "x")]
        )
        .await,
        "cant_update_message"
    );
    let updated = h
        .ok(
            "chat.update",
            &alice,
            &[("channel", &dm), ("ts", &ts), ("text", "hello, Bob")],
        )
        .await;
    assert_eq!(updated["message"]["text"], "hello, Bob");
    let reaction = [
        ("channel", dm.as_str()),
        ("timestamp", ts.as_str()),
        ("name", "thumbsup"),
    ];
    h.ok("reactions.add", &bob, &reaction).await;
    assert_eq!(
        h.error("reactions.add", Some(&bob), &reaction).await,
        "already_reacted"
    );
    h.ok("reactions.remove", &bob, &reaction).await;
    assert_eq!(
        h.error("reactions.remove", Some(&bob), &reaction).await,
        "no_reaction"
    );

    assert_eq!(
        h.error(
            "chat.postMessage",
            Some(&carol),
            &[("channel", &dm), ("text", "let me in")]
        )
        .await,
        "channel_not_found"
    );
    assert_eq!(
        h.error("conversations.history", Some(&carol), &[("channel", &dm)])
            .await,
        "channel_not_found"
    );
    let members = h
        .ok("conversations.members", &alice, &[("channel", &dm)])
        .await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    let info = h
        .ok("conversations.info", &alice, &[("channel", &dm)])
        .await;
    assert_eq!(info["channel"]["user"], bob_id.as_str());

    h.ok("chat.delete", &alice, &[("channel", &dm), ("ts", &ts)])
        .await;
    assert_eq!(
        h.error(
            "chat.delete",
            Some(&alice),
            &[("channel", &dm), ("ts", &ts)]
        )
        .await,
        "message_not_found"
    );
}

#[tokio::test]
async fn conversations_open_refuses_as_slack_does() {
    let h = start(60, false).await;
    let token = h.token(0);
    let nine: Vec<String> = h.slack_people()[1..10]
        .iter()
        .map(|p| p.user_id())
        .collect();
    let deactivated = h
        .sim
        .users()
        .into_iter()
        .find(|u| u.kind == "deactivated")
        .unwrap()
        .id;
    for (users, error) in [
        (nine.join(","), "too_many_users"),
        ("UNOBODY1".to_owned(), "user_not_found"),
        (deactivated, "user_disabled"),
        (",,".to_owned(), "not_enough_users"),
    ] {
        assert_eq!(
            h.error("conversations.open", Some(&token), &[("users", &users)])
                .await,
            error
        );
    }
    assert_eq!(
        h.error("conversations.open", Some(&token), &[]).await,
        "users_list_not_supplied"
    );
}

#[tokio::test]
async fn apps_are_created_installed_and_told_about_messages() {
    let h = start(40, false).await;
    let (url, receiver) = Receiver::start(true, 1).await;
    let (created, access) = create_and_install(&h, Some(&url)).await;
    let secret = created["credentials"]["signing_secret"].as_str().unwrap();
    let verification = receiver.received.lock().unwrap()[0].clone();
    let verification_body: Value = serde_json::from_str(&verification.1).unwrap();
    assert_eq!(verification_body["type"], "url_verification");
    verify(&verification.0, &verification_body, secret);

    assert_eq!(access["token_type"], "bot");
    assert_eq!(access["is_enterprise_install"], false);
    assert_eq!(access["enterprise"], Value::Null);
    assert_eq!(access["authed_user"]["token_type"], "user");
    assert!(
        access["access_token"]
            .as_str()
            .unwrap()
            .starts_with("xoxb-")
    );
    assert!(
        access["authed_user"]["access_token"]
            .as_str()
            .unwrap()
            .starts_with("xoxp-")
    );
    let bot_user = access["bot_user_id"].as_str().unwrap().to_owned();
    let bot_token = access["access_token"].as_str().unwrap().to_owned();

    let person = h.token(3);
    let dm = h
        .ok("conversations.open", &person, &[("users", &bot_user)])
        .await["channel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.ok(
        "chat.postMessage",
        &person,
        &[("channel", &dm), ("text", "hello app")],
    )
    .await;
    let callbacks = receiver.callbacks(2).await;
    assert!(callbacks[0].0.get("x-slack-retry-num").is_none());
    assert_eq!(callbacks[0].1, callbacks[1].1);
    let (headers, envelope) = &callbacks[1];
    verify(headers, envelope, secret);
    assert_eq!(headers["x-slack-retry-num"], "1");
    assert_eq!(headers["x-slack-retry-reason"], "http_error");
    assert_eq!(envelope["api_app_id"], created["app_id"]);
    assert_eq!(envelope["event"]["type"], "message");
    assert_eq!(envelope["event"]["channel_type"], "im");
    assert_eq!(envelope["event"]["text"], "hello app");
    assert_eq!(envelope["authorizations"][0]["user_id"], bot_user.as_str());

    let reply = h
        .ok(
            "chat.postMessage",
            &bot_token,
            &[
                ("channel", &dm),
                ("text", "hello human"),
                ("username", "Someone else"),
            ],
        )
        .await;
    assert!(reply["message"].get("username").is_none());
    assert_eq!(
        reply["message"]["bot_id"].as_str().unwrap().chars().next(),
        Some('B')
    );
    assert_eq!(
        h.error(
            "users.lookupByEmail",
            Some(&bot_token),
            &[("email", "a@b.c")]
        )
        .await,
        "missing_scope"
    );

    let admin = h.slack_people()[0].user_id();
    let config = h.sim.issue_config_tokens(&admin);
    h.ok(
        "apps.manifest.delete",
        config["token"].as_str().unwrap(),
        &[("app_id", created["app_id"].as_str().unwrap())],
    )
    .await;
    assert_eq!(
        h.error("auth.test", Some(&bot_token), &[]).await,
        "token_revoked"
    );
}

#[tokio::test]
async fn the_consent_page_needs_an_admin_and_codes_work_once() {
    let h = start(40, false).await;
    let admin = h.slack_people()[0].user_id();
    let config = h.sim.issue_config_tokens(&admin);
    let created = h
        .ok(
            "apps.manifest.create",
            config["token"].as_str().unwrap(),
            &[("manifest", &manifest("Relay", None))],
        )
        .await;
    let client_id = created["credentials"]["client_id"].as_str().unwrap();
    let page = h
        .http
        .get(created["oauth_authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Allow"));
    let decide = |email: String, decision: &'static str| {
        h.http
            .post(format!("{}/slack/oauth/v2/authorize", h.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "client_id={client_id}&scope=chat%3Awrite&state=s1&email={}&decision={decision}",
                crate::encoding::percent_encode(&email)
            ))
            .send()
    };
    let member = decide(h.slack_people()[5].email.clone(), "allow")
        .await
        .unwrap();
    assert_eq!(member.status(), 200);
    assert!(member.text().await.unwrap().contains("admin"));
    let cancelled = decide(h.slack_people()[0].email.clone(), "cancel")
        .await
        .unwrap();
    assert_eq!(
        cancelled.headers()["location"],
        "https://hub.example/slack/callback?error=access_denied&state=s1"
    );
    let allowed = decide(h.slack_people()[0].email.clone(), "allow")
        .await
        .unwrap();
    let location = allowed.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.ends_with("&state=s1"));
    let code = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_owned();
    let secret = created["credentials"]["client_secret"].as_str().unwrap();
    for (client_secret, outcome) in [
        ("wrong", "bad_client_secret"),
        (secret, "ok"),
        (secret, "invalid_code"),
    ] {
        let answer = h
            .call(
                "oauth.v2.access",
                None,
                &[
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                    ("code", &code),
                ],
            )
            .await;
        let got = answer["error"].as_str().unwrap_or("ok");
        assert_eq!(got, outcome, "{answer}");
    }
    assert_eq!(
        h.call(
            "oauth.v2.access",
            None,
            &[("client_id", "1.nope"), ("code", &code)]
        )
        .await["error"],
        "invalid_client_id"
    );
}

#[tokio::test]
async fn a_request_url_that_does_not_answer_the_challenge_is_refused() {
    let h = start(10, false).await;
    let (url, _receiver) = Receiver::start(false, 0).await;
    let config = h.sim.issue_config_tokens(&h.slack_people()[0].user_id());
    let answer = h
        .call(
            "apps.manifest.create",
            config["token"].as_str(),
            &[("manifest", &manifest("Relay", Some(&url)))],
        )
        .await;
    assert_eq!(answer["error"], "invalid_manifest");
    assert_eq!(
        answer["errors"][0]["pointer"],
        "/settings/event_subscriptions/request_url"
    );
    let invalid = h
        .call(
            "apps.manifest.validate",
            config["token"].as_str(),
            &[("manifest", r#"{"display_information":{}}"#)],
        )
        .await;
    assert_eq!(invalid["errors"][0]["pointer"], "/display_information/name");
    let rotated = h
        .call(
            "tooling.tokens.rotate",
            None,
            &[("refresh_token", config["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert!(rotated["token"].as_str().unwrap().starts_with("xoxe.xoxp-"));
    let reused = h
        .call(
            "tooling.tokens.rotate",
            None,
            &[("refresh_token", config["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(reused["error"], "invalid_refresh_token");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let h = start(10, true).await;
    let token = h.token(0);
    let mut throttled = None;
    for _ in 0..10 {
        let response = h
            .http
            .get(format!("{}/slack/api/users.list?limit=5", h.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            throttled = Some(response);
            break;
        }
    }
    let response = throttled.expect("users.list (tier 2) is throttled after its burst");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": false, "error": "ratelimited"})
    );
    let injected = h.sim.failure(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(injected.status(), 503);
}

#[tokio::test]
async fn state_survives_save_and_restore() {
    let h = start(30, false).await;
    let alice = h.token(0);
    let dm = h
        .ok(
            "conversations.open",
            &alice,
            &[("users", &h.slack_people()[1].user_id())],
        )
        .await["channel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.ok(
        "chat.postMessage",
        &alice,
        &[("channel", &dm), ("text", "remember me")],
    )
    .await;
    let saved = h.sim.save();
    let restored = SlackSim::new(SimContext::new("http://127.0.0.1:9", false));
    restored.restore(saved).unwrap();
    assert_eq!(restored.users(), h.sim.users());
    assert_eq!(
        restored.mint_token(&h.slack_people()[0].email).unwrap(),
        alice
    );
    let state = restored.read();
    assert_eq!(state.conversations[&dm].messages[0].text, "remember me");
    assert!(restored.restore(json!({"version": 99})).is_err());
}

#[tokio::test]
async fn the_web_client_sends_through_the_same_operations() {
    let h = start(20, false).await;
    let me = &h.slack_people()[0];
    let signed_in = h
        .http
        .post(format!("{}/slack/signin", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}",
            crate::encoding::percent_encode(&me.email)
        ))
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let form = |path: String, body: String| {
        h.http
            .post(format!("{}{path}", h.base))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let opened = form(
        "/slack/open".to_owned(),
        format!(
            "to={}",
            crate::encoding::percent_encode(&h.slack_people()[1].email)
        ),
    )
    .await
    .unwrap();
    let location = opened.headers()["location"].to_str().unwrap().to_owned();
    let channel = location.trim_start_matches("/slack/c/").to_owned();
    form(
        format!("/slack/c/{channel}/post"),
        "text=hi+from+the+web".to_owned(),
    )
    .await
    .unwrap();
    let page = h
        .http
        .get(format!("{}{location}", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("hi from the web"));
    let other = h.token(1);
    let history = h
        .ok("conversations.history", &other, &[("channel", &channel)])
        .await;
    assert_eq!(history["messages"][0]["text"], "hi from the web");
}

#[tokio::test]
async fn the_web_client_finds_bots_and_renders_mrkdwn_safely() {
    let h = start(20, false).await;
    let me = &h.slack_people()[0];
    let signed_in = h
        .http
        .post(format!("{}/slack/signin", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}",
            crate::encoding::percent_encode(&me.email)
        ))
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let get = |path: String| {
        h.http
            .get(format!("{}{path}", h.base))
            .header("cookie", &cookie)
            .send()
    };
    let post = |path: String, body: String| {
        h.http
            .post(format!("{}{path}", h.base))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };

    let directory = get("/slack/people?q=POLL".to_owned()).await.unwrap();
    assert!(
        directory.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let directory = directory.text().await.unwrap();
    assert!(directory.contains("1 person matches."), "{directory}");
    assert!(
        directory.contains("<strong>pollbot</strong><span class=\"tag\">bot</span>"),
        "{directory}"
    );
    let bot = {
        let state = h.sim.read();
        state
            .users
            .iter()
            .find(|u| u.name == "pollbot")
            .unwrap()
            .id
            .clone()
    };
    assert!(directory.contains(&format!("name=\"to\" value=\"{bot}\"")));

    let opened = post("/slack/open".to_owned(), format!("to={bot}&with=U00000001"))
        .await
        .unwrap();
    let location = opened.headers()["location"].to_str().unwrap().to_owned();
    let channel = location.trim_start_matches("/slack/c/").to_owned();
    assert!(
        channel.starts_with('D'),
        "a row's Message opens a DM with that one person"
    );

    let typed = "*bold* & <script>alert(1)</script> see https://x.example/a?b=1&c=2.";
    post(
        format!("/slack/c/{channel}/post"),
        format!("text={}", crate::encoding::percent_encode(typed)),
    )
    .await
    .unwrap();
    let sent = h.sim.read().conversations[&channel].messages[0]
        .text
        .clone();
    assert_eq!(
        sent,
        "*bold* &amp; &lt;script&gt;alert(1)&lt;/script&gt; see <https://x.example/a?b=1&amp;c=2>."
    );

    let group = post(
        "/slack/open".to_owned(),
        format!(
            "with={}&with={bot}",
            crate::encoding::percent_encode(&h.slack_people()[1].display_name)
        ),
    )
    .await
    .unwrap();
    let group = group.headers()["location"].to_str().unwrap().to_owned();
    assert!(group.starts_with("/slack/c/G"), "{group}");
    let hostile = format!(
        "hi <@{}> <https://x.example|a label> <img src=x onerror=alert(1)> <javascript:alert(1)|bad> &lt;b&gt;",
        me.user_id()
    );
    h.ok(
        "chat.postMessage",
        &h.token(1),
        &[
            ("channel", group.trim_start_matches("/slack/c/")),
            ("text", &hostile),
        ],
    )
    .await;
    let page = get(group.clone()).await.unwrap().text().await.unwrap();
    assert!(
        page.contains(&format!(
            "<span class=\"mention\">@{}</span>",
            me.display_name
        )),
        "{page}"
    );
    assert!(page.contains("<a href=\"https://x.example\" rel=\"noopener noreferrer\">a label</a>"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(
        !page.contains("<img") && !page.contains("javascript:"),
        "{page}"
    );
    assert!(page.contains("<script src=\"/slack/live.js\" defer></script>"));
    assert_eq!(
        page.matches("<script").count(),
        1,
        "the live script is the page's only script"
    );

    let live: Value = get(format!("/slack/c/{channel}/live"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let html = live["messages"][0]["html"].as_str().unwrap();
    assert!(html.contains("<b>bold</b> &amp; &lt;script&gt;alert(1)&lt;/script&gt; see <a href=\"https://x.example/a?b=1&amp;c=2\""), "{html}");
    assert!(html.contains(&format!(
        "data-v=\"{}\"",
        live["messages"][0]["v"].as_str().unwrap()
    )));
    let script = get("/slack/live.js".to_owned()).await.unwrap();
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn message_metadata_is_kept_and_shown_as_slack_shows_it() {
    let h = start(40, false).await;
    let (url, receiver) = Receiver::start(true, 0).await;
    let (_, access) = create_and_install(&h, Some(&url)).await;
    let bot_token = access["access_token"].as_str().unwrap().to_owned();
    let person = h.slack_people()[3].user_id();
    let dm = h
        .ok("conversations.open", &bot_token, &[("users", &person)])
        .await["channel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let metadata = json!({"event_type": "relay_copy", "event_payload": {"key": "k-1", "n": 2}});
    let form = h
        .ok(
            "chat.postMessage",
            &bot_token,
            &[
                ("channel", &dm),
                ("text", "from a form"),
                ("metadata", &metadata.to_string()),
            ],
        )
        .await;
    assert_eq!(form["message"]["metadata"], metadata);
    let event = &receiver.callbacks(1).await[0].1["event"];
    assert_eq!(event["text"], "from a form");
    assert_eq!(event["metadata"], metadata);

    let in_json = json!({"event_type": "relay_copy", "event_payload": {"key": "k-2"}});
    let answer: Value = h
        .http
        .post(format!("{}/slack/api/chat.postMessage", h.base))
        .bearer_auth(&bot_token)
        .json(&json!({"channel": dm, "text": "from JSON", "metadata": in_json}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["message"]["metadata"], in_json);
    h.ok(
        "chat.postMessage",
        &bot_token,
        &[("channel", &dm), ("text", "no metadata")],
    )
    .await;

    let plain = h
        .ok("conversations.history", &bot_token, &[("channel", &dm)])
        .await;
    assert!(
        plain["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("metadata").is_none())
    );
    let full = h
        .ok(
            "conversations.history",
            &bot_token,
            &[("channel", &dm), ("include_all_metadata", "true")],
        )
        .await;
    let shown: Vec<&Value> = full["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["metadata"])
        .collect();
    assert_eq!(shown, [&Value::Null, &in_json, &metadata]);

    for bad in [
        "not json",
        r#"{"event_payload": {}}"#,
        r#"{"event_type": "x", "event_payload": "text"}"#,
        r#"["event_type"]"#,
    ] {
        assert_eq!(
            h.error(
                "chat.postMessage",
                Some(&bot_token),
                &[("channel", &dm), ("text", "t"), ("metadata", bad)],
            )
            .await,
            "invalid_metadata_format",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn history_pages_between_oldest_and_latest() {
    let h = start(40, false).await;
    let alice = h.token(0);
    let bob_id = h.slack_people()[1].user_id();
    let dm = h
        .ok("conversations.open", &alice, &[("users", &bob_id)])
        .await["channel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sent = Vec::new();
    for n in 0..5 {
        let posted = h
            .ok(
                "chat.postMessage",
                &alice,
                &[("channel", &dm), ("text", &format!("m{n}"))],
            )
            .await;
        sent.push(posted["ts"].as_str().unwrap().to_owned());
    }
    let texts = |page: &Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let between = h
        .ok(
            "conversations.history",
            &alice,
            &[("channel", &dm), ("oldest", &sent[1]), ("latest", &sent[3])],
        )
        .await;
    assert_eq!(texts(&between), ["m2"]);
    let inclusive = h
        .ok(
            "conversations.history",
            &alice,
            &[
                ("channel", &dm),
                ("oldest", &sent[1]),
                ("latest", &sent[3]),
                ("inclusive", "true"),
            ],
        )
        .await;
    assert_eq!(texts(&inclusive), ["m3", "m2", "m1"]);

    let first = h
        .ok(
            "conversations.history",
            &alice,
            &[("channel", &dm), ("oldest", &sent[0]), ("limit", "2")],
        )
        .await;
    assert_eq!(texts(&first), ["m4", "m3"]);
    assert_eq!(first["has_more"], true);
    let cursor = first["response_metadata"]["next_cursor"].as_str().unwrap();
    let second = h
        .ok(
            "conversations.history",
            &alice,
            &[
                ("channel", &dm),
                ("oldest", &sent[0]),
                ("limit", "2"),
                ("cursor", cursor),
            ],
        )
        .await;
    assert_eq!(texts(&second), ["m2", "m1"]);
    assert_eq!(second["has_more"], false);
    assert_eq!(second["response_metadata"]["next_cursor"], "");
}

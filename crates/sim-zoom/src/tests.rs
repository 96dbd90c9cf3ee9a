//! The simulated Zoom driven over real HTTP on a loopback port, as its clients drive it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use switchboard_sim_kit::{
    DemoHub, OrgSpec, Organisation, SimContext, SimPlatform, SimulatedConnect,
};
use tokio::sync::mpsc;

use crate::ZoomSim;
use crate::events::{encrypted_token, signature};
use crate::state::{
    ACCOUNT_ID, AppKind, CHATBOT_CLIENT_ID, CHATBOT_CLIENT_SECRET, CHATBOT_SECRET_TOKEN, ROBOT_JID,
    S2S_CLIENT_ID, S2S_CLIENT_SECRET, S2S_SECRET_TOKEN, TEAM_CHAT_EVENTS, USER_CLIENT_ID,
    USER_CLIENT_SECRET,
};

/// People of the seeded organisation the tests name: 0 is the owner, 1 an admin, 7 is
/// deactivated, the others members.
const OWNER: usize = 0;
const ALICE: usize = 2;
const BOB: usize = 3;
const CAROL: usize = 4;
const DEACTIVATED: usize = 7;

struct Harness {
    base: String,
    sim: Arc<ZoomSim>,
    http: reqwest::Client,
    organisation: Organisation,
}

/// What the simulator server adds around a platform and the demo and the SDK proof use:
/// `/_sim/users` and `/_sim/token`.
fn simulator_routes(sim: Arc<ZoomSim>) -> axum::Router {
    axum::Router::new()
        .route(
            "/_sim/users",
            get(|Shared(sim): Shared<Arc<ZoomSim>>| async move { axum::Json(sim.users()) }),
        )
        .route(
            "/_sim/token",
            post(
                |Shared(sim): Shared<Arc<ZoomSim>>, axum::Json(body): axum::Json<Value>| async move {
                    match sim.mint_token(body["email"].as_str().unwrap_or_default()) {
                        Ok(token) => axum::Json(json!({ "token": token })).into_response(),
                        Err(reason) => (StatusCode::NOT_FOUND, reason).into_response(),
                    }
                },
            ),
        )
        .with_state(sim)
}

async fn start(rate_limits: bool) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let context = SimContext::new(base.clone(), rate_limits);
    context.webhooks.set_time_scale(0.0);
    let sim = ZoomSim::new(context);
    let organisation = Organisation::generate(&OrgSpec {
        people: 60,
        ..OrgSpec::new(vec![sim.org_platform()])
    });
    sim.seed(&organisation);
    let router = sim.clone().router().merge(simulator_routes(sim.clone()));
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

/// One delivery a receiver got: its headers and its raw body.
type Received = (HeaderMap, Vec<u8>);

/// An event endpoint on a loopback port, serving apps with these `secrets`: it answers Zoom's
/// URL validation with the secret token whose signature the challenge carries (so one endpoint
/// serves several apps), fails the first `fail_first` other deliveries with a 500 and hands the
/// rest on.
async fn receiver(
    secrets: &'static [&'static str],
    fail_first: u32,
) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (sender, deliveries) = mpsc::unbounded_channel();
    let failures = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new().route(
        "/zoom/events",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sender = sender.clone();
            let failures = failures.clone();
            async move {
                let event: Value = serde_json::from_slice(&body).unwrap();
                if event["event"] == "endpoint.url_validation" {
                    let plain = event["payload"]["plainToken"].as_str().unwrap().to_owned();
                    let timestamp: u64 = headers["x-zm-request-timestamp"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let signed = headers["x-zm-signature"].to_str().unwrap();
                    let secret = secrets
                        .iter()
                        .find(|secret| signature(secret, timestamp, &body) == signed)
                        .unwrap_or(&secrets[0]);
                    let answer = json!({
                        "plainToken": plain,
                        "encryptedToken": encrypted_token(secret, &plain),
                    });
                    return axum::Json(answer).into_response();
                }
                let _ = sender.send((headers, body.to_vec()));
                if failures.fetch_add(1, Ordering::SeqCst) < fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                } else {
                    StatusCode::OK.into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/zoom/events"), deliveries)
}

/// The next delivery, after checking its signature with `secret`: its event and raw body.
async fn next_event(
    deliveries: &mut mpsc::UnboundedReceiver<Received>,
    secret: &str,
) -> (Value, Vec<u8>) {
    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
        .await
        .expect("a delivery within 5 s")
        .expect("the receiver is running");
    let timestamp: u64 = headers["x-zm-request-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        headers["x-zm-signature"].to_str().unwrap(),
        signature(secret, timestamp, &body),
        "signed with the app's secret token over the exact body"
    );
    (serde_json::from_slice(&body).unwrap(), body)
}

async fn no_event(deliveries: &mut mpsc::UnboundedReceiver<Received>) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok((_, body)) = deliveries.try_recv() {
        panic!("unexpected delivery: {}", String::from_utf8_lossy(&body));
    }
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

impl Harness {
    fn email(&self, index: usize) -> String {
        self.organisation.people[index].email.clone()
    }

    fn user(&self, index: usize) -> crate::state::User {
        self.sim.lock().user(&self.email(index)).unwrap().clone()
    }

    fn token(&self, index: usize) -> String {
        self.sim.mint_token(&self.email(index)).unwrap()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}/zoom/v2/{path}", self.base),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            // As @zoom/rivet sends it.
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn expect(
        &self,
        status: StatusCode,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let (answered, _, value) = self.call(method, path, token, body).await;
        assert_eq!(answered, status, "{method} {path}: {value}");
        value
    }

    async fn form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// The owner creates the account's three apps on the Marketplace page.
    async fn create_apps(&self) {
        for kind in AppKind::ALL {
            let response = self
                .form(
                    "/zoom/admin/apps",
                    &[("email", &self.email(OWNER)), ("app", kind.name())],
                )
                .await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
        }
    }

    /// The owner subscribes `kind` to `events` at `url`; the Marketplace's answer.
    async fn subscribe(&self, kind: AppKind, url: &str, events: &[&str]) -> reqwest::Response {
        let owner = self.email(OWNER);
        let mut pairs = vec![
            ("email", owner.as_str()),
            ("app", kind.name()),
            ("url", url),
        ];
        pairs.extend(events.iter().map(|event| ("event", *event)));
        self.form("/zoom/admin/events", &pairs).await
    }

    async fn token_grant(
        &self,
        client: (&str, &str),
        pairs: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let response = self
            .http
            .post(format!("{}/zoom/oauth/token", self.base))
            .header("authorization", basic(client.0, client.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn s2s_token(&self) -> String {
        let (status, answer) = self
            .token_grant(
                (S2S_CLIENT_ID, S2S_CLIENT_SECRET),
                &[
                    ("grant_type", "account_credentials"),
                    ("account_id", ACCOUNT_ID),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["access_token"].as_str().unwrap().to_owned()
    }

    /// Walks the user-managed app's consent page as `email`: the redirect's query.
    async fn consent(&self, email: &str, redirect_uri: &str) -> Vec<(String, String)> {
        let query = [
            ("response_type", "code"),
            ("client_id", USER_CLIENT_ID),
            ("redirect_uri", redirect_uri),
            ("state", "xyz"),
        ];
        let page = self
            .http
            .get(format!(
                "{}/zoom/oauth/authorize?{}",
                self.base,
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("name=\"decision\" value=\"allow\"")
        );
        let mut pairs = query.to_vec();
        pairs.extend([("email", email), ("decision", "allow")]);
        let response = self.form("/zoom/oauth/authorize", &pairs).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let (target, query) = location.split_once('?').unwrap();
        assert_eq!(target, redirect_uri);
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    /// A web view session of `index`: its cookie.
    async fn web_sign_in(&self, index: usize) -> String {
        let response = self
            .form("/zoom/signin", &[("email", &self.email(index))])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn web_get(&self, cookie: &str, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn web_post(&self, cookie: &str, path: &str, pairs: &[(&str, &str)]) -> StatusCode {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn users_are_listed_by_status_with_stable_page_tokens() {
    let h = start(false).await;
    h.create_apps().await;
    let token = h.s2s_token().await;
    let first = h
        .expect(
            StatusCode::OK,
            "GET",
            "users?status=active&page_size=25",
            &token,
            None,
        )
        .await;
    assert_eq!(first["total_records"], 59, "60 people, one deactivated");
    assert_eq!(first["page_count"], 3);
    assert_eq!(first["page_size"], 25);
    let mut emails = Vec::new();
    let mut page = first;
    loop {
        emails.extend(
            page["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned()),
        );
        let next = page["next_page_token"].as_str().unwrap().to_owned();
        if next.is_empty() {
            break;
        }
        let again = h
            .expect(
                StatusCode::OK,
                "GET",
                &format!("users?status=active&page_size=25&next_page_token={next}"),
                &token,
                None,
            )
            .await;
        let twice = h
            .expect(
                StatusCode::OK,
                "GET",
                &format!("users?status=active&page_size=25&next_page_token={next}"),
                &token,
                None,
            )
            .await;
        assert_eq!(again, twice, "a token names the same page each time");
        page = again;
    }
    assert_eq!(emails.len(), 59);
    assert_eq!(
        emails.iter().collect::<BTreeSet<_>>().len(),
        59,
        "no repeats"
    );
    let user = &h
        .expect(StatusCode::OK, "GET", "users?page_size=1", &token, None)
        .await["users"][0];
    for field in [
        "id",
        "email",
        "first_name",
        "last_name",
        "display_name",
        "status",
        "type",
        "role_id",
    ] {
        assert!(!user[field].is_null(), "{field} in {user}");
    }
    assert_eq!(user["role_id"], "0", "the owner comes first");
    let inactive = h
        .expect(StatusCode::OK, "GET", "users?status=inactive", &token, None)
        .await;
    assert_eq!(inactive["users"][0]["email"], h.email(DEACTIVATED));
    assert_eq!(inactive["users"][0]["status"], "inactive");
    // A token of one list is refused on another.
    let next = h
        .expect(StatusCode::OK, "GET", "users?page_size=10", &token, None)
        .await["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = h
        .expect(
            StatusCode::BAD_REQUEST,
            "GET",
            &format!("users?status=inactive&next_page_token={next}"),
            &token,
            None,
        )
        .await;
    assert_eq!(refused["code"], 300);
}

#[tokio::test]
async fn a_user_is_found_by_me_id_or_email_and_an_unknown_one_is_1001() {
    let h = start(false).await;
    let alice = h.user(ALICE);
    let token = h.token(ALICE);
    let me = h
        .expect(StatusCode::OK, "GET", "users/me", &token, None)
        .await;
    assert_eq!(me["id"], alice.id);
    assert_eq!(me["email"], alice.email);
    assert_eq!(me["account_id"], ACCOUNT_ID);
    h.create_apps().await;
    let s2s = h.s2s_token().await;
    let by_email = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("users/{}", alice.email.to_uppercase()),
            &s2s,
            None,
        )
        .await;
    assert_eq!(by_email["id"], alice.id);
    let missing = h
        .expect(
            StatusCode::NOT_FOUND,
            "GET",
            "users/nobody@acme.example",
            &s2s,
            None,
        )
        .await;
    assert_eq!(
        missing,
        json!({"code": 1001, "message": "User does not exist: nobody@acme.example."})
    );
    // A user the admin adds is found at once.
    let added = h
        .sim
        .control(
            "add_user",
            json!({"email": "new.person@acme.example", "name": "New Person"}),
        )
        .unwrap();
    let found = h
        .expect(
            StatusCode::OK,
            "GET",
            "users/new.person@acme.example",
            &s2s,
            None,
        )
        .await;
    assert_eq!(found["id"], added["id"]);
    assert_eq!(found["first_name"], "New");
    assert!(
        h.sim
            .control(
                "add_user",
                json!({"email": "new.person@acme.example", "name": "Again"})
            )
            .is_err()
    );
}

#[tokio::test]
async fn tokens_are_checked_and_scopes_enforced() {
    let h = start(false).await;
    let unknown = h
        .expect(
            StatusCode::UNAUTHORIZED,
            "GET",
            "users/me",
            "not-a-token",
            None,
        )
        .await;
    assert_eq!(
        unknown,
        json!({"code": 124, "message": "Invalid access token."})
    );
    let token = h.token(ALICE);
    h.sim
        .lock()
        .access_tokens
        .get_mut(&token)
        .unwrap()
        .expires_at = 0;
    let expired = h
        .expect(StatusCode::UNAUTHORIZED, "GET", "users/me", &token, None)
        .await;
    assert_eq!(expired["message"], "Access token is expired.");

    // A user's token reads their own data, not the account's.
    let token = h.token(ALICE);
    let listing = h
        .expect(StatusCode::BAD_REQUEST, "GET", "users", &token, None)
        .await;
    assert_eq!(listing["code"], 4711);
    assert!(
        listing["message"]
            .as_str()
            .unwrap()
            .contains("user:read:list_users:admin")
    );
    let bob = h.user(BOB);
    let as_bob = h
        .expect(
            StatusCode::BAD_REQUEST,
            "POST",
            &format!("chat/users/{}/messages", bob.id),
            &token,
            Some(json!({"message": "hi", "to_contact": h.email(CAROL)})),
        )
        .await;
    assert_eq!(as_bob["code"], 4711);
    // The chatbot's token only sends as the chatbot.
    h.create_apps().await;
    let (_, bot) = h
        .token_grant(
            (CHATBOT_CLIENT_ID, CHATBOT_CLIENT_SECRET),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let bot = bot["access_token"].as_str().unwrap();
    let refused = h
        .expect(
            StatusCode::BAD_REQUEST,
            "POST",
            "chat/users/me/messages",
            bot,
            Some(json!({"message": "hi", "to_contact": h.email(BOB)})),
        )
        .await;
    assert_eq!(refused["code"], 4711);
    // A deactivated user's tokens stop working.
    let carol = h.token(CAROL);
    h.sim
        .control("deactivate", json!({"email": h.email(CAROL)}))
        .unwrap();
    h.expect(StatusCode::UNAUTHORIZED, "GET", "users/me", &carol, None)
        .await;
}

#[tokio::test]
async fn authorization_codes_are_exchanged_and_refresh_tokens_rotate() {
    let h = start(false).await;
    let redirect = "https://hub.example/callback/zoom";
    let page = h
        .http
        .get(format!("{}/zoom/oauth/authorize?response_type=code&client_id={USER_CLIENT_ID}&redirect_uri={redirect}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::BAD_REQUEST,
        "no such app before the admin creates it"
    );
    h.create_apps().await;
    let declined = h
        .form(
            "/zoom/oauth/authorize",
            &[
                ("response_type", "code"),
                ("client_id", USER_CLIENT_ID),
                ("redirect_uri", redirect),
                ("state", "xyz"),
                ("email", &h.email(ALICE)),
                ("decision", "decline"),
            ],
        )
        .await;
    assert_eq!(
        declined.headers()["location"],
        format!("{redirect}?error=access_denied&state=xyz").as_str()
    );
    let query = h.consent(&h.email(ALICE), redirect).await;
    let code = query.iter().find(|(k, _)| k == "code").unwrap().1.clone();
    assert!(query.contains(&("state".to_owned(), "xyz".to_owned())));
    let client = (USER_CLIENT_ID, USER_CLIENT_SECRET);
    let (status, wrong) = h
        .token_grant(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://elsewhere.example/"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    assert_eq!(wrong["error"], "invalid_request");
    // The failed attempt used the code up, as a leaked code must not stay good.
    let code = h
        .consent(&h.email(ALICE), redirect)
        .await
        .into_iter()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1;
    let (status, bad_secret) = h
        .token_grant(
            (USER_CLIENT_ID, "wrong"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad_secret,
        json!({"reason": "Invalid client_id or client_secret", "error": "invalid_client"})
    );
    let (status, tokens) = h
        .token_grant(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert!(
        tokens["scope"]
            .as_str()
            .unwrap()
            .contains("team_chat:write:user_message")
    );
    let access = tokens["access_token"].as_str().unwrap();
    let me = h
        .expect(StatusCode::OK, "GET", "users/me", access, None)
        .await;
    assert_eq!(me["email"], h.email(ALICE));

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, renewed) = h
        .token_grant(
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_ne!(renewed["refresh_token"], tokens["refresh_token"]);
    let (status, reused) = h
        .token_grant(
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a refresh token is good once: {reused}"
    );
    let (status, unsupported) = h
        .token_grant(
            client,
            &[
                ("grant_type", "account_credentials"),
                ("account_id", ACCOUNT_ID),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(unsupported["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn server_to_server_and_chatbot_tokens_last_an_hour_without_refresh() {
    let h = start(false).await;
    let pairs = [
        ("grant_type", "account_credentials"),
        ("account_id", ACCOUNT_ID),
    ];
    let (status, _) = h
        .token_grant((S2S_CLIENT_ID, S2S_CLIENT_SECRET), &pairs)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the app does not exist yet"
    );
    h.create_apps().await;
    // As Zoom's docs show it: grant_type and account_id in the query string.
    let response = h
        .http
        .post(format!(
            "{}/zoom/oauth/token?grant_type=account_credentials&account_id={ACCOUNT_ID}",
            h.base
        ))
        .header("authorization", basic(S2S_CLIENT_ID, S2S_CLIENT_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let s2s: Value = response.json().await.unwrap();
    assert_eq!(s2s["expires_in"], 3599);
    assert!(s2s.get("refresh_token").is_none());
    assert!(
        s2s["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "user:read:list_users:admin")
    );
    let (status, wrong) = h
        .token_grant(
            (S2S_CLIENT_ID, S2S_CLIENT_SECRET),
            &[
                ("grant_type", "account_credentials"),
                ("account_id", "another"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    let (status, bot) = h
        .token_grant(
            (CHATBOT_CLIENT_ID, CHATBOT_CLIENT_SECRET),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bot["scope"], "imchat:bot");
    assert!(bot.get("refresh_token").is_none());
}

#[tokio::test]
async fn direct_messages_are_sent_got_replied_to_edited_and_deleted() {
    let h = start(false).await;
    let alice = h.token(ALICE);
    let bob = h.token(BOB);
    let (bob_email, carol_email) = (h.email(BOB), h.email(CAROL));
    let sent = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/messages",
            &alice,
            Some(json!({
                "message": "Hello @Bob, this is bold",
                "to_contact": bob_email,
                "at_items": [{"at_contact": bob_email, "at_type": 1, "start_position": 6, "end_position": 9}],
                "rich_text": [{"start_position": 20, "end_position": 23, "format_type": "Bold"}],
            })),
        )
        .await;
    let id = sent["id"].as_str().unwrap().to_owned();
    assert_eq!(sent.as_object().unwrap().len(), 1, "only the id: {sent}");
    // Bob sees it from his side, addressed by Alice's user id.
    let alice_user = h.user(ALICE);
    let got = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages/{id}?to_contact={}", alice_user.id),
            &bob,
            None,
        )
        .await;
    assert_eq!(got["message"], "Hello @Bob, this is bold");
    assert_eq!(got["sender"], alice_user.email);
    assert_eq!(got["sender_member_id"], alice_user.member_id);
    assert_eq!(got["at_items"][0]["at_contact"], bob_email);
    assert_eq!(
        got["at_items"][0]["at_contact_member_id"],
        h.user(BOB).member_id
    );
    assert_eq!(got["rich_text"][0]["format_type"], "Bold");
    assert!(got["date_time"].as_str().unwrap().ends_with('Z'));
    // A reply, then a reply to the reply is refused.
    let reply = h
        .expect(StatusCode::CREATED, "POST", "chat/users/me/messages", &bob, Some(json!({"message": "hi!", "to_contact": alice_user.email, "reply_main_message_id": id})))
        .await;
    let reply = reply["id"].as_str().unwrap();
    h.expect(
        StatusCode::BAD_REQUEST,
        "POST",
        "chat/users/me/messages",
        &alice,
        Some(json!({"message": "no", "to_contact": bob_email, "reply_main_message_id": reply})),
    )
    .await;
    let listed = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages?to_contact={bob_email}"),
            &alice,
            None,
        )
        .await;
    assert!(listed["date"].is_string());
    let messages = listed["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["reply_main_message_id"], id, "newest first");
    assert_eq!(
        messages[0]["reply_main_message_timestamp"],
        messages[1]["timestamp"]
    );
    // Only the sender edits or deletes.
    h.expect(
        StatusCode::FORBIDDEN,
        "PUT",
        &format!("chat/users/me/messages/{id}"),
        &bob,
        Some(json!({"message": "mine now", "to_contact": alice_user.email})),
    )
    .await;
    h.expect(
        StatusCode::NO_CONTENT,
        "PUT",
        &format!("chat/users/me/messages/{id}"),
        &alice,
        Some(json!({"message": "Hello again", "to_contact": bob_email})),
    )
    .await;
    let edited = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages/{id}?to_contact={bob_email}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(edited["message"], "Hello again");
    assert!(
        edited.get("at_items").is_none(),
        "an edit replaces the mentions"
    );
    h.expect(
        StatusCode::FORBIDDEN,
        "DELETE",
        &format!(
            "chat/users/me/messages/{id}?to_contact={}",
            alice_user.email
        ),
        &bob,
        None,
    )
    .await;
    h.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("chat/users/me/messages/{id}?to_contact={bob_email}"),
        &alice,
        None,
    )
    .await;
    h.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &format!("chat/users/me/messages/{id}?to_contact={bob_email}"),
        &alice,
        None,
    )
    .await;
    // Another conversation does not hold it, and an unknown contact is Zoom's 4130.
    h.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &format!("chat/users/me/messages/{reply}?to_contact={carol_email}"),
        &alice,
        None,
    )
    .await;
    let nobody = h
        .expect(
            StatusCode::NOT_FOUND,
            "POST",
            "chat/users/me/messages",
            &alice,
            Some(json!({"message": "hi", "to_contact": "nobody@acme.example"})),
        )
        .await;
    assert_eq!(
        nobody,
        json!({"code": 4130, "message": "User does not exist"})
    );
    let deactivated = h
        .expect(
            StatusCode::NOT_FOUND,
            "POST",
            "chat/users/me/messages",
            &alice,
            Some(json!({"message": "hi", "to_contact": h.email(DEACTIVATED)})),
        )
        .await;
    assert_eq!(deactivated["code"], 4130);
    let both = h
        .expect(
            StatusCode::BAD_REQUEST,
            "POST",
            "chat/users/me/messages",
            &alice,
            Some(json!({"message": "hi", "to_contact": bob_email, "to_channel": "x"})),
        )
        .await;
    assert_eq!(both["code"], 300);
    h.expect(StatusCode::BAD_REQUEST, "POST", "chat/users/me/messages", &alice, Some(json!({"message": "hi", "to_contact": bob_email, "at_items": [{"at_contact": carol_email, "at_type": 1, "start_position": 0, "end_position": 1}]})))
        .await;
}

#[tokio::test]
async fn reactions_are_added_and_removed_per_user() {
    let h = start(false).await;
    let (alice, bob) = (h.token(ALICE), h.token(BOB));
    let (alice_email, bob_email) = (h.email(ALICE), h.email(BOB));
    let id = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/messages",
            &alice,
            Some(json!({"message": "react", "to_contact": bob_email})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("chat/users/me/messages/{id}/emoji_reactions");
    h.expect(
        StatusCode::NO_CONTENT,
        "PATCH",
        &path,
        &alice,
        Some(json!({"action": "add", "emoji": "U+1F44D", "to_contact": bob_email})),
    )
    .await;
    h.expect(
        StatusCode::NO_CONTENT,
        "PATCH",
        &path,
        &bob,
        Some(json!({"action": "add", "emoji": "👍", "to_contact": alice_email})),
    )
    .await;
    let got = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages/{id}?to_contact={bob_email}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(got["reactions"][0]["emoji"], "U+1F44D");
    assert_eq!(got["reactions"][0]["total_count"], 2);
    // A single message names the reactions' users by id lists, a list by senders.
    let bob = h.user(BOB);
    assert_eq!(got["reactions"][0]["user_ids"][1], bob.id);
    assert_eq!(got["reactions"][0]["member_ids"][1], bob.member_id);
    let listed = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages?to_contact={bob_email}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(
        listed["messages"][0]["reactions"][0]["senders"][1]["user_id"],
        bob.id
    );
    assert_eq!(
        listed["messages"][0]["reactions"][0]["senders"][1]["member_id"],
        bob.member_id
    );
    h.expect(
        StatusCode::NO_CONTENT,
        "PATCH",
        &path,
        &alice,
        Some(json!({"action": "remove", "emoji": "U+1F44D", "to_contact": bob_email})),
    )
    .await;
    let got = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages/{id}?to_contact={bob_email}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(got["reactions"][0]["total_count"], 1);
    let bad = h
        .expect(
            StatusCode::BAD_REQUEST,
            "PATCH",
            &path,
            &alice,
            Some(json!({"action": "toggle", "emoji": "U+1F44D", "to_contact": bob_email})),
        )
        .await;
    assert_eq!(bad["code"], 300);
}

#[tokio::test]
async fn messages_are_paged_newest_first_by_day_or_time_range() {
    let h = start(false).await;
    let alice = h.token(ALICE);
    let bob_email = h.email(BOB);
    let mut sent = Vec::new();
    for n in 0..23 {
        let answer = h
            .expect(
                StatusCode::CREATED,
                "POST",
                "chat/users/me/messages",
                &alice,
                Some(json!({"message": format!("message {n}"), "to_contact": bob_email})),
            )
            .await;
        sent.push(answer["id"].as_str().unwrap().to_owned());
    }
    // Paging from a given time on (`to` is then now, which moves): a message posted and one
    // deleted between pages neither repeats nor skips one.
    let now = crate::wire::now_millis();
    let from = crate::wire::iso(now - 3_600_000);
    let mut seen = Vec::new();
    let mut next = String::new();
    let mut pages = 0;
    loop {
        let listed = h
            .expect(
                StatusCode::OK,
                "GET",
                &format!(
                    "chat/users/me/messages?to_contact={bob_email}&from={from}&page_size=10&next_page_token={next}"
                ),
                &alice,
                None,
            )
            .await;
        pages += 1;
        let page: Vec<String> = listed["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        seen.extend(page.iter().cloned());
        next = listed["next_page_token"].as_str().unwrap().to_owned();
        if next.is_empty() {
            break;
        }
        h.expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/messages",
            &alice,
            Some(json!({"message": "late", "to_contact": bob_email})),
        )
        .await;
        // The page's last message, which the token names.
        h.expect(
            StatusCode::NO_CONTENT,
            "DELETE",
            &format!(
                "chat/users/me/messages/{}?to_contact={bob_email}",
                page.last().unwrap()
            ),
            &alice,
            None,
        )
        .await;
    }
    assert_eq!(pages, 3);
    sent.reverse();
    assert_eq!(seen, sent, "every message once, newest first");
    let today = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages?to_contact={bob_email}&page_size=50"),
            &alice,
            None,
        )
        .await;
    assert_eq!(
        today["messages"].as_array().unwrap().len(),
        23,
        "2 posted, 2 deleted"
    );
    // A time range from an hour ago to now holds them all; yesterday none.
    let range = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!(
                "chat/users/me/messages?to_contact={bob_email}&from={}&to={}&page_size=50",
                crate::wire::iso(now - 3_600_000),
                crate::wire::iso(now + 60_000)
            ),
            &alice,
            None,
        )
        .await;
    assert_eq!(range["messages"].as_array().unwrap().len(), 23);
    assert!(range["from"].is_string() && range["to"].is_string());
    let yesterday = crate::wire::day(now - 86_400_000);
    let none = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages?to_contact={bob_email}&date={yesterday}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(none["messages"], json!([]));
    assert_eq!(none["date"], yesterday);
    h.expect(
        StatusCode::BAD_REQUEST,
        "GET",
        &format!("chat/users/me/messages?to_contact={bob_email}&page_size=51"),
        &alice,
        None,
    )
    .await;
}

#[tokio::test]
async fn channels_are_created_and_their_members_managed() {
    let h = start(false).await;
    let (alice, bob, carol) = (h.token(ALICE), h.token(BOB), h.token(CAROL));
    let created = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/channels",
            &alice,
            Some(json!({"name": "Launch", "type": 4, "members": [{"email": h.email(BOB)}]})),
        )
        .await;
    let channel = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "Launch");
    assert_eq!(created["type"], 4);
    assert!(
        created["jid"]
            .as_str()
            .unwrap()
            .ends_with("@conference.xmpp.zoom.us")
    );
    let listed = h
        .expect(StatusCode::OK, "GET", "chat/users/me/channels", &bob, None)
        .await;
    assert_eq!(listed["channels"][0]["id"], channel);
    assert_eq!(listed["total_records"], 1);
    h.expect(
        StatusCode::OK,
        "GET",
        &format!("chat/channels/{channel}"),
        &bob,
        None,
    )
    .await;
    h.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &format!("chat/channels/{channel}"),
        &carol,
        None,
    )
    .await;
    let message = h
        .expect(StatusCode::CREATED, "POST", "chat/users/me/messages", &bob, Some(json!({"message": "@all hello", "to_channel": channel, "at_items": [{"at_type": 2, "start_position": 0, "end_position": 3}]})))
        .await;
    h.expect(
        StatusCode::NOT_FOUND,
        "POST",
        "chat/users/me/messages",
        &carol,
        Some(json!({"message": "let me in", "to_channel": channel})),
    )
    .await;
    let added = h
        .expect(
            StatusCode::CREATED,
            "POST",
            &format!("chat/channels/{channel}/members"),
            &bob,
            Some(json!({"members": [{"email": h.email(CAROL)}]})),
        )
        .await;
    assert_eq!(added["ids"], h.user(CAROL).id);
    let got = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!(
                "chat/users/me/messages/{}?to_channel={channel}",
                message["id"].as_str().unwrap()
            ),
            &carol,
            None,
        )
        .await;
    assert_eq!(got["at_items"][0]["at_type"], 2);
    let members = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/channels/{channel}/members?page_size=2"),
            &carol,
            None,
        )
        .await;
    assert_eq!(members["total_records"], 3);
    assert_eq!(members["members"][0]["role"], "owner");
    assert_eq!(members["members"][0]["email"], h.email(ALICE));
    assert!(!members["next_page_token"].as_str().unwrap().is_empty());
    // A member removes neither others nor the owner; the owner removes a member; one leaves.
    let carol_id = h.user(CAROL).id;
    h.expect(
        StatusCode::FORBIDDEN,
        "DELETE",
        &format!("chat/channels/{channel}/members/{carol_id}"),
        &bob,
        None,
    )
    .await;
    h.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("chat/channels/{channel}/members/{carol_id}"),
        &alice,
        None,
    )
    .await;
    h.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("chat/channels/{channel}/members/{}", h.user(BOB).member_id),
        &bob,
        None,
    )
    .await;
    let members = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/channels/{channel}/members"),
            &alice,
            None,
        )
        .await;
    assert_eq!(members["total_records"], 1);
    h.expect(
        StatusCode::BAD_REQUEST,
        "POST",
        "chat/users/me/channels",
        &alice,
        Some(json!({"name": "Odd", "type": 9})),
    )
    .await;
}

#[tokio::test]
async fn an_endpoint_must_pass_url_validation_before_it_is_saved() {
    let h = start(false).await;
    h.create_apps().await;
    // An endpoint answering with another secret token fails validation and is not saved.
    let (wrong, _) = receiver(&["another-secret"], 0).await;
    let refused = h
        .subscribe(AppKind::ServerToServer, &wrong, &TEAM_CHAT_EVENTS)
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("URL validation failed")
    );
    assert!(
        h.sim
            .lock()
            .app(AppKind::ServerToServer)
            .unwrap()
            .event_url
            .is_none()
    );
    let unreachable = h
        .subscribe(
            AppKind::ServerToServer,
            "http://127.0.0.1:9/zoom",
            &TEAM_CHAT_EVENTS,
        )
        .await;
    assert_eq!(unreachable.status(), StatusCode::BAD_REQUEST);
    let (url, _) = receiver(&[S2S_SECRET_TOKEN], 0).await;
    let saved = h
        .subscribe(AppKind::ServerToServer, &url, &TEAM_CHAT_EVENTS)
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let unknown = h
        .subscribe(AppKind::ServerToServer, &url, &["meeting.started"])
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let not_admin = h
        .form(
            "/zoom/admin/events",
            &[
                ("email", &h.email(ALICE)),
                ("app", "server_to_server"),
                ("url", &url),
            ],
        )
        .await;
    assert_eq!(not_admin.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn team_chat_events_are_signed_compact_and_describe_the_message() {
    let h = start(false).await;
    h.create_apps().await;
    let (url, mut deliveries) = receiver(&[S2S_SECRET_TOKEN], 0).await;
    assert_eq!(
        h.subscribe(AppKind::ServerToServer, &url, &TEAM_CHAT_EVENTS)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let (alice, bob) = (h.user(ALICE), h.user(BOB));
    let token = h.token(ALICE);
    let id = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/messages",
            &token,
            Some(json!({"message": "Café / <ok> 👍", "to_contact": bob.email})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (event, body) = next_event(&mut deliveries, S2S_SECRET_TOKEN).await;
    assert_eq!(
        serde_json::to_vec(&event).unwrap().len(),
        body.len(),
        "compact, nothing escaped that JSON.stringify would not"
    );
    assert!(
        String::from_utf8(body)
            .unwrap()
            .starts_with("{\"event\":\"team_chat.dm_message_posted\",\"event_ts\":")
    );
    let payload = &event["payload"];
    assert_eq!(payload["account_id"], ACCOUNT_ID);
    assert_eq!(payload["operator"], alice.email);
    assert_eq!(payload["operator_id"], alice.id);
    assert_eq!(payload["operator_member_id"], alice.member_id);
    let object = &payload["object"];
    assert_eq!(object["message_id"], id);
    assert_eq!(object["message"], "Café / <ok> 👍");
    assert_eq!(object["contact_email"], bob.email);
    assert_eq!(object["contact_id"], bob.id);
    assert_eq!(object["contact_member_id"], bob.member_id);
    assert_eq!(object["session_id"], bob.jid);
    assert!(object["timestamp"].is_u64());

    let reacting = h.token(BOB);
    h.expect(
        StatusCode::NO_CONTENT,
        "PATCH",
        &format!("chat/users/me/messages/{id}/emoji_reactions"),
        &reacting,
        Some(json!({"action": "add", "emoji": "U+2764", "to_contact": alice.email})),
    )
    .await;
    let (event, _) = next_event(&mut deliveries, S2S_SECRET_TOKEN).await;
    assert_eq!(event["event"], "team_chat.dm_reaction_added");
    assert_eq!(event["payload"]["operator_id"], bob.id);
    assert_eq!(event["payload"]["object"]["msg_id"], id);
    assert_eq!(event["payload"]["object"]["emoji"], "U+2764");
    assert!(event["payload"]["object"]["msg_time"].is_string());
    assert_eq!(event["payload"]["object"]["contact_id"], alice.id);

    h.expect(
        StatusCode::NO_CONTENT,
        "PUT",
        &format!("chat/users/me/messages/{id}"),
        &token,
        Some(json!({"message": "edited", "to_contact": bob.email})),
    )
    .await;
    let (event, _) = next_event(&mut deliveries, S2S_SECRET_TOKEN).await;
    assert_eq!(event["event"], "team_chat.dm_message_updated");
    assert_eq!(event["payload"]["object"]["message"], "edited");
    h.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("chat/users/me/messages/{id}?to_contact={}", bob.email),
        &token,
        None,
    )
    .await;
    let (event, _) = next_event(&mut deliveries, S2S_SECRET_TOKEN).await;
    assert_eq!(event["event"], "team_chat.dm_message_deleted");
    assert!(event["payload"]["object"].get("message").is_none());
    assert!(event["payload"]["object"].get("session_id").is_none());

    let channel = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/channels",
            &token,
            Some(json!({"name": "Ops", "type": 4, "members": [{"email": bob.email}]})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.expect(
        StatusCode::CREATED,
        "POST",
        "chat/users/me/messages",
        &token,
        Some(json!({
            "message": "to all and @Bob",
            "to_channel": channel,
            "at_items": [{"at_contact": bob.email, "at_type": 1, "start_position": 11, "end_position": 14}],
        })),
    )
    .await;
    let (event, _) = next_event(&mut deliveries, S2S_SECRET_TOKEN).await;
    assert_eq!(event["event"], "team_chat.channel_message_posted");
    assert_eq!(event["payload"]["object"]["channel_id"], channel);
    assert_eq!(event["payload"]["object"]["channel_name"], "Ops");
    assert_eq!(
        event["payload"]["object"]["channel_owner_account_id"],
        ACCOUNT_ID
    );
    assert_eq!(
        event["payload"]["object"]["at_items"][0]["at_contact_user_id"],
        bob.id
    );
    assert_eq!(
        event["payload"]["object"]["at_items"][0]["at_contact"],
        bob.email
    );
    no_event(&mut deliveries).await;
}

#[tokio::test]
async fn the_user_managed_app_hears_only_of_users_who_authorised_it() {
    let h = start(false).await;
    h.create_apps().await;
    let (url, mut deliveries) = receiver(&[crate::state::USER_SECRET_TOKEN], 0).await;
    assert_eq!(
        h.subscribe(AppKind::UserManaged, &url, &["team_chat.dm_message_posted"])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let (carol, bob) = (h.token(CAROL), h.email(BOB));
    h.expect(
        StatusCode::CREATED,
        "POST",
        "chat/users/me/messages",
        &carol,
        Some(json!({"message": "unheard", "to_contact": bob})),
    )
    .await;
    no_event(&mut deliveries).await;
    let query = h.consent(&h.email(ALICE), "https://hub.example/cb").await;
    let code = &query.iter().find(|(k, _)| k == "code").unwrap().1;
    let (status, _) = h
        .token_grant(
            (USER_CLIENT_ID, USER_CLIENT_SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "https://hub.example/cb"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.expect(
        StatusCode::CREATED,
        "POST",
        "chat/users/me/messages",
        &carol,
        Some(json!({"message": "heard", "to_contact": h.email(ALICE)})),
    )
    .await;
    let (event, _) = next_event(&mut deliveries, crate::state::USER_SECRET_TOKEN).await;
    assert_eq!(event["payload"]["object"]["message"], "heard");
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_signed_body() {
    let h = start(false).await;
    h.create_apps().await;
    let (url, mut deliveries) = receiver(&[S2S_SECRET_TOKEN], 2).await;
    assert_eq!(
        h.subscribe(AppKind::ServerToServer, &url, &TEAM_CHAT_EVENTS)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let token = h.token(ALICE);
    h.expect(
        StatusCode::CREATED,
        "POST",
        "chat/users/me/messages",
        &token,
        Some(json!({"message": "again", "to_contact": h.email(BOB)})),
    )
    .await;
    let (first, first_body) = next_event(&mut deliveries, S2S_SECRET_TOKEN).await;
    for _ in 0..2 {
        let (retry, retry_body) = next_event(&mut deliveries, S2S_SECRET_TOKEN).await;
        assert_eq!(retry_body, first_body);
        assert_eq!(retry, first);
    }
    no_event(&mut deliveries).await;
}

#[tokio::test]
async fn the_chatbot_writes_to_a_user_and_hears_what_they_write_back() {
    let h = start(false).await;
    h.create_apps().await;
    let (url, mut deliveries) = receiver(&[CHATBOT_SECRET_TOKEN], 0).await;
    assert_eq!(
        h.subscribe(AppKind::Chatbot, &url, &["bot_notification"])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let (_, bot) = h
        .token_grant(
            (CHATBOT_CLIENT_ID, CHATBOT_CLIENT_SECRET),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let bot = bot["access_token"].as_str().unwrap();
    let alice = h.user(ALICE);
    let message = json!({
        "robot_jid": ROBOT_JID,
        "to_jid": alice.jid,
        "account_id": ACCOUNT_ID,
        "user_jid": alice.jid,
        "content": {"head": {"text": "Switchboard"}, "body": [{"type": "message", "text": "Bob wrote <hi>"}]},
    });
    let sent = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "im/chat/messages",
            bot,
            Some(message.clone()),
        )
        .await;
    assert_eq!(sent["robot_jid"], ROBOT_JID);
    assert_eq!(sent["to_jid"], alice.jid);
    assert!(sent["message_id"].is_string());
    let mut anonymous = message.clone();
    anonymous.as_object_mut().unwrap().remove("user_jid");
    let refused = h
        .expect(
            StatusCode::BAD_REQUEST,
            "POST",
            "im/chat/messages",
            bot,
            Some(anonymous),
        )
        .await;
    assert_eq!(refused["code"], 300);
    let mut wrong = message.clone();
    wrong["robot_jid"] = json!("v1other@xmpp.zoom.us");
    h.expect(
        StatusCode::BAD_REQUEST,
        "POST",
        "im/chat/messages",
        bot,
        Some(wrong),
    )
    .await;
    let user_token = h.token(ALICE);
    let refused = h
        .expect(
            StatusCode::BAD_REQUEST,
            "POST",
            "im/chat/messages",
            &user_token,
            Some(message),
        )
        .await;
    assert_eq!(refused["code"], 4711);

    // Alice sees it in her chat with the chatbot and answers there.
    let cookie = h.web_sign_in(ALICE).await;
    let (status, page) = h.web_get(&cookie, "/zoom/chat?bot=1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Bob wrote &lt;hi&gt;"), "{page}");
    assert_eq!(
        h.web_post(
            &cookie,
            "/zoom/chat/send",
            &[("bot", "1"), ("message", "thanks")]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let (event, _) = next_event(&mut deliveries, CHATBOT_SECRET_TOKEN).await;
    assert_eq!(event["event"], "bot_notification");
    assert_eq!(event["payload"]["cmd"], "thanks");
    assert_eq!(event["payload"]["robotJid"], ROBOT_JID);
    assert_eq!(event["payload"]["userJid"], alice.jid);
    assert_eq!(event["payload"]["userId"], alice.id);
    assert_eq!(event["payload"]["accountId"], ACCOUNT_ID);
}

/// The query of a chatbot message's deletion, as Rivet's `deleteChatbotMessage` sends it.
fn bot_query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn the_chatbot_edits_and_deletes_its_own_messages_only() {
    let h = start(false).await;
    h.create_apps().await;
    let (_, bot) = h
        .token_grant(
            (CHATBOT_CLIENT_ID, CHATBOT_CLIENT_SECRET),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let bot = bot["access_token"].as_str().unwrap();
    let alice = h.user(ALICE);
    let sent = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "im/chat/messages",
            bot,
            Some(json!({
                "robot_jid": ROBOT_JID,
                "to_jid": alice.jid,
                "account_id": ACCOUNT_ID,
                "user_jid": alice.jid,
                "content": {"head": {"text": "Switchboard"}, "body": [{"type": "message", "text": "Bob wrote <hi>"}]},
            })),
        )
        .await;
    let id = sent["message_id"].as_str().unwrap().to_owned();
    let path = format!("im/chat/messages/{id}");

    // The edit replaces the card and answers the message's ids and its sending time.
    let edit = json!({
        "robot_jid": ROBOT_JID,
        "account_id": ACCOUNT_ID,
        "user_jid": alice.jid,
        "content": {"head": {"text": "Switchboard"}, "body": [{"type": "message", "text": "Bob wrote <hello>"}]},
    });
    let edited = h
        .expect(StatusCode::OK, "PUT", &path, bot, Some(edit.clone()))
        .await;
    assert_eq!(edited["message_id"], id);
    assert_eq!(edited["robot_jid"], ROBOT_JID);
    assert_eq!(edited["to_jid"], alice.jid);
    assert_eq!(edited["user_jid"], alice.jid);
    assert_eq!(edited["sent_time"], sent["sent_time"]);
    {
        let state = h.sim.lock();
        let message = state
            .message(&crate::state::Place::Bot(alice.id.clone()), &id)
            .unwrap();
        assert_eq!(message.text, "Switchboard\nBob wrote <hello>");
        assert_eq!(message.bot_content.as_ref(), Some(&edit["content"]));
        assert!(message.updated.is_some());
    }
    let cookie = h.web_sign_in(ALICE).await;
    let (_, page) = h.web_get(&cookie, "/zoom/chat?bot=1").await;
    assert!(page.contains("Bob wrote &lt;hello&gt;"), "{page}");
    assert!(!page.contains("Bob wrote &lt;hi&gt;"), "{page}");

    // Edits refused: another chatbot, another account, no user_jid, an empty card, a user's
    // token, a message that does not exist.
    let refused = |change: &dyn Fn(&mut Value)| {
        let mut body = edit.clone();
        change(&mut body);
        body
    };
    for body in [
        refused(&|b| b["robot_jid"] = json!("v1other@xmpp.zoom.us")),
        refused(&|b| b["account_id"] = json!("SomeOtherAccount000001")),
        refused(&|b| {
            b.as_object_mut().unwrap().remove("user_jid");
        }),
        refused(&|b| b["content"] = json!({"body": []})),
    ] {
        let answer = h
            .expect(StatusCode::BAD_REQUEST, "PUT", &path, bot, Some(body))
            .await;
        assert_eq!(answer["code"], 300, "{answer}");
    }
    let answer = h
        .expect(
            StatusCode::BAD_REQUEST,
            "PUT",
            &path,
            &h.token(ALICE),
            Some(edit.clone()),
        )
        .await;
    assert_eq!(answer["code"], 4711);
    let answer = h
        .expect(
            StatusCode::NOT_FOUND,
            "PUT",
            "im/chat/messages/NO-SUCH-MESSAGE",
            bot,
            Some(edit.clone()),
        )
        .await;
    assert_eq!(answer["code"], 404);

    // A message Alice wrote to the chatbot is not the chatbot's; one between two users is
    // beyond its sight.
    assert_eq!(
        h.web_post(
            &cookie,
            "/zoom/chat/send",
            &[("bot", "1"), ("message", "thanks")]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let alices = h
        .sim
        .lock()
        .messages(&crate::state::Place::Bot(alice.id.clone()))
        .iter()
        .find(|m| m.sender == alice.id)
        .unwrap()
        .id
        .clone();
    let answer = h
        .expect(
            StatusCode::FORBIDDEN,
            "PUT",
            &format!("im/chat/messages/{alices}"),
            bot,
            Some(edit.clone()),
        )
        .await;
    assert_eq!(answer["code"], 403);
    let direct = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/messages",
            &h.token(ALICE),
            Some(json!({"message": "hi Bob", "to_contact": h.email(BOB)})),
        )
        .await;
    let direct = direct["id"].as_str().unwrap();
    h.expect(
        StatusCode::NOT_FOUND,
        "PUT",
        &format!("im/chat/messages/{direct}"),
        bot,
        Some(edit.clone()),
    )
    .await;

    // Deletions refused, by query.
    let query = |pairs: &[(&str, &str)]| format!("{path}?{}", bot_query(pairs));
    for pairs in [
        &[
            ("robot_jid", "v1other@xmpp.zoom.us"),
            ("account_id", ACCOUNT_ID),
            ("user_jid", &alice.jid),
        ][..],
        &[
            ("robot_jid", ROBOT_JID),
            ("account_id", "SomeOtherAccount000001"),
            ("user_jid", &alice.jid),
        ][..],
        &[("robot_jid", ROBOT_JID), ("account_id", ACCOUNT_ID)][..],
        &[("account_id", ACCOUNT_ID), ("user_jid", &alice.jid)][..],
    ] {
        let answer = h
            .expect(StatusCode::BAD_REQUEST, "DELETE", &query(pairs), bot, None)
            .await;
        assert_eq!(answer["code"], 300, "{answer}");
    }
    let good = [
        ("robot_jid", ROBOT_JID),
        ("account_id", ACCOUNT_ID),
        ("user_jid", alice.jid.as_str()),
    ];
    let answer = h
        .expect(
            StatusCode::FORBIDDEN,
            "DELETE",
            &format!("im/chat/messages/{alices}?{}", bot_query(&good)),
            bot,
            None,
        )
        .await;
    assert_eq!(answer["code"], 403);
    let answer = h
        .expect(
            StatusCode::BAD_REQUEST,
            "DELETE",
            &query(&good),
            &h.token(ALICE),
            None,
        )
        .await;
    assert_eq!(answer["code"], 4711);

    // The deletion answers the ids; the message leaves Alice's chat, and is gone for good.
    let deleted = h
        .expect(StatusCode::OK, "DELETE", &query(&good), bot, None)
        .await;
    assert_eq!(deleted["message_id"], id);
    assert_eq!(deleted["robot_jid"], ROBOT_JID);
    assert_eq!(deleted["to_jid"], alice.jid);
    assert_eq!(deleted["user_jid"], alice.jid);
    assert!(deleted["sent_time"].is_string());
    let (_, page) = h.web_get(&cookie, "/zoom/chat?bot=1").await;
    assert!(!page.contains("Bob wrote"), "{page}");
    assert!(page.contains("thanks"), "{page}");
    for (method, body) in [("DELETE", None), ("PUT", Some(edit.clone()))] {
        let target = if method == "DELETE" {
            query(&good)
        } else {
            path.clone()
        };
        let answer = h
            .expect(StatusCode::NOT_FOUND, method, &target, bot, body)
            .await;
        assert_eq!(answer["code"], 404);
    }
}

#[tokio::test]
async fn throttling_answers_429_with_zooms_rate_limit_headers() {
    let h = start(true).await;
    let token = h.token(ALICE);
    let path = format!("chat/users/me/messages?to_contact={}", h.email(BOB));
    let mut throttled = None;
    for _ in 0..40 {
        let (status, headers, body) = h.call("GET", &path, &token, None).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((headers, body));
            break;
        }
        assert_eq!(status, StatusCode::OK);
    }
    let (headers, body) = throttled.expect("Medium's 20 a second is exceeded");
    assert_eq!(body["code"], 429);
    assert_eq!(headers["x-ratelimit-category"], "Medium");
    assert_eq!(headers["x-ratelimit-type"], "QPS");
    assert_eq!(headers["x-ratelimit-limit"], "20");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(headers["retry-after"], "1");
    // Light endpoints have their own budget.
    h.expect(StatusCode::OK, "GET", "users/me", &token, None)
        .await;
    // What the simulator's injected faults answer, in Zoom's form.
    let injected = h.sim.throttled(Duration::from_millis(1500));
    assert_eq!(injected.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(injected.headers()["retry-after"], "2");
    assert_eq!(injected.headers()["x-ratelimit-type"], "QPS");
    let failed = h.sim.failure(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn the_marketplace_and_consent_pages_show_the_apps_and_escape_what_they_are_given() {
    let h = start(false).await;
    let sign_in = h
        .http
        .get(format!("{}/zoom/admin/", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::OK);
    assert!(sign_in.text().await.unwrap().contains(&h.email(OWNER)));
    let member = h
        .http
        .get(format!("{}/zoom/admin/?email={}", h.base, h.email(ALICE)))
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), StatusCode::FORBIDDEN);
    h.create_apps().await;
    let console = h
        .http
        .get(format!("{}/zoom/admin/?email={}", h.base, h.email(OWNER)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for shown in [
        S2S_CLIENT_ID,
        S2S_SECRET_TOKEN,
        CHATBOT_CLIENT_ID,
        ROBOT_JID,
        ACCOUNT_ID,
    ] {
        assert!(console.contains(shown), "{shown}");
    }
    // The consent form carries the request's state through, escaped.
    let state = "\"><script>alert(1)</script>";
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", USER_CLIENT_ID),
            ("redirect_uri", "https://hub.example/cb"),
            ("state", state),
        ])
        .finish();
    let page = h
        .http
        .get(format!("{}/zoom/oauth/authorize?{query}", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
    assert!(!page.contains("<script>alert"));
}

#[tokio::test]
async fn state_survives_save_and_restore() {
    let h = start(false).await;
    h.create_apps().await;
    let token = h.token(ALICE);
    let id = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/messages",
            &token,
            Some(json!({"message": "kept", "to_contact": h.email(BOB)})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved = h.sim.save();
    let other = start(false).await;
    other.sim.restore(saved).unwrap();
    // The restored simulator knows the token, the message, the apps and looks users up by e-mail.
    let got = other
        .expect(
            StatusCode::OK,
            "GET",
            &format!(
                "chat/users/me/messages/{id}?to_contact={}",
                h.email(BOB).to_uppercase()
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(got["message"], "kept");
    assert!(other.sim.lock().app(AppKind::Chatbot).is_some());
    assert!(other.sim.restore(json!({"users": 3})).is_err());
}

#[tokio::test]
async fn the_web_view_sends_edits_reacts_and_escapes() {
    let h = start(false).await;
    let (status, page) = h.web_get("", "/zoom/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("action=\"/zoom/signin\""));
    let cookie = h.web_sign_in(ALICE).await;
    let bob = h.email(BOB);
    assert_eq!(
        h.web_post(
            &cookie,
            "/zoom/chat/send",
            &[("contact", &bob), ("message", "<script>alert(1)</script>")]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let (status, page) = h
        .web_get(&cookie, &format!("/zoom/chat?contact={bob}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("data-live=\"/zoom/chat/live?contact="));
    let (status, live) = h
        .web_get(&cookie, &format!("/zoom/chat/live?contact={bob}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let live: Value = serde_json::from_str(&live).unwrap();
    let element = &live["messages"][0];
    assert!(element["html"].as_str().unwrap().contains(&format!(
        "id=\"{}\" data-v=\"{}\"",
        element["id"].as_str().unwrap(),
        element["v"].as_str().unwrap()
    )));
    // The API sees what the web view sent; Bob's answer shows up in Alice's page.
    let bob_token = h.token(BOB);
    let listed = h
        .expect(
            StatusCode::OK,
            "GET",
            &format!("chat/users/me/messages?to_contact={}", h.email(ALICE)),
            &bob_token,
            None,
        )
        .await;
    let id = listed["messages"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        h.web_post(
            &cookie,
            "/zoom/chat/react",
            &[("contact", &bob), ("id", &id), ("emoji", "🎉")]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        h.web_post(
            &cookie,
            "/zoom/chat/edit",
            &[("contact", &bob), ("id", &id), ("message", "fixed")]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let (_, page) = h
        .web_get(&cookie, &format!("/zoom/chat?contact={bob}"))
        .await;
    assert!(
        page.contains("fixed") && page.contains("edited") && page.contains("🎉 1"),
        "{page}"
    );
    let bob_cookie = h.web_sign_in(BOB).await;
    let alice = h.email(ALICE);
    assert_eq!(
        h.web_post(
            &bob_cookie,
            "/zoom/chat/edit",
            &[("contact", &alice), ("id", &id), ("message", "not mine")]
        )
        .await,
        StatusCode::FORBIDDEN
    );
    let (_, home) = h.web_get(&cookie, "/zoom/").await;
    assert!(home.contains(&h.organisation.people[BOB].display_name));
    assert_eq!(
        h.web_post(
            &cookie,
            "/zoom/chat/delete",
            &[("contact", &bob), ("id", &id)]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let (_, page) = h
        .web_get(&cookie, &format!("/zoom/chat?contact={bob}"))
        .await;
    assert!(!page.contains("fixed"));
    // A reply outlives its deleted main message.
    let alice_token = h.token(ALICE);
    let main = h
        .expect(
            StatusCode::CREATED,
            "POST",
            "chat/users/me/messages",
            &alice_token,
            Some(json!({"message": "main", "to_contact": bob})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        h.web_post(
            &bob_cookie,
            "/zoom/chat/send",
            &[
                ("contact", &alice),
                ("message", "the reply"),
                ("reply", &main)
            ]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        h.web_post(
            &cookie,
            "/zoom/chat/delete",
            &[("contact", &bob), ("id", &main)]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let (_, page) = h
        .web_get(&cookie, &format!("/zoom/chat?contact={bob}"))
        .await;
    assert!(page.contains("the reply"), "{page}");
    assert_eq!(
        h.web_post(
            &cookie,
            "/zoom/group",
            &[
                ("name", "Trio & co"),
                ("members", &format!("{bob}, {}", h.email(CAROL)))
            ]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let (_, home) = h.web_get(&cookie, "/zoom/").await;
    assert!(home.contains("Trio &amp; co"));
}

#[tokio::test]
async fn the_demo_creates_the_apps_and_yields_the_hubs_table() {
    let h = start(false).await;
    let (endpoint, _) = receiver(&[S2S_SECRET_TOKEN, CHATBOT_SECRET_TOKEN], 0).await;
    let hub = DemoHub {
        public_url: "https://hub.example".to_owned(),
        callback_url: "https://hub.example/callback".to_owned(),
        webhook_url: endpoint.clone(),
        app_scopes: Vec::new(),
        paced: false,
    };
    let demo = crate::ZoomDemo;
    // The hub's one endpoint tells the apps' challenges apart by their signatures.
    let prepared = demo.prepare(&h.base, &hub).await.unwrap();
    assert!(
        h.sim
            .lock()
            .app(AppKind::Chatbot)
            .unwrap()
            .event_url
            .is_none()
    );
    demo.after_connect(&h.base, &hub, prepared.as_ref())
        .await
        .unwrap();
    {
        let state = h.sim.lock();
        let chatbot = state.app(AppKind::Chatbot).unwrap();
        assert_eq!(chatbot.event_url.as_deref(), Some(endpoint.as_str()));
        assert_eq!(chatbot.events, ["bot_notification"]);
        let s2s = state.app(AppKind::ServerToServer).unwrap();
        assert_eq!(s2s.event_url.as_deref(), Some(endpoint.as_str()));
        assert_eq!(s2s.events.len(), TEAM_CHAT_EVENTS.len());
    }
    let table = demo.hub_table(&h.base, &hub, None).unwrap();
    let keys: BTreeSet<&str> = table
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "api_base",
            "oauth_base",
            "account_id",
            "s2s_client_id",
            "s2s_client_secret",
            "user_client_id",
            "user_client_secret",
            "chatbot_client_id",
            "chatbot_client_secret",
            "robot_jid",
            "webhook_secret_token",
            "chatbot_secret_token",
        ])
    );
    let consent = demo.consent(prepared.as_ref()).unwrap();
    assert_eq!(consent.identity, ("email".to_owned(), h.email(OWNER)));
    // The consent walk the demo does with the table's values.
    let query = h.consent(&consent.identity.1, &hub.callback_url).await;
    let code = &query.iter().find(|(k, _)| k == "code").unwrap().1;
    let client = (
        table["user_client_id"].as_str().unwrap(),
        table["user_client_secret"].as_str().unwrap(),
    );
    let (status, tokens) = h
        .token_grant(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &hub.callback_url),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let users = h
        .http
        .get(format!("{}/_sim/users?platform=zoom", h.base))
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap();
    assert_eq!(users[0]["kind"], "owner");
    assert_eq!(users[DEACTIVATED]["kind"], "deactivated");
}

/// Zoom's official Node SDK, `@zoom/rivet` 0.4.0, driven against this simulator
/// (`sdk/zoom.test.mjs`). It needs node and `npm install` in `sdk/`, which the workspace's
/// tests do not, so it runs only when asked:
/// `cargo test -p switchboard-sim-zoom -- --ignored the_official_sdk`.
#[tokio::test]
#[ignore = "needs node and `npm install` in crates/sim-zoom/sdk"]
async fn the_official_sdk_speaks_with_the_simulator() {
    let h = start(false).await;
    let sdk = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk");
    let output = tokio::process::Command::new("npm")
        .arg("test")
        .current_dir(sdk)
        .env("ZOOM_SIM_URL", &h.base)
        .output()
        .await
        .expect("npm runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    println!("{report}");
}

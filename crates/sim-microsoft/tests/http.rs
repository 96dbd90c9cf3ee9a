//! The simulated Microsoft over real loopback HTTP: sign-in with PKCE, admin consent, delegated
//! versus app-only permissions, paging and filtering, delta, B2B guests, subscriptions with
//! their handshake, and Graph's error envelope.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::RawQuery;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_sim_kit::{OrgPlatform, OrgSpec, Organisation, SimContext, SimPlatform};
use switchboard_sim_microsoft::{
    CUSTOMER_TENANT_ID, HUB_APP_ID, HUB_APP_SECRET, INTEROP_DOMAIN, INTEROP_TENANT_ID,
    LifecycleEvent, MicrosoftSim, SEEDED_PASSWORD, guid,
};
use tokio::sync::mpsc;

struct Harness {
    sim: Arc<MicrosoftSim>,
    base: String,
    http: reqwest::Client,
    org: Organisation,
}

/// The simulator's organisation: people on Slack and on Teams.
fn two_platforms(sim: &MicrosoftSim, people: usize) -> OrgSpec {
    OrgSpec {
        people,
        ..OrgSpec::new(vec![OrgPlatform::new("slack"), sim.org_platform()])
    }
}

async fn start(people: usize) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let context = SimContext::new(base.clone(), false);
    context.webhooks.set_time_scale(0.001);
    let sim = MicrosoftSim::new(context);
    let org = Organisation::generate(&two_platforms(&sim, people));
    sim.seed(&org);
    let app = sim.clone().router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Harness {
        sim,
        base,
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .build()
            .unwrap(),
        org,
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map_or("", |(_, query)| query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| {
            let value = value.replace('+', " ");
            let mut out = Vec::new();
            let bytes = value.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
                    out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            (name.to_owned(), String::from_utf8(out).unwrap())
        })
        .collect()
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

impl Harness {
    fn teams_email(&self, nth: usize) -> String {
        self.org
            .people
            .iter()
            .filter(|p| p.is_on("teams") && p.index % 97 != 2)
            .nth(nth)
            .unwrap()
            .email
            .clone()
    }

    fn user_id(&self, email: &str) -> String {
        let person = self.org.people.iter().find(|p| p.email == email).unwrap();
        guid(1, person.index as u64)
    }

    fn service_upn(&self) -> String {
        format!("switchboard.service@{}", self.org.domain)
    }

    async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/graph/v1.0{path}", self.base)
        };
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.graph(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.graph(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn token_request(&self, tenant: &str, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/login/{tenant}/oauth2/v2.0/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Drives the consent page like a browser and returns the redirect's query.
    async fn authorize(
        &self,
        login: &str,
        scope: &str,
        challenge: &str,
        decision: &str,
    ) -> Vec<(String, String)> {
        let params = [
            ("client_id", HUB_APP_ID),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("scope", scope),
            ("state", "xyz"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        let page = self
            .http
            .get(format!(
                "{}/login/{CUSTOMER_TENANT_ID}/oauth2/v2.0/authorize?{}",
                self.base,
                form(&params)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("<form") && html.contains("name=\"login\""),
            "{html}"
        );
        let mut fields: Vec<(&str, &str)> = params.to_vec();
        fields.push(("login", login));
        fields.push(("decision", decision));
        let response = self
            .http
            .post(format!(
                "{}/login/{CUSTOMER_TENANT_ID}/oauth2/v2.0/authorize",
                self.base
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "{}",
            response.text().await.unwrap()
        );
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with("http://127.0.0.1:9/callback?"),
            "{location}"
        );
        query_of(&location)
    }

    async fn admin_consent(&self, tenant: &str, admin: &str) -> Vec<(String, String)> {
        let fields = [
            ("client_id", HUB_APP_ID),
            ("scope", "https://graph.microsoft.com/.default"),
            ("redirect_uri", "http://127.0.0.1:9/consented"),
            ("state", "s1"),
            ("login", admin),
            ("decision", "accept"),
        ];
        let page = self
            .http
            .get(format!(
                "{}/login/{tenant}/v2.0/adminconsent?{}",
                self.base,
                form(&fields[..4])
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let response = self
            .http
            .post(format!("{}/login/{tenant}/v2.0/adminconsent", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .unwrap();
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        query_of(&location)
    }

    async fn app_token(&self, tenant: &str) -> String {
        let (status, body) = self
            .token_request(
                tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", HUB_APP_ID),
                    ("client_secret", HUB_APP_SECRET),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn consented_app_token(&self) -> String {
        let redirect = self
            .admin_consent(CUSTOMER_TENANT_ID, &self.service_upn())
            .await;
        assert_eq!(param(&redirect, "admin_consent").as_deref(), Some("True"));
        self.app_token(CUSTOMER_TENANT_ID).await
    }

    async fn one_on_one(&self, token: &str, a: &str, b: &str) -> (StatusCode, Value) {
        let members: Vec<Value> = [a, b]
            .iter()
            .map(|id| {
                json!({
                    "@odata.type": "#microsoft.graph.aadUserConversationMember",
                    "roles": ["owner"],
                    "user@odata.bind": format!("https://graph.microsoft.com/v1.0/users('{id}')"),
                })
            })
            .collect();
        self.post(
            "/chats",
            token,
            json!({"chatType": "oneOnOne", "members": members}),
        )
        .await
    }
}

fn challenge_for(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[tokio::test]
async fn authorization_code_with_pkce_refresh_and_cancel() {
    let h = start(40).await;
    let email = h.teams_email(0);
    let verifier = "a-verifier-long-enough-for-pkce-0123456789-abcdefghijklmnop";
    let redirect = h
        .authorize(
            &email,
            "offline_access User.Read ChatMessage.Send",
            &challenge_for(verifier),
            "accept",
        )
        .await;
    assert_eq!(param(&redirect, "state").as_deref(), Some("xyz"));
    let code = param(&redirect, "code").unwrap();
    let exchange = |verifier: &'static str| {
        let code = code.clone();
        let h = &h;
        async move {
            h.token_request(
                "organizations",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", HUB_APP_ID),
                    ("client_secret", HUB_APP_SECRET),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1:9/callback"),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    let (status, error) = exchange("not-the-verifier").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");
    assert_eq!(error["error_codes"], json!([501_481]));
    for field in [
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_description",
    ] {
        assert!(error[field].is_string(), "{error}");
    }
    let (status, tokens) =
        exchange("a-verifier-long-enough-for-pkce-0123456789-abcdefghijklmnop").await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, again) =
        exchange("a-verifier-long-enough-for-pkce-0123456789-abcdefghijklmnop").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error_codes"], json!([54_005]));

    let (status, me) = h.get("/me", access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], h.user_id(&email));
    assert_eq!(me["userPrincipalName"], email);

    let (status, refreshed) = h
        .token_request(
            CUSTOMER_TENANT_ID,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", HUB_APP_ID),
                ("client_secret", HUB_APP_SECRET),
                ("refresh_token", refresh),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["refresh_token"].as_str().unwrap(), refresh);
    assert_ne!(refreshed["access_token"].as_str().unwrap(), access);

    let (status, wrong_secret) = h
        .token_request(
            CUSTOMER_TENANT_ID,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", HUB_APP_ID),
                ("client_secret", "nope"),
                ("refresh_token", refresh),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_secret["error"], "invalid_client");

    let cancelled = h
        .authorize(&email, "User.Read", &challenge_for(verifier), "cancel")
        .await;
    assert_eq!(param(&cancelled, "error").as_deref(), Some("access_denied"));
    assert!(
        param(&cancelled, "error_description")
            .unwrap()
            .starts_with("AADSTS65004")
    );
    assert_eq!(param(&cancelled, "state").as_deref(), Some("xyz"));
}

#[tokio::test]
async fn posting_needs_a_delegated_token_with_the_right_scope() {
    let h = start(40).await;
    let (status, refused) = h
        .token_request(
            CUSTOMER_TENANT_ID,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", HUB_APP_ID),
                ("client_secret", HUB_APP_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "unauthorized_client");

    let app = h.consented_app_token().await;
    let (alice, bob) = (h.teams_email(0), h.teams_email(1));
    let (alice_id, bob_id) = (h.user_id(&alice), h.user_id(&bob));
    let (status, chat) = h.one_on_one(&app, &alice_id, &bob_id).await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    let chat_id = chat["id"].as_str().unwrap().to_owned();
    let messages = format!("/chats/{}/messages", encode(&chat_id));

    let (status, error) = h
        .post(&messages, &app, json!({"body": {"content": "hello"}}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["code"], "Unauthorized");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("import purposes")
    );
    assert!(error["error"]["innerError"]["request-id"].is_string());

    let alice_token = h.sim.mint_token(&alice).unwrap();
    let (status, again) = h.one_on_one(&alice_token, &alice_id, &bob_id).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        again["id"], chat_id,
        "the pair's one-on-one chat is returned again"
    );

    let (status, posted) = h
        .post(
            &messages,
            &alice_token,
            json!({
                "body": {"contentType": "html", "content": "Hi <at id=\"0\">Bob</at>"},
                "mentions": [{"id": 0, "mentionText": "Bob", "mentioned": {"user": {"id": bob_id}}}],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["from"]["user"]["id"], alice_id);
    assert_eq!(posted["mentions"][0]["mentioned"]["user"]["id"], bob_id);
    let message_id = posted["id"].as_str().unwrap().to_owned();

    let (status, mismatch) = h
        .post(
            &messages,
            &alice_token,
            json!({"body": {"contentType": "html", "content": "Hi <at id=\"1\">Bob</at>"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{mismatch}");

    let reaction = format!("{messages}/{message_id}/setReaction");
    let (status, error) = h.post(&reaction, &app, json!({"reactionType": "👍"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"]["code"], "Forbidden");
    let bob_token = h.sim.mint_token(&bob).unwrap();
    let (status, _) = h
        .post(&reaction, &bob_token, json!({"reactionType": "👍"}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = h
        .get(&format!("{messages}/{message_id}"), &alice_token)
        .await;
    assert_eq!(read["reactions"][0]["reactionType"], "👍");
    assert_eq!(read["reactions"][0]["user"]["user"]["id"], bob_id);

    let (status, _) = h
        .graph(
            reqwest::Method::PATCH,
            &format!("{messages}/{message_id}"),
            &bob_token,
            Some(json!({"body": {"content": "not mine"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .graph(
            reqwest::Method::PATCH,
            &format!("{messages}/{message_id}"),
            &alice_token,
            Some(json!({"body": {"contentType": "text", "content": "edited"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let delete = format!(
        "/users/{alice_id}/chats/{}/messages/{message_id}/softDelete",
        encode(&chat_id)
    );
    let (status, _) = h.post(&delete, &app, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.post(&delete, &alice_token, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = h.get(&messages, &bob_token).await;
    assert!(listed["value"][0]["deletedDateTime"].is_string());
    assert_eq!(listed["value"][0]["body"]["content"], "");

    let verifier = "another-verifier-for-a-token-with-only-user-read-0123456789";
    let redirect = h
        .authorize(&alice, "User.Read", &challenge_for(verifier), "accept")
        .await;
    let (_, narrow) = h
        .token_request(
            CUSTOMER_TENANT_ID,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", HUB_APP_ID),
                ("client_secret", HUB_APP_SECRET),
                ("code", &param(&redirect, "code").unwrap()),
                ("redirect_uri", "http://127.0.0.1:9/callback"),
                ("code_verifier", verifier),
            ],
        )
        .await;
    let narrow = narrow["access_token"].as_str().unwrap();
    let (status, error) = h
        .post(&messages, narrow, json!({"body": {"content": "x"}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ChatMessage.Send")
    );
    let (status, error) = h.get("/users", narrow).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"]["code"], "Authorization_RequestDenied");
}

#[tokio::test]
async fn users_page_to_the_end_and_filter_case_insensitively() {
    let h = start(2_000).await;
    let app = h.consented_app_token().await;
    let mut url = "/users?$top=999&$select=id,mail,userType,accountEnabled".to_owned();
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let (status, page) = h.get(&url, &app).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let value = page["value"].as_array().unwrap();
        assert!(
            value
                .iter()
                .all(|user| user.get("displayName").is_none() && user["userType"].is_string())
        );
        seen += value.len();
        pages += 1;
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken="), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, 1_201, "1,200 Teams people and the service user");
    assert_eq!(pages, 2);

    let person = h
        .org
        .people
        .iter()
        .find(|p| p.is_on("teams") && p.index % 7 == 0)
        .unwrap();
    let (status, found) = h
        .get(
            &format!(
                "/users?$filter={}",
                encode(&format!("mail eq '{}'", person.email.to_uppercase()))
            ),
            &app,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["value"].as_array().unwrap().len(), 1);
    assert_ne!(
        found["value"][0]["mail"], person.email,
        "presented in mixed case"
    );

    let (status, error) = h.get("/users?$top=1000", &app).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "Request_BadRequest");
    let (status, error) = h.get("/users?$filter=mail%20eq", &app).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, error) = h.get("/users/nobody@nowhere.example", &app).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "Request_ResourceNotFound");
    let (status, by_upn) = h.get(&format!("/users/{}", person.email), &app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_upn["id"], guid(1, person.index as u64));

    let (_, groups) = h.get("/groups?$top=5", &app).await;
    let group_id = groups["value"][0]["id"].as_str().unwrap().to_owned();
    assert!(groups["@odata.nextLink"].is_string());
    let (status, members) = h.get(&format!("/groups/{group_id}/members"), &app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members["value"].as_array().unwrap().len(), 50);
    let (status, team) = h.get(&format!("/teams/{group_id}/members"), &app).await;
    assert_eq!(status, StatusCode::OK, "{team}");
    assert_eq!(
        team["value"][0]["@odata.type"],
        "#microsoft.graph.aadUserConversationMember"
    );
    assert_eq!(team["value"][0]["roles"], json!(["owner"]));
}

#[tokio::test]
async fn delta_reports_only_changes_after_the_first_round() {
    let h = start(100).await;
    let app = h.consented_app_token().await;
    let mut url = "/users/delta?$select=displayName,mail&$top=25".to_owned();
    let delta_link = loop {
        let (status, page) = h.get(&url, &app).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if let Some(next) = page["@odata.nextLink"].as_str() {
            url = next.to_owned();
        } else {
            break page["@odata.deltaLink"].as_str().unwrap().to_owned();
        }
    };
    assert!(delta_link.contains("$deltatoken="));
    let (_, unchanged) = h.get(&delta_link, &app).await;
    assert_eq!(unchanged["value"], json!([]));

    let gone = h.user_id(&h.teams_email(3));
    let (status, _) = h
        .graph(
            reqwest::Method::DELETE,
            &format!("/users/{gone}"),
            &app,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, invitation) = h
        .post(
            "/invitations",
            &app,
            json!({"invitedUserEmailAddress": "outsider@elsewhere.example", "inviteRedirectUrl": "https://example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let guest = invitation["invitedUser"]["id"].as_str().unwrap();
    let (_, changes) = h.get(&delta_link, &app).await;
    let value = changes["value"].as_array().unwrap();
    assert_eq!(value.len(), 2, "{changes}");
    assert_eq!(value[0]["id"], gone);
    assert_eq!(value[0]["@removed"]["reason"], "changed");
    assert_eq!(value[1]["id"], guest);
    assert!(value[1].get("displayName").is_some() && value[1].get("jobTitle").is_none());
    let (status, _) = h.get(&format!("/users/{gone}"), &app).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_interop_identity_is_invited_and_signs_in_as_a_guest() {
    let h = start(40).await;
    let interop_app = h.app_token(INTEROP_TENANT_ID).await;
    let upn = format!("ada.slack@{INTEROP_DOMAIN}");
    let (status, created) = h
        .post(
            "/users",
            &interop_app,
            json!({
                "accountEnabled": true,
                "displayName": "Ada (Slack)",
                "mailNickname": "ada.slack",
                "userPrincipalName": upn,
                "mail": upn,
                "passwordProfile": {"password": "Interop-Passw0rd!", "forceChangePasswordNextSignIn": false},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let app = h.consented_app_token().await;
    let (status, invitation) = h
        .post(
            "/invitations",
            &app,
            json!({"invitedUserEmailAddress": upn, "inviteRedirectUrl": "https://example.com", "invitedUserDisplayName": "Ada (Slack)"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    assert_eq!(invitation["status"], "PendingAcceptance");
    let guest_id = invitation["invitedUser"]["id"].as_str().unwrap().to_owned();
    let (_, guest) = h
        .get(&format!("/users/{guest_id}?$select=userPrincipalName,userType,creationType,externalUserState"), &app)
        .await;
    assert_eq!(guest["userType"], "Guest");
    assert_eq!(guest["creationType"], "Invitation");
    assert_eq!(
        guest["userPrincipalName"],
        format!("ada.slack_{INTEROP_DOMAIN}#EXT#@{}", h.org.domain)
    );

    let ropc = |password: &'static str| {
        let upn = upn.clone();
        let h = &h;
        async move {
            h.token_request(
                CUSTOMER_TENANT_ID,
                &[
                    ("grant_type", "password"),
                    ("client_id", HUB_APP_ID),
                    ("client_secret", HUB_APP_SECRET),
                    ("username", &upn),
                    ("password", password),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await
        }
    };
    let (status, error) = ropc("wrong").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error_codes"], json!([50_126]));
    let (status, tokens) = ropc("Interop-Passw0rd!").await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let guest_token = tokens["access_token"].as_str().unwrap();
    let (_, me) = h
        .get("/me?$select=id,userType,externalUserState", guest_token)
        .await;
    assert_eq!(me["id"], guest_id);
    assert_eq!(me["userType"], "Guest");
    assert_eq!(me["externalUserState"], "Accepted");

    let member = h.user_id(&h.teams_email(0));
    let (status, chat) = h
        .post(
            "/chats",
            guest_token,
            json!({"chatType": "oneOnOne", "members": [
                {"@odata.type": "#microsoft.graph.aadUserConversationMember", "roles": ["guest"], "user@odata.bind": format!("https://graph.microsoft.com/v1.0/users('{guest_id}')")},
                {"@odata.type": "#microsoft.graph.aadUserConversationMember", "roles": ["owner"], "user@odata.bind": format!("https://graph.microsoft.com/v1.0/users('{member}')")},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    let (status, _) = h
        .post(
            &format!("/chats/{}/messages", encode(chat["id"].as_str().unwrap())),
            guest_token,
            json!({"body": {"content": "hello from Slack"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = h
        .token_request(
            CUSTOMER_TENANT_ID,
            &[
                ("grant_type", "password"),
                ("client_id", HUB_APP_ID),
                ("client_secret", HUB_APP_SECRET),
                ("username", &h.service_upn()),
                ("password", SEEDED_PASSWORD),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

type Received = mpsc::UnboundedReceiver<(Option<String>, Value)>;

/// A webhook receiver that answers the validation handshake (or not) and hands over
/// notifications.
async fn receiver(echo: bool) -> (String, Received) {
    let (sender, received) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |RawQuery(query): RawQuery, body: String| {
            let sender = sender.clone();
            async move {
                let token = query
                    .as_deref()
                    .and_then(|q| q.strip_prefix("validationToken="))
                    .map(|t| query_of(&format!("?v={t}"))[0].1.clone());
                if let Some(token) = token {
                    return if echo {
                        (StatusCode::OK, token)
                    } else {
                        (StatusCode::OK, "wrong".to_owned())
                    };
                }
                let value: Value = serde_json::from_str(&body).unwrap();
                sender.send((query, value)).unwrap();
                (StatusCode::ACCEPTED, String::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), received)
}

async fn next(received: &mut Received) -> Value {
    tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("a notification arrives")
        .unwrap()
        .1
}

#[tokio::test]
async fn subscriptions_validate_notify_with_client_state_and_signal_lifecycle() {
    let h = start(40).await;
    let (alice, bob) = (h.teams_email(0), h.teams_email(1));
    let token = h.sim.mint_token(&alice).unwrap();
    let (_, chat) = h
        .one_on_one(&token, &h.user_id(&alice), &h.user_id(&bob))
        .await;
    let chat_id = chat["id"].as_str().unwrap().to_owned();
    let resource = format!("/chats/{chat_id}/messages");
    let (url, mut received) = receiver(true).await;
    let soon = switchboard_sim_kit::clock::since_epoch().as_secs() + 1_800;
    let expiry = iso_from_secs(soon);

    let (bad_url, _) = receiver(false).await;
    let (status, error) = h
        .post(
            "/subscriptions",
            &token,
            json!({"changeType": "created", "notificationUrl": bad_url, "resource": resource, "expirationDateTime": expiry}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "ValidationError");

    let (status, error) = h
        .post(
            "/subscriptions",
            &token,
            json!({"changeType": "created", "notificationUrl": url, "resource": resource,
                   "expirationDateTime": iso_from_secs(soon + 7_200)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lifecycleNotificationUrl")
    );

    let (status, subscription) = h
        .post(
            "/subscriptions",
            &token,
            json!({"changeType": "created,updated,deleted", "notificationUrl": url, "lifecycleNotificationUrl": url,
                   "resource": resource, "expirationDateTime": expiry, "clientState": "secret-state"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{subscription}");
    let subscription_id = subscription["id"].as_str().unwrap().to_owned();

    let (_, posted) = h
        .post(
            &format!("/chats/{}/messages", encode(&chat_id)),
            &token,
            json!({"body": {"content": "ping"}}),
        )
        .await;
    let notification = next(&mut received).await;
    let item = &notification["value"][0];
    assert_eq!(item["subscriptionId"], subscription_id);
    assert_eq!(item["clientState"], "secret-state");
    assert_eq!(item["changeType"], "created");
    assert_eq!(item["tenantId"], CUSTOMER_TENANT_ID);
    assert_eq!(item["resourceData"]["id"], posted["id"]);
    assert_eq!(
        item["resource"],
        format!(
            "chats('{chat_id}')/messages('{}')",
            posted["id"].as_str().unwrap()
        )
    );

    h.sim
        .send_lifecycle(&subscription_id, LifecycleEvent::ReauthorizationRequired)
        .unwrap();
    let lifecycle = next(&mut received).await;
    assert_eq!(
        lifecycle["value"][0]["lifecycleEvent"],
        "reauthorizationRequired"
    );
    assert_eq!(lifecycle["value"][0]["clientState"], "secret-state");
    let (status, _) = h
        .post(
            &format!("/subscriptions/{subscription_id}/reauthorize"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, renewed) = h
        .graph(
            reqwest::Method::PATCH,
            &format!("/subscriptions/{subscription_id}"),
            &token,
            Some(json!({"expirationDateTime": iso_from_secs(soon + 3_600)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let (status, _) = h
        .graph(
            reqwest::Method::DELETE,
            &format!("/subscriptions/{subscription_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = h
        .get(&format!("/subscriptions/{subscription_id}"), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
}

fn iso_from_secs(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (mut year, mut remaining) = (1970_u64, days);
    loop {
        let length = if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) {
            366
        } else {
            365
        };
        if remaining < length {
            break;
        }
        remaining -= length;
        year += 1;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let months = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while remaining >= months[month] {
        remaining -= months[month];
        month += 1;
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.0000000Z",
        month + 1,
        remaining + 1,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[tokio::test]
async fn errors_use_graph_envelope_and_ids() {
    let h = start(40).await;
    let response = h
        .http
        .get(format!("{}/graph/v1.0/users", h.base))
        .header("client-request-id", "my-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["client-request-id"], "my-id-123");
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(body["error"]["innerError"]["request-id"], request_id);
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        "my-id-123"
    );

    let token = h.sim.mint_token(&h.teams_email(0)).unwrap();
    let (status, error) = h.get("/nonsense", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "BadRequest");
    let response = h
        .http
        .post(format!("{}/graph/v1.0/chats", h.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, error) = h.get("/users", "opaque-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("IDX14100")
    );
    let (status, _) = h.get("/chats/19:nope@thread.v2/messages", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    h.sim.set_token_lifetime(1);
    let short = h.sim.mint_token(&h.teams_email(0)).unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, error) = h.get("/me", &short).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["code"], "InvalidAuthenticationToken");

    let throttled = h.sim.throttled(Duration::from_millis(1_500));
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "2");
    let failed = h.sim.failure(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn state_survives_save_and_restore_and_seeding_is_deterministic() {
    let h = start(200).await;
    let token = h.sim.mint_token(&h.teams_email(0)).unwrap();
    let (alice, bob) = (h.user_id(&h.teams_email(0)), h.user_id(&h.teams_email(1)));
    let (_, chat) = h.one_on_one(&token, &alice, &bob).await;
    let saved = h.sim.save();
    h.sim
        .seed(&Organisation::generate(&two_platforms(&h.sim, 10)));
    assert!(h.sim.users().len() < 10);
    h.sim.restore(saved).unwrap();
    let (status, again) = h
        .get(
            &format!("/chats/{}", encode(chat["id"].as_str().unwrap())),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert!(h.sim.restore(json!({"nonsense": true})).is_err());
    let users = h.sim.users();
    assert_eq!(users.len(), 121);
    assert_eq!(users[0].id, guid(1, 2));
    assert!(users.iter().any(|user| user.kind == "disabled"));
    assert!(h.sim.mint_token("nobody@nowhere.example").is_err());
}

#[tokio::test]
async fn the_web_view_signs_in_and_chats() {
    let h = start(40).await;
    let (alice, bob) = (h.teams_email(0), h.teams_email(1));
    let response = h
        .http
        .post(format!("{}/teams/signin", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("login", &alice)]))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let send = |path: &str, fields: Vec<(&str, String)>| {
        let request = h
            .http
            .post(format!("{}{path}", h.base))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                fields
                    .iter()
                    .map(|(name, value)| format!("{name}={}", encode(value)))
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        async move { request.send().await.unwrap() }
    };
    let created = send("/teams/new", vec![("with", bob.clone())]).await;
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let chat_id = param(&query_of(&location), "id").unwrap();
    send(
        "/teams/chat/send",
        vec![
            ("id", chat_id.clone()),
            ("content", "Hello from the web".to_owned()),
        ],
    )
    .await;
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
    assert!(page.contains("Hello from the web"), "{page}");
    let token = h.sim.mint_token(&bob).unwrap();
    let (_, messages) = h
        .get(&format!("/chats/{}/messages", encode(&chat_id)), &token)
        .await;
    assert_eq!(
        messages["value"][0]["body"],
        json!({"contentType": "html", "content": "<p>Hello from the web</p>"})
    );
    let home = h
        .http
        .get(format!("{}/teams/", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("Sign in"));
}

#[tokio::test]
async fn the_web_view_finds_guests_and_shows_html_safely() {
    let h = start(40).await;
    let app = h.consented_app_token().await;
    let (status, invitation) = h
        .post(
            "/invitations",
            &app,
            json!({"invitedUserEmailAddress": "outsider@elsewhere.example",
                   "invitedUserDisplayName": "Olive Outsider",
                   "inviteRedirectUrl": "https://example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let guest = invitation["invitedUser"]["id"].as_str().unwrap().to_owned();
    let (alice, bob) = (h.teams_email(0), h.teams_email(1));
    let signed_in = h
        .http
        .post(format!("{}/teams/signin", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("login", &alice)]))
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
    let post = |path: &str, fields: &[(&str, &str)]| {
        h.http
            .post(format!("{}{path}", h.base))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
    };

    let directory = get("/teams/people?q=olive".to_owned()).await.unwrap();
    assert!(
        directory.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let directory = directory.text().await.unwrap();
    assert!(directory.contains("1 person matches."), "{directory}");
    assert!(
        directory.contains("<strong>Olive Outsider</strong><span class=\"tag\">guest</span>"),
        "{directory}"
    );
    let created = post("/teams/new", &[("to", &guest)]).await.unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let chat_id = param(&query_of(&location), "id").unwrap();
    assert!(
        chat_id.ends_with("@unq.gbl.spaces"),
        "a row's Chat opens a one-on-one chat"
    );

    post(
        "/teams/chat/send",
        &[
            ("id", &chat_id),
            (
                "content",
                "**bold** & [docs](https://x.example/a?b=1&c=2) <script>alert(1)</script>",
            ),
        ],
    )
    .await
    .unwrap();
    let alice_token = h.sim.mint_token(&alice).unwrap();
    let (_, messages) = h
        .get(
            &format!("/chats/{}/messages", encode(&chat_id)),
            &alice_token,
        )
        .await;
    assert_eq!(
        messages["value"][0]["body"],
        json!({"contentType": "html", "content": "<p><b>bold</b> &amp; <a href=\"https://x.example/a?b=1&amp;c=2\">docs</a> &lt;script&gt;alert(1)&lt;/script&gt;</p>"})
    );

    let bob_token = h.sim.mint_token(&bob).unwrap();
    let group = post(
        "/teams/new",
        &[("pick", &h.user_id(&bob)), ("with", "Olive Outsider")],
    )
    .await
    .unwrap();
    let group = group.headers()["location"].to_str().unwrap().to_owned();
    let group_id = param(&query_of(&group), "id").unwrap();
    assert!(group_id.ends_with("@thread.v2"), "{group_id}");
    let hostile = "<p onclick=\"alert(1)\">Hi <at id=\"0\">Alice</at>, <a href=\"javascript:alert(1)\">bad</a> \
                   <a href=\"https://hub.example/link/1\">Sync now</a><img src=x onerror=alert(1)><script>alert(2)</script><i>it</i></p>";
    let (status, posted) = h
        .post(
            &format!("/chats/{}/messages", encode(&group_id)),
            &bob_token,
            json!({"body": {"contentType": "html", "content": hostile},
                   "mentions": [{"id": 0, "mentionText": "Alice",
                                 "mentioned": {"user": {"id": h.user_id(&alice)}}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    let page = get(group.clone()).await.unwrap().text().await.unwrap();
    assert!(
        page.contains(
            "<p>Hi <span class=\"mention\">Alice</span>, bad \
             <a href=\"https://hub.example/link/1\" rel=\"noopener noreferrer\">Sync now</a>🖼<i>it</i></p>"
        ),
        "{page}"
    );
    assert!(
        !page.contains("javascript:") && !page.contains("onerror") && !page.contains("onclick")
    );
    assert_eq!(
        page.matches("<script").count(),
        1,
        "the live script is the page's only script"
    );

    let live: Value = get(format!("/teams/chat/live?id={}", encode(&chat_id)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let html = live["messages"][0]["html"].as_str().unwrap();
    assert!(html.contains("<b>bold</b> &amp; <a href=\"https://x.example/a?b=1&amp;c=2\" rel=\"noopener noreferrer\">docs</a>"), "{html}");
    assert!(html.contains(&format!(
        "data-v=\"{}\"",
        live["messages"][0]["v"].as_str().unwrap()
    )));
}

#[tokio::test]
async fn expired_authorisation_asks_for_reauthorisation_and_reports_missed_notifications() {
    let h = start(40).await;
    let (alice, bob) = (h.teams_email(0), h.teams_email(1));
    let bob_token = h.sim.mint_token(&bob).unwrap();
    h.sim.set_token_lifetime(1);
    let short = h.sim.mint_token(&alice).unwrap();
    let (_, chat) = h
        .one_on_one(&bob_token, &h.user_id(&alice), &h.user_id(&bob))
        .await;
    let chat_id = chat["id"].as_str().unwrap().to_owned();
    let (url, mut received) = receiver(true).await;
    let soon = switchboard_sim_kit::clock::since_epoch().as_secs() + 1_800;
    let (status, subscription) = h
        .post(
            "/subscriptions",
            &short,
            json!({"changeType": "created", "notificationUrl": url, "lifecycleNotificationUrl": url,
                   "resource": format!("/chats/{chat_id}/messages"), "expirationDateTime": iso_from_secs(soon)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{subscription}");
    let lifecycle = next(&mut received).await;
    assert_eq!(
        lifecycle["value"][0]["lifecycleEvent"],
        "reauthorizationRequired"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = h
        .post(
            &format!("/chats/{}/messages", encode(&chat_id)),
            &bob_token,
            json!({"body": {"content": "while unauthorised"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    h.sim.set_token_lifetime(3_900);
    let fresh = h.sim.mint_token(&alice).unwrap();
    let id = subscription["id"].as_str().unwrap();
    let (status, _) = h
        .post(
            &format!("/subscriptions/{id}/reauthorize"),
            &fresh,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let missed = next(&mut received).await;
    assert_eq!(missed["value"][0]["lifecycleEvent"], "missed", "{missed}");
}

#[tokio::test]
async fn chat_messages_list_in_the_documented_orders_and_date_ranges() {
    let h = start(40).await;
    let app = h.consented_app_token().await;
    let (alice, bob) = (h.teams_email(0), h.teams_email(1));
    let (alice_id, bob_id) = (h.user_id(&alice), h.user_id(&bob));
    let (_, chat) = h.one_on_one(&app, &alice_id, &bob_id).await;
    let messages = format!("/chats/{}/messages", encode(chat["id"].as_str().unwrap()));
    let alice_token = h.sim.mint_token(&alice).unwrap();
    let mut sent = Vec::new();
    for n in 0..5 {
        let (status, posted) = h
            .post(
                &messages,
                &alice_token,
                json!({"body": {"content": format!("m{n}")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{posted}");
        sent.push(posted);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, _) = h
        .graph(
            reqwest::Method::PATCH,
            &format!("{messages}/{}", sent[0]["id"].as_str().unwrap()),
            &alice_token,
            Some(json!({"body": {"content": "m0, edited"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let contents = |page: &Value| -> Vec<String> {
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"]["content"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |query: String| {
        let path = format!("{messages}?{query}");
        let token = app.clone();
        let h = &h;
        async move { h.get(&path, &token).await }
    };

    let (status, default) = list(String::new()).await;
    assert_eq!(status, StatusCode::OK, "{default}");
    assert_eq!(contents(&default), ["m0, edited", "m4", "m3", "m2", "m1"]);
    let (_, created) = list(form(&[("$orderby", "createdDateTime desc")])).await;
    assert_eq!(contents(&created), ["m4", "m3", "m2", "m1", "m0, edited"]);

    let since = sent[2]["lastModifiedDateTime"].as_str().unwrap();
    let (status, first) = list(form(&[
        ("$top", "2"),
        ("$orderby", "lastModifiedDateTime desc"),
        ("$filter", &format!("lastModifiedDateTime gt {since}")),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(contents(&first), ["m0, edited", "m4"]);
    let next = first["@odata.nextLink"].as_str().unwrap();
    let (_, second) = h.get(next, &app).await;
    assert_eq!(contents(&second), ["m3"]);
    assert!(second.get("@odata.nextLink").is_none());

    let until = sent[2]["createdDateTime"].as_str().unwrap();
    let (_, before) = list(form(&[
        ("$orderby", "createdDateTime desc"),
        ("$filter", &format!("createdDateTime lt {until}")),
    ]))
    .await;
    assert_eq!(contents(&before), ["m1", "m0, edited"]);
    let (_, ignored) = list(form(&[(
        "$filter",
        &format!("lastModifiedDateTime gt {since}"),
    )]))
    .await;
    assert_eq!(
        contents(&ignored).len(),
        5,
        "a $filter without an $orderby on its property is ignored"
    );

    for refused in [
        form(&[
            ("$orderby", "createdDateTime desc"),
            ("$filter", &format!("createdDateTime gt {until}")),
        ]),
        form(&[("$orderby", "createdDateTime asc")]),
        form(&[("$orderby", "createdDateTime")]),
        form(&[("$orderby", "subject desc")]),
        form(&[
            ("$orderby", "lastModifiedDateTime desc"),
            ("$filter", "lastModifiedDateTime gt yesterday"),
        ]),
        form(&[("$top", "51")]),
    ] {
        let (status, error) = list(refused.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}: {error}");
        assert_eq!(error["error"]["code"], "BadRequest");
    }
}

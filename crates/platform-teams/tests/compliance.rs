//! The Teams platform against the simulated Microsoft (Entra ID + Graph), end to end: every
//! trait method, the consent and sign-in pages driven as a browser would, change notifications
//! received by a real endpoint, and failures classified.

use std::collections::HashSet;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_core::{
    Block, Connection, ConnectionId, Email, ExternalChatId, ExternalUserId, Inline, Mention,
    Platform, RichText, Timestamp,
};
use switchboard_platform::{
    Actor, ChatPlatform, ConnectionContext, Credentials, FlowContext, FlowOutcome, FlowStep,
    ImportRequest, InboundKind, MessageRef, OutboundMessage, PlatformError, Prompt,
    ProvisionRequest, Provisioning, WebhookRequest, WebhookVerdict,
};
use switchboard_platform_teams::{
    ChangeNotice, ChangeType, InteropSettings, TeamsPlatform, TeamsSettings, credential,
};
use switchboard_secrets::{ExposeSecret, SecretString};
use switchboard_sim::{SimConfig, Simulator};
use switchboard_sim_kit::{OrgSpec, Organisation};
use tokio::sync::mpsc;

const CUSTOMER_TENANT: &str = "5b000000-c057-4000-8000-000000000001";
const INTEROP_TENANT: &str = "5b000000-c057-4000-8000-000000000002";
const HUB_CLIENT_ID: &str = "5b000000-a990-4000-8000-000000000001";
const HUB_CLIENT_SECRET: &str = "sim~hub.app-secret_0nly-valid-in-the-simulator";
const SERVICE_USER: &str = "switchboard.service@acme.example";
const SERVICE_USER_ID: &str = "5b000003-0000-4000-8000-000000000000";
const CALLBACK: &str = "https://hub.example/callback/teams";

struct World {
    base: String,
    _sim: Simulator,
    http: reqwest::Client,
    teams: TeamsPlatform,
}

async fn start(people: usize) -> (World, Organisation) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim = Simulator::new(SimConfig {
        base_url: base.clone(),
        people: 40,
        rate_limits: false,
        state_file: None,
    })
    .unwrap();
    let router = sim.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let organisation = sim.seed(&OrgSpec {
        people,
        ..sim.org_spec()
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let world = World {
        teams: platform(&base),
        base,
        _sim: sim,
        http,
    };
    world
        .sim_call(
            reqwest::Method::PUT,
            "/_sim/settings",
            json!({"webhook_time_scale": 0.001}),
        )
        .await;
    (world, organisation)
}

fn platform(base: &str) -> TeamsPlatform {
    let settings: TeamsSettings = serde_json::from_value(json!({
        "login_base_url": format!("{base}/login"),
        "graph_base_url": format!("{base}/graph/v1.0"),
        "client_id": HUB_CLIENT_ID,
        "client_secret": HUB_CLIENT_SECRET,
        "interop": {"tenant": INTEROP_TENANT, "domain": "switchboard-interop.example"},
        "request_timeout_secs": 10,
        "page_size": 20,
    }))
    .unwrap();
    let _: &Option<InteropSettings> = &settings.interop;
    TeamsPlatform::new(settings).unwrap()
}

impl World {
    async fn sim_call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    async fn mint(&self, email: &str) -> String {
        let answer = self
            .sim_call(
                reqwest::Method::POST,
                "/_sim/token",
                json!({"platform": "teams", "email": email}),
            )
            .await;
        answer["token"].as_str().unwrap().to_owned()
    }

    async fn graph_get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/graph/v1.0{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The newest requests the simulator served whose path starts with `prefix`.
    async fn log(&self, since: u64, prefix: &str) -> Vec<Value> {
        let entries = self
            .http
            .get(format!(
                "{}/_sim/log?since={since}&kind=request&limit=10000",
                self.base
            ))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap();
        entries
            .into_iter()
            .filter(|e| e["target"].as_str().is_some_and(|t| t.starts_with(prefix)))
            .collect()
    }

    async fn last_seq(&self) -> u64 {
        let entries: Vec<Value> = self
            .http
            .get(format!("{}/_sim/log?limit=10000", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        entries
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// The simulator's clock, from its `Date` header (the house rule keeps tests off the
    /// system clock too).
    async fn now(&self) -> Timestamp {
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .unwrap();
        let date = response.headers()["date"].to_str().unwrap().to_owned();
        http_date(&date)
    }

    /// Follows a consent or sign-in page as a browser: read the form, type `login`, press
    /// Accept (or Cancel), and return the query of the redirect to the callback URL.
    async fn browse(&self, url: &str, login: &str, accept: bool) -> Vec<(String, String)> {
        let page = self.http.get(url).send().await.unwrap();
        assert_eq!(page.status(), 200, "{url}");
        let html = page.text().await.unwrap();
        let form = &html[html.find("<form").expect("a form")..];
        let action = attribute(form, "action").unwrap();
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut rest = form;
        while let Some(at) = rest.find("<input type=\"hidden\"") {
            rest = &rest[at + 6..];
            let tag = &rest[..rest.find('>').unwrap()];
            fields.push((
                attribute(tag, "name").unwrap(),
                attribute(tag, "value").unwrap_or_default(),
            ));
        }
        fields.push(("login".to_owned(), login.to_owned()));
        fields.push((
            "decision".to_owned(),
            if accept { "accept" } else { "cancel" }.to_owned(),
        ));
        let response = self
            .http
            .post(format!("{}{action}", self.base))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            302,
            "{}",
            response.text().await.unwrap_or_default()
        );
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(CALLBACK), "{location}");
        reqwest::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    async fn connect(&self) -> ConnectionContext {
        let flow = FlowContext {
            callback_url: CALLBACK.to_owned(),
            state: "connect-state-1".to_owned(),
        };
        let FlowStep::Redirect { url, state } = self
            .teams
            .begin_connect(&Credentials::default(), &flow)
            .await
            .unwrap()
        else {
            panic!("connecting starts with a redirect")
        };
        assert!(url.contains("/organizations/v2.0/adminconsent?"), "{url}");
        let callback = self.browse(&url, SERVICE_USER, true).await;
        let FlowStep::Redirect { url, state } = self
            .teams
            .continue_flow(None, &state, &flow, &callback)
            .await
            .unwrap()
        else {
            panic!("admin consent is followed by the service user's sign-in")
        };
        assert!(url.contains("code_challenge_method=S256"), "{url}");
        let callback = self.browse(&url, SERVICE_USER, true).await;
        let FlowStep::Done(FlowOutcome::Connected {
            tenant,
            display_name,
            credentials,
        }) = self
            .teams
            .continue_flow(None, &state, &flow, &callback)
            .await
            .unwrap()
        else {
            panic!("the service user's sign-in connects")
        };
        assert_eq!(tenant.as_str(), CUSTOMER_TENANT);
        assert_eq!(display_name, "acme.example");
        assert_eq!(
            credentials
                .get(credential::SERVICE_USER_ID)
                .unwrap()
                .expose_secret(),
            SERVICE_USER_ID
        );
        assert!(credentials.get(credential::REFRESH_TOKEN).is_ok());
        assert!(credentials.get(credential::CLIENT_STATE).is_ok());
        assert!(credentials.expires_at().is_some());
        ConnectionContext {
            connection: Connection {
                id: "00000000-0000-4000-8000-00000000c0de"
                    .parse::<ConnectionId>()
                    .unwrap(),
                platform: Platform::Teams,
                tenant,
                display_name,
            },
            credentials,
        }
    }

    /// A person authorises their own account; `login` is who actually signs in.
    async fn authorize(
        &self,
        connection: &ConnectionContext,
        account: &str,
        login: &str,
    ) -> Result<Credentials, PlatformError> {
        let flow = FlowContext {
            callback_url: CALLBACK.to_owned(),
            state: format!("authorize-{account}"),
        };
        let FlowStep::Redirect { url, state } = self
            .teams
            .begin_authorize(connection, &ExternalUserId::new(account), &flow)
            .await?
        else {
            panic!("authorising starts with a redirect")
        };
        assert!(url.contains("login_hint="), "{url}");
        let callback = self.browse(&url, login, true).await;
        match self
            .teams
            .continue_flow(Some(connection), &state, &flow, &callback)
            .await?
        {
            FlowStep::Done(FlowOutcome::Authorized {
                account: authorised,
                credentials,
            }) => {
                assert_eq!(authorised.as_str(), account);
                Ok(credentials)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn http_date(text: &str) -> Timestamp {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split([' ', ':']).collect();
    let (day, year): (i64, i64) = (parts[1].parse().unwrap(), parts[3].parse().unwrap());
    let month = MONTHS.iter().position(|m| *m == parts[2]).unwrap() as i64 + 1;
    let (h, m, s): (i64, i64, i64) = (
        parts[4].parse().unwrap(),
        parts[5].parse().unwrap(),
        parts[6].parse().unwrap(),
    );
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Timestamp::from_unix_millis(((days * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

fn person_id(index: usize) -> String {
    format!("5b000001-0000-4000-8000-{index:012x}")
}

fn team_id(index: usize) -> String {
    format!("5b000002-0000-4000-8000-{index:012x}")
}

fn acting(account: &str, credentials: &Credentials) -> Actor {
    Actor::Representation {
        account: ExternalUserId::new(account),
        credentials: credentials.clone(),
    }
}

fn text(body: &str) -> OutboundMessage {
    OutboundMessage {
        body: RichText::plain(body),
        thread: None,
        idempotency_key: None,
    }
}

fn with_token(token: &str) -> Credentials {
    let mut credentials = Credentials::default();
    credentials.insert(
        credential::ACCESS_TOKEN,
        SecretString::from(token.to_owned()),
    );
    credentials
}

/// Messages of a chat as `reader` sees them, newest first.
async fn messages(world: &World, reader: &str, chat: &ExternalChatId) -> Vec<Value> {
    let (status, page) = world
        .graph_get(reader, &format!("/chats/{}/messages", chat.as_str()))
        .await;
    assert_eq!(status, 200, "{page}");
    page["value"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_people_guests_and_messages_end_to_end() {
    let (world, organisation) = start(2_000).await;
    let teams = &world.teams;

    // Declining consent and a foreign state are refused.
    let flow = FlowContext {
        callback_url: CALLBACK.to_owned(),
        state: "s-declined".to_owned(),
    };
    let FlowStep::Redirect { url, state } = teams
        .begin_connect(&Credentials::default(), &flow)
        .await
        .unwrap()
    else {
        panic!()
    };
    let declined = world.browse(&url, SERVICE_USER, false).await;
    assert!(matches!(
        teams.continue_flow(None, &state, &flow, &declined).await,
        Err(PlatformError::Rejected(m)) if m.contains("declined")
    ));
    let forged = vec![("state".to_owned(), "another".to_owned())];
    assert!(matches!(
        teams.continue_flow(None, &state, &flow, &forged).await,
        Err(PlatformError::Rejected(_))
    ));

    let connection = world.connect().await;

    // Health: the service user and its scopes.
    let health = teams.check_health(&connection).await.unwrap();
    assert!(health.identity.contains(SERVICE_USER), "{health:?}");
    assert!(health.scopes.iter().any(|s| s == "Chat.ReadWrite"));

    // Teams, and the members of two of them across pages of 20.
    let listed = teams.list_teams(&connection).await.unwrap();
    assert_eq!(listed.len(), organisation.teams_on("teams").len());
    assert!(listed.len() > 20, "teams are paged too");
    let selected = vec![team_id(0), team_id(1)];
    assert!(selected.iter().all(|id| listed.iter().any(|t| &t.id == id)));
    let mut request = ImportRequest {
        teams: selected.clone(),
        cursor: None,
    };
    let mut imported = Vec::new();
    let mut pages = 0;
    loop {
        let page = teams.import_users(&connection, &request).await.unwrap();
        pages += 1;
        imported.extend(page.users);
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    let expected: HashSet<String> = organisation
        .people
        .iter()
        .filter(|p| matches!(p.team_on("teams"), Some(0 | 1)))
        .map(|p| person_id(p.index))
        .collect();
    let got: HashSet<String> = imported.iter().map(|u| u.id.as_str().to_owned()).collect();
    assert_eq!(got, expected);
    assert!(pages >= 6, "{pages} pages");
    let with_alias = imported
        .iter()
        .find(|u| u.emails.iter().any(|e| e.as_str().contains("@legacy.")))
        .expect("a member with a legacy alias in proxyAddresses");
    assert!(with_alias.emails.len() >= 2);
    assert!(imported.iter().all(|u| !u.is_guest && !u.is_bot));

    // Look-ups: by primary address (any case), by alias, and a stranger.
    let alias = with_alias
        .emails
        .iter()
        .find(|e| e.as_str().contains("@legacy."))
        .unwrap()
        .clone();
    let found = teams
        .lookup_by_email(&connection, &alias)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, with_alias.id);
    let found = teams
        .lookup_by_email(&connection, &with_alias.emails[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, with_alias.id);
    let nobody = Email::parse("nobody@acme.example").unwrap();
    assert_eq!(
        teams.lookup_by_email(&connection, &nobody).await.unwrap(),
        None
    );

    // People on Teams: one authorises their own account; signing in as someone else fails.
    let on_teams: Vec<_> = organisation
        .people
        .iter()
        .filter(|p| p.is_on("teams") && p.index % 97 != 2)
        .take(3)
        .collect();
    let (ada, bob, cy) = (on_teams[0], on_teams[1], on_teams[2]);
    let ada_id = person_id(ada.index);
    let ada_credentials = world
        .authorize(&connection, &ada_id, &ada.email)
        .await
        .unwrap();
    assert!(matches!(
        world.authorize(&connection, &person_id(bob.index), &cy.email).await,
        Err(PlatformError::Rejected(m)) if m.contains("not as the account")
    ));

    // A Slack-only person gets a guest; someone with an account is refused one.
    let slack_only = organisation
        .people
        .iter()
        .find(|p| p.is_on("slack") && !p.is_on("teams"))
        .unwrap();
    let refused = teams
        .provision_representation(
            &connection,
            &ProvisionRequest {
                display_name: ada.display_name.clone(),
                email: Email::parse(&ada.email).unwrap(),
                avatar_url: None,
                existing_account: Some(ExternalUserId::new(&ada_id)),
            },
        )
        .await;
    assert!(matches!(refused, Err(PlatformError::Rejected(_))));
    let Provisioning::Ready {
        account: guest,
        credentials: guest_credentials,
    } = teams
        .provision_representation(
            &connection,
            &ProvisionRequest {
                display_name: slack_only.display_name.clone(),
                email: Email::parse(&slack_only.email).unwrap(),
                avatar_url: None,
                existing_account: None,
            },
        )
        .await
        .unwrap()
    else {
        panic!("a guest is ready at once")
    };
    let ada_token = world.mint(&ada.email).await;
    let (status, guest_user) = world
        .graph_get(
            &ada_token,
            &format!("/users/{}?$select=id,userType,displayName", guest.as_str()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(guest_user["displayName"], slack_only.display_name.as_str());
    let interop_address = guest_credentials
        .get(credential::INTEROP_UPN)
        .unwrap()
        .expose_secret()
        .to_owned();
    assert!(interop_address.ends_with("@switchboard-interop.example"));
    let as_seen = teams
        .lookup_by_email(&connection, &Email::parse(&interop_address).unwrap())
        .await
        .unwrap()
        .expect("the guest is found by its interop address");
    assert_eq!(as_seen.id, guest);
    assert!(as_seen.is_guest);
    let guest_actor = acting(guest.as_str(), &guest_credentials);

    // The service user's prompt reaches Ada in a one-on-one chat.
    teams
        .send_prompt(
            &connection,
            &ExternalUserId::new(&ada_id),
            &Prompt {
                text: "Colleagues on Slack want to chat with you.".to_owned(),
                link: "https://hub.example/sync/abc?x=1&y=2".to_owned(),
            },
        )
        .await
        .unwrap();
    let (_, chats) = world.graph_get(&ada_token, "/me/chats").await;
    let prompt_chat = chats["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chatType"] == "oneOnOne")
        .expect("the prompt's chat");
    let prompt_chat = ExternalChatId::new(prompt_chat["id"].as_str().unwrap());
    let prompt = &messages(&world, &ada_token, &prompt_chat).await[0];
    assert_eq!(prompt["from"]["user"]["id"], SERVICE_USER_ID);
    assert!(
        prompt["body"]["content"]
            .as_str()
            .unwrap()
            .contains("https://hub.example/sync/abc?x=1&amp;y=2")
    );

    // The guest chats with Ada: post with a mention, edit, react, delete.
    let direct = teams
        .open_chat(&connection, &guest_actor, &[ExternalUserId::new(&ada_id)])
        .await
        .unwrap();
    let again = teams
        .open_chat(&connection, &guest_actor, &[ExternalUserId::new(&ada_id)])
        .await
        .unwrap();
    assert_eq!(direct, again, "one one-on-one chat per pair");
    let posted = teams
        .post_message(
            &connection,
            &guest_actor,
            &direct,
            &OutboundMessage {
                body: RichText {
                    blocks: vec![Block::Paragraph(vec![
                        Inline::Text("Hello ".to_owned()),
                        Inline::Mention(Mention {
                            user: ExternalUserId::new(&ada_id),
                            label: ada.display_name.clone(),
                        }),
                    ])],
                },
                thread: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    let seen = &messages(&world, &ada_token, &direct).await[0];
    assert_eq!(seen["id"], posted.id.as_str());
    assert_eq!(seen["from"]["user"]["id"], guest.as_str());
    assert_eq!(
        seen["mentions"][0]["mentioned"]["user"]["id"],
        ada_id.as_str()
    );
    teams
        .edit_message(&connection, &guest_actor, &posted, &text("Hello again"))
        .await
        .unwrap();
    teams
        .set_reaction(&connection, &guest_actor, &posted, "👍", true)
        .await
        .unwrap();
    let seen = &messages(&world, &ada_token, &direct).await[0];
    assert_eq!(seen["body"]["content"], "<p>Hello again</p>");
    assert_eq!(seen["reactions"][0]["reactionType"], "👍");
    teams
        .set_reaction(&connection, &guest_actor, &posted, "👍", false)
        .await
        .unwrap();
    teams
        .delete_message(&connection, &guest_actor, &posted)
        .await
        .unwrap();
    let seen = &messages(&world, &ada_token, &direct).await[0];
    assert!(!seen["deletedDateTime"].is_null());
    assert_eq!(seen["reactions"].as_array().map_or(0, Vec::len), 0);

    // Ada, authorised, opens a group chat with the guest and Bob, and posts, edits, deletes.
    let ada_actor = acting(&ada_id, &ada_credentials);
    let group = teams
        .open_chat(
            &connection,
            &ada_actor,
            &[guest.clone(), ExternalUserId::new(person_id(bob.index))],
        )
        .await
        .unwrap();
    assert!(group.as_str().ends_with("@thread.v2"), "{group}");
    let posted = teams
        .post_message(&connection, &ada_actor, &group, &text("Hi all"))
        .await
        .unwrap();
    teams
        .set_reaction(&connection, &guest_actor, &posted, "🎉", true)
        .await
        .unwrap();
    teams
        .edit_message(&connection, &ada_actor, &posted, &text("Hi everyone"))
        .await
        .unwrap();
    let seen = &messages(&world, &ada_token, &group).await[0];
    assert_eq!(seen["body"]["content"], "<p>Hi everyone</p>");
    assert_eq!(seen["reactions"][0]["user"]["user"]["id"], guest.as_str());
    teams
        .delete_message(&connection, &ada_actor, &posted)
        .await
        .unwrap();

    // Tokens expire and are refreshed; a dead refresh token is Unauthorized.
    world
        .sim_call(
            reqwest::Method::POST,
            "/_sim/teams/token-lifetime",
            json!({"seconds": 1}),
        )
        .await;
    let short = world
        .authorize(&connection, &person_id(cy.index), &cy.email)
        .await
        .unwrap();
    let short_guest = teams
        .refresh(&connection, &guest_credentials)
        .await
        .unwrap();
    world
        .sim_call(
            reqwest::Method::POST,
            "/_sim/teams/token-lifetime",
            json!({"seconds": 3900}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let cy_actor = acting(&person_id(cy.index), &short);
    let expired = teams
        .open_chat(&connection, &cy_actor, &[ExternalUserId::new(&ada_id)])
        .await;
    assert!(
        matches!(&expired, Err(PlatformError::Unauthorized(m)) if m.contains("InvalidAuthenticationToken")),
        "{expired:?}"
    );
    let refreshed = teams.refresh(&connection, &short).await.unwrap();
    assert_ne!(
        refreshed
            .get(credential::REFRESH_TOKEN)
            .unwrap()
            .expose_secret(),
        short
            .get(credential::REFRESH_TOKEN)
            .unwrap()
            .expose_secret(),
        "refresh tokens rotate"
    );
    let chat = teams
        .open_chat(
            &connection,
            &acting(&person_id(cy.index), &refreshed),
            &[ExternalUserId::new(&ada_id)],
        )
        .await
        .unwrap();
    teams
        .post_message(
            &connection,
            &acting(&person_id(cy.index), &refreshed),
            &chat,
            &text("back"),
        )
        .await
        .unwrap();
    assert!(short_guest.get(credential::INTEROP_PASSWORD).is_ok());
    let guest_again = teams.refresh(&connection, &short_guest).await.unwrap();
    teams
        .post_message(
            &connection,
            &acting(guest.as_str(), &guest_again),
            &direct,
            &text("still here"),
        )
        .await
        .unwrap();
    let mut revoked = refreshed.clone();
    revoked.insert(
        credential::REFRESH_TOKEN,
        SecretString::from("1.not-a-refresh-token".to_owned()),
    );
    assert!(matches!(
        teams.refresh(&connection, &revoked).await,
        Err(PlatformError::Unauthorized(m)) if m.contains("invalid_grant")
    ));

    // Removing: only hub-created guests, and then both identities are gone.
    assert!(matches!(
        teams
            .remove_representation(
                &connection,
                Some(&ExternalUserId::new(&ada_id)),
                &ada_credentials
            )
            .await,
        Err(PlatformError::Rejected(_))
    ));
    teams
        .remove_representation(&connection, Some(&guest), &guest_again)
        .await
        .unwrap();
    let (status, _) = world
        .graph_get(&ada_token, &format!("/users/{}", guest.as_str()))
        .await;
    assert_eq!(status, 404);
    let interop_upn = guest_again
        .get(credential::INTEROP_UPN)
        .unwrap()
        .expose_secret()
        .to_owned();
    assert_eq!(
        teams
            .lookup_by_email(&connection, &Email::parse(&interop_upn).unwrap())
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        teams
            .post_message(
                &connection,
                &acting(guest.as_str(), &guest_again),
                &direct,
                &text("x")
            )
            .await,
        Err(PlatformError::Unauthorized(_))
    ));
    // Removing again is harmless.
    teams
        .remove_representation(&connection, Some(&guest), &guest_again)
        .await
        .unwrap();
}

/// What the receiver saw: the query and the body of each POST.
type Delivery = (Option<String>, Bytes);

async fn receiver() -> (String, mpsc::UnboundedReceiver<Delivery>) {
    async fn receive(
        State(deliveries): State<mpsc::UnboundedSender<Delivery>>,
        RawQuery(query): RawQuery,
        body: Bytes,
    ) -> (StatusCode, String) {
        let token = query.as_deref().and_then(|q| {
            reqwest::Url::parse(&format!("http://x/?{q}"))
                .ok()?
                .query_pairs()
                .find(|(k, _)| k == "validationToken")
                .map(|(_, v)| v.into_owned())
        });
        let _ = deliveries.send((query, body));
        match token {
            Some(token) => (StatusCode::OK, token),
            None => (StatusCode::ACCEPTED, String::new()),
        }
    }
    let (sender, deliveries) = mpsc::unbounded_channel();
    let router = Router::new()
        .route("/notify", post(receive))
        .route("/lifecycle", post(receive))
        .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, deliveries)
}

/// A delivery as the hub's webhook hands it over, with the subscription the hub holds.
fn webhook(delivery: &Delivery, held_subscription: &str) -> WebhookRequest {
    WebhookRequest {
        headers: axum::http::HeaderMap::new(),
        query: delivery.0.clone(),
        body: delivery.1.to_vec(),
        held_subscriptions: vec![held_subscription.to_owned()],
    }
}

/// The next delivery that `keep` accepts.
async fn next_delivery(
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    keep: impl Fn(&Delivery) -> bool,
) -> Delivery {
    loop {
        let delivery = tokio::time::timeout(Duration::from_secs(20), deliveries.recv())
            .await
            .expect("a delivery within 20 s")
            .unwrap();
        if keep(&delivery) {
            return delivery;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_notifications_are_verified_and_read() {
    let (world, organisation) = start(40).await;
    let teams = &world.teams;
    let connection = world.connect().await;
    let (receiver_base, mut deliveries) = receiver().await;
    let now = world.now().await;
    let subscription = teams
        .subscribe(
            &connection,
            Some(&Actor::Hub),
            &format!("/users/{SERVICE_USER_ID}/chats/getAllMessages"),
            "created,updated,deleted",
            &format!("{receiver_base}/notify"),
            Some(&format!("{receiver_base}/lifecycle")),
            Timestamp::from_unix_millis(now.unix_millis() + 50 * 60_000),
        )
        .await
        .unwrap();

    // The handshake Graph made while creating the subscription.
    let handshake = next_delivery(&mut deliveries, |d| d.0.is_some()).await;
    let WebhookVerdict::Challenge(token) = teams
        .verify_webhook(&connection, &webhook(&handshake, &subscription))
        .unwrap()
    else {
        panic!("a validation request is a challenge")
    };
    assert!(!token.is_empty() && !token.contains('%'), "{token}");

    // A prompt the service user posts is notified; its content is fetched.
    let person = organisation
        .people
        .iter()
        .find(|p| p.is_on("teams") && p.index % 97 != 2)
        .unwrap();
    let link = "https://hub.example/sync/n1";
    teams
        .send_prompt(
            &connection,
            &ExternalUserId::new(person_id(person.index)),
            &Prompt {
                text: "Sync".to_owned(),
                link: link.to_owned(),
            },
        )
        .await
        .unwrap();
    let created = next_delivery(&mut deliveries, |d| {
        d.0.is_none() && String::from_utf8_lossy(&d.1).contains("\"created\"")
    })
    .await;
    let request = webhook(&created, &subscription);
    assert_eq!(
        teams.verify_webhook(&connection, &request),
        Ok(WebhookVerdict::Events)
    );
    let envelopes = teams.split_webhook(&request).unwrap();
    assert_eq!(envelopes.len(), 1);
    // Read as the relay reads it: fetched with the app's token.
    let read = teams
        .read_event(&connection, &envelopes[0])
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&read.kind, InboundKind::MessagePosted { sender, .. } if sender.as_str() == SERVICE_USER_ID)
    );
    let notices = teams.notices(&request).unwrap();
    let [
        notice @ ChangeNotice::ChatMessage {
            change: ChangeType::Created,
            message,
            ..
        },
    ] = notices.as_slice()
    else {
        panic!("{notices:?}")
    };
    let event = teams
        .fetch_change(&connection, Some(&Actor::Hub), notice)
        .await
        .unwrap()
        .unwrap();
    let InboundKind::MessagePosted {
        sender,
        body,
        chat_kind,
        ..
    } = &event.kind
    else {
        panic!("{event:?}")
    };
    assert_eq!(sender.as_str(), SERVICE_USER_ID);
    assert!(body.to_plain_text().contains(link));
    assert_eq!(*chat_kind, switchboard_platform::ChatKind::Direct);

    // A notification with another clientState is refused.
    let mut stranger = connection.clone();
    stranger.credentials.insert(
        credential::CLIENT_STATE,
        SecretString::from("somebody-else".to_owned()),
    );
    assert!(matches!(
        teams.verify_webhook(&stranger, &request),
        Err(PlatformError::BadWebhook(_))
    ));
    // Nor is one for a subscription the connection does not hold, whatever its clientState.
    assert!(matches!(
        teams.verify_webhook(&connection, &webhook(&created, "another-subscription")),
        Err(PlatformError::BadWebhook(_))
    ));

    // A soft delete is an event without fetching anything.
    let message = message.clone();
    teams
        .delete_message(&connection, &Actor::Hub, &message)
        .await
        .unwrap();
    let deleted = next_delivery(&mut deliveries, |d| {
        d.0.is_none() && String::from_utf8_lossy(&d.1).contains("\"deleted\"")
    })
    .await;
    let request = webhook(&deleted, &subscription);
    assert_eq!(
        teams.verify_webhook(&connection, &request),
        Ok(WebhookVerdict::Events)
    );
    let mut events = Vec::new();
    for envelope in teams.split_webhook(&request).unwrap() {
        events.extend(teams.read_event(&connection, &envelope).await.unwrap());
    }
    assert_eq!(
        events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        vec![InboundKind::MessageDeleted {
            message: MessageRef {
                chat: message.chat.clone(),
                id: message.id.clone()
            }
        }]
    );

    // Lifecycle notifications are verified the same way and read as such.
    world
        .sim_call(
            reqwest::Method::POST,
            "/_sim/teams/lifecycle",
            json!({"subscription_id": subscription, "event": "missed"}),
        )
        .await;
    let lifecycle = next_delivery(&mut deliveries, |d| {
        String::from_utf8_lossy(&d.1).contains("lifecycleEvent")
    })
    .await;
    let request = webhook(&lifecycle, &subscription);
    assert_eq!(
        teams.verify_webhook(&connection, &request),
        Ok(WebhookVerdict::Events)
    );
    assert!(matches!(
        teams.notices(&request).unwrap().as_slice(),
        [ChangeNotice::Lifecycle { event, subscription_id, .. }] if event == "missed" && *subscription_id == subscription
    ));
    teams
        .renew_subscription(
            &connection,
            Some(&Actor::Hub),
            &subscription,
            Timestamp::from_unix_millis(now.unix_millis() + 55 * 60_000),
        )
        .await
        .unwrap();
    teams
        .delete_subscription(&connection, Some(&Actor::Hub), &subscription)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified_retried_and_throttling_honoured() {
    let (world, organisation) = start(40).await;
    let teams = &world.teams;
    let connection = world.connect().await;
    let person = organisation
        .people
        .iter()
        .find(|p| p.is_on("teams") && p.index % 97 != 2)
        .unwrap();
    let person_id = ExternalUserId::new(person_id(person.index));

    // 401: a token Graph cannot read.
    let mut broken = connection.clone();
    broken.credentials.insert(
        credential::ACCESS_TOKEN,
        SecretString::from("not-a-token".to_owned()),
    );
    assert!(matches!(
        teams.check_health(&broken).await,
        Err(PlatformError::Unauthorized(m)) if m.contains("InvalidAuthenticationToken")
    ));

    // An application token may create a chat but never post or react in it.
    let app_token: Value = world
        .http
        .post(format!(
            "{}/login/{CUSTOMER_TENANT}/oauth2/v2.0/token",
            world.base
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", HUB_CLIENT_ID),
            ("client_secret", HUB_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app = acting(
        SERVICE_USER_ID,
        &with_token(app_token["access_token"].as_str().unwrap()),
    );
    let chat = teams
        .open_chat(&connection, &Actor::Hub, std::slice::from_ref(&person_id))
        .await
        .unwrap();
    let posted = teams
        .post_message(&connection, &Actor::Hub, &chat, &text("hi"))
        .await
        .unwrap();
    assert!(matches!(
        teams.post_message(&connection, &app, &chat, &text("as the app")).await,
        Err(PlatformError::Unauthorized(m)) if m.contains("application-only")
    ));
    assert!(matches!(
        teams.set_reaction(&connection, &app, &posted, "👍", true).await,
        Err(PlatformError::Unauthorized(m)) if m.contains("missing permission")
    ));
    assert!(matches!(
        teams
            .edit_message(
                &connection,
                &Actor::Hub,
                &MessageRef {
                    chat: chat.clone(),
                    id: "1".to_owned()
                },
                &text("x")
            )
            .await,
        Err(PlatformError::NotFound(_))
    ));

    // 503 on every attempt: retried, then Unavailable.
    world
        .sim_call(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/graph/v1.0/me", "error_rate": 1.0}]),
        )
        .await;
    let since = world.last_seq().await;
    assert!(matches!(
        teams.check_health(&connection).await,
        Err(PlatformError::Unavailable(_))
    ));
    let attempts = world.log(since, "/graph/v1.0/me").await;
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert!(attempts.iter().all(|a| a["status"] == 503));

    // 429 with a Retry-After longer than the policy allows is handed back at once.
    world
        .sim_call(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/graph/v1.0/me", "throttle_rate": 1.0, "retry_after_secs": 120}]),
        )
        .await;
    assert_eq!(
        teams.check_health(&connection).await.unwrap_err(),
        PlatformError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );

    // 429 with a short Retry-After: waited for, then the call succeeds once the throttling
    // stops (the fault is lifted as soon as the first 429 is logged).
    world
        .sim_call(
            reqwest::Method::PUT,
            "/_sim/faults",
            json!([{"route_prefix": "/graph/v1.0/me", "throttle_rate": 1.0, "retry_after_secs": 1}]),
        )
        .await;
    let since = world.last_seq().await;
    let lifter = {
        let http = world.http.clone();
        let base = world.base.clone();
        tokio::spawn(async move {
            loop {
                let entries: Vec<Value> = http
                    .get(format!("{base}/_sim/log?since={since}&kind=request"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if entries.iter().any(|e| e["status"] == 429) {
                    http.delete(format!("{base}/_sim/faults"))
                        .send()
                        .await
                        .unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let health = teams.check_health(&connection).await.unwrap();
    assert!(health.identity.contains(SERVICE_USER));
    lifter.await.unwrap();
    let statuses: Vec<u64> = world
        .log(since, "/graph/v1.0/me")
        .await
        .iter()
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert_eq!(statuses.first(), Some(&429));
    assert_eq!(statuses.last(), Some(&200));

    // Missing credentials are named.
    let empty = ConnectionContext {
        connection: connection.connection.clone(),
        credentials: Credentials::default(),
    };
    assert_eq!(
        teams.check_health(&empty).await.unwrap_err(),
        PlatformError::MissingCredential(credential::ACCESS_TOKEN)
    );
}

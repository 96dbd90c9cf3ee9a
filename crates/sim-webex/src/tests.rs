//! The simulated Webex driven over real HTTP on a loopback port, as its clients drive it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_sim_kit::{
    DemoHub, OrgSpec, Organisation, SimContext, SimPlatform, SimulatedConnect,
};
use tokio::sync::mpsc;

use crate::WebexSim;
use crate::state::{
    INTEGRATION_CLIENT_ID, INTEGRATION_CLIENT_SECRET, SERVICE_APP_CLIENT_ID,
    SERVICE_APP_CLIENT_SECRET,
};

struct Harness {
    base: String,
    sim: Arc<WebexSim>,
    http: reqwest::Client,
    organisation: Organisation,
}

async fn start(rate_limits: bool) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let context = SimContext::new(base.clone(), rate_limits);
    context.webhooks.set_time_scale(0.0);
    let sim = WebexSim::new(context);
    let organisation = Organisation::generate(&OrgSpec {
        people: 60,
        ..OrgSpec::new(vec![sim.org_platform()])
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

/// One delivery a receiver got: its headers and its raw body.
type Received = (HeaderMap, Vec<u8>);

/// A webhook receiver on a loopback port, answering 200 to everything.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (sender, deliveries) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sender = sender.clone();
            async move {
                let _ = sender.send((headers, body.to_vec()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), deliveries)
}

async fn next_delivery(
    deliveries: &mut mpsc::UnboundedReceiver<Received>,
) -> (HeaderMap, Value, Vec<u8>) {
    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
        .await
        .expect("a delivery within 5 s")
        .expect("the receiver is running");
    let value = serde_json::from_slice(&body).unwrap();
    (headers, value, body)
}

async fn no_delivery(deliveries: &mut mpsc::UnboundedReceiver<Received>) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok((_, body)) = deliveries.try_recv() {
        panic!("unexpected delivery: {}", String::from_utf8_lossy(&body));
    }
}

impl Harness {
    fn email(&self, index: usize) -> String {
        self.organisation.people[index].email.clone()
    }

    fn person_id(&self, index: usize) -> String {
        self.sim
            .lock()
            .person(&self.email(index))
            .unwrap()
            .id
            .clone()
    }

    fn token(&self, index: usize) -> String {
        self.sim.mint_token(&self.email(index)).unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/webex/v1/{path}", self.base)
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(body) = body {
            // As webexpythonsdk sends it.
            request = request
                .header("content-type", "application/json;charset=utf-8")
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

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self.send(method, &self.url(path), token, body).await;
        (status, value)
    }

    async fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, token, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {value}");
        value
    }

    /// Every item of a list, following its `Link` headers; also answers how many pages.
    async fn all_pages(&self, path: &str, token: &str) -> (Vec<Value>, usize) {
        let mut url = self.url(path);
        let mut all = Vec::new();
        let mut pages = 0;
        loop {
            let (status, headers, value) = self.send("GET", &url, token, None).await;
            assert_eq!(status, StatusCode::OK, "{url}: {value}");
            pages += 1;
            all.extend(value["items"].as_array().unwrap().iter().cloned());
            let Some(link) = headers.get("link") else {
                return (all, pages);
            };
            let link = link.to_str().unwrap();
            assert!(link.ends_with(">; rel=\"next\""), "{link}");
            url = link
                .trim_start_matches('<')
                .split(">;")
                .next()
                .unwrap()
                .to_owned();
            assert!(
                url.starts_with(&format!("{}/webex/v1/", self.base)),
                "{url}"
            );
        }
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

    /// Walks the consent page as `email` asking for `scope`; answers the redirect's query.
    async fn consent(&self, email: &str, scope: &str, decision: &str) -> Vec<(String, String)> {
        let response = self
            .form(
                "/webex/v1/authorize",
                &[
                    ("client_id", INTEGRATION_CLIENT_ID),
                    ("response_type", "code"),
                    ("redirect_uri", "https://hub.example/callback"),
                    ("scope", scope),
                    ("state", "xyz"),
                    ("email", email),
                    ("decision", decision),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let query = location
            .strip_prefix("https://hub.example/callback?")
            .unwrap();
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    async fn token_grant(&self, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self.form("/webex/v1/access_token", pairs).await;
        (response.status(), response.json().await.unwrap())
    }

    /// An integration token of `email` with `scope`, through the consent page.
    async fn integration_token(&self, email: &str, scope: &str) -> Value {
        let query = self.consent(email, scope, "accept").await;
        let code = &query.iter().find(|(k, _)| k == "code").unwrap().1;
        let (status, answer) = self
            .token_grant(&[
                ("grant_type", "authorization_code"),
                ("client_id", INTEGRATION_CLIENT_ID),
                ("client_secret", INTEGRATION_CLIENT_SECRET),
                ("code", code),
                ("redirect_uri", "https://hub.example/callback"),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    async fn group_room(&self, token: &str, title: &str, members: &[usize]) -> String {
        let room = self
            .ok("POST", "rooms", token, Some(json!({"title": title})))
            .await;
        let id = room["id"].as_str().unwrap().to_owned();
        for &member in members {
            self.ok(
                "POST",
                "memberships",
                token,
                Some(json!({"roomId": id, "personId": self.person_id(member)})),
            )
            .await;
        }
        id
    }
}

#[tokio::test]
async fn people_are_paged_with_absolute_link_headers() {
    let h = start(false).await;
    let admin = h.token(0);
    let (people, pages) = h.all_pages("people?max=7", &admin).await;
    let everyone = h.sim.users().len();
    assert_eq!(people.len(), everyone);
    assert_eq!(pages, everyone.div_ceil(7));
    let ids: BTreeSet<_> = people.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), everyone, "no person twice");

    let member = h.token(1);
    let (status, error) = h.call("GET", "people", &member, None).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "only an admin lists everyone"
    );
    assert!(error["message"].is_string() && error["trackingId"].is_string());
    assert!(error["errors"][0]["description"].is_string());

    let found = h
        .ok(
            "GET",
            &format!("people?email={}", h.email(2).to_uppercase()),
            &member,
            None,
        )
        .await;
    assert_eq!(found["items"][0]["id"], h.person_id(2));
    assert_eq!(found["items"][0]["emails"][0], h.email(2));
    let ids = format!("{},{}", h.person_id(2), h.person_id(3));
    let (listed, _) = h
        .all_pages(&format!("people?id={ids}&max=1"), &member)
        .await;
    assert_eq!(listed.len(), 2);
    let me = h.ok("GET", "people/me", &member, None).await;
    assert_eq!(me["id"], h.person_id(1));
    assert_eq!(me["type"], "person");
}

#[tokio::test]
async fn a_message_to_an_email_makes_the_direct_room_and_reuses_it() {
    let h = start(false).await;
    let (ada, bob) = (h.token(1), h.token(2));
    let first = h
        .ok(
            "POST",
            "messages",
            &ada,
            Some(json!({"toPersonEmail": h.email(2), "text": "hi", "markdown": "**hi**"})),
        )
        .await;
    assert_eq!(first["roomType"], "direct");
    assert_eq!(first["toPersonEmail"], h.email(2));
    assert_eq!(first["html"], "<strong>hi</strong>");
    let second = h
        .ok(
            "POST",
            "messages",
            &ada,
            Some(json!({"toPersonId": h.person_id(2), "markdown": "and *again*"})),
        )
        .await;
    assert_eq!(
        second["roomId"], first["roomId"],
        "the direct room is reused"
    );
    assert_eq!(second["text"], "and again");

    let rooms = h.ok("GET", "rooms?type=direct", &bob, None).await;
    assert_eq!(rooms["items"].as_array().unwrap().len(), 1);
    assert_eq!(rooms["items"][0]["id"], first["roomId"]);
    assert_eq!(
        rooms["items"][0]["title"], h.organisation.people[1].display_name,
        "a direct room is titled by the other person"
    );
    let direct = h
        .ok(
            "GET",
            &format!("messages/direct?personEmail={}", h.email(1)),
            &bob,
            None,
        )
        .await;
    let ids: Vec<_> = direct["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![second["id"].clone(), first["id"].clone()],
        "newest first"
    );

    let (status, _) = h
        .call(
            "POST",
            "messages",
            &ada,
            Some(json!({"roomId": first["roomId"], "toPersonEmail": h.email(2), "text": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "two targets");
    let (status, _) = h
        .call(
            "POST",
            "messages",
            &ada,
            Some(json!({"toPersonEmail": "nobody@acme.example", "text": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn group_rooms_and_their_memberships() {
    let h = start(false).await;
    let (ada, bob, cyd) = (h.token(1), h.token(2), h.token(3));
    let room = h
        .ok("POST", "rooms", &ada, Some(json!({"title": "Launch"})))
        .await;
    assert_eq!(room["type"], "group");
    let id = room["id"].as_str().unwrap();
    h.ok(
        "POST",
        "memberships",
        &ada,
        Some(json!({"roomId": id, "personId": h.person_id(2)})),
    )
    .await;
    let cyd_membership = h
        .ok(
            "POST",
            "memberships",
            &ada,
            Some(json!({"roomId": id, "personEmail": h.email(3)})),
        )
        .await;
    assert_eq!(cyd_membership["personEmail"], h.email(3));
    let (status, _) = h
        .call(
            "POST",
            "memberships",
            &ada,
            Some(json!({"roomId": id, "personId": h.person_id(2)})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (members, pages) = h
        .all_pages(&format!("memberships?roomId={id}&max=2"), &bob)
        .await;
    assert_eq!((members.len(), pages), (3, 2));
    let bob_only = h
        .ok(
            "GET",
            &format!("memberships?roomId={id}&personEmail={}", h.email(2)),
            &ada,
            None,
        )
        .await;
    assert_eq!(bob_only["items"].as_array().unwrap().len(), 1);
    h.ok("GET", &format!("rooms/{id}"), &cyd, None).await;

    let (status, _) = h
        .call(
            "DELETE",
            &format!("memberships/{}", cyd_membership["id"].as_str().unwrap()),
            &ada,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = h.call("GET", &format!("rooms/{id}"), &cyd, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a room one left is not found"
    );

    let dm = h
        .ok(
            "POST",
            "messages",
            &ada,
            Some(json!({"toPersonEmail": h.email(2), "text": "hi"})),
        )
        .await;
    let (status, _) = h
        .call(
            "POST",
            "memberships",
            &ada,
            Some(json!({"roomId": dm["roomId"], "personId": h.person_id(3)})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a direct room takes no one else"
    );
    let groups = h.ok("GET", "rooms?type=group", &bob, None).await;
    assert_eq!(groups["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn threads_are_one_level_deep() {
    let h = start(false).await;
    let ada = h.token(1);
    let room = h.group_room(&ada, "Threads", &[2]).await;
    let top = h
        .ok(
            "POST",
            "messages",
            &ada,
            Some(json!({"roomId": room, "text": "topic"})),
        )
        .await;
    let reply = h
        .ok(
            "POST",
            "messages",
            &h.token(2),
            Some(json!({"roomId": room, "parentId": top["id"], "text": "reply"})),
        )
        .await;
    assert_eq!(reply["parentId"], top["id"]);
    let (status, error) = h
        .call(
            "POST",
            "messages",
            &ada,
            Some(json!({"roomId": room, "parentId": reply["id"], "text": "deeper"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let replies = h
        .ok(
            "GET",
            &format!(
                "messages?roomId={room}&parentId={}",
                top["id"].as_str().unwrap()
            ),
            &ada,
            None,
        )
        .await;
    let replies = replies["items"].as_array().unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["id"], reply["id"]);
}

#[tokio::test]
async fn only_the_author_edits_and_deleting_answers_204() {
    let h = start(false).await;
    let (ada, bob) = (h.token(1), h.token(2));
    let room = h.group_room(&ada, "Edits", &[2]).await;
    let message = h
        .ok(
            "POST",
            "messages",
            &ada,
            Some(json!({"roomId": room, "text": "draft"})),
        )
        .await;
    let path = format!("messages/{}", message["id"].as_str().unwrap());
    let (status, _) = h
        .call(
            "PUT",
            &path,
            &bob,
            Some(json!({"roomId": room, "text": "mine now"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other_room = h.group_room(&ada, "Elsewhere", &[]).await;
    let (status, _) = h
        .call(
            "PUT",
            &path,
            &ada,
            Some(json!({"roomId": other_room, "text": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let edited = h
        .ok(
            "PUT",
            &path,
            &ada,
            Some(json!({"roomId": room, "markdown": "**final**"})),
        )
        .await;
    assert_eq!(edited["text"], "final");
    assert_eq!(edited["html"], "<strong>final</strong>");
    assert!(edited["updated"].is_string());
    assert_eq!(h.ok("GET", &path, &bob, None).await["text"], "final");

    let (status, _) = h.call("DELETE", &path, &bob, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = h.call("DELETE", &path, &ada, None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = h.call("GET", &path, &ada, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn messages_are_paged_newest_first_without_repeats() {
    let h = start(false).await;
    let ada = h.token(1);
    let room = h.group_room(&ada, "Paging", &[]).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let message = h
            .ok(
                "POST",
                "messages",
                &ada,
                Some(json!({"roomId": room, "text": format!("m{n}")})),
            )
            .await;
        sent.push(message["id"].clone());
    }
    let (listed, pages) = h
        .all_pages(&format!("messages?roomId={room}&max=2"), &ada)
        .await;
    sent.reverse();
    assert_eq!(
        listed.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(),
        sent
    );
    assert_eq!(pages, 3);
    let (status, _) = h.call("GET", "messages", &ada, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "roomId is required");
    let (status, _) = h
        .call("GET", &format!("messages?roomId={room}"), &h.token(2), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not a member");
}

#[tokio::test]
async fn messages_are_narrowed_by_time_by_message_and_by_mention() {
    let h = start(false).await;
    let (ada, bob) = (h.token(1), h.token(2));
    let room = h.group_room(&ada, "Narrowing", &[2]).await;
    let mut sent = Vec::new();
    for markdown in [
        "first".to_owned(),
        format!("<@personId:{}|Bob>, see this", h.person_id(2)),
        "third".to_owned(),
    ] {
        let message = h
            .ok(
                "POST",
                "messages",
                &ada,
                Some(json!({"roomId": room, "markdown": markdown})),
            )
            .await;
        sent.push(message);
        // Distinct creation times, so that `before` separates them.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ids = |messages: &[Value]| messages.iter().map(|m| m["id"].clone()).collect::<Vec<_>>();
    let third = sent[2]["id"].as_str().unwrap();

    let (older, pages) = h
        .all_pages(
            &format!("messages?roomId={room}&beforeMessage={third}&max=1"),
            &bob,
        )
        .await;
    assert_eq!(
        ids(&older),
        vec![sent[1]["id"].clone(), sent[0]["id"].clone()]
    );
    assert_eq!(pages, 2, "the next link carries on below the first page");

    let before = sent[2]["created"].as_str().unwrap();
    let (earlier, _) = h
        .all_pages(&format!("messages?roomId={room}&before={before}"), &bob)
        .await;
    assert_eq!(ids(&earlier), ids(&older));

    let (mentioning, _) = h
        .all_pages(&format!("messages?roomId={room}&mentionedPeople=me"), &bob)
        .await;
    assert_eq!(ids(&mentioning), vec![sent[1]["id"].clone()]);
    let (none, _) = h
        .all_pages(&format!("messages?roomId={room}&mentionedPeople=me"), &ada)
        .await;
    assert!(none.is_empty(), "Ada is mentioned nowhere");
}

#[tokio::test]
async fn webhooks_deliver_signed_ids_only() {
    let h = start(false).await;
    let (ada, bob) = (h.token(1), h.token(2));
    let (url, mut deliveries) = receiver().await;
    let webhook = h
        .ok("POST", "webhooks", &bob, Some(json!({"name": "hub", "targetUrl": url, "resource": "messages", "event": "all", "secret": "somesupersecretphrase"})))
        .await;
    assert_eq!(webhook["status"], "active");
    assert_eq!(webhook["createdBy"], h.person_id(2));

    let sent = h
        .ok("POST", "messages", &ada, Some(json!({"toPersonEmail": h.email(2), "markdown": format!("hello <@personEmail:{}|Bob>", h.email(2))})))
        .await;
    let (headers, body, raw) = next_delivery(&mut deliveries).await;
    let signature = headers["x-spark-signature"].to_str().unwrap();
    assert_eq!(
        signature,
        crate::hooks::signature("somesupersecretphrase", &raw)
    );
    assert_eq!(signature.len(), 40);
    assert_eq!(body["id"], webhook["id"]);
    assert_eq!(
        (body["resource"].as_str(), body["event"].as_str()),
        (Some("messages"), Some("created"))
    );
    assert_eq!(body["actorId"], h.person_id(1));
    assert_eq!(body["data"]["id"], sent["id"]);
    assert_eq!(body["data"]["roomType"], "direct");
    assert_eq!(body["data"]["personEmail"], h.email(1));
    assert_eq!(body["data"]["mentionedPeople"], json!([h.person_id(2)]));
    assert!(
        body["data"].get("text").is_none(),
        "no content in deliveries"
    );
    assert!(body.get("secret").is_none());
    let fetched = h
        .ok(
            "GET",
            &format!("messages/{}", body["data"]["id"].as_str().unwrap()),
            &bob,
            None,
        )
        .await;
    assert_eq!(fetched["text"], "hello Bob");

    let path = format!("messages/{}", sent["id"].as_str().unwrap());
    h.ok(
        "PUT",
        &path,
        &ada,
        Some(json!({"roomId": sent["roomId"], "text": "hello again"})),
    )
    .await;
    let (_, updated, _) = next_delivery(&mut deliveries).await;
    assert_eq!(updated["event"], "updated");
    let (status, _) = h.call("DELETE", &path, &ada, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, deleted, _) = next_delivery(&mut deliveries).await;
    assert_eq!(deleted["event"], "deleted");
    assert_eq!(deleted["data"]["id"], sent["id"]);

    // Cyd is in none of Ada's and Bob's rooms: their messages are not hers to hear of.
    let (cyd_target, mut cyd_deliveries) = receiver().await;
    h.ok("POST", "webhooks", &h.token(3), Some(json!({"name": "cyd", "targetUrl": cyd_target, "resource": "messages", "event": "created"}))).await;
    h.ok(
        "POST",
        "messages",
        &ada,
        Some(json!({"toPersonEmail": h.email(2), "text": "private"})),
    )
    .await;
    next_delivery(&mut deliveries).await;
    no_delivery(&mut cyd_deliveries).await;
}

#[tokio::test]
async fn webhook_filters_choose_what_is_delivered() {
    let h = start(false).await;
    let (ada, bob) = (h.token(1), h.token(2));
    let (url, mut deliveries) = receiver().await;
    h.ok("POST", "webhooks", &bob, Some(json!({"name": "groups", "targetUrl": url, "resource": "messages", "event": "created", "filter": "roomType=group&mentionedPeople=me"}))).await;
    let room = h.group_room(&ada, "Filters", &[2]).await;
    h.ok(
        "POST",
        "messages",
        &ada,
        Some(json!({"toPersonEmail": h.email(2), "text": "direct"})),
    )
    .await;
    h.ok(
        "POST",
        "messages",
        &ada,
        Some(json!({"roomId": room, "text": "no mention"})),
    )
    .await;
    let mentioned = h
        .ok("POST", "messages", &ada, Some(json!({"roomId": room, "markdown": format!("<@personId:{}|Bob> look", h.person_id(2))})))
        .await;
    let (_, body, _) = next_delivery(&mut deliveries).await;
    assert_eq!(body["data"]["id"], mentioned["id"]);
    assert_eq!(body["filter"], "roomType=group&mentionedPeople=me");
    no_delivery(&mut deliveries).await;

    let (url, mut by_room) = receiver().await;
    h.ok("POST", "webhooks", &bob, Some(json!({"name": "members", "targetUrl": url, "resource": "memberships", "event": "created", "filter": format!("roomId={room}")}))).await;
    h.group_room(&ada, "Other", &[2]).await;
    h.ok(
        "POST",
        "memberships",
        &ada,
        Some(json!({"roomId": room, "personEmail": h.email(3)})),
    )
    .await;
    let (_, joined, _) = next_delivery(&mut by_room).await;
    assert_eq!(joined["resource"], "memberships");
    assert_eq!(joined["data"]["personId"], h.person_id(3));
    assert_eq!(joined["data"]["roomId"], room);
    no_delivery(&mut by_room).await;

    let (status, _) = h
        .call("POST", "webhooks", &bob, Some(json!({"name": "bad", "targetUrl": "https://hub.example/", "resource": "messages", "event": "created", "filter": "colour=blue"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn webhooks_are_listed_updated_and_deleted_by_their_owner() {
    let h = start(false).await;
    let (ada, bob) = (h.token(1), h.token(2));
    let (url, mut deliveries) = receiver().await;
    let created = h
        .ok("POST", "webhooks", &bob, Some(json!({"name": "one", "targetUrl": url, "resource": "messages", "event": "created"})))
        .await;
    let path = format!("webhooks/{}", created["id"].as_str().unwrap());
    assert_eq!(
        h.ok("GET", "webhooks", &bob, None).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        h.ok("GET", "webhooks", &ada, None).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (status, _) = h.call("GET", &path, &ada, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let updated = h
        .ok(
            "PUT",
            &path,
            &bob,
            Some(json!({"name": "renamed", "targetUrl": url, "status": "inactive"})),
        )
        .await;
    assert_eq!(
        (updated["name"].as_str(), updated["status"].as_str()),
        (Some("renamed"), Some("inactive"))
    );
    h.ok(
        "POST",
        "messages",
        &ada,
        Some(json!({"toPersonEmail": h.email(2), "text": "quiet"})),
    )
    .await;
    no_delivery(&mut deliveries).await;

    let (status, _) = h.call("DELETE", &path, &bob, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = h.call("GET", &path, &bob, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .call(
            "POST",
            "webhooks",
            &bob,
            Some(
                json!({"name": "x", "targetUrl": url, "resource": "reactions", "event": "created"}),
            ),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "Webex has no reactions resource"
    );
}

#[tokio::test]
async fn oauth_codes_and_refresh_tokens_are_exchanged() {
    let h = start(false).await;
    let page = h
        .http
        .get(format!(
            "{}/webex/v1/authorize?client_id={INTEGRATION_CLIENT_ID}&response_type=code&redirect_uri=https%3A%2F%2Fhub.example%2Fcallback&scope=spark%3Aall&state=xyz",
            h.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("name=\"state\" value=\"xyz\""), "{page}");

    let declined = h.consent(&h.email(2), "spark:all", "decline").await;
    assert!(declined.contains(&("error".to_owned(), "access_denied".to_owned())));

    let query = h
        .consent(&h.email(2), "spark:all spark:kms", "accept")
        .await;
    assert!(query.contains(&("state".to_owned(), "xyz".to_owned())));
    let code = query.iter().find(|(k, _)| k == "code").unwrap().1.clone();
    let exchange = [
        ("grant_type", "authorization_code"),
        ("client_id", INTEGRATION_CLIENT_ID),
        ("client_secret", INTEGRATION_CLIENT_SECRET),
        ("code", code.as_str()),
        ("redirect_uri", "https://hub.example/callback"),
    ];
    let (status, answer) = h.token_grant(&exchange).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["expires_in"], 1_209_600);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "spark:all spark:kms");
    let refresh_left = answer["refresh_token_expires_in"].as_u64().unwrap();
    assert!(
        (7_775_990..=7_776_000).contains(&refresh_left),
        "{refresh_left}"
    );
    let me = h
        .ok(
            "GET",
            "people/me",
            answer["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(me["id"], h.person_id(2));
    let (status, _) = h.token_grant(&exchange).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code is used once");

    let refresh = answer["refresh_token"].as_str().unwrap();
    let mut refreshing = vec![
        ("grant_type", "refresh_token"),
        ("client_id", INTEGRATION_CLIENT_ID),
        ("client_secret", "wrong"),
        ("refresh_token", refresh),
    ];
    let (status, _) = h.token_grant(&refreshing).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    refreshing[2].1 = INTEGRATION_CLIENT_SECRET;
    let (status, refreshed) = h.token_grant(&refreshing).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["access_token"], answer["access_token"]);
    assert_eq!(refreshed["refresh_token"], answer["refresh_token"]);
    let me = h
        .ok(
            "GET",
            "people/me",
            refreshed["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(me["id"], h.person_id(2));
}

#[tokio::test]
async fn tokens_do_only_what_their_scopes_allow() {
    let h = start(false).await;
    let granted = h
        .integration_token(&h.email(2), "spark:people_read spark:messages_write")
        .await;
    let token = granted["access_token"].as_str().unwrap();
    h.ok("GET", "people/me", token, None).await;
    let (status, error) = h.call("GET", "rooms", token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    h.ok(
        "POST",
        "messages",
        token,
        Some(json!({"toPersonEmail": h.email(1), "text": "allowed"})),
    )
    .await;
    let (status, _) = h
        .call("POST", "webhooks", token, Some(json!({"name": "x", "targetUrl": "https://hub.example/", "resource": "messages", "event": "created"})))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "message webhooks need spark:messages_read"
    );
    let (status, _) = h.call("GET", "people/me", "not-a-token", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let page = h
        .form(
            "/webex/v1/authorize",
            &[
                ("client_id", INTEGRATION_CLIENT_ID),
                ("response_type", "code"),
                ("redirect_uri", "https://hub.example/"),
                ("scope", "guest-issuer:write"),
                ("email", &h.email(2)),
                ("decision", "accept"),
            ],
        )
        .await;
    assert_eq!(
        page.status(),
        StatusCode::BAD_REQUEST,
        "an integration cannot issue guests"
    );
}

#[tokio::test]
async fn the_service_app_issues_one_guest_per_subject() {
    let h = start(false).await;
    let credentials = [
        ("grant_type", "client_credentials"),
        ("client_id", SERVICE_APP_CLIENT_ID),
        ("client_secret", SERVICE_APP_CLIENT_SECRET),
    ];
    let (status, _) = h.token_grant(&credentials).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "not yet authorised by an admin"
    );
    let authorised = h
        .form(
            "/webex/admin/service-app",
            &[("email", &h.email(0)), ("decision", "authorise")],
        )
        .await;
    assert_eq!(authorised.status(), StatusCode::SEE_OTHER);
    let (status, app) = h.token_grant(&credentials).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    let app = app["access_token"].as_str().unwrap();

    let first = h
        .ok(
            "POST",
            "guests/token",
            app,
            Some(json!({"subject": "ext-1", "displayName": "Gus Guest"})),
        )
        .await;
    assert!(
        first["email"]
            .as_str()
            .unwrap()
            .ends_with("@appid.ciscospark.com")
    );
    assert_eq!(first["expiresIn"], 64_799);
    let again = h
        .ok(
            "POST",
            "guests/token",
            app,
            Some(json!({"subject": "ext-1", "displayName": "Gus Renamed"})),
        )
        .await;
    assert_eq!(
        again["id"], first["id"],
        "the same subject is the same guest"
    );
    assert_ne!(again["accessToken"], first["accessToken"]);
    h.ok(
        "POST",
        "guests/token",
        app,
        Some(json!({"subject": "ext-2", "displayName": "Other"})),
    )
    .await;
    assert_eq!(
        h.ok("GET", "guests/count", app, None).await,
        json!({"count": 2})
    );

    let guest = first["accessToken"].as_str().unwrap();
    let me = h.ok("GET", "people/me", guest, None).await;
    assert_eq!(me["id"], first["id"]);
    assert_eq!(me["displayName"], "Gus Renamed");
    assert_eq!(me["type"], "appuser");
    let sent = h
        .ok(
            "POST",
            "messages",
            guest,
            Some(json!({"toPersonEmail": h.email(1), "text": "from a guest"})),
        )
        .await;
    let reply = h
        .ok(
            "POST",
            "messages",
            &h.token(1),
            Some(json!({"toPersonId": first["id"], "text": "welcome"})),
        )
        .await;
    assert_eq!(reply["roomId"], sent["roomId"]);
    let room = h.group_room(&h.token(1), "With a guest", &[]).await;
    h.ok(
        "POST",
        "memberships",
        &h.token(1),
        Some(json!({"roomId": room, "personId": first["id"]})),
    )
    .await;
    h.ok(
        "POST",
        "messages",
        guest,
        Some(json!({"roomId": room, "text": "hello all"})),
    )
    .await;

    let (status, _) = h
        .call(
            "POST",
            "guests/token",
            &h.token(1),
            Some(json!({"subject": "ext-3", "displayName": "No"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a person's token cannot issue guests"
    );
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let h = start(true).await;
    let token = h.token(1);
    let mut throttled = None;
    for _ in 0..80 {
        let (status, headers, body) = h.send("GET", &h.url("people/me"), &token, None).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((headers, body));
            break;
        }
        assert_eq!(status, StatusCode::OK);
    }
    let (headers, body) = throttled.expect("a 429 within 80 requests");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1);
    assert!(headers.contains_key("trackingid"));
    assert!(body["message"].is_string());
    h.ok("GET", "people/me", &h.token(2), None).await;
}

#[tokio::test]
async fn the_service_user_imports_the_members_of_a_team() {
    let h = start(false).await;
    let service = h.sim.mint_token("switchboard@acme.example").unwrap();
    let (teams, _) = h.all_pages("teams?max=1", &service).await;
    let seeded = h.organisation.teams_on("webex");
    assert_eq!(teams.len(), seeded.len());
    assert!(seeded.len() >= 2);
    let team = teams
        .iter()
        .find(|t| t["name"] == seeded[1].name.as_str())
        .unwrap();
    let (members, _) = h
        .all_pages(
            &format!(
                "team/memberships?teamId={}&max=10",
                team["id"].as_str().unwrap()
            ),
            &service,
        )
        .await;
    let imported: BTreeSet<String> = members
        .iter()
        .map(|m| m["personEmail"].as_str().unwrap().to_owned())
        .filter(|email| email != "switchboard@acme.example")
        .collect();
    let expected: BTreeSet<String> = h
        .organisation
        .people_on("webex")
        .filter(|p| p.team_on("webex") == Some(1))
        .map(|p| p.email.clone())
        .collect();
    assert_eq!(imported, expected);

    let (outsider_teams, _) = h.all_pages("teams", &h.token(1)).await;
    assert_eq!(outsider_teams.len(), 1, "a person sees only their own team");
    let (status, _) = h
        .call(
            "GET",
            &format!("team/memberships?teamId={}", team["id"].as_str().unwrap()),
            &h.token(1),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "person 1 is in the first team, not the second"
    );
}

#[tokio::test]
async fn state_survives_save_and_restore() {
    let h = start(false).await;
    let token = h.token(1);
    h.ok(
        "POST",
        "messages",
        &token,
        Some(json!({"toPersonEmail": h.email(2), "text": "kept"})),
    )
    .await;
    let saved = h.sim.save();
    let restored = WebexSim::new(SimContext::new("http://127.0.0.1:9", false));
    restored.restore(saved).unwrap();
    let state = restored.lock();
    let person = state
        .person(&h.email(2))
        .expect("people are found by e-mail after a restore");
    let room = state.direct_room(&h.person_id(1), &person.id).unwrap();
    assert_eq!(room.messages[0].text, "kept");
    assert!(state.access_tokens.contains_key(&token));
}

#[tokio::test]
async fn the_web_view_posts_and_renders_markdown() {
    let h = start(false).await;
    let (url, mut deliveries) = receiver().await;
    h.ok(
        "POST",
        "webhooks",
        &h.token(2),
        Some(json!({"name": "hub", "targetUrl": url, "resource": "messages", "event": "created"})),
    )
    .await;
    let signed_in = h.form("/webex/signin", &[("email", &h.email(1))]).await;
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let started = h
        .http
        .post(format!("{}/webex/new", h.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("with={}", h.email(2)))
        .send()
        .await
        .unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let room = location.split("id=").nth(1).unwrap().to_owned();
    h.http
        .post(format!("{}/webex/room/send", h.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("id={room}&markdown=**bold**+%3Cscript%3E"))
        .send()
        .await
        .unwrap();
    let (_, delivered, _) = next_delivery(&mut deliveries).await;
    assert_eq!(delivered["data"]["roomId"], room.as_str());
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
    assert!(
        page.contains("<strong>bold</strong> &lt;script&gt;"),
        "{page}"
    );
    let live: Value = h
        .http
        .get(format!("{}/webex/room/live?id={room}", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_demo_authorises_the_service_app_and_consents_as_the_service_user() {
    let h = start(false).await;
    let hub = DemoHub {
        public_url: "https://hub.example".to_owned(),
        callback_url: "https://hub.example/callback".to_owned(),
        webhook_url: "https://hub.example/webhooks/webex".to_owned(),
        app_scopes: Vec::new(),
        paced: false,
    };
    let demo = crate::WebexDemo;
    let table = demo.hub_table(&h.base, &hub, None).unwrap();
    // Exactly the keys the hub's Webex module reads from [platforms.webex] (its settings refuse
    // any other): OAuth goes to {base_url}authorize and {base_url}access_token.
    let keys: BTreeSet<&str> = table
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "base_url",
            "client_id",
            "client_secret",
            "service_app_client_id",
            "service_app_client_secret",
        ])
    );
    assert_eq!(table["base_url"], format!("{}/webex/v1/", h.base));
    assert_eq!(table["client_id"], INTEGRATION_CLIENT_ID);
    assert!(
        crate::demo::service_app_refresh_token(&h.base)
            .await
            .is_err(),
        "no tokens before an admin authorises the Service App"
    );
    // prepare() reads /_sim/users, which the simulator serves; its Control Hub step runs here.
    crate::demo::authorise_service_app(&h.base, &h.email(0))
        .await
        .unwrap();
    let refresh_token = crate::demo::service_app_refresh_token(&h.base)
        .await
        .unwrap();
    // The refresh token the admin pastes is redeemed with the Service App's client.
    let (status, app) = h
        .token_grant(&[
            ("grant_type", "refresh_token"),
            (
                "client_id",
                table["service_app_client_id"].as_str().unwrap(),
            ),
            (
                "client_secret",
                table["service_app_client_secret"].as_str().unwrap(),
            ),
            ("refresh_token", &refresh_token),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert!(
        crate::demo::authorise_service_app(&h.base, &h.email(1))
            .await
            .is_err(),
        "not an admin"
    );

    let consent = demo
        .consent(Some(&json!({
            "service_user": "switchboard@acme.example",
            "service_app_refresh_token": refresh_token,
        })))
        .unwrap();
    // The module's one connect field.
    assert_eq!(
        consent.inputs,
        vec![(
            "service_app_refresh_token".to_owned(),
            refresh_token.clone()
        )]
    );
    assert_eq!(
        consent.identity,
        ("email".to_owned(), "switchboard@acme.example".to_owned())
    );
    let granted = h.integration_token(&consent.identity.1, "spark:all").await;
    let (teams, _) = h
        .all_pages("teams", granted["access_token"].as_str().unwrap())
        .await;
    assert_eq!(teams.len(), h.organisation.teams_on("webex").len());
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_signed_body() {
    let h = start(false).await;
    let (sender, mut deliveries) = mpsc::unbounded_channel::<Received>();
    let answered = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (sender, answered) = (sender.clone(), answered.clone());
            async move {
                let _ = sender.send((headers, body.to_vec()));
                // The first attempt fails, as a receiver that is restarting would.
                if answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    h.ok(
        "POST",
        "webhooks",
        &h.token(2),
        Some(json!({"name": "hub", "targetUrl": url, "resource": "messages", "event": "created", "secret": "s3cr3t"})),
    )
    .await;
    h.ok(
        "POST",
        "messages",
        &h.token(1),
        Some(json!({"toPersonEmail": h.email(2), "text": "twice"})),
    )
    .await;
    let (first_headers, first, first_raw) = next_delivery(&mut deliveries).await;
    let (retry_headers, retry, retry_raw) = next_delivery(&mut deliveries).await;
    assert_eq!(first, retry);
    assert_eq!(first_raw, retry_raw);
    for (headers, raw) in [(first_headers, first_raw), (retry_headers, retry_raw)] {
        assert_eq!(
            headers["x-spark-signature"].to_str().unwrap(),
            crate::hooks::signature("s3cr3t", &raw)
        );
    }
    no_delivery(&mut deliveries).await;
}

#[tokio::test]
async fn a_deactivated_person_can_neither_call_nor_be_messaged() {
    let h = start(false).await;
    let token = h.token(3);
    h.ok("GET", "people/me", &token, None).await;
    h.sim
        .control("deactivate", json!({"email": h.email(3)}))
        .unwrap();
    let (status, _) = h.call("GET", "people/me", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(h.sim.mint_token(&h.email(3)).is_err());
    let (status, _) = h
        .call(
            "POST",
            "messages",
            &h.token(1),
            Some(json!({"toPersonEmail": h.email(3), "text": "anyone there?"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let user = h
        .sim
        .users()
        .into_iter()
        .find(|u| u.email.as_deref() == Some(h.email(3).as_str()))
        .unwrap();
    assert_eq!(user.kind, "deactivated");
}

#[tokio::test]
async fn a_person_added_by_the_admin_is_found_and_listed_in_their_teams() {
    let h = start(false).await;
    let service_user = h.sim.mint_token("switchboard@acme.example").unwrap();
    let (teams, _) = h.all_pages("teams", &service_user).await;
    let team = teams[0]["id"].as_str().unwrap().to_owned();
    let added = h
        .sim
        .control(
            "add_person",
            json!({"email": "nia.new@acme.example", "name": "Nia New", "teams": [team]}),
        )
        .unwrap();
    let id = added["id"].as_str().unwrap();
    let (found, _) = h
        .all_pages("people?email=nia.new%40acme.example", &service_user)
        .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], id);
    assert_eq!(found[0]["displayName"], "Nia New");
    let (members, _) = h
        .all_pages(&format!("team/memberships?teamId={team}"), &service_user)
        .await;
    assert!(members.iter().any(|m| m["personId"] == id));
    assert!(
        h.sim
            .control(
                "add_person",
                json!({"email": "NIA.NEW@acme.example", "name": "Again"})
            )
            .is_err(),
        "an address has one account"
    );
    assert!(
        h.sim
            .control(
                "add_person",
                json!({"email": "otto@acme.example", "name": "Otto", "teams": ["no-such-team"]})
            )
            .is_err()
    );
}

#[tokio::test]
async fn revoking_the_integration_ends_its_tokens_for_that_person_only() {
    let h = start(false).await;
    let granted = h.integration_token(&h.email(2), "spark:all").await;
    let other = h.integration_token(&h.email(4), "spark:all").await;
    let own_app = h.token(2);
    h.sim
        .control("revoke_integration", json!({"email": h.email(2)}))
        .unwrap();
    let (status, _) = h
        .call(
            "GET",
            "people/me",
            granted["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h
        .token_grant(&[
            ("grant_type", "refresh_token"),
            ("client_id", INTEGRATION_CLIENT_ID),
            ("client_secret", INTEGRATION_CLIENT_SECRET),
            ("refresh_token", granted["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Another person's grant, and the person's own Webex app, are untouched.
    h.ok(
        "GET",
        "people/me",
        other["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    h.ok("GET", "people/me", &own_app, None).await;
}

//! The relay's fault test: 2,100 messages over 100 conversations (both directions) while
//! the simulator makes both platforms misbehave — 5% of API calls failing with 5xx, bursts of
//! 429 with `Retry-After`, 300 ms added to every call, webhook deliveries dropped (and retried
//! on the platform's schedule) — and one Teams chat held at 429 for a minute meanwhile.
//!
//! Every message must arrive exactly once, the held chat's in order once the hold ends, and
//! the held chat must not slow the others: the latency of their copies (the writer's post
//! returning → the copy visible to the reader, polled) is measured before and during the hold.
//!
//! The order of the other conversations is reported, not asserted: a webhook the platform
//! redelivers after the next message was written (Slack retries after 1 and 5 minutes, here
//! compressed to 3 and 15 s) reaches the hub after it, and its copy lands after the newer one.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::world::{TOKEN, World};
use common::{RunningDemo, RunningSim, free_port};
use rand::Rng;
use serde_json::{Value, json};

const SLACK_PEOPLE: usize = 20;
const TEAMS_PEOPLE: usize = 10;
const CONVERSATIONS: usize = 100;
const MESSAGES_PER_CONVERSATION: usize = 21;
/// How often each writer types: people chatting, not a benchmark (25 messages a second in all,
/// which a debug build keeps up with on a shared 2-core machine, with 300 ms a call).
const PACE: Duration = Duration::from_secs(4);
/// When the held chat is throttled, after the writers start, and for how long.
const HOLD_AFTER: Duration = Duration::from_secs(15);
const HOLD: Duration = Duration::from_secs(60);
/// The `Retry-After` the held chat answers with: short, so the hub keeps asking all minute.
const HOLD_RETRY_AFTER_SECS: u64 = 1;
/// Bursts of throttling on both platforms: this often, this long.
const BURST_EVERY: Duration = Duration::from_secs(10);
const BURST: Duration = Duration::from_secs(2);
/// How long the copies may take to arrive once the writers are done.
const SETTLE: Duration = Duration::from_secs(60);

/// One conversation of the test: who writes where, where the copies are read, and when each
/// message was sent and seen.
struct Conversation {
    index: usize,
    /// Written on Slack (read on Teams) or the other way round.
    from_slack: bool,
    writer_token: String,
    writer_chat: String,
    reader_token: String,
    /// The chat the copies arrive in, and whose account they come from there.
    reader_chat: String,
    copies_from: String,
    sent: Mutex<Vec<Option<Instant>>>,
    seen: Mutex<Vec<Option<Instant>>>,
}

impl Conversation {
    fn text(&self, n: usize) -> String {
        format!("c{} m{n:02}", self.index)
    }

    fn direction(&self) -> &'static str {
        if self.from_slack {
            "Slack → Teams"
        } else {
            "Teams → Slack"
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_arrive_once_through_platform_faults_and_a_held_chat_slows_no_other() {
    // Slack and Teams only, and enough people for 20 on Slack alone: a fifth of the
    // organisation.
    let sim = RunningSim::start_serving(120, false, "slack,teams");
    let data = tempfile::tempdir().unwrap();
    let hub = RunningDemo::start_on(&sim, data.path(), free_port(), TOKEN);
    let world = World::of(&hub);
    // Dropped deliveries come again within seconds (Slack: at once, after 3 s and 15 s; Graph:
    // after 0.5 s, 1.5 s, 3 s…).
    world
        .sim(
            reqwest::Method::PUT,
            "/_sim/settings",
            json!({"webhook_time_scale": 0.05}),
        )
        .await;
    let on_slack = world.synced_people("slack", "teams", SLACK_PEOPLE).await;
    let on_teams = world.synced_people("teams", "slack", TEAMS_PEOPLE).await;
    let platforms = Platforms {
        sim: sim.url(),
        http: common::client(),
    };

    let mut conversations = Vec::new();
    'pairs: for (i, slack_person) in on_slack.iter().enumerate() {
        let slack_token = world.token("slack", &slack_person.email).await;
        for (j, teams_person) in on_teams.iter().enumerate() {
            if conversations.len() == CONVERSATIONS {
                break 'pairs;
            }
            let teams_token = world.token("teams", &teams_person.email).await;
            // Both chats exist before anyone writes: a Slack DM with the Teams person's bot, and
            // the Teams one-on-one with the Slack person's guest, which the hub reuses (Graph
            // keeps one one-on-one chat per pair).
            let dm = world
                .slack_dm(&slack_token, &teams_person.representation)
                .await;
            let chat = world
                .teams_chat_with_guest(&teams_token, &slack_person.representation)
                .await;
            let from_slack = (i + j) % 2 == 0;
            let (writer, reader) = if from_slack {
                ((slack_token.clone(), dm), (teams_token, chat))
            } else {
                ((teams_token, chat), (slack_token.clone(), dm))
            };
            conversations.push(Arc::new(Conversation {
                index: conversations.len(),
                from_slack,
                writer_token: writer.0,
                writer_chat: writer.1,
                reader_token: reader.0,
                reader_chat: reader.1,
                copies_from: if from_slack {
                    slack_person.representation.clone()
                } else {
                    teams_person.representation.clone()
                },
                sent: Mutex::new(vec![None; MESSAGES_PER_CONVERSATION]),
                seen: Mutex::new(vec![None; MESSAGES_PER_CONVERSATION]),
            }));
        }
    }
    assert_eq!(conversations.len(), CONVERSATIONS);
    // The held chat: the Teams chat the hub posts a Slack writer's copies to.
    let held = conversations.iter().find(|c| c.from_slack).unwrap().clone();

    let platforms = Arc::new(platforms);
    // Each conversation's first message goes before the clock starts, with the platforms
    // already 300 ms slow: the hub reads a chat it has not seen yet (its members, what it held
    // before) on the way, which is measured apart; what is measured after is the flow of chats
    // the hub knows.
    platforms
        .set_faults(&[
            json!({"route_prefix": "/slack/api/", "latency_ms": 300}),
            json!({"route_prefix": "/graph/v1.0/", "latency_ms": 300}),
        ])
        .await;
    let warm_up_started = Instant::now();
    let warm_up_deadline = warm_up_started + SETTLE * 3;
    let first_messages: Vec<_> = conversations
        .iter()
        .cloned()
        .map(|conversation| {
            let platforms = platforms.clone();
            tokio::spawn(async move {
                platforms.write(&conversation, &conversation.text(0)).await;
                conversation.sent.lock().unwrap()[0] = Some(Instant::now());
                platforms.watch(&conversation, 1, warm_up_deadline).await;
            })
        })
        .collect();
    for first in first_messages {
        first.await.unwrap();
    }
    println!(
        "fault test: the first message of {CONVERSATIONS} conversations new to the hub arrived in {:.1} s",
        warm_up_started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let hold_from = started + HOLD_AFTER;
    let hold_until = hold_from + HOLD;
    let faults = {
        let (platforms, held_chat) = (platforms.clone(), held.reader_chat.clone());
        tokio::spawn(async move {
            inject_faults(&platforms, started, hold_from, hold_until, &held_chat).await;
        })
    };
    let writers: Vec<_> = conversations
        .iter()
        .cloned()
        .map(|conversation| {
            let platforms = platforms.clone();
            let offset = PACE.mul_f64(rand::rng().random_range(0.0..1.0));
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut pace = tokio::time::interval(PACE);
                for n in 1..MESSAGES_PER_CONVERSATION {
                    pace.tick().await;
                    platforms.write(&conversation, &conversation.text(n)).await;
                    conversation.sent.lock().unwrap()[n] = Some(Instant::now());
                }
            })
        })
        .collect();
    let deadline = started + PACE * MESSAGES_PER_CONVERSATION as u32 + HOLD + SETTLE;
    let readers: Vec<_> = conversations
        .iter()
        .cloned()
        .map(|conversation| {
            let platforms = platforms.clone();
            tokio::spawn(async move {
                platforms
                    .watch(&conversation, MESSAGES_PER_CONVERSATION, deadline)
                    .await
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    for reader in readers {
        reader.await.unwrap();
    }
    faults.await.unwrap();
    // Nothing more arrives later: no late duplicate.
    tokio::time::sleep(Duration::from_secs(3)).await;
    platforms.clear_faults().await;

    let mut lost = Vec::new();
    let mut duplicated = Vec::new();
    let mut out_of_order = Vec::new();
    for conversation in &conversations {
        let copies = platforms.copies(conversation).await;
        let expected: Vec<String> = (0..MESSAGES_PER_CONVERSATION)
            .map(|n| conversation.text(n))
            .collect();
        let missing: Vec<&String> = expected.iter().filter(|t| !copies.contains(t)).collect();
        let mut repeated: Vec<&String> = expected
            .iter()
            .filter(|t| copies.iter().filter(|c| c == t).count() > 1)
            .collect();
        repeated.extend(copies.iter().filter(|c| !expected.contains(c)));
        let label = format!(
            "conversation {} ({})",
            conversation.index,
            conversation.direction()
        );
        if !missing.is_empty() {
            lost.push(format!("{label}: {missing:?} missing from {copies:?}"));
        }
        if !repeated.is_empty() {
            duplicated.push(format!(
                "{label}: {repeated:?} more than once in {copies:?}"
            ));
        }
        if missing.is_empty() && repeated.is_empty() && copies != expected {
            out_of_order.push(format!("{label}: {copies:?}"));
        }
    }
    // The other conversations' latency before the hold and during it.
    let mut before = Vec::new();
    let mut during = Vec::new();
    for conversation in conversations.iter().filter(|c| c.index != held.index) {
        let sent = conversation.sent.lock().unwrap();
        let seen = conversation.seen.lock().unwrap();
        for (sent, seen) in sent.iter().zip(seen.iter()).skip(1) {
            let (Some(sent), Some(seen)) = (sent, seen) else {
                continue;
            };
            let latency = seen.saturating_duration_since(*sent);
            if *sent < hold_from {
                before.push(latency);
            } else if *sent < hold_until {
                during.push(latency);
            }
        }
    }
    let (before, during) = (Figures::of(before), Figures::of(during));
    println!("fault test: other conversations' latency before the hold: {before}");
    println!("fault test: other conversations' latency during the hold: {during}");
    let total = CONVERSATIONS * MESSAGES_PER_CONVERSATION;
    println!(
        "fault test: {total} messages over {CONVERSATIONS} conversations; {} with a copy lost, \
         {} with one duplicated, {} out of order",
        lost.len(),
        duplicated.len(),
        out_of_order.len()
    );
    for line in &out_of_order {
        println!("  out of order: {line}");
    }
    if !lost.is_empty() {
        let relay = world.api(reqwest::Method::GET, "/relay", None).await;
        let dead = world
            .api(reqwest::Method::GET, "/relay/dead-letters", None)
            .await;
        println!("fault test: the hub's relay: {relay}; dead letters: {dead}");
    }
    assert!(lost.is_empty(), "copies lost:\n{}", lost.join("\n"));
    assert!(
        duplicated.is_empty(),
        "copies duplicated:\n{}",
        duplicated.join("\n")
    );

    // The held chat got everything, once and in order, and nothing written during the hold
    // arrived before it ended.
    let held_copies = platforms.copies(&held).await;
    let held_expected: Vec<String> = (0..MESSAGES_PER_CONVERSATION)
        .map(|n| held.text(n))
        .collect();
    assert_eq!(held_copies, held_expected, "the held chat");
    {
        let sent = held.sent.lock().unwrap();
        let seen = held.seen.lock().unwrap();
        for n in 0..MESSAGES_PER_CONVERSATION {
            let (Some(sent), Some(seen)) = (sent[n], seen[n]) else {
                panic!("held chat: message {n} was never seen");
            };
            if sent >= hold_from && sent < hold_until {
                assert!(
                    seen >= hold_until,
                    "held chat: message {n} arrived during the hold"
                );
            }
        }
    }

    let bound = before.p95 * 2 + Duration::from_secs(1);
    assert!(
        during.p95 <= bound,
        "the held chat slowed the others: p95 {:?} during the hold, {:?} before (bound {bound:?})",
        during.p95,
        before.p95
    );
    drop(hub);
}

/// The faults in force at `at`: the held chat throttled first (the first matching rule
/// applies), then a burst of throttling if one is on, then the steady failures and latency.
fn rules(at: Instant, started: Instant, hold: (Instant, Instant), held_chat: &str) -> Vec<Value> {
    let steady = |prefix: &str, throttle_rate: f64| {
        json!({
            "route_prefix": prefix,
            "error_rate": 0.05,
            "throttle_rate": throttle_rate,
            "retry_after_secs": 2,
            "latency_ms": 300,
        })
    };
    let mut rules = Vec::new();
    if at >= hold.0 && at < hold.1 {
        rules.push(json!({
            "route_prefix": format!("/graph/v1.0/chats/{held_chat}"),
            "error_rate": 1.0,
            "error_status": 429,
            "retry_after_secs": HOLD_RETRY_AFTER_SECS,
            "latency_ms": 300,
            "duration_secs": (hold.1 - at).as_secs_f64(),
        }));
    }
    let in_cycle = at.duration_since(started).as_secs_f64() % BURST_EVERY.as_secs_f64();
    let throttle_rate = if in_cycle < BURST.as_secs_f64() {
        0.5
    } else {
        0.0
    };
    rules.push(steady("/slack/api/", throttle_rate));
    rules.push(steady("/graph/v1.0/", throttle_rate));
    rules.push(json!({"webhooks_of": "slack", "drop_rate": 0.05}));
    rules.push(json!({"webhooks_of": "teams", "drop_rate": 0.05}));
    rules
}

/// Keeps the fault rules in step with the test's timeline until the hold is over and the
/// writers are done.
async fn inject_faults(
    platforms: &Platforms,
    started: Instant,
    hold_from: Instant,
    hold_until: Instant,
    held_chat: &str,
) {
    let writing_ends = started + PACE * (MESSAGES_PER_CONVERSATION as u32 + 1);
    let mut in_force = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while Instant::now() < writing_ends.max(hold_until) {
        tick.tick().await;
        let now = Instant::now();
        let wanted = rules(now, started, (hold_from, hold_until), held_chat);
        // The hold's remaining duration changes every tick; only a change of which rules are in
        // force is put, so that the simulator's own clock lapses the hold.
        let shape = |rules: &[Value]| -> Vec<Value> {
            rules
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.as_object_mut().unwrap().remove("duration_secs");
                    r
                })
                .collect()
        };
        if shape(&wanted) != shape(&in_force) {
            platforms.set_faults(&wanted).await;
            in_force = wanted;
        }
    }
}

/// Latency figures of a set of messages.
struct Figures {
    count: usize,
    p50: Duration,
    p95: Duration,
    max: Duration,
}

impl Figures {
    fn of(mut latencies: Vec<Duration>) -> Self {
        assert!(!latencies.is_empty(), "no message to measure");
        latencies.sort();
        let at = |share: f64| latencies[((latencies.len() - 1) as f64 * share).round() as usize];
        Self {
            count: latencies.len(),
            p50: at(0.5),
            p95: at(0.95),
            max: at(1.0),
        }
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages, p50 {} ms, p95 {} ms, max {} ms",
            self.count,
            self.p50.as_millis(),
            self.p95.as_millis(),
            self.max.as_millis()
        )
    }
}

/// The simulated platforms as their own users reach them while faults are injected: every call
/// is retried until it gets through, as a person's client would (an injected failure never
/// reaches the platform, so retrying writes nothing twice).
struct Platforms {
    sim: String,
    http: reqwest::Client,
}

impl Platforms {
    async fn set_faults(&self, rules: &[Value]) {
        let response = self
            .http
            .put(format!("{}/_sim/faults", self.sim))
            .json(rules)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    async fn clear_faults(&self) {
        let response = self
            .http
            .delete(format!("{}/_sim/faults", self.sim))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Sends a request until the platform answers it, waiting as long as it asks.
    async fn through(
        &self,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Value {
        loop {
            let response = request(&self.http).send().await.unwrap();
            let status = response.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let asked = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(asked)).await;
                continue;
            }
            if status.is_server_error() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(status.is_success(), "{status} {body}");
            return body;
        }
    }

    async fn slack(&self, method: &str, token: &str, args: &[(&str, &str)]) -> Value {
        let url = format!("{}/slack/api/{method}", self.sim);
        let answer = self
            .through(|http| http.post(&url).bearer_auth(token).form(args))
            .await;
        assert_eq!(answer["ok"], true, "{method}: {answer}");
        answer
    }

    async fn write(&self, conversation: &Conversation, text: &str) {
        if conversation.from_slack {
            self.slack(
                "chat.postMessage",
                &conversation.writer_token,
                &[("channel", &conversation.writer_chat), ("text", text)],
            )
            .await;
        } else {
            let url = format!(
                "{}/graph/v1.0/chats/{}/messages",
                self.sim, conversation.writer_chat
            );
            let body = json!({"body": {"content": text}});
            self.through(|http| {
                http.post(&url)
                    .bearer_auth(&conversation.writer_token)
                    .json(&body)
            })
            .await;
        }
    }

    /// The texts of the copies in the reader's chat, in the order they were posted.
    async fn copies(&self, conversation: &Conversation) -> Vec<String> {
        let mut messages: Vec<(String, String, String)> = Vec::new();
        if conversation.from_slack {
            let mut next = Some(format!(
                "{}/graph/v1.0/chats/{}/messages?$top=50",
                self.sim, conversation.reader_chat
            ));
            while let Some(url) = next {
                let page = self
                    .through(|http| http.get(&url).bearer_auth(&conversation.reader_token))
                    .await;
                for message in page["value"].as_array().unwrap() {
                    if message["messageType"] == "message" {
                        messages.push((
                            message["createdDateTime"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            message["from"]["user"]["id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            text_of(message["body"]["content"].as_str().unwrap_or_default()),
                        ));
                    }
                }
                next = page["@odata.nextLink"].as_str().map(str::to_owned);
            }
            // Stable: copies posted in the same millisecond keep the order Graph listed them in.
            messages.sort_by(|a, b| a.0.cmp(&b.0));
        } else {
            let history = self
                .slack(
                    "conversations.history",
                    &conversation.reader_token,
                    &[("channel", &conversation.reader_chat), ("limit", "1000")],
                )
                .await;
            for message in history["messages"].as_array().unwrap().iter().rev() {
                messages.push((
                    String::new(),
                    message["user"].as_str().unwrap_or_default().to_owned(),
                    message["text"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        messages
            .into_iter()
            .filter(|(_, from, _)| *from == conversation.copies_from)
            .map(|(_, _, text)| without_late_note(&text).to_owned())
            .collect()
    }

    /// Reads the conversation's copies as its reader would keep looking, noting when each
    /// first appears, until the first `count` have or the deadline passes.
    async fn watch(&self, conversation: &Conversation, count: usize, deadline: Instant) {
        while Instant::now() < deadline {
            let copies = self.copies(conversation).await;
            let now = Instant::now();
            let all_seen = {
                let mut seen = conversation.seen.lock().unwrap();
                for (n, slot) in seen.iter_mut().enumerate() {
                    if slot.is_none() && copies.contains(&conversation.text(n)) {
                        *slot = Some(now);
                    }
                }
                seen[..count].iter().all(Option::is_some)
            };
            if all_seen {
                return;
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
}

/// The text of a Teams message's HTML body: the hub posts `<p>c1 m01</p>`.
/// A copy's text without the note a late copy carries under it (a platform's retry brought
/// its event after newer messages had gone out; out of place, it says so).
fn without_late_note(text: &str) -> &str {
    let end = text.find(['\n', '(']).unwrap_or(text.len());
    text[..end].trim_end_matches('_').trim()
}

fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

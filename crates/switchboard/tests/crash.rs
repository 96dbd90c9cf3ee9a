//! The relay's crash test: 5,000 messages over 200 conversations across every ordered pair of
//! the connected platforms, typed through the simulated platforms' APIs while the hub is killed
//! with SIGKILL at random moments and started again on the same data. Every message must arrive
//! exactly once, and in order per conversation — or, where a platform's retry brought its event
//! after newer messages had gone out, marked as late.
//!
//! How a post that succeeded just before a kill is recognised rather than repeated: the hub
//! marks each copy it takes to send; after a restart (or a timeout) it looks for that copy in
//! the destination chat before posting (`ChatPlatform::find_posted`: by the idempotency key a
//! platform stores, else by author, time and content) and records what it finds.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::traffic::PairConversation;
use common::world::{TOKEN, World};
use common::{RunningDemo, RunningSim, free_port};
use rand::Rng;
use serde_json::json;
use tokio::sync::Mutex;

const CONVERSATIONS: usize = 200;
const MESSAGES_PER_CONVERSATION: usize = 25;
const KILLS: usize = 5;
/// How often each writer types.
const PACE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_messages_arrive_once_and_in_order_while_the_hub_is_killed() {
    // Enough people for three on each pair of platforms, linked where a platform represents
    // only people with an account there, and six on each platform alone.
    let sim = RunningSim::start(130, false);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let hub = RunningDemo::start_on(&sim, data.path(), port, TOKEN);
    let world = World::of(&hub);
    // Deliveries missed while the hub is down come again within seconds (Slack: at once, after
    // 3 s and 15 s; Graph: after 0.5 s, 1.5 s, 3 s…).
    world
        .sim(
            reqwest::Method::PUT,
            "/_sim/settings",
            json!({"webhook_time_scale": 0.05}),
        )
        .await;

    // Each unordered pair of platforms carries its share of the conversations, half written on
    // each side.
    let conversations: Vec<Arc<PairConversation>> = world
        .conversations_over_pairs(CONVERSATIONS)
        .await
        .into_iter()
        .map(Arc::new)
        .collect();
    // A pair's share rounds down to a product of its two sides: 200 exactly for one pair.
    let total = conversations.len();
    assert!(
        (CONVERSATIONS * 9 / 10..=CONVERSATIONS).contains(&total),
        "{total} conversations"
    );

    // Writers type their messages one after the other in each conversation, about one a second
    // as people chat (200 conversations at once: 200 messages a second); meanwhile the hub is
    // killed at random moments and started again.
    let world = Arc::new(world);
    let sent = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = conversations
        .iter()
        .cloned()
        .map(|conversation| {
            let (world, sent) = (world.clone(), sent.clone());
            let offset = PACE.mul_f64(rand::rng().random_range(0.0..1.0));
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut pace = tokio::time::interval(PACE);
                for n in 0..MESSAGES_PER_CONVERSATION {
                    pace.tick().await;
                    let text = format!("c{} m{n:02}", conversation.index);
                    write(&world, &conversation, &text).await;
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let hub = Arc::new(Mutex::new(Some(hub)));
    let writing = Arc::new(AtomicBool::new(true));
    let killer = {
        let (hub, sim_url, data_dir, writing, sent) = (
            hub.clone(),
            sim.url(),
            data.path().to_owned(),
            writing.clone(),
            sent.clone(),
        );
        tokio::spawn(async move {
            let mut kills = 0;
            let total = total * MESSAGES_PER_CONVERSATION;
            while kills < KILLS || writing.load(Ordering::SeqCst) {
                let wait = rand::rng().random_range(500..2500);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                if sent.load(Ordering::SeqCst) >= total && kills >= KILLS {
                    break;
                }
                let mut running = hub.lock().await;
                if let Some(process) = running.take() {
                    process.kill();
                }
                kills += 1;
                let (sim_url, data_dir) = (sim_url.clone(), data_dir.clone());
                let restarted = tokio::task::spawn_blocking(move || {
                    RunningDemo::resume(&sim_url, &data_dir, port, TOKEN)
                })
                .await
                .unwrap();
                *running = Some(restarted);
            }
            kills
        })
    };
    for writer in writers {
        writer.await.unwrap();
    }
    writing.store(false, Ordering::SeqCst);
    let kills = killer.await.unwrap();
    assert!(kills >= KILLS, "the hub was killed {kills} times");

    // Every conversation's copies: all 25, once each — nothing lost, nothing repeated — and in
    // the order written, except a copy whose event a platform retried after newer messages of
    // its chat had gone out (ARCHITECTURE.md, the relay's notes): that one says it is late, and
    // no copy in its place says so.
    let started = Instant::now();
    let (mut broken, mut misplaced, mut late) = (Vec::new(), Vec::new(), Vec::new());
    for conversation in &conversations {
        let expected: Vec<String> = (0..MESSAGES_PER_CONVERSATION)
            .map(|n| format!("c{} m{n:02}", conversation.index))
            .collect();
        loop {
            let copies = copies(&world, conversation).await;
            if copies.len() >= expected.len() || started.elapsed() > Duration::from_secs(180) {
                let line = format!(
                    "conversation {} ({}): {copies:?}",
                    conversation.index, conversation.direction
                );
                let written: Vec<String> = copies.iter().map(|copy| message_of(copy)).collect();
                let mut sorted = written.clone();
                sorted.sort_unstable();
                if sorted != expected {
                    broken.push(line);
                    break;
                }
                let mut newest: &str = "";
                for (copy, message) in copies.iter().zip(&written) {
                    let out_of_place = message.as_str() < newest;
                    let marked = copy.contains(LATE_NOTE);
                    if out_of_place != marked {
                        misplaced.push(line.clone());
                        break;
                    }
                    if marked {
                        late.push(line.clone());
                    }
                    newest = newest.max(message.as_str());
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {total} conversations lost or repeated a message:\n{}",
        broken.len(),
        broken.join("\n")
    );
    assert!(
        misplaced.is_empty(),
        "{} of {total} conversations had a copy out of place without saying so (or saying so \
         in place):\n{}",
        misplaced.len(),
        misplaced.join("\n")
    );
    println!(
        "{} copies of {} arrived late and said so{}{}",
        late.len(),
        total * MESSAGES_PER_CONVERSATION,
        if late.is_empty() { "" } else { ":\n" },
        late.join("\n")
    );
    // Nothing more arrives later: no late duplicate.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for conversation in &conversations {
        assert_eq!(
            copies(&world, conversation).await.len(),
            MESSAGES_PER_CONVERSATION,
            "conversation {}",
            conversation.index
        );
    }
    drop(hub.lock().await.take());
}

/// What a late copy says under its text.
const LATE_NOTE: &str = "it reached Switchboard late";

/// The message a copy is of (`c7 m03`), without the note a late copy carries or the markup
/// (HTML, line breaks) the platform wraps it in.
fn message_of(copy: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in copy.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push('\n');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// Types one message as a person would in their own client.
async fn write(world: &World, conversation: &PairConversation, text: &str) {
    conversation
        .writer
        .post(
            world,
            &conversation.writer_token,
            &conversation.writer_chat,
            text,
        )
        .await;
}

/// The texts of the copies in the reader's chat, in the order they were posted.
async fn copies(world: &World, conversation: &PairConversation) -> Vec<String> {
    let reader = &conversation.reader;
    let Some(chat) = reader
        .find_chat(
            world,
            &conversation.reader_token,
            &[&conversation.copies_from],
        )
        .await
    else {
        return Vec::new();
    };
    reader
        .messages(world, &conversation.reader_token, &chat)
        .await
        .into_iter()
        .filter(|message| message.from == conversation.copies_from)
        .map(|message| message.text)
        .collect()
}

//! Recognising the hub's own posts when the platform announces them back.
//!
//! Every copy the hub posts comes back as an event, like any message written in the chat
//! (Slack's `message` event, Graph's `created` notification): half of all the events the relay
//! receives. The relay's routing recognises them (the author is a representation, or the
//! message is a copy in the map), but only after storing the event, reading it back and, for
//! Graph, fetching the message. Recognised at the door instead, such an event is acknowledged
//! and dropped: nothing is stored, fetched or decided for it. Whatever the door does not
//! recognise (the announcement overtook the answer to the post, or came back after the copy
//! was forgotten here) takes the full path and is recognised there, so nothing depends on this
//! being complete.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_core::{ConnectionId, Platform};
use switchboard_platform::{ChatPlatform, EventEnvelope, MessageRef};
use switchboard_store::{AccountIdentity, StoreError};

use crate::AppState;

/// How long a posted copy is remembered: its announcement comes back within a second or two;
/// a platform's later retries of it take the full path.
const REMEMBERED_FOR: Duration = Duration::from_secs(300);
/// At most this many copies are remembered (the oldest forgotten first): about 1.5 MiB.
const REMEMBERED_AT_MOST: usize = 65_536;

/// The copies this hub posted lately.
///
/// Each is kept as a 64-bit hash of its platform, chat and message id, keyed at random when
/// the hub starts, so that memory stays small and nobody can make a message collide with a
/// copy on purpose. Two different messages share a hash with a chance of about 2⁻⁶⁴ per
/// remembered copy; with 65,536 remembered, one event in 2.8 × 10¹⁴ could be taken for a copy.
#[derive(Debug, Default)]
pub struct RecentCopies {
    hasher: std::collections::hash_map::RandomState,
    remembered: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    hashes: HashSet<u64>,
    by_age: VecDeque<(Instant, u64)>,
}

impl RecentCopies {
    fn hash(&self, platform: Platform, message: &MessageRef) -> u64 {
        self.hasher.hash_one((
            platform.as_str(),
            message.chat.as_str(),
            message.id.as_str(),
        ))
    }

    /// The hub has just posted `message` on `platform`.
    pub fn posted(&self, platform: Platform, message: &MessageRef) {
        let hash = self.hash(platform, message);
        let now = Instant::now();
        let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(&(at, oldest)) = remembered.by_age.front() {
            if remembered.by_age.len() < REMEMBERED_AT_MOST
                && now.duration_since(at) < REMEMBERED_FOR
            {
                break;
            }
            remembered.by_age.pop_front();
            remembered.hashes.remove(&oldest);
        }
        if remembered.hashes.insert(hash) {
            remembered.by_age.push_back((now, hash));
        }
    }

    /// Whether `message` on `platform` is a copy the hub posted lately.
    pub fn contains(&self, platform: Platform, message: &MessageRef) -> bool {
        let hash = self.hash(platform, message);
        self.remembered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hashes
            .contains(&hash)
    }
}

/// Where the hub recognised one of its own posts coming back, for the metric.
#[derive(Debug, Clone, Copy)]
pub enum Door {
    /// At the webhook: not stored.
    Webhook,
    /// In the inbox, before reading: stored, but not fetched nor decided.
    Inbox,
}

/// Whether `envelope` announces a message the hub itself posted: a copy it remembers, or a
/// message whose author is one of the hub's representations (whose messages the relay never
/// relays). Counted in `switchboard_relay_own_posts_recognised_total`.
pub async fn is_own_post(
    state: &AppState,
    module: &dyn ChatPlatform,
    connection: ConnectionId,
    envelope: &EventEnvelope,
    door: Door,
) -> Result<bool, StoreError> {
    let platform = module.platform();
    let Some(post) = module.announced_post(envelope) else {
        return Ok(false);
    };
    let own = state.relay.copies.contains(platform, &post.message)
        || match &post.author {
            Some(author) => matches!(
                state
                    .directory
                    .identity(&state.store, connection, platform, author.as_str())
                    .await?,
                Some(AccountIdentity::Representation(_))
            ),
            None => false,
        };
    if own {
        let door = match door {
            Door::Webhook => "webhook",
            Door::Inbox => "inbox",
        };
        metrics::counter!("switchboard_relay_own_posts_recognised_total", "platform" => platform.as_str(), "at" => door)
            .increment(1);
    }
    Ok(own)
}

#[cfg(test)]
mod tests {
    use switchboard_core::ExternalChatId;

    use super::*;

    fn message(chat: &str, id: &str) -> MessageRef {
        MessageRef {
            chat: ExternalChatId::new(chat),
            id: id.to_owned(),
        }
    }

    #[test]
    fn a_posted_copy_is_recognised_on_its_platform_only() {
        let copies = RecentCopies::default();
        copies.posted(Platform::Slack, &message("D1", "1.0"));
        assert!(copies.contains(Platform::Slack, &message("D1", "1.0")));
        assert!(!copies.contains(Platform::Teams, &message("D1", "1.0")));
        assert!(!copies.contains(Platform::Slack, &message("D1", "1.1")));
        assert!(!copies.contains(Platform::Slack, &message("D2", "1.0")));
    }

    #[test]
    fn the_oldest_copies_are_forgotten_past_the_bound() {
        let copies = RecentCopies::default();
        for n in 0..=REMEMBERED_AT_MOST {
            copies.posted(Platform::Slack, &message("D1", &n.to_string()));
        }
        assert!(!copies.contains(Platform::Slack, &message("D1", "0")));
        assert!(copies.contains(Platform::Slack, &message("D1", "1")));
        assert!(copies.contains(
            Platform::Slack,
            &message("D1", &REMEMBERED_AT_MOST.to_string())
        ));
        let remembered = copies.remembered.lock().unwrap();
        assert_eq!(remembered.hashes.len(), REMEMBERED_AT_MOST);
        assert_eq!(remembered.by_age.len(), REMEMBERED_AT_MOST);
    }
}

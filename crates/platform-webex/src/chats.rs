//! How the module names chats to the hub.
//!
//! A group room is named by its Webex room id. A direct chat is named by its two members,
//! `direct:PERSON_A:PERSON_B` with the two person ids sorted: Webex makes a 1:1 room only with
//! its first message (`POST messages` with `toPersonId`; `POST rooms` makes group rooms only),
//! so a room id cannot name a direct chat the hub opens before anyone wrote in it, and a name
//! of the room's other member alone would not say who the first one is. The name is the same
//! before and after the room exists. Webex ids are base64 without `:`, so the name splits
//! unambiguously and is never a room id.
//!
//! What Webex says of a direct room (a delivery, a message read back) names the room; it is
//! named as the hub knows it from the room's two members: the message's sender and the account
//! reading it, or, when that account wrote it, the room's other member (`GET memberships`).
//! Rooms already resolved are remembered, so the hub's own posts are recognised from the
//! delivery alone.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use switchboard_core::ExternalChatId;
use switchboard_platform::PlatformError;

use crate::WebexPlatform;
use crate::client::id;
use crate::wire::Membership;

const DIRECT_PREFIX: &str = "direct:";
/// Webex's `roomType` of a 1:1 room.
const DIRECT_ROOM: &str = "direct";
/// How many direct rooms are remembered at most; past that the memory starts again, each room
/// costing one membership read when next seen.
const REMEMBERED_ROOMS: usize = 10_000;

/// The direct chat between two people.
pub(crate) fn direct_chat(one: &str, other: &str) -> ExternalChatId {
    let (first, second) = if one <= other {
        (one, other)
    } else {
        (other, one)
    };
    ExternalChatId::new(format!("{DIRECT_PREFIX}{first}:{second}"))
}

/// A chat as the module reaches it on Webex.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Chat<'a> {
    /// A room by its id (a group room).
    Room(&'a str),
    /// The direct chat of these two people, whose room may not exist yet.
    Direct([&'a str; 2]),
}

impl<'a> Chat<'a> {
    pub fn of(chat: &'a ExternalChatId) -> Result<Self, PlatformError> {
        let Some(members) = chat.as_str().strip_prefix(DIRECT_PREFIX) else {
            return id(chat.as_str()).map(Chat::Room);
        };
        let not_direct = || PlatformError::Rejected(format!("not a Webex direct chat: {chat}"));
        let (first, second) = members.split_once(':').ok_or_else(not_direct)?;
        let (first, second) = (id(first)?, id(second)?);
        // One name per pair: the members sorted and distinct, as `direct_chat` writes them.
        if first >= second {
            return Err(not_direct());
        }
        Ok(Chat::Direct([first, second]))
    }
}

/// The member of a direct chat who is not `me`; refused when `me` is not in it.
pub(crate) fn other_member<'a>(members: [&'a str; 2], me: &str) -> Result<&'a str, PlatformError> {
    match members {
        [first, second] if first == me => Ok(second),
        [first, second] if second == me => Ok(first),
        _ => Err(PlatformError::Rejected(format!(
            "{me} is not a member of the direct chat of {} and {}",
            members[0], members[1]
        ))),
    }
}

/// The direct rooms the module has named, by room id (Webex's room ids are unique across
/// organisations).
#[derive(Default)]
pub(crate) struct DirectRooms {
    by_room: Mutex<HashMap<String, ExternalChatId>>,
}

impl DirectRooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ExternalChatId>> {
        self.by_room.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn remember(&self, room: &str, chat: &ExternalChatId) {
        let mut rooms = self.lock();
        if rooms.len() >= REMEMBERED_ROOMS {
            rooms.clear();
        }
        rooms.insert(room.to_owned(), chat.clone());
    }

    fn get(&self, room: &str) -> Option<ExternalChatId> {
        self.lock().get(room).cloned()
    }
}

/// The chat of room `room` (of `room_type`) as far as known without calling Webex: a group
/// room's own id; a direct room's name from its sender and `reader` when they differ, else
/// from memory.
pub(crate) fn known_chat(
    platform: &WebexPlatform,
    room: &str,
    room_type: Option<&str>,
    sender: Option<&str>,
    reader: &str,
) -> Option<ExternalChatId> {
    if room_type != Some(DIRECT_ROOM) {
        return Some(ExternalChatId::new(room));
    }
    match sender {
        Some(sender) if sender != reader => Some(direct_chat(sender, reader)),
        _ => platform.rooms.get(room),
    }
}

/// The chat of room `room`, read as `reader` with `token`: as [`known_chat`], else a direct
/// room's members are read, and the room remembered.
pub(crate) async fn chat_of(
    platform: &WebexPlatform,
    token: &str,
    room: &str,
    room_type: Option<&str>,
    sender: Option<&str>,
    reader: &str,
) -> Result<ExternalChatId, PlatformError> {
    if let Some(chat) = known_chat(platform, room, room_type, sender, reader) {
        return Ok(chat);
    }
    let url = platform
        .client
        .url("memberships", &[("roomId", id(room)?), ("max", "2")])?;
    let members: Vec<Membership> = platform.client.page(token, &url).await?.items;
    let other = members
        .into_iter()
        .filter_map(|membership| membership.person_id)
        .find(|person| person != reader)
        .ok_or_else(|| {
            PlatformError::Rejected(format!("direct room {room} has no member besides {reader}"))
        })?;
    let chat = direct_chat(reader, &other);
    platform.rooms.remember(room, &chat);
    Ok(chat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_chat_is_named_by_both_members_in_one_order() {
        let chat = direct_chat("P2", "P1");
        assert_eq!(chat.as_str(), "direct:P1:P2");
        assert_eq!(chat, direct_chat("P1", "P2"));
        assert_eq!(Chat::of(&chat).unwrap(), Chat::Direct(["P1", "P2"]));
        assert_eq!(
            Chat::of(&ExternalChatId::new("R1")).unwrap(),
            Chat::Room("R1")
        );
        for bad in [
            "direct:P2:P1",
            "direct:P1:P1",
            "direct:P1",
            "direct:P1:P2:P3",
            "direct:../x:P2",
            "R1/../x",
        ] {
            assert!(Chat::of(&ExternalChatId::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_other_member_is_the_one_who_is_not_me() {
        assert_eq!(other_member(["P1", "P2"], "P1").unwrap(), "P2");
        assert_eq!(other_member(["P1", "P2"], "P2").unwrap(), "P1");
        assert!(other_member(["P1", "P2"], "P3").is_err());
    }
}

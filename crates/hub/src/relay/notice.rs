//! What the hub tells someone whose message it does not relay: a restricted person writing to
//! someone on another platform, or someone writing where nobody is there to answer.

use std::time::Duration;

use switchboard_core::{ConversationId, PersonId, Platform};

use crate::AppState;

/// What a restricted person reads, from the hub, where they wrote.
pub const RESTRICTED_NOTICE: &str = "An admin has restricted cross-platform messaging for you: \
     what you write here is not delivered to colleagues on other chat platforms. Their messages \
     to you still arrive.";

/// What someone reads, from the hub, when they write in a chat the hub shares between
/// conversations (their chat with its bot) before anyone wrote to them there.
pub const NOBODY_TO_ANSWER_NOTICE: &str = "Nobody has written to you through this chat yet, so \
     there is no one to send this to. Colleagues without an account on this platform write to \
     you here; answer them here, and start with a name (\"@Ann Lee: …\") to choose which of \
     them.";

/// A person is told at most this often per conversation, however much they write.
const NOTICE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Tells a restricted sender, once a day per conversation, that their message was not
/// relayed. In the background: the route loop decides one event at a time and does not wait
/// for a platform's answer; a notice that cannot be sent is logged.
pub(super) fn restricted(
    state: &AppState,
    person: PersonId,
    platform: Platform,
    conversation: ConversationId,
) {
    let state = state.clone();
    tokio::spawn(async move {
        match state
            .store
            .claim_restriction_notice(person, conversation, NOTICE_EVERY)
            .await
        {
            Ok(true) => {
                if let Err(error) =
                    super::deliver::tell(&state, person, platform, RESTRICTED_NOTICE).await
                {
                    tracing::warn!(%person, %error, "relay: cannot tell a restricted person why their message was not relayed");
                }
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%person, %error, "relay: cannot record a restriction notice");
            }
        }
    });
}

/// Tells someone who wrote in a shared chat that nobody there can receive it; in the
/// background, as [`restricted`] does. Every time: they wrote expecting an answer, and nothing
/// else tells them it went nowhere.
pub(super) fn nobody_to_answer(state: &AppState, person: PersonId, platform: Platform) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(error) =
            super::deliver::tell(&state, person, platform, NOBODY_TO_ANSWER_NOTICE).await
        {
            tracing::warn!(%person, %error, "relay: cannot tell someone that nobody can receive what they wrote");
        }
    });
}

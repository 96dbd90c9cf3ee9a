//! What a restricted person is told when they write to someone on another platform.

use std::time::Duration;

use switchboard_core::{ConversationId, PersonId, Platform};

use crate::AppState;

/// What a restricted person reads, from the hub, where they wrote.
pub const RESTRICTED_NOTICE: &str = "An admin has restricted cross-platform messaging for you: \
     what you write here is not delivered to colleagues on other chat platforms. Their messages \
     to you still arrive.";

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

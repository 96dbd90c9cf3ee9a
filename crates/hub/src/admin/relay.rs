//! The relay as an admin acts on it: a dead letter put back in its lane.

use super::{Caller, Refused};
use crate::AppState;

/// Puts a dead letter back in its lane and wakes the relay. Audited.
pub async fn retry_dead_letter(state: &AppState, caller: &Caller, id: i64) -> Result<(), Refused> {
    state.store.retry_dead_letter(id).await?;
    state.relay.outbox_filled();
    state
        .store
        .audit(
            &caller.actor,
            "relay.retry",
            &id.to_string(),
            "dead letter put back in its lane",
            &caller.source,
        )
        .await?;
    Ok(())
}

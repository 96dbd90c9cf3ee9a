//! People: the rules of a listing's search and cursor, choosing the platform a person chats
//! from (one at a time or a team's members at once), and removing a person from the hub.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use switchboard_core::{AccountKind, ChosenBy, Person, PersonId, Platform, Primary};
use switchboard_store::{PeopleCursor, PeopleQuery, PrimaryFilter};

use super::{Caller, Refusal, Refused};
use crate::AppState;

/// A person's id as the API and the console spell it.
pub fn person_id(text: &str) -> Result<PersonId, Refused> {
    text.parse().map_err(|error: switchboard_core::InvalidId| {
        Refused::bad_input("bad_id", error.to_string())
    })
}

/// The longest search: a name or an e-mail address is far shorter.
const MAX_SEARCH_CHARS: usize = 256;

/// A search is text as people type it: control characters are refused (SQLite's `LIKE` stops
/// at a NUL, so `q=%00` matched everyone), and so are searches longer than any name.
pub fn search(text: String) -> Result<String, Refused> {
    if text.chars().any(char::is_control) {
        return Err(Refused::bad_input(
            "bad_query",
            "the search (q) may not contain control characters",
        ));
    }
    if text.chars().count() > MAX_SEARCH_CHARS {
        return Err(Refused::bad_input(
            "bad_query",
            format!("the search (q) is at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    Ok(text)
}

/// Cursors are opaque to clients; inside, the last person's id and name.
pub fn encode_cursor(cursor: &PeopleCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\n{}", cursor.id, cursor.display_name))
}

pub fn decode_cursor(text: &str) -> Result<PeopleCursor, Refused> {
    let invalid = || Refused::bad_input("bad_cursor", "the cursor is not one this hub gave out");
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (id, name) = text.split_once('\n').ok_or_else(invalid)?;
    Ok(PeopleCursor {
        id: id.parse().map_err(|_| invalid())?,
        display_name: name.to_owned(),
    })
}

/// An admin chooses the platform a person chats from; it must be one they have an active
/// account on. A representation of theirs there is reset (see [`crate::sync::move_primary`]).
/// Audited.
pub async fn choose_primary(
    state: &AppState,
    caller: &Caller,
    id: PersonId,
    chosen: Platform,
) -> Result<Person, Refused> {
    if state.store.person(id).await?.is_none() {
        return Err(Refused::not_found(format!("no person with id {id}")));
    }
    let has_account = state
        .store
        .accounts_of_person(id)
        .await?
        .iter()
        .any(|a| a.platform == chosen && a.active && a.kind == AccountKind::Human);
    if !has_account {
        return Err(Refused::new(
            Refusal::Unprocessable,
            "no_account_there",
            format!(
                "the person has no active {} account to chat from",
                chosen.display_name()
            ),
        ));
    }
    let (person, reset) = crate::sync::move_primary(
        state,
        id,
        Primary {
            platform: chosen,
            chosen_by: ChosenBy::Admin,
        },
        &caller.actor,
    )
    .await?;
    let detail = if reset {
        format!("{chosen}; the representation there was reset")
    } else {
        chosen.to_string()
    };
    state
        .store
        .audit(
            &caller.actor,
            "person.set_primary",
            &id.to_string(),
            &detail,
            &caller.source,
        )
        .await?;
    Ok(person)
}

/// How many of a team's members chat from the chosen platform now.
pub struct TeamPrimary {
    pub changed: u64,
}

/// The most people read at once while resetting a team's members.
const PAGE: u32 = 1_000;

/// Chooses the primary platform of a selected team's members in one go (see
/// [`switchboard_store::Store::set_primary_of_team_members`]). Audited.
pub async fn choose_primary_of_team(
    state: &AppState,
    caller: &Caller,
    team: &str,
    chosen: Platform,
) -> Result<TeamPrimary, Refused> {
    let mut selected = false;
    for connection in state.store.connections().await? {
        let teams = state.store.selected_teams(connection.id).await?;
        if teams.iter().any(|(id, _)| id == team) {
            selected = true;
            break;
        }
    }
    if !selected {
        return Err(Refused::not_found(format!(
            "no team with id {team} is selected for import"
        )));
    }
    let changed = state
        .store
        .set_primary_of_team_members(team, chosen)
        .await?;
    // As when one person's primary is chosen (see `crate::sync::move_primary`): a member who
    // chats from `chosen` now has what the hub holds for them there reset.
    let mut reset = 0;
    let mut query = PeopleQuery {
        primary: Some(PrimaryFilter::Is(chosen)),
        team: Some(team.to_owned()),
        limit: PAGE,
        ..Default::default()
    };
    loop {
        let page = state.store.list_people(&query).await?;
        for summary in &page.people {
            if crate::sync::reset_on(state, summary.person.id, chosen, &caller.actor).await? {
                reset += 1;
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    state
        .store
        .audit(
            &caller.actor,
            "people.set_primary_by_rule",
            team,
            &format!(
                "members of the team -> {} ({changed} changed, {reset} representations there reset)",
                chosen.as_str()
            ),
            &caller.source,
        )
        .await?;
    Ok(TeamPrimary { changed })
}

/// Breaks every sync of a person, then deletes them from the hub. Audited.
pub async fn remove_person(state: &AppState, caller: &Caller, id: PersonId) -> Result<(), Refused> {
    crate::sync::remove(state, id, &caller.actor).await?;
    state
        .store
        .audit(
            &caller.actor,
            "person.remove",
            &id.to_string(),
            "reset and deleted",
            &caller.source,
        )
        .await?;
    Ok(())
}

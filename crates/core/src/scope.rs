//! Directory Sync's scope: the hub's people are the members of the groups the admin chose. A
//! person in none of them is never synced; one represented somewhere who is outside them has
//! left, and is reset and removed. With no group chosen, everyone is in scope.

use std::collections::BTreeSet;

use crate::{Email, PersonId};

/// Who is in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No group is chosen: every person.
    Everyone,
    /// The members of the chosen groups, by address.
    Members(BTreeSet<Email>),
}

impl Scope {
    pub fn includes(&self, email: &Email) -> bool {
        match self {
            Scope::Everyone => true,
            Scope::Members(members) => members.contains(email),
        }
    }
}

/// A person as the scope sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPerson {
    pub id: PersonId,
    pub email: Email,
    /// Represented on some platform (synced, pending or failed): something of theirs the hub
    /// made or acts as would stay behind.
    pub represented: bool,
}

/// The people who have left the scope: represented somewhere, and outside it.
pub fn leavers(scope: &Scope, people: &[ScopedPerson]) -> Vec<PersonId> {
    people
        .iter()
        .filter(|person| person.represented && !scope.includes(&person.email))
        .map(|person| person.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(n: u128, email: &str, represented: bool) -> ScopedPerson {
        ScopedPerson {
            id: PersonId::from_uuid(uuid::Uuid::from_u128(n)),
            email: Email::parse(email).unwrap(),
            represented,
        }
    }

    #[test]
    fn only_represented_people_outside_the_chosen_groups_leave() {
        let people = [
            person(1, "ann@acme.example", true),
            person(2, "bo@acme.example", true),
            person(3, "cleo@acme.example", false),
        ];
        let scope = Scope::Members([Email::parse("ANN@acme.example").unwrap()].into());
        assert_eq!(leavers(&scope, &people), vec![people[1].id]);
        assert!(scope.includes(&Email::parse("ann@ACME.example").unwrap()));
        assert!(!scope.includes(&people[2].email));
        assert!(leavers(&Scope::Everyone, &people).is_empty());
        assert_eq!(
            leavers(&Scope::Members(BTreeSet::new()), &people),
            vec![people[0].id, people[1].id]
        );
    }
}

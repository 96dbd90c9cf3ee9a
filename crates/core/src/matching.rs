//! Matching accounts into people by e-mail.
//!
//! The rule: two accounts belong to the same person when they share an e-mail address, after
//! normalisation ([`Email::parse`]: trimmed, lower-cased), counting each account's primary
//! address and its aliases (Graph's `proxyAddresses` and `otherMails`, for example). Sharing is
//! transitive: if Slack's A shares an address with Teams' B, and B an alias with Webex's C, all
//! three are one person.
//!
//! Edge cases, decided here once:
//! - Accounts with no address are never matched; each stays unlinked (bots, service users).
//! - Inactive accounts and accounts that are not humans (bots, the hub's own representations)
//!   are left out: they neither form people nor join them.
//! - Two accounts on the same connection that share an address are a conflict: one person has
//!   one account per connection. The group is still formed, so nothing is lost, and reported in
//!   [`Match::conflicts`] for an admin to resolve.
//! - A person's address is the primary address of their earliest account in the input order,
//!   so re-running the match over the same accounts names people the same way.

use std::collections::HashMap;

use crate::{AccountId, AccountKind, ConnectionId, Email, PersonId};

/// What matching needs to know of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchCandidate {
    pub account: AccountId,
    pub connection: ConnectionId,
    pub kind: AccountKind,
    pub active: bool,
    /// The account's primary address first, then its aliases.
    pub emails: Vec<Email>,
    pub display_name: String,
}

/// One person found by matching: their address and name (from their earliest account) and
/// their accounts, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedPerson {
    pub email: Email,
    pub display_name: String,
    pub accounts: Vec<AccountId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    pub people: Vec<MatchedPerson>,
    /// Groups holding two accounts of one connection: `(connection, the accounts)`.
    pub conflicts: Vec<(ConnectionId, Vec<AccountId>)>,
}

/// Groups matchable accounts into people by shared addresses.
pub fn match_accounts(candidates: &[MatchCandidate]) -> Match {
    let matchable: Vec<&MatchCandidate> = candidates
        .iter()
        .filter(|c| c.kind == AccountKind::Human && c.active && !c.emails.is_empty())
        .collect();
    let mut groups = DisjointSets::new(matchable.len());
    let mut owner_of_address: HashMap<&Email, usize> = HashMap::new();
    for (index, candidate) in matchable.iter().enumerate() {
        for email in &candidate.emails {
            match owner_of_address.get(email) {
                Some(&other) => groups.union(index, other),
                None => {
                    owner_of_address.insert(email, index);
                }
            }
        }
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for index in 0..matchable.len() {
        let root = groups.find(index);
        let group = members.entry(root).or_default();
        if group.is_empty() {
            order.push(root);
        }
        group.push(index);
    }
    let mut result = Match::default();
    for root in order {
        let group = &members[&root];
        let first = matchable[group[0]];
        result.people.push(MatchedPerson {
            email: first.emails[0].clone(),
            display_name: first.display_name.clone(),
            accounts: group.iter().map(|&i| matchable[i].account).collect(),
        });
        let mut seen: HashMap<ConnectionId, Vec<AccountId>> = HashMap::new();
        for &i in group {
            seen.entry(matchable[i].connection)
                .or_default()
                .push(matchable[i].account);
        }
        let mut clashing: Vec<(ConnectionId, Vec<AccountId>)> = seen
            .into_iter()
            .filter(|(_, accounts)| accounts.len() > 1)
            .collect();
        clashing.sort_by_key(|(connection, _)| *connection);
        result.conflicts.extend(clashing);
    }
    result
}

/// Union-find with path halving and union by size: near-constant time per address, so matching
/// 200,000 accounts stays linear.
struct DisjointSets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl DisjointSets {
    fn new(count: usize) -> Self {
        Self {
            parent: (0..count).collect(),
            size: vec![1; count],
        }
    }

    fn find(&mut self, mut index: usize) -> usize {
        while self.parent[index] != index {
            self.parent[index] = self.parent[self.parent[index]];
            index = self.parent[index];
        }
        index
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        let (large, small) = if self.size[a] >= self.size[b] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small] = large;
        self.size[large] += self.size[small];
    }
}

/// Who a matched group of accounts becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonRef {
    Existing(PersonId),
    /// The person at this index of [`Reconciliation::new_people`].
    New(usize),
}

/// What to change in the store so that people follow a fresh match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconciliation {
    pub new_people: Vec<MatchedPerson>,
    /// Accounts to link to a person they are not linked to yet.
    pub links: Vec<(AccountId, PersonRef)>,
}

/// Turns a match into changes, given which person each account is linked to now.
///
/// A group whose accounts already belong to people keeps the person most of them belong to
/// (the smallest id on a tie, so the outcome never depends on hash order), and the others join
/// it; a group with no person yet becomes a new person. Accounts outside every group keep their
/// links: an account that was deactivated still shows under its person, as inactive.
pub fn reconcile(matched: &Match, current: &HashMap<AccountId, PersonId>) -> Reconciliation {
    let mut plan = Reconciliation::default();
    for group in &matched.people {
        let mut votes: HashMap<PersonId, usize> = HashMap::new();
        for account in &group.accounts {
            if let Some(person) = current.get(account) {
                *votes.entry(*person).or_default() += 1;
            }
        }
        let chosen = votes
            .into_iter()
            .max_by(|(a, a_votes), (b, b_votes)| a_votes.cmp(b_votes).then(b.cmp(a)))
            .map(|(person, _)| person);
        let target = match chosen {
            Some(person) => PersonRef::Existing(person),
            None => {
                plan.new_people.push(group.clone());
                PersonRef::New(plan.new_people.len() - 1)
            }
        };
        for account in &group.accounts {
            let already = matches!(
                (&target, current.get(account)),
                (PersonRef::Existing(person), Some(linked)) if person == linked
            );
            if !already {
                plan.links.push((*account, target.clone()));
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn account(n: u128) -> AccountId {
        AccountId::from_uuid(Uuid::from_u128(n))
    }

    fn connection(n: u128) -> ConnectionId {
        ConnectionId::from_uuid(Uuid::from_u128(1_000 + n))
    }

    fn candidate(n: u128, on: u128, emails: &[&str]) -> MatchCandidate {
        MatchCandidate {
            account: account(n),
            connection: connection(on),
            kind: AccountKind::Human,
            active: true,
            emails: emails.iter().map(|e| Email::parse(e).unwrap()).collect(),
            display_name: format!("Account {n}"),
        }
    }

    fn person(n: u128) -> PersonId {
        PersonId::from_uuid(Uuid::from_u128(5_000 + n))
    }

    #[test]
    fn reconciling_keeps_existing_people_and_creates_the_missing_ones() {
        let matched = match_accounts(&[
            candidate(1, 1, &["alice@acme.example"]),
            candidate(2, 2, &["alice@acme.example"]),
            candidate(3, 1, &["bob@acme.example"]),
            candidate(4, 2, &["carol@acme.example"]),
            candidate(5, 3, &["carol@acme.example"]),
        ]);
        let current = HashMap::from([
            (account(1), person(1)),
            (account(4), person(2)),
            (account(5), person(3)),
        ]);
        let plan = reconcile(&matched, &current);
        assert_eq!(plan.new_people.len(), 1);
        assert_eq!(plan.new_people[0].email.as_str(), "bob@acme.example");
        assert_eq!(
            plan.links,
            vec![
                (account(2), PersonRef::Existing(person(1))),
                (account(3), PersonRef::New(0)),
                (account(5), PersonRef::Existing(person(2))),
            ]
        );
    }

    #[test]
    fn reconciling_twice_changes_nothing_the_second_time() {
        let matched = match_accounts(&[
            candidate(1, 1, &["alice@acme.example"]),
            candidate(2, 2, &["alice@acme.example"]),
        ]);
        let plan = reconcile(&matched, &HashMap::new());
        assert_eq!(plan.links.len(), 2);
        let linked = HashMap::from([(account(1), person(9)), (account(2), person(9))]);
        assert_eq!(reconcile(&matched, &linked), Reconciliation::default());
    }

    fn check(candidates: &[MatchCandidate], expected: &[(&str, &[u128])]) {
        let matched = match_accounts(candidates);
        let actual: Vec<(String, Vec<AccountId>)> = matched
            .people
            .iter()
            .map(|p| (p.email.to_string(), p.accounts.clone()))
            .collect();
        let expected: Vec<(String, Vec<AccountId>)> = expected
            .iter()
            .map(|(e, ids)| ((*e).to_owned(), ids.iter().map(|&n| account(n)).collect()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn the_same_address_on_two_platforms_is_one_person() {
        check(
            &[
                candidate(1, 1, &["Alice@Acme.example"]),
                candidate(2, 2, &["alice@acme.example "]),
                candidate(3, 1, &["bob@acme.example"]),
            ],
            &[("alice@acme.example", &[1, 2]), ("bob@acme.example", &[3])],
        );
    }

    #[test]
    fn aliases_join_people_transitively() {
        check(
            &[
                candidate(1, 1, &["a.smith@acme.example"]),
                candidate(2, 2, &["alice@acme.example", "smtp-alias@acme.example"]),
                candidate(3, 3, &["smtp-alias@acme.example"]),
                candidate(4, 4, &["alice@acme.example", "a.smith@acme.example"]),
            ],
            &[("a.smith@acme.example", &[1, 2, 3, 4])],
        );
    }

    #[test]
    fn bots_inactive_and_addressless_accounts_are_left_out() {
        let mut bot = candidate(1, 1, &["bot@acme.example"]);
        bot.kind = AccountKind::Bot;
        let mut ours = candidate(2, 2, &["carol@acme.example"]);
        ours.kind = AccountKind::HubRepresentation;
        let mut gone = candidate(3, 1, &["carol@acme.example"]);
        gone.active = false;
        let nameless = candidate(4, 1, &[]);
        check(&[bot, ours, gone, nameless], &[]);
    }

    #[test]
    fn two_accounts_on_one_connection_are_reported_as_a_conflict() {
        let matched = match_accounts(&[
            candidate(1, 1, &["dan@acme.example"]),
            candidate(2, 1, &["DAN@acme.example"]),
            candidate(3, 2, &["dan@acme.example"]),
        ]);
        assert_eq!(matched.people.len(), 1);
        assert_eq!(
            matched.conflicts,
            vec![(connection(1), vec![account(1), account(2)])]
        );
    }

    proptest! {
        #[test]
        fn every_matchable_account_lands_in_exactly_one_person(
            raw in prop::collection::vec((0u128..4, prop::collection::vec(0u8..12, 1..3)), 0..60)
        ) {
            let candidates: Vec<MatchCandidate> = raw
                .iter()
                .enumerate()
                .map(|(i, (on, addresses))| {
                    let emails: Vec<String> = addresses.iter().map(|a| format!("p{a}@acme.example")).collect();
                    let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
                    candidate(i as u128, *on, &emails)
                })
                .collect();
            let matched = match_accounts(&candidates);
            let mut placed: Vec<AccountId> = matched.people.iter().flat_map(|p| p.accounts.clone()).collect();
            placed.sort();
            let mut all: Vec<AccountId> = candidates.iter().map(|c| c.account).collect();
            all.sort();
            prop_assert_eq!(placed, all);
            for person in &matched.people {
                for pair in person.accounts.windows(2) {
                    prop_assert!(pair[0] != pair[1]);
                }
            }
            for a in &candidates {
                for b in &candidates {
                    if a.emails.iter().any(|e| b.emails.contains(e)) {
                        let home = |id| matched.people.iter().position(|p| p.accounts.contains(&id));
                        prop_assert_eq!(home(a.account), home(b.account));
                    }
                }
            }
        }
    }
}

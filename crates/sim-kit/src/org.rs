//! The simulated organisation: a deterministic generator of people, their e-mail addresses, the
//! simulated platforms they are on, what kind of user they are on each and the teams they belong
//! to. The same spec always yields the same organisation, so tests and benchmarks can name people
//! by index.
//!
//! Who is on which platforms follows [`OrgSpec::mix`], a cycle of platform sets indexed by person
//! index modulo its length. The default cycle ([`default_mix`]) puts, for each platform in turn,
//! two people on it alone, then one person on each pair of platforms, then one on each set of
//! three or more. With two platforms that is the cycle people have always had: indices 0 and 1
//! (mod 5) on the first only, 2 and 3 on the second only, 4 on both — 40 % / 40 % / 20 %, so
//! 100,000 people are 60,000 users of each of whom 20,000 are on both.

use std::collections::{BTreeMap, BTreeSet};

const GIVEN_NAMES: [&str; 40] = [
    "Ada", "Alan", "Amara", "Ana", "Anil", "Ben", "Chen", "Chloe", "Dara", "David", "Elena",
    "Emeka", "Fatima", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Jun", "Kai", "Lena",
    "Liam", "Maya", "Mateo", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rosa", "Sami", "Sofia",
    "Tariq", "Uma", "Victor", "Wei", "Yara", "Yusuf", "Zoe",
];
const FAMILY_NAMES: [&str; 40] = [
    "Abara", "Berg", "Castro", "Dubois", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
    "Khan", "Larsen", "Moreau", "Novak", "Okafor", "Park", "Quinn", "Rossi", "Silva", "Tanaka",
    "Usman", "Varga", "Wang", "Xu", "Yilmaz", "Zhou", "Adler", "Bauer", "Costa", "Diaz", "Endo",
    "Ferreira", "Gupta", "Horvat", "Iyer", "Kowalski", "Lopez", "Mensah", "Nguyen", "Ortiz",
];
const DEPARTMENTS: [&str; 8] = [
    "Sales",
    "Marketing",
    "Support",
    "Finance",
    "Operations",
    "Legal",
    "People",
    "Customer Success",
];
/// The size of a generated team: people on a platform with teams belong to one of up to this
/// many members.
pub const TEAM_SIZE: usize = 50;

/// What kind of user a person is on one platform. A person is never a bot: each platform seeds
/// its own bots beside the organisation's people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeedKind {
    #[default]
    Member,
    Admin,
    Guest,
    Deactivated,
}

/// People whose index modulo `modulus` is `remainder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    pub modulus: usize,
    pub remainder: usize,
}

impl Every {
    fn selects(self, index: usize) -> bool {
        self.modulus > 0 && index % self.modulus == self.remainder
    }
}

/// What a simulated platform declares of its share of the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgPlatform {
    /// The platform's [`crate::SimPlatform::key`].
    pub key: &'static str,
    /// Whether its people belong to teams (of up to [`TEAM_SIZE`]).
    pub teams: bool,
    /// How many of its first people (in index order) are admins.
    pub admins: usize,
    /// Kinds given by index, the first matching rule winning; everyone else is a member (or an
    /// admin, per [`OrgPlatform::admins`]).
    pub kinds: Vec<(Every, SeedKind)>,
}

impl OrgPlatform {
    /// A platform without teams whose people are all members.
    pub fn new(key: &'static str) -> Self {
        Self {
            key,
            teams: false,
            admins: 0,
            kinds: Vec::new(),
        }
    }

    fn kind(&self, index: usize, rank: usize) -> SeedKind {
        self.kinds
            .iter()
            .find(|(every, _)| every.selects(index))
            .map(|&(_, kind)| kind)
            .unwrap_or(if rank < self.admins {
                SeedKind::Admin
            } else {
                SeedKind::Member
            })
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSpec {
    pub people: usize,
    /// Varies names; platforms, kinds and e-mail addresses depend on the index only.
    pub seed: u64,
    /// The organisation's e-mail domain.
    pub domain: String,
    pub platforms: Vec<OrgPlatform>,
    /// Person `i` is on the platforms of `mix[i % mix.len()]` (keys of [`OrgSpec::platforms`]).
    pub mix: Vec<BTreeSet<&'static str>>,
}

impl OrgSpec {
    /// The demo organisation of 40 people over these platforms, mixed by [`default_mix`].
    pub fn new(platforms: Vec<OrgPlatform>) -> Self {
        let keys: Vec<_> = platforms.iter().map(|platform| platform.key).collect();
        Self {
            people: 40,
            seed: 1,
            domain: "acme.example".to_owned(),
            mix: default_mix(&keys),
            platforms,
        }
    }
}

/// For each platform in turn two people on it alone, then one on each pair of platforms, then
/// one on each larger set: every platform has people of its own, people it shares with each
/// other platform, and, from three platforms on, people on three or more.
pub fn default_mix(keys: &[&'static str]) -> Vec<BTreeSet<&'static str>> {
    let mut mix: Vec<BTreeSet<&'static str>> = keys
        .iter()
        .flat_map(|&key| [BTreeSet::from([key]), BTreeSet::from([key])])
        .collect();
    for size in 2..=keys.len() {
        mix.extend(subsets(keys, size));
    }
    mix
}

/// The subsets of `keys` with `size` members, in lexicographic order of positions.
fn subsets(keys: &[&'static str], size: usize) -> Vec<BTreeSet<&'static str>> {
    if size == 0 {
        return vec![BTreeSet::new()];
    }
    (0..keys.len())
        .flat_map(|first| {
            subsets(&keys[first + 1..], size - 1)
                .into_iter()
                .map(move |mut rest| {
                    rest.insert(keys[first]);
                    rest
                })
        })
        .collect()
}

/// A person's presence on one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub kind: SeedKind,
    /// The team (an index into [`Organisation::teams_on`]) on a platform with teams.
    pub team: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPerson {
    pub index: usize,
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
    /// Lower-case and unique; platforms may present it in other cases.
    pub email: String,
    /// The platforms this person is on, by key.
    pub platforms: BTreeMap<&'static str, Membership>,
}

impl SeedPerson {
    pub fn is_on(&self, key: &str) -> bool {
        self.platforms.contains_key(key)
    }

    pub fn on(&self, key: &str) -> Option<&Membership> {
        self.platforms.get(key)
    }

    /// The team this person belongs to on the platform `key`.
    pub fn team_on(&self, key: &str) -> Option<usize> {
        self.on(key).and_then(|membership| membership.team)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedTeam {
    pub index: usize,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Organisation {
    pub spec_people: usize,
    pub domain: String,
    pub people: Vec<SeedPerson>,
    /// Each platform's teams, for the platforms that have them.
    pub teams: BTreeMap<&'static str, Vec<SeedTeam>>,
}

impl Organisation {
    pub fn generate(spec: &OrgSpec) -> Self {
        let mut people = Vec::with_capacity(spec.people);
        let mut teams: BTreeMap<&'static str, Vec<SeedTeam>> = spec
            .platforms
            .iter()
            .filter(|platform| platform.teams)
            .map(|platform| (platform.key, Vec::new()))
            .collect();
        let mut ranks = vec![0_usize; spec.platforms.len()];
        for index in 0..spec.people {
            let mut platforms = BTreeMap::new();
            if let Some(set) = spec.mix.get(index % spec.mix.len().max(1)) {
                for (platform, rank) in spec.platforms.iter().zip(&mut ranks) {
                    if !set.contains(platform.key) {
                        continue;
                    }
                    let team = teams
                        .get_mut(platform.key)
                        .map(|teams| join_team(teams, *rank));
                    platforms.insert(
                        platform.key,
                        Membership {
                            kind: platform.kind(index, *rank),
                            team,
                        },
                    );
                    *rank += 1;
                }
            }
            let random = splitmix64(spec.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let given = GIVEN_NAMES[(random % 40) as usize];
            let family = FAMILY_NAMES[((random >> 16) % 40) as usize];
            people.push(SeedPerson {
                index,
                given_name: given.to_owned(),
                family_name: family.to_owned(),
                display_name: format!("{given} {family}"),
                email: format!(
                    "{}.{}.{index}@{}",
                    given.to_lowercase(),
                    family.to_lowercase(),
                    spec.domain
                ),
                platforms,
            });
        }
        Self {
            spec_people: spec.people,
            domain: spec.domain.clone(),
            people,
            teams,
        }
    }

    /// The teams of the platform `key`; none for a platform without teams.
    pub fn teams_on(&self, key: &str) -> &[SeedTeam] {
        self.teams.get(key).map_or(&[], Vec::as_slice)
    }

    /// The people on the platform `key`, in index order.
    pub fn people_on<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a SeedPerson> + 'a {
        self.people.iter().filter(move |person| person.is_on(key))
    }
}

/// The team of a platform's `rank`th person, creating it when that person is its first.
fn join_team(teams: &mut Vec<SeedTeam>, rank: usize) -> usize {
    let team = rank / TEAM_SIZE;
    if team == teams.len() {
        teams.push(SeedTeam {
            index: team,
            name: format!(
                "{} {}",
                DEPARTMENTS[team % DEPARTMENTS.len()],
                team / DEPARTMENTS.len() + 1
            ),
        });
    }
    team
}

/// A fixed mixing function, so generated names never change with a library's version.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_platforms() -> Vec<OrgPlatform> {
        vec![
            OrgPlatform::new("first"),
            OrgPlatform {
                teams: true,
                ..OrgPlatform::new("second")
            },
        ]
    }

    #[test]
    fn two_platforms_keep_the_forty_forty_twenty_cycle_by_index() {
        let org = Organisation::generate(&OrgSpec {
            people: 100_000,
            ..OrgSpec::new(two_platforms())
        });
        for person in &org.people {
            let share = person.index % 5;
            assert_eq!(person.is_on("first"), share <= 1 || share == 4);
            assert_eq!(person.is_on("second"), share >= 2);
        }
        let first = org.people_on("first").count();
        let second = org.people_on("second").count();
        let both = org.people_on("first").filter(|p| p.is_on("second")).count();
        assert_eq!((first, second, both), (60_000, 60_000, 20_000));
        assert_eq!(org.teams_on("second").len(), 60_000 / TEAM_SIZE);
        assert!(org.teams_on("first").is_empty());
    }

    #[test]
    fn three_platforms_cover_every_pair_and_all_three() {
        let keys = ["a", "b", "c"];
        let mix = default_mix(&keys);
        for (i, x) in keys.iter().enumerate() {
            assert_eq!(
                mix.iter()
                    .filter(|set| *set == &BTreeSet::from([*x]))
                    .count(),
                2
            );
            for y in &keys[i + 1..] {
                assert!(mix.contains(&BTreeSet::from([*x, *y])));
            }
        }
        assert!(mix.contains(&BTreeSet::from(keys)));
        assert_eq!(mix.len(), 6 + 3 + 1);
    }

    #[test]
    fn kinds_follow_the_platform_declaration() {
        let platforms = vec![
            OrgPlatform {
                admins: 2,
                ..OrgPlatform::new("first")
            },
            OrgPlatform {
                kinds: vec![(
                    Every {
                        modulus: 97,
                        remainder: 2,
                    },
                    SeedKind::Deactivated,
                )],
                ..OrgPlatform::new("second")
            },
        ];
        let org = Organisation::generate(&OrgSpec {
            people: 200,
            ..OrgSpec::new(platforms)
        });
        let kinds = |key| {
            org.people_on(key)
                .map(|p| p.on(key).map(|m| m.kind))
                .collect::<Vec<_>>()
        };
        let first = kinds("first");
        assert_eq!(
            first[..3],
            [
                Some(SeedKind::Admin),
                Some(SeedKind::Admin),
                Some(SeedKind::Member)
            ]
        );
        assert_eq!(
            org.people[2].on("second").map(|m| m.kind),
            Some(SeedKind::Deactivated)
        );
        assert_eq!(
            org.people[3].on("second").map(|m| m.kind),
            Some(SeedKind::Member)
        );
    }

    #[test]
    fn generation_is_deterministic_and_addresses_unique() {
        let spec = OrgSpec {
            people: 1_000,
            seed: 7,
            ..OrgSpec::new(two_platforms())
        };
        let org = Organisation::generate(&spec);
        assert_eq!(org, Organisation::generate(&spec));
        let mut emails: Vec<_> = org.people.iter().map(|p| p.email.as_str()).collect();
        emails.sort_unstable();
        emails.dedup();
        assert_eq!(emails.len(), 1_000);
        assert!(
            org.people
                .iter()
                .all(|p| p.team_on("second").is_some() == p.is_on("second"))
        );
    }
}

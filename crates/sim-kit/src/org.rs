//! The simulated organisation: a deterministic generator of people, their e-mail addresses, the
//! platforms they are on and the teams they belong to. The same spec always yields the same
//! organisation, so tests and benchmarks can name people by index.
//!
//! Platform shares, by person index modulo 5: 0 and 1 are on Slack only, 2 and 3 on Teams only,
//! 4 on both — 40 % / 40 % / 20 %, so 100,000 people are 60,000 Slack users and 60,000 Teams users
//! of whom 20,000 are on both. People on Teams belong to one team of up to 50.

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
const TEAM_SIZE: usize = 50;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSpec {
    pub people: usize,
    /// Varies names; shares and e-mail addresses depend on the index only.
    pub seed: u64,
    /// The organisation's e-mail domain.
    pub domain: String,
}

impl Default for OrgSpec {
    fn default() -> Self {
        Self {
            people: 40,
            seed: 1,
            domain: "acme.example".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPerson {
    pub index: usize,
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
    /// Lower-case and unique; platforms may present it in other cases.
    pub email: String,
    pub on_slack: bool,
    pub on_teams: bool,
    /// The team this person belongs to, for people on Teams.
    pub team: Option<usize>,
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
    pub teams: Vec<SeedTeam>,
}

impl Organisation {
    pub fn generate(spec: &OrgSpec) -> Self {
        let mut people = Vec::with_capacity(spec.people);
        let mut teams = Vec::new();
        let mut on_teams_so_far = 0;
        for index in 0..spec.people {
            let share = index % 5;
            let (on_slack, on_teams) = (share <= 1 || share == 4, share >= 2);
            let team = on_teams.then(|| {
                let team = on_teams_so_far / TEAM_SIZE;
                on_teams_so_far += 1;
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
            });
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
                on_slack,
                on_teams,
                team,
            });
        }
        Self {
            spec_people: spec.people,
            domain: spec.domain.clone(),
            people,
            teams,
        }
    }
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

    #[test]
    fn shares_are_forty_forty_twenty() {
        let org = Organisation::generate(&OrgSpec {
            people: 100_000,
            ..OrgSpec::default()
        });
        let slack = org.people.iter().filter(|p| p.on_slack).count();
        let teams = org.people.iter().filter(|p| p.on_teams).count();
        let both = org
            .people
            .iter()
            .filter(|p| p.on_slack && p.on_teams)
            .count();
        assert_eq!((slack, teams, both), (60_000, 60_000, 20_000));
        assert_eq!(org.teams.len(), 60_000 / TEAM_SIZE);
    }

    #[test]
    fn generation_is_deterministic_and_addresses_unique() {
        let spec = OrgSpec {
            people: 1_000,
            seed: 7,
            ..OrgSpec::default()
        };
        let org = Organisation::generate(&spec);
        assert_eq!(org, Organisation::generate(&spec));
        let mut emails: Vec<_> = org.people.iter().map(|p| p.email.as_str()).collect();
        emails.sort_unstable();
        emails.dedup();
        assert_eq!(emails.len(), 1_000);
        assert!(org.people.iter().all(|p| p.team.is_some() == p.on_teams));
    }
}

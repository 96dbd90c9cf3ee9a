//! The people list: filtered, searched and paginated by keyset, so a page costs the same at the
//! end of 200,000 people as at the start.

use sqlx::Row;
use switchboard_core::{
    Person, PersonId, Platform, Representation, RepresentationKind, SyncStatusCode,
};

use crate::connections::parse;
use crate::people::person_from_row;
use crate::representations::representation_from_row;
use crate::{Store, StoreError};

/// Which primary platform to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryFilter {
    Is(Platform),
    /// People whose primary nobody has chosen: anyone without one (on any number of platforms,
    /// so that every person matches one of these filters), and people on several platforms
    /// whose primary was set automatically while they were on one.
    Unchosen,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleQuery {
    pub primary: Option<PrimaryFilter>,
    /// People with a representation in this status…
    pub status: Option<SyncStatusCode>,
    /// …and/or of this kind (both on the same representation when both are given).
    pub kind: Option<RepresentationKind>,
    /// A piece of the name or e-mail address, any case.
    pub search: Option<String>,
    /// Members of this team (an account of theirs was imported from it, and is active).
    pub team: Option<String>,
    /// The last person of the previous page.
    pub after: Option<PeopleCursor>,
    pub limit: u32,
}

/// Where a page ends: people are ordered by name, then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleCursor {
    pub display_name: String,
    pub id: PersonId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSummary {
    pub person: Person,
    /// The platforms the person has an active account on.
    pub platforms: Vec<Platform>,
    pub representations: Vec<Representation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeoplePage {
    pub people: Vec<PersonSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PeopleCursor>,
}

/// SQL built at run time with `$N` placeholders numbered in the order they are added, which
/// both SQLite and PostgreSQL read the same way (sqlx's query builder writes `?` for its `Any`
/// driver, which PostgreSQL refuses).
#[derive(Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.text.push_str(&format!("${}", self.binds.len()));
        self
    }

    async fn fetch_all(self, store: &Store) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.text));
        for bind in self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(int) => query.bind(int),
            };
        }
        Ok(query.fetch_all(&store.pool).await?)
    }
}

/// Escapes LIKE's wildcards so that a search for `50%` finds "50%", not everything.
fn like_pattern(search: &str) -> String {
    let mut pattern = String::from("%");
    for c in search.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The query's filters (all but where the page starts), as conditions on `people p`.
fn filter(sql: &mut Sql, query: &PeopleQuery) {
    match query.primary {
        Some(PrimaryFilter::Is(platform)) => {
            sql.push(" AND p.primary_platform = ")
                .bind(Bind::Text(platform.as_str().to_owned()));
        }
        Some(PrimaryFilter::Unchosen) => {
            sql.push(
                " AND (p.primary_platform IS NULL OR (p.primary_chosen_by = 'automatic' \
                 AND p.platforms NOT IN (0",
            );
            for platform in Platform::ALL {
                sql.push(", ").bind(Bind::Int(platform.bit()));
            }
            sql.push(")))");
        }
        None => {}
    }
    if query.status.is_some() || query.kind.is_some() {
        sql.push(" AND EXISTS (SELECT 1 FROM representations r WHERE r.person_id = p.id");
        if let Some(status) = query.status {
            sql.push(" AND r.status = ")
                .bind(Bind::Text(status.as_str().to_owned()));
        }
        if let Some(kind) = query.kind {
            sql.push(" AND r.kind = ")
                .bind(Bind::Text(kind.as_str().to_owned()));
        }
        sql.push(")");
    }
    if let Some(team) = &query.team {
        sql.push(
            " AND EXISTS (SELECT 1 FROM account_teams t JOIN accounts a ON a.id = t.account_id \
             WHERE a.person_id = p.id AND a.active = 1 AND t.team_id = ",
        )
        .bind(Bind::Text(team.clone()))
        .push(")");
    }
    if let Some(search) = query.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = like_pattern(search);
        sql.push(" AND (lower(p.display_name) LIKE ")
            .bind(Bind::Text(pattern.clone()))
            .push(" ESCAPE '\\' OR p.email LIKE ")
            .bind(Bind::Text(pattern))
            .push(" ESCAPE '\\')");
    }
}

impl Store {
    /// How many people the query's filters match, on every page together.
    pub async fn count_people(&self, query: &PeopleQuery) -> Result<i64, StoreError> {
        let mut sql = Sql::default();
        sql.push("SELECT COUNT(*) AS matching FROM people p WHERE 1 = 1");
        filter(&mut sql, query);
        let rows = sql.fetch_all(self).await?;
        Ok(rows
            .first()
            .map(|row| row.try_get::<i64, _>("matching"))
            .transpose()?
            .unwrap_or(0))
    }

    pub async fn list_people(&self, query: &PeopleQuery) -> Result<PeoplePage, StoreError> {
        let limit = query.limit.clamp(1, 1_000);
        let mut sql = Sql::default();
        sql.push(
            "SELECT p.id, p.display_name, p.email, p.primary_platform, p.primary_chosen_by, \
             p.platforms FROM people p WHERE 1 = 1",
        );
        filter(&mut sql, query);
        if let Some(after) = &query.after {
            sql.push(" AND (p.display_name > ")
                .bind(Bind::Text(after.display_name.clone()))
                .push(" OR (p.display_name = ")
                .bind(Bind::Text(after.display_name.clone()))
                .push(" AND p.id > ")
                .bind(Bind::Text(after.id.to_string()))
                .push("))");
        }
        sql.push(" ORDER BY p.display_name, p.id LIMIT ")
            .bind(Bind::Int(i64::from(limit) + 1));
        let rows = sql.fetch_all(self).await?;
        let has_more = rows.len() > limit as usize;
        let mut people = Vec::with_capacity(limit as usize);
        for row in rows.iter().take(limit as usize) {
            people.push(PersonSummary {
                person: person_from_row(row)?,
                platforms: Platform::in_set(row.try_get("platforms")?).collect(),
                representations: Vec::new(),
            });
        }
        self.attach_representations(&mut people).await?;
        let next = if has_more {
            people.last().map(|last| PeopleCursor {
                display_name: last.person.display_name.clone(),
                id: last.person.id,
            })
        } else {
            None
        };
        Ok(PeoplePage { people, next })
    }

    async fn attach_representations(&self, people: &mut [PersonSummary]) -> Result<(), StoreError> {
        let ids: Vec<PersonId> = people.iter().map(|s| s.person.id).collect();
        for (person, representation) in self.representations_of_people(&ids).await? {
            if let Some(summary) = people.iter_mut().find(|s| s.person.id == person) {
                summary.representations.push(representation);
            }
        }
        Ok(())
    }

    /// The representations of these people (a page's worth), in one query.
    pub async fn representations_of_people(
        &self,
        people: &[PersonId],
    ) -> Result<Vec<(PersonId, Representation)>, StoreError> {
        if people.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push(
            "SELECT person_id, platform, kind, status, failure_reason, account_id, external_id \
             FROM representations WHERE person_id IN (",
        );
        for (index, id) in people.iter().enumerate() {
            if index > 0 {
                sql.push(", ");
            }
            sql.bind(Bind::Text(id.to_string()));
        }
        sql.push(") ORDER BY person_id, platform");
        sql.fetch_all(self)
            .await?
            .iter()
            .map(|row| Ok((parse(row, "person_id")?, representation_from_row(row)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn wildcards_in_a_search_are_taken_literally() {
        assert_eq!(like_pattern(" 50%_off "), "%50\\%\\_off%");
        assert_eq!(like_pattern("Ada"), "%ada%");
    }
}

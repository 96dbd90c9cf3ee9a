-- Switchboard schema v4 (PostgreSQL): the people list read from one index. A search for a piece of
-- a name or address reads every person in name order; with the columns the list shows in the
-- index, that is one pass over the index instead of a table lookup per person.
-- Keep in step with ../sqlite/0004_people_listing.sql.

CREATE INDEX people_listing ON people (display_name, id, email, primary_platform,
    primary_chosen_by, platforms);
DROP INDEX people_by_name;

-- Author search. Authors are few (hundreds to thousands of distinct
-- addresses) but every one shares the trigrams of its domain, so a trigram
-- index on batches.author cannot narrow "user42@" down cheaply. Searches
-- first match the small table of distinct authors, then look the matches up
-- by equality: the planner sees the authors as values, with their
-- statistics: a rare author's batches come newest first straight from the
-- (author, id) index, a common author's from a walk down the primary key.
CREATE TABLE batch_authors (
    author text PRIMARY KEY
);
INSERT INTO batch_authors (author) SELECT DISTINCT author FROM batches;

-- Every writer (the service, import-legacy, bulk loads) keeps it complete:
-- authors are added per statement, never removed (batches are never
-- deleted, and an author without batches only costs one row).
CREATE FUNCTION batch_authors_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO batch_authors (author)
        SELECT DISTINCT author FROM added ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER batches_add_authors AFTER INSERT ON batches
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION batch_authors_add();
CREATE TRIGGER batches_change_authors AFTER UPDATE ON batches
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION batch_authors_add();

CREATE INDEX batches_author_id ON batches (author, id);
DROP INDEX batches_author_trgm;

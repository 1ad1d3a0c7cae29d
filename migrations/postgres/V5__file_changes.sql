-- Every committed change to what a download reads of a file (its
-- visibility and size, its instances, its existence) is announced on the
-- channel tooltool_files with the file's digest as payload. Every server
-- process sharing this database LISTENs on it and drops its cached copy of
-- that file (adapters/cache): NOTIFY is delivered at commit, to every
-- listening session, so a process sees a change within the notification's
-- latency. Triggers, not statements of the application, so that every path
-- that changes these rows (the adapter, an import, an operator's SQL)
-- announces it. Replication leases (files.replication_lease) and
-- rejections are not read by downloads and announce nothing.
CREATE FUNCTION tooltool_file_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    IF TG_TABLE_NAME = 'files' THEN
        IF TG_OP = 'DELETE' THEN
            changed := OLD.digest;
        ELSE
            changed := NEW.digest;
        END IF;
    ELSE
        IF TG_OP = 'DELETE' THEN
            SELECT digest INTO changed FROM files WHERE id = OLD.file_id;
        ELSE
            SELECT digest INTO changed FROM files WHERE id = NEW.file_id;
        END IF;
    END IF;
    -- An instance removed by the cascade of its file's deletion finds no
    -- file: the file's own trigger has announced it.
    IF changed IS NOT NULL THEN
        PERFORM pg_notify('tooltool_files', changed);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER files_changed
    AFTER UPDATE OF visibility, size OR DELETE ON files
    FOR EACH ROW EXECUTE FUNCTION tooltool_file_changed();

CREATE TRIGGER file_instances_changed
    AFTER INSERT OR UPDATE OR DELETE ON file_instances
    FOR EACH ROW EXECUTE FUNCTION tooltool_file_changed();

-- Restores the task-list version of 2026-11-25-000005 (see there).
ALTER TABLE users ADD COLUMN tasks_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION tasks_bump_owner_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE users SET tasks_version = tasks_version + 1 WHERE id = OLD.owner_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.owner_id <> OLD.owner_id) THEN
        UPDATE users SET tasks_version = tasks_version + 1 WHERE id = NEW.owner_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_bump_owner_version
    AFTER INSERT OR UPDATE OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_bump_owner_version();

-- A counter that moves whenever any of the user's tasks is inserted, changed
-- or deleted, in the same transaction as the change. The bearer middleware
-- reads it with the user (no extra round trip), so GET /tasks can tell
-- whether a list it answered before is still exactly right.
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

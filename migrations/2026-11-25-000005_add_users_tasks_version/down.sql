DROP TRIGGER tasks_bump_owner_version ON tasks;
DROP FUNCTION tasks_bump_owner_version();
ALTER TABLE users DROP COLUMN tasks_version;

-- The task-list cache is gone: a list is read on every request, and a write
-- to a task no longer updates its owner's row.
DROP TRIGGER tasks_bump_owner_version ON tasks;
DROP FUNCTION tasks_bump_owner_version();
ALTER TABLE users DROP COLUMN tasks_version;

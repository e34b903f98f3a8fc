-- How many tasks each user holds, for `limits.tasks_per_user`: a create
-- takes a slot with one conditional UPDATE (re-checked on the newest row
-- version when creates race), a delete gives it back in the same statement.
ALTER TABLE users ADD COLUMN task_count integer NOT NULL DEFAULT 0;
UPDATE users u SET task_count = (SELECT count(*) FROM tasks t WHERE t.owner_id = u.id);

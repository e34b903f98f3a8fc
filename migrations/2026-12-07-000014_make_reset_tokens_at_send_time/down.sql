ALTER TABLE outbox DROP COLUMN reset_for;
DELETE FROM password_resets WHERE token_hash IS NULL;
ALTER TABLE password_resets ALTER COLUMN token_hash SET NOT NULL;

-- A reset link's token is made as its mail is sent, not when the reset is
-- asked for: a waiting mail holds a slot where the token goes (`reset_for`
-- names whose reset fills it), and a reset holds no token until then. A
-- database reader, a replica or a backup of a waiting mail cannot reset the
-- password. Mails already waiting are sent as they are.
ALTER TABLE password_resets ALTER COLUMN token_hash DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN reset_for BIGINT REFERENCES users (id) ON DELETE CASCADE;

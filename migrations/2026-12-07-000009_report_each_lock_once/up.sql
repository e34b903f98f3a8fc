-- Whether the account's current lock already has its login_locked event:
-- one event per lock, however many attempts it refuses.
ALTER TABLE users ADD COLUMN lock_reported boolean NOT NULL DEFAULT false;

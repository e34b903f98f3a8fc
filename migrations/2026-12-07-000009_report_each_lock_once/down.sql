ALTER TABLE users DROP COLUMN lock_reported;
